"""vrm-agent: a personal VRM agent that keeps vendor relationships in the person's own Solid pod."""

import logging

__version__ = "0.1.0"

# rdflib logs a full traceback (at warning level) for every literal whose lexical form does not
# fit its datatype, such as "P90X"^^xsd:duration in a terms file. The agent reads such values
# itself and reports them in the person's words, so rdflib's own report is only noise.
logging.getLogger("rdflib.term").setLevel(logging.ERROR)

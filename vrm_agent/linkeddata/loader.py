"""pyld, with the package's bundled-only document loader as its default.

The loader itself and the contexts it serves live in :mod:`vrm_agent.linkeddata.contexts`, which
does not import pyld. Importing this module imports pyld and makes that loader pyld's default, so
any pyld call in the process that forgets to pass a loader still fetches nothing. The package's
own code takes pyld from here (``from vrm_agent.linkeddata.loader import jsonld``), inside the
functions that use it: pyld brings requests and lxml, some 10 MB resident that a daemon which has
not yet received a message does not need.
"""

from __future__ import annotations

from pyld import jsonld

from vrm_agent.linkeddata.contexts import (
    BUILT_IN,
    DATA_INTEGRITY_CONTEXT,
    ODRL_CONTEXT,
    PACKAGE,
    PROTOCOL_CONTEXT,
    ContextRefused,
    bundled_context,
    is_bundled,
    load_document,
    refusal_in,
    refusal_text,
    register_context,
    registered_extras,
)

__all__ = [
    "BUILT_IN",
    "DATA_INTEGRITY_CONTEXT",
    "ODRL_CONTEXT",
    "PACKAGE",
    "PROTOCOL_CONTEXT",
    "ContextRefused",
    "bundled_context",
    "is_bundled",
    "jsonld",
    "load_document",
    "refusal_in",
    "refusal_text",
    "register_context",
    "registered_extras",
]

jsonld.set_document_loader(load_document)

"""A policy document the person hands the agent (JSON-LD or Turtle) read into an RDF graph,
with nothing fetched: JSON-LD may use only the contexts the package ships, and relative IRIs
resolve against a marker base that validation then refuses, so nothing resolves against the
folder the command happens to run in."""

from __future__ import annotations

from rdflib import Graph

from vrm_agent.errors import VrmAgentError
from vrm_agent.linkeddata.limits import DOCUMENT, InputRefused
from vrm_agent.linkeddata.rdf import InvalidJsonLd, jsonld_to_graph
from vrm_agent.policy.validate import RELATIVE_BASE

MAX_POLICY_BYTES = DOCUMENT.max_bytes


class PolicyDocumentError(VrmAgentError):
    """A policy document that cannot be read at all."""


def read_document(raw: bytes, *, turtle: bool) -> Graph:
    if len(raw) > MAX_POLICY_BYTES:
        raise PolicyDocumentError(f"it is larger than {MAX_POLICY_BYTES // 1024} KiB")
    if turtle:
        graph = Graph()
        try:
            graph.parse(data=raw.decode("utf-8"), format="turtle", publicID=RELATIVE_BASE)
        except UnicodeDecodeError:
            raise PolicyDocumentError("it is not UTF-8 text") from None
        except Exception as exc:  # rdflib raises many kinds; none of their texts are ours
            raise PolicyDocumentError(f"it is not valid Turtle ({type(exc).__name__}: "
                                      f"{str(exc).splitlines()[0][:160] if str(exc) else ''})"
                                      ) from None
        return graph
    try:
        return jsonld_to_graph(raw, base=RELATIVE_BASE, bounds=DOCUMENT)
    except (InvalidJsonLd, InputRefused) as exc:
        raise PolicyDocumentError(str(exc)) from None

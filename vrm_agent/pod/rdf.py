"""RDF bodies to and from rdflib graphs, and N3 Patch documents for partial updates.

JSON-LD reaches rdflib's own JSON-LD parser (which dereferences remote and ``file:`` contexts)
only once the linked-data room has expanded it with bundled contexts alone, so no context is left
to load, and within bounds.
"""

from __future__ import annotations

from rdflib import Graph
from rdflib.term import Variable

from vrm_agent.linkeddata.limits import InputRefused
from vrm_agent.linkeddata.rdf import jsonld_to_graph

TURTLE = "text/turtle"
JSON_LD = "application/ld+json"
N3 = "text/n3"

_PARSERS = {TURTLE: "turtle", JSON_LD: "json-ld", N3: "n3", "application/n-triples": "nt"}
# Turtle from pods can be large (a day of audit entries); rdflib reads it in linear time. JSON-LD
# is bounded more tightly by the linked-data room (DOCUMENT).
MAX_RDF_BYTES = 32 * 1024 * 1024


def media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def rdf_format(content_type: str | None) -> str | None:
    """rdflib's parser name for a media type, or None if we do not read that type as RDF."""
    return _PARSERS.get(media_type(content_type))


def parse_graph(body: bytes | str, content_type: str, base: str) -> Graph:
    """Parse an RDF body; any parser failure becomes a ValueError (the caller types it)."""
    fmt = rdf_format(content_type)
    if fmt is None:
        raise ValueError(f"{media_type(content_type) or 'no content type'} is not an RDF type")
    if len(body) > MAX_RDF_BYTES:
        raise ValueError(f"the document is larger than {MAX_RDF_BYTES} bytes")
    if fmt == "json-ld":
        try:
            return jsonld_to_graph(body, base=base)
        except InputRefused as exc:
            raise ValueError(str(exc)) from exc
    graph = Graph()
    try:
        graph.parse(data=body, format=fmt, publicID=base)
    except Exception as exc:  # rdflib raises many unrelated types for bad input
        # Only the exception's type: rdflib's texts can quote the document or name local paths.
        raise ValueError(f"the {media_type(content_type)} body cannot be parsed "
                         f"({type(exc).__name__})") from exc
    return graph


def serialize_graph(graph: Graph, content_type: str = TURTLE) -> bytes:
    fmt = rdf_format(content_type)
    if fmt is None or fmt == "n3":
        raise ValueError(f"cannot write a graph as {content_type}")
    return graph.serialize(format=fmt, encoding="utf-8")


def _triples_block(graph: Graph | None) -> str:
    if graph is None or len(graph) == 0:
        return ""
    if any(isinstance(term, Variable) for triple in graph for term in triple):
        # A pattern (``?acr acp:resource <...>``): N3 terms, one triple a line.
        return "\n".join(sorted(" ".join(t.n3() for t in triple) + " ." for triple in graph))
    # N-Triples lines are valid inside an N3 formula and never depend on prefixes.
    return graph.serialize(format="nt", encoding="utf-8").decode("utf-8").strip()




def n3_patch(
    *,
    inserts: Graph | None = None,
    deletes: Graph | None = None,
    where: Graph | None = None,
) -> str:
    """A ``solid:InsertDeletePatch`` document (Solid Protocol, N3 Patch)."""
    if not inserts and not deletes:
        raise ValueError("a patch needs something to insert or delete")
    lines = [
        "@prefix solid: <http://www.w3.org/ns/solid/terms#>.",
        "_:patch a solid:InsertDeletePatch",
    ]
    for keyword, graph in (("where", where), ("deletes", deletes), ("inserts", inserts)):
        block = _triples_block(graph)
        if block:
            lines[-1] += ";"
            lines.append(f"  solid:{keyword} {{\n{block}\n  }}")
    lines[-1] += "."
    return "\n".join(lines) + "\n"

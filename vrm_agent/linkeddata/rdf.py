"""JSON-LD from outside to RDF, within bounds and with the package's loader only.

rdflib's own JSON-LD parser dereferences remote and ``file:`` contexts, so it never sees a
document with a context: the JSON is parsed within bounds, pyld expands it through the
bundled-only loader (expansion resolves every context and leaves none), and rdflib reads the
expanded form, which has nothing left to fetch. Both steps take linear time; pyld's own RDF
conversion does not (see :data:`~vrm_agent.linkeddata.limits.MESSAGE`), so it is used only for
canonicalisation, on documents within the message bounds.
"""

from __future__ import annotations

import json
from typing import Any

from rdflib import Graph

from vrm_agent.linkeddata.contexts import refusal_in
from vrm_agent.linkeddata.limits import DOCUMENT, Bounds, InputRefused, TooComplex, load_json


class InvalidJsonLd(InputRefused):
    """The JSON is not JSON-LD that can be turned into RDF."""


Dataset = dict[str, list[dict[str, Any]]]


def to_dataset(data: Any, *, base: str | None = None, bounds: Bounds = DOCUMENT) -> Dataset:
    """pyld's RDF dataset of parsed JSON-LD; refuses unknown contexts and oversized results."""
    dataset: Dataset = _pyld("to_rdf", data, base)
    check_dataset(dataset, bounds)
    return dataset


def _pyld(operation: str, data: Any, base: str | None) -> Any:
    """One pyld operation (``expand``, ``to_rdf``) through the bundled-only loader, its failures
    as our typed refusals."""
    # pyld is imported on first use, not with this module (vrm_agent.linkeddata.loader says why).
    from vrm_agent.linkeddata.loader import jsonld, load_document

    run = getattr(jsonld, operation)
    if not isinstance(data, dict | list):
        raise InvalidJsonLd("a JSON-LD document is an object or an array")
    try:
        return run(data, {"documentLoader": load_document, "base": base or ""})
    except RecursionError as exc:
        raise TooComplex("the JSON-LD is nested too deeply") from exc
    except jsonld.JsonLdError as exc:
        refused = refusal_in(exc)
        if refused is not None:
            raise refused from exc
        raise InvalidJsonLd(f"not valid JSON-LD: {jsonld_problem(exc)}") from exc
    except (ValueError, TypeError, KeyError, AttributeError, IndexError) as exc:
        # pyld lets some malformed input through to plain Python errors (a relative IRI with no
        # base, a context of the wrong shape); their text is pyld's, so it is not repeated.
        raise InvalidJsonLd("not valid JSON-LD (an IRI or a context cannot be read)") from exc


def check_dataset(dataset: Dataset, bounds: Bounds) -> None:
    quads = sum(len(triples) for triples in dataset.values())
    if quads > bounds.max_quads:
        raise TooComplex(f"the document makes more than {bounds.max_quads} statements")
    if blank_nodes(dataset) > bounds.max_blank_nodes:
        raise TooComplex(f"the document has more than {bounds.max_blank_nodes} blank nodes")
    if alike_neighbours(dataset) > bounds.max_alike_neighbours:
        raise TooComplex(f"a blank node is linked to more than {bounds.max_alike_neighbours} "
                         "blank nodes that cannot be told apart")


def alike_neighbours(dataset: Dataset) -> int:
    """The most blank neighbours of one blank node that share their first-degree signature (the
    statements about each, with itself and other blank nodes anonymised, as RDFC-1.0 hashes
    them first). Canonicalisation permutes such groups, at factorial cost."""
    statements: dict[str, list[tuple[Any, ...]]] = {}
    for graph_name, triples in dataset.items():
        graph = None if graph_name == "@default" else graph_name
        for triple in triples:
            terms = (_term(triple["subject"]), triple["predicate"]["value"],
                     _term(triple["object"]), graph)
            for label in {t for t in (terms[0], terms[2], graph) if _blank(t)}:
                statements.setdefault(label, []).append(terms)

    def signature(label: str) -> tuple[Any, ...]:
        return tuple(sorted(tuple(("a" if t == label else "z") if _blank(t) else repr(t)
                                  for t in terms) for terms in statements[label]))

    signatures = {label: signature(label) for label in statements}
    worst = 0
    for label, about in statements.items():
        neighbours = {t for terms in about for t in terms if _blank(t) and t != label}
        counts: dict[tuple[Any, ...], int] = {}
        for neighbour in neighbours:
            counts[signatures[neighbour]] = counts.get(signatures[neighbour], 0) + 1
        worst = max(worst, max(counts.values(), default=0))
    return worst


def _term(term: dict[str, Any]) -> Any:
    if term.get("type") == "literal":
        return (term.get("value"), term.get("datatype"), term.get("language"))
    return term.get("value")


def _blank(term: Any) -> bool:
    return isinstance(term, str) and term.startswith("_:")


def blank_nodes(dataset: Dataset) -> int:
    labels = {name for name in dataset if name.startswith("_:")}
    for triples in dataset.values():
        for triple in triples:
            for position in ("subject", "object"):
                term = triple.get(position) or {}
                if term.get("type") == "blank node":
                    labels.add(term["value"])
    return len(labels)


def to_nquads(dataset: Dataset) -> str:
    from vrm_agent.linkeddata.loader import jsonld  # on first use, as in _pyld

    return str(jsonld.JsonLdProcessor.to_nquads(dataset))


def expand(data: Any, *, base: str | None = None) -> list[Any]:
    """pyld's expanded form (no contexts left), through the bundled-only loader."""
    expanded: list[Any] = _pyld("expand", data, base)
    return expanded


def refuse_embedded_contexts(value: Any) -> None:
    """Expanded JSON-LD has no contexts; a JSON literal could still hold the key, and rdflib
    would load it, so any is refused."""
    pending = [value]
    while pending:
        current = pending.pop()
        if isinstance(current, dict):
            if "@context" in current or "@import" in current:
                raise InvalidJsonLd("a JSON literal in the document carries a context")
            pending.extend(current.values())
        elif isinstance(current, list):
            pending.extend(current)


def jsonld_to_graph(raw: bytes | str, *, base: str | None = None,
                    bounds: Bounds = DOCUMENT) -> Graph:
    """A JSON-LD body as an rdflib graph, with nothing fetched and bounded work."""
    expanded = expand(load_json(raw, bounds), base=base)
    refuse_embedded_contexts(expanded)
    graph = Graph()
    try:
        graph.parse(data=json.dumps(expanded), format="json-ld", publicID=base)
    except Exception as exc:  # rdflib raises many unrelated types; its text is not ours to show
        raise InvalidJsonLd(f"not valid JSON-LD ({type(exc).__name__})") from exc
    if len(graph) > bounds.max_quads:
        raise TooComplex(f"the document makes more than {bounds.max_quads} statements")
    return graph


def jsonld_problem(error: BaseException) -> str:
    """What pyld found wrong, from the innermost JsonLdError's own message (pyld's fixed texts,
    never a path or a loaded document), on one line."""
    from vrm_agent.linkeddata.loader import jsonld  # on first use, as in _pyld

    message = "the document cannot be processed"
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, jsonld.JsonLdError) and current.args \
                and isinstance(current.args[0], str):
            message = current.args[0]
        current = current.__cause__ or getattr(current, "cause", None)
    line = message.strip().splitlines()[0] if message.strip() else "unreadable"
    return line[:160]

"""Check records against the VRM shapes before they are written to a pod.

``violations(graph)`` lists what is wrong; ``validate(graph)`` raises :class:`ShapeViolation` when
anything is. Validation runs pyshacl with the cached shapes graph, no inference (records state
their types) and no SHACL-AF features, which keeps a 1,000-transaction chunk well under a second.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from typing import Any

from rdflib import BNode, Graph, Literal, URIRef
from rdflib.namespace import SH
from rdflib.term import Node

from vrm_agent.errors import VrmAgentError
from vrm_agent.vocabulary import VocabularyError, shapes_graph
from vrm_agent.vocabulary.html import curie

__all__ = ["ShapeViolation", "Violation", "conforms", "validate", "violations"]

# A ShapeViolation message lists this many problems, then says how many more there are.
_MESSAGE_LIMIT = 5
# One validation at a time: pyshacl touches the shared shapes graph on its first run, and we turn
# a logger down while it runs. Validation is CPU-bound, so threads would gain nothing anyway.
_LOCK = threading.Lock()


@dataclass(frozen=True)
class Violation:
    """One problem: which node, which property (None for a rule about the node as a whole), what
    is wrong, and how bad (``Violation``, ``Warning`` or ``Info``).

    ``focus`` is the node as found in the graph (an IRI or a blank node); ``where`` says the same
    for a person: a blank node is described by the IRI and property it hangs from.
    """

    focus: Node
    path: str | None
    message: str
    severity: str = "Violation"
    where: str = ""

    def __str__(self) -> str:
        where = self.where or _plain(self.focus)
        if self.path:
            where += f" {self.path}"
        return f"{where}: {self.message}"


class ShapeViolation(VrmAgentError):
    """A record does not conform to the VRM shapes; ``violations`` holds every problem found."""

    def __init__(self, found: list[Violation]) -> None:
        self.violations = found
        lines = [str(v) for v in found[:_MESSAGE_LIMIT]]
        if len(found) > _MESSAGE_LIMIT:
            lines.append(f"... and {len(found) - _MESSAGE_LIMIT} more")
        noun = "problem" if len(found) == 1 else "problems"
        super().__init__(f"record does not conform to the VRM shapes ({len(found)} {noun}): "
                         + "; ".join(lines))


def _plain(node: Node) -> str:
    return f"_:{node}" if isinstance(node, BNode) else f"<{node}>"


def describe_node(graph: Graph, node: Node, depth: int = 0) -> str:
    """``<doc#it> vcard:hasAddress [...]`` for a blank node; ``<iri>`` for an IRI."""
    if not isinstance(node, BNode) or depth > 3:
        return _plain(node)
    for subject, predicate in graph.subject_predicates(node):
        return f"{describe_node(graph, subject, depth + 1)} {curie(predicate)} [...]"
    return _plain(node)


@contextmanager
def _quiet_rdflib() -> Iterator[None]:
    """rdflib logs a traceback for every ill-typed literal it meets; the report already says it."""
    logger = logging.getLogger("rdflib.term")
    previous = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(previous)


@cache
def _shapes_for_pyshacl() -> Graph:
    # pyshacl adds a few RDFS triples to the shapes graph it is given, so it gets a private copy
    # (the additions are harmless to it, and shapes_graph() stays exactly the file).
    copy = Graph()
    copy += shapes_graph()
    return copy


def _run(graph: Graph) -> Graph:
    # No inference (records state their types), no SHACL-AF, and no defensive copy of the data:
    # without inference pyshacl only reads it, and copying 10,000 triples costs as much as a check.
    options: dict[str, Any] = {"inference": "none", "advanced": False, "inplace": True}
    # Imported here: pyshacl and the SPARQL engine it loads cost some 8 MB resident, and most
    # records never need them (the compiled checks of vrm_agent.vocabulary.compiled suffice).
    from pyshacl import validate as shacl_validate
    from pyshacl.rdfutil.stringify import stringify_blank_node

    with _LOCK, _quiet_rdflib():
        try:
            _conforms, report, _text = shacl_validate(
                graph, shacl_graph=_shapes_for_pyshacl(), **options)
        except Exception as exc:  # pyshacl reports broken shapes with many exception types
            raise VocabularyError(f"SHACL validation failed to run: {exc}") from exc
        finally:
            # pyshacl keeps the text of every blank node it described, keyed by id(graph), in a
            # dict it never empties: it grew with every agreement the daemon validated, and a
            # later graph that gets a freed graph's id could be described with stale text.
            getattr(stringify_blank_node, "dict_cache", {}).clear()
    if not isinstance(report, Graph):
        raise VocabularyError(f"SHACL validation failed: {report}")
    return report


def _term_text(node: Node | None) -> str | None:
    if node is None:
        return None
    if isinstance(node, URIRef):
        return curie(node)
    if isinstance(node, BNode):
        return "(a path expression)"
    return str(node)


def _severity(node: Node | None) -> str:
    return str(node).rsplit("#", 1)[-1] if node is not None else "Violation"


def violations(graph: Graph) -> list[Violation]:
    """Every way ``graph`` fails the VRM shapes, sorted; empty when it conforms."""
    report = _run(graph)
    found: set[Violation] = set()
    # Only the report's own results: pyshacl also types the nested details of sh:node and sh:or
    # failures as results, and those repeat, less clearly, what the outer result says.
    for result in report.objects(None, SH.result):
        focus = report.value(result, SH.focusNode)
        if focus is None:
            continue
        messages = sorted(str(m) for m in report.objects(result, SH.resultMessage)
                          if isinstance(m, Literal))
        found.add(Violation(
            focus=focus,
            path=_term_text(report.value(result, SH.resultPath)),
            message=messages[0] if messages else "does not conform",
            severity=_severity(report.value(result, SH.resultSeverity)),
            where=describe_node(graph, focus),
        ))
    return sorted(found, key=lambda v: (v.where, v.path or "", v.message))


def conforms(graph: Graph) -> bool:
    return not any(v.severity == "Violation" for v in violations(graph))


def validate(graph: Graph) -> None:
    """Raise :class:`ShapeViolation` naming each focus node, property and problem, if any."""
    found = [v for v in violations(graph) if v.severity == "Violation"]
    if found:
        raise ShapeViolation(found)

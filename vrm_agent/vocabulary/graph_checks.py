"""The SHACL shapes compiled into checks over a whole graph, so records need no pyshacl.

The daemon validates every record it writes (agreement records with their ODRL policy and
signatures, audit events, terms, ...). pyshacl and the SPARQL engine it loads cost some 8 MB of
resident memory and much of an approved request's CPU; this module evaluates the SHACL-core
constraints the VRM shapes use (cardinality, value type, ranges, strings, sh:in, sh:hasValue,
property pairs, sh:node and the logical sh:or / sh:and / sh:xone / sh:not, targets by class, by
subject or object of a property, or by node) over an rdflib graph, and reports what pyshacl
would: the same focus nodes, paths, messages and severities.

Anything else is refused: a shapes graph using another feature raises :class:`NotCompilable` when
compiled, and a graph on which pyshacl would stop with an error (a blank node compared by
sh:lessThan, values rdflib cannot order) raises :class:`Undecided` when checked. Either way the
caller asks pyshacl, the reference, so a verdict is never guessed. The tests hold the two to the
same verdicts on valid and broken records of every kind.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal
from functools import cache

from rdflib import RDF, RDFS, BNode, Graph, Literal, URIRef
from rdflib.collection import Collection
from rdflib.namespace import SH, XSD
from rdflib.term import Node

from vrm_agent.vocabulary.compiled import NotCompilable
from vrm_agent.vocabulary.html import curie
from vrm_agent.vocabulary.validation import Violation, describe_node

__all__ = ["NotCompilable", "Undecided", "graph_violations"]

# What a shape may say besides its constraints: names, documentation, and where it applies.
_DESCRIPTIVE = {RDF.type, RDFS.label, RDFS.comment, SH.name, SH.description, SH.message,
                SH.order, SH.severity}
_TARGETS = {SH.targetClass, SH.targetObjectsOf, SH.targetSubjectsOf, SH.targetNode}
# Parameters that pyshacl accepts once per shape; a second value is refused here, not guessed.
_SINGLE = {SH.minCount, SH.maxCount, SH.nodeKind, SH.minLength, SH.maxLength, SH.minInclusive,
           SH.maxInclusive, SH.minExclusive, SH.maxExclusive, SH["in"], SH.path}
# Nested shapes deeper than this are left to pyshacl (the VRM shapes nest three deep at most).
_MAX_DEPTH = 16

_NODE_KINDS = {
    SH.IRI: (URIRef,), SH.Literal: (Literal,), SH.BlankNode: (BNode,),
    SH.BlankNodeOrIRI: (BNode, URIRef), SH.IRIOrLiteral: (URIRef, Literal),
    SH.BlankNodeOrLiteral: (BNode, Literal),
}
# The datatypes whose lexical forms rdflib parses into these Python types; a literal of one of
# them whose value is of another type (or None) is ill-typed.
_VALUE_TYPES: dict[URIRef, type | tuple[type, ...]] = {
    XSD.string: (str, bytes), RDF.langString: (str, bytes), XSD.integer: int,
    XSD.float: float, XSD.decimal: Decimal, XSD.boolean: bool, XSD.date: date, XSD.time: time,
    XSD.dateTime: datetime,
}


# Each range parameter: whether the value's order against the bound satisfies it, and its sign.
_RANGES: dict[URIRef, tuple[Callable[[int], bool], str]] = {
    SH.minInclusive: (lambda order: order >= 0, ">="),
    SH.minExclusive: (lambda order: order > 0, ">"),
    SH.maxInclusive: (lambda order: order <= 0, "<="),
    SH.maxExclusive: (lambda order: order < 0, "<"),
}


class Undecided(Exception):
    """pyshacl would stop on this graph rather than decide: leave it to pyshacl."""


@dataclass(frozen=True)
class _Result:
    focus: Node
    path: URIRef | None
    message: str


# A constraint: given the graph, the focus node and its value nodes, one generic message per
# value (or per focus) that fails it; empty when it holds.
_Constraint = Callable[[Graph, Node, Sequence[Node], int], list[str]]


@dataclass
class _Shape:
    node: Node
    path: URIRef | None  # property shapes: the predicate; node shapes: None
    messages: tuple[str, ...]
    constraints: list[_Constraint]
    properties: list[_Shape]

    def results(self, graph: Graph, focus: Node, depth: int = 0) -> list[_Result]:
        if depth > _MAX_DEPTH:
            raise Undecided("shapes nested too deep")
        values: Sequence[Node] = (
            (focus,) if self.path is None else tuple(graph.objects(focus, self.path))
        )
        found: list[_Result] = []
        for constraint in self.constraints:
            for generic in constraint(graph, focus, values, depth):
                message = min(self.messages) if self.messages else generic
                found.append(_Result(focus, self.path, message))
        for prop in self.properties:
            for value in values:
                found += prop.results(graph, value, depth + 1)
        return found

    def conforms(self, graph: Graph, focus: Node, depth: int) -> bool:
        return not self.results(graph, focus, depth + 1)


# --- value comparisons, as pyshacl makes them -------------------------------------------------

def _is_text(node: Node) -> bool:
    return isinstance(node, URIRef) or (isinstance(node, Literal) and isinstance(node.value, str))


def _order(value: Literal, bound: Literal) -> int | None:
    """-1, 0 or 1 as ``value`` is below, equal to or above ``bound``; None when incomparable."""
    try:
        if value.eq(bound):
            return 0
        if isinstance(value.value, (datetime, time)):
            # rdflib would force an order on these; pyshacl compares the Python values.
            if value.value == bound.value:
                return 0
            return 1 if value.value > bound.value else -1
        return 1 if value > bound else -1
    except (TypeError, NotImplementedError):
        return None


def _range(bound: Literal, holds: Callable[[int], bool], text: str) -> _Constraint:
    bound_is_text = isinstance(bound.value, str)

    def check(graph: Graph, focus: Node, values: Sequence[Node], depth: int) -> list[str]:
        failed = []
        for value in values:
            ok = False
            if isinstance(value, Literal) and isinstance(value.value, str) == bound_is_text:
                order = _order(value, bound)
                ok = order is not None and holds(order)
            if not ok:
                failed.append(f"Value is not {text} {bound}")
        return failed

    return check


def _pair(other: URIRef, strict: bool) -> _Constraint:
    """sh:lessThan / sh:lessThanOrEquals against the focus node's values of ``other``."""
    def plain(node: Node) -> object:
        if isinstance(node, BNode):
            raise Undecided("a blank node compared by a property pair")
        if isinstance(node, URIRef):
            return str(node)
        if isinstance(node, Literal) and isinstance(node.value, str):
            return node.value
        return node

    def check(graph: Graph, focus: Node, values: Sequence[Node], depth: int) -> list[str]:
        failed = []
        bounds = list(graph.objects(focus, other))
        for value in values:
            mine = plain(value)
            for bound in bounds:
                theirs = plain(bound)
                if _is_text(value) != _is_text(bound):
                    failed.append(f"Value is not comparable with {curie(other)}")
                    continue
                try:
                    ok = mine < theirs if strict else mine <= theirs  # type: ignore[operator]
                except TypeError as exc:
                    raise Undecided(str(exc)) from exc
                if not ok:
                    failed.append(f"Value is not {'<' if strict else '<='} {curie(other)}")
        return failed

    return check


# --- the constraints ----------------------------------------------------------------------------

def _each(test: Callable[[Graph, Node], bool], text: str) -> _Constraint:
    """A constraint on each value node by itself."""
    def check(graph: Graph, focus: Node, values: Sequence[Node], depth: int) -> list[str]:
        return [text for value in values if not test(graph, value)]

    return check


def _has_datatype(rule: URIRef) -> Callable[[Graph, Node], bool]:
    def test(graph: Graph, value: Node) -> bool:
        if not isinstance(value, Literal):
            return False
        if value.datatype == rule:
            if getattr(value, "ill_typed", None) is True:
                return False
            expected = _VALUE_TYPES.get(rule)
            return expected is None or isinstance(value.value, expected)
        if rule == RDFS.Literal:
            return True
        if rule == RDFS.Datatype:
            return value.datatype is not None
        if value.datatype is None and value.language is None and rule == XSD.string:
            return isinstance(value.value, (str, bytes))
        if rule == RDF.langString and value.language:
            return isinstance(value.value, (str, bytes))
        return False

    return test


def _is_instance(cls: Node) -> Callable[[Graph, Node], bool]:
    def test(graph: Graph, value: Node) -> bool:
        if isinstance(value, Literal):
            return False
        return any(kind == cls or cls in graph.transitive_objects(kind, RDFS.subClassOf)
                   for kind in graph.objects(value, RDF.type))

    return test


def _text_of(value: Node) -> str:
    if isinstance(value, Literal) and value.value is not None and value.datatype in (
            None, RDF.langString, XSD.string):
        return str(value.value)
    return str(value)


def _length(bound: int, at_least: bool) -> _Constraint:
    def test(graph: Graph, value: Node) -> bool:
        if at_least and bound == 0:
            return True
        if isinstance(value, BNode):
            return False
        size = len(_text_of(value))
        return size >= bound if at_least else size <= bound

    return _each(test, f"String length not {'>=' if at_least else '<='} {bound}")


def _pattern(expression: str) -> _Constraint:
    compiled = re.compile(expression)
    return _each(lambda g, v: not isinstance(v, BNode) and compiled.search(_text_of(v)) is not None,
                 f"Value does not match pattern {expression!r}")


def _count(bound: int, at_least: bool) -> _Constraint:
    def check(graph: Graph, focus: Node, values: Sequence[Node], depth: int) -> list[str]:
        ok = len(values) >= bound if at_least else len(values) <= bound
        return [] if ok else [f"{'Less' if at_least else 'More'} than {bound} values"]

    return check


def _has_value(wanted: Node) -> _Constraint:
    def check(graph: Graph, focus: Node, values: Sequence[Node], depth: int) -> list[str]:
        return [] if wanted in values else [f"Missing the value {curie(wanted)}"]

    return check


def _logical(kind: URIRef, members: Sequence[_Shape]) -> _Constraint:
    def holds(graph: Graph, value: Node, depth: int) -> bool:
        passed = sum(member.conforms(graph, value, depth) for member in members)
        if kind == SH["or"]:
            return passed > 0
        if kind == SH["and"]:
            return passed == len(members)
        if kind == SH.xone:
            return passed == 1
        return passed == 0  # sh:not, of its one shape

    def check(graph: Graph, focus: Node, values: Sequence[Node], depth: int) -> list[str]:
        return [f"Value does not conform to the {curie(kind)} of its shape"
                for value in values if not holds(graph, value, depth)]

    return check


# --- compiling the shapes graph -----------------------------------------------------------------

class _Compiler:
    def __init__(self, shapes: Graph) -> None:
        self.shapes = shapes
        self.done: dict[Node, _Shape] = {}

    def single(self, node: Node, name: URIRef) -> None:
        count = len(list(self.shapes.objects(node, name)))  # type: ignore[arg-type]
        if count != 1:
            raise NotCompilable(f"{curie(name)} given {count} times")

    def shape(self, node: Node) -> _Shape:
        if node in self.done:
            return self.done[node]
        shapes = self.shapes
        compiled = _Shape(node, None, (), [], [])
        self.done[node] = compiled  # before the parts: a shape may refer to itself
        used = set(shapes.predicates(node))  # type: ignore[arg-type]
        for name in used & _SINGLE:
            self.single(node, name)
        for severity in shapes.objects(node, SH.severity):  # type: ignore[arg-type]
            if severity != SH.Violation:
                raise NotCompilable("a severity other than sh:Violation")
        if SH.path in used:
            path = shapes.value(node, SH.path)  # type: ignore[arg-type]
            if not isinstance(path, URIRef):
                raise NotCompilable("only predicate paths are compiled")
            compiled.path = path
        compiled.messages = tuple(str(m) for m in shapes.objects(node, SH.message))  # type: ignore[arg-type]
        for name in sorted(used - _DESCRIPTIVE - _TARGETS - {SH.path}):
            for argument in shapes.objects(node, name):  # type: ignore[arg-type]
                if name == SH.property:
                    prop = self.shape(argument)
                    if prop.path is None:
                        raise NotCompilable("a sh:property without sh:path")
                    compiled.properties.append(prop)
                else:
                    compiled.constraints.append(self.constraint(name, argument, compiled))
        return compiled

    def members(self, head: Node) -> list[_Shape]:
        return [self.shape(member) for member in Collection(self.shapes, head)]  # type: ignore[arg-type]

    def constraint(self, name: URIRef, argument: Node, shape: _Shape) -> _Constraint:
        number = argument.toPython() if isinstance(argument, Literal) else None
        if name in (SH.minCount, SH.maxCount, SH.minLength, SH.maxLength):
            if not isinstance(number, int) or isinstance(number, bool) or number < 0:
                raise NotCompilable(f"{curie(name)} is not a count")
            if name in (SH.minCount, SH.maxCount):
                return _count(number, name == SH.minCount)
            return _length(number, name == SH.minLength)
        if name == SH.datatype and isinstance(argument, URIRef):
            return _each(_has_datatype(argument),
                         f"Value is not Literal with datatype {curie(argument)}")
        if name == SH.nodeKind and argument in _NODE_KINDS:
            kinds = _NODE_KINDS[argument]  # type: ignore[index]
            return _each(lambda g, v: isinstance(v, kinds), f"Value is not a {curie(argument)}")
        if name == SH["class"]:
            return _each(_is_instance(argument), f"Value is not of class {curie(argument)}")
        if name == SH["in"]:
            allowed = set(Collection(self.shapes, argument))  # type: ignore[arg-type]
            return _each(lambda g, v: v in allowed, "Value is not in the list")
        if name == SH.hasValue:
            return _has_value(argument)
        if name == SH.pattern and isinstance(argument, Literal):
            return _pattern(str(argument))
        if name in _RANGES and isinstance(argument, Literal):
            holds, text = _RANGES[name]
            return _range(argument, holds, text)
        if name in (SH.lessThan, SH.lessThanOrEquals) and isinstance(argument, URIRef):
            if shape.path is None:
                raise NotCompilable(f"{curie(name)} on a node shape")
            return _pair(argument, name == SH.lessThan)
        if name == SH.node:
            return _logical(SH["and"], [self.shape(argument)])
        if name in (SH["or"], SH["and"], SH.xone):
            return _logical(name, self.members(argument))
        if name == SH["not"]:
            return _logical(name, [self.shape(argument)])
        raise NotCompilable(f"{curie(name)} {argument}")


@dataclass(frozen=True)
class _Target:
    shape: _Shape
    classes: tuple[Node, ...]
    objects_of: tuple[Node, ...]
    subjects_of: tuple[Node, ...]
    nodes: tuple[Node, ...]

    def focus_nodes(self, graph: Graph) -> set[Node]:
        found: set[Node] = set(self.nodes)
        for cls in self.classes:
            found.update(graph.subjects(RDF.type, cls))
            for sub in graph.transitive_subjects(RDFS.subClassOf, cls):
                found.update(graph.subjects(RDF.type, sub))
        for prop in self.objects_of:
            found.update(graph.objects(None, prop))  # type: ignore[arg-type]
        for prop in self.subjects_of:
            found.update(graph.subjects(prop, None))  # type: ignore[arg-type]
        return found


@cache
def _targets(shapes_id: int, shapes: Graph) -> tuple[_Target, ...]:
    compiler = _Compiler(shapes)
    if (None, RDF.type, RDFS.Class) in shapes:
        raise NotCompilable("a shape that is also a class (an implicit target)")
    targeted = {s for name in _TARGETS for s in shapes.subjects(name, None)}  # type: ignore[arg-type]
    found = []
    for node in sorted(targeted, key=str):
        def objects(name: URIRef, node: Node = node) -> tuple[Node, ...]:
            return tuple(shapes.objects(node, name))  # type: ignore[arg-type]

        found.append(_Target(compiler.shape(node), objects(SH.targetClass),
                             objects(SH.targetObjectsOf), objects(SH.targetSubjectsOf),
                             objects(SH.targetNode)))
    return tuple(found)


def compile_shapes(shapes: Graph) -> None:
    """Compile ``shapes`` now (cached); raises NotCompilable when pyshacl is needed for them."""
    _targets(id(shapes), shapes)


def graph_violations(graph: Graph, shapes: Graph) -> list[Violation]:
    """Every way ``graph`` fails ``shapes``, as :func:`validation.violations` lists them.

    Raises :class:`NotCompilable` or :class:`Undecided` when pyshacl must decide instead.
    """
    found: set[Violation] = set()
    for target in _targets(id(shapes), shapes):
        for focus in target.focus_nodes(graph):
            for result in target.shape.results(graph, focus):
                found.add(Violation(
                    focus=result.focus,
                    path=curie(result.path) if result.path is not None else None,
                    message=result.message, severity="Violation",
                    where=describe_node(graph, result.focus)))
    return sorted(found, key=lambda v: (v.where, v.path or "", v.message))


def focus_count(graph: Graph, shapes: Graph) -> int:
    """How many (shape, focus node) pairs ``graph`` gives (for tests that want real coverage)."""
    return sum(len(t.focus_nodes(graph)) for t in _targets(id(shapes), shapes))

"""SHACL shapes compiled into plain checks, for the records that come by the hundred thousand.

pyshacl validates 1,000 transactions in about 0.36 s, so 100,000 would cost 36 s of validation
alone. This module reads the same shapes graph and turns each node shape whose property shapes use
only SHACL-core constraints (minCount, maxCount, datatype, nodeKind, in, hasValue, pattern,
minLength, maxLength, minInclusive, maxInclusive, class) into a function over a plain record:
``{predicate IRI: [Term, ...]}``. A shape that needs more (sh:or, sh:node, sh:not, property pairs)
is refused at compile time, so the caller falls back to a fuller check rather than skip a
constraint. The tests hold the two to pyshacl's verdicts.

Whole graphs (one record document, with its blank nodes and nested shapes) go through
:func:`validate_graph`, which uses :mod:`vrm_agent.vocabulary.graph_checks`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from functools import cache

from rdflib import RDF, RDFS, Graph, Literal, URIRef
from rdflib.namespace import SH, XSD

from vrm_agent.vocabulary.html import curie
from vrm_agent.vocabulary.validation import ShapeViolation, Violation

SUPPORTED = {
    SH.path, SH.minCount, SH.maxCount, SH.datatype, SH.nodeKind, SH["in"], SH.hasValue,
    SH.pattern, SH.minLength, SH.maxLength, SH.minInclusive, SH.maxInclusive, SH["class"],
    SH.message, SH.name, SH.description, SH.severity, RDF.type, SH.lessThanOrEquals, SH.node,
}
# What a node shape named by sh:node may say and still be compiled: alternative datatypes
# (sh:or of sh:datatype) and a minimum length, as vrmsh:Text does.
_NODE_SHAPE_KEYS = {RDF.type, RDFS.label, RDFS.comment, SH["or"], SH.minLength}


def _node_shape(shapes: Graph, node: object) -> tuple[frozenset[str], int]:
    """(allowed datatypes, minimum length) of a simple node shape, or NotCompilable."""
    from rdflib.collection import Collection

    used = set(shapes.predicates(node))  # type: ignore[arg-type]
    if used - _NODE_SHAPE_KEYS or SH["or"] not in used:
        raise NotCompilable(f"{SH.node} to a shape that is not a choice of datatypes")
    datatypes = set()
    for member in Collection(shapes, shapes.value(node, SH["or"])):  # type: ignore[arg-type]
        if set(shapes.predicates(member)) != {SH.datatype}:
            raise NotCompilable(f"{SH.node} to a shape that is not a choice of datatypes")
        datatypes.add(str(shapes.value(member, SH.datatype)))
    min_len = shapes.value(node, SH.minLength)  # type: ignore[arg-type]
    return frozenset(datatypes), int(min_len) if min_len is not None else 0
_DATE = re.compile(r"^-?\d{4,}-\d{2}-\d{2}(Z|[+-]\d{2}:\d{2})?$")
_DATETIME = re.compile(r"^-?\d{4,}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})?$")
_DECIMAL = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)$")


@dataclass(frozen=True)
class Term:
    """One RDF term as plain data: an IRI, a blank node, or a literal with its datatype."""

    kind: str  # "iri", "bnode" or "literal"
    value: str
    datatype: str | None = None  # literals: the datatype IRI (xsd:string when plain)
    language: str | None = None

    @classmethod
    def iri(cls, value: str) -> Term:
        return cls("iri", value)

    @classmethod
    def literal(cls, value: str, datatype: str = str(XSD.string)) -> Term:
        return cls("literal", value, datatype)


Record = Mapping[str, Sequence[Term]]
Types = Mapping[str, set[str]]  # node IRI -> its rdf:types, for sh:class
Check = Callable[[str, Record, Types], list[Violation]]


class NotCompilable(Exception):
    """The shape uses a constraint this module does not evaluate; use pyshacl for it."""


def _well_formed(value: str, datatype: str) -> bool:
    if datatype == str(XSD.date):
        return bool(_DATE.match(value))
    if datatype == str(XSD.dateTime):
        return bool(_DATETIME.match(value))
    if datatype == str(XSD.decimal):
        return bool(_DECIMAL.match(value))
    if datatype == str(XSD.integer):
        return bool(re.match(r"^[+-]?\d+$", value))
    if datatype == str(XSD.boolean):
        return value in ("true", "false", "1", "0")
    return True


def _number(term: Term) -> Decimal | None:
    try:
        return Decimal(term.value) if term.kind == "literal" else None
    except InvalidOperation:
        return None


def _property_check(shapes: Graph, prop: object) -> Check:
    used = set(shapes.predicates(prop))  # type: ignore[arg-type]
    unsupported = used - SUPPORTED
    if unsupported:
        raise NotCompilable(", ".join(sorted(str(p) for p in unsupported)))
    path = shapes.value(prop, SH.path)  # type: ignore[arg-type]
    if not isinstance(path, URIRef):
        raise NotCompilable("only predicate paths are compiled")
    value = lambda p: shapes.value(prop, p)  # type: ignore[arg-type]  # noqa: E731
    min_count, max_count = value(SH.minCount), value(SH.maxCount)
    datatype, node_kind, has_value = value(SH.datatype), value(SH.nodeKind), value(SH.hasValue)
    pattern, min_len, max_len = value(SH.pattern), value(SH.minLength), value(SH.maxLength)
    min_inc, max_inc, cls = value(SH.minInclusive), value(SH.maxInclusive), value(SH["class"])
    allowed: set[str] | None = None
    if value(SH["in"]) is not None:
        from rdflib.collection import Collection

        allowed = {str(v) for v in Collection(shapes, value(SH["in"]))}
    regex = re.compile(str(pattern)) if pattern is not None else None
    message = str(value(SH.message) or f"constraint on {path} violated")
    path_text = str(path)
    path_curie = curie(path)
    kinds = {
        SH.IRI: {"iri"}, SH.Literal: {"literal"}, SH.BlankNode: {"bnode"},
        SH.BlankNodeOrIRI: {"iri", "bnode"}, SH.IRIOrLiteral: {"iri", "literal"},
        SH.BlankNodeOrLiteral: {"bnode", "literal"},
    }.get(node_kind) if node_kind is not None else None  # type: ignore[call-overload]
    other = value(SH.lessThanOrEquals)
    class_text = str(cls) if cls is not None else None
    node_shape = _node_shape(shapes, value(SH.node)) if value(SH.node) is not None else None

    def comparable(term: Term) -> Decimal | str:
        number = _number(term)
        return number if number is not None else term.value  # ISO dates compare as text

    def check(focus: str, record: Record, types: Types) -> list[Violation]:
        terms = record.get(path_text, ())
        problems: list[str] = []
        if min_count is not None and len(terms) < int(min_count):
            problems.append("too few values")
        if max_count is not None and len(terms) > int(max_count):
            problems.append("too many values")
        bounds = record.get(str(other), ()) if other is not None else ()
        for term in terms:
            if class_text is not None and class_text not in types.get(term.value, ()):
                problems.append(f"{term.value} is not a {class_text}")
            if any(comparable(term) > comparable(bound) for bound in bounds):  # type: ignore[operator]
                problems.append(f"{term.value!r} is after {other}")
            if kinds is not None and term.kind not in kinds:
                problems.append(f"{term.value!r} is not of the right kind")
            if datatype is not None and (
                term.kind != "literal" or term.datatype != str(datatype)
                or not _well_formed(term.value, str(datatype))
            ):
                problems.append(f"{term.value!r} is not a well-formed {datatype}")
            if allowed is not None and term.value not in allowed:
                problems.append(f"{term.value!r} is not an allowed value")
            if has_value is not None and str(has_value) not in {t.value for t in terms}:
                problems.append("the required value is missing")
            if regex is not None and (term.kind == "bnode" or not regex.search(term.value)):
                problems.append(f"{term.value!r} does not match {pattern}")
            if min_len is not None and len(term.value) < int(min_len):
                problems.append(f"{term.value!r} is too short")
            if max_len is not None and len(term.value) > int(max_len):
                problems.append(f"{term.value!r} is too long")
            if node_shape is not None and (
                term.kind != "literal" or term.datatype not in node_shape[0]
                or len(term.value) < node_shape[1]
                or not _well_formed(term.value, term.datatype or "")
            ):
                problems.append(f"{term.value!r} does not conform to {value(SH.node)}")
            number = _number(term) if (min_inc is not None or max_inc is not None) else None
            if min_inc is not None and (number is None or number < Decimal(str(min_inc))):
                problems.append(f"{term.value!r} is below {min_inc}")
            if max_inc is not None and (number is None or number > Decimal(str(max_inc))):
                problems.append(f"{term.value!r} is above {max_inc}")
        if not problems:
            return []
        return [Violation(focus=URIRef(focus), path=path_curie,
                          message=f"{message} ({problems[0]})", severity="Violation")]

    return check


@cache
def _compiled(shapes_id: int, shapes: Graph, target_class: str) -> tuple[Check, ...]:
    checks: list[Check] = []
    found = False
    for shape in shapes.subjects(SH.targetClass, URIRef(target_class)):
        found = True
        extra = set(shapes.predicates(shape)) - {SH.targetClass, SH.property, RDF.type,
                                                  SH.message, SH.name, SH.description}
        if extra:
            raise NotCompilable(", ".join(sorted(str(p) for p in extra)))
        checks += [_property_check(shapes, prop) for prop in shapes.objects(shape, SH.property)]
    if not found:
        raise NotCompilable(f"no shape targets {target_class}")
    return tuple(checks)


def compiled_checks(shapes: Graph, target_class: str) -> tuple[Check, ...]:
    """The checks for records of ``target_class`` (raises NotCompilable when pyshacl is needed)."""
    return _compiled(id(shapes), shapes, target_class)


def check_records(
    shapes: Graph, target_class: str, records: Mapping[str, Record], types: Types | None = None
) -> list[Violation]:
    checks = compiled_checks(shapes, target_class)
    known = types or {}
    return [v for focus, record in records.items() for check in checks
            for v in check(focus, record, known)]


def validate_records(
    shapes: Graph, target_class: str, records: Mapping[str, Record], types: Types | None = None
) -> None:
    problems = check_records(shapes, target_class, records, types)
    if problems:
        raise ShapeViolation(problems)


def term_of(node: object) -> Term:
    """An rdflib term as a plain Term (for the differential tests and small graphs)."""
    if isinstance(node, URIRef):
        return Term.iri(str(node))
    if isinstance(node, Literal):
        datatype = str(node.datatype) if node.datatype else (
            str(RDF.langString) if node.language else str(XSD.string))
        return Term("literal", str(node), datatype, node.language)
    return Term("bnode", str(node))


def validate_graph(graph: Graph) -> None:
    """Validate a whole graph with the shapes compiled into plain checks
    (:mod:`vrm_agent.vocabulary.graph_checks`), which give pyshacl's verdicts without loading
    it; pyshacl decides only what those checks leave to it (shapes using other SHACL features,
    or a graph pyshacl itself would stop on)."""
    from vrm_agent.vocabulary import shapes_graph
    from vrm_agent.vocabulary.graph_checks import Undecided, graph_violations

    try:
        found = graph_violations(graph, shapes_graph())
    except (NotCompilable, Undecided):
        from vrm_agent.vocabulary.validation import validate

        validate(graph)
        return
    problems = [v for v in found if v.severity == "Violation"]
    if problems:
        raise ShapeViolation(problems)

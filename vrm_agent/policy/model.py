"""ODRL 2.2 as plain, frozen data: policies, rules, constraints, a request and the state of the
world they are judged in. Every IRI is a full IRI; nothing here reads or writes anything.

A rule keeps what could not be read from its source in ``problems``: the evaluator treats a
rule with problems as one it cannot decide (a permission that never applies, a prohibition that
always does), so a rule that was misread can only ever share less.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType

ODRL = "http://www.w3.org/ns/odrl/2/"
XSD = "http://www.w3.org/2001/XMLSchema#"
RDF_LANG_STRING = "http://www.w3.org/1999/02/22-rdf-syntax-ns#langString"
IRI = "@id"  # the kind of a Value that is an IRI, not a literal

RULE_KINDS = ("permission", "prohibition", "obligation", "duty")
LOGICAL_OPERATORS = ("and", "or", "xone", "andSequence")
CONFLICT_STRATEGIES = ("perm", "prohibit", "invalid")


@dataclass(frozen=True, slots=True)
class Value:
    """One operand value: an IRI (``kind == IRI``) or a literal with its datatype IRI."""

    text: str
    kind: str = IRI

    @property
    def is_iri(self) -> bool:
        return self.kind == IRI

    @classmethod
    def iri(cls, text: str) -> Value:
        return cls(text, IRI)

    @classmethod
    def literal(cls, text: str, datatype: str = XSD + "string") -> Value:
        return cls(text, datatype)


@dataclass(frozen=True, slots=True)
class Constraint:
    """``leftOperand operator rightOperand`` (all IRIs but the right, which is a list of
    values: one for most operators, several for isAnyOf, isAllOf, isNoneOf)."""

    left: str
    operator: str
    right: tuple[Value, ...]
    uid: str | None = None
    data_type: str | None = None  # odrl:dataType, when the constraint states one
    unit: str | None = None
    right_reference: tuple[str, ...] = ()  # odrl:rightOperandReference: cannot be followed
    problems: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class LogicalConstraint:
    """``and``, ``or``, ``xone`` or ``andSequence`` over other constraints."""

    operator: str
    operands: tuple[Constraint | LogicalConstraint, ...]
    uid: str | None = None
    problems: tuple[str, ...] = ()


AnyConstraint = Constraint | LogicalConstraint


@dataclass(frozen=True, slots=True)
class Rule:
    """A permission, prohibition, obligation or duty.

    ``action`` None means any action (a rule that names none); ``targets`` empty means any
    asset; ``assignees`` empty means anyone. ``duties`` are a permission's conditions
    (odrl:duty), ``remedies`` a prohibition's, ``consequences`` a duty's or obligation's."""

    kind: str
    uid: str | None = None
    action: str | None = None
    refinements: tuple[AnyConstraint, ...] = ()  # odrl:refinement of the action
    targets: tuple[str, ...] = ()
    assignees: tuple[str, ...] = ()
    assigners: tuple[str, ...] = ()
    constraints: tuple[AnyConstraint, ...] = ()
    duties: tuple[Rule, ...] = ()
    remedies: tuple[Rule, ...] = ()
    consequences: tuple[Rule, ...] = ()
    problems: tuple[str, ...] = ()
    # Assignees that are party collections: whether someone belongs to one is for the state of
    # the world to say, and where it says nothing that cannot be decided.
    collections: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Policy:
    """An ODRL policy, with policy-level assigner, assignee, target and action already copied
    into each rule (ODRL 2.2 Information Model, 2.7.1)."""

    uid: str
    type: str  # Set, Offer, Agreement, Request, Privacy, Ticket, Assertion (local names)
    rules: tuple[Rule, ...] = ()
    conflict: str = "invalid"  # the Information Model's default when none is stated
    title: str | None = None
    problems: tuple[str, ...] = ()  # policy-level: an unknown profile, inheritFrom, ...

    def of_kind(self, kind: str) -> tuple[Rule, ...]:
        return tuple(r for r in self.rules if r.kind == kind)


def _frozen(values: Mapping[str, tuple[Value, ...]] | None) -> Mapping[str, tuple[Value, ...]]:
    return MappingProxyType(dict(values or {}))


@dataclass(frozen=True, slots=True)
class Request:
    """What someone asks to do: ``assignee`` wants to perform ``action`` on ``target``.

    ``values`` states left operand values that come with the request (its purpose, how long,
    who receives the data): left operand IRI -> values."""

    action: str
    assignee: str | None = None
    target: str | None = None
    values: Mapping[str, tuple[Value, ...]] = field(default_factory=dict)
    uid: str | None = None  # the odrl:Request
    rule_uid: str | None = None  # its permission, for the report
    assigner: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "values", _frozen(self.values))


@dataclass(frozen=True, slots=True)
class DutyState:
    """What is known of a duty: ``performed`` True, False (not performed when it had to be)
    or None (not known yet), and when it was performed."""

    performed: bool | None
    at: datetime | None = None


@dataclass(frozen=True, slots=True)
class World:
    """The state of the world a request is judged in.

    ``now`` must carry a time zone. ``part_of`` maps a party or asset to the collections it
    belongs to (odrl:partOf); ``duties`` maps a duty's uid to what is known of it; ``values``
    gives left operand values the world knows (count, spatial, ...), left operand IRI ->
    values. A left operand that neither the request nor the world supplies cannot be decided."""

    now: datetime
    part_of: Mapping[str, frozenset[str]] = field(default_factory=dict)
    duties: Mapping[str, DutyState] = field(default_factory=dict)
    values: Mapping[str, tuple[Value, ...]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.now.tzinfo is None or self.now.utcoffset() is None:
            raise ValueError("the state of the world needs a time with a time zone")
        object.__setattr__(self, "part_of", MappingProxyType(
            {k: frozenset(v) for k, v in self.part_of.items()}))
        object.__setattr__(self, "duties", MappingProxyType(dict(self.duties)))
        object.__setattr__(self, "values", _frozen(self.values))

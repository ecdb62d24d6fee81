"""ODRL 2.2 policies as plain, frozen data: what vendors ask for, what the person's terms say, and
what both agree. No I/O and no RDF here; ``wire`` reads and writes the JSON-LD form."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import timedelta

from vrm_agent.negotiation.durations import duration_of

ODRL = "http://www.w3.org/ns/odrl/2/"
DPV = "https://w3id.org/dpv#"
PD = "https://w3id.org/dpv/pd#"
XSD = "http://www.w3.org/2001/XMLSchema#"

POLICY_TYPES = ("Set", "Offer", "Request", "Agreement")
RULE_KINDS = ("permission", "prohibition", "obligation")
OPERATORS = ("eq", "neq", "lt", "lteq", "gt", "gteq", "isA", "isAnyOf", "isNoneOf", "isAllOf")
CONFLICTS = ("perm", "prohibit", "invalid")

# Actions that need the vendor to read the data, and so a Read grant on the pod; every other
# agreed action is a promise the vendor makes, not a pod operation.
USE_INCLUDES = {"use", "read", "display", "aggregate", "derive"}


def is_action(name: str) -> bool:
    """An action of the ODRL 2.2 vocabulary, by local name or full IRI."""
    from vrm_agent.policy.vocabulary import vocabulary

    return vocabulary().is_action(name if ":" in name else ODRL + name)


@dataclass(frozen=True)
class Constraint:
    """``left operator right``: left is an ODRL left operand's local name (purpose, dateTime,
    elapsedTime, recipient); right is an IRI, a literal, or a tuple of them for set operators."""

    left: str
    operator: str
    right: str | tuple[str, ...]

    def values(self) -> tuple[str, ...]:
        return self.right if isinstance(self.right, tuple) else (self.right,)


@dataclass(frozen=True)
class Rule:
    kind: str  # permission, prohibition, obligation (or duty, on a permission)
    action: str
    targets: tuple[str, ...] = ()  # pd: category IRIs or resource URLs; empty = any
    constraints: tuple[Constraint, ...] = ()
    duties: tuple[Rule, ...] = ()

    def constraint(self, left: str) -> Constraint | None:
        return next((c for c in self.constraints if c.left == left), None)

    def without(self, left: str) -> Rule:
        return replace(self, constraints=tuple(c for c in self.constraints if c.left != left))


@dataclass(frozen=True)
class Policy:
    uid: str
    type: str
    rules: tuple[Rule, ...] = ()
    assigner: str | None = None
    assignee: str | None = None
    conflict: str = "prohibit"
    title: str | None = None
    consideration: str | None = None  # what the vendor offers in return, in its own words

    def of_kind(self, kind: str) -> tuple[Rule, ...]:
        return tuple(r for r in self.rules if r.kind == kind)

    @property
    def permissions(self) -> tuple[Rule, ...]:
        return self.of_kind("permission")

    @property
    def prohibitions(self) -> tuple[Rule, ...]:
        return self.of_kind("prohibition")

    @property
    def obligations(self) -> tuple[Rule, ...]:
        return self.of_kind("obligation")


@dataclass(frozen=True)
class Ask:
    """One item of a request: this target, for this action and purpose, for this long."""

    target: str
    action: str
    purpose: str | None
    duration: timedelta | None
    duties: tuple[Rule, ...] = field(default=())
    # Narrower actions the terms forbid (use, but not distribute): stated in the agreement as
    # its prohibitions, so the vendor agrees to them too.
    excluded: tuple[str, ...] = field(default=())


def asks_of(request: Policy) -> list[Ask]:
    """A request's permissions, one item per target."""
    items = []
    for rule in request.permissions:
        purpose = rule.constraint("purpose")
        elapsed = rule.constraint("elapsedTime")
        for target in rule.targets:
            items.append(Ask(target, rule.action,
                             purpose.values()[0] if purpose else None,
                             duration_of(str(elapsed.values()[0])) if elapsed else None,
                             rule.duties))
    return items

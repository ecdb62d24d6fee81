"""Whether a policy says exactly what its author meant: every action, left operand and
operator is one ODRL defines, every value has the type its left operand needs (durations,
dates with time zones, numbers), every IRI is absolute, every DPV term exists.

``problems`` refuse a policy outright; ``warnings`` are things that are valid ODRL but that
this agent can never decide for a vendor's request (a spatial constraint, say), which it then
reads in the way that shares less.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from vrm_agent.policy.model import ODRL, AnyConstraint, Constraint, LogicalConstraint, Policy, Rule
from vrm_agent.policy.values import SET_OPERATORS_LOCAL, Undecidable, typed
from vrm_agent.policy.vocabulary import Vocabulary, vocabulary

DPV_NAMESPACES = ("https://w3id.org/dpv#", "https://w3id.org/dpv/pd#")
# Left operands the agent knows for every vendor request: the time, how long, why, for whom.
KNOWN_TO_AGENT = frozenset(ODRL + n for n in ("dateTime", "elapsedTime", "purpose",
                                              "recipient"))
RELATIVE_BASE = "https://relative.invalid/"  # what a relative IRI resolves to when read
_ABSOLUTE = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:[^\s<>\"{}|\\^`]+")
_SAFE_SCHEMES = ("http:", "https:", "urn:", "did:", "mailto:", "tag:")


@dataclass
class Findings:
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def valid(self) -> bool:
        return not self.problems


def _short(iri: str) -> str:
    for prefix, name in ((RELATIVE_BASE, ""), (ODRL, ""), ("https://w3id.org/dpv#", "dpv:"),
                         ("https://w3id.org/dpv/pd#", "pd:")):
        if iri.startswith(prefix):
            return name + iri[len(prefix):]
    return iri


def rule_label(rule: Rule, number: int) -> str:
    action = _short(rule.action) if rule.action else "any action"
    return f"{rule.kind} {number} ({action})"


class _Checker:
    def __init__(self, vocab: Vocabulary, found: Findings) -> None:
        self.vocab = vocab
        self.found = found

    def iri(self, where: str, what: str, iri: str) -> None:
        if iri.startswith(RELATIVE_BASE):
            self.found.problems.append(
                f"{where}: {what} {iri[len(RELATIVE_BASE):]!r} is a relative IRI; write the "
                "whole IRI (https://..., or a prefix such as dpv: that the context defines)")
        elif iri.startswith("file:") or not _ABSOLUTE.fullmatch(iri) or \
                not iri.startswith(_SAFE_SCHEMES):
            self.found.problems.append(f"{where}: {what} {iri!r} is not an absolute web IRI")
        elif iri.startswith(DPV_NAMESPACES) and not self.vocab.is_known_concept(iri):
            self.found.problems.append(f"{where}: {what} {_short(iri)} is not a term of the "
                                       "pinned DPV")

    def constraint(self, where: str, item: AnyConstraint, kind: str) -> None:
        if isinstance(item, LogicalConstraint):
            for problem in item.problems:
                self.found.problems.append(f"{where}: {problem}")
            for operand in item.operands:
                self.constraint(where, operand, kind)
            return
        for problem in item.problems:
            self.found.problems.append(f"{where}: {problem}")
        if item.problems:
            return
        self.operand(where, item, kind)

    def operand(self, where: str, item: Constraint, kind: str) -> None:
        left, op = item.left, item.operator
        if not self.vocab.is_left_operand(left):
            self.found.problems.append(f"{where}: unknown left operand {_short(left)!r} "
                                       "(not an ODRL 2.2 left operand)")
            return
        if not self.vocab.is_operator(op):
            self.found.problems.append(f"{where}: unknown operator {_short(op)!r}")
            return
        if item.right_reference:
            self.found.problems.append(f"{where}: rightOperandReference would have to be "
                                       "fetched; give the value itself")
        if item.unit:
            self.found.warnings.append(f"{where}: {_short(left)} has a unit; values with units "
                                       "are never compared, so the constraint cannot be decided")
        if _short(op) not in SET_OPERATORS_LOCAL and len(item.right) > 1:
            self.found.problems.append(f"{where}: {_short(op)} takes one value, not a list")
        for value in item.right:
            if value.is_iri:
                self.iri(where, f"{_short(left)} value", value.text)
            checked = value if value.is_iri or not item.data_type else type(value)(
                value.text, item.data_type)
            try:
                typed(checked, left)
            except Undecidable as exc:
                self.found.problems.append(f"{where}: {_short(left)}: {exc}")
        if _short(op) in ("eq", "neq") and any(
                v.is_iri and self.vocab.is_known_concept(v.text) for v in item.right):
            self.found.warnings.append(
                f"{where}: {_short(left)} {_short(op)} matches that exact term only, not the "
                "narrower ones below it in DPV; isA takes those in too")
        if left not in KNOWN_TO_AGENT:
            effect = ("this permission never applies" if kind == "permission" else
                      "this prohibition applies to every request" if kind == "prohibition"
                      else "this duty can never be judged")
            self.found.warnings.append(
                f"{where}: the agent never knows the {_short(left)} of a vendor's request, "
                f"so {effect} unless the state of the world supplies it")

    def rule(self, rule: Rule, where: str) -> None:
        for problem in rule.problems:
            self.found.problems.append(f"{where}: {problem}")
        if rule.kind == "permission" and rule.action is None:
            self.found.problems.append(f"{where}: a permission must name its action (use, "
                                       "read, ...); without one it would allow every action")
        if rule.action is not None and not self.vocab.is_action(rule.action):
            self.found.problems.append(f"{where}: unknown action {_short(rule.action)!r} "
                                       "(not an ODRL 2.2 action)")
        for target in rule.targets:
            self.iri(where, "target", target)
        for party in rule.assignees + rule.assigners:
            self.iri(where, "party", party)
        for item in rule.refinements + rule.constraints:
            self.constraint(where, item, rule.kind)
        for number, duty in enumerate(rule.duties + rule.remedies + rule.consequences, 1):
            self.rule(duty, f"{where}, duty {number}")


def check(policy: Policy, vocab: Vocabulary | None = None) -> Findings:
    """Every problem and warning of the policy, each one line naming the rule."""
    found = Findings()
    checker = _Checker(vocab or vocabulary(), found)
    found.problems.extend(policy.problems)
    if not policy.rules:
        found.problems.append("it states no permission, prohibition or obligation")
    counts: dict[str, int] = {}
    for rule in policy.rules:
        counts[rule.kind] = counts.get(rule.kind, 0) + 1
        checker.rule(rule, rule_label(rule, counts[rule.kind]))
    found.problems[:] = list(dict.fromkeys(found.problems))
    found.warnings[:] = list(dict.fromkeys(found.warnings))
    return found

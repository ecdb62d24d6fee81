"""The person's terms answer a vendor's request: a pure function, with a trace of why.

Each item of the request (one target, for one action and purpose, for a time) is matched against
every rule of the terms, following ODRL 2.2: a rule applies when its target, action and every
constraint hold; a permission's ``elapsedTime`` bounds how long, and a request for longer is
countered with the longest allowed. Where a permission and a prohibition both apply, the terms'
conflict strategy decides (``prohibit``: the prohibition wins; ``perm``: the permission wins;
``invalid``: the terms are void for that item, so it is refused). An item no rule decides waits
for the person.

Outcome: AGREE when every item is permitted as asked; COUNTER when some are refused or shortened
and the rest permitted; REFUSE when none is permitted; ASK_PERSON when any item is undecided
(refused items are dropped first, so the person only sees what the terms left open).
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from vrm_agent.negotiation.durations import duration_of, duration_text
from vrm_agent.negotiation.odrl import (
    DPV,
    PD,
    USE_INCLUDES,
    Ask,
    Constraint,
    Policy,
    Rule,
    asks_of,
    is_a,
)

DEFAULT_DURATION = timedelta(days=30)  # when neither request nor terms bound the time


class Outcome(enum.StrEnum):
    AGREE = "agree"
    COUNTER = "counter"
    REFUSE = "refuse"
    ASK_PERSON = "ask-person"


@dataclass(frozen=True)
class Decision:
    outcome: Outcome
    granted: tuple[Ask, ...]  # what would be agreed, with the durations allowed
    refused: tuple[Ask, ...]
    undecided: tuple[Ask, ...]
    reasons: tuple[str, ...]
    trace: tuple[str, ...]
    shortened: bool = False


def short(iri: str | None) -> str:
    if iri is None:
        return "(none)"
    for prefix, name in ((DPV, "dpv:"), (PD, "pd:")):
        if iri.startswith(prefix):
            return name + iri[len(prefix):]
    return iri


def _action_covers(rule_action: str, asked: str) -> bool:
    return rule_action == asked or (rule_action == "use" and asked in USE_INCLUDES)


def _purpose_holds(constraint: Constraint, purpose: str | None) -> bool:
    if purpose is None:
        return False
    values = constraint.values()
    match constraint.operator:
        case "eq":
            return purpose == values[0]
        case "neq":
            return purpose != values[0]
        case "isA":
            return is_a(purpose, values[0])
        case "isAnyOf":
            return any(is_a(purpose, v) for v in values)
        case "isNoneOf":
            return not any(is_a(purpose, v) for v in values)
        case "isAllOf":
            return all(is_a(purpose, v) for v in values)
    return False


def _compare(left: object, operator: str, right: object) -> bool:
    match operator:
        case "eq":
            return left == right
        case "neq":
            return left != right
        case "lt":
            return left < right  # type: ignore[operator]
        case "lteq":
            return left <= right  # type: ignore[operator]
        case "gt":
            return left > right  # type: ignore[operator]
        case "gteq":
            return left >= right  # type: ignore[operator]
    return False


def _holds(constraint: Constraint, ask: Ask, vendor: str, now: datetime) -> bool | None:
    """Whether a constraint holds for this item; None for elapsedTime, which bounds rather than
    decides, and False for a left operand the agent does not know (the rule then never applies,
    which is the safe reading for the person)."""
    match constraint.left:
        case "purpose":
            return _purpose_holds(constraint, ask.purpose)
        case "recipient" | "party":
            values = constraint.values()
            if constraint.operator in ("isAnyOf", "eq"):
                return vendor in values
            if constraint.operator in ("isNoneOf", "neq"):
                return vendor not in values
            return False
        case "dateTime":
            try:
                bound = datetime.fromisoformat(str(constraint.values()[0]).replace("Z", "+00:00"))
                return _compare(now, constraint.operator, bound)
            except (ValueError, TypeError):
                return False
        case "elapsedTime":
            return None
    return False


def _applies(rule: Rule, ask: Ask, vendor: str, now: datetime) -> bool:
    if rule.targets and ask.target not in rule.targets:
        return False
    if not _action_covers(rule.action, ask.action):
        return False
    return all(_holds(c, ask, vendor, now) is not False for c in rule.constraints)


def _max_duration(rule: Rule) -> timedelta | None:
    elapsed = rule.constraint("elapsedTime")
    if elapsed is None or elapsed.operator not in ("lteq", "lt", "eq"):
        return None
    try:
        return duration_of(str(elapsed.values()[0]))
    except ValueError:
        return timedelta(0)


def _describe(rule: Rule) -> str:
    parts = [f"{rule.kind} to {rule.action}"]
    if rule.targets:
        parts.append("on " + ", ".join(short(t) for t in rule.targets))
    for c in rule.constraints:
        parts.append(f"{c.left} {c.operator} " + ", ".join(short(v) for v in c.values()))
    return " ".join(parts)


def decide(request: Policy, terms: Sequence[Policy], *, vendor: str, now: datetime) -> Decision:
    granted: list[Ask] = []
    refused: list[Ask] = []
    undecided: list[Ask] = []
    reasons: list[str] = []
    trace: list[str] = []
    shortened = False
    for ask in asks_of(request):
        label = f"{short(ask.target)} ({ask.action}, purpose {short(ask.purpose)})"
        permits = [(p, r) for p in terms for r in p.permissions if _applies(r, ask, vendor, now)]
        forbids = [(p, r) for p in terms for r in p.prohibitions if _applies(r, ask, vendor, now)]
        for policy, rule in permits + forbids:
            trace.append(f"{label}: {policy.title or policy.uid}: {_describe(rule)} applies")
        if forbids and permits:
            strategies = {p.conflict for p, _ in permits + forbids}
            if "invalid" in strategies:
                refused.append(ask)
                reasons.append(f"{label}: the terms conflict and say such a conflict voids them")
                trace.append(f"{label}: conflict, strategy invalid: refused")
                continue
            if "prohibit" in strategies:
                refused.append(ask)
                reasons.append(f"{label}: prohibited by {forbids[0][0].title or forbids[0][0].uid}")
                trace.append(f"{label}: conflict, strategy prohibit: the prohibition wins")
                continue
            trace.append(f"{label}: conflict, strategy perm: the permission wins")
        elif forbids:
            refused.append(ask)
            reasons.append(f"{label}: prohibited by {forbids[0][0].title or forbids[0][0].uid}")
            continue
        elif not permits:
            undecided.append(ask)
            trace.append(f"{label}: no term decides this: the person is asked")
            continue
        limits = [d for d in (_max_duration(r) for _, r in permits) if d is not None]
        allowed = min(limits) if limits else None
        wanted = ask.duration or allowed or DEFAULT_DURATION
        duration = min(wanted, allowed) if allowed is not None else wanted
        if duration < wanted:
            shortened = True
            reasons.append(f"{label}: at most {duration_text(duration)}, not "
                           f"{duration_text(wanted)}")
            trace.append(f"{label}: shortened to {duration_text(duration)}")
        duties = tuple(dict.fromkeys(d for _, r in permits for d in r.duties)) + ask.duties
        granted.append(replace(ask, duration=duration, duties=tuple(dict.fromkeys(duties))))
        trace.append(f"{label}: permitted for {duration_text(duration)}")

    outcome = _outcome(granted, refused, undecided, shortened)
    trace.append(f"outcome: {outcome.value}")
    return Decision(outcome, tuple(granted), tuple(refused), tuple(undecided), tuple(reasons),
                    tuple(trace), shortened)


def _outcome(granted: Sequence[Ask], refused: Sequence[Ask], undecided: Sequence[Ask],
             shortened: bool) -> Outcome:
    if not granted and not undecided:
        return Outcome.REFUSE
    if undecided:
        return Outcome.ASK_PERSON
    if refused or shortened:
        return Outcome.COUNTER
    return Outcome.AGREE


def without_targets(decision: Decision, missing: set[str], why: str) -> Decision:
    """The decision with every item on a ``missing`` target refused for ``why`` (the person
    holds no such data, say), and its outcome worked out again."""
    if not missing:
        return decision
    dropped = [a for a in decision.granted + decision.undecided if a.target in missing]
    granted = tuple(a for a in decision.granted if a.target not in missing)
    undecided = tuple(a for a in decision.undecided if a.target not in missing)
    refused = decision.refused + tuple(dropped)
    reasons = decision.reasons + tuple(f"{short(a.target)}: {why}" for a in dropped)
    outcome = _outcome(granted, refused, undecided, decision.shortened)
    trace = decision.trace + tuple(f"{short(a.target)}: {why}: refused" for a in dropped) + (
        f"outcome: {outcome.value}",)
    return replace(decision, outcome=outcome, granted=granted, refused=refused,
                   undecided=undecided, reasons=reasons, trace=trace)


def _permission_for(ask: Ask, *, end: datetime | None) -> Rule:
    constraints = []
    if ask.purpose:
        constraints.append(Constraint("purpose", "eq", ask.purpose))
    if end is not None:
        # Whole seconds, as the grant's end is written: both sides read one and the same time.
        stamp = end.replace(microsecond=0).isoformat().replace("+00:00", "Z")
        constraints.append(Constraint("dateTime", "lt", stamp))
    elif ask.duration is not None:
        constraints.append(Constraint("elapsedTime", "lteq", duration_text(ask.duration)))
    return Rule("permission", ask.action, (ask.target,), tuple(constraints), ask.duties)


def agreement_for(
    asks: Sequence[Ask], *, uid: str, person: str, vendor: str, now: datetime,
    consideration: str | None = None,
) -> Policy:
    """The odrl:Agreement for these items, each ending at now + its duration."""
    rules = tuple(_permission_for(a, end=now + (a.duration or DEFAULT_DURATION)) for a in asks)
    return Policy(uid, "Agreement", rules, assigner=person, assignee=vendor,
                  consideration=consideration)


def offer_for(asks: Sequence[Ask], *, uid: str, person: str, vendor: str) -> Policy:
    """The odrl:Offer of a counter-offer: these items, for at most these durations."""
    rules = tuple(_permission_for(a, end=None) for a in asks)
    return Policy(uid, "Offer", rules, assigner=person, assignee=vendor)


def asks_with_durations(policy: Policy) -> list[Ask]:
    """The items of an offer or agreement (the inverse of offer_for)."""
    return asks_of(policy)

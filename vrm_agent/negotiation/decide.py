"""The person's terms answer a vendor's request: a pure function, with a trace of why.

Each item of the request (one target, for one action and purpose, for a time) becomes an ODRL
request from the vendor, judged against every policy of the person's terms by the evaluator in
``vrm_agent.policy`` (which fails closed). Across policies, a prohibition wins unless every
policy in the conflict says ``perm``. A permission bounded by ``elapsedTime`` that the asked
duration exceeds is offered for the longest time it allows (a counter-offer).

Per item: refused when a prohibition applies for certain; waiting for the person when a
prohibition applies only because something could not be decided, when no rule decides it, or
when some of the terms cannot be read whole; agreed when a permission applies.

Outcome: AGREE when every item is permitted as asked; COUNTER when some are refused or shortened
and the rest permitted; REFUSE when none is permitted; ASK_PERSON when any item is undecided
(refused items are dropped first, so the person only sees what the terms left open).
"""

from __future__ import annotations

import enum
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from vrm_agent.negotiation.durations import duration_of, duration_text, end_of
from vrm_agent.negotiation.odrl import (
    DPV,
    ODRL,
    PD,
    USE_INCLUDES,
    XSD,
    Ask,
    Constraint,
    Policy,
    Rule,
    asks_of,
)
from vrm_agent.policy import model as odrl
from vrm_agent.policy.evaluate import PolicyReport, RuleReport, Verdict, combined, evaluate
from vrm_agent.policy.explain import rule_text
from vrm_agent.policy.vocabulary import vocabulary

DEFAULT_DURATION = timedelta(days=30)  # when neither request nor terms bound the time
ELAPSED = ODRL + "elapsedTime"


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
    reports: tuple[PolicyReport, ...] = ()  # the evaluator's reports the decision rests on


def short(iri: str | None) -> str:
    if iri is None:
        return "(none)"
    for prefix, name in ((DPV, "dpv:"), (PD, "pd:")):
        if iri.startswith(prefix):
            return name + iri[len(prefix):]
    return iri


def _full_action(action: str) -> str:
    return action if ":" in action else ODRL + action


def _odrl_request(ask: Ask, vendor: str, duration: timedelta, uid: str) -> odrl.Request:
    values: dict[str, tuple[odrl.Value, ...]] = {
        ELAPSED: (odrl.Value.literal(duration_text(duration), XSD + "duration"),)}
    if ask.purpose:
        values[ODRL + "purpose"] = (odrl.Value.iri(ask.purpose),)
    return odrl.Request(_full_action(ask.action), vendor, ask.target, values, uid)


def _title(policy: odrl.Policy) -> str:
    return policy.title or policy.uid


def _elapsed_bounds(reports: Sequence[PolicyReport]) -> tuple[list[timedelta], set[str]]:
    """The longest durations that would make an inactive permission apply (those whose only
    unmet premises are top-level elapsedTime constraints that set an upper bound), and the
    policies such permissions belong to."""
    bounds = []
    policies = set()
    for report in reports:
        for rule_report in report.rules:
            if rule_report.rule.kind != "permission" or rule_report.active:
                continue
            unmet = [p for p in rule_report.premises if not p.satisfied]
            if not unmet or any(p.left != ELAPSED or p.holds is not False for p in unmet):
                continue
            for premise in unmet:
                bound = _upper_bound(premise.operator, premise.right)
                if bound is not None:
                    bounds.append(bound)
                    policies.add(report.policy.uid)
    return sorted(set(bounds), reverse=True), policies


def _upper_bound(operator: str | None, right: tuple[odrl.Value, ...]) -> timedelta | None:
    if len(right) != 1 or operator not in (ODRL + "lteq", ODRL + "lt", ODRL + "eq"):
        return None
    try:
        value = duration_of(right[0].text)
    except ValueError:
        return None  # months or years: no fixed length to offer
    if operator == ODRL + "lt":
        value -= timedelta(seconds=1)
    return value if value > timedelta(0) else None


@dataclass(frozen=True)
class _Judged:
    verdict: Verdict
    reports: tuple[PolicyReport, ...]
    duration: timedelta


def _judge(ask: Ask, terms: Sequence[odrl.Policy], world: odrl.World, vendor: str,
           duration: timedelta, uid: str | None, *, before: _Judged | None = None,
           again: set[str] | None = None) -> _Judged:
    """The item judged against every policy. With ``before`` (the same item, not covered, for
    a longer duration), a shorter duration can only make a difference to the permissions the
    duration alone kept out (policies ``again``) and to prohibitions that mention
    elapsedTime; every other report stands."""
    request = _odrl_request(ask, vendor, duration, uid)
    if before is None:
        reports = tuple(evaluate(policy, request, world) for policy in terms)
    else:
        reports = tuple(evaluate(r.policy, request, world)
                        if r.policy.uid in (again or set()) or _mentions_duration(
                            r.policy, kind="prohibition") else r
                        for r in before.reports)
    return _Judged(combined(reports), reports, duration)


def _mentions_duration(policy: odrl.Policy, *, kind: str) -> bool:
    def constraints(rule: odrl.Rule) -> Iterator[odrl.AnyConstraint]:
        pending: list[odrl.AnyConstraint] = [*rule.constraints, *rule.refinements]
        while pending:
            item = pending.pop()
            yield item
            if isinstance(item, odrl.LogicalConstraint):
                pending.extend(item.operands)

    return any(isinstance(c, odrl.Constraint) and c.left == ELAPSED
               for rule in policy.rules if rule.kind == kind for c in constraints(rule))


def _active(reports: Sequence[PolicyReport], kind: str) -> list[tuple[odrl.Policy, RuleReport]]:
    return [(r.policy, rr) for r in reports for rr in r.active(kind)]


def decide(request: Policy, terms: Sequence[odrl.Policy], *, vendor: str, now: datetime,
           part_of: Mapping[str, frozenset[str]] | None = None,
           unreadable: Sequence[str] = ()) -> Decision:
    """The terms' answer to a vendor's request. ``part_of`` places resources in the data
    categories they hold; ``unreadable`` names terms that do not validate, which send every
    item they do not refuse to the person."""
    world = odrl.World(now, part_of or {})
    forbidden_actions = sorted({r.action for p in terms for r in p.rules
                                if r.kind == "prohibition" and r.action})
    targeted = any(r.targets for p in terms for r in p.rules if r.kind == "prohibition")
    granted: list[Ask] = []
    refused: list[Ask] = []
    undecided: list[Ask] = []
    reasons: list[str] = []
    trace: list[str] = []
    kept: list[PolicyReport] = []
    shortened = False
    for number, ask in enumerate(asks_of(request)):
        label = f"{short(ask.target)} ({ask.action}, purpose {short(ask.purpose)})"
        uid = f"{request.uid}#item-{number + 1}" if request.uid else None
        wanted = ask.duration or DEFAULT_DURATION
        judged = _judge(ask, terms, world, vendor, wanted, uid or request.uid)
        if judged.verdict is Verdict.NOT_COVERED:
            bounds, bounded = _elapsed_bounds(judged.reports)
            for bound in bounds:
                if bound >= wanted:
                    continue
                shorter = _judge(ask, terms, world, vendor, bound, uid or request.uid,
                                 before=judged, again=bounded)
                if shorter.verdict is Verdict.PERMITTED:
                    judged = shorter
                    break
        kept.extend(judged.reports)
        permits = _active(judged.reports, "permission")
        forbids = _active(judged.reports, "prohibition")
        for policy, rule_report in permits + forbids:
            state = "cannot be decided, so taken to apply" if rule_report.undecided and \
                rule_report.rule.kind == "prohibition" else "applies"
            trace.append(f"{label}: {_title(policy)}: {rule_text(rule_report.rule)} {state}")
            for problem in rule_report.problems if rule_report.undecided else ():
                trace.append(f"{label}: {_title(policy)}: {problem}")
        if judged.verdict is Verdict.PROHIBITED:
            certain = [(p, r) for p, r in forbids if not r.undecided]
            if permits and forbids:
                strategies = sorted({p.conflict for p, _ in permits + forbids})
                trace.append(f"{label}: a permission and a prohibition meet "
                             f"(strategies {', '.join(strategies)}): the prohibition wins")
            if certain:
                refused.append(ask)
                reasons.append(f"{label}: prohibited by {_title(certain[0][0])}")
                continue
            undecided.append(ask)
            policy, rule_report = forbids[0]
            reasons.append(f"{label}: {_title(policy)} may forbid it "
                           f"({'; '.join(rule_report.problems) or 'it cannot be decided'})")
            trace.append(f"{label}: a prohibition cannot be ruled out: the person is asked")
            continue
        if unreadable:
            undecided.append(ask)
            reasons.append(f"{label}: some of your terms cannot be read "
                           f"({', '.join(unreadable)}): you decide")
            trace.append(f"{label}: terms that do not validate: the person is asked")
            continue
        if judged.verdict is Verdict.NOT_COVERED:
            undecided.append(ask)
            trace.append(f"{label}: no term decides this: the person is asked")
            continue
        duration = judged.duration
        blocked, excluded = _narrower(ask, terms, world, vendor, duration, uid or request.uid,
                                      forbidden_actions)
        blocked += _resources_forbidden(ask, terms, world, vendor, duration,
                                        uid or request.uid, targeted)
        if blocked:
            refused.append(ask)
            reasons.append(f"{label}: {blocked[0]}")
            trace.extend(f"{label}: {why}: refused" for why in blocked)
            continue
        if excluded:
            trace.append(f"{label}: agreed without " + ", ".join(excluded)
                         + ", which the terms forbid")
        if duration < wanted:
            shortened = True
            reasons.append(f"{label}: at most {duration_text(duration)}, not "
                           f"{duration_text(wanted)}")
            trace.append(f"{label}: shortened to {duration_text(duration)}")
        # The duties the terms impose, with their constraints; never text the vendor wrote.
        duties = tuple(dict.fromkeys(_duty(d) for _, r in permits for d in r.rule.duties
                                     if d.action))
        granted.append(replace(ask, duration=duration, duties=duties, excluded=excluded))
        trace.append(f"{label}: permitted for {duration_text(duration)}")

    outcome = _outcome(granted, refused, undecided, shortened)
    trace.append(f"outcome: {outcome.value}")
    return Decision(outcome, tuple(granted), tuple(refused), tuple(undecided), tuple(reasons),
                    tuple(trace), shortened, tuple(kept))


def _local(iri: str) -> str:
    return iri[len(ODRL):] if iri.startswith(ODRL) else iri


def _duty(rule: odrl.Rule) -> Rule:
    """A duty of the terms as the agreement states it, with its simple constraints (the
    agreement's form has no logical constraints; those are left out)."""
    constraints = []
    for item in rule.constraints:
        if isinstance(item, odrl.Constraint) and item.right:
            values = tuple(v.text for v in item.right)
            constraints.append(Constraint(_local(item.left), _local(item.operator),
                                          values[0] if len(values) == 1 else values))
    return Rule("duty", _local(rule.action or ""), rule.targets, tuple(constraints))


def _narrower(ask: Ask, terms: Sequence[odrl.Policy], world: odrl.World, vendor: str,
              duration: timedelta, uid: str | None, forbidden: Sequence[str],
              ) -> tuple[list[str], tuple[str, ...]]:
    """Actions the asked one takes in (use takes in read and distribute) that the terms
    forbid for this item. One the grant itself would carry out (reading) blocks the item;
    the others are excluded from the agreement, which states them as prohibitions."""
    asked = _full_action(ask.action)
    vocab = vocabulary()
    blocked: list[str] = []
    excluded: list[str] = []
    for action in forbidden:
        if action == asked or not vocab.action_covers(asked, action):
            continue
        # Prohibitions on the asked action (or a broader one) were judged already and did not
        # apply; only those on actions between the narrower one and the asked one are new, so
        # the item is judged again only where such a prohibition applies.
        new = [p for p in terms if any(
            r.kind == "prohibition" and r.action and vocab.action_covers(r.action, action)
            and not vocab.action_covers(r.action, asked) for r in p.rules)]
        narrower = replace(ask, action=_local(action))
        found = [(report.policy, rule) for report in _judge(
            narrower, new, world, vendor, duration, uid).reports
            for rule in report.active("prohibition")]
        if not found:
            continue
        # A prohibition whose policy does not let permissions win is decisive by itself
        # (combined() needs every policy in a conflict to say perm); otherwise judge in full.
        if any(policy.conflict != "perm" for policy, _ in found) or _judge(
                narrower, terms, world, vendor, duration, uid).verdict is Verdict.PROHIBITED:
            if _local(action) in USE_INCLUDES:
                blocked.append(f"{ask.action} takes in {_local(action)}, which the terms "
                               f"forbid, and a grant to read cannot leave it out")
            else:
                excluded.append(_local(action))
    return blocked, tuple(excluded)


def _resources_forbidden(ask: Ask, terms: Sequence[odrl.Policy], world: odrl.World,
                         vendor: str, duration: timedelta, uid: str | None, targeted: bool,
                         ) -> list[str]:
    """A data category is granted as the resources that hold it, which may hold other
    categories too (purchases and spending habits share one container): the item is refused
    when the terms forbid any of those resources."""
    if not targeted or not ask.target.startswith(PD):
        return []
    found = []
    for resource, categories in sorted(world.part_of.items()):
        if ask.target not in categories:
            continue
        judged = _judge(replace(ask, target=resource), terms, world, vendor, duration, uid)
        if judged.verdict is Verdict.PROHIBITED:
            others = ", ".join(short(c) for c in sorted(categories) if c != ask.target)
            found.append(f"it is kept in {resource} with {others or 'other data'}, which the "
                         "terms forbid")
    return found


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
        # Whole seconds (end_of rounds up), as the grant's end is written: both sides read one
        # and the same time.
        stamp = end.replace(microsecond=0).isoformat().replace("+00:00", "Z")
        constraints.append(Constraint("dateTime", "lt", stamp))
    elif ask.duration is not None:
        constraints.append(Constraint("elapsedTime", "lteq", duration_text(ask.duration)))
    return Rule("permission", ask.action, (ask.target,), tuple(constraints), ask.duties)


def _prohibitions_for(asks: Sequence[Ask]) -> tuple[Rule, ...]:
    return tuple(dict.fromkeys(Rule("prohibition", action, (a.target,))
                               for a in asks for action in a.excluded))


def agreement_for(
    asks: Sequence[Ask], *, uid: str, person: str, vendor: str, now: datetime,
    consideration: str | None = None,
) -> Policy:
    """The odrl:Agreement for these items, each ending at now + its duration, with the
    narrower actions the terms forbid as its prohibitions."""
    rules = tuple(_permission_for(a, end=end_of(now, a.duration or DEFAULT_DURATION))
                  for a in asks) + _prohibitions_for(asks)
    return Policy(uid, "Agreement", rules, assigner=person, assignee=vendor,
                  consideration=consideration)


def offer_for(asks: Sequence[Ask], *, uid: str, person: str, vendor: str) -> Policy:
    """The odrl:Offer of a counter-offer: these items, for at most these durations."""
    rules = tuple(_permission_for(a, end=None) for a in asks) + _prohibitions_for(asks)
    return Policy(uid, "Offer", rules, assigner=person, assignee=vendor)


def asks_with_durations(policy: Policy) -> list[Ask]:
    """The items of an offer or agreement (the inverse of offer_for)."""
    return asks_of(policy)

"""The ODRL 2.2 evaluator: a policy, a request and the state of the world in, a report out.

It follows the ODRL Information Model and the Community Group's Formal Semantics draft: a rule
is *active* for a request when each of its premises is satisfied (its assignee, target and
action match the request, its constraints and action refinements hold); a permission whose duty
was violated is not active; across rules, the policy's conflict strategy decides between an
active permission and an active prohibition.

Failing closed is the rule throughout: every premise is judged True, False or *undecidable*
(None), and an undecidable premise leaves a permission inactive and a prohibition active, and
is reported so. A rule that could not be read (``Rule.problems``) is undecidable as a whole.
Pure functions over plain data: no I/O, no clock; the only state is the pinned vocabulary and
a memo of what the last request taught (one request is judged against several policies in turn).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from vrm_agent.policy.model import (
    ODRL,
    XSD,
    AnyConstraint,
    Constraint,
    LogicalConstraint,
    Policy,
    Request,
    Rule,
    Value,
    World,
)
from vrm_agent.policy.values import (
    Undecidable,
    all_of,
    any_of,
    compare,
    exactly_one,
    typed,
)
from vrm_agent.policy.vocabulary import Vocabulary, vocabulary

SET_OPERATORS = frozenset(ODRL + n for n in ("isAnyOf", "isAllOf", "isNoneOf"))
PLACE_OPERATORS = frozenset(ODRL + n for n in ("isA", "isPartOf", "hasPart"))
# Full IRIs the hot paths compare against, built once.
_DATE_TIME = ODRL + "dateTime"
_EQ = ODRL + "eq"
_HAS_PART = ODRL + "hasPart"
_IS_ALL_OF = ODRL + "isAllOf"
_IS_NONE_OF = ODRL + "isNoneOf"
_NEQ = ODRL + "neq"
_PURPOSE = ODRL + "purpose"
_RECIPIENT = ODRL + "recipient"
VALUE_OPERATORS = frozenset(ODRL + n for n in ("eq", "neq", "lt", "lteq", "gt", "gteq"))


class Verdict(enum.StrEnum):
    PERMITTED = "permitted"
    PROHIBITED = "prohibited"
    NOT_COVERED = "not-covered"


class Performance(enum.StrEnum):
    PERFORMED = "Performed"
    UNPERFORMED = "Unperformed"
    UNKNOWN = "Unknown"


class Deontic(enum.StrEnum):
    NON_SET = "NonSet"
    VIOLATED = "Violated"
    FULFILLED = "Fulfilled"


@dataclass(frozen=True, slots=True)
class PremiseReport:
    """One premise of a rule: ``holds`` is True, False or None (could not be decided);
    ``satisfied`` is what the evaluator took it to be, failing closed for the rule's kind."""

    kind: str  # constraint, party, target, action
    holds: bool | None
    satisfied: bool
    constraint: str | None = None  # the constraint's uid, when it has one
    left: str | None = None  # the left operand, or the logical operator
    operator: str | None = None
    right: tuple[Value, ...] = ()
    left_values: tuple[Value, ...] = ()
    parts: tuple[PremiseReport, ...] = ()
    why: str | None = None  # why it could not be decided


@dataclass(frozen=True, slots=True)
class RuleReport:
    rule: Rule
    active: bool
    premises: tuple[PremiseReport, ...] = ()
    conditions: tuple[RuleReport, ...] = ()  # a permission's duties, a prohibition's remedies
    consequences: tuple[RuleReport, ...] = ()  # of a violated duty
    performance: Performance | None = None  # duties and obligations
    deontic: Deontic | None = None
    attempted: bool = True
    undecided: bool = False  # some premise could not be decided; the rule failed closed

    @property
    def problems(self) -> tuple[str, ...]:
        found = list(self.rule.problems)
        stack = list(self.premises)
        while stack:
            premise = stack.pop()
            if premise.why:
                found.append(premise.why)
            stack.extend(premise.parts)
        return tuple(dict.fromkeys(found))


@dataclass(frozen=True, slots=True)
class PolicyReport:
    """What a policy says of one request: every rule's report, and the verdict."""

    policy: Policy
    request: Request
    world: World
    rules: tuple[RuleReport, ...]
    verdict: Verdict
    conflict: bool = False  # an active permission and an active prohibition met
    undecided: bool = False  # the verdict rests on something that could not be decided

    def active(self, kind: str) -> tuple[RuleReport, ...]:
        return tuple(r for r in self.rules if r.rule.kind == kind and r.active)


# -- premises ----------------------------------------------------------------------------------


class _Judge:
    """One evaluation: the request, the world and the vocabulary, with collection membership
    closed transitively once."""

    def __init__(self, request: Request, world: World, vocab: Vocabulary) -> None:
        self.request = request
        self.world = world
        self.vocab = vocab
        self._within: dict[str, frozenset[str]] = {}
        # Many rules ask the same questions of one request: each is answered once.
        self._placed: dict[tuple[str, str], bool | None] = {}
        self._lefts: dict[str, tuple[Value, ...]] = {}
        self._not_purpose: dict[str, str | None] = {}
        self._now = (Value.literal(world.now.isoformat(), XSD + "dateTime"),)

    def collections_of(self, iri: str) -> frozenset[str]:
        """Every collection ``iri`` is part of, directly or through other collections."""
        if iri not in self._within:
            seen: set[str] = set()
            todo = list(self.world.part_of.get(iri, ()))
            while todo:
                current = todo.pop()
                if current not in seen:
                    seen.add(current)
                    todo.extend(self.world.part_of.get(current, ()))
            self._within[iri] = frozenset(seen)
        return self._within[iri]

    def placed(self, item: str, within: str) -> bool | None:
        key = (item, within)
        if key not in self._placed:
            self._placed[key] = self._place_uncached(item, within)
        return self._placed[key]

    def _place_uncached(self, item: str, within: str) -> bool | None:
        """Is ``item`` the same as ``within``, part of it (a stated collection, a Solid
        container holding it) or below it (a DPV concept)? None when ``within`` is a concept of
        the vocabulary and ``item`` cannot be placed there: it is unknown to DPV and belongs to
        no collection, or to collections DPV does not know either."""
        if item == within or within in self.collections_of(item) or _contained(item, within):
            return True
        collections = self.collections_of(item)
        known = [c for c in collections if self.vocab.is_known_concept(c)]
        if any(self.vocab.is_a(c, within) for c in known):
            return True
        if not self.vocab.is_known_concept(within):
            return False
        if self.vocab.is_known_concept(item):
            return bool(self.vocab.is_a(item, within))
        if collections and len(known) == len(collections):
            return False  # placed in DPV, and not under ``within``
        return None

    def overlaps(self, item: str, other: str) -> bool | None:
        """Whether the two share anything: one is placed within the other. A request for
        something broader than a forbidden thing asks for the forbidden thing too."""
        return any_of([self.placed(item, other), self.placed(other, item)])

    def same(self, left: str, right: str) -> bool | None:
        """IRI equality, where a spelling DPV does not know cannot be told apart from a DPV
        term it may stand for (http for https, a changed case, an escape)."""
        if left == right:
            return True
        if self.vocab.is_known_concept(right) and not self.vocab.is_known_concept(left) \
                and not self.collections_of(left):
            return None
        return False

    # party, target, action ---------------------------------------------------------------

    def party(self, rule: Rule) -> PremiseReport | None:
        if not rule.assignees:
            return None
        who = self.request.assignee
        if who is None:
            return _premise("party", None, rule, why="the request does not say who asks")
        holds = any_of([self.placed_party(who, a, rule) for a in rule.assignees])
        return _premise("party", holds, rule,
                        why=None if holds is not None else "who asks cannot be placed")

    def placed_party(self, who: str, assignee: str, rule: Rule) -> bool | None:
        if who == assignee or assignee in self.collections_of(who):
            return True
        if assignee in rule.collections and who not in self.world.part_of:
            return None  # nothing says whether the one asking belongs to that collection
        return False

    def target(self, rule: Rule) -> PremiseReport | None:
        if not rule.targets:
            return None
        what = self.request.target
        if what is None:
            return _premise("target", None, rule, why="the request names no target")
        if rule.kind == "prohibition":
            # A request for something broader than what is forbidden (pd:Contact, when
            # pd:EmailAddress is forbidden; a container holding a forbidden document) asks
            # for it too.
            holds = any_of([self.overlaps(what, t) for t in rule.targets])
        else:
            holds = any_of([self.placed(what, t) for t in rule.targets])
        return _premise("target", holds, rule, why=None if holds is not None else
                        f"{what} cannot be placed among the data categories the rule names")

    def action(self, rule: Rule) -> PremiseReport | None:
        if rule.action is None and not rule.refinements:
            return None
        holds: bool | None = True
        why = None
        if rule.action is not None:
            holds = self.action_matches(rule)
            if holds is None:
                why = f"the action {_short(self.request.action)} cannot be placed"
        parts = tuple(self.constraint(c, rule) for c in rule.refinements)
        if parts:
            holds = all_of([holds, *(p.holds for p in parts)])
        return _premise("action", holds, rule, parts=parts, why=why)

    def action_matches(self, rule: Rule) -> bool | None:
        asked, named = self.request.action, rule.action
        assert named is not None
        if asked == named or self.vocab.action_covers(named, asked):
            return True
        if rule.kind == "prohibition" and any(
                self.vocab.action_covers(named, implied)
                for implied in self.vocab.implied_by(asked)):
            # Doing the asked action means doing the prohibited one too. (A broader action is
            # not caught: asking to use is not asking to distribute, which use also covers.)
            return True
        if self.vocab.is_action(asked) and self.vocab.is_action(named):
            return False
        return None  # an action the ODRL vocabulary does not know: no way to place it

    # constraints -----------------------------------------------------------------------

    def constraint(self, item: AnyConstraint, rule: Rule) -> PremiseReport:
        if isinstance(item, LogicalConstraint):
            return self.logical(item, rule)
        if item.problems:
            return _premise("constraint", None, rule, constraint=item,
                            why="; ".join(item.problems))
        lefts = self.left_values(item.left)
        if not lefts:
            return _premise("constraint", None, rule, constraint=item,
                            why=f"nothing tells the {_short(item.left)} of this request")
        try:
            holds = self.holds(item, lefts, every=rule.kind != "prohibition")
        except Undecidable as exc:
            return _premise("constraint", None, rule, constraint=item, lefts=lefts,
                            why=f"{_short(item.left)}: {exc}")
        return _premise("constraint", holds, rule, constraint=item, lefts=lefts,
                        why=None if holds is not None else
                        f"{_short(item.left)}: a value cannot be placed")

    def logical(self, item: LogicalConstraint, rule: Rule) -> PremiseReport:
        parts = tuple(self.constraint(c, rule) for c in item.operands)
        if item.problems or not parts:
            return _premise("constraint", None, rule, logical=item, parts=parts,
                            why="; ".join(item.problems) or "an empty logical constraint")
        results = [p.holds for p in parts]
        match item.operator:
            case "or":
                holds = any_of(results)
            case "xone":
                holds = exactly_one(results)
            case "and" | "andSequence":
                holds = all_of(results)
            case _:
                return _premise("constraint", None, rule, logical=item, parts=parts,
                                why=f"unknown logical operator {item.operator!r}")
        return _premise("constraint", holds, rule, logical=item, parts=parts)

    def left_values(self, left: str) -> tuple[Value, ...]:
        if left not in self._lefts:
            self._lefts[left] = self._left_values(left)
        return self._lefts[left]

    def _left_values(self, left: str) -> tuple[Value, ...]:
        if left == _DATE_TIME:
            return self._now
        stated = self.request.values.get(left) or self.world.values.get(left)
        if stated:
            return tuple(stated)
        if left == _RECIPIENT and self.request.assignee:
            return (Value.iri(self.request.assignee),)
        return ()

    def holds(self, item: Constraint, lefts: tuple[Value, ...], *, every: bool) -> bool | None:
        """Whether the constraint holds for the left values: for every one of them (a
        permission: all that is asked must be allowed) or for any (a prohibition: one
        forbidden value is enough)."""
        if item.right_reference:
            raise Undecidable("a rightOperandReference is never followed")
        if item.unit:
            raise Undecidable("values with a unit are not compared")
        if not item.right:
            raise Undecidable("the constraint has no rightOperand")
        right = item.right
        if item.data_type:
            right = tuple(v if v.is_iri else Value.literal(v.text, item.data_type)
                          for v in right)
        op = item.operator
        if item.left == _PURPOSE:
            for value in lefts:
                why = self.not_a_purpose(value)
                if why:
                    raise Undecidable(why)
        if op in SET_OPERATORS:
            return self.set_holds(op, lefts, right, item.left, every,
                                  broad=not every and item.left != _PURPOSE)
        if len(right) != 1:
            raise Undecidable(f"{_short(op)} takes one rightOperand, not a list")
        (one,) = right
        # A prohibition also meets a value broader than the one it names (a region holding a
        # forbidden one), but not a broader purpose: a purpose is what the vendor declares and
        # the agreement binds it to, and DPV places narrow purposes under everyday ones
        # (dpv:SellDataToThirdParties under dpv:ServiceProvision).
        broad = not every and item.left != _PURPOSE
        if op in PLACE_OPERATORS:
            results = [self.place(op, value, one, broad=broad) for value in lefts]
        elif op in (_EQ, _NEQ) and one.is_iri and all(v.is_iri for v in lefts):
            results = [self.same(v.text, one.text) for v in lefts]
            if op == _NEQ:
                results = [None if r is None else not r for r in results]
        elif op in VALUE_OPERATORS:
            results = [compare(typed(v, item.left), op, typed(one, item.left)) for v in lefts]
        else:
            raise Undecidable(f"unknown operator {_short(op)}")
        return all_of(results) if every else any_of(results)

    def not_a_purpose(self, value: Value) -> str | None:
        """Why a purpose value cannot be judged as one: a DPV concept of another kind."""
        if value.text not in self._not_purpose:
            self._not_purpose[value.text] = (
                f"{_short(value.text)} is not a purpose in DPV" if value.is_iri
                and self.vocab.is_known_concept(value.text)
                and not self.vocab.is_purpose(value.text) else None)
        return self._not_purpose[value.text]

    def place(self, op: str, left: Value, right: Value, *, broad: bool = False
              ) -> bool | None:
        """isA, isPartOf, hasPart; ``broad`` (a prohibition) also counts a value broader than
        the named one, which takes the named one in."""
        if not (left.is_iri and right.is_iri):
            raise Undecidable(f"{_short(op)} compares IRIs")
        item, within = (right.text, left.text) if op == _HAS_PART else \
            (left.text, right.text)
        return self.overlaps(item, within) if broad else self.placed(item, within)

    def matches(self, left: Value, right: Value, operand: str, *, broad: bool = False
                ) -> bool | None:
        """One value of a set operator's list: IRIs are placed (a purpose below a listed
        one matches it; with ``broad`` one above it too); literals are compared for
        equality."""
        if left.is_iri and right.is_iri:
            return self.overlaps(left.text, right.text) if broad else \
                self.placed(left.text, right.text)
        return compare(typed(left, operand), _EQ, typed(right, operand))

    def set_holds(self, op: str, lefts: tuple[Value, ...], right: tuple[Value, ...],
                  operand: str, every: bool, *, broad: bool = False) -> bool | None:
        if op == _IS_ALL_OF:
            # The left values, together, include every listed one.
            return all_of([any_of([self.matches(v, r, operand) for v in lefts])
                           for r in right])
        if op == _IS_NONE_OF:
            per_value = [self.none_of(v, right, operand, every) for v in lefts]
        else:
            per_value = [any_of([self.matches(v, r, operand, broad=broad) for r in right])
                         for v in lefts]
        return all_of(per_value) if every else any_of(per_value)

    def none_of(self, value: Value, right: tuple[Value, ...], operand: str,
                permission: bool) -> bool | None:
        """isNoneOf for one value, failing closed both ways: for a permission a value that
        takes in a listed one (a broader purpose) is not 'none of them'; for a prohibition
        such a value cannot be said to be none of them either."""
        within = any_of([self.matches(value, r, operand) for r in right])
        if within is True:
            return False
        broader = any_of([self.matches(value, r, operand, broad=True) for r in right])
        if broader is True:
            return False if permission else None
        return None if within is None or broader is None else True


def _short(iri: str) -> str:
    return iri.rsplit("#", 1)[-1].rsplit("/", 1)[-1]


def _contained(item: str, container: str) -> bool:
    """A Solid container holds every resource whose URL it begins (both normalised by the
    caller): a rule on .../health/ covers .../health/diary.ttl."""
    return (container.endswith("/") and item.startswith(container) and item != container
            and container.startswith(("https://", "http://"))
            and "/../" not in item[len(container) - 1:])


def _premise(kind: str, holds: bool | None, rule: Rule, *, constraint: Constraint | None = None,
             logical: LogicalConstraint | None = None, lefts: tuple[Value, ...] = (),
             parts: tuple[PremiseReport, ...] = (), why: str | None = None) -> PremiseReport:
    # Failing closed: what cannot be decided counts against a permission (it does not apply)
    # and for a prohibition, a duty or an obligation (they do).
    satisfied = holds if holds is not None else rule.kind != "permission"
    if constraint is not None:
        return PremiseReport(kind, holds, satisfied, constraint.uid, constraint.left,
                             constraint.operator, constraint.right, lefts, parts, why)
    if logical is not None:
        return PremiseReport(kind, holds, satisfied, logical.uid, logical.operator,
                             parts=parts, why=why)
    return PremiseReport(kind, holds, satisfied, parts=parts, why=why)


# -- rules -------------------------------------------------------------------------------------


def _premises(judge: _Judge, rule: Rule) -> tuple[PremiseReport, ...]:
    found = [judge.party(rule), judge.target(rule), judge.action(rule)]
    found += [judge.constraint(c, rule) for c in rule.constraints]
    return tuple(p for p in found if p is not None)


def _duty(judge: _Judge, duty: Rule) -> RuleReport:
    premises = tuple(judge.constraint(c, duty) for c in duty.constraints)
    # A duty that cannot be read or judged is taken to be due: not performing it then counts
    # as a violation, so the permission it conditions does not apply.
    active = bool(duty.problems) or all(p.satisfied for p in premises)
    state = judge.world.duties.get(duty.uid) if duty.uid else None
    performed = state.performed if state is not None else None
    performance = {True: Performance.PERFORMED, False: Performance.UNPERFORMED,
                   None: Performance.UNKNOWN}[performed]
    if performed is True:
        deontic = Deontic.FULFILLED
    elif performed is False and active:
        deontic = Deontic.VIOLATED
    else:
        deontic = Deontic.NON_SET
    consequences = tuple(_duty(judge, c) for c in duty.consequences) \
        if deontic is Deontic.VIOLATED else ()
    return RuleReport(duty, active, premises, performance=performance, deontic=deontic,
                      consequences=consequences, attempted=performed is not None,
                      undecided=bool(duty.problems) or any(p.holds is None for p in premises))


def _rule(judge: _Judge, rule: Rule) -> RuleReport:
    if rule.kind in ("obligation", "duty"):
        return _duty(judge, rule)
    premises = _premises(judge, rule)
    undecided = bool(rule.problems) or any(p.holds is None for p in premises)
    # A rule that could not be read whole: a permission never applies, a prohibition does.
    active = rule.kind == "prohibition" if rule.problems else all(p.satisfied for p in premises)
    conditions: tuple[RuleReport, ...] = ()
    if rule.kind == "permission" and rule.duties:
        conditions = tuple(_duty(judge, d) for d in rule.duties)
        if any(c.deontic is Deontic.VIOLATED for c in conditions):
            active = False  # a permission whose duty was not met is not active
    elif rule.kind == "prohibition" and rule.remedies:
        conditions = tuple(_duty(judge, d) for d in rule.remedies)
    return RuleReport(rule, active, premises, conditions, undecided=undecided)


_last_judge: list[_Judge] = []


def _judge_for(request: Request, world: World, vocab: Vocabulary) -> _Judge:
    """The judge of the last call when it is the same request in the same world (one
    request is judged against each of the person's policies in turn, and they share what
    they find out about it); a new one otherwise."""
    if _last_judge:
        last = _last_judge[0]
        if last.request is request and last.world is world and last.vocab is vocab:
            return last
    judge = _Judge(request, world, vocab)
    _last_judge[:] = [judge]
    return judge


def evaluate(policy: Policy, request: Request, world: World, *,
             vocab: Vocabulary | None = None) -> PolicyReport:
    """The policy's report for this request in this state of the world."""
    judge = _judge_for(request, world, vocab or vocabulary())
    reports = tuple(_rule(judge, rule) for rule in policy.rules)
    if policy.problems:
        # A policy that cannot be read whole (an unknown profile, inheritFrom) decides
        # nothing in the request's favour.
        reports = tuple(r if r.rule.kind != "permission" else
                        RuleReport(r.rule, False, r.premises, r.conditions, undecided=True)
                        for r in reports)
    permits = [r for r in reports if r.rule.kind == "permission" and r.active]
    forbids = [r for r in reports if r.rule.kind == "prohibition" and r.active]
    conflict = bool(permits and forbids)
    if conflict:
        verdict = Verdict.PERMITTED if policy.conflict == "perm" else Verdict.PROHIBITED
    elif forbids:
        verdict = Verdict.PROHIBITED
    elif permits:
        verdict = Verdict.PERMITTED
    else:
        verdict = Verdict.NOT_COVERED
    deciding = {Verdict.PERMITTED: permits, Verdict.PROHIBITED: forbids}.get(verdict, [])
    undecided = bool(policy.problems) or any(r.undecided for r in deciding) or (
        verdict is Verdict.NOT_COVERED and any(r.undecided for r in reports))
    return PolicyReport(policy, request, world, reports, verdict, conflict, undecided)


def rules_of(reports: Iterable[PolicyReport], kind: str) -> list[tuple[Policy, RuleReport]]:
    """The active rules of a kind across several policies' reports."""
    return [(report.policy, r) for report in reports for r in report.active(kind)]


def combined(reports: Sequence[PolicyReport]) -> Verdict:
    """The verdict of several policies on one request: a prohibition anywhere wins unless
    every policy whose rules meet in the conflict says ``perm``."""
    permits = rules_of(reports, "permission")
    forbids = rules_of(reports, "prohibition")
    if permits and forbids:
        strategies = {p.conflict for p, _ in permits + forbids}
        return Verdict.PERMITTED if strategies == {"perm"} else Verdict.PROHIBITED
    if forbids:
        return Verdict.PROHIBITED
    if permits:
        return Verdict.PERMITTED
    return Verdict.NOT_COVERED

"""Properties of the ODRL evaluator over random small policies, requests and states of the world
(hypothesis): more prohibitions, fewer permissions or less certainty never turn a refusal into a
permit, and no input, however odd, makes the evaluator (or the report writer, or the reader of a
graph) raise.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from rdflib import RDF, BNode, Graph, Literal, URIRef

from vrm_agent.policy.evaluate import PolicyReport, Verdict, combined, evaluate
from vrm_agent.policy.model import (
    LOGICAL_OPERATORS,
    ODRL,
    XSD,
    AnyConstraint,
    Constraint,
    DutyState,
    LogicalConstraint,
    Policy,
    Request,
    Rule,
    Value,
    World,
)
from vrm_agent.policy.rdf import read_policy, report_graph
from vrm_agent.policy.values import Undecidable, typed

EX = "http://example.com/"
DPV = "https://w3id.org/dpv#"
PD = "https://w3id.org/dpv/pd#"
NOW = datetime(2025, 6, 15, 12, 0, tzinfo=UTC)
SETTINGS = settings(max_examples=120, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow])

PARTIES = [EX + n for n in ("alice", "bob", "vendorA", "vendorB", "team")]
ASSETS = [EX + "doc", EX + "album", EX + "track", PD + "Contact", PD + "EmailAddress",
          PD + "Health", DPV + "PersonalData", EX + "unknownFile"]
ACTIONS = [ODRL + n for n in ("use", "read", "print", "display", "play", "transfer", "sell",
                              "modify", "write", "delete")] + [EX + "teleport"]
PURPOSES = [DPV + n for n in ("Marketing", "DirectMarketing", "PersonalisedAdvertising",
                              "Personalisation", "CustomerCare", "ServiceProvision",
                              "DeliveryOfGoods", "Purpose")] + [EX + "Weird"]
PLACES = [EX + n for n in ("Italy", "France", "EU", "Milan")]
VALUE_OPERATORS = [ODRL + n for n in ("eq", "neq", "lt", "lteq", "gt", "gteq")]
SET_OPERATORS = [ODRL + n for n in ("isAnyOf", "isAllOf", "isNoneOf")]
PLACE_OPERATORS = [ODRL + n for n in ("isA", "isPartOf", "hasPart")]
ALL_OPERATORS = VALUE_OPERATORS + SET_OPERATORS + PLACE_OPERATORS + [EX + "near"]
LEFT_OPERANDS = [ODRL + n for n in ("dateTime", "count", "purpose", "spatial", "recipient",
                                    "elapsedTime", "payAmount", "language")] + [EX + "moonPhase"]
DATATYPES = [XSD + t for t in ("string", "integer", "decimal", "double", "dateTime", "date",
                               "duration", "boolean", "dayTimeDuration")] + [EX + "oddType"]

# -- values ----------------------------------------------------------------------------------------

zones = st.sampled_from([UTC, timezone(timedelta(hours=2)), timezone(timedelta(hours=-5)),
                         timezone(timedelta(minutes=30))])
moments = st.builds(
    lambda days, hours, tz: (NOW + timedelta(days=days, hours=hours)).astimezone(tz),
    st.integers(-800, 800), st.integers(-24, 24), zones)
time_values = st.one_of(
    moments.map(lambda m: Value.literal(m.isoformat(), XSD + "dateTime")),
    moments.map(lambda m: Value.literal(m.isoformat().replace("+00:00", "Z"))),
)
durations = st.builds(lambda n, unit: Value.literal(f"P{n}{unit}" if unit in "DMY" else
                                                    f"PT{n}{unit}", XSD + "duration"),
                      st.integers(0, 400), st.sampled_from("DMYHS"))
numbers = st.integers(-5, 50).map(lambda n: Value.literal(str(n), XSD + "integer"))
garbage = st.builds(Value.literal, st.text(max_size=30), st.sampled_from(DATATYPES))
odd_iris = st.text(max_size=20).map(lambda t: Value.iri(EX + t))


def iris(pool: list[str]) -> st.SearchStrategy[Value]:
    return st.sampled_from(pool).map(Value.iri)


def leaf_constraints() -> st.SearchStrategy[Constraint]:
    """Sensible constraints of each kind, and odd ones."""
    single = st.sampled_from(VALUE_OPERATORS)
    return st.one_of(
        st.builds(lambda op, v: Constraint(ODRL + "dateTime", op, (v,)), single, time_values),
        st.builds(lambda op, v: Constraint(ODRL + "count", op, (v,)), single, numbers),
        st.builds(lambda op, v: Constraint(ODRL + "elapsedTime", op, (v,)), single, durations),
        st.builds(lambda op, v: Constraint(ODRL + "purpose", op, (v,)),
                  st.sampled_from([ODRL + "isA", ODRL + "eq", ODRL + "neq"]), iris(PURPOSES)),
        st.builds(lambda op, vs: Constraint(ODRL + "purpose", op, tuple(vs)),
                  st.sampled_from(SET_OPERATORS), st.lists(iris(PURPOSES), min_size=1,
                                                           max_size=3)),
        st.builds(lambda op, v: Constraint(ODRL + "spatial", op, (v,)),
                  st.sampled_from([ODRL + "eq", ODRL + "isPartOf", ODRL + "hasPart"]),
                  iris(PLACES)),
        st.builds(lambda v: Constraint(ODRL + "recipient", ODRL + "eq", (v,)), iris(PARTIES)),
        st.builds(lambda left, op, vs: Constraint(left, op, tuple(vs)),
                  st.sampled_from(LEFT_OPERANDS), st.sampled_from(ALL_OPERATORS),
                  st.lists(st.one_of(garbage, odd_iris, numbers, time_values), max_size=3)),
    )


CONSTRAINTS: st.SearchStrategy[AnyConstraint] = st.recursive(
    leaf_constraints(),
    lambda inner: st.builds(lambda op, ops: LogicalConstraint(op, tuple(ops)),
                            st.sampled_from([*LOGICAL_OPERATORS, "nand"]),
                            st.lists(inner, min_size=0, max_size=3)),
    max_leaves=4)


_MAYBE_ACTION = st.none() | st.sampled_from(ACTIONS)
_ASSET_LIST = st.lists(st.sampled_from(ASSETS), max_size=2)
_PARTY_LIST = st.lists(st.sampled_from(PARTIES), max_size=2)
_ONE_CONSTRAINT = st.lists(CONSTRAINTS, max_size=1)
_TWO_CONSTRAINTS = st.lists(CONSTRAINTS, max_size=2)
_DUTIES = st.lists(st.builds(lambda cs: Rule("duty", action=ODRL + "compensate",
                                             constraints=tuple(cs)), _ONE_CONSTRAINT),
                   max_size=1)


def rules(kind: str | None = None) -> st.SearchStrategy[Rule]:
    """Permissions (with at most one duty) and prohibitions, or one kind of them."""
    kinds = st.just(kind) if kind else st.sampled_from(["permission", "prohibition"])
    return st.builds(
        lambda k, action, refinements, targets, assignees, cs, duties: Rule(
            k, action=action, refinements=tuple(refinements), targets=tuple(targets),
            assignees=tuple(assignees), constraints=tuple(cs),
            duties=tuple(duties) if k == "permission" else ()),
        kinds, _MAYBE_ACTION, _ONE_CONSTRAINT, _ASSET_LIST, _PARTY_LIST, _TWO_CONSTRAINTS,
        _DUTIES)


RULES = rules()
PROHIBITIONS = rules("prohibition")
STRATEGIES = st.sampled_from(["perm", "prohibit", "invalid"])


def numbered(policy_rules: list[Rule], prefix: str = "r") -> tuple[Rule, ...]:
    """Give every rule and duty a uid of its own."""
    out = []
    for i, rule in enumerate(policy_rules):
        duties = tuple(dataclasses.replace(d, uid=f"{EX}{prefix}{i}-duty{j}")
                       for j, d in enumerate(rule.duties))
        out.append(dataclasses.replace(rule, uid=f"{EX}{prefix}{i}", duties=duties))
    return tuple(out)


def policies(kinds: st.SearchStrategy[Rule] = RULES, prefix: str = "r"
             ) -> st.SearchStrategy[Policy]:
    return st.builds(lambda found, conflict: Policy(EX + "policy-" + prefix, "Set",
                                                    numbered(found, prefix), conflict),
                     st.lists(kinds, max_size=4), STRATEGIES)


POLICIES = policies()
PROHIBITION_POLICIES = policies(PROHIBITIONS, "q")

_VALUE_POOLS = {
    ODRL + "purpose": st.lists(iris(PURPOSES), min_size=1, max_size=2),
    ODRL + "count": st.lists(numbers, min_size=1, max_size=2),
    ODRL + "spatial": st.lists(iris(PLACES), min_size=1, max_size=1),
    ODRL + "recipient": st.lists(iris(PARTIES), min_size=1, max_size=2),
    ODRL + "elapsedTime": st.lists(durations, min_size=1, max_size=1),
    EX + "moonPhase": st.lists(st.one_of(garbage, odd_iris), min_size=1, max_size=2),
}
_VALUES = st.fixed_dictionaries({}, optional=_VALUE_POOLS)
_GARBAGE_VALUES = st.dictionaries(st.sampled_from(LEFT_OPERANDS),
                                  st.lists(st.one_of(garbage, odd_iris), min_size=1,
                                           max_size=2), max_size=1)


def _request(action: str, who: str | None, what: str | None,
             values: dict[str, list[Value]], odd: dict[str, list[Value]]) -> Request:
    merged = {k: tuple(v) for k, v in values.items()}
    merged.update({k: tuple(v) for k, v in odd.items()})  # garbage on a sensible operand
    return Request(action, who, what, merged)


REQUESTS = st.builds(_request, st.sampled_from(ACTIONS), st.none() | st.sampled_from(PARTIES),
                     st.none() | st.sampled_from(ASSETS), _VALUES, _GARBAGE_VALUES)

MEMBERSHIPS = [(EX + "alice", EX + "team"), (EX + "bob", EX + "vendorA"),
               (EX + "track", EX + "album"), (EX + "doc", PD + "EmailAddress"),
               (EX + "Weird", DPV + "DirectMarketing"), (EX + "Milan", EX + "Italy"),
               (EX + "Italy", EX + "EU"), (EX + "team", EX + "vendorB")]
_MEMBERSHIP_LISTS = st.lists(st.sampled_from(MEMBERSHIPS), max_size=4)
_DUTY_STATES = st.lists(st.sampled_from([True, False, None]), min_size=8, max_size=8)


def _world(policy: Policy, now: datetime, pairs: list[tuple[str, str]],
           states: list[bool | None]) -> World:
    part_of: dict[str, set[str]] = {}
    for member, collection in pairs:
        part_of.setdefault(member, set()).add(collection)
    uids = [d.uid for r in policy.rules for d in r.duties if d.uid]
    duties = {uid: DutyState(state) for uid, state in zip(uids, states, strict=False)}
    return World(now, {k: frozenset(v) for k, v in part_of.items()}, duties)


SCENARIOS = st.builds(
    lambda policy, request, now, pairs, states: (policy, request,
                                                 _world(policy, now, pairs, states)),
    POLICIES, REQUESTS, moments, _MEMBERSHIP_LISTS, _DUTY_STATES)


def permits(report: PolicyReport) -> bool:
    return report.verdict is Verdict.PERMITTED


# -- (a) more prohibitions never permit ----------------------------------------------------------


@SETTINGS
@given(SCENARIOS, st.data())
def test_adding_a_prohibition_never_permits(scenario: tuple[Policy, Request, World],
                                            data: st.DataObject) -> None:
    policy, request, world = scenario
    before = evaluate(policy, request, world)
    extra = data.draw(PROHIBITIONS)
    extra = dataclasses.replace(extra, uid=EX + "added")
    at = data.draw(st.integers(0, len(policy.rules)))
    grown = dataclasses.replace(policy, rules=(*policy.rules[:at], extra, *policy.rules[at:]))
    after = evaluate(grown, request, world)
    if not permits(before):
        assert not permits(after)
    # A policy of prohibitions only, judged together with this one.
    others = data.draw(PROHIBITION_POLICIES)
    together = combined([before, evaluate(others, request, world)])
    if combined([before]) is not Verdict.PERMITTED:
        assert together is not Verdict.PERMITTED


# -- (b) fewer permissions never permit ------------------------------------------------------------


@SETTINGS
@given(SCENARIOS, st.data())
def test_removing_a_permission_never_permits(scenario: tuple[Policy, Request, World],
                                             data: st.DataObject) -> None:
    policy, request, world = scenario
    indexes = [i for i, r in enumerate(policy.rules) if r.kind == "permission"]
    if not indexes:
        return
    before = evaluate(policy, request, world)
    drop = data.draw(st.sampled_from(indexes))
    shrunk = dataclasses.replace(policy, rules=policy.rules[:drop] + policy.rules[drop + 1:])
    if not permits(before):
        assert not permits(evaluate(shrunk, request, world))


# -- (c) less certainty never permits --------------------------------------------------------------


def _leaves(item: AnyConstraint) -> int:
    if isinstance(item, LogicalConstraint):
        return sum(_leaves(c) for c in item.operands)
    return 1


def _spoil(item: AnyConstraint, index: int, how: str) -> tuple[AnyConstraint, int]:
    """``item`` with its ``index``-th leaf made undecidable; returns the leaves left to skip."""
    if isinstance(item, LogicalConstraint):
        operands = []
        for operand in item.operands:
            operand, index = _spoil(operand, index, how)
            operands.append(operand)
        return dataclasses.replace(item, operands=tuple(operands)), index
    if index != 0:
        return item, index - 1
    return undecidable(item, how), -1


def undecidable(item: Constraint, how: str) -> Constraint:
    """The constraint made impossible to decide, in one of several ways."""
    if how == "strip-zone" and item.left == ODRL + "dateTime" and item.right:
        stripped = tuple(Value.literal(v.text.replace("Z", "")[:19], v.kind) for v in item.right)
        return dataclasses.replace(item, right=stripped)
    if how == "unknown-left":
        return dataclasses.replace(item, left=EX + "neverSupplied")
    if how == "reference":
        return dataclasses.replace(item, right_reference=(EX + "elsewhere",))
    if how == "garbage-right":
        return dataclasses.replace(item, right=(Value.literal("??", XSD + "dateTime"),),
                                   operator=ODRL + "eq")
    return dataclasses.replace(item, problems=("made undecidable",))


def _spoil_rule(rule: Rule, index: int, how: str) -> Rule:
    fields = {}
    for name in ("constraints", "refinements"):
        out = []
        for item in getattr(rule, name):
            item, index = _spoil(item, index, how)
            out.append(item)
        fields[name] = tuple(out)
    return dataclasses.replace(rule, **fields)


HOWS = st.sampled_from(["strip-zone", "unknown-left", "reference", "garbage-right", "problem"])


@SETTINGS
@given(SCENARIOS, st.data(), HOWS)
def test_undecidable_constraint_never_permits(scenario: tuple[Policy, Request, World],
                                              data: st.DataObject, how: str) -> None:
    policy, request, world = scenario
    spots = [(i, n) for i, r in enumerate(policy.rules)
             for n in range(sum(_leaves(c) for c in (*r.constraints, *r.refinements)))]
    if not spots:
        return
    before = evaluate(policy, request, world)
    at, leaf = data.draw(st.sampled_from(spots))
    spoiled = list(policy.rules)
    spoiled[at] = _spoil_rule(spoiled[at], leaf, how)
    after = evaluate(dataclasses.replace(policy, rules=tuple(spoiled)), request, world)
    if not permits(before):
        assert not permits(after)
    # And, whatever came before, a permission with an undecidable constraint of its own (not
    # one operand of an or, which another operand may settle) is not active.
    flat = all(isinstance(c, Constraint)
               for c in (*spoiled[at].constraints, *spoiled[at].refinements))
    if spoiled[at].kind == "permission" and flat:
        assert not any(r.active for r in after.rules if r.rule.uid == spoiled[at].uid)


_PAY = Rule("duty", EX + "pay", ODRL + "compensate", constraints=(
    Constraint(ODRL + "dateTime", ODRL + "gt", (Value.literal("2025-01-01T00:00:00Z",
                                                              XSD + "dateTime"),)),))
_DUTY_POLICY = Policy(EX + "p", "Set", (Rule("permission", EX + "r", ODRL + "use",
                                             duties=(_PAY,)),))
_DUTY_WORLD = World(NOW, duties={EX + "pay": DutyState(False)})


@settings(max_examples=20, deadline=None, derandomize=True)
@given(st.sampled_from(["strip-zone", "unknown-left", "reference", "problem"]))
@example("strip-zone")
def test_undecidable_duty_constraint_never_permits(how: str) -> None:
    request = Request(ODRL + "use", EX + "alice", EX + "doc")
    assert evaluate(_DUTY_POLICY, request, _DUTY_WORLD).verdict is Verdict.NOT_COVERED
    spoiled_duty = dataclasses.replace(_PAY, constraints=(undecidable(_PAY.constraints[0], how),))
    permission = dataclasses.replace(_DUTY_POLICY.rules[0], duties=(spoiled_duty,))
    spoiled = dataclasses.replace(_DUTY_POLICY, rules=(permission,))
    assert not permits(evaluate(spoiled, request, _DUTY_WORLD))


# -- (d) nothing raises ----------------------------------------------------------------------------


@SETTINGS
@given(SCENARIOS)
def test_evaluator_never_raises(scenario: tuple[Policy, Request, World]) -> None:
    policy, request, world = scenario
    report = evaluate(policy, request, world)
    # The verdict agrees with the rule reports.
    permitting = report.active("permission")
    forbidding = report.active("prohibition")
    if report.verdict is Verdict.PERMITTED:
        assert permitting and (not forbidding or policy.conflict == "perm")
    elif report.verdict is Verdict.PROHIBITED:
        assert forbidding
    else:
        assert not permitting and not forbidding
    for rule in report.rules:
        if rule.undecided:
            assert rule.problems
    assert combined([report]) is report.verdict


@pytest.mark.filterwarnings("ignore::UserWarning")  # rdflib on ill-typed literals, as meant
@settings(SETTINGS, max_examples=60)
@given(SCENARIOS)
def test_report_writer_never_raises(scenario: tuple[Policy, Request, World]) -> None:
    report = evaluate(*scenario)
    graph = report_graph([report])
    assert len(graph) > 0


NODE_POOL = [URIRef(ODRL + n) for n in ("use", "read", "eq", "lt", "isA", "dateTime", "count",
                                        "purpose", "perm", "Set", "Agreement")] + \
    [URIRef(EX + n) for n in ("p", "r", "x", "c")] + [URIRef(DPV + "Marketing")]
PREDICATES = [URIRef(ODRL + n) for n in (
    "permission", "prohibition", "obligation", "duty", "remedy", "consequence", "action",
    "target", "assignee", "assigner", "constraint", "refinement", "leftOperand", "operator",
    "rightOperand", "rightOperandReference", "dataType", "unit", "or", "xone", "and",
    "andSequence", "uid", "source", "conflict", "profile", "inheritFrom", "partOf",
    "failure")] + [RDF.value, RDF.first, RDF.rest, RDF.type]


@st.composite
def graphs(draw: st.DrawFn) -> Graph:
    """A policy node with random ODRL triples hanging off it, blank nodes, lists and literals of
    any datatype included."""
    graph = Graph()
    policy = URIRef(EX + "p")
    graph.add((policy, RDF.type, URIRef(ODRL + draw(st.sampled_from(["Set", "Agreement",
                                                                        "Offer"])))))
    blanks = [BNode() for _ in range(4)]
    subjects = [policy, *blanks, URIRef(EX + "r")]
    objects = st.one_of(
        st.sampled_from(NODE_POOL + blanks + [RDF.nil]),
        st.builds(lambda t, d: Literal(t, datatype=URIRef(d)), st.text(max_size=20),
                  st.sampled_from(DATATYPES)),
        st.text(max_size=10).map(Literal))
    for s, p, o in draw(st.lists(st.tuples(st.sampled_from(subjects),
                                           st.sampled_from(PREDICATES), objects),
                                 max_size=25)):
        graph.add((s, p, o))
    return graph


@pytest.mark.filterwarnings("ignore::UserWarning")  # rdflib on ill-typed literals, as meant
@settings(SETTINGS, max_examples=100)
@given(graphs(), REQUESTS)
def test_reading_any_graph_never_raises(graph: Graph, request: Request) -> None:
    policy = read_policy(graph, URIRef(EX + "p"))
    report = evaluate(policy, request, World(NOW))
    report_graph([report])
    if policy.problems:
        assert not report.active("permission")


def test_repeated_undecidable_values_keep_no_frames() -> None:
    """Judging the same undecidable constraint many times must not make anything grow."""
    rule = Rule("permission", EX + "r", ODRL + "use", constraints=(
        Constraint(ODRL + "dateTime", ODRL + "gt",
                   (Value.literal("2025-01-01T00:00:00", XSD + "dateTime"),)),))
    policy = Policy(EX + "p", "Set", (rule,))
    request = Request(ODRL + "use", EX + "alice", EX + "doc")
    for _ in range(50):
        evaluate(policy, request, World(NOW))
    try:
        typed(rule.constraints[0].right[0], ODRL + "dateTime")  # type: ignore[union-attr]
    except Undecidable as exc:
        depth, tb = 0, exc.__traceback__
        while tb is not None:
            depth, tb = depth + 1, tb.tb_next
        assert depth < 10, f"the cached exception carries {depth} frames"

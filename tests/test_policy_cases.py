"""The ODRL evaluator against cases written as data in ``tests/policy_cases/*.toml``.

Each ``[[case]]`` holds a policy in Turtle (the standard prefixes below are prepended), a request
(``request`` as a compact table, or ``request_ttl`` an ``odrl:Request`` read with
``read_requests``), a state of the world (``world`` table, or ``world_ttl`` read with
``read_world``) and ``expect``: the verdict, per rule uid the activation, and optionally premise
satisfaction, undecided flags, duty states and the conflict flag. ``combined = true`` judges every
policy of the graph together with :func:`combined`. ``xfail`` (a reason) marks a case that shows a
known evaluator bug: it must fail until the bug is fixed (strict).

Operator and action cases are shorter: ``constraint`` is the body of one constraint (Turtle,
inside ``[ ]``) and ``rule_action`` the action ("none" for none; odrl:use by default) of one
``kind`` rule (permission by default) ``ex:r`` on ``ex:asset``; the request is alice acting on
``ex:asset`` (``request`` may change the action or assignee) with ``values``; ``holds`` (true,
false or "undecided") is what the constraint must come to, or ``covered`` what the action
premise must; the verdict and activation follow from it and the kind.

Compact forms: an IRI is written ``prefix:local`` or in full; a literal value is a table
``{ lit = "...", type = "xsd:..." }`` (type defaults to xsd:string), a TOML integer is an
xsd:integer. Rule keys in ``expect.active`` are a rule uid, or ``uid|action`` for a rule that
names several actions (each action is a rule of its own once read).
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from rdflib import RDF, Graph, URIRef

from vrm_agent.policy.evaluate import (
    PolicyReport,
    PremiseReport,
    RuleReport,
    Verdict,
    combined,
    evaluate,
)
from vrm_agent.policy.model import XSD, DutyState, Request, Value, World
from vrm_agent.policy.rdf import REPORT, policy_nodes, read_policy, read_requests, read_world
from vrm_agent.policy.rdf import report_graph as make_report_graph

CASES_DIR = Path(__file__).resolve().parent / "policy_cases"

PREFIXES = {
    "odrl": "http://www.w3.org/ns/odrl/2/",
    "xsd": XSD,
    "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
    "dct": "http://purl.org/dc/terms/",
    "dpv": "https://w3id.org/dpv#",
    "pd": "https://w3id.org/dpv/pd#",
    "ex": "http://example.com/",
    "report": "https://w3id.org/force/compliance-report#",
}
TURTLE_PREFIXES = "".join(f"@prefix {p}: <{iri}> .\n" for p, iri in PREFIXES.items())
DUTY_STATES = {"performed": True, "unperformed": False, "violated": False, "unknown": None}
VERDICTS = {v.value: v for v in Verdict}


def expand(text: str) -> str:
    """``prefix:local`` to a full IRI; anything else is returned as it is."""
    prefix, sep, local = text.partition(":")
    if sep and prefix in PREFIXES and not local.startswith("//"):
        return PREFIXES[prefix] + local
    return text


def to_value(raw: Any) -> Value:
    """A compact value: an IRI string, an integer, or ``{lit, type}``."""
    if isinstance(raw, bool):
        return Value.literal(str(raw).lower(), XSD + "boolean")
    if isinstance(raw, int):
        return Value.literal(str(raw), XSD + "integer")
    if isinstance(raw, Mapping):
        return Value.literal(str(raw["lit"]), expand(raw.get("type", "xsd:string")))
    return Value.iri(expand(str(raw)))


def to_values(raw: Mapping[str, Any] | None) -> dict[str, tuple[Value, ...]]:
    out: dict[str, tuple[Value, ...]] = {}
    for left, values in (raw or {}).items():
        items = values if isinstance(values, list) else [values]
        out[expand(left)] = tuple(to_value(v) for v in items)
    return out


def parse_turtle(text: str) -> Graph:
    return Graph().parse(data=TURTLE_PREFIXES + text, format="turtle")


@dataclass
class Case:
    """One case as read from its file."""

    id: str
    file: str
    about: str
    raw: dict[str, Any] = field(repr=False)

    @property
    def expect(self) -> dict[str, Any]:
        return self.raw.get("expect", {})


CASE_KEYS = frozenset({"id", "about", "policy", "request", "request_ttl", "world", "world_ttl",
                       "expect", "combined", "xfail", "constraint", "rule_action", "kind",
                       "values", "holds", "covered"})
EXPECT_KEYS = frozenset({"verdict", "active", "premises", "holds", "rule_undecided", "deontic",
                         "undecided", "conflict"})


def load_cases() -> list[Case]:
    """Every case of every file, compact ones expanded; a misspelt key is an error."""
    cases: list[Case] = []
    for path in sorted(CASES_DIR.glob("*.toml")):
        with path.open("rb") as handle:
            data = tomllib.load(handle)
        assert set(data) <= {"case"}, f"{path.name}: unknown tables {set(data) - {'case'}}"
        for raw in data.get("case", []):
            unknown = (set(raw) - CASE_KEYS) | (set(raw.get("expect", {})) - EXPECT_KEYS)
            assert not unknown, f"{path.name} {raw.get('id')}: unknown keys {unknown}"
            if "constraint" in raw or "rule_action" in raw:
                raw["policy"] = compact_policy(raw)
                raw.setdefault("request", {})
                raw["request"] = {"assignee": "ex:alice", "action": "odrl:use",
                                  "target": "ex:asset", **raw["request"]}
                if "values" in raw:
                    raw["request"]["values"] = raw["values"]
                raw["expect"] = {**compact_expect(raw), **raw.get("expect", {})}
            cases.append(Case(f"{path.stem}/{raw['id']}", path.name, raw.get("about", ""), raw))
    return cases


def build_request(case: Case) -> Request:
    raw = case.raw
    if "request_ttl" in raw:
        requests = read_requests(parse_turtle(raw["request_ttl"]))
        assert len(requests) == 1, f"{case.id}: the request graph must hold one request"
        return requests[0]
    req = raw["request"]
    return Request(
        action=expand(req["action"]),
        assignee=expand(req["assignee"]) if "assignee" in req else None,
        target=expand(req["target"]) if "target" in req else None,
        values=to_values(req.get("values")),
        uid=expand(req.get("uid", "ex:request")),
    )


def build_world(case: Case) -> World:
    raw = case.raw
    if "world_ttl" in raw:
        return read_world(parse_turtle(raw["world_ttl"]))
    spec = raw.get("world", {})
    now = datetime.fromisoformat(spec.get("now", "2025-06-15T12:00:00+00:00"))
    part_of = {expand(k): frozenset(expand(c) for c in (v if isinstance(v, list) else [v]))
               for k, v in spec.get("part_of", {}).items()}
    duties = {expand(k): DutyState(DUTY_STATES[v]) for k, v in spec.get("duties", {}).items()}
    return World(now, part_of, duties, to_values(spec.get("values")))


def compact_policy(raw: Mapping[str, Any]) -> str:
    """The one-rule policy of a compact case."""
    kind = raw.get("kind", "permission")
    action = raw.get("rule_action", "odrl:use")
    action = "" if action == "none" else f"odrl:action {action} ; "
    constraint = f"odrl:constraint [ {raw['constraint']} ] ; " if "constraint" in raw else ""
    return (f"ex:p a odrl:Set ; odrl:uid ex:p ;\n  odrl:{kind} [ odrl:uid ex:r ; "
            f"odrl:target ex:asset ; {action}{constraint}] .\n")


def compact_expect(raw: Mapping[str, Any]) -> dict[str, Any]:
    """What a compact case expects, from what its constraint (``holds``) or its action
    (``covered``) comes to."""
    premise = "constraint" if "holds" in raw else "action"
    holds = raw["holds"] if "holds" in raw else raw["covered"]
    prohibition = raw.get("kind", "permission") == "prohibition"
    active = holds is True or (prohibition and holds == "undecided")
    verdict = ("prohibited" if prohibition else "permitted") if active else "not-covered"
    out: dict[str, Any] = {"verdict": verdict, "active": {"ex:r": active},
                           "rule_undecided": {"ex:r": holds == "undecided"}}
    if not (premise == "action" and raw.get("rule_action") == "none"):
        out["holds"] = {"ex:r": {premise: holds}}
    return out


CASES = load_cases()


_RUNS: dict[str, tuple[list[PolicyReport], Verdict]] = {}


def run_case(case: Case) -> tuple[list[PolicyReport], Verdict]:
    """The case's reports and verdict, computed once (they are immutable)."""
    if case.id not in _RUNS:
        _RUNS[case.id] = _run_case(case)
    return _RUNS[case.id]


def _run_case(case: Case) -> tuple[list[PolicyReport], Verdict]:
    graph = parse_turtle(case.raw["policy"])
    request = build_request(case)
    world = build_world(case)
    if case.raw.get("combined"):
        reports = [evaluate(read_policy(graph, node), request, world)
                   for node in policy_nodes(graph)]
        assert len(reports) > 1, f"{case.id}: combined needs several policies"
        return reports, combined(reports)
    report = evaluate(read_policy(graph), request, world)
    return [report], report.verdict


def rules_by_key(reports: list[PolicyReport]) -> dict[str, list[RuleReport]]:
    """Rule reports by uid and by ``uid|action``, duties and remedies included."""
    found: dict[str, list[RuleReport]] = {}

    def add(report: RuleReport) -> None:
        uid = report.rule.uid or ""
        found.setdefault(uid, []).append(report)
        if report.rule.action:
            found.setdefault(f"{uid}|{report.rule.action}", []).append(report)
        for inner in (*report.conditions, *report.consequences):
            add(inner)

    for policy_report in reports:
        for rule_report in policy_report.rules:
            add(rule_report)
    return found


def key_of(text: str) -> str:
    uid, sep, action = text.partition("|")
    return expand(uid) + (f"|{expand(action)}" if sep else "")


def premises_of(report: RuleReport, kind: str) -> list[PremiseReport]:
    return [p for p in report.premises if p.kind == kind]


def check_case(case: Case) -> None:
    expect = case.expect
    reports, verdict = run_case(case)
    wanted_verdict = VERDICTS[expect["verdict"]]
    assert verdict is wanted_verdict, f"verdict {verdict}, expected {wanted_verdict}"
    rules = rules_by_key(reports)
    for key, wanted in expect.get("active", {}).items():
        got = rules.get(key_of(key))
        assert got, f"no rule report for {key}"
        assert all(r.active is wanted for r in got), \
            f"{key}: active {[r.active for r in got]}, expected {wanted}; " \
            f"problems {[r.problems for r in got]}"
    for key, kinds in expect.get("premises", {}).items():
        (report, *_) = rules[key_of(key)]
        for kind, wanted in kinds.items():
            found = premises_of(report, kind)
            assert found, f"{key}: no {kind} premise"
            states = [p.satisfied for p in found]
            if isinstance(wanted, list):
                assert states == wanted, f"{key} {kind}: {states}, expected {wanted}"
            else:
                assert all(s is wanted for s in states), \
                    f"{key} {kind}: {states}, expected {wanted}"
    for key, wanted in expect.get("holds", {}).items():
        # Per premise kind: what the premise *is* (true, false or "undecided").
        (report, *_) = rules[key_of(key)]
        for kind, value in wanted.items():
            states = [p.holds for p in premises_of(report, kind)]
            value = None if value == "undecided" else value
            assert states and all(s is value for s in states), f"{key} {kind} holds {states}"
    for key, wanted in expect.get("rule_undecided", {}).items():
        (report, *_) = rules[key_of(key)]
        assert report.undecided is wanted, f"{key}: undecided {report.undecided}"
        if wanted:
            assert report.problems, f"{key}: undecided without a reason"
    for key, wanted in expect.get("deontic", {}).items():
        (report, *_) = rules[key_of(key)]
        assert report.deontic is not None and report.deontic.value == wanted, \
            f"{key}: deontic {report.deontic}, expected {wanted}"
    if "undecided" in expect:
        assert len(reports) == 1
        assert reports[0].undecided is expect["undecided"], f"undecided {reports[0].undecided}"
    if "conflict" in expect:
        assert len(reports) == 1
        assert reports[0].conflict is expect["conflict"]


def _param(case: Case) -> Any:
    marks = [pytest.mark.xfail(strict=True, reason=case.raw["xfail"])] if "xfail" in case.raw \
        else []
    return pytest.param(case, id=case.id, marks=marks)


def test_enough_cases_with_unique_ids() -> None:
    ids = [c.id for c in CASES]
    assert len(ids) == len(set(ids)), "case ids repeat"
    assert len(CASES) >= 150


@pytest.mark.parametrize("case", [_param(c) for c in CASES])
def test_case(case: Case) -> None:
    """The verdict and every expected rule activation of the case."""
    check_case(case)


# -- the FORCE compliance report --------------------------------------------------------------

_ACTIVATION = {REPORT.Active, REPORT.Inactive}
_SATISFACTION = {REPORT.Satisfied, REPORT.Unsatisfied}
_PREMISE_TYPES = {REPORT.ConstraintReport, REPORT.PartyReport, REPORT.TargetReport,
                  REPORT.ActionReport}
_RULE_TYPES = {REPORT.PermissionReport, REPORT.ProhibitionReport, REPORT.DutyReport}


def check_premise(graph: Graph, node: Any) -> None:
    types = set(graph.objects(node, RDF.type))
    assert types & _PREMISE_TYPES, f"premise report {node} untyped: {types}"
    states = set(graph.objects(node, REPORT.satisfactionState))
    assert len(states) == 1 and states <= _SATISFACTION
    for part in graph.objects(node, REPORT.premiseReport):
        check_premise(graph, part)


def check_rule(graph: Graph, node: Any, report: RuleReport) -> None:
    types = set(graph.objects(node, RDF.type))
    assert types & _RULE_TYPES, f"rule report {node} untyped: {types}"
    states = set(graph.objects(node, REPORT.activationState))
    assert states == {REPORT.Active if report.active else REPORT.Inactive}
    if report.rule.uid:
        assert set(graph.objects(node, REPORT.rule)) == {URIRef(report.rule.uid)}
    premises = list(graph.objects(node, REPORT.premiseReport))
    assert len(premises) == len(report.premises)
    for premise in premises:
        check_premise(graph, premise)
    if report.rule.kind in ("permission", "prohibition"):
        assert len(set(graph.objects(node, REPORT.attemptState))) == 1
    if report.deontic is not None:
        assert set(graph.objects(node, REPORT.deonticState)) == {REPORT[report.deontic.value]}
    if report.performance is not None:
        assert set(graph.objects(node, REPORT.performanceState)) == {
            REPORT[report.performance.value]}
    conditions = list(graph.objects(node, REPORT.conditionReport))
    assert len(conditions) == len(report.conditions) + len(report.consequences)


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id) for c in CASES])
def test_report_graph(case: Case) -> None:
    """Every case's report, written in the FORCE Compliance Report Model, has a typed policy
    report with one typed rule report per rule, each with its activation state and typed
    premise reports."""
    reports, _ = run_case(case)
    graph = make_report_graph(reports)
    policy_reports = list(graph.subjects(RDF.type, REPORT.PolicyReport))
    assert len(policy_reports) == len(reports)
    for node in policy_reports:
        (report,) = [r for r in reports
                     if set(graph.objects(node, REPORT.policy)) == {URIRef(r.policy.uid)}
                     or not r.policy.uid]
        rule_nodes = list(graph.objects(node, REPORT.ruleReport))
        assert len(rule_nodes) == len(report.rules)
        assert rule_nodes or not report.rules
        by_state: dict[bool, int] = {True: 0, False: 0}
        for rule_node in rule_nodes:
            active = (rule_node, REPORT.activationState, REPORT.Active) in graph
            by_state[active] += 1
        assert by_state[True] == sum(r.active for r in report.rules)
        # Match each written rule report to one evaluated rule (by uid, activation and number
        # of premises) and check it in depth.
        remaining = list(report.rules)
        for rule_node in rule_nodes:
            uid = next(iter(graph.objects(rule_node, REPORT.rule)), None)
            active = (rule_node, REPORT.activationState, REPORT.Active) in graph
            count = len(list(graph.objects(rule_node, REPORT.premiseReport)))
            match = next(r for r in remaining
                         if (URIRef(r.rule.uid) if r.rule.uid else None) == uid
                         and r.active is active and len(r.premises) == count)
            remaining.remove(match)
            check_rule(graph, rule_node, match)
    # The graph serialises and reads back (no stray Python objects in it).
    again = Graph().parse(data=graph.serialize(format="turtle"), format="turtle")
    assert len(again) == len(graph)

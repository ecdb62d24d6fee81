"""Failing closed, case by case: whatever the evaluator cannot decide must leave a permission
inactive (the verdict is never PERMITTED on its strength) and a prohibition active, with the
premise marked undecided and a reason given. Each question is put to both kinds of rule.

Policies are written in Turtle and read with ``rdf.read_policy``, as they arrive in practice.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from rdflib import Graph

from vrm_agent.policy.evaluate import PolicyReport, RuleReport, Verdict, evaluate
from vrm_agent.policy.model import ODRL, XSD, Request, Value, World
from vrm_agent.policy.rdf import read_policy
from vrm_agent.policy.vocabulary import LOOKUP_PATH, Vocabulary, vocabulary

DPV = "https://w3id.org/dpv#"
EX = "http://example.com/"
PREFIXES = f"""@prefix odrl: <{ODRL}> .
@prefix xsd: <{XSD}> .
@prefix dpv: <{DPV}> .
@prefix ex: <{EX}> .
"""
NOW = datetime(2025, 6, 15, 12, 0, tzinfo=UTC)
WORLD = World(NOW)


def policy_of(kind: str, rule: str, policy_extra: str = "") -> str:
    """A Set with one rule ``ex:r`` of ``kind``; ``rule`` is Turtle inside the rule's ``[ ]``."""
    return (f"ex:p a odrl:Set ; odrl:uid ex:p {policy_extra};\n"
            f"  odrl:{kind} [ odrl:uid ex:r ; {rule} ] .\n")


def judge(turtle: str, request: Request, world: World = WORLD) -> PolicyReport:
    graph = Graph().parse(data=PREFIXES + turtle, format="turtle")
    return evaluate(read_policy(graph), request, world)


def ask(action: str = "use", *, who: str | None = "alice", target: str | None = "asset",
        values: dict[str, tuple[Value, ...]] | None = None) -> Request:
    return Request(action if ":" in action else ODRL + action,
                   EX + who if who else None, EX + target if target else None,
                   values or {})


def the_rule(report: PolicyReport) -> RuleReport:
    (rule,) = [r for r in report.rules if r.rule.uid == EX + "r"]
    return rule


def assert_permission_closed(report: PolicyReport) -> None:
    """The permission is not active, nothing is permitted, and the report says why."""
    rule = the_rule(report)
    assert rule.rule.kind == "permission"
    assert not rule.active
    assert report.verdict is not Verdict.PERMITTED
    assert rule.undecided and rule.problems, "an undecided premise must say why"


def assert_prohibition_closed(report: PolicyReport) -> None:
    """The prohibition is active, the verdict is PROHIBITED, and the report says why."""
    rule = the_rule(report)
    assert rule.rule.kind == "prohibition"
    assert rule.active
    assert report.verdict is Verdict.PROHIBITED
    assert rule.undecided and rule.problems, "an undecided premise must say why"


def both_closed(rule: str, request: Request, world: World = WORLD, policy_extra: str = "") -> None:
    """The same rule body as a permission (must not apply) and as a prohibition (must)."""
    assert_permission_closed(judge(policy_of("permission", rule, policy_extra), request, world))
    assert_prohibition_closed(judge(policy_of("prohibition", rule, policy_extra), request, world))


def constraint(left: str, operator: str, right: str, extra: str = "") -> str:
    return (f"odrl:target ex:asset ; odrl:action odrl:use ; odrl:constraint [ "
            f"odrl:leftOperand {left} ; odrl:operator {operator} ; {right} {extra}]")


def iri(name: str) -> Value:
    return Value.iri(name.replace("dpv:", DPV).replace("ex:", EX))


# -- parties --------------------------------------------------------------------------------------


def test_permission_for_vendor_a_does_not_permit_vendor_b_on_the_rule() -> None:
    report = judge(policy_of("permission", "odrl:assignee ex:vendorA ; odrl:target ex:asset ; "
                                           "odrl:action odrl:use"), ask(who="vendorB"))
    assert not the_rule(report).active
    assert report.verdict is Verdict.NOT_COVERED
    assert [p.satisfied for p in the_rule(report).premises if p.kind == "party"] == [False]


def test_permission_for_vendor_a_does_not_permit_vendor_b_on_the_policy() -> None:
    report = judge(policy_of("permission", "odrl:target ex:asset ; odrl:action odrl:use",
                             "; odrl:assignee ex:vendorA "), ask(who="vendorB"))
    assert not the_rule(report).active
    assert report.verdict is Verdict.NOT_COVERED


def test_permission_for_vendor_a_with_nobody_asking() -> None:
    report = judge(policy_of("permission", "odrl:assignee ex:vendorA ; odrl:target ex:asset ; "
                                           "odrl:action odrl:use"), ask(who=None))
    assert_permission_closed(report)


@pytest.mark.parametrize("level", ["rule", "policy"])
def test_prohibition_for_vendor_a(level: str) -> None:
    """A prohibition on vendor A applies to vendor A, to a member of A, and to a request that
    does not say who asks; vendor B, who is not A, is (rightly) not bound by it."""
    rule = "odrl:target ex:asset ; odrl:action odrl:use"
    turtle = (policy_of("prohibition", "odrl:assignee ex:vendorA ; " + rule) if level == "rule"
              else policy_of("prohibition", rule, "; odrl:assignee ex:vendorA "))
    assert the_rule(judge(turtle, ask(who="vendorA"))).active
    assert_prohibition_closed(judge(turtle, ask(who=None)))
    member = World(NOW, part_of={EX + "shopX": frozenset({EX + "vendorA"})})
    assert the_rule(judge(turtle, ask(who="shopX"), member)).active
    assert not the_rule(judge(turtle, ask(who="vendorB"))).active


# -- left operands with no value, of the wrong type, or unknown ----------------------------------


def test_spatial_with_nothing_supplying_it() -> None:
    both_closed(constraint("odrl:spatial", "odrl:eq", "odrl:rightOperand ex:Italy"), ask())


def test_spatial_supplied_is_decided() -> None:
    rule = constraint("odrl:spatial", "odrl:eq", "odrl:rightOperand ex:Italy")
    request = ask(values={ODRL + "spatial": (iri("ex:Italy"),)})
    assert judge(policy_of("permission", rule), request).verdict is Verdict.PERMITTED
    assert judge(policy_of("prohibition", rule), request).verdict is Verdict.PROHIBITED
    elsewhere = ask(values={ODRL + "spatial": (iri("ex:France"),)})
    assert judge(policy_of("prohibition", rule), elsewhere).verdict is Verdict.NOT_COVERED


@pytest.mark.parametrize("literal", ['"2025-01-01T00:00:00"^^xsd:dateTime',
                                     '"2025-01-01T00:00:00"'],
                         ids=["typed", "plain-string"])
def test_datetime_without_time_zone(literal: str) -> None:
    both_closed(constraint("odrl:dateTime", "odrl:gt", f"odrl:rightOperand {literal}"), ask())


@pytest.mark.parametrize("literal", ['"2025-01-01T00:00:00Z"^^xsd:dateTime',
                                     '"2025-01-01T00:00:00Z"',
                                     '"2025-01-01T01:00:00+01:00"^^xsd:dateTime'],
                         ids=["typed-Z", "plain-Z", "offset"])
def test_datetime_with_time_zone_is_decided(literal: str) -> None:
    rule = constraint("odrl:dateTime", "odrl:gt", f"odrl:rightOperand {literal}")
    permission = judge(policy_of("permission", rule), ask())
    assert permission.verdict is Verdict.PERMITTED and not the_rule(permission).undecided
    prohibition = judge(policy_of("prohibition", rule), ask())
    assert prohibition.verdict is Verdict.PROHIBITED and not the_rule(prohibition).undecided
    later = constraint("odrl:dateTime", "odrl:gt",
                       f"odrl:rightOperand {literal.replace('2025-01-01', '2030-01-01')}")
    assert judge(policy_of("prohibition", later), ask()).verdict is Verdict.NOT_COVERED


def test_world_without_time_zone_is_refused() -> None:
    with pytest.raises(ValueError):
        World(datetime(2025, 6, 15, 12, 0))


def test_unknown_left_operand() -> None:
    assert not vocabulary().is_left_operand(EX + "moonPhase")
    both_closed(constraint("ex:moonPhase", "odrl:eq", "odrl:rightOperand ex:full"), ask())


def test_malformed_duration() -> None:
    request = ask(values={ODRL + "elapsedTime": (Value.literal("P10D", XSD + "duration"),)})
    for operator in ("odrl:lteq", "odrl:gt", "odrl:eq"):
        both_closed(constraint("odrl:elapsedTime", operator,
                               'odrl:rightOperand "P90X"^^xsd:duration'), request)


def test_malformed_duration_on_the_request_side() -> None:
    request = ask(values={ODRL + "elapsedTime": (Value.literal("P90X", XSD + "duration"),)})
    both_closed(constraint("odrl:elapsedTime", "odrl:lteq",
                           'odrl:rightOperand "P30D"^^xsd:duration'), request)


@pytest.mark.parametrize("right", ['odrl:rightOperand "2025-01-01T00:00:00Z"^^xsd:dateTime',
                                   'odrl:rightOperand "P1D"^^xsd:duration',
                                   "odrl:rightOperand ex:five"],
                         ids=["date", "duration", "iri"])
def test_number_compared_to_something_else(right: str) -> None:
    request = ask(values={ODRL + "count": (Value.literal("5", XSD + "integer"),)})
    both_closed(constraint("odrl:count", "odrl:lt", right), request)


def test_date_compared_to_a_number() -> None:
    both_closed(constraint("odrl:dateTime", "odrl:lt", 'odrl:rightOperand "5"^^xsd:integer'),
                ask())


def test_right_operand_reference() -> None:
    request = ask(values={ODRL + "count": (Value.literal("1", XSD + "integer"),)})
    both_closed(constraint("odrl:count", "odrl:lteq",
                           "odrl:rightOperandReference <http://example.com/limit>"), request)


@pytest.mark.parametrize("body", [
    "odrl:leftOperand odrl:count ; odrl:rightOperand 5",
    "odrl:operator odrl:eq ; odrl:rightOperand 5",
    "odrl:leftOperand odrl:count ; odrl:operator odrl:eq",
    "odrl:leftOperand odrl:count ; odrl:operator ex:about ; odrl:rightOperand 5",
    'odrl:leftOperand "count" ; odrl:operator odrl:eq ; odrl:rightOperand 5',
], ids=["no-operator", "no-left-operand", "no-right-operand", "unknown-operator",
        "literal-left-operand"])
def test_malformed_constraint(body: str) -> None:
    request = ask(values={ODRL + "count": (Value.literal("5", XSD + "integer"),)})
    both_closed(f"odrl:target ex:asset ; odrl:action odrl:use ; odrl:constraint [ {body} ]",
                request)


def test_unit_is_not_compared() -> None:
    request = ask(values={ODRL + "absoluteSize": (Value.literal("5", XSD + "integer"),)})
    both_closed(constraint("odrl:absoluteSize", "odrl:lteq", "odrl:rightOperand 10",
                           "; odrl:unit ex:megabyte "), request)


# -- purposes and DPV ------------------------------------------------------------------------------


def test_purpose_not_in_dpv_against_marketing() -> None:
    assert not vocabulary().is_known_concept(EX + "GrowthHacking")
    request = ask(values={ODRL + "purpose": (iri("ex:GrowthHacking"),)})
    both_closed(constraint("odrl:purpose", "odrl:isA", "odrl:rightOperand dpv:Marketing"),
                request)


def test_purpose_as_text_against_marketing() -> None:
    request = ask(values={ODRL + "purpose": (Value.literal("marketing"),)})
    both_closed(constraint("odrl:purpose", "odrl:isA", "odrl:rightOperand dpv:Marketing"),
                request)


def test_no_purpose_given() -> None:
    both_closed(constraint("odrl:purpose", "odrl:isA", "odrl:rightOperand dpv:Marketing"), ask())


@pytest.mark.parametrize("banned", ["Personalisation", "Marketing", "Advertising"])
def test_personalised_advertising_is_caught(banned: str) -> None:
    """DPV places personalised advertising below advertising (so marketing) and below
    personalisation; a prohibition on any of them applies, decided, not by failing closed."""
    vocab = vocabulary()
    assert vocab.is_a(DPV + "PersonalisedAdvertising", DPV + banned) is True
    rule = constraint("odrl:purpose", "odrl:isA", f"odrl:rightOperand dpv:{banned}")
    request = ask(values={ODRL + "purpose": (iri("dpv:PersonalisedAdvertising"),)})
    report = judge(policy_of("prohibition", rule), request)
    assert report.verdict is Verdict.PROHIBITED
    assert the_rule(report).active and not the_rule(report).undecided
    assert not judge(policy_of("permission", rule), ask(
        values={ODRL + "purpose": (iri("dpv:CustomerCare"),)})).rules[0].active


def test_delivery_of_goods_within_requested_service_provision() -> None:
    assert vocabulary().is_a(DPV + "DeliveryOfGoods", DPV + "RequestedServiceProvision")
    rule = constraint("odrl:purpose", "odrl:isA", "odrl:rightOperand dpv:RequestedServiceProvision")
    report = judge(policy_of("permission", rule),
                   ask(values={ODRL + "purpose": (iri("dpv:DeliveryOfGoods"),)}))
    assert report.verdict is Verdict.PERMITTED and not report.undecided
    other = judge(policy_of("permission", rule),
                  ask(values={ODRL + "purpose": (iri("dpv:Marketing"),)}))
    assert other.verdict is Verdict.NOT_COVERED and not other.undecided


def test_target_dpv_cannot_place() -> None:
    both_closed("odrl:target <https://w3id.org/dpv/pd#Contact> ; odrl:action odrl:use",
                ask(target="someFile"))


# -- actions ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("action", ["write", "modify", "delete", "compensate"])
def test_actions_are_known(action: str) -> None:
    """These are ODRL actions: a rule on one applies to a request for it, decided."""
    assert vocabulary().is_action(ODRL + action)
    rule = f"odrl:target ex:asset ; odrl:action odrl:{action}"
    permission = judge(policy_of("permission", rule), ask(action))
    assert permission.verdict is Verdict.PERMITTED and not permission.undecided
    prohibition = judge(policy_of("prohibition", rule), ask(action))
    assert prohibition.verdict is Verdict.PROHIBITED and not prohibition.undecided
    other = judge(policy_of("permission", rule), ask("transfer"))
    assert other.verdict is Verdict.NOT_COVERED and not other.undecided


@pytest.mark.parametrize("asked", ["read", "transfer", "sell", "write", "compensate"])
def test_rule_without_action_applies_to_any(asked: str) -> None:
    permission = judge(policy_of("permission", "odrl:target ex:asset"), ask(asked))
    assert permission.verdict is Verdict.PERMITTED
    prohibition = judge(policy_of("prohibition", "odrl:target ex:asset"), ask(asked))
    assert prohibition.verdict is Verdict.PROHIBITED


def test_unknown_asked_action() -> None:
    both_closed("odrl:target ex:asset ; odrl:action odrl:use", ask(EX + "teleport"))


def test_unknown_rule_action() -> None:
    both_closed("odrl:target ex:asset ; odrl:action ex:frobnicate", ask("read"))


def test_implied_action_reaches_prohibitions_only() -> None:
    """With a vocabulary in which moving implies deleting (the pinned ODRL 2.2 states no
    odrl:implies), a prohibition on deleting applies to a request to move; a permission to
    delete does not cover moving."""
    lookup = json.loads(LOOKUP_PATH.read_text(encoding="utf-8"))
    lookup["odrl"]["actions"][ODRL + "move"]["implies"] = [ODRL + "delete"]
    vocab = Vocabulary(lookup)
    assert vocabulary().implied_by(ODRL + "move") == frozenset()
    assert vocab.implied_by(ODRL + "move") == {ODRL + "delete"}
    rule = "odrl:target ex:asset ; odrl:action odrl:delete"
    graph = Graph().parse(data=PREFIXES + policy_of("prohibition", rule), format="turtle")
    assert evaluate(read_policy(graph), ask("move"), WORLD,
                    vocab=vocab).verdict is Verdict.PROHIBITED
    assert evaluate(read_policy(graph), ask("move"), WORLD).verdict is Verdict.NOT_COVERED
    graph = Graph().parse(data=PREFIXES + policy_of("permission", rule), format="turtle")
    assert evaluate(read_policy(graph), ask("move"), WORLD,
                    vocab=vocab).verdict is Verdict.NOT_COVERED


# -- logical constraints ---------------------------------------------------------------------------

_COUNT_LT_3 = "[ odrl:leftOperand odrl:count ; odrl:operator odrl:lt ; odrl:rightOperand 3 ]"
_COUNT_LT_9 = "[ odrl:leftOperand odrl:count ; odrl:operator odrl:lt ; odrl:rightOperand 9 ]"
_SPATIAL = "[ odrl:leftOperand odrl:spatial ; odrl:operator odrl:eq ; odrl:rightOperand ex:It ]"


def logical(operator: str, *operands: str) -> str:
    return (f"odrl:target ex:asset ; odrl:action odrl:use ; "
            f"odrl:constraint [ odrl:{operator} ( {' '.join(operands)} ) ]")


def count(n: int) -> Request:
    return ask(values={ODRL + "count": (Value.literal(str(n), XSD + "integer"),)})


@pytest.mark.parametrize(("operator", "n", "holds"), [
    ("or", 1, True), ("or", 5, True), ("or", 10, False),
    ("xone", 1, False), ("xone", 5, True), ("xone", 10, False),
    ("and", 1, True), ("and", 5, False), ("and", 10, False),
    ("andSequence", 1, True), ("andSequence", 5, False), ("andSequence", 10, False),
])
def test_logical_operators_work(operator: str, n: int, holds: bool) -> None:
    rule = logical(operator, _COUNT_LT_3, _COUNT_LT_9)
    permission = judge(policy_of("permission", rule), count(n))
    assert the_rule(permission).active is holds and not permission.undecided
    prohibition = judge(policy_of("prohibition", rule), count(n))
    assert the_rule(prohibition).active is holds and not prohibition.undecided


@pytest.mark.parametrize(("operator", "n"), [("or", 5), ("xone", 5), ("xone", 1), ("and", 1),
                                             ("andSequence", 1)])
def test_logical_with_an_undecidable_operand(operator: str, n: int) -> None:
    """The spatial operand cannot be decided, and the count operand does not settle the
    logical constraint without it (false for or, either for xone, true for and)."""
    both_closed(logical(operator, _SPATIAL, _COUNT_LT_3), count(n))


@pytest.mark.parametrize(("operator", "n", "holds"), [("or", 1, True), ("and", 5, False),
                                                      ("andSequence", 5, False)])
def test_logical_settled_despite_an_undecidable_operand(operator: str, n: int,
                                                        holds: bool) -> None:
    """or with a true operand holds, and with a false one does not, whatever the other."""
    rule = logical(operator, _SPATIAL, _COUNT_LT_3)
    for kind in ("permission", "prohibition"):
        report = judge(policy_of(kind, rule), count(n))
        assert the_rule(report).active is holds


# -- policies that cannot be read whole ------------------------------------------------------------


@pytest.mark.parametrize("extra", ["; odrl:profile <http://example.com/profile> ",
                                   "; odrl:inheritFrom ex:parent "], ids=["profile", "inheritFrom"])
def test_policy_with_profile_or_inheritance(extra: str) -> None:
    rule = "odrl:target ex:asset ; odrl:action odrl:use"
    permission = judge(policy_of("permission", rule, extra), ask("read"))
    assert not the_rule(permission).active
    assert permission.verdict is Verdict.NOT_COVERED and permission.undecided
    prohibition = judge(policy_of("prohibition", rule, extra), ask("read"))
    assert the_rule(prohibition).active and prohibition.verdict is Verdict.PROHIBITED

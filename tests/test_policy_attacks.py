"""Attempts to turn the terms engine against the person, each kept as a test: spellings that
dodge a prohibition, broader asks that take a forbidden thing in, terms that read broader than
written, and documents made to crash or stall the reader. Pure: no pod, no daemon."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from rdflib import Graph, URIRef

from vrm_agent.negotiation.decide import Outcome, agreement_for, decide
from vrm_agent.negotiation.odrl import Constraint, Policy, Rule
from vrm_agent.negotiation.targets import with_normalised_targets
from vrm_agent.negotiation.terms import default_policies
from vrm_agent.negotiation.wire import MalformedMessage, message_json, parse_message
from vrm_agent.policy.model import Policy as TermsPolicy
from vrm_agent.policy.rdf import read_policy
from vrm_agent.policy.validate import check

PERSON = "https://alice.pod.example/profile/card#me"
VENDOR = "https://shop.example/profile#me"
NOW = datetime(2026, 6, 1, tzinfo=UTC)
PREFIXES = """@prefix odrl: <http://www.w3.org/ns/odrl/2/> .
@prefix dpv: <https://w3id.org/dpv#> .
@prefix pd: <https://w3id.org/dpv/pd#> .
@prefix ex: <https://example.org/> .
"""
ROSTER = default_policies(PERSON)
DPV = "https://w3id.org/dpv#"
PD = "https://w3id.org/dpv/pd#"


def terms(body: str, uid: str = "https://example.org/terms") -> TermsPolicy:
    graph = Graph().parse(data=PREFIXES + body, format="turtle")
    return read_policy(graph, URIRef(uid))


def ask(target: str, purpose: str, *, action: str = "use",
        duration: str = "P7D") -> Policy:
    return Policy("urn:uuid:2c8c0b1e-0000-4000-8000-000000000001", "Request", (
        Rule("permission", action, (target,), (Constraint("purpose", "eq", purpose),
                                               Constraint("elapsedTime", "eq", duration))),))


def outcome(request: Policy, policies: list[TermsPolicy], **kw: object) -> Outcome:
    return decide(request, policies, vendor=VENDOR, now=NOW, **kw).outcome  # type: ignore[arg-type]


ANY_USE = terms("""<https://example.org/terms> a odrl:Set ; odrl:conflict odrl:prohibit ;
    odrl:permission [ odrl:action odrl:use ] ;
    odrl:prohibition [ odrl:action odrl:use ; odrl:constraint [ odrl:leftOperand odrl:purpose ;
        odrl:operator odrl:eq ; odrl:rightOperand dpv:Marketing ] ] .""")


@pytest.mark.parametrize("spelling", [
    "http://w3id.org/dpv#Marketing", DPV + "marketing", DPV + "Mark%65ting",
    DPV + "Marketing#x", DPV + "Marketing/../ServiceProvision", "https://W3ID.org/dpv#Marketing",
])
def test_another_spelling_of_a_forbidden_purpose_is_not_agreed(spelling: str) -> None:
    assert outcome(ask(PD + "EmailAddress", DPV + "Marketing"), [ANY_USE]) is Outcome.REFUSE
    assert outcome(ask(PD + "EmailAddress", spelling), [ANY_USE]) is not Outcome.AGREE


def test_a_broader_action_does_not_take_in_a_forbidden_read() -> None:
    policy = terms(f"""<https://example.org/terms> a odrl:Set ; odrl:conflict odrl:prohibit ;
        odrl:permission [ odrl:assignee <{VENDOR}> ; odrl:action odrl:use ;
                          odrl:target pd:Contact ] ;
        odrl:prohibition [ odrl:action odrl:read ; odrl:target pd:EmailAddress ] .""")
    assert outcome(ask(PD + "EmailAddress", DPV + "ServiceProvision"), [policy]) is \
        Outcome.REFUSE


def test_use_is_agreed_without_what_the_terms_forbid_and_the_agreement_says_so() -> None:
    decision = decide(ask(PD + "EmailAddress", DPV + "ServiceProvision"), ROSTER,
                      vendor=VENDOR, now=NOW)
    assert decision.outcome is Outcome.AGREE
    assert "distribute" in decision.granted[0].excluded
    agreement = agreement_for(decision.granted, uid="urn:a", person=PERSON, vendor=VENDOR,
                              now=NOW)
    assert {r.action for r in agreement.prohibitions} >= {"distribute"}
    assert all(r.targets == (PD + "EmailAddress",) for r in agreement.prohibitions)


def test_a_category_kept_with_forbidden_data_is_refused() -> None:
    no_purchases = terms("""<https://example.org/terms> a odrl:Set ;
        odrl:prohibition [ odrl:action odrl:use ; odrl:target pd:Purchase ] .""")
    container = "https://alice.pod.example/vrm/transactions/"
    placed = {container: frozenset({PD + "Purchase", PD + "PurchasesAndSpendingHabit"})}
    request = ask(PD + "PurchasesAndSpendingHabit", DPV + "ServiceProvision")
    assert outcome(request, ROSTER) is Outcome.AGREE
    assert outcome(request, [*ROSTER, no_purchases], part_of=placed) is Outcome.REFUSE


DIARY = "https://alice.pod.example/health/diary.ttl"


@pytest.mark.parametrize("spelling", [
    DIARY, "https://alice.pod.example/health/./diary.ttl", "https://ALICE.pod.example/health/diary.ttl",
    "https://alice.pod.example/health/%64iary.ttl", "https://alice.pod.example:443/health/diary.ttl",
    "https://alice.pod.example/x/../health/diary.ttl", "https://alice.pod.example/health/",
])
def test_a_forbidden_resource_is_not_agreed_under_another_spelling_or_its_container(
        spelling: str) -> None:
    policy = terms(f"""<https://example.org/terms> a odrl:Set ; odrl:conflict odrl:prohibit ;
        odrl:permission [ odrl:assignee <{VENDOR}> ; odrl:action odrl:use ;
            odrl:constraint [ odrl:leftOperand odrl:purpose ; odrl:operator odrl:isA ;
                              odrl:rightOperand dpv:ServiceProvision ] ] ;
        odrl:prohibition [ odrl:action odrl:use ; odrl:target <{DIARY}> ] .""")
    request = with_normalised_targets(ask(spelling, DPV + "ServiceProvision"))
    assert outcome(request, [policy]) is Outcome.REFUSE


def test_a_prohibition_on_a_party_collection_applies_when_membership_is_unknown() -> None:
    brokers = terms("""<https://example.org/terms> a odrl:Set ;
        odrl:prohibition [ odrl:assignee ex:dataBrokers ; odrl:action odrl:use ] .
        ex:dataBrokers a odrl:PartyCollection .""")
    request = ask(PD + "EmailAddress", DPV + "ServiceProvision")
    assert outcome(request, ROSTER) is Outcome.AGREE
    assert outcome(request, [*ROSTER, brokers]) is not Outcome.AGREE


@pytest.mark.parametrize("rule", [
    "odrl:permission [ ]",
    'odrl:permission "everything"',
    """odrl:permission [ odrl:action odrl:use ; odrl:constriant [ odrl:leftOperand odrl:purpose ;
        odrl:operator odrl:isA ; odrl:rightOperand dpv:ServiceProvision ] ]""",
    "odrl:permission [ odrl:action odrl:use ; odrl:asignee ex:lab ]",
    """odrl:permission [ odrl:action odrl:use ] ; odrl:constraint [ odrl:leftOperand
        odrl:purpose ; odrl:operator odrl:isA ; odrl:rightOperand dpv:ServiceProvision ]""",
    """odrl:permission [ odrl:action odrl:use ; odrl:refinement [ odrl:leftOperand
        odrl:purpose ; odrl:operator odrl:isA ; odrl:rightOperand dpv:ServiceProvision ] ]""",
])
def test_a_permission_that_reads_broader_than_written_is_refused_and_never_applies(
        rule: str) -> None:
    policy = terms(f"<https://example.org/terms> a odrl:Set ; {rule} .")
    assert check(policy).problems
    # As the daemon judges: terms that do not validate are named, and send items to the person.
    assert outcome(ask(PD + "EmailAddress", DPV + "ResearchAndDevelopment"), [policy],
                   unreadable=["terms"]) is Outcome.ASK_PERSON


def test_a_list_that_loops_is_read_without_error() -> None:
    graph = Graph().parse(format="turtle", data=PREFIXES + """
        <https://example.org/terms> a odrl:Set ; odrl:permission [ odrl:action odrl:use ;
            odrl:constraint [ odrl:and _:l1 ] ] .
        _:l1 <http://www.w3.org/1999/02/22-rdf-syntax-ns#first> [ odrl:leftOperand odrl:purpose ;
                odrl:operator odrl:isA ; odrl:rightOperand dpv:ServiceProvision ] ;
             <http://www.w3.org/1999/02/22-rdf-syntax-ns#rest> _:l1 .""")
    policy = read_policy(graph, URIRef("https://example.org/terms"))
    assert len(policy.rules) == 1


def test_shared_nodes_cannot_multiply_into_millions_of_constraints() -> None:
    lines = [PREFIXES, "<https://example.org/terms> a odrl:Set ; odrl:permission [ "
             "odrl:action odrl:use ; odrl:constraint ex:c0 ] ."]
    for depth in range(15):
        lines.append(f"ex:c{depth} odrl:and (ex:c{depth + 1} ex:c{depth + 1} ex:c{depth + 1}) .")
    lines.append("ex:c15 odrl:leftOperand odrl:purpose ; odrl:operator odrl:eq ; "
                 "odrl:rightOperand dpv:ServiceProvision .")
    policy = read_policy(Graph().parse(data="\n".join(lines), format="turtle"),
                         URIRef("https://example.org/terms"))
    assert policy.problems and not check(policy).valid
    assert outcome(ask(PD + "EmailAddress", DPV + "ServiceProvision"), [policy]) is not \
        Outcome.AGREE


def _request_message(purpose: object, extra: list[dict[str, object]] | None = None) -> bytes:
    message = message_json("ContractRequestMessage", policy=ask(
        PD + "EmailAddress", DPV + "ServiceProvision"))
    rule = message["policy"]["permission"][0]
    rule["constraint"] = [{"leftOperand": "purpose", **purpose}, *(extra or [])]  # type: ignore[dict-item]
    return json.dumps(message).encode()


@pytest.mark.parametrize("purpose", [
    {"operator": "isAnyOf", "rightOperand": [{"id": "dpv:ServiceProvision"},
                                             {"id": "dpv:Marketing"}]},
    {"operator": "isNoneOf", "rightOperand": {"id": "dpv:ServiceProvision"}},
    {"operator": "eq", "rightOperand": {"@value": "mailto:shop@example.org"}},
])
def test_a_request_states_one_purpose_iri_with_eq(purpose: dict[str, object]) -> None:
    with pytest.raises(MalformedMessage):
        parse_message(_request_message(purpose))


def test_a_request_with_two_purposes_is_refused() -> None:
    second = {"leftOperand": "purpose", "operator": "eq",
              "rightOperand": {"id": "dpv:Marketing"}}
    with pytest.raises(MalformedMessage, match="exactly one purpose"):
        parse_message(_request_message(
            {"operator": "eq", "rightOperand": {"id": "dpv:ServiceProvision"}}, [second]))


def test_every_odrl_action_may_be_asked_for_with_its_prefix() -> None:
    message = json.loads(_request_message(
        {"operator": "eq", "rightOperand": {"id": "dpv:ServiceProvision"}}))
    message["policy"]["permission"][0]["action"] = "odrl:give"
    parsed = parse_message(json.dumps(message))
    assert parsed.policy is not None and parsed.policy.permissions[0].action == "give"
    assert timedelta(days=7)  # the request keeps its duration

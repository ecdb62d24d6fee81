"""The negotiation core without sockets: decisions, the state machine, the wire format."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from vrm_agent.linkeddata.loader import jsonld, load_document
from vrm_agent.negotiation.decide import Outcome, agreement_for, decide, offer_for
from vrm_agent.negotiation.durations import end_of, requested_duration
from vrm_agent.negotiation.odrl import DPV, PD, Constraint, Policy, Rule, asks_of
from vrm_agent.negotiation.protocol import (
    Event,
    Negotiation,
    ProtocolViolation,
    Role,
    State,
    transition,
)
from vrm_agent.negotiation.terms import as_terms, default_policies, default_terms
from vrm_agent.negotiation.wire import (
    MalformedMessage,
    message_json,
    parse_message,
    policy_from_json,
    policy_json,
)
from vrm_agent.policy.vocabulary import vocabulary

PERSON, VENDOR = "http://pod/alice#me", "http://pod/acme#me"
NOW = datetime(2026, 6, 1, tzinfo=UTC)
TERMS = default_policies(PERSON)


def request(*items: tuple[str, str, str | None], action: str = "use") -> Policy:
    rules = []
    for target, purpose, duration in items:
        constraints = [Constraint("purpose", "eq", DPV + purpose)]
        if duration:
            constraints.append(Constraint("elapsedTime", "lteq", duration))
        rules.append(Rule("permission", action, (PD + target,), tuple(constraints)))
    return Policy("urn:uuid:r1", "Request", tuple(rules), assignee=VENDOR)


def test_purpose_hierarchy() -> None:
    is_a = vocabulary().is_a
    assert is_a(DPV + "PersonalisedAdvertising", DPV + "Personalisation")
    assert is_a(DPV + "DeliveryOfGoods", DPV + "RequestedServiceProvision")
    assert is_a(DPV + "PersonalisedAdvertising", DPV + "Marketing")
    assert is_a(DPV + "DeliveryOfGoods", DPV + "ServiceProvision")
    assert not is_a(DPV + "ServiceProvision", DPV + "Marketing")


def test_service_delivery_is_agreed_with_its_duty() -> None:
    decision = decide(request(("EmailAddress", "ServiceProvision", "P30D")), TERMS,
                      vendor=VENDOR, now=NOW)
    assert decision.outcome is Outcome.AGREE
    assert decision.granted[0].duration == timedelta(days=30)
    assert [d.action for d in decision.granted[0].duties] == ["delete"]
    assert any("Service delivery only" in line for line in decision.trace)
    agreement = agreement_for(decision.granted, uid="urn:a", person=PERSON, vendor=VENDOR,
                              now=NOW)
    assert agreement.type == "Agreement" and agreement.assignee == VENDOR
    end = agreement.permissions[0].constraint("dateTime")
    assert end is not None and end.values() == ("2026-07-01T00:00:00Z",)


def test_a_sub_purpose_of_service_delivery_is_agreed() -> None:
    decision = decide(request(("PhysicalAddress", "DeliveryOfGoods", "P7D")), TERMS,
                      vendor=VENDOR, now=NOW)
    assert decision.outcome is Outcome.AGREE


@pytest.mark.parametrize("purpose", ["Marketing", "PersonalisedAdvertising", "DirectMarketing"])
def test_marketing_and_tracking_are_refused(purpose: str) -> None:
    decision = decide(request(("EmailAddress", purpose, "P30D")), TERMS, vendor=VENDOR, now=NOW)
    assert decision.outcome is Outcome.REFUSE
    assert decision.reasons and "prohibited" in decision.reasons[0]


def test_too_long_is_countered_with_the_longest_allowed() -> None:
    decision = decide(request(("Purchase", "ServiceProvision", "P365D")), TERMS, vendor=VENDOR,
                      now=NOW)
    assert decision.outcome is Outcome.COUNTER
    assert decision.granted[0].duration == timedelta(days=90)
    offer = offer_for(decision.granted, uid="urn:o", person=PERSON, vendor=VENDOR)
    assert offer.permissions[0].constraint("elapsedTime") == Constraint(
        "elapsedTime", "lteq", "P90D")


def test_partly_refused_is_countered_with_the_rest() -> None:
    decision = decide(request(("EmailAddress", "ServiceProvision", "P30D"),
                              ("EmailAddress", "Marketing", "P30D")), TERMS, vendor=VENDOR,
                      now=NOW)
    assert decision.outcome is Outcome.COUNTER
    assert [a.purpose for a in decision.granted] == [DPV + "ServiceProvision"]
    assert [a.purpose for a in decision.refused] == [DPV + "Marketing"]


def test_what_the_terms_do_not_decide_goes_to_the_person() -> None:
    decision = decide(request(("Purchase", "ResearchAndDevelopment", "P30D")), TERMS,
                      vendor=VENDOR, now=NOW)
    assert decision.outcome is Outcome.ASK_PERSON
    assert decision.undecided and any("person is asked" in t for t in decision.trace)


def test_passing_data_on_is_refused() -> None:
    decision = decide(request(("EmailAddress", "ServiceProvision", "P30D"),
                              action="distribute"), TERMS, vendor=VENDOR, now=NOW)
    assert decision.outcome is Outcome.REFUSE


@pytest.mark.parametrize(("strategy", "expected"), [
    ("perm", Outcome.AGREE), ("prohibit", Outcome.REFUSE), ("invalid", Outcome.REFUSE)])
def test_conflict_strategies(strategy: str, expected: Outcome) -> None:
    terms = [as_terms(Policy("urn:t", "Set", (
        Rule("permission", "use", (PD + "EmailAddress",),
             (Constraint("purpose", "isA", DPV + "Purpose"),)),
        Rule("prohibition", "use", (PD + "EmailAddress",),
             (Constraint("purpose", "isA", DPV + "Marketing"),)),
    ), conflict=strategy))]
    decision = decide(request(("EmailAddress", "Marketing", "P1D")), terms, vendor=VENDOR,
                      now=NOW)
    assert decision.outcome is expected


def test_party_and_date_constraints() -> None:
    only_bolt = [as_terms(Policy("urn:t", "Set", (Rule("permission", "use", (), (
        Constraint("purpose", "isA", DPV + "Purpose"),
        Constraint("recipient", "isAnyOf", ("http://pod/bolt#me",)),
        Constraint("dateTime", "lt", "2026-12-31T00:00:00Z"))),)))]
    asked = request(("EmailAddress", "ServiceProvision", "P1D"))
    assert decide(asked, only_bolt, vendor=VENDOR, now=NOW).outcome is Outcome.ASK_PERSON
    assert decide(asked, only_bolt, vendor="http://pod/bolt#me", now=NOW).outcome is \
        Outcome.AGREE
    later = NOW + timedelta(days=365)
    assert decide(asked, only_bolt, vendor="http://pod/bolt#me", now=later).outcome is \
        Outcome.ASK_PERSON


def test_state_machine_paths_and_violations() -> None:
    new = Negotiation("n1", Role.PROVIDER)
    requested = transition(new, Event.REQUEST, sender=Role.CONSUMER)
    agreed = transition(requested, Event.AGREE, sender=Role.PROVIDER)
    verified = transition(agreed, Event.VERIFY, sender=Role.CONSUMER)
    finalized = transition(verified, Event.FINALIZE, sender=Role.PROVIDER)
    assert finalized.state is State.FINALIZED
    ended = transition(finalized, Event.TERMINATE, sender=Role.PROVIDER, reason="revoked")
    assert ended.state is State.TERMINATED and ended.reason == "revoked"
    offered = transition(requested, Event.OFFER, sender=Role.PROVIDER)
    accepted = transition(offered, Event.ACCEPT, sender=Role.CONSUMER)
    assert transition(accepted, Event.AGREE, sender=Role.PROVIDER).state is State.AGREED
    assert transition(offered, Event.REQUEST, sender=Role.CONSUMER).state is State.REQUESTED
    waiting = transition(new, Event.REQUEST, sender=Role.CONSUMER, awaiting_person=True)
    assert waiting.awaiting_person
    with pytest.raises(ProtocolViolation, match="must come from the provider"):
        transition(requested, Event.AGREE, sender=Role.CONSUMER)
    with pytest.raises(ProtocolViolation, match="not allowed"):
        transition(requested, Event.VERIFY, sender=Role.CONSUMER)
    with pytest.raises(ProtocolViolation, match="cannot end"):
        transition(ended, Event.TERMINATE, sender=Role.CONSUMER)
    assert [h[1] for h in finalized.history] == ["REQUESTED", "AGREED", "VERIFIED", "FINALIZED"]


def test_wire_round_trip_and_other_json_ld_forms() -> None:
    asked = request(("EmailAddress", "ServiceProvision", "P30D"))
    body = json.dumps(message_json("ContractRequestMessage", policy=asked,
                                   callbackAddress="http://vendor/inbox"))
    message = parse_message(body)
    assert message.policy == asked and message.callback == "http://vendor/inbox"
    full_iris = {
        "@context": {"odrl": "http://www.w3.org/ns/odrl/2/"},
        "@type": "https://w3id.org/vrm-agent/protocol#ContractRequestMessage",
        "https://w3id.org/vrm-agent/protocol#policy": {
            "@id": "urn:uuid:r1", "@type": "odrl:Request",
            "odrl:assignee": {"@id": VENDOR},
            "odrl:permission": {"odrl:action": {"@id": "odrl:use"},
                                "odrl:target": {"@id": PD + "EmailAddress"},
                                "odrl:constraint": [
                                    {"odrl:leftOperand": {"@id": "odrl:purpose"},
                                     "odrl:operator": {"@id": "odrl:eq"},
                                     "odrl:rightOperand": {"@id": DPV + "ServiceProvision"}},
                                    {"odrl:leftOperand": {"@id": "odrl:elapsedTime"},
                                     "odrl:operator": {"@id": "odrl:lteq"},
                                     "odrl:rightOperand": {"@value": "P30D"}}]}}}
    assert parse_message(json.dumps(full_iris)).policy == asked
    # Full IRIs need no context at all (§4.1): the message's node in expanded JSON-LD. A message
    # is one JSON object, so expansion's list of one node is not taken as it is.
    expanded = jsonld.expand(json.loads(body), {"documentLoader": load_document})
    assert parse_message(json.dumps(expanded[0])).policy == asked
    with pytest.raises(MalformedMessage, match="JSON-LD object"):
        parse_message(json.dumps(expanded))
    sd_base = default_terms(PERSON)[0]
    assert policy_from_json(policy_json(sd_base)) == sd_base
    assert asks_of(asked)[0].duration == timedelta(days=30)


@pytest.mark.parametrize(("body", "message"), [
    ("{not json", "not JSON"),
    ('{"type": "ContractRequestMessage"}', "@context"),
    # Short names without a context would be dropped by expansion, not read.
    ('{"@type": "https://w3id.org/vrm-agent/protocol#ContractRequestMessage", "policy": {}}',
     "keys are all full IRIs"),
    # Relative IRIs are refused, not resolved against some base (§4.3).
    ('{"@context": "https://w3id.org/vrm-agent/protocol/v1", "type": "ContractRequestMessage",'
     ' "policy": {"uid": "my-request-1", "type": "Request", "permission": [{"action": "use", '
     '"target": "pd:EmailAddress", "constraint": [{"leftOperand": "purpose", "operator": "eq",'
     ' "rightOperand": {"id": "dpv:DeliveryOfGoods"}}]}]}}', "uid must be an absolute IRI"),
    ('{"@context": "https://w3id.org/vrm-agent/protocol/v1", "type": "ContractRequestMessage",'
     ' "policy": {"uid": "urn:x", "type": "Request", "permission": [{"action": "use", '
     '"target": "email-home", "constraint": [{"leftOperand": "purpose", "operator": "eq",'
     ' "rightOperand": {"id": "dpv:DeliveryOfGoods"}}]}]}}', "'email-home' is not an absolute"),
    ('{"@context": "http://evil.example/ctx", "type": "ContractRequestMessage"}', "not one"),
    ('{"@context": "https://w3id.org/vrm-agent/protocol/v1", "type": "Hello"}',
     "unknown message type"),
    ('{"@context": "https://w3id.org/vrm-agent/protocol/v1", '
     '"type": "ContractRequestMessage"}', "needs a policy"),
    ('{"@context": "https://w3id.org/vrm-agent/protocol/v1", "type": "ContractRequestMessage",'
     ' "policy": {"uid": "urn:x", "type": "Request", "permission": [{"action": "use", '
     '"target": "pd:EmailAddress"}]}}', "purpose"),
    ('{"@context": "https://w3id.org/vrm-agent/protocol/v1", "type": "ContractRequestMessage",'
     ' "policy": {"uid": "urn:x", "type": "Request", "permission": [{"action": "steal", '
     '"target": "pd:EmailAddress"}]}}', "unknown action"),
    ('{"@context": "https://w3id.org/vrm-agent/protocol/v1", "type": "ContractRequestMessage",'
     ' "policy": {"uid": "urn:x", "type": "Request", "permission": [{"action": "use", '
     '"target": "pd:EmailAddress", "constraint": [{"leftOperand": "purpose", "operator": "eq",'
     ' "rightOperand": {"id": "dpv:DeliveryOfGoods"}}, {"leftOperand": "elapsedTime", '
     '"operator": "eq", "rightOperand": {"@value": "P1M", "@type": "xsd:duration"}}]}]}}',
     "rather than months"),
    ('{"@context": "https://w3id.org/vrm-agent/protocol/v1", "type": "ContractRequestMessage",'
     ' "policy": {"uid": "urn:x", "type": "Request", "permission": [{"action": "use", '
     '"target": "pd:EmailAddress", "constraint": [{"leftOperand": "purpose", "operator": "eq",'
     ' "rightOperand": {"id": "dpv:DeliveryOfGoods"}}, {"leftOperand": "elapsedTime", '
     '"operator": "eq", "rightOperand": {"@value": "PT0.5S", "@type": "xsd:duration"}}]}]}}',
     "shorter than the shortest agreement, PT1S"),
])
def test_malformed_messages(body: str, message: str) -> None:
    with pytest.raises(MalformedMessage, match=message):
        parse_message(body)


def test_oversized_messages() -> None:
    with pytest.raises(MalformedMessage, match="larger than"):
        parse_message(b"{" + b" " * 70_000 + b"}")


def test_durations_count_from_the_agreement_and_round_up() -> None:
    assert requested_duration("PT1S") == timedelta(seconds=1)
    assert requested_duration("PT1.2S") == timedelta(seconds=2)  # never less than asked
    with pytest.raises(ValueError, match="shortest agreement"):
        requested_duration("PT0.999S")
    made = datetime(2026, 12, 2, 10, 0, 0, 400_000, tzinfo=UTC)
    assert end_of(made, timedelta(seconds=1)) == datetime(2026, 12, 2, 10, 0, 2, tzinfo=UTC)
    exact = made.replace(microsecond=0)
    assert end_of(exact, timedelta(seconds=1)) == exact + timedelta(seconds=1)
    # The agreement states the same end the grant gets.
    agreed = agreement_for(asks_of(request(("EmailAddress", "ServiceProvision", "PT1S"))),
                           uid="urn:uuid:a", person=PERSON, vendor=VENDOR, now=made)
    ends = [c.values()[0] for r in agreed.permissions for c in r.constraints
            if c.left == "dateTime"]
    assert ends == ["2026-12-02T10:00:02Z"]

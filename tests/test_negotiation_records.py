"""What each side keeps of a negotiation, without sockets: the stored record reads back as it was
written, the signed agreement becomes a valid agreement record, items on data the person does not
hold are refused, and the vendor's copy refuses a state the protocol does not allow."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from rdflib import Graph

from vrm_agent.integrity import SigningKey, add_proof, verify_proofs
from vrm_agent.negotiation.decide import Outcome, agreement_for, decide, without_targets
from vrm_agent.negotiation.odrl import DPV, PD, Ask, Constraint, Policy, Rule, asks_of
from vrm_agent.negotiation.protocol import Event, Negotiation, Role, State, transition
from vrm_agent.negotiation.records import (
    GrantedAccess,
    NegotiationRecord,
    agreement_document,
    agreement_record_graph,
    content_hash,
)
from vrm_agent.negotiation.terms import default_policies
from vrm_agent.vendor.client import NegotiationView, VendorAgent, VendorError
from vrm_agent.vocabulary.compiled import validate_graph
from vrm_agent.vocabulary.validation import ShapeViolation

PERSON, VENDOR = "http://pod/alice/profile/card#me", "http://pod/acme/profile/card#me"
NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)
EMAIL = "http://pod/alice/vrm/contact/email-home"


def email_request(purpose: str = "DeliveryOfGoods", days: int = 7) -> Policy:
    return Policy("urn:uuid:req-1", "Request", (Rule(
        "permission", "use", (PD + "EmailAddress",),
        (Constraint("purpose", "eq", DPV + purpose),
         Constraint("elapsedTime", "eq", f"P{days}D"))),), consideration="10% off")


def agreed_document() -> tuple[Policy, dict]:  # type: ignore[type-arg]
    asks = asks_of(email_request())
    agreement = agreement_for(asks, uid="urn:uuid:agr-1", person=PERSON, vendor=VENDOR, now=NOW)
    access = [GrantedAccess((EMAIL,), NOW + timedelta(days=7))]
    return agreement, add_proof(agreement_document(agreement, access), SigningKey(), created=NOW)


def test_a_stored_negotiation_reads_back_as_written() -> None:
    _, signed = agreed_document()
    negotiation = transition(transition(Negotiation("n1", Role.PROVIDER), Event.REQUEST,
                                        sender=Role.CONSUMER), Event.AGREE, sender=Role.PROVIDER)
    record = NegotiationRecord(
        "n1", "http://agent/negotiations/n1", VENDOR, negotiation, email_request(), NOW, NOW,
        "http://vendor/inbox", "10% off", None, signed,
        (GrantedAccess((EMAIL,), NOW + timedelta(days=7)),), ("n1",), ("why",), ("trace",))
    stored = json.loads(json.dumps(record.to_json()))
    again = NegotiationRecord.from_json(stored, record_id="n1")
    assert again == record
    assert verify_proofs(again.agreement or {})  # the proof survives being stored
    # The stored form is linked data a reader can turn into RDF without fetching anything.
    graph = Graph().parse(data=json.dumps(stored), format="json-ld")
    assert len(graph) > 20


def test_the_vendor_view_shows_what_the_protocol_says() -> None:
    _, signed = agreed_document()
    negotiation = Negotiation("n1", Role.PROVIDER, State.AGREED)
    record = NegotiationRecord("n1", "http://agent/negotiations/n1", VENDOR, negotiation,
                               email_request(), NOW, NOW, agreement=signed,
                               access=(GrantedAccess((EMAIL,), NOW + timedelta(days=7)),))
    view = record.view()
    assert view["state"] == "AGREED" and view["grant"][0]["resource"] == [EMAIL]
    assert view["agreement"]["proof"]
    waiting = NegotiationRecord("n2", "http://agent/negotiations/n2", VENDOR,
                                Negotiation("n2", Role.PROVIDER, State.REQUESTED, True),
                                email_request(), NOW, NOW).view()
    assert waiting["status"] == "http://agent/negotiations/n2" and "grant" not in waiting


def test_the_agreement_record_meets_the_vocabulary_shapes() -> None:
    agreement, signed = agreed_document()
    countersigned = add_proof(signed, SigningKey(), created=NOW)
    graph = agreement_record_graph(
        "http://pod/alice/vrm/agreements/n1", agreement, countersigned, vendor=VENDOR,
        state="Finalized", valid_from=NOW, valid_through=NOW + timedelta(days=7))
    validate_graph(graph)
    assert content_hash(countersigned) == content_hash(signed)  # proofs are not content
    assert len(list(graph.objects(None, None))) > 0
    signatures = graph.query(
        "SELECT ?s WHERE { ?r <https://w3id.org/vrm-agent/ns#signature> ?s }")
    assert len(list(signatures)) == 2


def test_the_agreement_record_uses_the_vocabulary_schema_org_so_its_times_are_checked() -> None:
    agreement, signed = agreed_document()
    url = "http://pod/alice/vrm/agreements/n1"
    graph = agreement_record_graph(url, agreement, signed, vendor=VENDOR, state="Agreed",
                                   valid_from=NOW, valid_through=NOW + timedelta(days=7))
    used = {str(p) for p in graph.predicates() if "schema.org" in str(p)}
    assert used == {"http://schema.org/validFrom", "http://schema.org/validThrough"}
    backwards = agreement_record_graph(url, agreement, signed, vendor=VENDOR, state="Agreed",
                                       valid_from=NOW, valid_through=NOW - timedelta(days=1))
    with pytest.raises(ShapeViolation, match="schema:validFrom"):
        validate_graph(backwards)


def test_items_on_data_the_person_lacks_are_refused() -> None:
    both = Policy("urn:uuid:req-2", "Request", tuple(
        Rule("permission", "use", (PD + category,),
             (Constraint("purpose", "eq", DPV + "DeliveryOfGoods"),
              Constraint("elapsedTime", "eq", "P7D")))
        for category in ("EmailAddress", "PhysicalAddress")))
    decision = decide(both, default_policies(PERSON), vendor=VENDOR, now=NOW)
    assert decision.outcome is Outcome.AGREE
    narrowed = without_targets(decision, {PD + "PhysicalAddress"}, "no such data")
    assert narrowed.outcome is Outcome.COUNTER
    assert [a.target for a in narrowed.granted] == [PD + "EmailAddress"]
    assert any("no such data" in r for r in narrowed.reasons)
    nothing = without_targets(decision, {PD + "PhysicalAddress", PD + "EmailAddress"}, "none")
    assert nothing.outcome is Outcome.REFUSE


def test_the_vendor_refuses_a_state_the_protocol_does_not_allow() -> None:
    vendor = VendorAgent(pod=None)  # type: ignore[arg-type]  # _follow does no I/O
    requested = NegotiationView("http://agent/negotiations/n1", transition(
        Negotiation("", Role.CONSUMER), Event.REQUEST, sender=Role.CONSUMER))
    agreed = vendor._follow(requested, {"id": requested.url, "state": "AGREED"})
    assert agreed.state is State.AGREED
    with pytest.raises(VendorError):
        vendor._follow(requested, {"id": requested.url, "state": "FINALIZED"})
    with pytest.raises(VendorError):
        vendor._follow(requested, {"id": requested.url, "state": "NONSENSE"})
    waiting = vendor._follow(requested, {"id": requested.url, "state": "REQUESTED",
                                         "status": requested.url})
    assert waiting.awaiting_person


def test_the_vendor_countersigns_only_what_the_published_key_signed() -> None:
    agent_key, impostor = SigningKey(), SigningKey()
    access = [GrantedAccess(("http://pod/carol/vrm/contact/email",), NOW + timedelta(days=7))]
    document = agreement_document(agreement_for(
        [Ask(PD + "EmailAddress", "use", DPV + "DeliveryOfGoods", timedelta(days=7))],
        uid="urn:uuid:1", person=PERSON, vendor=VENDOR, now=NOW), access)
    vendor = VendorAgent(pod=None)  # type: ignore[arg-type]  # countersign does no I/O
    agreed = NegotiationView("http://agent/negotiations/n1", Negotiation(
        "", Role.CONSUMER, State.AGREED), agreement=add_proof(document, impostor),
        agent_key=agent_key.verification_method)
    with pytest.raises(VendorError, match="not signed with the key the agent publishes"):
        vendor.countersign(agreed)
    genuine = replace(agreed, agreement=add_proof(document, agent_key))
    signers = [p.verification_method for p in verify_proofs(vendor.countersign(genuine))]
    assert signers == [agent_key.verification_method, vendor.key.verification_method]

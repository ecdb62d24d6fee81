"""Accepting a countersignature, without sockets: only the agent's own agreement, byte for byte as
JSON, with one well-formed proof by the vendor added, is accepted; and what is kept is the
agent's document plus that proof, never the vendor's JSON."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from vrm_agent.integrity import SigningKey, add_proof, verify_proofs
from vrm_agent.negotiation.countersign import (
    CountersignatureRefused,
    check_countersignature,
    countersigned,
    same_json,
)
from vrm_agent.negotiation.decide import agreement_for
from vrm_agent.negotiation.odrl import DPV, PD, Constraint, Policy, Rule, asks_of
from vrm_agent.negotiation.records import GrantedAccess, agreement_document, content_hash

PERSON, VENDOR = "http://pod/alice/profile/card#me", "http://pod/acme/profile/card#me"
NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)
EMAIL = "http://pod/alice/vrm/contact/email-home"
AGENT_KEY, VENDOR_KEY = SigningKey(), SigningKey()


def ours() -> dict[str, Any]:
    request = Policy("urn:uuid:req-1", "Request", (Rule(
        "permission", "use", (PD + "EmailAddress",),
        (Constraint("purpose", "eq", DPV + "DeliveryOfGoods"),
         Constraint("elapsedTime", "eq", "P7D"))),))
    agreement = agreement_for(asks_of(request), uid="urn:uuid:agr-1", person=PERSON,
                              vendor=VENDOR, now=NOW)
    document = agreement_document(agreement, [GrantedAccess((EMAIL,), NOW + timedelta(days=7))])
    return add_proof(document, AGENT_KEY, created=NOW)


def check(agent_document: dict[str, Any], theirs: Any) -> dict[str, Any]:
    return check_countersignature(agent_document, theirs,
                                  own_key=AGENT_KEY.verification_method)


def test_an_honest_countersignature_is_accepted_and_only_its_proof_is_kept() -> None:
    signed = ours()
    theirs = add_proof(signed, VENDOR_KEY, created=NOW)
    kept = check(signed, theirs)
    assert kept == countersigned(signed, theirs["proof"][1])
    assert [p.verification_method for p in verify_proofs(kept)] == [
        AGENT_KEY.verification_method, VENDOR_KEY.verification_method]
    # A proof set is unordered: the vendor's proof first is the same countersignature.
    swapped = {**theirs, "proof": list(reversed(theirs["proof"]))}
    assert check(signed, swapped) == kept


def remapped_attack(signed: dict[str, Any]) -> dict[str, Any]:
    """The forged agreement: its JSON says direct marketing until 2036 under ``permission``,
    which the added context maps to nothing, while the genuine rule sits under a new key that
    maps to odrl:permission, so the RDF, and so every proof, stays the same."""
    forged = copy.deepcopy(signed)
    forged["@context"] = [*signed["@context"], {
        "permission": None,
        "kept": {"@id": "http://www.w3.org/ns/odrl/2/permission", "@container": "@set"}}]
    forged["kept"] = forged.pop("permission")
    forged["permission"] = [{"action": "use", "target": ["pd:EmailAddress"], "constraint": [
        {"leftOperand": "purpose", "operator": "eq", "rightOperand": {"id": "dpv:DirectMarketing"}},
        {"leftOperand": "dateTime", "operator": "lt",
         "rightOperand": {"@value": "2036-01-01T00:00:00Z", "@type": "xsd:dateTime"}}]}]
    return forged


def test_a_context_that_remaps_terms_is_refused_though_its_proofs_verify() -> None:
    signed = ours()
    forged = remapped_attack(signed)
    theirs = add_proof(forged, VENDOR_KEY, created=NOW)
    # The attack is real: same canonical form, every proof verifies ...
    assert content_hash(forged) == content_hash(signed)
    assert len(verify_proofs(theirs)) == 2
    # ... and still it is not the agreement the agent made.
    with pytest.raises(CountersignatureRefused, match="not the agreement reached"):
        check(signed, theirs)


def mutated(signed: dict[str, Any], change: str) -> Any:
    theirs = add_proof(signed, VENDOR_KEY, created=NOW)
    proofs = theirs["proof"]
    match change:
        case "context reordered":
            theirs["@context"] = list(reversed(theirs["@context"]))
        case "extra member":
            theirs["note"] = "hello"
        case "grant widened":
            theirs["grant"][0]["resource"].append("http://pod/alice/vrm/terms/")
        case "until as a number":
            theirs["grant"][0]["until"] = 2051222400
        case "agent proof changed":
            proofs[0]["created"] = "2026-06-01T12:00:01Z"
        case "agent proof dropped":
            theirs["proof"] = [proofs[1]]
        case "two vendor proofs":
            theirs["proof"] = [*proofs, add_proof(signed, SigningKey())["proof"]]
        case "no vendor proof":
            theirs["proof"] = [proofs[0]]
        case "vendor proof signed by the agent's key":
            theirs = add_proof(signed, AGENT_KEY, created=NOW + timedelta(seconds=1))
        case "vendor proof with a context":
            proofs[1]["@context"] = {"proofValue": None}
        case "vendor proof with a nested value":
            proofs[1]["created"] = {"@value": "2026-06-01T12:00:00Z"}
        case "vendor proof of another suite":
            proofs[1]["cryptosuite"] = "ecdsa-rdfc-2019"
        case "vendor proof for another purpose":
            proofs[1]["proofPurpose"] = "authentication"
        case "vendor key not a did:key":
            proofs[1]["verificationMethod"] = "https://vendor.example/keys#1"
        case "vendor proof value forged":
            proofs[1]["proofValue"] = proofs[0]["proofValue"]
        case "vendor created not a date":
            proofs[1]["created"] = "yesterday"
        case "not an object":
            return ["not", "an", "agreement"]
        case "no context":
            del theirs["@context"]
    return theirs


@pytest.mark.parametrize("change", [
    "context reordered", "extra member", "grant widened", "until as a number",
    "agent proof changed", "agent proof dropped", "two vendor proofs", "no vendor proof",
    "vendor proof signed by the agent's key", "vendor proof with a context",
    "vendor proof with a nested value", "vendor proof of another suite",
    "vendor proof for another purpose", "vendor key not a did:key", "vendor proof value forged",
    "vendor created not a date", "not an object", "no context",
])
def test_anything_but_the_agreement_plus_one_proof_is_refused(change: str) -> None:
    signed = ours()
    with pytest.raises(CountersignatureRefused):
        check(signed, mutated(signed, change))


def test_json_equality_minds_types() -> None:
    assert same_json({"a": [1, "x"]}, {"a": [1, "x"]})
    assert not same_json(1, True) and not same_json(1, 1.0) and not same_json([1], (1,))
    assert not same_json({"a": 1}, {"a": 1, "b": 2})

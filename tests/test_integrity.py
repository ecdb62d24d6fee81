"""Signed agreement records: Data Integrity eddsa-rdfc-2022 proof sets."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from vrm_agent.integrity import IntegrityError, SigningKey, add_proof, verify_proofs
from vrm_agent.integrity.keys import public_key_of
from vrm_agent.linkeddata import contexts
from vrm_agent.linkeddata.contexts import DATA_INTEGRITY_SHA256, data_integrity_bytes

AGREEMENT: dict[str, Any] = {
    "@context": [{"odrl": "http://www.w3.org/ns/odrl/2/", "uid": "@id", "type": "@type",
                  "assigner": {"@id": "odrl:assigner", "@type": "@id"},
                  "assignee": {"@id": "odrl:assignee", "@type": "@id"},
                  "Agreement": "odrl:Agreement"}],
    "uid": "urn:uuid:5b0f8f4e-1f7c-4b53-a5d4-6f1c8f0b7e11",
    "type": "Agreement",
    "assigner": "http://localhost:3000/alice/profile/card#me",
    "assignee": "http://localhost:3000/acme/profile/card#me",
}


def test_both_parties_sign_and_each_proof_verifies() -> None:
    person, vendor = SigningKey(), SigningKey()
    signed = add_proof(add_proof(AGREEMENT, person), vendor)
    assert len(signed["proof"]) == 2
    methods = [p.verification_method for p in verify_proofs(signed)]
    assert methods == [person.verification_method, vendor.verification_method]
    assert "proof" not in AGREEMENT  # the input is not changed


@pytest.mark.parametrize("field", ["assignee", "uid"])
def test_any_change_breaks_the_proofs(field: str) -> None:
    signed = add_proof(AGREEMENT, SigningKey())
    signed[field] = signed[field] + "x"
    with pytest.raises(IntegrityError, match="does not match"):
        verify_proofs(signed)


def test_a_swapped_key_or_a_missing_proof_fails() -> None:
    signed = add_proof(AGREEMENT, SigningKey())
    signed["proof"]["verificationMethod"] = SigningKey().verification_method
    with pytest.raises(IntegrityError):
        verify_proofs(signed)
    with pytest.raises(IntegrityError, match="no proof"):
        verify_proofs(AGREEMENT)


def test_keys_round_trip_and_are_did_keys() -> None:
    key = SigningKey()
    again = SigningKey.from_secret(key.secret)
    assert again.verification_method == key.verification_method
    assert key.did.startswith("did:key:z6Mk")  # the multicodec prefix of an Ed25519 key
    public_key_of(key.verification_method)


def test_remote_contexts_are_never_fetched() -> None:
    document = {**AGREEMENT, "@context": ["https://example.org/some/context"]}
    with pytest.raises(IntegrityError, match="never fetched"):
        add_proof(document, SigningKey())


def test_a_vc_2_credential_can_be_signed_with_the_pinned_context(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The pinned context is W3C's, byte for byte: its proofPurpose scope defines
    capabilityInvocation and the other purposes, as the VC 2.0 context (as pyld ships it) does
    with the same protected definitions. With a context that lacked some of them, pyld refused
    to redefine a protected term and no VC 2.0 credential could be signed."""
    import pyld

    assert hashlib.sha256(data_integrity_bytes()).hexdigest() == DATA_INTEGRITY_SHA256
    scope = json.loads(data_integrity_bytes())["@context"]["DataIntegrityProof"]["@context"]
    assert {"assertionMethod", "authentication", "capabilityInvocation",
            "capabilityDelegation", "keyAgreement"} <= set(scope["proofPurpose"]["@context"])
    bundled = Path(pyld.__file__).parent / "documentloader" / "frozen" / "bundled"
    # Loadable for this test only: the agent itself does not ship the VC context.
    monkeypatch.setitem(contexts._BUNDLED, "https://www.w3.org/ns/credentials/v2",
                        json.loads((bundled / "credentials-v2.jsonld").read_text()))
    credential = {
        "@context": ["https://www.w3.org/ns/credentials/v2"],
        "type": ["VerifiableCredential"], "issuer": "https://issuer.example/",
        "credentialSubject": {"id": "https://pod.example/carol/profile/card#me"},
    }
    signed = add_proof(credential, SigningKey())
    assert len(verify_proofs(signed)) == 1

"""Accepting a vendor's countersignature: a pure check that the agreement comes back unchanged.

A vendor returns the signed agreement with its own proof added. What the agent then keeps and
serves is its own document with that one proof appended, never the vendor's JSON, and only when
the vendor's document is the agent's byte for byte as JSON: every member but ``proof`` equal, the
agent's proofs unchanged, exactly one more proof. Comparing JSON rather than canonical RDF is the
point: a context that maps ``permission`` to null and a forged rule into a new key canonicalises
to the same RDF, so both proofs verify, while a JSON reader sees another agreement.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from vrm_agent.errors import VrmAgentError
from vrm_agent.integrity import IntegrityError, verify_proofs

CRYPTOSUITE = "eddsa-rdfc-2022"
PROOF_MEMBERS = frozenset({"type", "cryptosuite", "created", "verificationMethod",
                           "proofPurpose", "proofValue"})
OPTIONAL_PROOF_MEMBERS = frozenset({"id", "expires", "domain", "challenge", "nonce"})
MAX_PROOF_VALUE_LENGTH = 512


class CountersignatureRefused(VrmAgentError):
    """The countersigned agreement is not accepted; the text says which check failed."""


def same_json(a: Any, b: Any) -> bool:
    """Equal as JSON values, types included (Python's ``1 == True == 1.0`` is not JSON's)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same_json(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same_json(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def proofs_in(document: Mapping[str, Any]) -> list[Any]:
    found = document.get("proof")
    return list(found) if isinstance(found, list) else [found] if found else []


def vendor_proof(proof: Any, *, own_key: str) -> dict[str, str]:
    """The vendor's proof as plain strings: only the members an eddsa-rdfc-2022 proof has, each
    a short string, by a did:key that is not the agent's."""
    if not isinstance(proof, dict) or not PROOF_MEMBERS <= set(proof) <= (
            PROOF_MEMBERS | OPTIONAL_PROOF_MEMBERS) or not all(
            isinstance(v, str) and 0 < len(v) <= MAX_PROOF_VALUE_LENGTH
            for v in proof.values()):
        raise CountersignatureRefused(
            f"the vendor's proof must be a DataIntegrityProof with "
            f"{', '.join(sorted(PROOF_MEMBERS))} (and optionally "
            f"{', '.join(sorted(OPTIONAL_PROOF_MEMBERS))}), each a short string")
    if proof["type"] != "DataIntegrityProof" or proof["cryptosuite"] != CRYPTOSUITE:
        raise CountersignatureRefused(f"the vendor's proof must be a {CRYPTOSUITE} "
                                      "DataIntegrityProof")
    if proof["proofPurpose"] != "assertionMethod":
        raise CountersignatureRefused("the vendor's proof purpose must be assertionMethod")
    method = proof["verificationMethod"]
    if method == own_key or not method.startswith("did:key:"):
        raise CountersignatureRefused("the vendor's proof must be made with the vendor's own "
                                      "did:key")
    try:
        datetime.fromisoformat(proof["created"].replace("Z", "+00:00"))
    except ValueError as exc:
        raise CountersignatureRefused("the vendor's proof needs an XML Schema dateTime as "
                                      "'created'") from exc
    return dict(proof)


def countersignature_of(ours: Mapping[str, Any], theirs: Any, *, own_key: str) -> dict[str, str]:
    """The vendor's proof from ``theirs`` if it is exactly ``ours`` (the agreement the agent
    signed) plus one well-formed proof by the vendor; raises CountersignatureRefused otherwise.
    Whether that proof verifies is :func:`countersigned`'s question (it costs canonicalising)."""
    if not isinstance(theirs, Mapping) or "@context" not in theirs:
        raise CountersignatureRefused("the verification message needs the signed agreement, "
                                      "with its @context, as 'agreement'")
    if set(theirs) != set(ours) or any(
            not same_json(theirs[k], ours[k]) for k in ours if k != "proof"):
        raise CountersignatureRefused(
            "the countersigned agreement is not the agreement reached: return the agent's "
            "document unchanged, with one proof added to its proof set")
    given = proofs_in(theirs)
    for proof in proofs_in(ours):  # in any order: a proof set is unordered
        index = next((i for i, p in enumerate(given) if same_json(p, proof)), None)
        if index is None:
            raise CountersignatureRefused("the agent's own proof is missing from the "
                                          "agreement, or was changed")
        given.pop(index)
    if len(given) != 1:
        raise CountersignatureRefused("the agreement must carry exactly one proof by the "
                                      f"vendor beside the agent's, not {len(given)}")
    return vendor_proof(given[0], own_key=own_key)


def countersigned(ours: Mapping[str, Any], proof: Mapping[str, str]) -> dict[str, Any]:
    """The agent's own document with the vendor's proof appended: what is kept and served. The
    vendor's proof alone is what a verifier needs to check over the agent's document."""
    return {**ours, "proof": [*proofs_in(ours), dict(proof)]}


def check_countersignature(ours: Mapping[str, Any], theirs: Any, *,
                           own_key: str) -> dict[str, Any]:
    """Both checks at once, on this thread: the countersigned document to keep."""
    proof = countersignature_of(ours, theirs, own_key=own_key)
    try:
        verify_proofs({**ours, "proof": proof})
    except IntegrityError as exc:
        raise CountersignatureRefused(f"the vendor's proof does not verify: {exc}") from exc
    return countersigned(ours, proof)


__all__ = ["CountersignatureRefused", "check_countersignature", "countersignature_of",
           "countersigned", "same_json"]

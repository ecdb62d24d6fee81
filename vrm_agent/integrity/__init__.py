"""Signed records: W3C Data Integrity proofs (cryptosuite eddsa-rdfc-2022) over JSON-LD.

The agent signs an agreement; the vendor adds its own proof to the same document (a proof set),
and each side keeps the doubly signed record. Keys are Ed25519, named as ``did:key`` so a proof
can be checked without fetching anything.
"""

from vrm_agent.integrity.keys import SigningKey, public_key_of
from vrm_agent.integrity.proofs import (
    DATA_INTEGRITY_CONTEXT,
    IntegrityError,
    VerifiedDocument,
    VerifiedProof,
    add_proof,
    canonical_async,
    verify_document_async,
    verify_proofs,
    verify_proofs_async,
)

__all__ = [
    "DATA_INTEGRITY_CONTEXT",
    "IntegrityError",
    "SigningKey",
    "VerifiedDocument",
    "VerifiedProof",
    "add_proof",
    "canonical_async",
    "public_key_of",
    "verify_document_async",
    "verify_proofs",
    "verify_proofs_async",
]

"""Data Integrity proofs with the eddsa-rdfc-2022 cryptosuite, as proof sets.

Signing (per the cryptosuite): canonicalize the proof options (with the document's context) and
the document without its proofs using RDF Dataset Canonicalization, hash both with SHA-256, sign
the concatenation with Ed25519, and encode the signature as multibase base58btc. Every proof of a
proof set signs the document without any proof, so the two parties' proofs stand side by side.

JSON-LD contexts are never fetched: only contexts bundled with the package (or registered by
another room of it) can be used, and any other remote context is refused.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pyld import jsonld

from vrm_agent.errors import VrmAgentError
from vrm_agent.integrity.keys import (
    KeyFormatError,
    SigningKey,
    from_multibase,
    multibase,
    signature_valid,
)

DATA_INTEGRITY_CONTEXT = "https://w3id.org/security/data-integrity/v2"
CRYPTOSUITE = "eddsa-rdfc-2022"
_BUNDLED: dict[str, Any] = {
    DATA_INTEGRITY_CONTEXT: json.loads(
        (Path(__file__).parent / "contexts" / "data-integrity-v2.jsonld").read_text()),
}


class IntegrityError(VrmAgentError):
    """A proof cannot be made or does not verify."""


def register_context(url: str, document: Mapping[str, Any]) -> None:
    """Make a context the package ships usable in signed documents."""
    _BUNDLED[url] = dict(document)


def bundled_context(url: str) -> dict[str, Any]:
    """A context document the package ships (or another room registered), by its URL."""
    if url not in _BUNDLED:
        raise IntegrityError(f"the JSON-LD context {url} is not one the agent knows; "
                             "remote contexts are never fetched")
    return dict(_BUNDLED[url])


def _loader(url: str, options: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"contextUrl": None, "documentUrl": url, "document": bundled_context(url)}


def canonical(document: Mapping[str, Any]) -> bytes:
    """RDF Dataset Canonicalization (URDNA2015, the algorithm RDFC-1.0 standardised) as N-Quads."""
    try:
        text = jsonld.normalize(dict(document), {
            "algorithm": "URDNA2015", "format": "application/n-quads",
            "documentLoader": _loader, "safe": True,
        })
    except IntegrityError:
        raise
    except jsonld.JsonLdError as exc:
        refused = _refusal_in(exc)
        if refused is not None:
            raise refused from exc
        raise IntegrityError(f"the document is not valid JSON-LD for signing: {exc}") from exc
    return str(text).encode("utf-8")


def _refusal_in(error: BaseException) -> IntegrityError | None:
    """pyld wraps a loader's exception in layers (``cause``, ``__cause__``): find ours."""
    seen: set[int] = set()
    pending: list[BaseException | None] = [error]
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, IntegrityError):
            return current
        pending += [getattr(current, "cause", None), current.__cause__, current.__context__]
        pending += [d for d in getattr(current, "details", {}).values()
                    if isinstance(d, BaseException)] if isinstance(
                        getattr(current, "details", None), dict) else []
    return None


def _hash_data(document: Mapping[str, Any], proof_options: Mapping[str, Any]) -> bytes:
    unsecured = {k: v for k, v in document.items() if k != "proof"}
    options = {**proof_options, "@context": document.get("@context")}
    options.pop("proofValue", None)
    return (hashlib.sha256(canonical(options)).digest()
            + hashlib.sha256(canonical(unsecured)).digest())


def _contexts(document: Mapping[str, Any]) -> list[Any]:
    context = document.get("@context")
    return context if isinstance(context, list) else [context] if context else []


def add_proof(
    document: Mapping[str, Any],
    key: SigningKey,
    *,
    created: datetime | None = None,
    purpose: str = "assertionMethod",
) -> dict[str, Any]:
    """A copy of the document with one more proof in its proof set."""
    signed = copy.deepcopy(dict(document))
    contexts = _contexts(signed)
    if DATA_INTEGRITY_CONTEXT not in contexts:
        signed["@context"] = [*contexts, DATA_INTEGRITY_CONTEXT]
    stamp = (created or datetime.now(UTC)).astimezone(UTC).replace(microsecond=0)
    options = {
        "type": "DataIntegrityProof",
        "cryptosuite": CRYPTOSUITE,
        "created": stamp.isoformat().replace("+00:00", "Z"),
        "verificationMethod": key.verification_method,
        "proofPurpose": purpose,
    }
    signature = key.sign(_hash_data(signed, options))
    proof = {**options, "proofValue": multibase(signature)}
    existing = signed.get("proof")
    proofs = existing if isinstance(existing, list) else [existing] if existing else []
    signed["proof"] = [*proofs, proof] if proofs else proof
    return signed


@dataclass(frozen=True)
class VerifiedProof:
    verification_method: str
    created: str | None
    purpose: str | None


def verify_proofs(document: Mapping[str, Any]) -> list[VerifiedProof]:
    """Check every proof of the document; raises IntegrityError at the first one that fails."""
    existing = document.get("proof")
    proofs = existing if isinstance(existing, list) else [existing] if existing else []
    if not proofs:
        raise IntegrityError("the document carries no proof")
    verified = []
    for proof in proofs:
        if not isinstance(proof, dict) or proof.get("cryptosuite") != CRYPTOSUITE:
            raise IntegrityError(f"only {CRYPTOSUITE} proofs are supported")
        method, value = proof.get("verificationMethod"), proof.get("proofValue")
        if not isinstance(method, str) or not isinstance(value, str):
            raise IntegrityError("a proof lacks its verificationMethod or proofValue")
        try:
            signature = from_multibase(value)
            ok = signature_valid(method, signature, _hash_data(document, proof))
        except KeyFormatError as exc:
            raise IntegrityError(f"the proof's key cannot be read: {exc}") from exc
        if not ok:
            raise IntegrityError(f"the proof by {method} does not match the document")
        verified.append(VerifiedProof(method, proof.get("created"), proof.get("proofPurpose")))
    return verified

"""Data Integrity proofs with the eddsa-rdfc-2022 cryptosuite, as proof sets.

Signing (per the cryptosuite): canonicalize the proof options (with the document's context) and
the document without its proofs using RDF Dataset Canonicalization, hash both with SHA-256, sign
the concatenation with Ed25519, and encode the signature as multibase base58btc. Every proof of a
proof set signs the document without any proof, so the two parties' proofs stand side by side.

JSON-LD contexts are never fetched: only contexts bundled with the package (or registered by
another room of it) can be used, and any other context is refused. Canonicalisation can cost time
exponential in the number of mutually similar blank nodes, so every document is bounded in size
first, and documents from outside are canonicalised with :func:`verify_proofs_async` and
:func:`canonical_async`: in a worker process with a deadline, killed when it runs over.
"""

from __future__ import annotations

import copy
import hashlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from vrm_agent.errors import VrmAgentError
from vrm_agent.integrity.keys import (
    KeyFormatError,
    SigningKey,
    from_multibase,
    multibase,
    signature_valid,
)
from vrm_agent.linkeddata import contexts
from vrm_agent.linkeddata.limits import (
    CANONICALISATION_SECONDS,
    MESSAGE,
    Bounds,
    InputRefused,
    TooComplex,
    check_tree,
)
from vrm_agent.linkeddata.offloop import DeadlinePool, WorkerFailed
from vrm_agent.linkeddata.rdf import to_dataset, to_nquads

log = logging.getLogger("vrm_agent.integrity")
DATA_INTEGRITY_CONTEXT = contexts.DATA_INTEGRITY_CONTEXT
CRYPTOSUITE = "eddsa-rdfc-2022"
MAX_PROOFS = 8  # the agent's and the vendor's, with room for key rotation; each costs a canonical
SIGNED = MESSAGE
"""What one signed document may cost: an agreement travels inside one negotiation message."""

_WORKERS = DeadlinePool("vrm_agent.integrity.worker")


class IntegrityError(VrmAgentError):
    """A proof cannot be made or does not verify."""


def register_context(url: str, document: Mapping[str, Any]) -> None:
    """Make a context the package ships usable in signed documents."""
    contexts.register_context(url, document)


def bundled_context(url: str) -> dict[str, Any]:
    """A context document the package ships (or another room registered), by its URL."""
    try:
        return contexts.bundled_context(url)
    except contexts.ContextRefused as exc:
        raise IntegrityError(str(exc)) from exc


def canonical(document: Mapping[str, Any], *, bounds: Bounds = SIGNED) -> bytes:
    """RDF Dataset Canonicalization (URDNA2015, the algorithm RDFC-1.0 standardised) as N-Quads.

    The document's size in nodes, statements and blank nodes is checked first; its duration is
    not (see :func:`canonical_async` for a deadline)."""
    # pyld is imported on the first signature, not with this module (vrm_agent.linkeddata.loader).
    from vrm_agent.linkeddata.loader import jsonld, load_document

    try:
        check_tree(document, bounds)
        dataset = to_dataset(dict(document), bounds=bounds)
        text = jsonld.normalize(to_nquads(dataset), {
            "algorithm": "URDNA2015", "inputFormat": "application/n-quads",
            "format": "application/n-quads", "documentLoader": load_document})
    except TooComplex as exc:
        raise IntegrityError(f"the document is too complex to canonicalise: {exc}") from exc
    except InputRefused as exc:
        raise IntegrityError(f"the document is not valid JSON-LD for signing: {exc}") from exc
    except (jsonld.JsonLdError, RecursionError, ValueError, TypeError) as exc:
        raise IntegrityError("the document is not valid JSON-LD for signing") from exc
    return str(text).encode("utf-8")


def _document_digest(document: Mapping[str, Any]) -> bytes:
    unsecured = {k: v for k, v in document.items() if k != "proof"}
    return hashlib.sha256(canonical(unsecured)).digest()


def _hash_data(document: Mapping[str, Any], proof_options: Mapping[str, Any],
               document_digest: bytes | None = None) -> bytes:
    options = {**proof_options, "@context": document.get("@context")}
    options.pop("proofValue", None)
    return (hashlib.sha256(canonical(options)).digest()
            + (document_digest or _document_digest(document)))


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


@dataclass(frozen=True)
class VerifiedDocument:
    proofs: list[VerifiedProof]
    content_hash: str  # "sha256:" + hex of the canonical form of the document without its proofs


def verify_proofs(document: Mapping[str, Any]) -> list[VerifiedProof]:
    """Check every proof of the document; raises IntegrityError at the first one that fails."""
    return verified_document(document).proofs


def verified_document(document: Mapping[str, Any]) -> VerifiedDocument:
    """Every proof checked, and the content hash of the document without its proofs (the
    canonical form is computed once for both)."""
    if not isinstance(document, Mapping):
        raise IntegrityError("a signed document is a JSON object")
    existing = document.get("proof")
    proofs = existing if isinstance(existing, list) else [existing] if existing else []
    if not proofs:
        raise IntegrityError("the document carries no proof")
    if len(proofs) > MAX_PROOFS:
        raise IntegrityError(f"a document carries at most {MAX_PROOFS} proofs")
    verified = []
    digest = _document_digest(document)
    for proof in proofs:
        if not isinstance(proof, dict) or proof.get("cryptosuite") != CRYPTOSUITE:
            raise IntegrityError(f"only {CRYPTOSUITE} proofs are supported")
        method, value = proof.get("verificationMethod"), proof.get("proofValue")
        if not isinstance(method, str) or not isinstance(value, str):
            raise IntegrityError("a proof lacks its verificationMethod or proofValue")
        try:
            signature = from_multibase(value)
            ok = signature_valid(method, signature, _hash_data(document, proof, digest))
        except KeyFormatError as exc:
            raise IntegrityError(f"the proof's key cannot be read: {exc}") from exc
        if not ok:
            raise IntegrityError(f"the proof by {method} does not match the document")
        verified.append(VerifiedProof(method, _text(proof.get("created")),
                                      _text(proof.get("proofPurpose"))))
    return VerifiedDocument(verified, "sha256:" + digest.hex())


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _job(op: str, document: Mapping[str, Any]) -> dict[str, Any]:
    job: dict[str, Any] = {"op": op, "document": dict(document)}
    extras = contexts.registered_extras()
    if extras:
        job["contexts"] = extras
    return job


async def _off_loop(op: str, document: Mapping[str, Any], seconds: float) -> Any:
    if not isinstance(document, Mapping):
        raise IntegrityError("a signed document is a JSON object")
    try:
        answer = await _WORKERS.run(_job(op, document), seconds=seconds)
    except TooComplex as exc:
        raise IntegrityError(f"the document is too complex to canonicalise within "
                             f"{seconds:g} s") from exc
    except (WorkerFailed, OSError, ValueError) as exc:
        log.error("the canonicalisation worker failed", extra={"problem": type(exc).__name__})
        raise IntegrityError("the document could not be checked (internal worker failure)") \
            from exc
    if not isinstance(answer, dict) or ("error" not in answer and "ok" not in answer):
        raise IntegrityError("the document could not be checked (internal worker failure)")
    if "error" in answer:
        raise IntegrityError(str(answer["error"]))
    return answer["ok"]


async def canonical_async(document: Mapping[str, Any], *,
                          seconds: float = CANONICALISATION_SECONDS) -> bytes:
    """:func:`canonical` in a worker process that is killed after ``seconds``
    (IntegrityError "... too complex ..." then)."""
    return str(await _off_loop("canonical", document, seconds)).encode("utf-8")


async def verify_document_async(document: Mapping[str, Any], *,
                                seconds: float = CANONICALISATION_SECONDS) -> VerifiedDocument:
    """:func:`verify_proofs` in a worker process with one deadline for all its proofs, plus the
    content hash of the document without its proofs (computed on the way, at no extra cost)."""
    answer = await _off_loop("verify", document, seconds)
    try:
        proofs = [VerifiedProof(p["verification_method"], p["created"], p["purpose"])
                  for p in answer["proofs"]]
        return VerifiedDocument(proofs, str(answer["content_hash"]))
    except (KeyError, TypeError) as exc:
        raise IntegrityError("the document could not be checked (internal worker failure)") \
            from exc


async def verify_proofs_async(document: Mapping[str, Any], *,
                              seconds: float = CANONICALISATION_SECONDS) -> list[VerifiedProof]:
    """:func:`verify_proofs` off the event loop, with a deadline; same answers and errors."""
    return (await verify_document_async(document, seconds=seconds)).proofs


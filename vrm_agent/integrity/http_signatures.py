"""Signed HTTP requests: how the agent's notifications prove who sent them.

HTTP Message Signatures (RFC 9421) with the agent's Ed25519 key, over the method, the target
URI, the ``Content-Type`` and a ``Content-Digest`` (RFC 9530) of the body; the signature
parameters carry ``created``, ``keyid`` (the ``did:key`` verification method the agent
publishes as ``vrm:signingKey``), a fresh ``nonce``, ``alg="ed25519"`` and the tag
``vrm-agent-notification``. The receiver checks the signature against the key it expects, the
age of ``created`` and that no nonce comes twice (:class:`NonceCache`).

The signature base and header syntax come from the ``http-message-signatures`` library; this
module only fixes the profile (which components, which parameters, which limits).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from http_message_signatures import (
    HTTPMessageSignaturesException,
    HTTPMessageSigner,
    HTTPMessageVerifier,
    HTTPSignatureKeyResolver,
    InvalidSignature,
    algorithms,
)

from vrm_agent.errors import VrmAgentError
from vrm_agent.integrity.keys import KeyFormatError, SigningKey, public_key_of

COVERED = ("@method", "@target-uri", "content-type", "content-digest")
TAG = "vrm-agent-notification"
LABEL = "vrm"
MAX_AGE = timedelta(seconds=60)  # how old a signature may be when it arrives
CLOCK_SKEW = timedelta(seconds=5)  # how far ahead of the receiver's clock it may be


class SignatureRejected(VrmAgentError):
    """A signed request that does not verify; the message says which check failed."""


@dataclass
class _Message:
    """The request as the library reads it: method, URL, header fields."""

    method: str
    url: str
    headers: dict[str, str]


class _Keys(HTTPSignatureKeyResolver):
    def __init__(self, signing: SigningKey | None = None,
                 trusted: Collection[str] = ()) -> None:
        self.signing, self.trusted = signing, trusted

    def resolve_private_key(self, key_id: str) -> object:
        raise HTTPMessageSignaturesException("signing goes through SigningKey.sign")

    def resolve_public_key(self, key_id: str) -> Ed25519PublicKey | None:
        if key_id not in self.trusted:
            return None
        try:
            return public_key_of(key_id)
        except KeyFormatError:
            return None


def sign_request(key: SigningKey, method: str, url: str, body: bytes | None, *,
                 content_type: str, now: datetime | None = None,
                 nonce: str | None = None, tag: str = TAG,
                 covered: tuple[str, ...] = COVERED) -> dict[str, str]:
    """The headers to send with ``body``: Content-Type, Content-Digest, Signature-Input and
    Signature. ``url`` must be the exact URL the request goes to. ``tag`` and ``covered`` are
    the profile's; others (and a body of None: no Content-Digest) serve only to test that
    receivers refuse them."""
    message = _Message(method.upper(), url, {"Content-Type": content_type})
    signer = HTTPMessageSigner(signature_algorithm=algorithms.ED25519, key_resolver=_Keys(key))
    prepared = signer.prepare(
        message, key_id=key.verification_method, created=now or datetime.now(UTC),
        nonce=nonce or secrets.token_urlsafe(18), label=LABEL, tag=tag,
        covered_component_ids=covered, body=body)
    signer.apply(message, prepared, key.sign(prepared.signature_base))
    return message.headers


@dataclass(frozen=True)
class VerifiedRequest:
    key: str  # the verification method that signed it
    nonce: str
    created: int


def verify_request(method: str, url: str, headers: Mapping[str, str], body: bytes, *,
                   trusted: Collection[str], max_age: timedelta = MAX_AGE) -> VerifiedRequest:
    """Check a signed request against the keys ``trusted`` (verification methods); raise
    :class:`SignatureRejected` unless one of them signed exactly this method, URL, content
    type and body, recently, with a nonce. Replays are the caller's to refuse (the nonce)."""
    wanted = {k.lower(): v for k, v in headers.items()
              if k.lower() in ("content-type", "content-digest", "signature", "signature-input")}
    if "signature" not in wanted or "signature-input" not in wanted:
        raise SignatureRejected("the request is not signed")
    verifier = HTTPMessageVerifier(signature_algorithm=algorithms.ED25519,
                                   key_resolver=_Keys(trusted=trusted))
    verifier.max_clock_skew = CLOCK_SKEW
    try:
        results = verifier.verify(_Message(method.upper(), url, wanted), max_age=max_age,
                                  expect_tag=TAG, expect_label=LABEL, require_components=COVERED,
                                  body=body)
    except InvalidSignature as exc:
        raise SignatureRejected(_reason(exc)) from None
    except (HTTPMessageSignaturesException, ValueError, TypeError) as exc:
        raise SignatureRejected("the signature headers cannot be read") from exc
    if len(results) != 1:
        raise SignatureRejected("expected exactly one signature")
    parameters = results[0].parameters
    nonce = parameters.get("nonce")
    if not isinstance(nonce, str) or not 16 <= len(nonce) <= 128:
        raise SignatureRejected("the signature carries no usable nonce")
    if parameters.get("alg") != "ed25519":
        raise SignatureRejected("the signature does not name alg=ed25519")
    return VerifiedRequest(str(parameters["keyid"]), nonce, int(parameters["created"]))


def _reason(exc: InvalidSignature) -> str:
    """A short reason, in our words, for the receiver's log."""
    text = str(exc)
    for needle, reason in (
            ("resolve verification key", "signed with a key not trusted here"),
            ("future", "the signature was created in the future"),
            ("maximum allowable age", "the signature is too old"),
            ("Content-Digest", "the body does not match its signed digest"),
            ("digest", "the body does not match its signed digest"),
            ("not covered", "the signature does not cover what it must"),
            ("No signatures", "no signature for notifications"),
            ("created", "the signature has no creation time")):
        if needle in text:
            return reason
    return "the signature does not verify"


@dataclass
class NonceCache:
    """Nonces seen within the acceptance window; a nonce seen twice is a replay. Entries
    leave once their signature would be too old anyway, so the cache stays small."""

    window: timedelta = MAX_AGE + CLOCK_SKEW * 2
    limit: int = 100_000
    clock: Callable[[], float] = time.time
    _seen: dict[str, float] = field(default_factory=dict)

    def first_time(self, nonce: str, created: int) -> bool:
        now = self.clock()
        if len(self._seen) >= self.limit // 2:
            self._seen = {n: t for n, t in self._seen.items() if t > now}
        if nonce in self._seen and self._seen[nonce] > now:
            return False
        if len(self._seen) >= self.limit:
            return False  # full of live nonces: refuse rather than forget one
        self._seen[nonce] = max(now, created) + self.window.total_seconds()
        return True

"""Ed25519 keys in the forms Data Integrity uses: Multikey (multibase base58btc with a multicodec
prefix) and ``did:key`` verification method identifiers."""

from __future__ import annotations

import base58
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

from vrm_agent.errors import VrmAgentError

_ED25519_PUB = b"\xed\x01"  # multicodec ed25519-pub
_ED25519_PRIV = b"\x80\x26"  # multicodec ed25519-priv


class KeyFormatError(VrmAgentError):
    """A key or verification method that cannot be read."""


def multibase(data: bytes) -> str:
    return "z" + base58.b58encode(data).decode("ascii")


def from_multibase(text: str) -> bytes:
    if not text.startswith("z"):
        raise KeyFormatError("only base58btc multibase values (starting with z) are supported")
    try:
        return base58.b58decode(text[1:])
    except ValueError as exc:
        raise KeyFormatError(f"not base58btc: {text[:16]}...") from exc


class SigningKey:
    def __init__(self, private: Ed25519PrivateKey | None = None) -> None:
        self._private = private or Ed25519PrivateKey.generate()
        raw = self._private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        self.public_key_multibase = multibase(_ED25519_PUB + raw)

    @classmethod
    def from_secret(cls, secret: str) -> SigningKey:
        data = from_multibase(secret)
        if not data.startswith(_ED25519_PRIV) or len(data) != 34:
            raise KeyFormatError("not an Ed25519 secret key in Multikey form")
        return cls(Ed25519PrivateKey.from_private_bytes(data[2:]))

    @property
    def secret(self) -> str:
        raw = self._private.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
        return multibase(_ED25519_PRIV + raw)

    @property
    def did(self) -> str:
        return "did:key:" + self.public_key_multibase

    @property
    def verification_method(self) -> str:
        return f"{self.did}#{self.public_key_multibase}"

    def sign(self, data: bytes) -> bytes:
        return self._private.sign(data)


def public_key_of(verification_method: str) -> Ed25519PublicKey:
    """The Ed25519 key a ``did:key`` verification method names."""
    if not verification_method.startswith("did:key:z"):
        raise KeyFormatError(
            f"unsupported verification method {verification_method!r} (did:key only)")
    fingerprint = verification_method[len("did:key:"):].split("#", 1)[0]
    data = from_multibase(fingerprint)
    if not data.startswith(_ED25519_PUB) or len(data) != 34:
        raise KeyFormatError("the did:key is not an Ed25519 key")
    return Ed25519PublicKey.from_public_bytes(data[2:])


def signature_valid(verification_method: str, signature: bytes, data: bytes) -> bool:
    try:
        public_key_of(verification_method).verify(signature, data)
    except InvalidSignature:
        return False
    return True

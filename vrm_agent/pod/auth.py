"""Solid-OIDC client credentials with DPoP-bound tokens: the pieces that need no network.

A :class:`DpopKey` makes one fresh proof per request (RFC 9449); :class:`AccessToken` knows when it
must be renewed. The HTTP exchange with the identity provider lives in the client.
"""

from __future__ import annotations

import base64
import hashlib
import time
import uuid
from dataclasses import dataclass
from urllib.parse import quote, urlsplit, urlunsplit

from joserfc import jwt
from joserfc.jwk import ECKey

# CSS issues tokens for 600 s and no refresh token: we ask for a new one this long before expiry.
RENEW_MARGIN_SECONDS = 60.0


@dataclass(frozen=True)
class ClientCredentials:
    """What `vrm-agent login` stores: whose WebID, and the client id and secret the pod's identity
    provider issued for it."""

    webid: str
    client_id: str
    client_secret: str

    def __repr__(self) -> str:  # never print the secret by accident
        return f"ClientCredentials(webid={self.webid!r}, client_id={self.client_id!r})"


def htu(url: str) -> str:
    """The DPoP ``htu`` claim: the request URL without query and fragment."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


def token_hash(access_token: str) -> str:
    """The DPoP ``ath`` claim: base64url(sha256(token)) without padding."""
    digest = hashlib.sha256(access_token.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def basic_authorization(client_id: str, client_secret: str) -> str:
    """RFC 6749 2.3.1: both parts are form-urlencoded before base64."""
    raw = f"{quote(client_id, safe='')}:{quote(client_secret, safe='')}".encode()
    return "Basic " + base64.b64encode(raw).decode("ascii")


class DpopKey:
    """A P-256 key pair bound to our access tokens; signs a fresh proof for every request."""

    def __init__(self, key: ECKey | None = None) -> None:
        self._key = key or ECKey.generate_key("P-256")
        self.public_jwk: dict[str, str] = dict(self._key.as_dict(private=False))
        self.thumbprint: str = self._key.thumbprint()

    def proof(self, method: str, url: str, access_token: str | None = None) -> str:
        header = {"alg": "ES256", "typ": "dpop+jwt", "jwk": self.public_jwk}
        claims: dict[str, object] = {
            "htm": method.upper(),
            "htu": htu(url),
            "jti": str(uuid.uuid4()),
            "iat": int(time.time()),
        }
        if access_token is not None:
            claims["ath"] = token_hash(access_token)
        return jwt.encode(header, claims, self._key)


@dataclass(frozen=True)
class AccessToken:
    value: str
    expires_at: float  # time.monotonic() deadline

    @classmethod
    def from_response(cls, payload: dict[str, object], now: float | None = None) -> AccessToken:
        now = time.monotonic() if now is None else now
        value = payload.get("access_token")
        if not isinstance(value, str) or not value:
            raise ValueError("the token response has no access_token")
        lifetime = payload.get("expires_in", 600)
        try:
            seconds = float(lifetime)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            seconds = 600.0
        return cls(value, now + seconds)

    def needs_renewal(self, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        return now >= self.expires_at - RENEW_MARGIN_SECONDS

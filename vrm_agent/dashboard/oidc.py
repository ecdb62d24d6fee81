"""Logging the person in to the dashboard: the pure parts of the Solid-OIDC authorization code
flow with PKCE (S256), single-use state and nonce, and the checks on the ID token.

The HTTP exchanges (discovery, keys, the token request with its DPoP proof) are in
:mod:`vrm_agent.dashboard.login`; nothing here touches the network, so every check can be tested
with keys made in the test.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from vrm_agent.errors import VrmAgentError

LOGIN_SECONDS = 600.0  # a login not finished within 10 minutes starts again
PENDING_LOGINS = 32  # logins under way at once; the oldest gives way
CLOCK_SKEW_SECONDS = 60  # tolerated between the issuer's clock and ours
SCOPE = "openid webid"
# What a Solid-OIDC issuer signs ID tokens with; "none" and HMAC (a shared secret we lack) never.
ID_TOKEN_ALGORITHMS = ["ES256", "ES384", "ES512", "RS256", "RS384", "RS512", "PS256", "PS384",
                       "PS512", "EdDSA"]


class LoginRefused(VrmAgentError):
    """The login cannot be trusted: the reason is shown to the person, never any token."""


def code_verifier() -> str:
    """RFC 7636: 43 to 128 unreserved characters; 64 random bytes give 86."""
    return secrets.token_urlsafe(64)


def code_challenge(verifier: str) -> str:
    """The S256 challenge: base64url of the verifier's SHA-256, without padding."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


@dataclass(frozen=True)
class PendingLogin:
    """One login under way: ``browser`` is the value of the cookie that ties it to the browser
    that started it, so a callback from another browser (login CSRF) is refused."""

    state: str
    nonce: str
    verifier: str
    browser: str
    started: float


class PendingLogins:
    """Logins under way, each usable once and for :data:`LOGIN_SECONDS` only; bounded."""

    def __init__(self, capacity: int = PENDING_LOGINS, seconds: float = LOGIN_SECONDS) -> None:
        self._capacity = capacity
        self._seconds = seconds
        self._by_state: OrderedDict[str, PendingLogin] = OrderedDict()

    def __len__(self) -> int:
        return len(self._by_state)

    def start(self, now: float) -> PendingLogin:
        self._forget_expired(now)
        while len(self._by_state) >= self._capacity:
            self._by_state.popitem(last=False)
        login = PendingLogin(secrets.token_urlsafe(32), secrets.token_urlsafe(32),
                             code_verifier(), secrets.token_urlsafe(32), now)
        self._by_state[login.state] = login
        return login

    def take(self, state: str, browser: str | None, now: float) -> PendingLogin:
        """The login ``state`` names, removed whatever the outcome: a state is never used twice."""
        login = self._by_state.pop(state, None)
        if login is None:
            raise LoginRefused("this login is unknown or was already used")
        if now - login.started > self._seconds:
            raise LoginRefused("this login took too long")
        if browser is None or not secrets.compare_digest(browser, login.browser):
            raise LoginRefused("this login was started in another browser")
        return login

    def _forget_expired(self, now: float) -> None:
        for state in [s for s, p in self._by_state.items() if now - p.started > self._seconds]:
            del self._by_state[state]


@dataclass(frozen=True)
class IssuerConfig:
    """What the login needs from the issuer's OpenID discovery document."""

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str


def same_issuer(a: str, b: str) -> bool:
    """Issuers compared as CSS writes them: with or without the trailing slash."""
    return a.rstrip("/") == b.rstrip("/")


def _web_address(value: object, what: str) -> str:
    if not isinstance(value, str) or len(value) > 2048:
        raise LoginRefused(f"the issuer's discovery document has no usable {what}")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise LoginRefused(f"the issuer's discovery document has no usable {what}")
    return value


def parse_discovery(document: object, expected_issuer: str) -> IssuerConfig:
    """The endpoints of the issuer the owner's profile names; a document speaking for another
    issuer, or lacking the code flow with S256 and DPoP, is refused."""
    if not isinstance(document, dict):
        raise LoginRefused("the issuer's discovery document is not a JSON object")
    issuer = _web_address(document.get("issuer"), "issuer")
    if not same_issuer(issuer, expected_issuer):
        raise LoginRefused("the issuer's discovery document names another issuer")
    methods = document.get("code_challenge_methods_supported")
    if isinstance(methods, list) and "S256" not in methods:
        raise LoginRefused("the issuer does not support PKCE with S256")
    return IssuerConfig(issuer,
                        _web_address(document.get("authorization_endpoint"),
                                     "authorization endpoint"),
                        _web_address(document.get("token_endpoint"), "token endpoint"),
                        _web_address(document.get("jwks_uri"), "key set"))


def authorization_url(config: IssuerConfig, login: PendingLogin, *, client_id: str,
                      redirect_uri: str) -> str:
    """Where the browser goes to log in at the issuer."""
    query = urlencode({
        "response_type": "code", "client_id": client_id, "redirect_uri": redirect_uri,
        "scope": SCOPE, "state": login.state, "nonce": login.nonce,
        "code_challenge": code_challenge(login.verifier), "code_challenge_method": "S256",
        "prompt": "consent",
    })
    separator = "&" if "?" in config.authorization_endpoint else "?"
    return config.authorization_endpoint + separator + query


def token_request_body(code: str, login: PendingLogin, *, client_id: str,
                       redirect_uri: str) -> str:
    """The form the token endpoint gets: the code, and the verifier that proves we asked."""
    return urlencode({"grant_type": "authorization_code", "code": code,
                      "redirect_uri": redirect_uri, "client_id": client_id,
                      "code_verifier": login.verifier})


def verify_id_token(token: str, keys: KeySet, *, issuer: str, client_id: str, nonce: str,
                    now: float) -> str:
    """The WebID an ID token speaks for, once its signature (against the issuer's keys), issuer,
    audience, time and nonce are right; :class:`LoginRefused` otherwise."""
    if not isinstance(token, str) or len(token) > 16384:
        raise LoginRefused("the issuer sent no usable ID token")
    try:
        decoded = jwt.decode(token, keys, algorithms=ID_TOKEN_ALGORITHMS)
    except (JoseError, ValueError, TypeError) as exc:
        raise LoginRefused("the ID token's signature is not the issuer's") from exc
    claims: dict[str, Any] = dict(decoded.claims)
    if not isinstance(claims.get("iss"), str) or not same_issuer(claims["iss"], issuer):
        raise LoginRefused("the ID token comes from another issuer")
    audience = claims.get("aud")
    audiences = [audience] if isinstance(audience, str) else audience
    if not isinstance(audiences, list) or client_id not in audiences:
        raise LoginRefused("the ID token was made for another client")
    if len(audiences) > 1 and claims.get("azp") != client_id:
        raise LoginRefused("the ID token was made for another client")
    expires, issued = claims.get("exp"), claims.get("iat")
    if not isinstance(expires, int | float) or expires + CLOCK_SKEW_SECONDS < now:
        raise LoginRefused("the ID token has expired")
    if isinstance(issued, int | float) and issued - CLOCK_SKEW_SECONDS > now:
        raise LoginRefused("the ID token was issued in the future")
    if not isinstance(claims.get("nonce"), str) or not secrets.compare_digest(
            claims["nonce"], nonce):
        raise LoginRefused("the ID token answers another login")
    return webid_of(claims)


def webid_of(claims: dict[str, Any]) -> str:
    """The WebID: the ``webid`` claim, or ``sub`` when it is a WebID itself."""
    for name in ("webid", "sub"):
        value = claims.get(name)
        if isinstance(value, str) and urlsplit(value).scheme in ("http", "https"):
            return value
    raise LoginRefused("the ID token names no WebID")

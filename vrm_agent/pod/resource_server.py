"""Vendors authenticate to the agent exactly as to a pod: a Solid-OIDC access token bound by DPoP.

The checks are those of a Solid resource server: the token's signature against its issuer's keys,
the issuer named by ``solid:oidcIssuer`` in the WebID profile, the DPoP proof's method, URL, age,
unreplayed ``jti`` and ``ath`` when present, and the ``cnf.jkt`` binding of token to proof key.
The checks are pure functions; :class:`SolidOidcVerifier` adds the fetching (WebID profiles,
issuer keys) with caches at the edge.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, KeySet, RSAKey
from rdflib import URIRef

from vrm_agent.errors import PodError, RdfSyntaxError, VrmAgentError
from vrm_agent.pod.auth import htu, token_hash
from vrm_agent.pod.client import SOLID, PodClient

# What CSS itself accepts for DPoP proofs and tokens; EdDSA is refused there, so here too.
ALGORITHMS = ("ES256", "ES384", "ES512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512")
PROOF_PAST_SECONDS = 240  # proof age accepted, as measured on CSS
PROOF_FUTURE_SECONDS = 120
CLOCK_LEEWAY_SECONDS = 30
FETCH_SECONDS = 5.0  # a WebID profile or an issuer's keys: a stranger's server gets this long
FAILURE_SECONDS = 30.0  # a profile or issuer that failed is not asked again before this
MAX_CACHED = 10_000
# An http(s) URL with no user information and nothing RDF cannot hold in an IRI.
_WEB_URL = re.compile(r"https?://[^\x00-\x20\x7f<>\"{}|\\^`@/?#]+(/[^\x00-\x20\x7f<>\"{}|\\^`]*)?")


class TokenRejected(VrmAgentError):
    """The request's credentials do not prove who sent it; the reason says which check failed."""


@dataclass(frozen=True)
class AuthenticatedAgent:
    webid: str
    client_id: str | None
    issuer: str


class ReplayCache:
    """DPoP ``jti`` values seen within the acceptance window; a second use is a replay."""

    def __init__(self, capacity: int = 100_000) -> None:
        self._seen: OrderedDict[str, float] = OrderedDict()
        self._capacity = capacity

    def check_and_add(self, jti: str, now: float) -> None:
        horizon = now - PROOF_PAST_SECONDS - PROOF_FUTURE_SECONDS
        while self._seen and next(iter(self._seen.values())) < horizon:
            self._seen.popitem(last=False)
        if jti in self._seen:
            raise TokenRejected("the DPoP proof was used before (replayed jti)")
        if len(self._seen) >= self._capacity:
            self._seen.popitem(last=False)
        self._seen[jti] = now


def parse_authorization(header: str | None) -> str:
    if not header:
        raise TokenRejected("no Authorization header")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "dpop" or not token.strip():
        raise TokenRejected("the Authorization scheme must be DPoP")
    return token.strip()


def _segments(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """A JWT's header and claims, NOT verified: only to learn whom to ask for keys."""
    parts = token.split(".")
    if len(parts) != 3:
        raise TokenRejected("not a JWT (three dot-separated parts expected)")

    def segment(value: str) -> dict[str, Any]:
        try:
            decoded = json.loads(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)))
        except (ValueError, TypeError) as exc:
            raise TokenRejected("not a JWT (a part is not base64url JSON)") from exc
        if not isinstance(decoded, dict):
            raise TokenRejected("not a JWT (a part is not a JSON object)")
        return decoded

    return segment(parts[0]), segment(parts[1])


def verify_access_token(token: str, keys: KeySet, *, now: float) -> dict[str, Any]:
    """Signature, type, audience and lifetime of the access token; returns its claims."""
    try:
        decoded = jwt.decode(token, keys, algorithms=ALGORITHMS)
    except JoseError as exc:
        raise TokenRejected(f"the access token's signature does not verify ({exc.error})") from exc
    claims = dict(decoded.claims)
    audience = claims.get("aud")
    audiences = audience if isinstance(audience, list) else [audience]
    if "solid" not in audiences:
        raise TokenRejected("the access token is not meant for Solid resource servers (aud)")
    exp, iat = claims.get("exp"), claims.get("iat")
    if not isinstance(exp, int | float) or exp + CLOCK_LEEWAY_SECONDS < now:
        raise TokenRejected("the access token has expired")
    if isinstance(iat, int | float) and iat - CLOCK_LEEWAY_SECONDS > now:
        raise TokenRejected("the access token is issued in the future")
    for claim in ("webid", "iss"):
        if not isinstance(claims.get(claim), str):
            raise TokenRejected(f"the access token has no {claim} claim")
    jkt = (claims.get("cnf") or {}).get("jkt") if isinstance(claims.get("cnf"), dict) else None
    if not isinstance(jkt, str):
        raise TokenRejected("the access token is not DPoP-bound (no cnf.jkt)")
    return claims


def verify_dpop_proof(
    proof: str | None,
    *,
    method: str,
    url: str,
    access_token: str,
    now: float,
    replay: ReplayCache,
) -> str:
    """Check a DPoP proof for this request; returns the thumbprint of the key that signed it."""
    if not proof:
        raise TokenRejected("no DPoP proof header")
    try:
        header, _claims = _segments(proof)
        jwk = header.get("jwk")
        if not isinstance(jwk, dict) or any(k in jwk for k in ("d", "p", "q")):
            raise TokenRejected("the DPoP proof carries no public jwk")
        key = (ECKey if jwk.get("kty") == "EC" else RSAKey).import_key(jwk)
        decoded = jwt.decode(proof, key, algorithms=ALGORITHMS)
    except TokenRejected:
        raise
    except (JoseError, ValueError, TypeError) as exc:
        raise TokenRejected("the DPoP proof is not a valid signed JWT") from exc
    if decoded.header.get("typ") != "dpop+jwt":
        raise TokenRejected("the DPoP proof's typ is not dpop+jwt")
    claims = decoded.claims
    if claims.get("htm") != method.upper():
        raise TokenRejected("the DPoP proof is for another method (htm)")
    if claims.get("htu") != htu(url):
        raise TokenRejected("the DPoP proof is for another URL (htu)")
    iat = claims.get("iat")
    if not isinstance(iat, int | float):
        raise TokenRejected("the DPoP proof has no iat")
    if iat < now - PROOF_PAST_SECONDS or iat > now + PROOF_FUTURE_SECONDS:
        raise TokenRejected("the DPoP proof is too old or from the future (iat)")
    # As on the pod server: Solid clients (Inrupt's among them) send proofs without ath, and a
    # pod accepts them; the token is still bound to the proof's key by cnf.jkt. An ath that is
    # there must name this token.
    if "ath" in claims and claims["ath"] != token_hash(access_token):
        raise TokenRejected("the DPoP proof is not made for this access token (ath)")
    jti = claims.get("jti")
    if not isinstance(jti, str) or not jti:
        raise TokenRejected("the DPoP proof has no jti")
    replay.check_and_add(jti, now)
    return key.thumbprint()


def _why(error: PodError) -> str:
    """A fixed reason for a failed fetch: never the error's own text, which can carry a parser's
    message or a local path (the answer goes back to whoever sent the token)."""
    if isinstance(error, RdfSyntaxError):
        return "not RDF the agent can read; JSON-LD may name bundled contexts only"
    if error.status is not None:
        return f"HTTP {error.status}"
    return "no answer"


@dataclass
class _Cached:
    value: Any
    until: float


class SolidOidcVerifier:
    """Verifies requests as a Solid resource server does, fetching and caching what it needs.

    Profiles and issuer keys come from servers strangers choose: each fetch has a deadline, a
    failure is remembered for a while, and issuers are fetched side by side, so one stranger's
    slow server never holds up another vendor."""

    def __init__(self, client: PodClient, *, cache_seconds: float = 300.0,
                 fetch_seconds: float = FETCH_SECONDS) -> None:
        self._client = client  # anonymous: profiles and issuer keys are public
        self._cache_seconds = cache_seconds
        self._fetch_seconds = fetch_seconds
        self._issuers: dict[str, _Cached] = {}
        self._keys: dict[str, _Cached] = {}
        self._fetching: dict[str, asyncio.Future[KeySet]] = {}
        self.replay = ReplayCache()

    async def verify(
        self, *, method: str, url: str, authorization: str | None, dpop: str | None
    ) -> AuthenticatedAgent:
        token = parse_authorization(authorization)
        now = time.time()
        _header, claims = _segments(token)
        issuer, webid = claims.get("iss"), claims.get("webid")
        if not isinstance(issuer, str) or not isinstance(webid, str):
            raise TokenRejected("the access token names no issuer or WebID")
        if not (_WEB_URL.fullmatch(webid) and _WEB_URL.fullmatch(issuer)):
            # Checked before anything is fetched: the WebID ends up in access-control documents.
            raise TokenRejected("the access token's WebID and issuer must be http(s) URLs")
        if issuer not in await self._trusted_issuers(webid):
            raise TokenRejected("the WebID's profile does not name the token's issuer")
        claims = verify_access_token(token, await self._issuer_keys(issuer), now=now)
        jkt = verify_dpop_proof(dpop, method=method, url=url, access_token=token, now=now,
                                replay=self.replay)
        if jkt != claims["cnf"]["jkt"]:
            raise TokenRejected("the access token is bound to another key (cnf.jkt)")
        client_id = claims.get("client_id")
        return AuthenticatedAgent(webid, client_id if isinstance(client_id, str) else None,
                                  issuer)

    def _remember(self, cache: dict[str, _Cached], key: str, value: Any, seconds: float) -> None:
        cache.pop(key, None)
        cache[key] = _Cached(value, time.monotonic() + seconds)
        while len(cache) > MAX_CACHED:  # the oldest first: strangers cannot grow it for ever
            cache.pop(next(iter(cache)))

    @staticmethod
    def _fresh(cache: dict[str, _Cached], key: str) -> Any:
        cached = cache.get(key)
        if cached is None or cached.until <= time.monotonic():
            return None
        if isinstance(cached.value, TokenRejected):
            raise cached.value
        return cached.value

    async def _trusted_issuers(self, webid: str) -> set[str]:
        known = self._fresh(self._issuers, webid)
        if known is not None:
            return set(known)
        try:
            profile = await asyncio.wait_for(
                self._client.get_graph(webid, authenticated=False), self._fetch_seconds)
        except TimeoutError as exc:
            rejected = TokenRejected("the WebID profile did not answer in time")
            self._remember(self._issuers, webid, rejected, FAILURE_SECONDS)
            raise rejected from exc
        except PodError as exc:
            raise TokenRejected(f"the WebID profile cannot be read ({_why(exc)})") from exc
        issuers = {str(o).rstrip("/") + "/" for o in
                   profile.graph.objects(URIRef(webid), SOLID.oidcIssuer)}
        issuers |= {i.rstrip("/") for i in issuers}  # iss may come with or without slash
        self._remember(self._issuers, webid, issuers, self._cache_seconds)
        return issuers

    async def _issuer_keys(self, issuer: str) -> KeySet:
        known = self._fresh(self._keys, issuer)
        if known is not None:
            return known  # type: ignore[no-any-return]
        pending = self._fetching.get(issuer)
        if pending is None:  # one fetch per issuer, however many requests wait for it
            pending = asyncio.ensure_future(self._fetch_keys(issuer))
            self._fetching[issuer] = pending
            pending.add_done_callback(lambda _: self._fetching.pop(issuer, None))
        return await asyncio.shield(pending)

    async def _fetch_keys(self, issuer: str) -> KeySet:
        try:
            keys = await asyncio.wait_for(self._download_keys(issuer), self._fetch_seconds)
        except TimeoutError as exc:
            rejected = TokenRejected("the issuer's keys cannot be had (no answer in time)")
            self._remember(self._keys, issuer, rejected, FAILURE_SECONDS)
            raise rejected from exc
        except TokenRejected as rejected:
            self._remember(self._keys, issuer, rejected, FAILURE_SECONDS)
            raise
        self._remember(self._keys, issuer, keys, self._cache_seconds)
        return keys

    async def _download_keys(self, issuer: str) -> KeySet:
        try:
            config_url = issuer.rstrip("/") + "/.well-known/openid-configuration"
            jwks_uri = (await self._client.get(config_url, authenticated=False,
                                               accept="application/json")).json()["jwks_uri"]
            jwks = (await self._client.get(jwks_uri, authenticated=False,
                                           accept="application/json")).json()
            return KeySet.import_key_set(jwks)
        except (PodError, KeyError, TypeError, ValueError, JoseError) as exc:
            reason = _why(exc) if isinstance(exc, PodError) else "no usable JWKS"
            raise TokenRejected(f"the issuer's keys cannot be had ({reason})") from exc

"""The agent checks vendors' tokens as a Solid resource server does: real tokens from real CSS
accounts, and each way a request can fail to prove who sent it."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from joserfc import jwt
from joserfc.jwk import ECKey, KeySet

from tests.conftest import PodEnv
from vrm_agent.pod import DpopKey, PodClient
from vrm_agent.pod.auth import token_hash
from vrm_agent.pod.resource_server import (
    ReplayCache,
    SolidOidcVerifier,
    TokenRejected,
    verify_access_token,
)

pytestmark = [pytest.mark.pod, pytest.mark.asyncio(loop_scope="session")]
URL = "http://localhost:8750/negotiations?x=1"


@pytest_asyncio.fixture(loop_scope="session")
async def verifier() -> AsyncIterator[SolidOidcVerifier]:
    async with PodClient() as anonymous:
        yield SolidOidcVerifier(anonymous)


async def signed_in(acme: PodClient) -> str:
    await acme.login()
    return await acme.access_token()


async def test_a_vendor_token_is_accepted(
    verifier: SolidOidcVerifier, acme: PodClient, pod_env: PodEnv
) -> None:
    token = await signed_in(acme)
    agent = await verifier.verify(method="POST", url=URL, authorization=f"DPoP {token}",
                                  dpop=acme.dpop_key.proof("POST", URL, token))
    assert agent.webid == pod_env.acme.webid
    assert agent.issuer.rstrip("/") == pod_env.server.base_url.rstrip("/")


async def test_a_proof_without_ath_is_accepted_as_a_pod_accepts_it(
    verifier: SolidOidcVerifier, acme: PodClient, pod_env: PodEnv
) -> None:
    # Inrupt's session.fetch sends proofs without ath; CSS accepts them, so the agent does.
    token = await signed_in(acme)
    agent = await verifier.verify(method="POST", url=URL, authorization=f"DPoP {token}",
                                  dpop=acme.dpop_key.proof("POST", URL))
    assert agent.webid == pod_env.acme.webid
    # Without ath the token is still bound to the proof's key: another key is refused.
    with pytest.raises(TokenRejected, match="bound to another key"):
        await verifier.verify(method="POST", url=URL, authorization=f"DPoP {token}",
                              dpop=DpopKey().proof("POST", URL))


@pytest.mark.parametrize(("case", "reason"), [
    ("no-header", "no Authorization header"),
    ("bearer", "scheme must be DPoP"),
    ("no-proof", "no DPoP proof"),
    ("method", "another method"),
    ("url", "another URL"),
    ("ath", "not made for this access token"),
    ("other-key", "bound to another key"),
    ("old", "too old"),
    ("tampered", "signature does not verify"),
    ("garbage", "not a JWT"),
])
async def test_bad_credentials_are_rejected(
    verifier: SolidOidcVerifier, acme: PodClient, case: str, reason: str
) -> None:
    token = await signed_in(acme)
    authorization: str | None = f"DPoP {token}"
    proof: str | None = acme.dpop_key.proof("POST", URL, token)
    if case == "no-header":
        authorization = None
    elif case == "bearer":
        authorization = f"Bearer {token}"
    elif case == "no-proof":
        proof = None
    elif case == "method":
        proof = acme.dpop_key.proof("GET", URL, token)
    elif case == "url":
        proof = acme.dpop_key.proof("POST", "http://localhost:8750/other", token)
    elif case == "ath":
        proof = acme.dpop_key.proof("POST", URL, "another-token")
    elif case == "other-key":
        proof = DpopKey().proof("POST", URL, token)  # a stolen token used with a thief's key
    elif case == "old":
        key = ECKey.generate_key("P-256")
        proof = jwt.encode(
            {"alg": "ES256", "typ": "dpop+jwt", "jwk": key.as_dict(private=False)},
            {"htm": "POST", "htu": URL.split("?")[0], "jti": str(uuid.uuid4()),
             "iat": int(time.time()) - 3600, "ath": token_hash(token)}, key)
    elif case == "tampered":
        head, claims, signature = token.split(".")
        authorization = f"DPoP {head}.{claims}.{signature[::-1]}"
    elif case == "garbage":
        authorization = "DPoP not-a-jwt"
    with pytest.raises(TokenRejected, match=reason):
        await verifier.verify(method="POST", url=URL, authorization=authorization, dpop=proof)


async def test_a_replayed_proof_is_rejected(verifier: SolidOidcVerifier, acme: PodClient) -> None:
    token = await signed_in(acme)
    proof = acme.dpop_key.proof("POST", URL, token)
    await verifier.verify(method="POST", url=URL, authorization=f"DPoP {token}", dpop=proof)
    with pytest.raises(TokenRejected, match="replayed"):
        await verifier.verify(method="POST", url=URL, authorization=f"DPoP {token}", dpop=proof)


async def test_an_issuer_the_webid_does_not_name(
    verifier: SolidOidcVerifier, pod_env: PodEnv
) -> None:
    # A token minted by someone else's identity provider for acme's WebID.
    rogue = ECKey.generate_key("P-256")
    dpop = DpopKey()
    now = int(time.time())
    token = jwt.encode({"alg": "ES256", "typ": "at+jwt"}, {
        "iss": "http://localhost:1/", "webid": pod_env.acme.webid, "aud": "solid", "iat": now,
        "exp": now + 600, "cnf": {"jkt": dpop.thumbprint}}, rogue)
    with pytest.raises(TokenRejected, match="does not name the token's issuer"):
        await verifier.verify(method="POST", url=URL, authorization=f"DPoP {token}",
                              dpop=dpop.proof("POST", URL, token))


def test_expired_and_unbound_tokens() -> None:
    key = ECKey.generate_key("P-256")
    keys = KeySet([key])
    now = int(time.time())
    claims = {"iss": "http://i/", "webid": "http://w/#me", "aud": "solid", "iat": now - 700,
              "exp": now - 100, "cnf": {"jkt": "x"}}
    with pytest.raises(TokenRejected, match="expired"):
        verify_access_token(jwt.encode({"alg": "ES256"}, claims, key), keys, now=now)
    unbound = {**claims, "exp": now + 500}
    del unbound["cnf"]
    with pytest.raises(TokenRejected, match="not DPoP-bound"):
        verify_access_token(jwt.encode({"alg": "ES256"}, unbound, key), keys, now=now)
    wrong_audience = {**claims, "exp": now + 500, "aud": "somewhere-else"}
    with pytest.raises(TokenRejected, match="aud"):
        verify_access_token(jwt.encode({"alg": "ES256"}, wrong_audience, key), keys, now=now)


def test_replay_cache_forgets_after_the_window() -> None:
    cache = ReplayCache()
    cache.check_and_add("a", now=1000.0)
    with pytest.raises(TokenRejected):
        cache.check_and_add("a", now=1001.0)
    cache.check_and_add("a", now=1000.0 + 1000)  # long after the acceptance window

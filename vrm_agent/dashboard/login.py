"""The dashboard login's exchanges with the owner's issuer: which issuer (the one the owner's
WebID profile names, read with the pod client, never one a visitor names), its endpoints and
keys, and the token request with a DPoP proof."""

from __future__ import annotations

from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from vrm_agent.dashboard.oidc import (
    IssuerConfig,
    LoginRefused,
    PendingLogin,
    parse_discovery,
    token_request_body,
)
from vrm_agent.errors import PodError
from vrm_agent.pod.auth import DpopKey
from vrm_agent.pod.client import PodClient


async def owner_issuer(client: PodClient, owner: str) -> IssuerConfig:
    issuer = await client.discover_issuer(owner)
    url = issuer.rstrip("/") + "/.well-known/openid-configuration"
    response = await client.get(url, accept="application/json", authenticated=False)
    return parse_discovery(response.json(), issuer)


async def issuer_keys(client: PodClient, config: IssuerConfig) -> KeySet:
    response = await client.get(config.jwks_uri, accept="application/json",
                                authenticated=False)
    try:
        return KeySet.import_key_set(response.json())
    except (JoseError, ValueError, TypeError, KeyError) as exc:
        raise LoginRefused("the issuer publishes no usable keys") from exc


async def exchange_code(client: PodClient, config: IssuerConfig, code: str,
                        login: PendingLogin, *, client_id: str, redirect_uri: str) -> str:
    """The ID token the issuer gives for ``code``. The access token that comes with it is
    DPoP-bound to a key used once and dropped: the dashboard reads the pod with the agent's own
    credentials, never with the person's browser login."""
    headers = {"Content-Type": "application/x-www-form-urlencoded",
               "Accept": "application/json",
               "DPoP": DpopKey().proof("POST", config.token_endpoint)}
    response = await client.request(
        "POST", config.token_endpoint, headers=headers, authenticated=False, expect_ok=False,
        body=token_request_body(code, login, client_id=client_id, redirect_uri=redirect_uri))
    if response.status != 200:
        raise LoginRefused(f"the issuer refused the login (status {response.status})")
    try:
        answer = response.json()
    except PodError as exc:
        raise LoginRefused("the issuer's answer is not JSON") from exc
    token = answer.get("id_token") if isinstance(answer, dict) else None
    if not isinstance(token, str):
        raise LoginRefused("the issuer sent no ID token")
    if isinstance(answer, dict) and str(answer.get("token_type", "")).lower() != "dpop":
        raise LoginRefused("the issuer did not bind the login to its DPoP proof")
    return token

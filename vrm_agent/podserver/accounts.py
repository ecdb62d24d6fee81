"""Accounts, pods and client credentials through the CSS v7 JSON account API.

Every URL is taken from the ``controls`` the server returns, never built by hand, so a server that
moves its endpoints still works.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import aiohttp

from vrm_agent.errors import NotASolidServer, PodError, PodUnreachable
from vrm_agent.pod.auth import ClientCredentials


@dataclass(frozen=True)
class PodAccount:
    email: str
    password: str
    webid: str
    pod: str
    client_id: str
    client_secret: str

    @property
    def credentials(self) -> ClientCredentials:
        return ClientCredentials(self.webid, self.client_id, self.client_secret)

    def __repr__(self) -> str:
        return f"PodAccount(email={self.email!r}, webid={self.webid!r})"


class AccountApi:
    def __init__(self, base_url: str, session: aiohttp.ClientSession | None = None) -> None:
        self.base_url = base_url if base_url.endswith("/") else base_url + "/"
        self._session = session
        self._own_session = session is None

    async def __aenter__(self) -> AccountApi:
        if self._session is None:
            # No cookies: the account token header and the css-account cookie together give 500.
            self._session = aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar())
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._own_session and self._session is not None:
            await self._session.close()
            self._session = None

    async def _call(
        self, method: str, url: str, token: str | None = None, body: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        assert self._session is not None, "use 'async with AccountApi(...)'"
        headers = {"Accept": "application/json"}
        if token:
            headers["Authorization"] = f"CSS-Account-Token {token}"
        try:
            async with self._session.request(method, url, headers=headers, json=body) as response:
                text = await response.text()
                if response.status >= 400:
                    raise PodError("the account API refused the request", method=method, url=url,
                                   status=response.status, server_message=text[:300])
                try:
                    payload = await response.json(content_type=None)
                except ValueError as exc:
                    raise NotASolidServer("the account API did not answer JSON", method=method,
                                          url=url, status=response.status) from exc
        except aiohttp.ClientConnectionError as exc:
            raise PodUnreachable(f"no answer from {url}", method=method, url=url) from exc
        return payload if isinstance(payload, dict) else {}

    async def _controls(self, token: str | None = None) -> dict[str, Any]:
        url = self.base_url + ".account/"
        controls = (await self._call("GET", url, token)).get("controls")
        if not isinstance(controls, dict):
            raise NotASolidServer("no CSS v7 account API here", method="GET", url=url)
        return controls

    async def create_account(self, email: str, password: str) -> str:
        """Create an account with a password login; returns the account token."""
        controls = await self._controls()
        token = (await self._call("POST", controls["account"]["create"], body={}))["authorization"]
        controls = await self._controls(token)
        await self._call("POST", controls["password"]["create"], token,
                         {"email": email, "password": password})
        return str(token)

    async def log_in(self, email: str, password: str) -> str:
        controls = await self._controls()
        answer = await self._call("POST", controls["password"]["login"],
                                  body={"email": email, "password": password})
        return str(answer["authorization"])

    async def create_pod(self, token: str, name: str) -> tuple[str, str]:
        """Returns (pod URL, WebID)."""
        controls = await self._controls(token)
        answer = await self._call("POST", controls["account"]["pod"], token, {"name": name})
        return str(answer["pod"]), str(answer["webId"])

    async def create_client_credentials(self, token: str, name: str, webid: str) -> tuple[str, str]:
        """Returns (client id, secret); the secret is shown only this once."""
        controls = await self._controls(token)
        answer = await self._call("POST", controls["account"]["clientCredentials"], token,
                                  {"name": name, "webId": webid})
        return str(answer["id"]), str(answer["secret"])

    async def create_pod_account(self, name: str, email: str, password: str) -> PodAccount:
        """An account with a pod called ``name`` and client credentials for its WebID."""
        token = await self.create_account(email, password)
        pod, webid = await self.create_pod(token, name)
        client_id, secret = await self.create_client_credentials(token, f"{name}-agent", webid)
        return PodAccount(email, password, webid, pod, client_id, secret)

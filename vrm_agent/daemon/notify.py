"""Telling vendors what happened: protocol messages POSTed to their callback address.

A notification carries no credential of the person: it goes out on a plain HTTP client (no
Authorization header, no cookies, no redirects followed, short timeouts, a bounded read of the
answer) and is signed instead, with HTTP Message Signatures under the agent's Ed25519 key, the
one its discovery document publishes as ``vrm:signingKey`` (docs/protocol.md says how a vendor
checks it). The callback address is checked when the vendor names it and again before every
delivery (:mod:`vrm_agent.negotiation.callbacks`), so no record, however old, aims the agent at
the person's own storage, the agent or the person's identity provider.

Delivery is tried again with growing pauses; a vendor that never answers loses nothing it could
not also learn by polling the negotiation's status URL.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Mapping
from typing import Any

import aiohttp

from vrm_agent.daemon.negotiations import NegotiationError
from vrm_agent.integrity.keys import SigningKey
from vrm_agent.negotiation.callbacks import CallbackRejected, check_callback

log = logging.getLogger("vrm_agent.daemon.notify")
JSON_LD = "application/ld+json"
CONNECT_SECONDS = 5.0
TOTAL_SECONDS = 10.0
MAX_ANSWER_BYTES = 4096  # the answer is not used; only this much is read before closing


class BadCallback(NegotiationError):
    status = 400
    slug = "bad-callback"
    title = "The callback address is not acceptable"


class Notifier:
    def __init__(self, signing_key: SigningKey, *, storage: str, agent_url: str,
                 issuer: str | None, attempts: int = 5, first_pause: float = 0.5) -> None:
        self.key = signing_key
        self.storage, self.agent_url, self.issuer = storage, agent_url, issuer
        self.attempts = attempts
        self.first_pause = first_pause
        self._pending: set[asyncio.Task[bool]] = set()
        self._session: aiohttp.ClientSession | None = None
        self.delivered = 0
        self.failed = 0

    def checked(self, url: str) -> str:
        """``url`` in canonical form if notifications may go there; :class:`CallbackRejected`
        otherwise."""
        return check_callback(url, storage=self.storage, agent=self.agent_url, issuer=self.issuer)

    def accept_callback(self, url: str | None) -> str | None:
        """A vendor's callback address as the negotiation keeps it (None when it named none);
        a :class:`BadCallback` (400) when the agent will not send there."""
        if url is None:
            return None
        try:
            return self.checked(url)
        except CallbackRejected as exc:
            raise BadCallback(str(exc)) from None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                cookie_jar=aiohttp.DummyCookieJar(), trust_env=False,
                timeout=aiohttp.ClientTimeout(total=TOTAL_SECONDS, connect=CONNECT_SECONDS))
        return self._session

    async def _post(self, url: str, body: bytes) -> int:
        # Imported on the first notification: most vendors name no callback, and the signing
        # library is of no use to an agent that never sends one.
        from vrm_agent.integrity.http_signatures import sign_request

        headers = sign_request(self.key, "POST", url, body, content_type=JSON_LD)
        async with self._client().post(url, data=body, headers=headers,
                                       allow_redirects=False) as response:
            await response.content.read(MAX_ANSWER_BYTES)
            return response.status

    async def deliver(self, url: str, message: Mapping[str, Any]) -> bool:
        try:  # the record may predate the rule, or the storage may have moved since
            url = self.checked(url)
        except CallbackRejected as exc:
            self.failed += 1
            log.error("notification not sent: callback refused",
                      extra={"url": url[:200], "problem": str(exc)})
            return False
        body = json.dumps(message).encode()
        pause = self.first_pause
        for attempt in range(1, self.attempts + 1):
            try:
                status = await self._post(url, body)  # signed afresh: a new created and nonce
                if status < 300:
                    self.delivered += 1
                    return True
                problem = f"HTTP {status}"
                if status < 400 or (status < 500 and status not in (408, 429)):
                    break  # a redirect or a refusal: trying again changes nothing
            except (aiohttp.ClientError, TimeoutError) as exc:
                problem = type(exc).__name__
            log.warning("notification not delivered", extra={
                "url": url, "attempt": attempt, "problem": problem})
            if attempt < self.attempts:
                await asyncio.sleep(pause)
                pause *= 2
        self.failed += 1
        log.error("notification given up", extra={"url": url, "type": message.get("type")})
        return False

    def send(self, url: str | None, message: Mapping[str, Any]) -> None:
        """Deliver in the background (the caller's answer does not wait for the vendor)."""
        if not url:
            return
        task = asyncio.create_task(self.deliver(url, message))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def drain(self) -> None:
        """Wait for every delivery under way (a command does this before it exits), then
        close the client."""
        while self._pending:
            await asyncio.gather(*list(self._pending), return_exceptions=True)
        if self._session is not None:
            await self._session.close()
            self._session = None

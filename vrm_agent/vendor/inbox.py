"""The vendor's inbox: where a person's agent tells it what happened (an agreement the person
approved, a counter-offer, a revocation, an expiry).

Each notification must come with the Solid-OIDC credentials of the person the negotiation is
with, checked as the agent checks vendors; anything else is refused with 401 and not kept.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from vrm_agent.negotiation.wire import MAX_MESSAGE_BYTES, MalformedMessage, parse_message
from vrm_agent.pod.client import PodClient
from vrm_agent.pod.resource_server import SolidOidcVerifier, TokenRejected


@dataclass(frozen=True)
class Notification:
    sender: str
    type: str
    negotiation: str | None
    state: str | None
    event: str | None
    document: dict[str, Any]


class Inbox:
    """An aiohttp server for notifications; :meth:`wait_for` blocks until a matching one."""

    def __init__(self, *, host: str = "localhost", port: int = 0, path: str = "/inbox") -> None:
        self.host, self.port, self.path = host, port, path
        self.received: list[Notification] = []
        self.refusals: list[str] = []  # why each refused notification was refused
        self._arrived = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self._anonymous: PodClient | None = None
        self._verifier: SolidOidcVerifier | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}{self.path}"

    async def start(self) -> str:
        self._anonymous = PodClient()
        await self._anonymous.open()
        self._verifier = SolidOidcVerifier(self._anonymous)
        app = web.Application(client_max_size=MAX_MESSAGE_BYTES)
        app.router.add_post(self.path, self._receive)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        if self.port == 0:
            self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        if self._anonymous is not None:
            await self._anonymous.close()

    async def __aenter__(self) -> Inbox:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def _receive(self, request: web.Request) -> web.Response:
        assert self._verifier is not None
        try:
            sender = await self._verifier.verify(
                method="POST", url=self.url, authorization=request.headers.get("Authorization"),
                dpop=request.headers.get("DPoP"))
        except TokenRejected as exc:
            self.refusals.append(f"401: {exc}")
            return web.json_response({"title": "Authentication failed", "detail": str(exc)},
                                     status=401, content_type="application/problem+json")
        body = await request.read()
        try:
            message = parse_message(body)
        except MalformedMessage as exc:
            self.refusals.append(f"400: {exc}")
            return web.json_response({"title": "Malformed message", "detail": str(exc)},
                                     status=400, content_type="application/problem+json")
        document = json.loads(body)
        notification = Notification(sender.webid, message.type, message.negotiation,
                                    message.state, document.get("event"), document)
        async with self._arrived:
            self.received.append(notification)
            self._arrived.notify_all()
        return web.Response(status=202)

    async def wait_for(self, match: Callable[[Notification], bool], *,
                       timeout: float = 30.0) -> Notification:
        async def first() -> Notification:
            async with self._arrived:
                while True:
                    found = next((n for n in self.received if match(n)), None)
                    if found is not None:
                        return found
                    await self._arrived.wait()

        return await asyncio.wait_for(first(), timeout)

"""The vendor's inbox: where a person's agent tells it what happened (an agreement the person
approved, a counter-offer, a revocation, an expiry, a change of what was granted, the person's
relationship state, an intention to pay, an offer to an intent accepted, or the intent closed).

Each notification must be signed (HTTP Message Signatures, docs/protocol.md §9) with the key of
an agent this inbox trusts (:meth:`Inbox.trust`, which :meth:`VendorAgent.discover
<vrm_agent.vendor.client.VendorAgent.discover>` calls with the key the agent's discovery
document publishes), recently, with a nonce never seen before, over exactly this inbox's URL
and the body that came; and the negotiation (or the offer) it speaks of must be one of that
agent's (a relationship state or payment intention, which speaks of none, must name that agent
as ``agent``). Anything else is refused with 401 and not kept.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aiohttp import web

from vrm_agent.integrity.http_signatures import NonceCache, SignatureRejected, verify_request
from vrm_agent.negotiation.callbacks import CallbackRejected, normalise
from vrm_agent.negotiation.intent_wire import parse_notice
from vrm_agent.negotiation.signals import SIGNAL_TYPES, read_signal, signal_agent
from vrm_agent.negotiation.wire import MAX_MESSAGE_BYTES, MalformedMessage, parse_message

if TYPE_CHECKING:
    from vrm_agent.vendor.client import AgentInfo


def _is_signal(body: bytes) -> bool:
    """Whether the body says it is a relationship state or payment intention message (read
    fully, and refused when it is not one, by :func:`read_signal`)."""
    try:
        data = json.loads(body)
    except ValueError:
        return False
    return isinstance(data, dict) and data.get("type") in SIGNAL_TYPES


@dataclass(frozen=True)
class Notification:
    sender: str  # the person the signing agent acts for
    type: str
    negotiation: str | None
    state: str | None
    event: str | None
    document: dict[str, Any]
    agent: str = ""  # the agent whose key signed it


class Inbox:
    """An aiohttp server for notifications; :meth:`wait_for` blocks until a matching one."""

    def __init__(self, *, host: str = "localhost", port: int = 0, path: str = "/inbox",
                 public_url: str | None = None) -> None:
        """``public_url``: the address agents are given when it differs from where this
        server listens (behind an HTTPS proxy); signatures are checked against it."""
        self.host, self.port, self.path = host, port, path
        self.public_url = public_url
        self.received: list[Notification] = []
        self.refusals: list[str] = []  # why each refused notification was refused
        self._arrived = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self._agents: dict[str, dict[str, str]] = {}  # trusted key -> {agent URL: person}
        self._nonces = NonceCache()

    @property
    def url(self) -> str:
        return self.public_url or f"http://{self.host}:{self.port}{self.path}"

    def trust(self, agent: AgentInfo) -> None:
        """Accept notifications signed with ``agent``'s published key about its negotiations."""
        if agent.signing_key:
            self._agents.setdefault(agent.signing_key, {})[agent.url] = agent.person

    async def start(self) -> str:
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

    async def __aenter__(self) -> Inbox:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    def _refuse(self, status: int, title: str, why: str) -> web.Response:
        self.refusals.append(f"{status}: {why}")
        return web.json_response({"title": title, "status": status, "detail": why},
                                 status=status, content_type="application/problem+json")

    async def _receive(self, request: web.Request) -> web.Response:
        body = await request.read()
        try:  # the agent signs the canonical spelling of this inbox's URL
            own_url = normalise(self.url).url
        except CallbackRejected:
            own_url = self.url
        try:
            verified = verify_request("POST", own_url, request.headers, body,
                                      trusted=self._agents.keys())
        except SignatureRejected as exc:
            return self._refuse(401, "Not signed by a known agent", str(exc))
        if not self._nonces.first_time(verified.nonce, verified.created):
            return self._refuse(401, "Not signed by a known agent", "the nonce was seen before")
        agents = self._agents.get(verified.key, {})
        if _is_signal(body):
            return await self._receive_signal(body, agents)
        try:
            # An intent's message names the offer at the agent where others name a negotiation.
            message = parse_notice(body) or parse_message(body)
        except MalformedMessage as exc:
            return self._refuse(400, "Malformed message", str(exc))
        agent = next((a for a in agents if (message.negotiation or "").startswith(a)), None)
        if agent is None:
            return self._refuse(401, "Not signed by a known agent",
                                "the negotiation is not one of the signing agent's")
        document = json.loads(body)
        notification = Notification(agents[agent], message.type, message.negotiation,
                                    message.state, document.get("event"), document, agent)
        async with self._arrived:
            self.received.append(notification)
            self._arrived.notify_all()
        return web.Response(status=202)

    async def _receive_signal(self, body: bytes, agents: dict[str, str]) -> web.Response:
        """A relationship state or a payment intention: about no negotiation, so it must name
        as ``agent`` an agent whose key signed it."""
        try:
            message = read_signal(body, limit=MAX_MESSAGE_BYTES)
        except MalformedMessage as exc:
            return self._refuse(400, "Malformed message", str(exc))
        agent = signal_agent(message)
        if agent not in agents:
            return self._refuse(401, "Not signed by a known agent",
                                "the message's agent is not the signing agent")
        state = message.get("relationshipState")
        notification = Notification(agents[agent], message["type"], None,
                                    state if isinstance(state, str) else None, None,
                                    json.loads(body), agent)
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

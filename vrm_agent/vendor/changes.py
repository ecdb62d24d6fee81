"""The vendor's side of a change of address (docs/protocol.md §16).

A vendor whose agreement shares a resource follows it two ways: the pod's own Solid
Notifications (a ``WebhookChannel2023`` made with the vendor's own token on the granted
resource, ending with the agreement, and registered with the person's agent so the agent can
delete it when the agreement ends), and the agent's ``DataChangedMessage`` at its inbox. Either
way the vendor acts only by reading the resource again with its own token, never on what a
notification says; after reading a change it acknowledges the read (``DataReadMessage``,
naming the ETag it got).

Webhooks from the pod are checked as far as the pod makes possible: a DPoP-bound token its
issuer signed for the channel's sender, and a DPoP proof for this endpoint. The body is not
trusted either way: only the topic of a channel this follower made is read again.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aiohttp import web
from rdflib import URIRef

from vrm_agent.errors import PodError
from vrm_agent.negotiation.changes import NOTIFY, WEBHOOK_CHANNEL, webhook_service
from vrm_agent.negotiation.records import iso
from vrm_agent.negotiation.urls import UrlRefused, normalise
from vrm_agent.negotiation.wire import message_json
from vrm_agent.pod.client import PodClient
from vrm_agent.pod.resource_server import (
    ReplayCache,
    SolidOidcVerifier,
    TokenRejected,
    _segments,
    parse_authorization,
    verify_access_token,
    verify_dpop_proof,
)
from vrm_agent.vendor.client import JSON_LD, AgentRefused, NegotiationView, VendorAgent, VendorError
from vrm_agent.vendor.inbox import Notification

log = logging.getLogger("vrm_agent.vendor.changes")
NOTIFICATION_CONTEXT = "https://www.w3.org/ns/solid/notification/v1"
MAX_WEBHOOK_BYTES = 16 * 1024
PIM_STORAGE = URIRef("http://www.w3.org/ns/pim/space#Storage")


@dataclass(frozen=True)
class Channel:
    """A webhook channel the vendor made at the person's pod."""

    id: str
    topic: str
    sender: str | None  # the WebID the pod signs its webhooks as
    negotiation: str


@dataclass(frozen=True)
class Observed:
    """What the vendor read after hearing of a change: by which route, with what answer."""

    resource: str
    via: str  # "pod notification" or "agent message"
    status: int
    etag: str | None
    change: str | None = None  # the agent's change IRI, when its message said
    acknowledged: bool = False


async def subscribe(pod: PodClient, resource: str, send_to: str, *,
                    end_at: datetime) -> tuple[str, str | None]:
    """Make a ``WebhookChannel2023`` on ``resource`` with the vendor's own token, ending at
    ``end_at``; returns the channel's URL and the sender the pod will sign webhooks as. The
    subscription service comes from the storage description the resource's headers name."""
    head = await pod.request("HEAD", resource, expect_ok=False)
    if head.status >= 400:
        raise VendorError(f"{resource} cannot be read (HTTP {head.status}); no channel made")
    described = head.links.storage_description
    if not described:
        raise VendorError(f"the pod names no storage description for {resource}")
    graph = (await pod.get_graph(described)).graph
    storages = [str(s) for s in graph.subjects(URIRef(NOTIFY + "subscription"), None)]
    service = next((found for s in storages
                    if (found := webhook_service(graph, s)) is not None), None)
    if service is None:
        raise VendorError("the pod offers no WebhookChannel2023 subscriptions")
    body = {"@context": [NOTIFICATION_CONTEXT], "type": WEBHOOK_CHANNEL, "topic": resource,
            "sendTo": send_to, "endAt": iso(end_at)}
    answer = await pod.request("POST", service, headers={"Content-Type": JSON_LD},
                               body=json.dumps(body), expect_ok=False)
    if answer.status >= 400:
        raise VendorError(f"the pod refused the channel (HTTP {answer.status})")
    try:
        made = json.loads(answer.body)
        channel, sender = made["id"], made.get("sender")
    except (ValueError, KeyError, TypeError) as exc:
        raise VendorError("the pod's answer names no channel") from exc
    if not isinstance(channel, str) or not channel.startswith(service):
        raise VendorError("the pod's answer names no channel of its service")
    return channel, sender if isinstance(sender, str) else None


class ChangeFollower:
    """Follows the resources a vendor was granted: makes and registers channels, takes the
    pod's webhooks (an aiohttp server of its own) and the agent's messages, reads again and
    acknowledges. :meth:`wait_for` blocks until a matching :class:`Observed`."""

    def __init__(self, vendor: VendorAgent, *, host: str = "localhost", port: int = 0,
                 path: str = "/pod-notifications", public_url: str | None = None) -> None:
        self.vendor = vendor
        self.host, self.port, self.path, self.public_url = host, port, path, public_url
        self.channels: dict[str, Channel] = {}  # by topic
        self.observed: list[Observed] = []
        self.refusals: list[str] = []
        self._arrived = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self._verifier = SolidOidcVerifier(vendor.pod)
        self._replay = ReplayCache()

    @property
    def url(self) -> str:
        return self.public_url or f"http://{self.host}:{self.port}{self.path}"

    async def start(self) -> str:
        app = web.Application(client_max_size=MAX_WEBHOOK_BYTES)
        app.router.add_post(self.path, self._webhook)
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

    async def __aenter__(self) -> ChangeFollower:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    # -- calls to the agent ------------------------------------------------------------------

    async def _post(self, url: str, message: Mapping[str, Any]) -> dict[str, Any]:
        response = await self.vendor.pod.request(
            "POST", url, headers={"Content-Type": JSON_LD, "Accept": JSON_LD},
            body=json.dumps(message), expect_ok=False)
        body: Any = {}
        if response.body:
            try:
                body = json.loads(response.body)
            except ValueError:
                body = {}
        if response.status >= 400:
            raise AgentRefused(response.status, body if isinstance(body, dict) else {})
        return body if isinstance(body, dict) else {}

    async def follow(self, view: NegotiationView, resource: str) -> Channel:
        """Subscribe to ``resource`` until the agreement's end and register the channel with
        the agent, so it ends with the agreement."""
        until = max((a.until for a in view.access if resource in a.resources), default=None)
        if until is None:
            raise VendorError(f"the agreement does not grant {resource}")
        channel, sender = await subscribe(self.vendor.pod, resource, self.url, end_at=until)
        made = Channel(channel, resource, sender, view.url)
        self.channels[resource] = made
        await self.register(view.url, channel, resource)
        return made

    async def register(self, negotiation: str, channel: str, resource: str) -> dict[str, Any]:
        return await self._post(negotiation + "/channels", message_json(
            "ChannelRegistrationMessage", negotiation=negotiation, channel=[channel],
            resource=[resource]))

    async def acknowledge(self, negotiation: str, resource: str, etag: str, *,
                          change: str | None = None) -> None:
        await self._post(negotiation + "/reads", message_json(
            "DataReadMessage", negotiation=negotiation, change=change, resource=[resource],
            etag=etag))

    # -- hearing of a change -----------------------------------------------------------------

    async def on_message(self, notification: Notification) -> Observed:
        """The agent's DataChangedMessage (from the vendor's :class:`Inbox`, which checked its
        signature): read the resource again with the vendor's own token and acknowledge."""
        document = notification.document
        resources = document.get("resource")
        resource = resources[0] if isinstance(resources, list) and resources else resources
        change = document.get("change")
        if notification.type != "DataChangedMessage" or not isinstance(resource, str) \
                or notification.negotiation is None:
            raise VendorError("not a DataChangedMessage naming a resource")
        response = await self.vendor.read(resource)
        acknowledged = False
        if response.status == 200 and response.etag:
            await self.acknowledge(notification.negotiation, resource, response.etag,
                                   change=change if isinstance(change, str) else None)
            acknowledged = True
        return await self._note(Observed(resource, "agent message", response.status,
                                         response.etag, change if isinstance(change, str)
                                         else None, acknowledged))

    async def _webhook(self, request: web.Request) -> web.Response:
        body = await request.content.read(MAX_WEBHOOK_BYTES + 1)
        if len(body) > MAX_WEBHOOK_BYTES:
            return self._refuse(413, "the notification is too large")
        try:
            topic = _topic_of(json.loads(body))
        except (ValueError, TypeError, KeyError):
            return self._refuse(400, "not a Solid notification")
        channel = self.channels.get(topic)
        if channel is None:
            return self._refuse(404, "no channel of this vendor has that topic")
        try:
            await self._check_sender(request, channel)
        except TokenRejected as exc:
            return self._refuse(401, str(exc))
        # The body said only which resource: what changed is read from the pod itself.
        try:
            response = await self.vendor.read(channel.topic)
        except PodError as exc:
            return self._refuse(502, f"the resource could not be read again: {exc}")
        await self._note(Observed(channel.topic, "pod notification", response.status,
                                  response.etag))
        return web.Response(status=200)

    async def _check_sender(self, request: web.Request, channel: Channel) -> None:
        """The pod signs its webhooks with a DPoP-bound token from its own issuer for the
        channel's sender: checked like any Solid token, with the proof bound to this URL."""
        token = parse_authorization(request.headers.get("Authorization"))
        _, claims = _segments(token)
        issuer, webid = claims.get("iss"), claims.get("webid")
        if channel.sender is None or webid != channel.sender or not isinstance(issuer, str):
            raise TokenRejected("the notification is not signed as the channel's sender")
        try:
            if normalise(issuer).origin != normalise(channel.id).origin:
                raise TokenRejected("the notification's token is not from the pod's issuer")
        except UrlRefused as exc:
            raise TokenRejected("the notification's token names no usable issuer") from exc
        now = time.time()
        verified = verify_access_token(token, await self._verifier._issuer_keys(issuer),
                                       now=now)
        jkt = verify_dpop_proof(request.headers.get("DPoP"), method="POST", url=self.url,
                                access_token=token, now=now, replay=self._replay)
        if jkt != verified["cnf"]["jkt"]:
            raise TokenRejected("the notification's token is bound to another key")

    def _refuse(self, status: int, why: str) -> web.Response:
        self.refusals.append(f"{status}: {why}")
        return web.json_response({"status": status, "detail": why}, status=status,
                                 content_type="application/problem+json")

    async def _note(self, observed: Observed) -> Observed:
        async with self._arrived:
            self.observed.append(observed)
            self._arrived.notify_all()
        return observed

    async def wait_for(self, match: Callable[[Observed], bool], *,
                       timeout: float = 30.0) -> Observed:
        async def first() -> Observed:
            async with self._arrived:
                while True:
                    found = next((o for o in self.observed if match(o)), None)
                    if found is not None:
                        return found
                    await self._arrived.wait()

        return await asyncio.wait_for(first(), timeout)


def _topic_of(notification: Any) -> str:
    """The resource a Solid notification is about (its ``object``), nothing else of it."""
    if not isinstance(notification, dict):
        raise TypeError("not an object")
    found = notification["object"]
    if isinstance(found, dict):
        found = found["id"]
    if not isinstance(found, str):
        raise TypeError("no object")
    return found

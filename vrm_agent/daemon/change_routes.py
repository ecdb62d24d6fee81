"""The endpoints vendors call about changes of the person's data (docs/protocol.md §16):
registering a pod notification channel made on a granted resource, and acknowledging that they
read a changed resource. Both go through the negotiation endpoints' door (size, credentials,
turn: :func:`~vrm_agent.daemon.negotiation_routes.guarded`) and name the negotiation of the
agreement they fall under; another vendor's negotiation is unknown to the caller."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

from aiohttp import web

from vrm_agent.daemon.changes import Changes
from vrm_agent.daemon.negotiation_routes import guarded, parse
from vrm_agent.daemon.negotiations import NegotiationService
from vrm_agent.negotiation.wire import PROTOCOL_CONTEXT
from vrm_agent.pod.resource_server import AuthenticatedAgent

log = logging.getLogger("vrm_agent.daemon.changes")
CHANGES_KEY = web.AppKey("changes", Changes)


async def register_channel(request: web.Request, service: NegotiationService,
                           caller: AuthenticatedAgent) -> web.Response:
    message, _ = parse(request, "ChannelRegistrationMessage")
    record = await request.app[CHANGES_KEY].register_channel(
        request.match_info["id"], caller.webid, message)
    log.info("channel registered", extra={"negotiation": record.id, "vendor": caller.webid})
    body = {"@context": PROTOCOL_CONTEXT, "type": "ContractNegotiation", "id": record.url,
            "state": record.state.value if record.state else None,
            "channel": list(record.channels)}
    return web.Response(status=201, text=json.dumps(body), content_type="application/ld+json")


async def acknowledge(request: web.Request, service: NegotiationService,
                      caller: AuthenticatedAgent) -> web.Response:
    message, _ = parse(request, "DataReadMessage")
    change = await request.app[CHANGES_KEY].acknowledge(
        request.match_info["id"], caller.webid, message)
    log.info("read acknowledged", extra={"change": change.id, "vendor": caller.webid})
    return web.Response(status=204)


def install(service: NegotiationService) -> Callable[[web.Application], None]:
    def add_routes(app: web.Application) -> None:
        app[CHANGES_KEY] = Changes(service)
        app.router.add_post("/negotiations/{id}/channels", guarded(register_channel))
        app.router.add_post("/negotiations/{id}/reads", guarded(acknowledge))

    return add_routes

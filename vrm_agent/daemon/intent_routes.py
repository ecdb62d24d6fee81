"""The intent endpoints vendors call (docs/protocol.md §17): the intents they may see, offers to
one, and their own offer. Every call goes through the negotiation endpoints' door (size,
Solid-OIDC credentials, a turn), so a vendor is who its token says, and every refusal is a
problem document."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from aiohttp import web

from vrm_agent.daemon import negotiation_routes
from vrm_agent.daemon.intents import IntentService
from vrm_agent.daemon.negotiation_routes import Refused, problem
from vrm_agent.negotiation.intent_wire import MAX_OFFER_BYTES, listing
from vrm_agent.pod.resource_server import AuthenticatedAgent

log = logging.getLogger("vrm_agent.daemon.intents")
INTENTS_KEY = web.AppKey("intent_service", IntentService)
JSON_LD = "application/ld+json"
IntentHandler = Callable[[web.Request, IntentService, AuthenticatedAgent],
                         Awaitable[web.Response]]


def _json(document: Any, status: int = 200, headers: dict[str, str] | None = None
          ) -> web.Response:
    return web.Response(status=status, text=json.dumps(document), headers=headers,
                        content_type=JSON_LD)


async def list_intents(request: web.Request, service: IntentService,
                       caller: AuthenticatedAgent) -> web.Response:
    return _json(listing(service.listing_url(), await service.visible_to(caller.webid)))


async def make_offer(request: web.Request, service: IntentService,
                     caller: AuthenticatedAgent) -> web.Response:
    body: bytes = request["body"]
    if len(body) > MAX_OFFER_BYTES:
        raise Refused(problem(413, "too-large", "Offer too large",
                              f"an offer is at most {MAX_OFFER_BYTES} bytes"))
    offer, view = await service.receive_offer(request.match_info["id"], caller.webid, body)
    log.info("offer received", extra={"intent": offer.intent_id, "offer": offer.id,
                                      "vendor": caller.webid})
    return _json(view, status=201, headers={"Location": view["id"]})


async def own_offer(request: web.Request, service: IntentService,
                    caller: AuthenticatedAgent) -> web.Response:
    return _json(await service.own_offer(request.match_info["id"], request.match_info["offer"],
                                         caller.webid))


def guarded(handler: IntentHandler, *, reads_body: bool = False) -> Callable[
        [web.Request], Awaitable[web.Response]]:
    return negotiation_routes.guarded(
        handler, reads_body=reads_body, service_key=INTENTS_KEY,  # type: ignore[arg-type]
        doing="answering about an intent")


def install(negotiations: Any) -> Callable[[web.Application], None]:
    """Routes for the intent service that shares the negotiation service's pod and key."""
    service = IntentService.beside(negotiations)

    async def close_ended(app: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(service.keep_closing_ended())
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    def add_routes(app: web.Application) -> None:
        app[INTENTS_KEY] = service
        app.cleanup_ctx.append(close_ended)
        app.middlewares.append(negotiation_routes.routing_problems_under("/intents"))
        app.router.add_get("/intents", guarded(list_intents))
        app.router.add_post("/intents/{id}/offers", guarded(make_offer, reads_body=True))
        app.router.add_get("/intents/{id}/offers/{offer}", guarded(own_offer))

    return add_routes

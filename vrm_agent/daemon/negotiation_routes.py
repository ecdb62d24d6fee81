"""The negotiation endpoints vendors call (docs/protocol.md is their normative description).

Every request is checked in the same order: size, then the caller's Solid-OIDC credentials, then
the message. Each failure is a 4xx ``application/problem+json`` answer (RFC 9457) that says what is
wrong, and nothing is written before all three checks pass.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Middleware

from vrm_agent.daemon.context import AgentContext, context_of
from vrm_agent.daemon.negotiations import NegotiationError, NegotiationService
from vrm_agent.errors import PodError
from vrm_agent.negotiation.quota import NegotiationQuota
from vrm_agent.negotiation.records import NegotiationRecord
from vrm_agent.negotiation.wire import (
    MAX_MESSAGE_BYTES,
    MalformedMessage,
    Message,
    load_message_json,
    parse_message,
)
from vrm_agent.pod.resource_server import ALGORITHMS, AuthenticatedAgent, TokenRejected

log = logging.getLogger("vrm_agent.daemon.negotiations")
PROBLEM_TYPES = "https://w3id.org/vrm-agent/problems/"
SERVICE_KEY = web.AppKey("negotiation_service", NegotiationService)
TURNS_KEY = web.AppKey("negotiation_turns", asyncio.Semaphore)
QUOTA_KEY = web.AppKey("negotiation_quota", NegotiationQuota)
# Messages handled at once; the others wait their turn. A message in hand keeps its documents
# and graphs until its pod writes are done, and Python keeps the memory of the busiest moment
# (its small-object arenas go back only when empty): sixteen vendors at once left the agent some
# 6 MB larger for the rest of its run than three at a time. The price is throughput under such a
# crowd (docs/performance.md measures it for 2, 3, 4, 8 and unbounded).
MESSAGES_AT_ONCE = 3


def problem(status: int, slug: str, title: str, detail: str,
            headers: dict[str, str] | None = None) -> web.Response:
    body = {"type": PROBLEM_TYPES + slug, "title": title, "status": status, "detail": detail}
    return web.Response(status=status, text=json.dumps(body), headers=headers,
                        content_type="application/problem+json")


class Refused(Exception):
    """Carries the problem response out of the checks."""

    def __init__(self, response: web.Response) -> None:
        super().__init__(response.reason)
        self.response = response


def public_url_of(ctx: AgentContext, request: web.Request) -> str:
    """The URL the vendor signed its DPoP proof for: the agent's public URL plus the path."""
    return ctx.public_url.rstrip("/") + request.rel_url.path


async def authenticate(request: web.Request) -> AuthenticatedAgent:
    ctx = context_of(request)
    try:
        return await ctx.verifier.verify(
            method=request.method, url=public_url_of(ctx, request),
            authorization=request.headers.get("Authorization"),
            dpop=request.headers.get("DPoP"))
    except TokenRejected as exc:
        raise Refused(problem(
            401, "unauthenticated", "Authentication failed",
            f"{exc}. Send a Solid-OIDC access token (Authorization: DPoP <token>) with a DPoP "
            "proof for this method and URL.",
            headers={"WWW-Authenticate": f'DPoP algs="{" ".join(ALGORITHMS)}"'})) from exc


async def read_body(request: web.Request) -> bytes:
    too_large = Refused(problem(413, "too-large", "Message too large",
                                f"messages are at most {MAX_MESSAGE_BYTES} bytes"))
    if request.content_length is not None and request.content_length > MAX_MESSAGE_BYTES:
        raise too_large
    body = bytearray()
    # read(n) returns what has arrived, not n bytes: read until the end or one byte too many.
    while len(body) <= MAX_MESSAGE_BYTES:
        chunk = await request.content.read(MAX_MESSAGE_BYTES + 1 - len(body))
        if not chunk:
            break
        body += chunk
    if len(body) > MAX_MESSAGE_BYTES:
        raise too_large
    return bytes(body)


def parse(request: web.Request, expected: str) -> tuple[Message, dict[str, Any]]:
    """The body as a message of the expected type, about the negotiation the path names."""
    body: bytes = request["body"]
    try:
        message = parse_message(body)
    except MalformedMessage as exc:
        raise Refused(problem(400, "malformed-message", "Malformed message", str(exc))) from exc
    if message.type != expected:
        raise Refused(problem(400, "wrong-message-type", "Wrong message type",
                              f"this endpoint takes a {expected}, not a {message.type}"))
    negotiation_id = request.match_info.get("id")
    if negotiation_id is None and message.negotiation is not None:
        raise Refused(problem(400, "wrong-negotiation", "Wrong negotiation",
                              "a new request names no negotiation; answer an offer at "
                              "<negotiation>/request"))
    if negotiation_id is not None:
        url = request.app[SERVICE_KEY].negotiation_url(negotiation_id)
        if message.negotiation != url:
            raise Refused(problem(400, "wrong-negotiation", "Wrong negotiation",
                                  f"the message must name the negotiation it is sent to "
                                  f"({url}) as 'negotiation'"))
    return message, load_message_json(body)


def answer(record: NegotiationRecord, *, created: bool = False,
           polled: bool = False) -> web.Response:
    """The negotiation's document. A message the person must decide on is answered 202; a
    status poll is always 200 (docs/protocol.md §7.2), the document's ``status`` says more."""
    waiting = record.negotiation.awaiting_person and not polled
    status = 202 if waiting else 201 if created else 200
    headers = {"Location": record.url} if created or waiting else None
    return web.Response(status=status, text=json.dumps(record.view()), headers=headers,
                        content_type="application/ld+json")


Handler = Callable[[web.Request, NegotiationService, AuthenticatedAgent], Awaitable[web.Response]]


def guarded(handler: Handler, *, reads_body: bool = True,
            service_key: web.AppKey[NegotiationService] = SERVICE_KEY,
            doing: str = "negotiating") -> Callable[[web.Request], Awaitable[web.Response]]:
    """Size, then credentials, then a turn, then the handler; every refusal a problem
    document. The LWS face goes through the same door, and shares the turns."""
    async def run(request: web.Request) -> web.Response:
        service = request.app[service_key]
        try:
            if reads_body:
                request["body"] = await read_body(request)
            caller = await authenticate(request)
            # The body and the caller are in hand before a turn is taken, so a slow sender
            # never holds one.
            async with request.app[TURNS_KEY]:
                return await handler(request, service, caller)
        except Refused as refused:
            return refused.response
        except NegotiationError as exc:
            return problem(exc.status, exc.slug, exc.title, str(exc))
        except PodError as exc:
            log.error(f"pod error while {doing}", extra={"problem": str(exc)})
            # The pod's own answer stays in the log: it is the person's, not the vendor's.
            return problem(503, "pod-unavailable", "The person's pod is unavailable",
                           "the agent could not read or write the person's pod; try again "
                           "later", headers={"Retry-After": "30"})

    return run


def take_quota(request: web.Request, caller: AuthenticatedAgent) -> None:
    """Count one new negotiation (or LWS access request) against the caller's quota, or refuse
    it with 429. Called once the message is known to be one: a malformed one writes nothing."""
    wait = request.app[QUOTA_KEY].take(caller.webid, time.monotonic())
    if wait:
        seconds = max(1, math.ceil(wait))
        log.warning("vendor over its quota of new negotiations", extra={"vendor": caller.webid})
        raise Refused(problem(
            429, "too-many-requests", "Too many new negotiations",
            f"you have opened as many negotiations as this person's agent takes for now; try "
            f"again in {seconds} s, or go on with one you have open", headers={
                "Retry-After": str(seconds)}))


async def start(request: web.Request, service: NegotiationService,
                caller: AuthenticatedAgent) -> web.Response:
    message, _ = parse(request, "ContractRequestMessage")
    take_quota(request, caller)
    record = await service.request(caller.webid, message)
    log.info("request answered", extra={"negotiation": record.id, "vendor": caller.webid,
                                        "state": str(record.state)})
    return answer(record, created=True)


async def status(request: web.Request, service: NegotiationService,
                 caller: AuthenticatedAgent) -> web.Response:
    record = await service.owned(request.match_info["id"], caller.webid)
    return answer(record, polled=True)


async def counter(request: web.Request, service: NegotiationService,
                  caller: AuthenticatedAgent) -> web.Response:
    message, _ = parse(request, "ContractRequestMessage")
    return answer(await service.counter_request(request.match_info["id"], caller.webid, message))


async def event(request: web.Request, service: NegotiationService,
                caller: AuthenticatedAgent) -> web.Response:
    message, _ = parse(request, "ContractNegotiationEventMessage")
    what = (message.document or {}).get("event")
    if what != "ACCEPTED":
        raise Refused(problem(400, "unknown-event", "Unknown event",
                              f"a vendor sends the event ACCEPTED, not {what!r}"))
    return answer(await service.accept(request.match_info["id"], caller.webid))


async def verification(request: web.Request, service: NegotiationService,
                       caller: AuthenticatedAgent) -> web.Response:
    _, raw = parse(request, "ContractAgreementVerificationMessage")
    agreement = raw.get("agreement")
    if not isinstance(agreement, dict):
        raise Refused(problem(400, "malformed-message", "Malformed message",
                              "a ContractAgreementVerificationMessage carries the countersigned "
                              "agreement document as 'agreement'"))
    return answer(await service.verify(request.match_info["id"], caller.webid, agreement))


async def termination(request: web.Request, service: NegotiationService,
                      caller: AuthenticatedAgent) -> web.Response:
    message, _ = parse(request, "ContractNegotiationTerminationMessage")
    record = await service.vendor_terminates(request.match_info["id"], caller.webid,
                                             "; ".join(message.reasons) or None)
    return answer(record)


def routing_problems_under(prefix: str) -> Middleware:
    """A middleware that makes a wrong method or path under ``prefix`` a problem document too,
    like every other refusal vendors get (each face of the agent installs one for its paths)."""

    @web.middleware
    async def routing_problems(request: web.Request, handler: Callable[
            [web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
        try:
            return await handler(request)
        except web.HTTPException as exc:
            if exc.status < 400 or not request.path.startswith(prefix):
                raise
            allowed = exc.headers.get("Allow")
            detail = (f"{request.method} is not allowed here (allowed: {allowed})" if allowed
                      else f"there is nothing at {request.path}")
            return problem(exc.status, "no-such-endpoint", exc.reason, detail,
                           headers={"Allow": allowed} if allowed else None)

    return routing_problems


def install(service: NegotiationService, quota: NegotiationQuota | None = None
            ) -> Callable[[web.Application], None]:
    def add_routes(app: web.Application) -> None:
        app[SERVICE_KEY] = service
        app[TURNS_KEY] = asyncio.Semaphore(MESSAGES_AT_ONCE)
        app[QUOTA_KEY] = quota or NegotiationQuota()
        app.middlewares.append(routing_problems_under("/negotiations"))
        app.router.add_post("/negotiations", guarded(start))
        app.router.add_get("/negotiations/{id}", guarded(status, reads_body=False))
        app.router.add_post("/negotiations/{id}/request", guarded(counter))
        app.router.add_post("/negotiations/{id}/events", guarded(event))
        app.router.add_post("/negotiations/{id}/agreement/verification", guarded(verification))
        app.router.add_post("/negotiations/{id}/termination", guarded(termination))

    return add_routes

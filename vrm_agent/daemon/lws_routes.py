"""The agent's second face: W3C Linked Web Storage access requests and grants over HTTP.

An ``AccessRequestService`` at ``/lws/requests/`` and an ``AccessGrantService`` at
``/lws/grants/`` (docs/lws-access-requests.md). Callers authenticate as vendors do (Solid-OIDC,
DPoP) and see only their own requests and grants. Each request becomes a negotiation of the
same :class:`NegotiationService`, so the person's terms decide it, ``vrm-agent requests`` shows
it when they leave it to the person, and its grant is an agreement's grant on the pod.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from vrm_agent.daemon import negotiation_routes
from vrm_agent.daemon.context import context_of
from vrm_agent.daemon.negotiation_routes import Handler, Refused, problem
from vrm_agent.daemon.negotiations import (
    IN_FORCE,
    NegotiationService,
    UnknownNegotiation,
)
from vrm_agent.linkeddata.limits import MESSAGE, InputRefused, load_json
from vrm_agent.negotiation import lws
from vrm_agent.negotiation.protocol import State
from vrm_agent.negotiation.quota import NegotiationQuota
from vrm_agent.negotiation.records import NegotiationRecord
from vrm_agent.negotiation.wire import Message
from vrm_agent.pod.resource_server import AuthenticatedAgent

log = logging.getLogger("vrm_agent.daemon.lws")
LWS_SERVICE_KEY = web.AppKey("lws_negotiation_service", NegotiationService)
BODY_TYPES = (lws.MEDIA_TYPE, "application/ld+json", "application/json")
_REQUESTS = "/" + lws.REQUESTS_PATH
_GRANTS = "/" + lws.GRANTS_PATH


def _json(document: Any, status: int = 200, headers: dict[str, str] | None = None
          ) -> web.Response:
    return web.Response(status=status, text=json.dumps(document), headers=headers,
                        content_type=lws.MEDIA_TYPE)


def _not_found(what: str, some_id: str) -> Refused:
    return Refused(problem(404, f"unknown-access-{what}", f"Unknown access {what}",
                           f"no access {what} {some_id[:40]!r} of yours"))


# -- what a kept negotiation says in LWS terms ---------------------------------------------------


def _request_of(service: NegotiationService, record: NegotiationRecord) -> lws.AccessRequest:
    assert record.lws is not None
    try:
        return lws.from_stored(record.lws, storage=service.layout.storage)
    except lws.AccessRequestRefused as exc:  # someone changed the pod copy: never trusted
        log.warning("kept access request unreadable", extra={"negotiation": record.id,
                                                            "problem": str(exc)[:200]})
        raise UnknownNegotiation(f"no readable access request {record.id}") from None


def _in_force(service: NegotiationService, record: NegotiationRecord) -> bool:
    until = record.until
    return record.state in IN_FORCE and until is not None and until > service.clock()


def _status(service: NegotiationService, record: NegotiationRecord) -> str:
    if record.negotiation.awaiting_person and record.state is State.REQUESTED:
        return "pending"
    if record.state in IN_FORCE:
        return "granted" if _in_force(service, record) else "expired"
    if record.state is State.TERMINATED:
        return lws.STATUS_OF_END.get(record.ended or "", "ended")
    return "pending"


def request_answer(service: NegotiationService, record: NegotiationRecord) -> dict[str, Any]:
    granted = _in_force(service, record)
    return lws.request_answer(
        _request_of(service, record), url=lws.request_url(service.agent_url, record.id),
        status=_status(service, record), reasons=record.reasons,
        grant_url=lws.grant_url(service.agent_url, record.id) if granted else None)


def grant_answer(service: NegotiationService, record: NegotiationRecord) -> dict[str, Any]:
    return lws.grant_document(
        _request_of(service, record),
        [lws.Granted(a.resources, a.until) for a in record.access],
        url=lws.grant_url(service.agent_url, record.id),
        request_url=lws.request_url(service.agent_url, record.id))


async def _own(service: NegotiationService, some_id: str, caller: AuthenticatedAgent,
               what: str) -> NegotiationRecord:
    """The caller's own LWS request with this id; 404 for anything else, another's included."""
    try:
        record = await service.owned(some_id, caller.webid)
    except UnknownNegotiation:
        raise _not_found(what, some_id) from None
    if record.lws is None:
        raise _not_found(what, some_id)
    return record


async def _own_all(service: NegotiationService, caller: AuthenticatedAgent
                   ) -> list[NegotiationRecord]:
    return [r for r in await service.records()
            if r.vendor == caller.webid and r.lws is not None]


# -- the handlers --------------------------------------------------------------------------------


def _body_type(request: web.Request) -> None:
    declared = request.content_type.lower()
    if declared not in BODY_TYPES:
        raise Refused(problem(415, "unsupported-media-type", "Unsupported media type",
                              f"send the access request as {lws.MEDIA_TYPE}"))


async def create_request(request: web.Request, service: NegotiationService,
                         caller: AuthenticatedAgent) -> web.Response:
    _body_type(request)
    now = service.clock()
    try:
        data = load_json(request["body"], MESSAGE)
        asked = lws.read_access_request(data, caller=caller.webid, client_id=caller.client_id,
                                        storage=service.layout.storage, now=now)
    except lws.AccessRequestRefused as exc:
        raise Refused(problem(400, exc.slug, "The access request is refused", str(exc))) \
            from None
    except InputRefused as exc:
        raise Refused(problem(400, "malformed-access-request", "The access request is refused",
                              str(exc))) from None
    policy = lws.internal_request(asked, uid=f"urn:uuid:{uuid.uuid4()}", now=now)
    negotiation_routes.take_quota(request, caller)  # one quota for both doors
    record = await service.request(
        caller.webid, Message("ContractRequestMessage", policy=policy, callback=asked.inbox),
        lws=lws.stored_form(asked), not_after=asked.not_after)
    log.info("access request answered", extra={"negotiation": record.id, "caller": caller.webid,
                                               "state": str(record.state)})
    if record.callback and not record.negotiation.awaiting_person:
        # The draft asks for a notification when a grant is made, even one made at once.
        kind = "ContractAgreementMessage" if record.state in IN_FORCE else \
            "ContractNegotiationTerminationMessage"
        service.notifier.send(record.callback, lws.lws_notice(
            record, kind, record.ended, agent_url=service.agent_url,
            storage=service.layout.storage, owner=service.owner, now=service.clock()))
    url = lws.request_url(service.agent_url, record.id)
    return _json(request_answer(service, record), status=201, headers={"Location": url})


async def list_requests(request: web.Request, service: NegotiationService,
                        caller: AuthenticatedAgent) -> web.Response:
    records = await _own_all(service, caller)
    return _json(lws.container_document(
        service.agent_url.rstrip("/") + _REQUESTS,
        [(lws.request_url(service.agent_url, r.id), "AccessRequest") for r in records]))


async def get_request(request: web.Request, service: NegotiationService,
                      caller: AuthenticatedAgent) -> web.Response:
    record = await _own(service, request.match_info["id"], caller, "request")
    return _json(request_answer(service, record))


async def cancel_request(request: web.Request, service: NegotiationService,
                         caller: AuthenticatedAgent) -> web.Response:
    record = await _own(service, request.match_info["id"], caller, "request")
    status = _status(service, record)
    if status != "pending":
        detail = (f"the request was granted; DELETE its grant "
                  f"{lws.grant_url(service.agent_url, record.id)} to give it up"
                  if status == "granted" else f"the request has already ended ({status})")
        raise Refused(problem(409, "not-allowed-in-state", "Not allowed in this state", detail))
    await service.vendor_terminates(record.id, caller.webid, "the client withdrew the request")
    return web.Response(status=204)


async def create_grant(request: web.Request, service: NegotiationService,
                       caller: AuthenticatedAgent) -> web.Response:
    raise Refused(problem(
        403, "not-storage-controller", "Only the person grants access",
        "grants here are made by the person's terms or by the person; ask for access with a "
        f"POST to {service.agent_url.rstrip('/')}{_REQUESTS}"))


async def list_grants(request: web.Request, service: NegotiationService,
                      caller: AuthenticatedAgent) -> web.Response:
    records = [r for r in await _own_all(service, caller) if _in_force(service, r)]
    return _json(lws.container_document(
        service.agent_url.rstrip("/") + _GRANTS,
        [(lws.grant_url(service.agent_url, r.id), "AccessGrant") for r in records]))


async def get_grant(request: web.Request, service: NegotiationService,
                    caller: AuthenticatedAgent) -> web.Response:
    record = await _own(service, request.match_info["id"], caller, "grant")
    if not _in_force(service, record):
        raise _not_found("grant", record.id)
    return _json(grant_answer(service, record))


async def revoke_grant(request: web.Request, service: NegotiationService,
                       caller: AuthenticatedAgent) -> web.Response:
    record = await _own(service, request.match_info["id"], caller, "grant")
    if not _in_force(service, record):
        raise _not_found("grant", record.id)
    await service.vendor_terminates(record.id, caller.webid, "the client gave up the grant")
    return web.Response(status=204)


# -- wiring --------------------------------------------------------------------------------------


def guarded(handler: Handler, *, reads_body: bool = False) -> Callable[
        [web.Request], Awaitable[web.Response]]:
    """The negotiation endpoints' door (size, credentials, a turn), with the LWS service."""
    return negotiation_routes.guarded(handler, reads_body=reads_body,
                                      service_key=LWS_SERVICE_KEY,
                                      doing="answering an access request")


async def context(request: web.Request) -> web.Response:
    return web.json_response(lws.context_document(), content_type="application/ld+json",
                             headers={"Cache-Control": "max-age=86400"})


async def description(request: web.Request) -> web.Response:
    ctx = context_of(request)
    return _json(lws.description_document(ctx.public_url, ctx.storage))


def install(service: NegotiationService) -> Callable[[web.Application], None]:
    def add_routes(app: web.Application) -> None:
        app[LWS_SERVICE_KEY] = service
        if negotiation_routes.QUOTA_KEY not in app:  # served without the negotiation routes
            app[negotiation_routes.QUOTA_KEY] = NegotiationQuota()
        app.middlewares.append(negotiation_routes.routing_problems_under("/lws/"))
        app.router.add_get("/" + lws.CONTEXT_PATH, context)
        app.router.add_get("/" + lws.DESCRIPTION_PATH, description)
        app.router.add_post(_REQUESTS, guarded(create_request, reads_body=True))
        app.router.add_get(_REQUESTS, guarded(list_requests))
        app.router.add_get(_REQUESTS + "{id}", guarded(get_request))
        app.router.add_delete(_REQUESTS + "{id}", guarded(cancel_request))
        app.router.add_post(_GRANTS, guarded(create_grant, reads_body=True))
        app.router.add_get(_GRANTS, guarded(list_grants))
        app.router.add_get(_GRANTS + "{id}", guarded(get_grant))
        app.router.add_delete(_GRANTS + "{id}", guarded(revoke_grant))

    return add_routes

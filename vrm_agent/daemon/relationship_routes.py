"""The r-button endpoint vendors call (docs/protocol.md §18): ``/relationship``.

``GET`` answers the person's relationship state with the calling vendor, only when the person has
switched the signal on for that vendor (``vrm-agent vendors set V --signal on``); otherwise, and
for a vendor the ledger does not know or a relationship record that cannot be read, the same
403, so a vendor learns nothing without consent, not even whether a relationship exists.
``POST`` takes the vendor's own state: only its own relationship, only a known state, a few
kilobytes at most, and never over a record that cannot be read (409). Both go through the
negotiation endpoints' door (size, credentials, a turn), so they authenticate as negotiations do.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime

from aiohttp import web

from vrm_agent.daemon.negotiation_routes import Refused, guarded, problem
from vrm_agent.daemon.negotiations import NegotiationService
from vrm_agent.daemon.signals import person_state
from vrm_agent.ledger.audit import AuditEvent
from vrm_agent.ledger.records import Relationship, Vendor
from vrm_agent.ledger.store import RecordBusy, RecordNotFound, broken_member
from vrm_agent.negotiation.signals import (
    MAX_SIGNAL_BYTES,
    NotYours,
    vendor_state_from,
    vendor_state_message,
)
from vrm_agent.negotiation.wire import MalformedMessage
from vrm_agent.pod.resource_server import AuthenticatedAgent

log = logging.getLogger("vrm_agent.daemon.relationship")
PATH = "/relationship"
JSON_LD = "application/ld+json"
# States a vendor says that light its half of the r-button.
_SIGNALLING = ("prospect", "customer", "member")


def _no_consent() -> Refused:
    return Refused(problem(
        403, "no-consent", "The person shares no relationship signal with you",
        "the person has not switched the relationship signal on for you; it is theirs to "
        "give (there is nothing to retry)"))


class Unreadable(Exception):
    """The person's record of this relationship is not one (another app wrote it)."""


async def _relationship(service: NegotiationService, vendor_id: str) -> Relationship | None:
    try:
        return await service.ledger.get(Relationship, vendor_id)
    except RecordNotFound:
        return None
    except Exception as exc:
        if not broken_member(exc):
            raise
        log.warning("relationship record unreadable", extra={"vendor": vendor_id,
                                                             "problem": str(exc)[:200]})
        raise Unreadable from None


async def _vendor_and_relationship(
        service: NegotiationService, webid: str) -> tuple[Vendor, Relationship | None]:
    vendor_id = await service.vendor_id(webid)
    if vendor_id is None:
        raise _no_consent()
    try:
        vendor = await service.ledger.get(Vendor, vendor_id)
        relationship = await _relationship(service, vendor_id)
    except Exception as exc:
        # Consent that cannot be read (a record gone, or not one) is not given.
        if isinstance(exc, Unreadable | RecordNotFound) or broken_member(exc):
            raise _no_consent() from None
        raise
    return vendor, relationship


async def read_state(request: web.Request, service: NegotiationService,
                     caller: AuthenticatedAgent) -> web.Response:
    vendor, relationship = await _vendor_and_relationship(service, caller.webid)
    if relationship is None or relationship.person_signal is not True:
        raise _no_consent()
    return web.Response(text=json.dumps(person_state(service, vendor, relationship)),
                        content_type=JSON_LD)


async def take_state(request: web.Request, service: NegotiationService,
                     caller: AuthenticatedAgent) -> web.Response:
    body: bytes = request["body"]
    if len(body) > MAX_SIGNAL_BYTES:
        raise Refused(problem(413, "too-large", "Message too large",
                              f"a relationship state message is at most {MAX_SIGNAL_BYTES} "
                              "bytes"))
    try:
        state = vendor_state_from(body, caller.webid)
    except NotYours as exc:
        raise Refused(problem(403, "not-your-relationship", "Not your relationship",
                              str(exc))) from None
    except MalformedMessage as exc:
        raise Refused(problem(400, "malformed-message", "Malformed message", str(exc))) from None
    vendor_id = await service.vendor_id(caller.webid)
    if vendor_id is None:
        raise Refused(problem(
            403, "unknown-vendor", "No relationship with you",
            "the person's ledger has no relationship with you; negotiate first "
            "(docs/protocol.md §5)"))
    now = datetime.now(UTC)

    def with_vendor_state(found: Relationship | None) -> Relationship:
        relationship = found or Relationship(vendor_id, "prospect", since=now.date(),
                                             initiated_by=caller.webid)
        return replace(relationship, vendor_state=state, vendor_state_at=now,
                       vendor_signal=state in _SIGNALLING)

    try:
        # Conditional on the record as read: the person's side, changed meanwhile (a signal
        # turned off, say), is never written back over.
        await service.ledger.change(Relationship, vendor_id, with_vendor_state)
    except RecordBusy:
        raise Refused(problem(
            409, "relationship-busy", "The person's record of your relationship is changing",
            "nothing was changed; try again shortly")) from None
    except Exception as exc:
        if not broken_member(exc):
            raise
        log.warning("relationship record unreadable", extra={"vendor": vendor_id,
                                                             "problem": str(exc)[:200]})
        # Writing over it would lose what the person's record says; the person mends it first.
        raise Refused(problem(
            409, "relationship-unreadable",
            "The person's record of your relationship is unreadable",
            "nothing was changed; the person's agent has logged it for them to mend (try again "
            "later)")) from None
    service.audit.add(AuditEvent(
        "RelationshipChanged", now, actor=caller.webid,
        vendor=service.layout.vendor_iri(vendor_id),
        resources=[service.ledger.url_of(Relationship, vendor_id)],
        description=f"the vendor says its relationship state is {state}"))
    log.info("vendor relationship state", extra={"vendor": caller.webid, "state": state})
    return web.Response(text=json.dumps({
        **vendor_state_message(vendor=caller.webid, state=state, changed_at=now)}),
        content_type=JSON_LD)


def install(service: NegotiationService) -> Callable[[web.Application], None]:
    def add_routes(app: web.Application) -> None:
        # The negotiation routes installed the service and the turns this door uses.
        app.router.add_get(PATH, guarded(read_state, reads_body=False,
                                         doing="reading the relationship"))
        app.router.add_post(PATH, guarded(take_state, doing="taking a relationship state"))

    return add_routes

"""Change of address: the I/O half (docs/protocol.md §16; the rules are in
:mod:`vrm_agent.negotiation.changes`).

``announce`` runs in the command that changed the resource (``vrm-agent contact set``): it
finds the agreements in force that cover the resource, tells each vendor with a callback, and
keeps a change record (``vrm/changes/<id>``) of who was told how. The daemon takes the vendors'
channel registrations and read acknowledgements, and deletes a vendor's channels at the pod
when its agreement ends, so the pod stops notifying it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from datetime import datetime
from typing import TYPE_CHECKING

from rdflib import Graph

from vrm_agent.daemon.negotiations import (
    IN_FORCE,
    NegotiationError,
    NegotiationService,
    StepNotAllowed,
    UnknownNegotiation,
)
from vrm_agent.errors import Conflict, NotFound, PodError, VrmAgentError
from vrm_agent.ledger.audit import AuditEvent
from vrm_agent.negotiation.changes import (
    CHANGE_ID,
    DELIVERED,
    FAILED,
    MAX_CHANNELS_PER_AGREEMENT,
    NO_CALLBACK,
    ChangeRecord,
    ChangeRefused,
    Notice,
    acknowledgement_of,
    change_id_of,
    changed_message,
    check_channel,
    covers,
    read_patch,
    registration_of,
    webhook_service,
)
from vrm_agent.negotiation.records import NegotiationRecord
from vrm_agent.negotiation.wire import Message
from vrm_agent.vocabulary.compiled import validate_graph

if TYPE_CHECKING:
    from vrm_agent.ledger.records import ContactUnit

log = logging.getLogger("vrm_agent.daemon.changes")
WRITE_ATTEMPTS = 4  # one vendor's acknowledgements of one change may race each other
LOOK_BACK = 50  # change records read to find the latest one of a resource a vendor was told of


class BadChangeMessage(NegotiationError):
    status = 400
    slug = "bad-change-message"
    title = "The change message is not acceptable"


class UnknownChange(NegotiationError):
    status = 404
    slug = "unknown-change"
    title = "Unknown change"


class TooManyChannels(NegotiationError):
    status = 409
    slug = "too-many-channels"
    title = "Too many channels"


def new_change_id(now: datetime) -> str:
    """A UUID version 7 as 32 hex digits: milliseconds first, so ids sort by time and the
    newest change of a resource is found without reading them all."""
    random = int.from_bytes(os.urandom(10))
    value = (int(now.timestamp() * 1000) & (1 << 48) - 1) << 80 | 0x7 << 76 \
        | (random >> 68 & 0xFFF) << 64 | 0b10 << 62 | random & (1 << 62) - 1
    return f"{value:032x}"


class Changes:
    """Change records and channels, on a :class:`NegotiationService` (its pod, locks and
    negotiation records)."""

    def __init__(self, service: NegotiationService) -> None:
        self.service = service
        self.pod = service.pod
        self.layout = service.layout
        self._webhooks: tuple[str, float] | None = None  # the service URL, and until when

    def record_url(self, change_id: str) -> str:
        return self.layout.resource("changes", change_id)

    # -- the pod's notification service ------------------------------------------------------

    async def webhook_service(self) -> str:
        """The person's storage's WebhookChannel2023 subscription service, from its storage
        description (kept for five minutes)."""
        if self._webhooks is not None and self._webhooks[1] > time.monotonic():
            return self._webhooks[0]
        description = self.layout.storage + ".well-known/solid"
        graph = (await self.pod.get_graph(description)).graph
        found = webhook_service(graph, self.layout.storage)
        if found is None:
            raise StepNotAllowed("the person's pod offers no webhook notifications "
                                 "(its storage description lists no WebhookChannel2023)")
        self._webhooks = (found, time.monotonic() + 300)
        return found

    async def close_channels(self, record: NegotiationRecord) -> list[str]:
        """Delete the vendor's channels at the pod (an agreement that ends); each URL is
        checked again first, so nothing but a channel of the pod's own service is deleted.
        Returns those the pod no longer has."""
        if not record.channels:
            return []
        try:
            service = await self.webhook_service()
        except (PodError, NegotiationError) as exc:
            log.error("notification channels not deleted", extra={
                "negotiation": record.id, "problem": str(exc)})
            return []
        closed = []
        for channel in record.channels:
            try:
                url = check_channel(channel, service=service)
                await self.pod.delete(url)
                closed.append(url)
            except ChangeRefused as exc:
                log.error("a kept channel is not the pod's; left alone",
                          extra={"negotiation": record.id, "problem": str(exc)})
            except NotFound:
                closed.append(channel)  # the pod ended it already (its endAt passed)
            except PodError as exc:
                log.error("notification channel not deleted", extra={
                    "negotiation": record.id, "channel": channel, "problem": str(exc)})
        return closed

    # -- the vendor's messages ---------------------------------------------------------------

    async def register_channel(self, negotiation_id: str, vendor: str,
                               message: Message) -> NegotiationRecord:
        try:
            registration = registration_of(message)
        except ChangeRefused as exc:
            raise BadChangeMessage(str(exc)) from None
        service = self.service
        async with service._lock(negotiation_id):
            record = await service.owned(negotiation_id, vendor)
            now = service.clock()
            if record.state not in IN_FORCE or not covers(record.access, registration.resource,
                                                           now):
                raise StepNotAllowed(f"no agreement in force here covers "
                                     f"{registration.resource[:200]}; nothing was registered")
            try:
                channel = check_channel(registration.channel,
                                        service=await self.webhook_service())
            except ChangeRefused as exc:
                raise BadChangeMessage(str(exc)) from None
            if channel in record.channels:
                return record
            if len(record.channels) >= MAX_CHANNELS_PER_AGREEMENT:
                raise TooManyChannels(f"an agreement keeps at most "
                                      f"{MAX_CHANNELS_PER_AGREEMENT} channels")
            return await service._store(record.with_changes(
                now, channels=(*record.channels, channel)))

    async def acknowledge(self, negotiation_id: str, vendor: str,
                          message: Message) -> ChangeRecord:
        try:
            ack = acknowledgement_of(message)
            change_id = change_id_of(ack.change) if ack.change else None
        except ChangeRefused as exc:
            raise BadChangeMessage(str(exc)) from None
        record = await self.service.owned(negotiation_id, vendor)
        now = self.service.clock()
        if record.state not in IN_FORCE or not covers(record.access, ack.resource, now):
            raise StepNotAllowed(f"no agreement in force here covers {ack.resource[:200]}; "
                                 "nothing was recorded")
        for _ in range(WRITE_ATTEMPTS):
            try:
                change, graph = await (self._load(change_id) if change_id else
                                       self._latest_told(ack.resource, record.url))
            except UnknownChange:
                if not ack.change:
                    raise
                # Named as the vendor named it, so that it can match the refusal to its message.
                raise UnknownChange(f"no change {ack.change[:200]} was announced under this "
                                    "agreement") from None
            if change.notice_for(record.url) is None or change.resource != ack.resource:
                # Another vendor's change, or another resource's: nothing is said of it.
                raise UnknownChange(f"no change {ack.change[:200] + ' ' if ack.change else ''}"
                                    f"of {ack.resource[:200]} was "
                                    "announced under this agreement")
            updated = change.acknowledged(record.url, ack.etag, now)
            url = self.record_url(change.id)
            validate_graph(updated.to_graph(url))  # what the pod holds after the patch
            try:
                # Only this vendor's notice changes: one patch, applied by the pod as a whole,
                # so vendors acknowledging at once never overwrite one another.
                await self.pod.patch(url, **read_patch(graph, record.url, ack.etag, now))
            except Conflict:
                continue  # the same vendor's other acknowledgement landed first: read again
            # Kept in the change record, not the audit log: a read is not an event of the
            # person's data, and the pod cannot confirm it.
            return updated
        raise StepNotAllowed("the change record is busy; try again")

    async def _load(self, change_id: str) -> tuple[ChangeRecord, Graph]:
        url = self.record_url(change_id)
        try:
            found = await self.pod.get_graph(url)
        except NotFound:
            raise UnknownChange(f"no change urn:uuid:{change_id}") from None
        try:
            return ChangeRecord.from_graph(found.graph, url, change_id), found.graph
        except ChangeRefused as exc:
            log.warning("change record unreadable", extra={"problem": str(exc)})
            raise UnknownChange(f"no readable change {change_id}") from None

    async def _latest_told(self, resource: str,
                           negotiation: str) -> tuple[ChangeRecord, Graph]:
        """The newest change of ``resource`` that was announced under ``negotiation``."""
        for change_id in (await self.change_ids())[:LOOK_BACK]:
            with contextlib.suppress(UnknownChange):
                change, graph = await self._load(change_id)
                if change.resource == resource and change.notice_for(negotiation):
                    return change, graph
        raise UnknownChange(f"no change of {resource[:200]} was announced under this "
                            "agreement")

    async def change_ids(self) -> list[str]:
        """The ids of the change records, newest first."""
        try:
            members = await self.pod.list_container(self.layout.container("changes"))
        except NotFound:
            return []
        ids = (m.rstrip("/").rsplit("/", 1)[-1] for m in members)
        return sorted((i for i in ids if CHANGE_ID.fullmatch(i)), reverse=True)

    async def _create(self, change: ChangeRecord) -> None:
        url = self.record_url(change.id)
        graph = change.to_graph(url)
        validate_graph(graph)
        await self.pod.put_graph(url, graph, if_none_match="*")

    # -- the person's change -----------------------------------------------------------------

    async def announce(self, resource: str, *, etag: str | None = None) -> ChangeRecord:
        """Tell every vendor whose agreement in force covers ``resource`` that it changed
        (``etag``: the pod's for the new value), and keep who was told how."""
        service = self.service
        now = service.clock()
        index = await service.access.index()
        ids = sorted({i for view in index.entries.values()
                      if view.expires > now and view.covers(resource)
                      and (i := service._negotiation_of(view)) is not None})
        found = await asyncio.gather(*(service.load(i) for i in ids), return_exceptions=True)
        trouble = next((r for r in found if isinstance(r, BaseException)
                        and not isinstance(r, UnknownNegotiation)), None)
        if trouble is not None:
            raise trouble
        holders = [r for r in found if isinstance(r, NegotiationRecord)
                   and r.state in IN_FORCE and covers(r.access, resource, now)]
        change = ChangeRecord(new_change_id(now), resource, now, service.owner, etag)
        messages = [changed_message(negotiation=r.url, agreement=_agreement_uid(r),
                                    change=change.iri, resource=resource, changed_at=now)
                    for r in holders]
        delivered = await asyncio.gather(*(
            service.notifier.deliver(r.callback, m) for r, m in zip(holders, messages,
                                                                      strict=True)
            if r.callback))
        outcome = iter(delivered)
        notices = tuple(Notice(r.url, r.vendor, (DELIVERED if next(outcome) else FAILED)
                               if r.callback else NO_CALLBACK, r.channels)
                        for r in holders)
        change = ChangeRecord(change.id, resource, now, service.owner, etag, notices)
        await self._create(change)
        service.audit.add(AuditEvent(
            "DataChanged", at=now, actor=service.owner, resources=[resource],
            description=f"changed; {len(holders)} vendor(s) with an agreement told"))
        return change

    async def change_contact(self, unit_id: str, fields: dict[str, str]
                             ) -> tuple[ContactUnit, str, ChangeRecord]:
        """Change contact unit ``unit_id`` in place (an empty field is cleared, except the
        value) and tell the vendors whose agreements share it: the unit, its resource and the
        change record (``contact set`` and the dashboard)."""
        from dataclasses import replace

        from vrm_agent.ledger.records import ContactUnit
        from vrm_agent.ledger.store import Ledger

        if not fields:
            raise VrmAgentError("nothing to change: give the new value or a label, locality, "
                                "...")
        ledger = Ledger(self.pod, self.layout.storage)
        unit = await ledger.get(ContactUnit, unit_id)
        changed = replace(unit, **{k: (v or None) if k != "value" else v
                                   for k, v in fields.items()})
        # The same resource, changed in place: agreements that share it keep sharing it.
        url = await ledger.update(changed)
        try:
            # The ETag a vendor reading Turtle gets for the new value: its acknowledgement
            # names the one it read.
            head = await self.pod.request("HEAD", url, headers={"Accept": "text/turtle"})
            change = await self.announce(url, etag=head.etag)
        except VrmAgentError as exc:
            raise VrmAgentError(
                f"{unit.type} {unit_id} is changed, but the vendors that share it could not "
                f"be told ({exc}); change it again to tell them") from exc
        return changed, url, change

    async def contact_told(self, unit_id: str) -> tuple[str, ChangeRecord | None]:
        """A contact unit's resource and its last change, if any (``contact told``)."""
        from vrm_agent.ledger.records import ContactUnit
        from vrm_agent.ledger.store import Ledger

        ledger = Ledger(self.pod, self.layout.storage)
        url = ledger.url_of(ContactUnit, unit_id)
        await ledger.get(ContactUnit, unit_id)  # an unknown id is said as such
        return url, await self.latest_of(url)

    async def latest_of(self, resource: str) -> ChangeRecord | None:
        """The newest change record of ``resource``, if any (``contact told``)."""
        for change_id in (await self.change_ids())[:LOOK_BACK]:
            with contextlib.suppress(UnknownChange):
                change, _ = await self._load(change_id)
                if change.resource == resource:
                    return change
        return None


def _agreement_uid(record: NegotiationRecord) -> str | None:
    uid = (record.agreement or {}).get("uid")
    return uid if isinstance(uid, str) else None

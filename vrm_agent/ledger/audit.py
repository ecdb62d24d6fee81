"""The audit log: every step of a negotiation and of access, appended to the person's pod.

One resource per day (``vrm/audit/YYYY-MM-DD``); events are appended with an N3 Patch that only
inserts, so concurrent appends need no read and cannot overwrite each other. The pod server
applies the patches to one document one at a time, so :class:`AuditWriter` appends in the
background, in order, and folds whatever queued up meanwhile into one patch.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from rdflib import RDF, Graph, Literal, URIRef
from rdflib.namespace import PROV, XSD

from vrm_agent.errors import NotFound, PodError, VrmAgentError
from vrm_agent.ledger.layout import PodLayout
from vrm_agent.pod.client import PodClient
from vrm_agent.vocabulary import AUDIT_EVENT_TYPES, SCHEMA, VRM
from vrm_agent.vocabulary.compiled import validate_graph

_log = logging.getLogger("vrm_agent.ledger.audit")
EVENT_NAMES = {str(t).rsplit("#", 1)[-1]: t for t in AUDIT_EVENT_TYPES}


@dataclass(frozen=True)
class AuditEvent:
    type: str  # one of EVENT_NAMES: "AgreementReached", "AccessRevoked", ...
    at: datetime = field(default_factory=lambda: datetime.now(UTC))
    actor: str | None = None
    vendor: str | None = None
    agreement: str | None = None
    grant: str | None = None
    resources: Sequence[str] = ()
    description: str | None = None
    id: str = field(default_factory=lambda: uuid.uuid4().hex)

    def to_graph(self, day_url: str) -> Graph:
        if self.type not in EVENT_NAMES:
            raise ValueError(f"unknown audit event type {self.type!r}")
        graph, node = Graph(), URIRef(f"{day_url}#e-{self.id}")
        graph.add((node, RDF.type, VRM.AuditEvent))
        graph.add((node, VRM.eventType, EVENT_NAMES[self.type]))
        graph.add((node, PROV.atTime, Literal(self.at.astimezone(UTC).isoformat(),
                                               datatype=XSD.dateTime)))
        for predicate, value in ((VRM.actor, self.actor), (VRM.vendor, self.vendor),
                                 (VRM.agreement, self.agreement), (VRM.grant, self.grant)):
            if value:
                graph.add((node, predicate, URIRef(value)))
        for resource in self.resources:
            graph.add((node, VRM.affectedResource, URIRef(resource)))
        if self.description:
            graph.add((node, SCHEMA.description, Literal(self.description)))
        return graph


def stable_event_id(*parts: str) -> str:
    """An event id that depends only on what happened, for events that several processes may
    each notice (a grant's expiry): the same id, time and facts give the same triples, so the
    log holds the event once however often it is appended."""
    return hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()[:32]


class AuditWriter:
    """Appends events in the background: callers do not wait for the pod, and events that queue
    up within ``linger`` seconds, or while a patch is under way, leave together in the next one.
    The short wait keeps the log's write off the moment a vendor first uses what was granted,
    and folds a burst of events into one patch of the day's document."""

    def __init__(self, log: AuditLog, *, linger: float = 0.25) -> None:
        self.log = log
        self.linger = linger
        self._pending: list[AuditEvent] = []
        self._worker: asyncio.Task[None] | None = None
        self._hurry = asyncio.Event()
        self.lost = 0  # events the pod refused or could not take (each one is logged)

    def add(self, event: AuditEvent) -> None:
        self._pending.append(event)
        if self._worker is None or self._worker.done():
            self._hurry = asyncio.Event()
            self._worker = asyncio.create_task(self._run())

    async def _run(self) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._hurry.wait(), self.linger)
        while self._pending:
            batch, self._pending = self._pending, []
            unknown = [e for e in batch if e.type not in EVENT_NAMES]
            if unknown:  # one bad entry must not take the others with it
                self.lost += len(unknown)
                _log.error("audit entries of unknown type dropped",
                           extra={"types": [e.type for e in unknown]})
                batch = [e for e in batch if e.type in EVENT_NAMES]
            try:
                await self.log.append_all(batch)
            except (PodError, VrmAgentError, ValueError) as exc:
                self.lost += len(batch)
                _log.error("audit entries not written", extra={
                    "problem": str(exc), "types": [e.type for e in batch]})

    async def flush(self) -> None:
        """Wait until every event added so far is written (or given up)."""
        while self._worker is not None and not self._worker.done():
            self._hurry.set()
            await asyncio.shield(self._worker)


class AuditLog:
    def __init__(self, pod: PodClient, layout: PodLayout) -> None:
        self.pod = pod
        self.layout = layout

    def day_url(self, moment: datetime) -> str:
        return self.layout.resource("audit", moment.astimezone(UTC).date().isoformat())

    async def append(self, event: AuditEvent) -> str:
        await self.append_all([event])
        return f"{self.day_url(event.at)}#e-{event.id}"

    async def append_all(self, events: Sequence[AuditEvent]) -> None:
        """Several events with one patch per day they fall on."""
        days: dict[str, Graph] = {}
        for event in events:
            url = self.day_url(event.at)
            graph = event.to_graph(url)
            validate_graph(graph)
            days[url] = days[url] + graph if url in days else graph
        await asyncio.gather(*(self.pod.patch(url, inserts=g) for url, g in days.items()))

    async def events(self, day: datetime) -> list[dict[str, str | list[str] | None]]:
        """The events of one day, oldest first, as plain data."""
        url = self.day_url(day)
        try:
            graph = (await self.pod.get_graph(url)).graph
        except NotFound:
            return []
        names = {v: k for k, v in EVENT_NAMES.items()}
        out = []
        for node in graph.subjects(RDF.type, VRM.AuditEvent):

            def value(predicate: URIRef, node: object = node) -> str | None:
                found = graph.value(node, predicate)  # type: ignore[arg-type]
                return None if found is None else str(found)

            out.append({
                "id": str(node), "type": names.get(graph.value(node, VRM.eventType)),  # type: ignore[arg-type]
                "at": value(PROV.atTime), "actor": value(VRM.actor), "vendor": value(VRM.vendor),
                "agreement": value(VRM.agreement), "grant": value(VRM.grant),
                "resources": sorted(str(r) for r in graph.objects(node, VRM.affectedResource)),
                "description": value(SCHEMA.description),
            })
        return sorted(out, key=lambda e: str(e["at"]))

"""Access control on a live pod: the I/O edge over the pure WAC and ACP documents.

For every resource the access-control document is found from the resource's ``rel="acl"`` link
and its kind (WAC or ACP) from that document's ``rel="type"`` links; nothing is guessed from URLs.
Each change is a read-modify-write with If-Match (If-None-Match: * for a new document), tried again
after a 412. Changes to one document that arrive while a write is under way are coalesced into the
next write, so N concurrent grants on one resource cost about two writes, not N.

Every grant in force has an entry in the grant index (``<storage>vrm/grants``, see
:mod:`vrm_agent.access.index`): its agent, end, resources and agreement. The entry is written
beside the grant's document writes and deleted when the grant ends, so expiry is one read of the
index (a conditional GET, answered 304 while nothing changed), a revoke touches only the documents
holding the grant, and neither grows with the history. Every grant, revoke and expiry is appended
to the audit log, unless the layer above (the negotiation service) writes that entry itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from rdflib import Graph
from rdflib.compare import isomorphic

from vrm_agent.access._rdf import grant_node, parse_turtle
from vrm_agent.access.documents import AccessDocumentFormat, format_for
from vrm_agent.access.errors import AccessError, MalformedDocument
from vrm_agent.access.index import (
    GrantIndex,
    GrantView,
    entry_graph,
    group_grants,
    read_index,
)
from vrm_agent.access.model import AccessMode, Grant, check_modes, is_absolute_iri
from vrm_agent.deadlines import NextDeadline
from vrm_agent.errors import Conflict, NotFound, PodError
from vrm_agent.ledger.audit import AuditEvent, AuditLog, AuditWriter, stable_event_id
from vrm_agent.ledger.layout import PodLayout
from vrm_agent.pod.client import PodClient, with_retry_on_conflict
from vrm_agent.pod.rdf import TURTLE

log = logging.getLogger("vrm_agent.access")
INDEX_PATH = "vrm/grants"
# How often a running expiry loop asks whether another process (the CLI's `share`) added a
# grant: a conditional GET of the index, answered 304 with no body while nothing changed.
INDEX_POLL_SECONDS = 1.0
AUDIT_KINDS = {"granted": "AccessGranted", "revoked": "AccessRevoked", "expired": "AccessExpired"}

__all__ = ["AccessControl", "GrantIndex", "GrantNotFound", "GrantView", "RemainingAccess",
           "group_grants"]


class GrantNotFound(AccessError):
    """No grant with this id is in force."""


@dataclass(frozen=True)
class RemainingAccess:
    """Access an agent still has on a resource after one of its grants ended: through which
    grant, with which modes, until when."""

    resource: str
    grant: GrantView

    def to_json(self) -> dict[str, Any]:
        return {"resource": self.resource, "grant": self.grant.id,
                "modes": [m.label for m in AccessMode if m in self.grant.modes],
                "via": (None if self.resource in self.grant.resources
                        else next(r for r in self.grant.resources
                                  if self.resource.startswith(r))),
                "expires": self.grant.to_json()["expires"]}


@dataclass(frozen=True)
class _Location:
    doc_url: str
    format: AccessDocumentFormat


@dataclass
class _Change:
    add: list[Grant]
    remove: list[str]
    done: asyncio.Future[None]


@dataclass
class _Queue:
    resource_url: str
    pending: list[_Change] = field(default_factory=list)
    worker: asyncio.Task[None] | None = None


class AccessControl:
    """Grant, revoke, list and expire access on one person's pod, WAC or ACP alike."""

    def __init__(self, pod: PodClient, *, owner_webid: str, storage: str) -> None:
        self.pod = pod
        self.owner = owner_webid
        self.storage = storage if storage.endswith("/") else storage + "/"
        self.index_url = self.storage + INDEX_PATH
        self._locations: dict[str, _Location] = {}
        self._queues: dict[str, _Queue] = {}
        self._index: GrantIndex | None = None
        self._index_lock = asyncio.Lock()
        self._locating: dict[str, asyncio.Task[None]] = {}
        self._index_pending: list[tuple[Graph, asyncio.Future[None]]] = []
        self._index_writer: asyncio.Task[None] | None = None
        self._gone: set[str] = set()  # grants this process ended: a later revoke need not look
        self.writes = 0  # access-control documents written, for benchmarks and tests
        self.deadline = NextDeadline()  # the next grant to end
        self.audit = AuditWriter(AuditLog(pod, PodLayout(self.storage)))
        # Grants the layer above audits and ends itself (the negotiation service: those of its
        # agreements, whose records must end with them), so no event is logged twice and no
        # agreement is left in force in its record after its grants are gone.
        self.handled_elsewhere: Callable[[GrantView], bool] = lambda view: False

    # -- public API --------------------------------------------------------------------------

    async def grant(
        self,
        agent: str,
        resources: Sequence[str],
        modes: Iterable[AccessMode | str],
        *,
        until: datetime,
        members: bool = False,
        agreement: str | None = None,
        grant_id: str | None = None,
        now: datetime | None = None,
    ) -> GrantView:
        """Give ``agent`` ``modes`` on every resource until ``until``; one id for all of them."""
        if not resources:
            raise AccessError("a grant needs at least one resource")
        now = now or datetime.now(UTC)
        if until.tzinfo is None:
            raise AccessError("the end of a grant needs a timezone")
        if until <= now:
            raise AccessError("the end of a grant must be in the future")
        first = Grant.new(agent, resources[0], modes, until, members=members,
                          agreement=agreement, now=now, id=grant_id)
        grants = [first] + [
            Grant.new(agent, r, first.modes, until, members=members, agreement=agreement,
                      now=now, id=first.id) for r in resources[1:]
        ]
        for grant in grants:  # refuse before anything is written
            check_modes(grant, self.owner)
        view = group_grants(grants)[0]
        located = await asyncio.gather(*(self.locate(g.resource) for g in grants))
        documents = {g.resource: doc for g, (doc, _) in zip(grants, located, strict=True)}
        # The index entry goes out beside the document writes, not after them, so a grant has
        # one write on its critical path.
        results = await asyncio.gather(
            *(self._change(g.resource, add=[g]) for g in grants),
            self._index_insert(view, documents, created=now), return_exceptions=True)
        failure = next((r for r in results if isinstance(r, BaseException)), None)
        if failure is not None:
            # Take back whatever part was written: a grant is in force whole or not at all.
            with contextlib.suppress(PodError, AccessError):
                await self.end([view], how="revoked", audit=False)
            raise failure
        self.deadline.add(until)
        if not self.handled_elsewhere(view):
            self._audit("granted", view, at=now)
        return view

    async def revoke(self, grant_id: str) -> GrantView:
        """End a grant on every resource it covers; its access ends with the next request.
        Only the documents the index names for it are read and written."""
        if grant_id in self._gone:
            raise GrantNotFound(f"no grant {grant_id} is in force (it has ended)")
        index = await self.index()
        view = index.entries.get(grant_id)
        if view is None:
            # Not in the index (written before there was one, or its entry was lost): look
            # in every governed document.
            parts = [g for g in await self._all_grants() if g.id == grant_id]
            if not parts:
                raise GrantNotFound(f"no grant {grant_id} is in force")
            view = group_grants(parts)[0]
        await self.end([view], how="revoked")
        return view

    async def end(self, views: Sequence[GrantView], *, how: str, audit: bool | None = None,
                  keep_entries: bool = False) -> list[GrantView]:
        """Remove these grants from their documents, then their index entries; ``how`` is
        "revoked" or "expired". Returns those ended; one whose document could not be written
        keeps its entry, so the next pass tries again. With ``keep_entries`` the entries stay
        until :meth:`forget` (the caller has more to do first, and must be able to retry)."""
        if not views:
            return []
        results = await asyncio.gather(*(
            asyncio.gather(*(self._change(r, remove=[v.id]) for r in v.resources))
            for v in views), return_exceptions=True)
        ended = [v for v, r in zip(views, results, strict=True) if not isinstance(r, BaseException)]
        for view, result in zip(views, results, strict=True):
            if isinstance(result, BaseException):
                if not isinstance(result, (PodError, AccessError)):
                    raise result
                log.warning("grant not removed", extra={"grant": view.id,
                                                        "problem": str(result)})
        # Logged as soon as access has ended: a process stopped before the index entry goes
        # ends the grant again next time, and an expiry's stable event id keeps it one line.
        for view in ended:
            if audit if audit is not None else not self.handled_elsewhere(view):
                self._audit(how, view)
        self._gone.update(v.id for v in ended)
        if not keep_entries:
            await self._index_delete([v.id for v in ended])
        return ended

    async def forget(self, grant_ids: Sequence[str]) -> None:
        """Delete the index entries of grants that have ended."""
        await self._index_delete(grant_ids)

    def mark_ended(self, grant_ids: Iterable[str]) -> None:
        """These grants are known to have ended: a later revoke of one answers GrantNotFound
        without looking for it in every governed document."""
        self._gone.update(grant_ids)

    async def expire_due(
        self, now: datetime | None = None
    ) -> tuple[list[GrantView], datetime | None]:
        """End every grant whose time has come, from the index alone (one conditional GET
        while nothing is due); returns those ended and when the next one ends. Grants handled
        elsewhere are left to the layer above (NegotiationService.expire_due)."""
        now = now or datetime.now(UTC)
        index = await self.index()
        due = [v for v in index.due(now) if not self.handled_elsewhere(v)]
        ended = await self.end(due, how="expired")
        return ended, index.next_end(now)

    async def grants(
        self, *, resource: str | None = None, agent: str | None = None,
        now: datetime | None = None,
    ) -> list[GrantView]:
        """The grants in force, read back from the pod's access-control documents."""
        return (await self.survey(resource=resource, agent=agent, now=now))[0]

    async def survey(
        self, *, resource: str | None = None, agent: str | None = None,
        now: datetime | None = None,
    ) -> tuple[list[GrantView], list[GrantView]]:
        """(in force, past their end): the grants in the documents, split by their end. A
        grant past its end gives no access the person agreed to, whatever the document still
        says, and the expiry pass removes it; it is never listed as in force."""
        now = now or datetime.now(UTC)
        views = group_grants(await self._all_grants())
        if resource is not None:
            views = [v for v in views if resource in v.resources]
        if agent is not None:
            views = [v for v in views if v.agent == agent]
        return [v for v in views if v.expires > now], [v for v in views if v.expires <= now]

    async def remaining(
        self, ended: GrantView, *, now: datetime | None = None
    ) -> list[RemainingAccess]:
        """What the agent of ``ended`` can still reach of its resources, by its other grants in
        force: on the same resource, on a container granted with its members, or on a member of
        a container ``ended`` covered with its members."""
        now = now or datetime.now(UTC)
        index = await self.index()
        out: list[RemainingAccess] = []
        for other in sorted(index.entries.values(), key=lambda v: (v.expires, v.id)):
            if other.id == ended.id or other.agent != ended.agent or other.expires <= now:
                continue
            for resource in ended.resources:
                if other.covers(resource):
                    out.append(RemainingAccess(resource, other))
                elif ended.members:
                    out += [RemainingAccess(r, other) for r in other.resources
                            if r.startswith(resource) and r != resource]
        return out

    async def reconcile(
        self, now: datetime | None = None
    ) -> tuple[list[GrantView], datetime | None]:
        """One read of every governed document (at start, not in the expiry loop): grants the
        index does not know are indexed when in force and removed when past their end; then
        every due grant in the index ends. Returns those removed and the next end."""
        now = now or datetime.now(UTC)
        index = await self.index()
        unknown = [v for v in group_grants(await self._all_grants())
                   if v.id not in index.entries]
        stale = [v for v in unknown if v.expires <= now]
        removed = await self.end(stale, how="expired")
        for view in unknown:
            if view.expires > now:
                documents = {r: self._locations[r].doc_url for r in view.resources
                             if r in self._locations}
                await self._index_insert(view, documents)
        expired, upcoming = await self.expire_due(now)
        return removed + expired, upcoming

    async def publish(self, resource_url: str) -> None:
        """Let anyone read the resource (what the person publishes, such as the vocabulary)."""
        doc_url, fmt = await self.locate(resource_url)

        async def write() -> None:
            response = await self.pod.request("GET", doc_url, headers={"Accept": TURTLE},
                                              expect_ok=False)
            if response.status == 404:
                graph, etag = await self._initial_document(doc_url, resource_url, fmt), None
            else:
                self.pod.raise_for_status(response)
                graph, etag = fmt.parse(response.body, doc_url), response.etag
            new = fmt.with_public_read(graph, doc_url, resource_url)
            fmt.check_owner_keeps_control(new, resource_url, self.owner)
            if etag is not None and isomorphic(new, graph):
                return
            await self.pod.put(doc_url, fmt.serialize(new, doc_url),
                               content_type=fmt.content_type, if_match=etag,
                               if_none_match=None if etag else "*")
            self.writes += 1

        await with_retry_on_conflict(write)

    async def run_expiry(self, *, max_sleep: float = INDEX_POLL_SECONDS) -> None:
        """Remove grants when they end, until cancelled. The loop wakes at the next end it
        knows, and every ``max_sleep`` seconds to see whether another process added a grant (a
        conditional GET of the index)."""
        while True:
            upcoming = None
            try:
                _, upcoming = await self.expire_due()
            except (PodError, AccessError) as exc:  # an unreachable pod: try again soon
                log.warning("expiry pass failed", extra={"problem": str(exc)})
            self.deadline.reset(upcoming)
            await self.deadline.sleep(max_sleep=max_sleep)

    async def flush(self) -> None:
        """Wait for the audit entries queued so far (a command does this before it exits)."""
        await self.audit.flush()

    def _audit(self, how: str, view: GrantView, *, at: datetime | None = None) -> None:
        agreement = view.agreement if view.agreement and is_absolute_iri(view.agreement) else None
        kind = AUDIT_KINDS[how]
        # An expiry happens once, at the grant's end: whoever notices it (the daemon, a keeper)
        # logs the same event, with the same IRI, so it appears once.
        event_id = stable_event_id(kind, view.id) if how == "expired" else uuid.uuid4().hex
        moment = view.expires if how == "expired" else (at or datetime.now(UTC))
        self.audit.add(AuditEvent(
            kind, at=moment, actor=None if how == "expired" else self.owner,
            vendor=view.agent, agreement=agreement,
            grant=str(grant_node(self.index_url, view.id)), resources=view.resources,
            description={"granted": "access granted", "revoked": "access revoked",
                         "expired": "the grant reached its end"}[how]
            + f" ({', '.join(m.label for m in AccessMode if m in view.modes)} until "
              f"{view.to_json()['expires']})",
            id=event_id))

    # -- discovery ---------------------------------------------------------------------------

    async def locate(self, resource_url: str) -> tuple[str, AccessDocumentFormat]:
        """The access-control document of a resource and whether it is WAC or ACP."""
        cached = self._locations.get(resource_url)
        if cached is None:
            head = await self.pod.head(resource_url)
            doc_url = head.links.acl
            if doc_url is None:
                raise AccessError(f"the server names no access-control resource for "
                                  f"{resource_url} (no Link rel=\"acl\")")
            # CSS sends the document's type links even while it does not exist (404).
            doc_head = await self.pod.request("HEAD", doc_url, expect_ok=False)
            cached = _Location(doc_url, format_for(doc_head.links.types))
            self._locations[resource_url] = cached
        return cached.doc_url, cached.format

    # -- the write path ----------------------------------------------------------------------

    async def _change(
        self, resource_url: str, *, add: Sequence[Grant] = (), remove: Sequence[str] = ()
    ) -> None:
        doc_url, _ = await self.locate(resource_url)
        queue = self._queues.setdefault(doc_url, _Queue(resource_url))
        change = _Change(list(add), list(remove), asyncio.get_running_loop().create_future())
        queue.pending.append(change)
        if queue.worker is None or queue.worker.done():
            queue.worker = asyncio.create_task(self._drain(doc_url, queue))
        await change.done

    async def _drain(self, doc_url: str, queue: _Queue) -> None:
        while queue.pending:
            batch, queue.pending = queue.pending, []
            try:
                await with_retry_on_conflict(
                    lambda b=batch: self._write(doc_url, queue.resource_url, b)  # type: ignore[misc]
                )
            except Exception as exc:  # every waiter learns of the failure
                for change in batch:
                    if not change.done.done():
                        change.done.set_exception(exc)
            else:
                for change in batch:
                    if not change.done.done():
                        change.done.set_result(None)

    async def _write(self, doc_url: str, resource_url: str, batch: list[_Change]) -> None:
        _, fmt = await self.locate(resource_url)
        response = await self.pod.request("GET", doc_url, headers={"Accept": TURTLE},
                                          expect_ok=False)
        if response.status == 404:
            graph = await self._initial_document(doc_url, resource_url, fmt)
            current, etag = None, None
        else:
            self.pod.raise_for_status(response)
            graph = fmt.parse(response.body, doc_url)
            current, etag = graph, response.etag
        add = [g for change in batch for g in change.add]
        remove = [i for change in batch for i in change.remove]
        new = fmt.apply_changes(graph, doc_url, resource_url, self.owner, add=add, remove=remove)
        if current is not None and isomorphic(new, current):
            return  # nothing to do: a revoke of a grant that was not there, a repeated grant
        body = fmt.serialize(new, doc_url)
        if etag is not None:
            await self.pod.put(doc_url, body, content_type=fmt.content_type, if_match=etag)
        else:
            await self.pod.put(doc_url, body, content_type=fmt.content_type, if_none_match="*")
        self.writes += 1

    async def _initial_document(
        self, doc_url: str, resource_url: str, fmt: AccessDocumentFormat
    ) -> Graph:
        """A first document for the resource that changes nothing about who may do what: the
        nearest ancestor's inherited rules copied (WAC), and the owner's full control."""
        inherited, container = await self._inherited(resource_url)
        return fmt.initial_document(doc_url, resource_url, self.owner, inherited,
                                    inherited_container=container)

    async def _inherited(self, resource_url: str) -> tuple[Graph | None, str | None]:
        url = resource_url.rstrip("/")
        while url.startswith(self.storage.rstrip("/")) and "/" in url:
            container = url.rsplit("/", 1)[0] + "/"
            if not container.startswith(self.storage):
                break
            doc_url, fmt = await self.locate(container)
            response = await self.pod.request("GET", doc_url, headers={"Accept": TURTLE},
                                              expect_ok=False)
            if response.status < 400:
                return fmt.parse(response.body, doc_url), container
            url = container.rstrip("/")
        return None, None

    # -- the grant index ---------------------------------------------------------------------

    async def index(self) -> GrantIndex:
        """The grant index, read again only when it changed: a GET with If-None-Match, which
        the pod answers 304 without a body while it is as last read."""
        async with self._index_lock:
            current = self._index
            headers = {"Accept": TURTLE}
            if current is not None and current.etag:
                headers["If-None-Match"] = current.etag
            response = await self.pod.request("GET", self.index_url, headers=headers,
                                              expect_ok=False)
            if response.status == 304 and current is not None:
                return current
            if response.status == 404:
                self._index = GrantIndex(self.index_url)
                return self._index
            self.pod.raise_for_status(response)
            try:
                graph = parse_turtle(response.body, self.index_url)
            except MalformedDocument as exc:
                # Never fatal: report it; the documents still hold the grants, and a grant
                # made from now on is indexed again.
                log.error("grant index unreadable", extra={"problem": str(exc)})
                self._index = GrantIndex(self.index_url, problems=(str(exc),))
                return self._index
            fresh = read_index(self.index_url, graph, response.etag)
            if fresh.problems:
                log.warning("grant index entries skipped", extra={"problems": fresh.problems})
            self._index = fresh
            self._locate_ahead(fresh)
            return fresh

    def _locate_ahead(self, index: GrantIndex) -> None:
        """Find the documents of grants another process made now, in the background, so that
        ending them later is only the document's read and write."""
        for resource in {r for v in index.entries.values() for r in v.resources}:
            if resource not in self._locations and resource not in self._locating:
                task = asyncio.create_task(self._locate_quietly(resource))
                self._locating[resource] = task
                task.add_done_callback(lambda _, r=resource: self._locating.pop(r, None))

    async def _locate_quietly(self, resource: str) -> None:
        with contextlib.suppress(PodError, AccessError):
            await self.locate(resource)

    async def _index_insert(self, view: GrantView, documents: dict[str, str], *,
                            created: datetime | None = None) -> None:
        """Insert-only patches: concurrent grants from several processes cannot overwrite
        each other's entries. The pod applies patches to one document one at a time, so the
        entries that queue up while a patch is under way leave together in the next one."""
        graph = entry_graph(self.index_url, view, documents, created=created)
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._index_pending.append((graph, done))
        if self._index_writer is None or self._index_writer.done():
            self._index_writer = asyncio.create_task(self._drain_index_inserts())
        await done
        async with self._index_lock:
            if self._index is not None:  # the ETag is now stale: the next read gets it all
                known = dict(self._index.documents) | documents
                self._index = replace(self._index, graph=self._index.graph + graph,
                                      entries={**self._index.entries, view.id: view},
                                      documents=known)

    async def _drain_index_inserts(self) -> None:
        while self._index_pending:
            batch, self._index_pending = self._index_pending, []
            combined = Graph()
            for graph, _ in batch:
                combined += graph
            try:
                await self.pod.patch(self.index_url, inserts=combined)
            except BaseException as exc:  # every waiter learns of the failure
                for _, done in batch:
                    if not done.done():
                        done.set_exception(exc)
                if not isinstance(exc, Exception):
                    raise
            else:
                for _, done in batch:
                    if not done.done():
                        done.set_result(None)

    async def _index_delete(self, grant_ids: Sequence[str]) -> None:
        """Delete these entries' exact triples; an entry another process deleted meanwhile
        (the pod answers 409) is read again and left out."""
        if not grant_ids:
            return
        for _ in range(3):
            index = await self.index()
            triples = Graph()
            for grant_id in grant_ids:
                triples += index.entry_triples(grant_id)
            if len(triples) == 0:
                break
            try:
                await self.pod.patch(self.index_url, deletes=triples)
            except Conflict:
                async with self._index_lock:
                    if self._index is not None:
                        self._index = replace(self._index, etag=None)  # read it whole again
                continue
            break
        async with self._index_lock:
            if self._index is not None:
                graph = self._index.graph - triples
                self._index = replace(
                    self._index, graph=graph,
                    entries={k: v for k, v in self._index.entries.items() if k not in grant_ids})

    async def _all_grants(self) -> list[Grant]:
        """Every grant in every document the index names (the listing, and grants the index
        does not know)."""
        index = await self.index()
        resources = sorted(set(index.documents) | {r for v in index.entries.values()
                                                   for r in v.resources})
        found = await asyncio.gather(*(self._grants_on(r) for r in resources))
        return [g for grants in found for g in grants]

    async def _grants_on(self, resource_url: str) -> list[Grant]:
        try:
            doc_url, fmt = await self.locate(resource_url)
        except NotFound:
            return []  # the resource is gone, and its document with it
        response = await self.pod.request("GET", doc_url, headers={"Accept": TURTLE},
                                          expect_ok=False)
        if response.status == 404:
            return []
        self.pod.raise_for_status(response)
        return fmt.read_grants(fmt.parse(response.body, doc_url), doc_url)

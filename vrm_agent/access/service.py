"""Access control on a live pod: the I/O edge over the pure WAC and ACP documents.

Every change costs what the pod needs and no more:

* **Discovery.** A resource's access-control document is found from its ``rel="acl"`` link (one
  HEAD, remembered per resource) and its kind (WAC or ACP) from that document's ``rel="type"``
  links, learnt once per storage: a server uses one access-control system for a whole storage.
  Nothing is guessed from URLs.
* **A new document** is written whole and at once: PUT with ``If-None-Match: *`` of the owner's
  rules, the rules the resource inherits today (WAC; read from its container's document and kept
  per container for :data:`INHERITED_FOR` seconds, so they are not walked up each time) and the
  grant. A 412 says the document exists after all, and the grant is patched into it.
* **An existing document** is changed by one write: a PUT with ``If-Match`` when this process has
  read it since its own last write (it does so a moment after writing one that holds grants), else
  one N3 Patch of exactly the grants' triples, made only if the document exists (``If-Match: *``).
  Nothing else in it is lost, and two agents editing it at once cannot overwrite each other. A
  revoke is one such write per document holding the grant. When the document is not as expected
  (someone edited the grant, the patch answers 409) the change falls back to the full cycle: GET
  with its ETag, the pure functions, PUT with ``If-Match``, again after a 412.
* Changes to one document that arrive while a write is under way are coalesced into the next
  write, so N concurrent grants on one resource cost about two writes, not N.

Every grant in force has an entry in the grant index (:mod:`vrm_agent.access.index`): its agent,
end, resources, agreement and the documents that hold it. The index is read once and then kept
current in memory; the entry is written beside the grant's document write and deleted a moment
after the grant ends, each a patch of one small shard. What the index names outside the person's
storage is not followed. So expiry needs no pod request while nothing is due,
a revoke touches only the documents holding the grant, and neither grows with the number of
grants or with the history. Every grant, revoke and expiry is appended to the audit log, unless
the layer above (the negotiation service) writes that entry itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from rdflib import Graph, URIRef
from rdflib.compare import isomorphic

from vrm_agent.access._rdf import grant_node, parse_turtle
from vrm_agent.access.documents import AccessDocumentFormat, format_for
from vrm_agent.access.errors import AccessError, MalformedDocument
from vrm_agent.access.index import (
    FEED_NAME,
    INDEX_CONTAINER,
    LEGACY_INDEX,
    GrantIndex,
    GrantView,
    announcement,
    copy_triples,
    entry_graph,
    entry_triples,
    group_grants,
    is_shard_name,
    read_feed,
    read_index,
    shard_name,
    triples_of,
)
from vrm_agent.access.model import AccessMode, Grant, check_modes, is_absolute_iri
from vrm_agent.deadlines import NextDeadline
from vrm_agent.errors import NotFound, PodError, PreconditionFailed
from vrm_agent.ledger.audit import AuditEvent, AuditLog, AuditWriter, stable_event_id
from vrm_agent.ledger.layout import PodLayout
from vrm_agent.pod.client import LDP, PodClient, PodResponse, with_retry_on_conflict
from vrm_agent.pod.rdf import N3, TURTLE, n3_patch

log = logging.getLogger("vrm_agent.access")
# How often a running expiry loop asks whether another process (the CLI's `share`) changed the
# index: a conditional GET of the feed, answered 304 with no body while nothing changed.
INDEX_POLL_SECONDS = 1.0
# How long a container's inherited rules are trusted before they are read again (conditional
# GETs, beside the grant that finds them old). Changes the agent makes itself are seen at once;
# another tool's, within this time and one read.
INHERITED_FOR = 10.0
# Announcements in the feed older than this are removed by the reader that sees them.
FEED_KEEP = timedelta(minutes=1)
# How long the index entries of ended grants wait before their deletion leaves (see
# `_index_delete`); `flush` sends them at once.
INDEX_LINGER = 0.25
# How long after writing a document that holds grants it is read back, and how many such
# documents are kept (their text and ETag, about a kilobyte each) for a one-PUT change.
DOCUMENT_LINGER = 0.25
KNOWN_DOCUMENTS = 512
# Resources whose documents `prepare` locates ahead, at most (the rest are found when used).
PREPARE_AT_MOST = 200
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


@dataclass
class _Change:
    add: list[Grant]
    remove: list[Grant]
    done: asyncio.Future[None]


@dataclass
class _Queue:
    resource_url: str
    pending: list[_Change] = field(default_factory=list)
    worker: asyncio.Task[None] | None = None


@dataclass(frozen=True)
class _Known:
    """A document as this process last read it, with the ETag that says it is still so."""

    etag: str
    body: bytes


@dataclass(frozen=True)
class _Inherited:
    """What a container's members inherit (WAC): the rules of the nearest document up the tree,
    which container it belongs to, its ETag, and when it was read."""

    rules: Graph | None
    source: str | None
    etag: str | None
    at: float


class AccessControl:
    """Grant, revoke, list and expire access on one person's pod, WAC or ACP alike.

    ``announce`` makes every change of the index known through the feed, for a daemon that may be
    running beside this process; the daemon itself, the only reader of the feed, need not."""

    def __init__(self, pod: PodClient, *, owner_webid: str, storage: str,
                 announce: bool = True) -> None:
        self.pod = pod
        self.owner = owner_webid
        self.storage = storage if storage.endswith("/") else storage + "/"
        self.index_container = self.storage + INDEX_CONTAINER
        self.feed_url = self.index_container + FEED_NAME
        self.announce = announce
        self._format: AccessDocumentFormat | None = None
        self._format_task: asyncio.Task[AccessDocumentFormat] | None = None
        self._locations: dict[str, str] = {}  # resource -> its access-control document
        self._exists: dict[str, bool] = {}  # document -> known to exist (or not)
        self._inherited: OrderedDict[str, _Inherited] = OrderedDict()
        self._known: OrderedDict[str, _Known] = OrderedDict()  # documents holding grants
        self._remembering: dict[str, asyncio.Task[None]] = {}
        self._generation: dict[str, int] = {}  # writes to each document by this process
        self._reading: dict[str, asyncio.Task[_Inherited]] = {}
        self._queues: dict[str, _Queue] = {}
        self._index: GrantIndex | None = None
        self._loading: asyncio.Task[GrantIndex] | None = None
        self._feed_lock = asyncio.Lock()
        self._feed_etag: str | None = None
        self._feed_seen: set[str] = set()
        self._inserting: dict[str, int] = {}  # grants whose entry is on its way to the pod
        self._shard_pending: dict[str, list[tuple[Graph, asyncio.Future[None]]]] = {}
        self._shard_writers: dict[str, asyncio.Task[None]] = {}
        self._gone: set[str] = set()  # grants this process ended: a later revoke need not look
        self._deleting: dict[str, GrantView | None] = {}  # entries to delete, shortly
        self._deleter: asyncio.Task[None] | None = None
        self._hurry = asyncio.Event()
        self.writes = 0  # access-control documents written, for benchmarks and tests
        self.deadline = NextDeadline()  # the next grant to end
        self.audit = AuditWriter(AuditLog(pod, PodLayout(self.storage)))
        # Grants the layer above audits and ends itself (the negotiation service: those of its
        # agreements, whose records must end with them), so no event is logged twice and no
        # agreement is left in force in its record after its grants are gone.
        self.handled_elsewhere: Callable[[GrantView], bool] = lambda view: False

    # -- public API --------------------------------------------------------------------------

    async def prepare(self, resources: Iterable[str] = ()) -> None:
        """What a first grant needs, read ahead (the daemon does this at start): the storage's
        access-control system, the index, and for ``resources`` (those the person's terms may
        share) their documents' places and what their containers pass on."""
        _, fmt = await self.locate(self.storage)
        wanted = sorted(set(resources))[:PREPARE_AT_MOST]
        containers = sorted({r.rstrip("/").rsplit("/", 1)[0] + "/" for r in wanted}
                            | {self.storage})

        async def place(resource: str) -> None:
            with contextlib.suppress(PodError, AccessError):
                await self.locate(resource)

        await asyncio.gather(self.index(), *(place(r) for r in wanted), *(
            self._inherited_by(c, fmt) for c in containers if c.startswith(self.storage)))

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
            self._index_insert(view, documents), return_exceptions=True)
        failure = next((r for r in results if isinstance(r, BaseException)), None)
        if failure is not None:
            # Take back whatever part was written: a grant is in force whole or not at all.
            with contextlib.suppress(PodError, AccessError):
                await self.end([self._current(view)], how="revoked", audit=False)
            raise failure
        self.deadline.add(until)
        if not self.handled_elsewhere(view):
            self._audit("granted", view, at=now)
        return self._current(view)

    async def revoke(self, grant_id: str) -> GrantView:
        """End a grant on every resource it covers; its access ends with the next request.
        Only the documents the index names for it are written, one patch each."""
        if grant_id in self._gone:
            raise GrantNotFound(f"no grant {grant_id} is in force (it has ended)")
        # The daemon knows it from memory; a command reads only the grant's shard.
        view = (self._index.entries.get(grant_id) if self._index is not None else None) \
            or (await self._read_shard(self.shard_url(grant_id))).entries.get(grant_id)
        if view is None:
            raise GrantNotFound(f"no grant {grant_id} is in force")
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
        views = [self._current(v) for v in views]
        results = await asyncio.gather(*(
            asyncio.gather(*(self._change(part.resource, remove=[part]) for part in v.parts()))
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
            await self._index_delete([v.id for v in ended], ended)
        return ended

    async def forget(self, grant_ids: Sequence[str]) -> None:
        """Delete the index entries of grants that have ended."""
        await self._index_delete(grant_ids)

    def mark_ended(self, grant_ids: Iterable[str]) -> None:
        """These grants are known to have ended: a later revoke of one answers GrantNotFound
        without looking for it."""
        self._gone.update(grant_ids)

    async def expire_due(
        self, now: datetime | None = None
    ) -> tuple[list[GrantView], datetime | None]:
        """End every grant whose time has come, from the index alone (one conditional GET of
        the feed while nothing is due); returns those ended and when the next one ends. Grants
        handled elsewhere are left to the layer above (NegotiationService.expire_due)."""
        now = now or datetime.now(UTC)
        index = await self.index(fresh=True)
        due = [v for v in index.due(now) if not self.handled_elsewhere(v)]
        # Ended here before, their entries not deleted then: delete them now, nothing else.
        await self._index_delete([v.id for v in due if v.id in self._gone])
        ended = await self.end([v for v in due if v.id not in self._gone], how="expired")
        return ended, (await self.index()).next_end(now)

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
        found = (await self._grants_on(resource)) if resource is not None \
            else await self._all_grants()
        views = group_grants(found)
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
        """One read of every governed document (in the background after start, never in the
        expiry loop): grants the index does not know are indexed when in force and removed when
        past their end; then every due grant in the index ends. Returns those removed and the
        next end."""
        now = now or datetime.now(UTC)
        index = await self.index()
        found = group_grants(await self._all_grants())
        unknown = [v for v in found if v.id not in index.entries]
        stale = [v for v in unknown if v.expires <= now]
        removed = await self.end(stale, how="expired")
        # Entries whose grant is in no document (the process that ended it stopped before its
        # entry went) go quietly; one being written right now is left alone.
        held = {v.id for v in found}
        settled = now - timedelta(minutes=1)
        orphans = [v for v in index.entries.values()
                   if v.id not in held and v.id not in self._inserting
                   and v.created is not None and v.created < settled]
        await self._index_delete([v.id for v in orphans], orphans)
        for view in unknown:
            if view.expires > now:
                documents = {r: self._locations[r] for r in view.resources
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
            self._written(doc_url, resource_url, remember=False)

        await with_retry_on_conflict(write)

    def _intent_document(self, resource_url: str) -> str:
        """``resource_url`` when it is one intent document of the layout (vrm/intents/ID);
        public read is given to nothing else, so no mistake opens the rest of the pod."""
        from vrm_agent.ledger.intents import intent_id_of

        if "#" in resource_url or "?" in resource_url or \
                intent_id_of(PodLayout(self.storage), resource_url) is None:
            raise AccessError(f"only an intent document may be made public, not {resource_url}")
        return resource_url

    async def publish_intent(self, resource_url: str) -> None:
        """Let anyone read one intent (the person chose to make it public); nothing else."""
        await self.publish(self._intent_document(resource_url))

    async def unpublish_intent(self, resource_url: str) -> None:
        """Take back :meth:`publish_intent`: the public rule goes, every other rule stays."""
        doc_url, fmt = await self.locate(self._intent_document(resource_url))

        async def write() -> None:
            response = await self.pod.request("GET", doc_url, headers={"Accept": TURTLE},
                                              expect_ok=False)
            if response.status == 404:
                return
            self.pod.raise_for_status(response)
            graph = fmt.parse(response.body, doc_url)
            new = fmt.without_public_read(graph, doc_url, resource_url)
            if isomorphic(new, graph):
                return
            fmt.check_owner_keeps_control(new, resource_url, self.owner)
            await self.pod.put(doc_url, fmt.serialize(new, doc_url),
                               content_type=fmt.content_type, if_match=response.etag)
            self._written(doc_url, resource_url, remember=False)

        await with_retry_on_conflict(write)

    async def run_expiry(self, *, max_sleep: float = INDEX_POLL_SECONDS) -> None:
        """Remove grants when they end, until cancelled. The loop wakes at the next end it
        knows, and every ``max_sleep`` seconds to see whether another process changed the index
        (a conditional GET of the feed)."""
        while True:
            upcoming = None
            try:
                _, upcoming = await self.expire_due()
            except (PodError, AccessError) as exc:  # an unreachable pod: try again soon
                log.warning("expiry pass failed", extra={"problem": str(exc)})
            self.deadline.reset(upcoming)
            await self.deadline.sleep(max_sleep=max_sleep)

    async def flush(self) -> None:
        """Wait for the index deletions and audit entries queued so far (a command does this
        before it exits)."""
        while self._deleter is not None and not self._deleter.done():
            self._hurry.set()
            await asyncio.shield(self._deleter)
        for task in list(self._remembering.values()):  # an optimisation for later changes only
            task.cancel()
        await self.audit.flush()

    def shard_url(self, grant_id: str) -> str:
        return self.index_container + shard_name(grant_id)

    def grant_iri(self, grant_id: str) -> str:
        """The grant's IRI: its entry in the index."""
        return str(grant_node(self.shard_url(grant_id), grant_id))

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
            grant=self.grant_iri(view.id), resources=view.resources,
            description={"granted": "access granted", "revoked": "access revoked",
                         "expired": "the grant reached its end"}[how]
            + f" ({', '.join(m.label for m in AccessMode if m in view.modes)} until "
              f"{view.to_json()['expires']})",
            id=event_id))

    def _current(self, view: GrantView) -> GrantView:
        """The view as the index knows it now (with its creation time and copies)."""
        known = self._index.entries.get(view.id) if self._index is not None else None
        return known if known is not None and known == view else view

    # -- discovery ---------------------------------------------------------------------------

    async def locate(self, resource_url: str) -> tuple[str, AccessDocumentFormat]:
        """The access-control document of a resource and whether it is WAC or ACP."""
        doc_url = self._locations.get(resource_url)
        if doc_url is None:
            head = await self.pod.head(resource_url)
            doc_url = head.links.acl
            if doc_url is None:
                raise AccessError(f"the server names no access-control resource for "
                                  f"{resource_url} (no Link rel=\"acl\")")
            self._locations[resource_url] = doc_url
        return doc_url, await self._format_of(doc_url)

    async def _format_of(self, doc_url: str) -> AccessDocumentFormat:
        if self._format is not None:
            return self._format
        if self._format_task is None or (self._format_task.done()
                                         and self._format_task.exception() is not None):
            async def discover() -> AccessDocumentFormat:
                # CSS sends the document's type links even while it does not exist (404).
                head = await self.pod.request("HEAD", doc_url, expect_ok=False)
                return format_for(head.links.types)
            self._format_task = asyncio.ensure_future(discover())
        self._format = await asyncio.shield(self._format_task)
        return self._format

    # -- the write path ----------------------------------------------------------------------

    async def _change(
        self, resource_url: str, *, add: Sequence[Grant] = (), remove: Sequence[Grant] = ()
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
                await self._write(doc_url, queue.resource_url,
                                  [g for c in batch for g in c.add],
                                  [g for c in batch for g in c.remove])
            except Exception as exc:  # every waiter learns of the failure
                for change in batch:
                    if not change.done.done():
                        change.done.set_exception(exc)
            else:
                for change in batch:
                    if not change.done.done():
                        change.done.set_result(None)
        if self._queues.get(doc_url) is queue:
            del self._queues[doc_url]

    async def _write(self, doc_url: str, resource_url: str, add: list[Grant],
                     remove: list[Grant]) -> None:
        fmt = await self._format_of(doc_url)
        if await self._put_known(doc_url, resource_url, fmt, add, remove):
            return
        for _ in range(5):
            if add and not self._exists.get(doc_url) \
                    and await self._create(doc_url, resource_url, fmt, add, remove):
                return
            where, deletes, inserts = fmt.patch_for(doc_url, resource_url, add, remove)
            response = await self.pod.request(
                "PATCH", doc_url, headers={"Content-Type": N3, "If-Match": "*"},
                body=n3_patch(inserts=inserts, deletes=deletes, where=where), expect_ok=False)
            if response.status < 300:
                self._written(doc_url, resource_url, remember=bool(add))
                return
            if response.status == 412:  # there is no document (any more)
                self._exists[doc_url] = False
                if not add:
                    return  # nothing to remove
                continue
            if response.status in (409, 422):  # not as expected: read it, write it whole
                await with_retry_on_conflict(
                    lambda: self._rewrite(doc_url, resource_url, fmt, add, remove))
                return
            self.pod.raise_for_status(response)
        raise AccessError(f"{doc_url} kept appearing and disappearing; try again")

    async def _create(self, doc_url: str, resource_url: str, fmt: AccessDocumentFormat,
                      add: list[Grant], remove: list[Grant]) -> bool:
        """Write the whole first document (False when one exists after all)."""
        base = await self._initial_document(doc_url, resource_url, fmt)
        new = fmt.apply_changes(base, doc_url, resource_url, self.owner, add=add,
                                remove=[g.id for g in remove])
        response = await self.pod.request(
            "PUT", doc_url, headers={"Content-Type": fmt.content_type, "If-None-Match": "*"},
            body=fmt.serialize(new, doc_url), expect_ok=False)
        if response.status == 412:
            self._exists[doc_url] = True
            return False
        self.pod.raise_for_status(response)
        self._written(doc_url, resource_url)
        copied = {g.id for g in fmt.read_grants(new, doc_url)} - {g.id for g in add}
        if copied:
            await self._record_copies(copied, resource_url, doc_url)
        return True

    async def _rewrite(self, doc_url: str, resource_url: str, fmt: AccessDocumentFormat,
                       add: list[Grant], remove: list[Grant]) -> None:
        """The full cycle: GET with the ETag, apply, PUT with If-Match (a 412 starts again)."""
        response = await self.pod.request("GET", doc_url, headers={"Accept": TURTLE},
                                          expect_ok=False)
        if response.status == 404:
            self._exists[doc_url] = False
            if add and not await self._create(doc_url, resource_url, fmt, add, remove):
                raise PreconditionFailed("the document appeared meanwhile", method="PUT",
                                         url=doc_url, status=412)
            return
        self.pod.raise_for_status(response)
        graph = fmt.parse(response.body, doc_url)
        new = fmt.apply_changes(graph, doc_url, resource_url, self.owner, add=add,
                                remove=[g.id for g in remove])
        if isomorphic(new, graph):
            return  # nothing to do: a revoke of a grant that was not there, a repeated grant
        await self.pod.put(doc_url, fmt.serialize(new, doc_url), content_type=fmt.content_type,
                           if_match=response.etag)
        self._written(doc_url, resource_url, remember=bool(fmt.read_grants(new, doc_url)))

    async def _put_known(self, doc_url: str, resource_url: str, fmt: AccessDocumentFormat,
                         add: list[Grant], remove: list[Grant]) -> bool:
        """Write the document whole, conditionally on its ETag, when this process read it since
        its last write (a revoke then costs one PUT, which CSS stores faster than it applies a
        patch). False when it is not known or changed meanwhile: the caller patches it."""
        known = self._known.pop(doc_url, None)
        if known is None:
            return False
        try:
            graph = fmt.parse(known.body, doc_url)
            new = fmt.apply_changes(graph, doc_url, resource_url, self.owner, add=add,
                                    remove=[g.id for g in remove])
        except (AccessError, MalformedDocument):
            return False  # the patch, or the full cycle, says what is wrong
        if isomorphic(new, graph):
            return False
        response = await self.pod.request(
            "PUT", doc_url, headers={"Content-Type": fmt.content_type, "If-Match": known.etag},
            body=fmt.serialize(new, doc_url), expect_ok=False)
        if response.status in (404, 412):
            return False
        self.pod.raise_for_status(response)
        self._written(doc_url, resource_url, remember=bool(fmt.read_grants(new, doc_url)))
        return True

    def _written(self, doc_url: str, resource_url: str, *, remember: bool = True) -> None:
        self.writes += 1
        self._exists[doc_url] = True
        self._known.pop(doc_url, None)
        self._generation[doc_url] = self._generation.get(doc_url, 0) + 1
        if remember and doc_url not in self._remembering:
            task = asyncio.create_task(self._remember(doc_url))
            self._remembering[doc_url] = task
            task.add_done_callback(lambda _: self._remembering.pop(doc_url, None))
        if resource_url.endswith("/"):  # what its members inherit may have changed
            for container in [c for c in self._inherited if c.startswith(resource_url)]:
                del self._inherited[container]

    async def _remember(self, doc_url: str) -> None:
        """Read a document that holds grants, a moment after writing it (off the moment the
        vendor first uses the grant), so that the next change is one conditional PUT."""
        while True:
            await asyncio.sleep(DOCUMENT_LINGER)
            generation = self._generation.get(doc_url, 0)
            try:
                response = await self.pod.request("GET", doc_url, headers={"Accept": TURTLE},
                                                  expect_ok=False)
            except PodError:
                return
            if self._generation.get(doc_url, 0) != generation:
                continue  # written again meanwhile: read it once more
            if response.status == 200 and response.etag:
                self._known[doc_url] = _Known(response.etag, response.body)
                self._known.move_to_end(doc_url)
                while len(self._known) > KNOWN_DOCUMENTS:
                    self._known.popitem(last=False)
            return

    async def _initial_document(
        self, doc_url: str, resource_url: str, fmt: AccessDocumentFormat
    ) -> Graph:
        """A first document for the resource that changes nothing about who may do what: the
        nearest ancestor's inherited rules copied (WAC), and the owner's full control."""
        inherited = _Inherited(None, None, None, 0.0)
        if fmt.name == "wac" and resource_url != self.storage:
            container = resource_url.rstrip("/").rsplit("/", 1)[0] + "/"
            if container.startswith(self.storage):
                inherited = await self._inherited_by(container, fmt)
        return fmt.initial_document(doc_url, resource_url, self.owner, inherited.rules,
                                    inherited_container=inherited.source)

    async def _inherited_by(self, container: str, fmt: AccessDocumentFormat) -> _Inherited:
        """The rules the members of ``container`` inherit (WAC), from the cache while fresh."""
        if fmt.name != "wac":
            return _Inherited(None, None, None, 0.0)
        cached = self._inherited.get(container)
        if cached is not None and time.monotonic() - cached.at < INHERITED_FOR:
            return cached
        task = self._reading.get(container)
        if task is None:
            task = asyncio.ensure_future(self._read_inherited(container, cached))
            self._reading[container] = task
            task.add_done_callback(lambda _: self._reading.pop(container, None))
        if cached is not None:
            # Read again beside this use rather than before it: what is used is at most one
            # read older than INHERITED_FOR, and no grant waits for the check.
            task.add_done_callback(lambda t: t.cancelled() or t.exception())
            return cached
        return await asyncio.shield(task)

    async def _read_inherited(self, container: str, cached: _Inherited | None) -> _Inherited:
        """Read the documents of the container and of every ancestor up to the storage at once
        (one round trip, not one per level; the one known before is asked If-None-Match) and
        keep the nearest that exists: WAC's inheritance, without walking up."""
        chain = [container]
        while chain[-1] != self.storage:
            parent = chain[-1].rstrip("/").rsplit("/", 1)[0] + "/"
            if not parent.startswith(self.storage):
                break
            chain.append(parent)
        documents = [doc for doc, _ in await asyncio.gather(*(self.locate(c) for c in chain))]

        async def read(level: str, doc_url: str) -> PodResponse:
            headers = {"Accept": TURTLE}
            if cached is not None and cached.source == level and cached.etag:
                headers["If-None-Match"] = cached.etag
            return await self.pod.request("GET", doc_url, headers=headers, expect_ok=False)

        answers = await asyncio.gather(*(read(c, d) for c, d in zip(chain, documents,
                                                                     strict=True)))
        found = _Inherited(None, None, None, time.monotonic())
        for level, doc_url, response in zip(chain, documents, answers, strict=True):
            if response.status == 404:
                self._exists[doc_url] = False
                continue
            if response.status == 304 and cached is not None:
                found = replace(cached, at=time.monotonic())
            else:
                self.pod.raise_for_status(response)
                fmt = await self._format_of(doc_url)
                found = _Inherited(fmt.parse(response.body, doc_url), level, response.etag,
                                   time.monotonic())
            self._exists[doc_url] = True
            break
        self._inherited[container] = found
        self._inherited.move_to_end(container)
        while len(self._inherited) > 256:  # a bounded cache: the containers in use
            self._inherited.popitem(last=False)
        return found

    # -- the grant index ---------------------------------------------------------------------

    async def index(self, *, fresh: bool = False) -> GrantIndex:
        """The grant index, read from the pod once and kept current in memory. With ``fresh``
        the feed is read too (a conditional GET, 304 while no other process changed a grant)."""
        if self._index is None:
            if self._loading is None or (self._loading.done()
                                         and self._loading.exception() is not None):
                self._loading = asyncio.ensure_future(self._load_index())
            return await asyncio.shield(self._loading)
        if fresh:
            await self._follow_feed()
        return self._index

    async def _load_index(self) -> GrantIndex:
        listing, legacy, _ = await asyncio.gather(
            self.pod.request("GET", self.index_container, headers={"Accept": TURTLE},
                             expect_ok=False),
            self.pod.request("GET", self.storage + LEGACY_INDEX, headers={"Accept": TURTLE},
                             expect_ok=False),
            self._follow_feed(mark_only=True))
        shards: list[str] = []
        if listing.status != 404:
            self.pod.raise_for_status(listing)
            graph = self._parse_or_none(listing.body, self.index_container)
            if graph is not None:
                shards = sorted(str(o) for o in graph.objects(None, LDP.contains)
                                if str(o).startswith(self.index_container)
                                and is_shard_name(str(o)[len(self.index_container):]))
        parts = await asyncio.gather(*(self._read_shard(url) for url in shards))
        index = GrantIndex()
        for part in parts:
            index = index.merged(part)
        if legacy.status == 200:
            index = await self._move_legacy(index, legacy.body, legacy.etag)
        if index.problems:
            log.warning("grant index entries skipped", extra={"problems": index.problems})
        for resource, doc_url in index.documents.items():
            self._locations.setdefault(resource, doc_url)
            self._exists.setdefault(doc_url, True)  # the agent wrote it (a 412 says if gone)
        self._index = index
        return index

    @staticmethod
    def _parse_or_none(body: bytes, url: str) -> Graph | None:
        try:
            return parse_turtle(body, url)
        except MalformedDocument as exc:
            # Never fatal: report it; the documents still hold the grants, and a grant made
            # from now on is indexed again.
            log.error("grant index unreadable", extra={"problem": str(exc), "url": url})
            return None

    async def _read_shard(self, shard_url: str) -> GrantIndex:
        response = await self.pod.request("GET", shard_url, headers={"Accept": TURTLE},
                                          expect_ok=False)
        if response.status == 404:
            return GrantIndex()
        self.pod.raise_for_status(response)
        graph = self._parse_or_none(response.body, shard_url)
        if graph is None:
            return GrantIndex(problems=(f"{shard_url} cannot be read",))
        return self._contained(read_index(shard_url, graph))

    def _contained(self, part: GrantIndex) -> GrantIndex:
        """Only what lies in this storage: the index is a document others may have written to,
        and the places it names are where the agent writes with the person's token."""
        def inside(url: str) -> bool:
            return url.startswith(self.storage)

        entries, problems = {}, list(part.problems)
        for key, view in part.entries.items():
            if all(inside(r) for r in (*view.resources, *view.copies)):
                entries[key] = view
            else:
                problems.append(f"grant {key}: names a resource outside {self.storage}")
        documents = {r: d for r, d in part.documents.items() if inside(r) and inside(d)}
        if len(documents) < len(part.documents):
            problems.append(f"access-control documents outside {self.storage} ignored")
        return GrantIndex(entries, documents, tuple(problems))

    async def _move_legacy(self, index: GrantIndex, body: bytes, etag: str | None) -> GrantIndex:
        """Entries of the single index document earlier versions kept go to their shards; the
        document goes once they are there."""
        url = self.storage + LEGACY_INDEX
        graph = self._parse_or_none(body, url)
        if graph is None:
            return index
        old = self._contained(read_index(url, graph))
        moving = [v for v in old.entries.values() if v.id not in index.entries]
        await asyncio.gather(*(self._patch_shard(
            self.shard_url(v.id), entry_graph(self.shard_url(v.id), v, old.documents))
            for v in moving))
        with contextlib.suppress(PodError):
            await self.pod.delete(url, if_match=etag)
        return index.merged(replace(old, problems=()))

    async def _follow_feed(self, *, mark_only: bool = False) -> None:
        """Read the shards other processes announced since the last look."""
        async with self._feed_lock:
            headers = {"Accept": TURTLE}
            if self._feed_etag:
                headers["If-None-Match"] = self._feed_etag
            response = await self.pod.request("GET", self.feed_url, headers=headers,
                                              expect_ok=False)
            if response.status == 304:
                return
            if response.status == 404:
                self._feed_etag = None
                return
            self.pod.raise_for_status(response)
            graph = self._parse_or_none(response.body, self.feed_url)
            if graph is None:
                return
            seen = read_feed(self.feed_url, graph, self.index_container)
            fresh = [a for a in seen if a.node not in self._feed_seen]
            if not mark_only and fresh:
                shards = sorted({a.shard for a in fresh})
                parts = await asyncio.gather(*(self._read_shard(s) for s in shards))
                for shard, part in zip(shards, parts, strict=True):
                    self._replace_shard(shard, part)
            self._feed_seen |= {a.node for a in seen}
            if len(self._feed_seen) > 4 * len(seen) + 1000:  # forget what has left the feed
                self._feed_seen = {a.node for a in seen}
            self._feed_etag = response.etag
            old = datetime.now(UTC) - FEED_KEEP
            stale = Graph()
            for item in seen:
                if item.at is None or item.at < old:
                    for triple in graph.triples((URIRef(item.node), None, None)):
                        stale.add(triple)
            if len(stale):
                with contextlib.suppress(PodError):  # another reader removed them first
                    await self.pod.patch(self.feed_url, deletes=stale)

    def _replace_shard(self, shard_url: str, part: GrantIndex) -> None:
        if self._index is None:
            return
        name = shard_url[len(self.index_container):]
        kept = {k: v for k, v in self._index.entries.items()
                if shard_name(k) != name or k in self._inserting}
        for key, view in part.entries.items():
            if key not in self._gone:
                kept[key] = view
        for resource, doc_url in part.documents.items():
            self._locations.setdefault(resource, doc_url)
        self._index = GrantIndex(kept, {**self._index.documents, **part.documents},
                                 self._index.problems)

    async def _announce(self, shard_url: str) -> None:
        """Name the shard in the feed; announcements queued while one is under way leave
        together in the next patch."""
        if not self.announce:
            return
        activity = uuid.uuid4().hex
        self._feed_seen.add(f"{self.feed_url}#{activity}")  # nothing to learn from our own
        await self._patch_shard(self.feed_url, announcement(
            self.feed_url, activity, shard_url, datetime.now(UTC)))

    async def _index_insert(self, view: GrantView, documents: dict[str, str]) -> None:
        """Insert-only patches: concurrent grants from several processes cannot overwrite
        each other's entries. The entries that queue up while a patch of their shard is under
        way leave together in the next one."""
        shard = self.shard_url(view.id)
        self._inserting[view.id] = self._inserting.get(view.id, 0) + 1
        try:
            await self._patch_shard(shard, entry_graph(shard, view, documents))
        finally:
            self._inserting[view.id] -= 1
            if not self._inserting[view.id]:
                del self._inserting[view.id]
        if self._index is not None:
            index = self._index
            known = index.entries.get(view.id)
            if known is not None and known.copies:
                view = replace(view, copies=known.copies)
            self._index = GrantIndex({**index.entries, view.id: view},
                                     {**index.documents, **documents}, index.problems)

    async def _record_copies(self, grant_ids: set[str], member: str, doc_url: str) -> None:
        """A member's new document carries copies of these grants: their entries say so, so
        that ending one ends its copy too."""
        known = list((await self._views_of(sorted(grant_ids))).values())
        await asyncio.gather(*(self._patch_shard(
            self.shard_url(v.id), copy_triples(self.shard_url(v.id), v.id, member, doc_url))
            for v in known))
        if self._index is not None:
            index = self._index
            entries = dict(index.entries)
            for view in known:
                current = entries.get(view.id, view)
                entries[view.id] = replace(current,
                                           copies=tuple(sorted({*current.copies, member})))
            self._index = GrantIndex(entries, {**index.documents, member: doc_url},
                                     index.problems)

    async def _views_of(self, grant_ids: Sequence[str]) -> dict[str, GrantView]:
        """These grants' entries: from memory once the index is read, else from their shards
        alone (a command that ends one grant reads one shard, not the whole index)."""
        if self._index is not None:
            return {i: self._index.entries[i] for i in grant_ids if i in self._index.entries}
        shards = sorted({self.shard_url(i) for i in grant_ids})
        found: dict[str, GrantView] = {}
        for part in await asyncio.gather(*(self._read_shard(u) for u in shards)):
            found.update({i: v for i, v in part.entries.items() if i in grant_ids})
        return found

    async def _patch_shard(self, shard_url: str, inserts: Graph) -> None:
        """Insert into one index document (a shard, or the feed), coalesced with the inserts
        that queue up while a patch of it is under way."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._shard_pending.setdefault(shard_url, []).append((inserts, done))
        writer = self._shard_writers.get(shard_url)
        if writer is None or writer.done():
            self._shard_writers[shard_url] = asyncio.create_task(self._drain_shard(shard_url))
        await done

    async def _drain_shard(self, shard_url: str) -> None:
        while self._shard_pending.get(shard_url):
            batch = self._shard_pending.pop(shard_url)
            combined = Graph()
            for graph, _ in batch:
                combined += graph
            try:
                await self.pod.patch(shard_url, inserts=combined)
                if shard_url != self.feed_url:
                    await self._announce(shard_url)
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
        self._shard_writers.pop(shard_url, None)

    async def _index_delete(self, grant_ids: Sequence[str],
                            views: Sequence[GrantView] = ()) -> None:
        """Forget these entries now, and delete their exact triples from the pod shortly after
        (within :data:`INDEX_LINGER` seconds, or at :meth:`flush`), one patch per shard: the
        grants have already ended in their documents, which are the truth about access, so the
        entries' deletion is kept off the moment a vendor first finds its access gone. An entry
        left behind (the process stopped first) is removed when the agent next starts."""
        if not grant_ids:
            return
        known = {v.id: v for v in views}
        for grant_id in grant_ids:
            self._deleting[grant_id] = known.get(grant_id)
        if self._index is not None:
            index = self._index
            self._index = GrantIndex(
                {k: v for k, v in index.entries.items() if k not in grant_ids},
                index.documents, index.problems)
        if self._deleter is None or self._deleter.done():
            self._hurry = asyncio.Event()
            self._deleter = asyncio.create_task(self._delete_queued())

    async def _delete_queued(self) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._hurry.wait(), INDEX_LINGER)
        while self._deleting:
            batch, self._deleting = self._deleting, {}
            try:
                missing = [i for i, v in batch.items() if v is None]
                known = {i: v for i, v in batch.items() if v is not None}
                if missing:
                    known.update(await self._views_of(missing))
                by_shard: dict[str, list[str]] = {}
                for grant_id in batch:
                    by_shard.setdefault(self.shard_url(grant_id), []).append(grant_id)
                await asyncio.gather(*(self._delete_entries(shard, ids, known)
                                       for shard, ids in by_shard.items()))
            except (PodError, AccessError) as exc:
                log.warning("index entries not deleted; removed at the next start",
                            extra={"grants": sorted(batch), "problem": str(exc)})

    async def _delete_entries(self, shard_url: str, grant_ids: list[str],
                              known: dict[str, GrantView]) -> None:
        triples = Graph()
        for grant_id in grant_ids:
            view = known.get(grant_id)
            if view is not None:
                triples += entry_triples(shard_url, view)
        if len(triples):
            response = await self.pod.request(
                "PATCH", shard_url, headers={"Content-Type": N3},
                body=n3_patch(deletes=triples), expect_ok=False)
            if response.status < 300:
                await self._announce(shard_url)
                return
            if response.status not in (409, 422):
                self.pod.raise_for_status(response)
        # Not as known here: delete what the shard holds for them, if anything.
        response = await self.pod.request("GET", shard_url, headers={"Accept": TURTLE},
                                          expect_ok=False)
        if response.status == 404:
            return
        self.pod.raise_for_status(response)
        graph = self._parse_or_none(response.body, shard_url)
        if graph is None:
            return
        triples = Graph()
        for grant_id in grant_ids:
            triples += triples_of(graph, shard_url, grant_id)
        if len(triples):
            with contextlib.suppress(PreconditionFailed):
                await self.pod.patch(shard_url, deletes=triples, if_match=response.etag)
                await self._announce(shard_url)

    # -- reading every governed document -------------------------------------------------------

    async def _all_grants(self) -> list[Grant]:
        """Every grant in every document the index names (the listing, and grants the index
        does not know)."""
        index = await self.index()
        resources = sorted(set(index.documents)
                           | {r for v in index.entries.values() for r in v.resources})
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

"""Access control on a live pod: the I/O edge over the pure WAC and ACP documents.

For every resource the access-control document is found from the resource's ``rel="acl"`` link
and its kind (WAC or ACP) from that document's ``rel="type"`` links; nothing is guessed from URLs.
Each change is a read-modify-write with If-Match (If-None-Match: * for a new document), tried again
after a 412. Changes to one document that arrive while a write is under way are coalesced into the
next write, so N concurrent grants on one resource cost about two writes, not N.

Which documents hold our grants is recorded in the pod itself (``<storage>vrm/grants``, one
``acl:accessControl`` triple per resource), so the grants in force can be listed and reconciled
after a restart without a database of our own.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from rdflib import Graph, URIRef
from rdflib.compare import isomorphic
from rdflib.namespace import Namespace

from vrm_agent.access.documents import AccessDocumentFormat, format_for
from vrm_agent.access.errors import AccessError
from vrm_agent.access.model import AccessMode, Grant, check_modes, expired, next_expiry
from vrm_agent.deadlines import NextDeadline
from vrm_agent.errors import NotFound, PodError
from vrm_agent.pod.client import PodClient, with_retry_on_conflict
from vrm_agent.pod.rdf import TURTLE

ACL = Namespace("http://www.w3.org/ns/auth/acl#")
INDEX_PATH = "vrm/grants"


class GrantNotFound(AccessError):
    """No grant with this id is in force."""


@dataclass(frozen=True)
class GrantView:
    """One grant as the person sees it: the same id across all the resources it covers."""

    id: str
    agent: str
    resources: tuple[str, ...]
    modes: frozenset[AccessMode]
    expires: datetime
    members: bool
    agreement: str | None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "agent": self.agent,
            "resources": list(self.resources),
            "modes": [m.label for m in AccessMode if m in self.modes],
            "members": self.members,
            "expires": self.expires.isoformat().replace("+00:00", "Z"),
            "agreement": self.agreement,
        }


def group_grants(grants: Iterable[Grant]) -> list[GrantView]:
    by_id: dict[str, list[Grant]] = {}
    for grant in grants:
        by_id.setdefault(grant.id, []).append(grant)
    views = []
    for grant_id, parts in by_id.items():
        first = parts[0]
        views.append(GrantView(
            grant_id, first.agent, tuple(sorted({g.resource for g in parts})),
            frozenset().union(*(g.modes for g in parts)), min(g.expires for g in parts),
            any(g.members for g in parts), first.agreement,
        ))
    return sorted(views, key=lambda v: (v.expires, v.id))


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
        self._indexed: set[str] | None = None
        self._index_lock = asyncio.Lock()
        self.writes = 0  # access-control documents written, for benchmarks and tests
        self.deadline = NextDeadline()  # the next grant to end

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
        await asyncio.gather(*(self._change(g.resource, add=[g]) for g in grants))
        self.deadline.add(until)
        return group_grants(grants)[0]

    async def revoke(self, grant_id: str) -> GrantView:
        """End a grant on every resource it covers; its access ends with the next request."""
        parts = [g for g in await self._all_grants() if g.id == grant_id]
        if not parts:
            raise GrantNotFound(f"no grant {grant_id} is in force")
        await asyncio.gather(*(self._change(g.resource, remove=[grant_id]) for g in parts))
        return group_grants(parts)[0]

    async def grants(
        self, *, resource: str | None = None, agent: str | None = None
    ) -> list[GrantView]:
        """The grants in force, read back from the pod's access-control documents."""
        found = await self._all_grants()
        views = group_grants(found)
        if resource is not None:
            views = [v for v in views if resource in v.resources]
        if agent is not None:
            views = [v for v in views if v.agent == agent]
        return views

    async def reconcile(
        self, now: datetime | None = None
    ) -> tuple[list[GrantView], datetime | None]:
        """One read of every grant: remove those whose end has come; returns what was removed
        and when the next grant still in force ends."""
        now = now or datetime.now(UTC)
        found = await self._all_grants()
        gone = expired(found, now)
        await asyncio.gather(*(self._change(g.resource, remove=[g.id]) for g in gone))
        return group_grants(gone), next_expiry(g for g in found if g not in gone)

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

    async def run_expiry(self, *, max_sleep: float = 60.0) -> None:
        """Remove grants when they end, until cancelled (the daemon runs this). A new grant
        only moves the next wake-up earlier; the documents are read when a grant is due, and
        every ``max_sleep`` seconds for grants written by another process."""
        while True:
            upcoming = None
            with contextlib.suppress(PodError):  # an unreachable pod: try again later
                _, upcoming = await self.reconcile()
            self.deadline.reset(upcoming)
            await self.deadline.sleep(max_sleep=max_sleep)

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
        if add:
            # The index entry goes out beside the document write, not after it, so a grant has
            # one write on its critical path. An entry for a write that then fails is harmless:
            # listing reads the documents themselves.
            await asyncio.gather(change.done, self._remember(resource_url, doc_url))
        else:
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

    # -- the index of governed resources -----------------------------------------------------

    async def _load_index(self) -> set[str]:
        if self._indexed is None:
            try:
                index = await self.pod.get_graph(self.index_url)
                self._indexed = {str(s) for s in index.graph.subjects(ACL.accessControl, None)}
            except NotFound:
                self._indexed = set()
        return self._indexed

    async def _remember(self, resource_url: str, doc_url: str) -> None:
        async with self._index_lock:
            if resource_url in await self._load_index():
                return
            triple = Graph()
            triple.add((URIRef(resource_url), ACL.accessControl, URIRef(doc_url)))
            await self.pod.patch(self.index_url, inserts=triple)
            assert self._indexed is not None
            self._indexed.add(resource_url)

    async def _all_grants(self) -> list[Grant]:
        self._indexed = None  # another process (CLI, daemon) may have added resources
        resources = sorted(await self._load_index())
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

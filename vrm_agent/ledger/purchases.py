"""The person's purchases as they sit in the pod: listed, filtered, removed, and imports undone.

Purchases live in chunk resources (one per vendor and year, see ``importing``). Removing some
rewrites each chunk that holds them with a conditional PUT (``If-Match``), or deletes it when
nothing is left, so a purchase another process adds meanwhile is never lost: the write fails and
is tried again on the fresh chunk.

Each imported purchase names the import that brought it (``prov:wasGeneratedBy``); the same
purchase in two files names both. Undoing an import removes its mark, and the purchases no other
import brought; a purchase imported by a version that marked nothing is left alone and counted.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import TypeVar

from rdflib import RDF, BNode, Graph, URIRef
from rdflib.namespace import DCTERMS, PROV
from rdflib.term import Node

from vrm_agent.errors import NotFound, PreconditionFailed, VrmAgentError
from vrm_agent.ledger.records import RecordError, Relationship, Vendor, check_record_id
from vrm_agent.ledger.store import Ledger, RecordNotFound, read_members
from vrm_agent.vocabulary import SCHEMA, VRM

C = TypeVar("C")
# Conditional writes lost to another writer are tried again this many times.
_ATTEMPTS = 4
# The shortest id prefix a person may type for a purchase or an import.
MIN_PREFIX = 6


class AmbiguousId(VrmAgentError):
    """An id prefix names more than one purchase or import."""


@dataclass(frozen=True)
class Purchase:
    """One purchase as read from its chunk; ``amount`` is negative for a refund."""

    id: str
    iri: str
    chunk: str
    vendor_id: str
    date: date
    description: str
    amount: Decimal
    currency: str
    category: str | None = None
    order_id: str | None = None
    imports: tuple[str, ...] = ()

    def to_json(self) -> dict[str, object]:
        return {
            "id": self.id, "vendor": self.vendor_id, "date": self.date.isoformat(),
            "description": self.description, "amount": str(self.amount),
            "currency": self.currency, "category": self.category, "order_id": self.order_id,
            "imports": [import_id_of(i) for i in self.imports], "resource": self.iri,
        }


@dataclass(frozen=True)
class ImportRecord:
    """One import as the pod remembers it."""

    id: str
    url: str
    finished: datetime | None
    chunks: tuple[str, ...]
    vendors: tuple[str, ...]

    def to_json(self) -> dict[str, object]:
        return {"id": self.id, "finished": self.finished.isoformat() if self.finished else None,
                "complete": self.finished is not None, "chunks": len(self.chunks),
                "vendors_created": len(self.vendors), "resource": self.url}


@dataclass(frozen=True)
class UndoReport:
    removed: int  # purchases gone from the ledger
    kept: int  # purchases another import also brought: only this import's mark went
    unattributed: int  # purchases in the same chunks that name no import (earlier versions)
    vendors_removed: tuple[str, ...]

    def to_json(self) -> dict[str, object]:
        return {"purchases_removed": self.removed, "purchases_kept": self.kept,
                "purchases_unattributed": self.unattributed,
                "vendors_removed": list(self.vendors_removed)}


def purchase_id_of(iri: str) -> str:
    return iri.rsplit("#t-", 1)[-1]


def import_id_of(iri: str) -> str:
    return iri.split("#", 1)[0].rsplit("/", 1)[-1]


def _date_of(value: object) -> date | None:
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        return None


def purchases_in(graph: Graph, chunk: str, vendor_id: str) -> list[Purchase]:
    """Pure: the purchases a chunk's graph holds (what does not read as one is skipped)."""
    found = []
    for node in set(graph.subjects(RDF.type, VRM.Transaction)):
        when = _date_of(graph.value(node, SCHEMA.orderDate))
        try:
            price = Decimal(str(graph.value(node, SCHEMA.price)))
        except InvalidOperation:
            continue
        if not isinstance(node, URIRef) or when is None or not price.is_finite():
            continue
        refund = graph.value(node, VRM.refund)
        if refund is not None and bool(refund.toPython()):  # type: ignore[attr-defined]
            price = -price

        def text(predicate: URIRef, node: Node = node) -> str | None:
            value = graph.value(node, predicate)
            return None if value is None else str(value)

        found.append(Purchase(
            purchase_id_of(str(node)), str(node), chunk, vendor_id, when,
            text(SCHEMA.description) or "", price, text(SCHEMA.priceCurrency) or "",
            text(SCHEMA.category), text(SCHEMA.orderNumber),
            tuple(sorted(str(o) for o in graph.objects(node, PROV.wasGeneratedBy))),
        ))
    return sorted(found, key=lambda p: (p.date, p.description, p.id))


def _closure(graph: Graph, node: Node) -> set[tuple[Node, Node, Node]]:
    """The triples about ``node`` and the blank nodes it leads to (its items)."""
    out: set[tuple[Node, Node, Node]] = set()
    todo, seen = [node], set()
    while todo:
        subject = todo.pop()
        if subject in seen:
            continue
        seen.add(subject)
        for triple in graph.triples((subject, None, None)):
            out.add(triple)
            if isinstance(triple[2], BNode):
                todo.append(triple[2])
    return out


def without_purchases(graph: Graph, iris: Iterable[str]) -> Graph:
    """Pure: the chunk's graph with the purchases (and their links from the chunk) removed."""
    gone: set[tuple[Node, Node, Node]] = set()
    for iri in iris:
        node = URIRef(iri)
        gone |= _closure(graph, node)
        gone |= set(graph.triples((None, DCTERMS.hasPart, node)))
    kept = Graph()
    for triple in graph:
        if triple not in gone:
            kept.add(triple)
    return kept


def _empty(graph: Graph) -> bool:
    return not any(graph.subjects(RDF.type, VRM.Transaction))


class Purchases:
    """Purchases in the ledger: read, removed, and imports undone."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.layout = ledger.layout
        self.pod = ledger.pod

    async def chunks(self, vendor_ids: Iterable[str] | None = None) -> dict[str, list[str]]:
        """Chunk URLs by vendor id."""
        ids = sorted(vendor_ids) if vendor_ids is not None else sorted(
            await self.ledger.ids(Vendor))

        async def of(vendor_id: str) -> list[str]:
            try:
                listed = await self.pod.list_container(self.layout.transactions(vendor_id))
            except NotFound:
                return []
            return [m for m in listed if self._is_chunk(m)]

        listed = await asyncio.gather(*(of(v) for v in ids))
        return dict(zip(ids, listed, strict=True))

    async def list(
        self, *, vendor_id: str | None = None, since: date | None = None,
        until: date | None = None,
    ) -> list[Purchase]:
        by_vendor = await self.chunks(None if vendor_id is None else [vendor_id])
        wanted = [(v, c) for v, chunks in by_vendor.items() for c in chunks
                  if _may_hold(c, since, until)]
        vendor_of = dict((c, v) for v, c in wanted)
        good, _ = await read_members([c for _, c in wanted], self.pod.get_graph,
                                     what="transaction document", reported=self.ledger.reported)
        found = [p for url, resource in good for p in purchases_in(resource.graph, url,
                                                                    vendor_of[url])]
        return sorted((p for p in found if (since is None or p.date >= since)
                       and (until is None or p.date <= until)),
                      key=lambda p: (p.date, p.vendor_id, p.description, p.id))

    async def resolve(self, prefixes: Sequence[str]) -> list[Purchase]:
        """The purchases named by ids or unambiguous id prefixes (at least MIN_PREFIX long)."""
        every = await self.list()
        chosen: dict[str, Purchase] = {}
        for prefix in prefixes:
            if len(prefix) < MIN_PREFIX:
                raise AmbiguousId(f"purchase id {prefix!r} is too short: give at least "
                                  f"{MIN_PREFIX} characters (`vrm-agent transactions` lists them)")
            matches = [p for p in every if p.id.startswith(prefix)]
            if not matches:
                raise RecordNotFound(f"no purchase {prefix} (`vrm-agent transactions` lists them)")
            if len(matches) > 1:
                raise AmbiguousId(f"purchase id {prefix!r} names {len(matches)} purchases; "
                                  "give more of it")
            chosen[matches[0].id] = matches[0]
        return list(chosen.values())

    async def remove(self, purchases: Sequence[Purchase]) -> int:
        """Remove the purchases from their chunks; the number removed."""
        by_chunk: dict[str, set[str]] = {}
        for purchase in purchases:
            by_chunk.setdefault(purchase.chunk, set()).add(purchase.iri)

        async def strip(chunk: str, iris: set[str]) -> int:
            def change(graph: Graph) -> tuple[Graph, int]:
                present = {i for i in iris if (URIRef(i), None, None) in graph}
                return without_purchases(graph, present), len(present)

            return await self._rewrite(chunk, change) or 0

        counts = await asyncio.gather(*(strip(c, i) for c, i in sorted(by_chunk.items())))
        return sum(counts)

    async def _rewrite(self, chunk: str, change: Callable[[Graph], tuple[Graph, C]]) -> C | None:
        """Apply ``change`` (graph -> (new graph, what it did)) to the chunk with a conditional
        write, reading it again when another writer got there first; an empty result deletes
        the chunk. What the change did, or None when the chunk is gone or stays as it was."""
        for _ in range(_ATTEMPTS):
            try:
                current = await self.pod.get_graph(chunk)
            except NotFound:
                return None
            updated, done = change(current.graph)
            if updated == current.graph or (len(updated) == len(current.graph)
                                            and all(t in current.graph for t in updated)):
                return None
            try:
                if _empty(updated):
                    await self.pod.delete(chunk, if_match=current.etag)
                else:
                    await self.ledger.write_graph(chunk, updated, if_match=current.etag)
                return done
            except PreconditionFailed:
                continue  # changed meanwhile: read it again
        raise VrmAgentError(f"{chunk} kept changing while purchases were removed from it; "
                            "try again")

    # -- imports -----------------------------------------------------------------------------

    async def imports(self) -> list[ImportRecord]:
        container = self.layout.container("imports")
        try:
            # Direct members with plain names only: what is written or deleted is the agent's own.
            urls = [m for m in await self.pod.list_container(container)
                    if m.startswith(container) and _valid_id(m[len(container):])]
        except NotFound:
            return []
        good, _ = await read_members(urls, self.pod.get_graph, what="import record",
                                     reported=self.ledger.reported)
        return sorted((self._import_of(url, r.graph) for url, r in good),
                      key=lambda i: (i.finished is None, i.finished or datetime.min, i.id))

    def _import_of(self, url: str, graph: Graph) -> ImportRecord:
        it = URIRef(url + "#it")
        made = sorted(str(o) for o in graph.objects(it, PROV.generated))
        finished = graph.value(it, PROV.endedAtTime)
        when = finished.toPython() if finished is not None else None  # type: ignore[attr-defined]
        return ImportRecord(
            import_id_of(url), url, when if isinstance(when, datetime) else None,
            tuple(m for m in made if self._is_chunk(m)),
            tuple(m for m in made if self._is_vendor(m)))

    # The import record is a document in the pod that other apps may write: what it names is
    # followed (read, rewritten, deleted with the person's token) only when it is one of the
    # agent's own chunk or vendor resources, by the layout's exact shape.
    def _is_chunk(self, url: str) -> bool:
        rest = url[len(self.layout.transactions()):]
        if not url.startswith(self.layout.transactions()) or rest.count("/") != 1:
            return False
        vendor_id, year = rest.split("/")
        return year.isdigit() and _valid_id(vendor_id)

    def _is_vendor(self, iri: str) -> bool:
        base = self.layout.container("vendors")
        rest = iri[len(base):]
        return iri.startswith(base) and rest.endswith("#it") and _valid_id(rest[:-3])

    async def resolve_import(self, prefix: str) -> ImportRecord:
        if len(prefix) < MIN_PREFIX:
            raise AmbiguousId(f"import id {prefix!r} is too short: give at least {MIN_PREFIX} "
                              "characters (`vrm-agent import list` shows them)")
        matches = [i for i in await self.imports() if i.id.startswith(prefix)]
        if not matches:
            raise RecordNotFound(f"no import {prefix} (`vrm-agent import list` shows them)")
        if len(matches) > 1:
            raise AmbiguousId(f"import id {prefix!r} names {len(matches)} imports; give more of it")
        return matches[0]

    async def undo(self, record: ImportRecord) -> UndoReport:
        """Take back what one import brought. The import's own record goes last, so an undo
        that is interrupted can be run again."""
        mark = URIRef(record.url + "#it")

        def change(graph: Graph) -> tuple[Graph, tuple[int, int, int]]:
            updated = Graph()
            for triple in graph:
                updated.add(triple)
            gone, kept, unattributed = [], 0, 0
            for node in set(graph.subjects(RDF.type, VRM.Transaction)):
                makers = set(graph.objects(node, PROV.wasGeneratedBy))
                if not makers:
                    unattributed += 1
                elif mark in makers:
                    updated.remove((node, PROV.wasGeneratedBy, mark))
                    if makers == {mark}:
                        gone.append(str(node))
                    else:
                        kept += 1
            return without_purchases(updated, gone), (len(gone), kept, unattributed)

        results = await asyncio.gather(*(self._rewrite(c, change) for c in record.chunks))
        removed, kept, unattributed = (sum(r[i] for r in results if r) for i in range(3))
        removed_vendors = await self._remove_emptied_vendors(record.vendors)
        with contextlib.suppress(NotFound):
            await self.pod.delete(record.url)
        return UndoReport(removed, kept, unattributed, tuple(removed_vendors))

    async def _remove_emptied_vendors(self, vendor_iris: Sequence[str]) -> list[str]:
        """Vendors the import created that have no purchase left and that the person has not
        given anything more since (a WebID, a web site, another name)."""
        removed = []
        for iri in vendor_iris:
            vendor_id = self.layout.vendor_id_of(iri)
            if (await self.chunks([vendor_id]))[vendor_id]:
                continue
            try:
                vendor = await self.ledger.get(Vendor, vendor_id)
            except (RecordNotFound, VrmAgentError):
                continue
            if vendor.webid or vendor.url:
                continue
            for kind in (Relationship, Vendor):
                with contextlib.suppress(RecordNotFound):
                    await self.ledger.delete(kind, vendor_id)
            with contextlib.suppress(NotFound, VrmAgentError):
                await self.pod.delete(self.layout.transactions(vendor_id))
            removed.append(vendor_id)
        return removed


def _valid_id(record_id: str) -> bool:
    try:
        check_record_id(record_id)
    except RecordError:
        return False
    return True


def _may_hold(chunk: str, since: date | None, until: date | None) -> bool:
    """Whether a chunk (named by its year) may hold purchases between the dates."""
    tail = chunk.rsplit("/", 1)[-1]
    if not tail.isdigit():
        return True
    year = int(tail)
    return (since is None or year >= since.year) and (until is None or year <= until.year)

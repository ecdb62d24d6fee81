"""Bulk import of transactions into the pod, in few writes, idempotently, resumably.

Transactions are grouped into one chunk resource per vendor and year. A new chunk is one
``PUT If-None-Match: *``; a chunk that exists gets an N3 Patch that only inserts, and since every
transaction's IRI and triples are derived from its content, inserting again changes nothing:
importing the same file twice adds nothing twice. Progress is kept in the pod
(``vrm/imports/<digest of the file>``) every few chunks, so an interrupted import skips what is
done when it is run again.

Every transaction is checked against the transaction shape before anything is written, by the
checks compiled from the published SHACL shapes (pyshacl is the reference; it is too slow for
100,000 records). Chunks are written as Turtle text directly, for the same reason.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from rdflib import RDF, Graph, Literal, URIRef
from rdflib.namespace import DCTERMS, PROV, XSD

from vrm_agent.errors import PreconditionFailed
from vrm_agent.ledger.layout import PodLayout
from vrm_agent.ledger.records import Relationship, Vendor
from vrm_agent.ledger.store import Ledger
from vrm_agent.ledger.transactions import (
    FileFormat,
    ImportFileError,
    RowError,
    Transaction,
    hashed_vendor_id,
    vendor_id_for,
    vendor_key,
)
from vrm_agent.pod.rdf import N3, TURTLE
from vrm_agent.vocabulary import CHANNELS, SCHEMA, VRM, shapes_graph
from vrm_agent.vocabulary.compiled import Record, Term, validate_records

PROGRESS_EVERY = 16  # chunks between two progress records

_PREFIXES = (
    "@prefix schema: <http://schema.org/>.\n"
    "@prefix vrm: <https://w3id.org/vrm-agent/ns#>.\n"
    "@prefix xsd: <http://www.w3.org/2001/XMLSchema#>.\n"
    "@prefix dct: <http://purl.org/dc/terms/>.\n"
    "@prefix prov: <http://www.w3.org/ns/prov#>.\n"
)
_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def turtle_string(text: str) -> str:
    out = []
    for char in text:
        if char in _ESCAPES:
            out.append(_ESCAPES[char])
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.append(f"\\u{ord(char):04X}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


@dataclass(frozen=True)
class ChunkKey:
    vendor_id: str
    year: int


@dataclass
class ImportReport:
    transactions: int = 0
    chunks_written: int = 0
    chunks_skipped: int = 0
    vendors_created: int = 0
    pod_writes: int = 0
    row_errors: list[RowError] = field(default_factory=list)
    already_complete: bool = False


def transaction_iri(chunk_url: str, transaction: Transaction) -> str:
    return f"{chunk_url}#t-{transaction.id}"


def plain_record(transaction: Transaction, seller: str, made_by: str | None = None) -> Record:
    """The transaction as plain terms: what the compiled shape checks and the writer writes.
    ``made_by`` is the import that brings it (what `import undo` takes back)."""
    record: dict[str, list[Term]] = {
        str(RDF.type): [Term.iri(str(VRM.Transaction))],
        str(SCHEMA.orderDate): [Term.literal(transaction.date.isoformat(), str(XSD.date))],
        str(SCHEMA.seller): [Term.iri(seller)],
        str(SCHEMA.description): [Term.literal(transaction.description)],
        str(SCHEMA.price): [Term.literal(str(abs(transaction.amount)), str(XSD.decimal))],
        str(SCHEMA.priceCurrency): [Term.literal(transaction.currency)],
    }
    if transaction.amount < 0:
        record[str(VRM.refund)] = [Term.literal("true", str(XSD.boolean))]
    if transaction.channel:
        record[str(VRM.channel)] = [Term.iri(str(CHANNELS[transaction.channel]))]
    if transaction.order_id:
        record[str(SCHEMA.orderNumber)] = [Term.literal(transaction.order_id)]
    if transaction.category:
        record[str(SCHEMA.category)] = [Term.literal(transaction.category)]
    if made_by:
        record[str(PROV.wasGeneratedBy)] = [Term.iri(made_by)]
    return record


def term_text(term: Term) -> str:
    if term.kind == "iri":
        return f"<{term.value}>"
    if term.datatype in (None, str(XSD.string)):
        return turtle_string(term.value)
    if term.datatype == str(XSD.boolean):
        return term.value
    return f"{turtle_string(term.value)}^^<{term.datatype}>"


def chunk_statements(chunk_url: str, records: dict[str, Record]) -> str:
    """Turtle statements (no prefixes) for a chunk node and its transactions."""
    lines = [f"<{chunk_url}> a vrm:TransactionChunk;\n  dct:hasPart "
             + ", ".join(f"<{iri}>" for iri in records) + "."]
    for iri, record in records.items():
        parts = [f"<{p}> " + ", ".join(term_text(t) for t in terms)
                 for p, terms in record.items()]
        lines.append(f"<{iri}> " + ";\n  ".join(parts) + ".")
    return "\n".join(lines) + "\n"


def group_into_chunks(
    transactions: Iterable[Transaction], layout: PodLayout,
    vendor_ids: Mapping[str, str] | None = None,
) -> dict[ChunkKey, list[Transaction]]:
    """Transactions by vendor and year; ``vendor_ids`` (by :func:`vendor_key`) says which vendor
    a name goes to, the id the name derives otherwise."""
    chunks: dict[ChunkKey, list[Transaction]] = defaultdict(list)
    for transaction in transactions:
        vendor_id = (vendor_ids or {}).get(transaction.vendor_key) or transaction.vendor_id
        chunks[ChunkKey(vendor_id, transaction.date.year)].append(transaction)
    return dict(chunks)


def resolve_vendor_ids(
    names: Iterable[str], existing: Mapping[str, str | None]
) -> dict[str, str]:
    """Which vendor id each name's purchases go to (by :func:`vendor_key`), given the vendors
    the ledger holds (id -> name; None when its document could not be read).

    A name the ledger already holds goes to that vendor (its derived id first, if two share the
    name); any other name to its derived id, unless another vendor holds that id, then to the
    hashed form. Two names never share an id.
    """
    holders: dict[str, list[str]] = defaultdict(list)
    for vendor_id, name in sorted(existing.items()):
        if name is not None:
            holders[vendor_key(name)].append(vendor_id)
    taken = set(existing)
    resolved: dict[str, str] = {}
    for name in names:
        key = vendor_key(name)
        if key in resolved:
            continue
        derived = vendor_id_for(name)
        if key in holders:
            ids = holders[key]
            resolved[key] = derived if derived in ids else ids[0]
            continue
        candidates = [derived] if "--" in derived else [derived, hashed_vendor_id(name)]
        free = next((c for c in candidates if c not in taken), None)
        if free is None:
            raise ImportFileError(
                f"vendor {name!r}: the id {candidates[-1]} is taken by another vendor; add "
                f"this one first with 'vrm-agent vendors add NAME --id ID'")
        taken.add(free)
        resolved[key] = free
    return resolved


def file_digest(
    content: bytes, mapping: dict[str, str] | None = None, file_format: FileFormat | None = None
) -> str:
    """The import's identity: the file, its column mapping and how it was read (the same file
    read with other dates is another import)."""
    hasher = hashlib.sha256(content)
    hasher.update(repr(sorted((mapping or {}).items())).encode())
    if file_format is not None:
        hasher.update(repr((file_format.encoding, file_format.delimiter, file_format.date_format,
                            file_format.decimal_comma)).encode())
    return hasher.hexdigest()[:32]


class TransactionImporter:
    def __init__(self, ledger: Ledger, *, concurrency: int = 8) -> None:
        self.ledger = ledger
        self.pod = ledger.pod
        self.layout = ledger.layout
        self.concurrency = concurrency

    async def run(
        self,
        transactions: Sequence[Transaction],
        *,
        digest: str,
        progress: Callable[[int], None] | None = None,
    ) -> ImportReport:
        report = ImportReport(transactions=len(transactions))
        writes_before = self.pod.request_counts["PUT"] + self.pod.request_counts["PATCH"]
        progress_url = self.layout.imports(digest)
        done, complete = await self._read_progress(progress_url)
        if complete:
            report.already_complete = True
            return report
        vendor_ids = await self._vendor_ids(transactions)
        chunks = group_into_chunks(transactions, self.layout, vendor_ids)
        # Everything is checked before the first write: a bad record stops the import whole.
        prepared = {key: self._prepare(key, items, progress_url + "#it")
                    for key, items in chunks.items()}
        created = await self._ensure_vendors(transactions, vendor_ids)
        report.vendors_created = len(created)
        done |= {self.layout.vendor_iri(v) for v in created}
        pending = [key for key in chunks if self.layout.transaction_chunk(
            key.vendor_id, key.year) not in done]
        report.chunks_skipped = len(chunks) - len(pending)
        if progress:
            progress(sum(len(chunks[k]) for k in chunks if k not in pending))
        limit = asyncio.Semaphore(self.concurrency)
        lock = asyncio.Lock()
        since_record = 0

        async def write(key: ChunkKey) -> None:
            nonlocal since_record
            url, statements = prepared[key]
            async with limit:
                await self._write_chunk(url, statements)
            async with lock:
                done.add(url)
                report.chunks_written += 1
                since_record += 1
                if since_record >= PROGRESS_EVERY:
                    since_record = 0
                    await self._write_progress(progress_url, digest, done, complete=False)
            if progress:
                progress(len(chunks[key]))

        # Every write under way is let finish before a failure is raised: a progress record
        # still in flight would otherwise land after the caller has given up (or resumed).
        results = await asyncio.gather(*(write(key) for key in pending), return_exceptions=True)
        failure = next((r for r in results if isinstance(r, BaseException)), None)
        if failure is not None:
            raise failure
        await self._write_progress(progress_url, digest, done, complete=True)
        report.pod_writes = (self.pod.request_counts["PUT"] + self.pod.request_counts["PATCH"]
                             - writes_before)
        return report

    def _prepare(self, key: ChunkKey, items: list[Transaction], made_by: str
                 ) -> tuple[str, str]:
        url = self.layout.transaction_chunk(key.vendor_id, key.year)
        seller = self.layout.vendor_iri(key.vendor_id)
        records = {transaction_iri(url, t): plain_record(t, seller, made_by) for t in items}
        shapes = shapes_graph()
        validate_records(shapes, str(VRM.Transaction), records)
        chunk = {str(RDF.type): [Term.iri(str(VRM.TransactionChunk))],
                 str(DCTERMS.hasPart): [Term.iri(iri) for iri in records]}
        types = {iri: {str(VRM.Transaction)} for iri in records}
        validate_records(shapes, str(VRM.TransactionChunk), {url: chunk}, types)
        return url, chunk_statements(url, records)

    async def _write_chunk(self, url: str, statements: str) -> None:
        try:
            await self.pod.put(url, _PREFIXES + statements, content_type=TURTLE,
                               if_none_match="*")
        except PreconditionFailed:
            # The chunk exists (an earlier import): insert only; existing triples stay as they are.
            patch = ("@prefix solid: <http://www.w3.org/ns/solid/terms#>.\n" + _PREFIXES
                     + "_:patch a solid:InsertDeletePatch; solid:inserts {\n"
                     + statements + "}.\n")
            await self.pod.request("PATCH", url, headers={"Content-Type": N3}, body=patch)

    async def _vendor_ids(self, transactions: Sequence[Transaction]) -> dict[str, str]:
        """Vendor ids by name: the ledger's vendors first, so a vendor added by hand (or by
        an earlier import) keeps its purchases."""
        ids = await self.ledger.ids(Vendor)
        vendors = {vendor.id: vendor.name for vendor in await self.ledger.list(Vendor)}
        existing: dict[str, str | None] = {vendor_id: vendors.get(vendor_id) for vendor_id in ids}
        return resolve_vendor_ids((t.vendor for t in transactions), existing)

    async def _ensure_vendors(
        self, transactions: Sequence[Transaction], vendor_ids: Mapping[str, str]
    ) -> list[str]:
        """Create the vendors the ledger lacks; their ids (the import record names them, so
        that undoing the import can take them back)."""
        first_seen: dict[str, Transaction] = {}
        for transaction in transactions:
            vendor_id = vendor_ids[transaction.vendor_key]
            seen = first_seen.get(vendor_id)
            if seen is None or transaction.date < seen.date:
                first_seen[vendor_id] = transaction
        existing = await self.ledger.ids(Vendor)
        missing = [(vendor_id, t) for vendor_id, t in sorted(first_seen.items())
                   if vendor_id not in existing]
        await asyncio.gather(*(self._create_vendor(vendor_id, t) for vendor_id, t in missing))
        return [vendor_id for vendor_id, _ in missing]

    async def _create_vendor(self, vendor_id: str, transaction: Transaction) -> None:
        await self.ledger.save(Vendor(vendor_id, transaction.vendor))
        await self.ledger.save(Relationship(vendor_id, "customer", since=transaction.date))

    async def _read_progress(self, url: str) -> tuple[set[str], bool]:
        response = await self.pod.request("GET", url, headers={"Accept": TURTLE},
                                          expect_ok=False)
        if response.status == 404:
            return set(), False
        self.pod.raise_for_status(response)
        graph = Graph().parse(data=response.body, format="turtle", publicID=url)
        it = URIRef(url + "#it")
        return ({str(o) for o in graph.objects(it, PROV.generated)},
                graph.value(it, PROV.endedAtTime) is not None)

    async def _write_progress(
        self, url: str, digest: str, done: set[str], *, complete: bool
    ) -> None:
        graph = Graph()
        it = URIRef(url + "#it")
        graph.add((it, RDF.type, PROV.Activity))
        graph.add((it, DCTERMS.identifier, Literal(f"sha256:{digest}")))
        for chunk in sorted(done):
            graph.add((it, PROV.generated, URIRef(chunk)))
        if complete:
            graph.add((it, PROV.endedAtTime, Literal(datetime.now(UTC), datatype=XSD.dateTime)))
        await self.ledger.write_graph(url, graph)

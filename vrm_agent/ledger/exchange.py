"""Everything the agent keeps as one file (TriG, or JSON-LD or N-Quads by extension), and back
into a pod that holds no ledger (docs/pod-layout.md, "Backup and restore", says what and why).

Each pod resource becomes one named graph named by its URL. A negotiation record, which the agent
keeps as JSON-LD and reads back as such, also travels as its exact text (a literal in the default
graph), so the restored record is the document the agent wrote, not the pod server's rendering of
it. The export says which storage it came from, so a restore into another pod moves the IRIs under
that storage to the new one, except inside what was signed: an agreement stays exactly as both
parties signed it, so its proofs and content hash still hold.

The grant index is not copied as data: it describes access-control documents the new pod does not
have. The restore grants again, through :mod:`vrm_agent.access`, each grant still in force, with
its id, agent, resources, modes, end and agreement, so the vendor reads as before and the index
names the new pod's own documents. Grants already past their end are indexed without a rule, so
the next expiry pass ends them and their agreements as the old pod's would have. The feed of index
changes is transient and is not kept.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rdflib import BNode, Dataset, Graph, Literal, URIRef
from rdflib.namespace import PROV
from rdflib.term import Node

from vrm_agent.access.index import (
    FEED_NAME,
    INDEX_CONTAINER,
    LEGACY_INDEX,
    GrantView,
    entry_triples,
    is_shard_name,
    read_index,
)
from vrm_agent.errors import NotFound, VrmAgentError
from vrm_agent.ledger.store import Ledger, read_members
from vrm_agent.linkeddata.limits import DOCUMENT, InputRefused, load_json
from vrm_agent.linkeddata.rdf import expand, refuse_embedded_contexts
from vrm_agent.vocabulary import VRM
from vrm_agent.vocabulary.compiled import validate_graph
from vrm_agent.vocabulary.validation import ShapeViolation

FORMATS = {".trig": "trig", ".jsonld": "json-ld", ".json": "json-ld", ".nq": "nquads"}
SOURCE = URIRef("urn:vrm-agent:export")
# <resource> STORED_AS "the document's exact text": resources the agent keeps as JSON-LD.
STORED_AS = URIRef("urn:vrm-agent:export#storedAs")
JSON_LD = "application/ld+json"
# Records written before one schema.org namespace was used everywhere come back in http form.
SCHEMA_HTTPS, SCHEMA_HTTP = "https://schema.org/", "http://schema.org/"
RESTORE_CONCURRENCY = 8


class ExchangeError(VrmAgentError):
    """An export file cannot be written or read, or the pod is not ready for a restore."""


@dataclass
class RestoreReport:
    resources: int
    triples: int
    grants: int = 0  # grants in force put back on the new pod
    ended_grants: int = 0  # past their end: indexed for the expiry pass, not granted
    dropped_grants: tuple[str, ...] = ()  # on resources the file does not hold, or outside it
    not_granted: tuple[str, ...] = ()  # in force in the file, not granted again (not asked)


def format_for(path: Path) -> str:
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ExchangeError(f"{path.name}: use .trig, .jsonld or .nq")
    return fmt


def _feed(storage: str) -> str:
    return storage + INDEX_CONTAINER + FEED_NAME


def _is_index(url: str, storage: str) -> bool:
    container = storage + INDEX_CONTAINER
    return (url.startswith(container) and is_shard_name(url[len(container):])) \
        or url == storage + LEGACY_INDEX


async def ledger_resources(ledger: Ledger) -> list[str]:
    """Every resource under vrm/: the records, the audit log and the grant index (and the
    single index document of earlier versions, if the pod still has one), but not the index's
    feed of changes, a minute's notice to a running daemon and nothing to restore."""
    found: list[str] = []
    feed = _feed(ledger.layout.storage)

    async def walk(container: str) -> None:
        try:
            members = await ledger.pod.list_container(container)
        except NotFound:
            return
        subcontainers = [m for m in members if m.endswith("/")]
        found.extend(m for m in members if not m.endswith("/") and m != feed)
        await asyncio.gather(*(walk(c) for c in subcontainers))

    await walk(ledger.layout.root)
    return sorted(found)


async def export_ledger(ledger: Ledger) -> Dataset:
    dataset = Dataset()
    urls = await ledger_resources(ledger)
    graphs, _ = await read_members(urls, ledger.pod.get_graph, what="RDF document",
                                   reported=ledger.reported)
    negotiations = ledger.layout.container("negotiations")

    async def stored_text(url: str) -> str:
        return (await ledger.pod.get(url, accept=JSON_LD)).body.decode("utf-8")

    kept_as_json = [url for url, _ in graphs if url.startswith(negotiations)]
    texts, _ = await read_members(kept_as_json, stored_text, what="negotiation record",
                                  reported=ledger.reported)
    for url, resource in graphs:
        named = dataset.graph(URIRef(url))
        for triple in resource.graph:
            named.add(triple)
    for url, text in texts:
        dataset.default_graph.add((URIRef(url), STORED_AS, Literal(text)))
    dataset.default_graph.add((SOURCE, PROV.wasDerivedFrom, URIRef(ledger.layout.storage)))
    return dataset


def write_export(dataset: Dataset, path: Path) -> None:
    fmt = format_for(path)
    tmp = path.with_name(path.name + ".partial")
    try:
        dataset.serialize(destination=str(tmp), format=fmt)
        tmp.replace(path)  # a finished file or none at all
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise ExchangeError(f"cannot write {path}: {exc}") from exc


def read_export(path: Path) -> Dataset:
    fmt = format_for(path)
    dataset = Dataset()
    try:
        if fmt == "json-ld":
            dataset.parse(data=_expanded_json(path), format=fmt)
        else:
            dataset.parse(str(path), format=fmt)
    except FileNotFoundError:
        raise ExchangeError(f"no such file: {path}") from None
    except ExchangeError:
        raise
    except Exception as exc:  # rdflib's parsers raise many types for bad input
        raise ExchangeError(f"{path.name} is not a readable {fmt} file "
                            f"({type(exc).__name__})") from exc
    return dataset


def _expanded_json(path: Path) -> str:
    """A JSON-LD file in expanded form, through the bundled-only loader: a file to import may
    come from anywhere, and rdflib's own parser would fetch whatever contexts it names."""
    try:
        data = json.loads(path.read_bytes())
        expanded = expand(data)
        refuse_embedded_contexts(expanded)
    except (ValueError, RecursionError, InputRefused) as exc:
        problem = str(exc) if isinstance(exc, InputRefused) else "not JSON"
        raise ExchangeError(f"{path.name} is not a readable JSON-LD file: {problem}") from exc
    return json.dumps(expanded)


# -- moving IRIs to the new storage (pure) -------------------------------------------------------


def _rebaser(old: str, new: str) -> Callable[[Node], Node]:
    def rebase(term: Node) -> Node:
        if not isinstance(term, URIRef):
            return term
        text = str(term)
        if old != new and text.startswith(old):
            return URIRef(new + text[len(old):])
        if text.startswith(SCHEMA_HTTPS):
            return URIRef(SCHEMA_HTTP + text[len(SCHEMA_HTTPS):])
        return term

    return rebase


def _signed_nodes(graph: Graph) -> set[Node]:
    """The agreement an agreement record holds, and every blank node under it: the text both
    parties signed, which a restore must not change."""
    signed: set[Node] = set()
    pending: list[Node] = [p for p in graph.objects(None, VRM.policy)]
    while pending:
        node = pending.pop()
        if node in signed:
            continue
        signed.add(node)
        pending += [o for o in graph.objects(node, None) if isinstance(o, BNode)]
    return signed


def rebased_graph(graph: Graph, rebase: Callable[[Node], Node]) -> Graph:
    signed = _signed_nodes(graph)
    out = Graph()
    for s, p, o in graph:
        out.add((s, p, o) if s in signed
                else (rebase(s), rebase(p), rebase(o)))  # type: ignore[arg-type]
    return out


def rebased_json(data: Any, old: str, new: str) -> Any:
    """A stored negotiation with every string that starts with the old storage moved, except
    in its signed agreement and its contexts."""
    def move(value: Any) -> Any:
        if isinstance(value, str):
            return new + value[len(old):] if old != new and value.startswith(old) else value
        if isinstance(value, list):
            return [move(v) for v in value]
        if isinstance(value, dict):
            return {k: move(v) for k, v in value.items()}
        return value

    return {k: v if k in ("agreement", "@context") else move(v) for k, v in data.items()}


# -- what a file would restore, checked before anything is written (pure) ------------------------


@dataclass
class RestorePlan:
    graphs: dict[str, Graph] = field(default_factory=dict)  # written as Turtle
    documents: dict[str, str] = field(default_factory=dict)  # written as JSON-LD, verbatim
    grants: list[GrantView] = field(default_factory=list)
    # Entries naming something outside the pod: another app wrote them (the agent never
    # follows them), so they are left behind, and said, rather than refusing the whole backup.
    foreign: list[str] = field(default_factory=list)
    # resource -> the shards that named its access-control document (re-found on the new pod)
    governed: dict[str, set[str]] = field(default_factory=dict)

    @property
    def resources(self) -> set[str]:
        return set(self.graphs) | set(self.documents)

    def holds(self, resource: str, members: bool) -> bool:
        """Whether the restore writes this resource (a container: any member of it)."""
        written = self.resources
        return resource in written or ((members or resource.endswith("/")) and any(
            r.startswith(resource) for r in written))


# A resource the restore may write: one or two segments under vrm/ (a kind, maybe a vendor's
# purchases, and a name), each a plain name: no dot segment, no percent-encoding, no '?' or '#'
# that a client would resolve or strip, so the URL written is the URL checked. Access-control
# and description documents are never written from a file.
_SEGMENT = r"[^\s/?#%\\<>\"{}|^`.][^\s/?#%\\<>\"{}|^`]{0,127}"
_LEDGER_PATH = re.compile(rf"{_SEGMENT}/(?:{_SEGMENT}/)?{_SEGMENT}")
_ACCESS_SUFFIXES = (".acl", ".acr", ".meta")


def plan_restore(dataset: Dataset, storage: str) -> RestorePlan:
    """Every resource the file would write, with its IRIs moved to ``storage``, each checked:
    a record must meet the shapes, a negotiation must read back, a grant entry must be whole
    and name only this storage. Raises ExchangeError naming the first resource that fails."""
    source = dataset.default_graph.value(SOURCE, PROV.wasDerivedFrom)
    if source is None:
        raise ExchangeError("the file is not a vrm-agent export (no source storage)")
    old = str(source)
    rebase = _rebaser(old, storage)
    stored = {str(s): str(o) for s, o in dataset.default_graph.subject_objects(STORED_AS)
              if isinstance(o, Literal)}
    root = storage + "vrm/"
    negotiations = root + "negotiations/"
    plan = RestorePlan()
    for named in dataset.graphs():
        if named.identifier == dataset.default_graph.identifier or len(named) == 0:
            continue
        url = str(rebase(named.identifier))
        if not url.startswith(root) or not _LEDGER_PATH.fullmatch(url[len(root):]) \
                or url.endswith(_ACCESS_SUFFIXES):
            raise ExchangeError(f"{named.identifier} is not a ledger resource")
        if url == _feed(storage):
            continue
        graph = rebased_graph(named, rebase)
        try:
            if _is_index(url, storage):
                _plan_index(plan, url, graph, storage)
                continue
            validate_graph(graph)
        except ShapeViolation as exc:
            raise ExchangeError(f"{named.identifier} is not a valid record: "
                                f"{str(exc).splitlines()[0]}") from exc
        if url.startswith(negotiations):
            plan.documents[url] = _negotiation_text(url, stored.get(str(named.identifier)),
                                                    old, storage)
        else:
            plan.graphs[url] = graph
    return plan


def _negotiation_text(url: str, text: str | None, old: str, new: str) -> str:
    from vrm_agent.daemon.negotiations import NEGOTIATION_ID
    from vrm_agent.negotiation.records import NegotiationRecord
    from vrm_agent.negotiation.wire import MalformedMessage

    record_id = url.rsplit("/", 1)[-1]
    if not NEGOTIATION_ID.fullmatch(record_id):
        raise ExchangeError(f"{url} is not a negotiation record the agent could have written")
    if text is None:
        raise ExchangeError(f"{url}: the file lacks the negotiation's stored form (export "
                            "again with this version of vrm-agent)")
    try:
        data = load_json(text, DOCUMENT)
        if not isinstance(data, dict):
            raise MalformedMessage("it is not a JSON object")
        moved = rebased_json(data, old, new)
        NegotiationRecord.from_json(moved, record_id=record_id)
    except (InputRefused, MalformedMessage) as exc:
        raise ExchangeError(f"{url} is not a readable negotiation record: {exc}") from exc
    return json.dumps(moved)


def _plan_index(plan: RestorePlan, url: str, graph: Graph, storage: str) -> None:
    index = read_index(url, graph)
    if index.problems:
        raise ExchangeError(f"{url} holds a grant entry that cannot be read: "
                            f"{index.problems[0]}")
    for view in index.entries.values():
        outside = [r for r in (*view.resources, *view.copies) if not r.startswith(storage)]
        if outside:
            plan.foreign.append(view.id)
            continue
        plan.grants.append(view)
    if not url.endswith(LEGACY_INDEX):  # a legacy document's places go with its grants
        for resource in index.documents:
            if resource.startswith(storage):
                plan.governed.setdefault(resource, set()).add(url)


# -- the restore (I/O) ---------------------------------------------------------------------------


async def restore_ledger(ledger: Ledger, dataset: Dataset, *, owner: str,
                         now: datetime | None = None,
                         grant_again: bool = False) -> RestoreReport:
    """Write every resource of the file, then put the grants still in force back; refuses a pod
    that already has a ledger, and a file any part of which fails its checks, before the first
    write. ``owner`` is the new pod's owner, who keeps control of every document."""
    from vrm_agent.access.service import AccessControl

    storage = ledger.layout.storage
    plan = plan_restore(dataset, storage)
    # What the agent writes by itself on a new pod (the starter terms, the category map) does
    # not make it a ledger: the restored copies replace them.
    own = (ledger.layout.container("terms"), ledger.layout.container("categories"))
    present = await ledger_resources(ledger)
    if [url for url in present if not url.startswith(own)]:
        raise ExchangeError(f"{ledger.layout.root} already holds a ledger; restore needs an "
                            "empty one")
    limit = asyncio.Semaphore(RESTORE_CONCURRENCY)

    written: list[str] = []

    async def put(url: str, body: Graph | str) -> None:
        async with limit:
            # The agent's own starter copies (listed just now) give way; nothing else may exist.
            create = None if url in present else "*"
            if isinstance(body, Graph):
                await ledger.pod.put_graph(url, body, if_none_match=create)
            else:
                await ledger.pod.put(url, body, content_type=JSON_LD, if_none_match=create)
            if create:
                written.append(url)

    results = await asyncio.gather(*(put(u, g) for u, g in plan.graphs.items()),
                                   *(put(u, d) for u, d in plan.documents.items()),
                                   return_exceptions=True)
    failure = next((r for r in results if isinstance(r, BaseException)), None)
    if failure is not None:
        # Nothing half-written: what this restore created goes again, so it can be retried.
        await asyncio.gather(*(ledger.pod.delete(url) for url in written),
                             return_exceptions=True)
        if isinstance(failure, VrmAgentError):
            raise ExchangeError(f"the restore could not write the pod ({failure}); nothing "
                                "was kept, try again") from failure
        raise failure
    # Starter copies the person had removed before the export stay removed.
    await asyncio.gather(*(ledger.pod.delete(url) for url in present
                           if url not in plan.resources))

    now = now or datetime.now(UTC)
    access = AccessControl(ledger.pod, owner_webid=owner, storage=storage)
    # The restored audit log already says when each grant was made: granting it again here is
    # no new event.
    access.handled_elsewhere = lambda view: True
    live = [v for v in plan.grants if v.expires > now and all(
        plan.holds(r, v.members) for r in v.resources)]
    ended = [v for v in plan.grants if v.expires <= now]
    dropped = sorted([v.id for v in plan.grants if v not in live and v not in ended]
                     + plan.foreign)
    # A backup file may come from anywhere: it never opens the pod to anyone unless the person
    # asks for it, and even then only as an agreement restored in force says, or as a share.
    in_force = [v for v in live if grant_again and _carried(v, plan, storage)]
    not_granted = tuple(sorted(v.id for v in live if v not in in_force))
    # All at once: grants on one document leave together in its next write.
    await asyncio.gather(*(access.grant(
        view.agent, list(view.resources), view.modes, until=view.expires, members=view.members,
        agreement=view.agreement, grant_id=view.id, now=view.created or now)
        for view in in_force))
    await asyncio.gather(*(ledger.pod.patch(
        access.shard_url(v.id), inserts=entry_triples(access.shard_url(v.id), v))
        for v in ended))
    await _place_documents(ledger, access, plan)
    await access.flush()
    return RestoreReport(len(plan.resources),
                         sum(len(g) for g in plan.graphs.values()) + len(plan.documents),
                         len(in_force), len(ended), tuple(dropped), not_granted)


def _carried(view: GrantView, plan: RestorePlan, storage: str) -> bool:
    """Whether a grant from the file may be granted again: each resource a plain URL inside
    the storage, never the storage root nor the agent's records root; and, for a grant that
    carries an agreement, a restored negotiation in force for the same vendor that lists
    every resource until at least the grant's end."""
    from vrm_agent.negotiation.protocol import State
    from vrm_agent.negotiation.records import NegotiationRecord

    root = storage + "vrm/"
    for resource in view.resources:
        rest = resource[len(storage):]
        if not resource.startswith(storage) or resource in (storage, root) or not rest or \
                any(part in (".", "..") or "%" in part for part in rest.split("/")) or \
                "?" in resource or "#" in resource:
            return False
    if view.agreement is None:
        return True
    # The grant names the negotiation by its URL at the agent; the pod keeps it by its id.
    negotiation_id = view.agreement.rstrip("/").rsplit("/", 1)[-1]
    text = plan.documents.get(f"{root}negotiations/{negotiation_id}")
    if text is None:
        return False
    record = NegotiationRecord.from_json(json.loads(text), record_id=negotiation_id)
    if record.vendor != view.agent or record.state not in (
            State.AGREED, State.VERIFIED, State.FINALIZED):
        return False
    agreed = {r: a.until for a in record.access for r in a.resources}
    return all(r in agreed and agreed[r] >= view.expires for r in view.resources)


async def _place_documents(ledger: Ledger, access: Any, plan: RestorePlan) -> None:
    """Each restored resource the old index knew the access-control document of gets the new
    pod's own document in the same shard (the agent finds it by the pod's Link header)."""
    from vrm_agent.access._rdf import ACL

    by_shard: dict[str, Graph] = {}
    wanted = sorted(r for r in plan.governed if plan.holds(r, r.endswith("/")))
    located = await asyncio.gather(*(access.locate(r) for r in wanted))
    for resource, (doc_url, _) in zip(wanted, located, strict=True):
        for shard in plan.governed[resource]:
            by_shard.setdefault(shard, Graph()).add(
                (URIRef(resource), ACL.accessControl, URIRef(doc_url)))
    await asyncio.gather(*(ledger.pod.patch(shard, inserts=graph)
                           for shard, graph in by_shard.items()))

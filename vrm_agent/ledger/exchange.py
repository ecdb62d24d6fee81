"""The whole ledger as one file (TriG, or JSON-LD by extension), and back into an empty pod.

Each pod resource becomes one named graph named by its URL. The export says which storage it
came from, so a restore into another pod rewrites those IRIs to the new storage; restoring into
the same storage gives back an isomorphic ledger.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rdflib import Dataset, Graph, URIRef
from rdflib.namespace import PROV
from rdflib.term import Node

from vrm_agent.errors import NotFound, VrmAgentError
from vrm_agent.ledger.store import Ledger, read_members
from vrm_agent.linkeddata.limits import InputRefused
from vrm_agent.linkeddata.rdf import expand, refuse_embedded_contexts
from vrm_agent.vocabulary.compiled import validate_graph

FORMATS = {".trig": "trig", ".jsonld": "json-ld", ".json": "json-ld", ".nq": "nquads"}
SOURCE = URIRef("urn:vrm-agent:export")


class ExchangeError(VrmAgentError):
    """An export file cannot be written or read, or the pod is not ready for a restore."""


@dataclass
class RestoreReport:
    resources: int
    triples: int


def format_for(path: Path) -> str:
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ExchangeError(f"{path.name}: use .trig, .jsonld or .nq")
    return fmt


async def ledger_resources(ledger: Ledger) -> list[str]:
    """Every resource under vrm/, except the access index (access is not ledger data)."""
    found: list[str] = []

    async def walk(container: str) -> None:
        try:
            members = await ledger.pod.list_container(container)
        except NotFound:
            return
        subcontainers = [m for m in members if m.endswith("/")]
        found.extend(m for m in members if not m.endswith("/")
                     and m != ledger.layout.grant_index)
        await asyncio.gather(*(walk(c) for c in subcontainers))

    await walk(ledger.layout.root)
    return sorted(found)


async def export_ledger(ledger: Ledger) -> Dataset:
    dataset = Dataset()
    urls = await ledger_resources(ledger)
    graphs, _ = await read_members(urls, ledger.pod.get_graph, what="RDF document",
                                   reported=ledger.reported)
    for url, resource in graphs:
        named = dataset.graph(URIRef(url))
        for triple in resource.graph:
            named.add(triple)
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


def _rebaser(old: str, new: str) -> Callable[[Node], Node]:
    def rebase(term: Node) -> Node:
        if isinstance(term, URIRef) and old != new and str(term).startswith(old):
            return URIRef(new + str(term)[len(old):])
        return term

    return rebase


async def restore_ledger(ledger: Ledger, dataset: Dataset) -> RestoreReport:
    """Write every named graph into its resource; refuses a pod that already has a ledger."""
    source = dataset.default_graph.value(SOURCE, PROV.wasDerivedFrom)
    if source is None:
        raise ExchangeError("the file is not a vrm-agent export (no source storage)")
    # What the agent writes by itself on a new pod (the starter terms, the category map) does
    # not make it a ledger: the restored copies replace them.
    own = (ledger.layout.container("terms"), ledger.layout.container("categories"))
    if [url for url in await ledger_resources(ledger) if not url.startswith(own)]:
        raise ExchangeError(f"{ledger.layout.root} already holds a ledger; restore needs an "
                            "empty one")
    rebase = _rebaser(str(source), ledger.layout.storage)
    graphs: list[tuple[str, Graph]] = []
    for named in dataset.graphs():
        if named.identifier == dataset.default_graph.identifier or len(named) == 0:
            continue
        url = str(rebase(named.identifier))
        if not url.startswith(ledger.layout.root):
            raise ExchangeError(f"{named.identifier} is not a ledger resource")
        graph = Graph()
        for s, p, o in named:
            graph.add((rebase(s), rebase(p), rebase(o)))  # type: ignore[arg-type]
        graphs.append((url, graph))
    # Check everything before the first write: a bad file leaves the pod as it was.
    for _url, graph in graphs:
        validate_graph(graph)
    limit = asyncio.Semaphore(8)

    async def put(url: str, graph: Graph) -> None:
        async with limit:
            # The agent's own starter copies give way; anything else must not exist yet.
            await ledger.pod.put_graph(url, graph,
                                       if_none_match=None if url.startswith(own) else "*")

    await asyncio.gather(*(put(url, graph) for url, graph in graphs))
    return RestoreReport(len(graphs), sum(len(g) for _, g in graphs))

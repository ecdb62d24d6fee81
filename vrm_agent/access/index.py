"""The grant index (``<storage>vrm/grants``): every grant in force in one small document, so
expiry, revoke and the listing know which access-control documents to touch without reading
them all, and without reading a single negotiation record.

It holds two kinds of statements::

    <resource> acl:accessControl <doc> .        # every resource the agent has governed

    <grants#vrm-grant-ID> a vrm:Grant ;         # one entry per grant in force
        vrm:managedBy vrm:VrmAgent ; vrm:grantId "ID" ;
        acl:agent <webid> ; acl:accessTo <resource>, ... ; acl:default <container> ;
        acl:mode acl:Read ; vrm:expires "..."^^xsd:dateTime ;
        vrm:agreement <.../negotiations/ID> ; vrm:created "..."^^xsd:dateTime .

An entry is inserted (one insert-only N3 Patch) beside the grant's document writes and deleted
(its exact triples) when the grant is revoked or ends. ``acl:default`` marks a grant on a
container and its members, as it would in a WAC document; the index itself is no ACL document and
no server enforces it. This module is pure: graphs in, entries out.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from rdflib import RDF, Graph, Literal, URIRef
from rdflib.term import Node

from vrm_agent.access._rdf import (
    ACL,
    MANAGER,
    UNREADABLE_EXPIRY,
    VRM,
    add_metadata,
    grant_node,
    new_graph,
    read_time,
)
from vrm_agent.access.errors import InvalidGrant
from vrm_agent.access.model import AccessMode, Grant


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

    def covers(self, resource: str) -> bool:
        """Whether this grant gives access to ``resource``: named, or a member of a container
        granted with its members."""
        return any(resource == r or (self.members and resource.startswith(r))
                   for r in self.resources)


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
class GrantIndex:
    """What one read of the index says: the entries in it (expired or not), the access-control
    document of every governed resource, and the entries that could not be read."""

    url: str
    graph: Graph = field(default_factory=new_graph, compare=False)
    etag: str | None = None
    entries: Mapping[str, GrantView] = field(default_factory=dict)
    documents: Mapping[str, str] = field(default_factory=dict)
    problems: tuple[str, ...] = ()

    def due(self, now: datetime) -> list[GrantView]:
        return sorted((e for e in self.entries.values() if e.expires <= now),
                      key=lambda e: (e.expires, e.id))

    def next_end(self, now: datetime) -> datetime | None:
        return min((e.expires for e in self.entries.values() if e.expires > now), default=None)

    def entry_triples(self, grant_id: str) -> Graph:
        """The exact triples of one entry as read, to delete them."""
        out = Graph()
        node = grant_node(self.url, grant_id)
        for p, o in self.graph.predicate_objects(node):
            out.add((node, p, o))
        return out


def entry_graph(index_url: str, view: GrantView, documents: Mapping[str, str], *,
                created: datetime | None = None) -> Graph:
    """The triples to insert for one new grant: its entry, and where each resource's
    access-control document is (inserting a triple already there changes nothing)."""
    graph = new_graph()
    node = grant_node(index_url, view.id)
    add_metadata(graph, node, view.id, view.expires, view.agreement, created)
    graph.add((node, ACL.agent, URIRef(view.agent)))
    for mode in view.modes:
        graph.add((node, ACL.mode, mode.iri))
    for resource in view.resources:
        graph.add((node, ACL.accessTo, URIRef(resource)))
        if view.members:
            graph.add((node, ACL.default, URIRef(resource)))
        if resource in documents:
            graph.add((URIRef(resource), ACL.accessControl, URIRef(documents[resource])))
    return graph


def read_index(index_url: str, graph: Graph, etag: str | None = None) -> GrantIndex:
    """The index as read from the pod. It is the agent's own document, but a broken or foreign
    entry is skipped and reported, never fatal; an entry whose end cannot be read counts as
    ended, so it is removed rather than kept forever."""
    documents = {str(s): str(o) for s, o in graph.subject_objects(ACL.accessControl)
                 if isinstance(s, URIRef) and isinstance(o, URIRef)}
    entries: dict[str, GrantView] = {}
    problems: list[str] = []
    prefix = index_url.split("#", 1)[0] + "#"
    for node in sorted(set(graph.subjects(VRM.managedBy, MANAGER)), key=str):
        if not (isinstance(node, URIRef) and node.startswith(prefix)):
            problems.append(f"{node}: an entry named outside the index")
            continue
        try:
            view = _entry(graph, node)
        except InvalidGrant as exc:
            problems.append(f"{node}: {exc}")
            continue
        if node != grant_node(index_url, view.id):
            problems.append(f"{node}: its name does not match its id {view.id}")
            continue
        entries[view.id] = view
    return GrantIndex(index_url, graph, etag, entries, documents, tuple(problems))


def _one_literal(graph: Graph, node: Node, predicate: URIRef) -> str:
    values = [v for v in graph.objects(node, predicate) if isinstance(v, Literal)]
    if len(values) != 1:
        raise InvalidGrant(f"needs exactly one {predicate}")
    return str(values[0])


def _entry(graph: Graph, node: Node) -> GrantView:
    if (node, RDF.type, VRM.Grant) not in graph:
        raise InvalidGrant("not typed vrm:Grant")
    grant_id = _one_literal(graph, node, VRM.grantId)
    agents = [str(a) for a in graph.objects(node, ACL.agent)]
    if len(agents) != 1:
        raise InvalidGrant("needs exactly one acl:agent")
    resources = sorted(str(r) for r in graph.objects(node, ACL.accessTo))
    if not resources:
        raise InvalidGrant("names no resource")
    modes = frozenset(m for m in (AccessMode.from_iri(v) for v in graph.objects(node, ACL.mode))
                      if m is not None)
    members = any(True for _ in graph.objects(node, ACL.default))
    expires = read_time(graph, node, VRM.expires) or UNREADABLE_EXPIRY
    agreements = [str(a) for a in graph.objects(node, VRM.agreement)]
    agreement = agreements[0] if len(agreements) == 1 else None
    # The grant model checks every part (id, WebID, resource IRIs, modes) as it does for new
    # grants, so an entry holds nothing a grant could not.
    parts = [Grant(grant_id, agents[0], r, modes or frozenset({AccessMode.READ}), expires,
                   members=members, agreement=agreement) for r in resources]
    return group_grants(parts)[0]

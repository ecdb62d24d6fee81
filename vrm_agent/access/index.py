"""The grant index (``<storage>vrm/grant-index/``): every grant in force, spread over small shard
documents, so expiry, revoke and the listing know which access-control documents to touch without
reading them all, and without reading a single negotiation record.

A grant's entry lives in the shard its id hashes to (:func:`shard_name`: one of 256), so adding
or removing one is a patch of a document holding about 1/256 of the grants, whatever their number
(one index document of 10,000 entries took CSS 1.0-1.7 s per patch). A shard holds::

    <resource> acl:accessControl <doc> .        # every resource its grants have governed

    <s3f#vrm-grant-ID> a vrm:Grant ;            # one entry per grant in force
        vrm:managedBy vrm:VrmAgent ; vrm:grantId "ID" ;
        acl:agent <webid> ; acl:accessTo <resource>, ... ; acl:default <container> ;
        acl:mode acl:Read ; vrm:expires "..."^^xsd:dateTime ;
        vrm:agreement <.../negotiations/ID> ; vrm:created "..."^^xsd:dateTime ;
        vrm:copiedTo <member> .                 # a WAC document that holds a copy of it

``acl:default`` marks a grant on a container and its members, as in a WAC document; the index is
no ACL document and no server enforces it. ``vrm:copiedTo`` names a member whose own ``.acl``
was first written while this grant was in force, so it carries a copy (WAC stops inheriting once
a member has its own document): ending the grant removes the copy too.

Processes other than the daemon announce the shards they changed in the feed document
(``changes``: Activity Streams ``as:Update`` activities naming the shard), which the daemon reads
with a conditional GET every second, so it learns of a ``share`` made by the CLI without reading
every shard. This module is pure: graphs in, entries out.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from rdflib import RDF, XSD, Graph, Literal, Namespace, URIRef
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
    time_literal,
)
from vrm_agent.access.errors import InvalidGrant
from vrm_agent.access.model import AccessMode, Grant

AS = Namespace("https://www.w3.org/ns/activitystreams#")
INDEX_CONTAINER = "vrm/grant-index/"
FEED_NAME = "changes"
LEGACY_INDEX = "vrm/grants"  # the single index document of earlier versions, moved on first read
SHARDS = 256


def shard_name(grant_id: str) -> str:
    """The shard of a grant: ``s`` and two hex digits of its id's SHA-256 (stable everywhere)."""
    return f"s{hashlib.sha256(grant_id.encode('utf-8')).digest()[0]:02x}"


def is_shard_name(name: str) -> bool:
    return len(name) == 3 and name[0] == "s" and all(c in "0123456789abcdef" for c in name[1:])


@dataclass(frozen=True)
class GrantView:
    """One grant as the person sees it: the same id across all the resources it covers.
    ``copies`` are members whose own WAC document carries a copy of the grant."""

    id: str
    agent: str
    resources: tuple[str, ...]
    modes: frozenset[AccessMode]
    expires: datetime
    members: bool
    agreement: str | None
    created: datetime | None = field(default=None, compare=False)
    copies: tuple[str, ...] = field(default=(), compare=False)

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

    def parts(self) -> list[Grant]:
        """The rules that carry this grant out, one per document: each resource it names, and
        each copy (a rule on the member itself, with its members when it is a container)."""
        common = {"id": self.id, "agent": self.agent, "modes": self.modes,
                  "expires": self.expires, "agreement": self.agreement, "created": self.created}
        return ([Grant(resource=r, members=self.members, **common)  # type: ignore[arg-type]
                 for r in self.resources]
                + [Grant(resource=r, members=r.endswith("/"), **common)  # type: ignore[arg-type]
                   for r in self.copies])


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
            any(g.members for g in parts), first.agreement, first.created,
        ))
    return sorted(views, key=lambda v: (v.expires, v.id))


@dataclass(frozen=True)
class GrantIndex:
    """What the index says: the entries in it (expired or not), the access-control document of
    every governed resource, and the entries that could not be read. Plain data: no graph is
    kept."""

    entries: Mapping[str, GrantView] = field(default_factory=dict)
    documents: Mapping[str, str] = field(default_factory=dict)
    problems: tuple[str, ...] = ()

    def due(self, now: datetime) -> list[GrantView]:
        return sorted((e for e in self.entries.values() if e.expires <= now),
                      key=lambda e: (e.expires, e.id))

    def next_end(self, now: datetime) -> datetime | None:
        return min((e.expires for e in self.entries.values() if e.expires > now), default=None)

    def merged(self, other: GrantIndex) -> GrantIndex:
        return GrantIndex({**self.entries, **other.entries},
                          {**self.documents, **other.documents},
                          self.problems + other.problems)


def entry_graph(shard_url: str, view: GrantView, documents: Mapping[str, str], *,
                created: datetime | None = None) -> Graph:
    """The triples to insert for one new grant: its entry, and where each resource's
    access-control document is (inserting a triple already there changes nothing)."""
    graph = entry_triples(shard_url, view, created=created)
    for resource in (*view.resources, *view.copies):
        if resource in documents:
            graph.add((URIRef(resource), ACL.accessControl, URIRef(documents[resource])))
    return graph


def entry_triples(shard_url: str, view: GrantView, *, created: datetime | None = None) -> Graph:
    """Exactly the triples of one entry, as :func:`entry_graph` writes them (to delete them)."""
    graph = new_graph()
    node = grant_node(shard_url, view.id)
    add_metadata(graph, node, view.id, view.expires, view.agreement, created or view.created)
    graph.add((node, ACL.agent, URIRef(view.agent)))
    for mode in view.modes:
        graph.add((node, ACL.mode, mode.iri))
    for resource in view.resources:
        graph.add((node, ACL.accessTo, URIRef(resource)))
        if view.members:
            graph.add((node, ACL.default, URIRef(resource)))
    for member in view.copies:
        graph.add((node, VRM.copiedTo, URIRef(member)))
    return graph


def copy_triples(shard_url: str, grant_id: str, member: str, doc_url: str) -> Graph:
    """What to insert when a member's new document carries a copy of the grant."""
    graph = new_graph()
    graph.add((grant_node(shard_url, grant_id), VRM.copiedTo, URIRef(member)))
    graph.add((URIRef(member), ACL.accessControl, URIRef(doc_url)))
    return graph


def triples_of(graph: Graph, shard_url: str, grant_id: str) -> Graph:
    """The triples one entry has in a shard as read (an entry another version wrote may differ
    from what :func:`entry_triples` makes)."""
    out = Graph()
    node = grant_node(shard_url, grant_id)
    for p, o in graph.predicate_objects(node):
        out.add((node, p, o))
    return out


def read_index(shard_url: str, graph: Graph) -> GrantIndex:
    """One shard (or the earlier single index document) as read from the pod. It is the agent's
    own document, but a broken or foreign entry is skipped and reported, never fatal; an entry
    whose end cannot be read counts as ended, so it is removed rather than kept forever."""
    documents = {str(s): str(o) for s, o in graph.subject_objects(ACL.accessControl)
                 if isinstance(s, URIRef) and isinstance(o, URIRef)}
    entries: dict[str, GrantView] = {}
    problems: list[str] = []
    prefix = shard_url.split("#", 1)[0] + "#"
    for node in sorted(set(graph.subjects(VRM.managedBy, MANAGER)), key=str):
        if not (isinstance(node, URIRef) and node.startswith(prefix)):
            problems.append(f"{node}: an entry named outside the index")
            continue
        try:
            view = _entry(graph, node)
        except InvalidGrant as exc:
            problems.append(f"{node}: {exc}")
            continue
        if node != grant_node(shard_url, view.id):
            problems.append(f"{node}: its name does not match its id {view.id}")
            continue
        entries[view.id] = view
    return GrantIndex(entries, documents, tuple(problems))


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
    copies = sorted(str(c) for c in graph.objects(node, VRM.copiedTo) if isinstance(c, URIRef))
    # The grant model checks every part (id, WebID, resource IRIs, modes) as it does for new
    # grants, so an entry holds nothing a grant could not.
    parts = [Grant(grant_id, agents[0], r, modes or frozenset({AccessMode.READ}), expires,
                   members=members, agreement=agreement,
                   created=read_time(graph, node, VRM.created)) for r in resources]
    for member in copies:
        Grant(grant_id, agents[0], member, frozenset({AccessMode.READ}), expires)
    view = group_grants(parts)[0]
    return GrantView(view.id, view.agent, view.resources, view.modes, view.expires,
                     view.members, view.agreement, view.created, tuple(copies))


# -- the feed of changes made by other processes ---------------------------------------------------


def announcement(feed_url: str, activity_id: str, shard_url: str, at: datetime) -> Graph:
    """One ``as:Update`` naming a shard another process changed."""
    graph = Graph()
    node = URIRef(f"{feed_url}#{activity_id}")
    graph.add((node, RDF.type, AS.Update))
    graph.add((node, AS.object, URIRef(shard_url)))
    graph.add((node, AS.published, time_literal(at)))
    return graph


@dataclass(frozen=True)
class Announcement:
    node: str
    shard: str
    at: datetime | None


def read_feed(feed_url: str, graph: Graph, container: str) -> list[Announcement]:
    """The announcements in the feed that name one of the index's own shards (anything else in
    the document is ignored: a shard name is all a reader acts on, and it only reads it)."""
    out = []
    prefix = feed_url + "#"
    for node in graph.subjects(RDF.type, AS.Update):
        if not (isinstance(node, URIRef) and node.startswith(prefix)):
            continue
        shards = [str(o) for o in graph.objects(node, AS.object) if isinstance(o, URIRef)]
        if len(shards) != 1 or not shards[0].startswith(container) \
                or not is_shard_name(shards[0][len(container):]):
            continue
        at = next((v.toPython() for v in graph.objects(node, AS.published)
                   if isinstance(v, Literal) and v.datatype == XSD.dateTime
                   and not v.ill_typed), None)
        out.append(Announcement(str(node), shards[0], at if isinstance(at, datetime) else None))
    return sorted(out, key=lambda a: a.node)

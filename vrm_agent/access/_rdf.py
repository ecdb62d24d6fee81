"""RDF plumbing shared by the WAC and ACP modules: namespaces, the grant metadata, graph copies."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime

from rdflib import RDF, XSD, BNode, Graph, Literal, Namespace, URIRef
from rdflib.term import IdentifiedNode, Node

from vrm_agent.access.errors import MalformedDocument, OwnerLockout, WrongDocument
from vrm_agent.access.model import AccessMode, is_absolute_iri

ACL = Namespace("http://www.w3.org/ns/auth/acl#")
ACP = Namespace("http://www.w3.org/ns/solid/acp#")
FOAF = Namespace("http://xmlns.com/foaf/0.1/")
# Our own terms. Everything the agent adds beyond what the server enforces lives here, so other
# Solid tools ignore it and we can tell our rules from everyone else's.
VRM = Namespace("https://w3id.org/vrm-agent/ns#")
# vrm:managedBy vrm:VrmAgent marks a node the agent wrote and may delete. A constant (not the
# install's identity) so every install of the agent for the same person manages the same grants.
MANAGER = VRM.VrmAgent

GRANT_PREFIX = "vrm-grant-"
# Grants whose expiry cannot be read are treated as ended long ago: every grant has an end, and a
# grant we cannot date must be revoked rather than kept forever.
UNREADABLE_EXPIRY = datetime(1970, 1, 1, tzinfo=UTC)

TURTLE = "text/turtle"


def document_url(url: str) -> str:
    """The document part of a URL (no fragment): the base against which our node IRIs are made."""
    return url.split("#", 1)[0]


def grant_node(doc_url: str, grant_id: str, suffix: str = "") -> URIRef:
    return URIRef(f"{document_url(doc_url)}#{GRANT_PREFIX}{grant_id}{suffix}")


def new_graph() -> Graph:
    # Our five prefixes only: binding rdflib's "core" set on every graph cost more than the
    # rest of a grant's work in Python.
    graph = Graph(bind_namespaces="none")
    bind_prefixes(graph)
    return graph


def bind_prefixes(graph: Graph) -> None:
    for prefix, ns in (("acl", ACL), ("acp", ACP), ("foaf", FOAF), ("vrm", VRM), ("xsd", XSD),
                       ("rdf", RDF)):
        graph.bind(prefix, ns, override=False)


def copy_graph(graph: Graph) -> Graph:
    """A new graph with the same triples. The terms are shared, so blank nodes keep their labels
    and every triple we do not touch is the very same triple afterwards."""
    out = new_graph()
    out += graph
    return out


def managed_nodes(graph: Graph) -> set[IdentifiedNode]:
    return {s for s in graph.subjects(VRM.managedBy, MANAGER) if isinstance(s, IdentifiedNode)}


def grant_id_of(node: Node, graph: Graph) -> str | None:
    """A managed node's grant id: its ``vrm:grantId``, else what its IRI says."""
    for value in graph.objects(node, VRM.grantId):
        if isinstance(value, Literal):
            return str(value)
    if isinstance(node, URIRef) and "#" + GRANT_PREFIX in node:
        return node.split("#" + GRANT_PREFIX, 1)[1]
    return None


def nodes_with_id(graph: Graph, grant_id: str) -> list[IdentifiedNode]:
    return sorted(n for n in managed_nodes(graph) if grant_id_of(n, graph) == grant_id)


def time_literal(value: datetime) -> Literal:
    text = value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    return Literal(text, datatype=XSD.dateTime)


def read_time(graph: Graph, node: Node, predicate: URIRef) -> datetime | None:
    for value in graph.objects(node, predicate):
        if isinstance(value, Literal) and not value.ill_typed:
            parsed = value.toPython()
            if isinstance(parsed, datetime):
                # Our own writes always carry Z; a hand-edited value without an offset is read
                # as UTC rather than dropped.
                return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return None


def add_metadata(graph: Graph, node: URIRef, grant_id: str, expires: datetime,
                 agreement: str | None, created: datetime | None) -> None:
    graph.add((node, RDF.type, VRM.Grant))
    graph.add((node, VRM.managedBy, MANAGER))
    graph.add((node, VRM.grantId, Literal(grant_id)))
    graph.add((node, VRM.expires, time_literal(expires)))
    if agreement is not None:
        # Agreements are usually IRIs (they live in the pod too); keep plain ids as strings.
        term = URIRef(agreement) if is_absolute_iri(agreement) else Literal(agreement)
        graph.add((node, VRM.agreement, term))
    if created is not None:
        graph.add((node, VRM.created, time_literal(created)))


def read_metadata(
    graph: Graph, node: Node
) -> tuple[datetime, str | None, datetime | None]:
    """(expires, agreement, created) of a managed node, with the fail-safe expiry."""
    expires = read_time(graph, node, VRM.expires) or UNREADABLE_EXPIRY
    agreement = next((str(v) for v in graph.objects(node, VRM.agreement)), None)
    return expires, agreement, read_time(graph, node, VRM.created)


def modes_of(graph: Graph, node: Node, predicate: URIRef) -> tuple[frozenset[AccessMode], bool]:
    """The known modes on ``node`` and whether an unknown one was also there."""
    modes: set[AccessMode] = set()
    unknown = False
    for value in graph.objects(node, predicate):
        mode = AccessMode.from_iri(value)
        if mode is None:
            unknown = True
        else:
            modes.add(mode)
    return frozenset(modes), unknown


def one(values: Iterable[Node]) -> Node | None:
    """The only value, or None when there are none or several."""
    found = list(dict.fromkeys(values))
    return found[0] if len(found) == 1 else None


def term_label(node: Node) -> str:
    return f"_:{node}" if isinstance(node, BNode) else str(node)


def ensure_free(graph: Graph, nodes: Iterable[URIRef]) -> None:
    """Refuse to write into an IRI a rule we did not write already uses as a subject."""
    ours = managed_nodes(graph)
    for node in nodes:
        if node in ours:
            continue
        if (node, None, None) in graph:
            raise WrongDocument(f"{node} is already used by a rule the agent did not write")


def unused_iri(graph: Graph, doc_url: str, fragment: str) -> URIRef:
    """``doc#fragment``, or ``doc#fragment-2``... when that IRI is already in use."""
    base = document_url(doc_url)
    candidate = URIRef(f"{base}#{fragment}")
    n = 2
    while (candidate, None, None) in graph or (None, None, candidate) in graph:
        candidate = URIRef(f"{base}#{fragment}-{n}")
        n += 1
    return candidate


def guard_owner(
    check: Callable[[Graph, str, str], None],
    before: Graph,
    after: Graph,
    resource_url: str,
    owner_webid: str,
    *,
    adding: bool,
) -> None:
    """Run the owner check on a changed document.

    A document that adds grants must leave the owner in control. A change that only removes grants
    is refused only if *it* takes the owner's control away: when the document already lacked it
    (hand-written, relying on the server's own owner rules), refusing would make a vendor's access
    impossible to revoke, and removing our rules cannot make the owner worse off.
    """
    try:
        check(after, resource_url, owner_webid)
    except OwnerLockout:
        if adding:
            raise
        try:
            check(before, resource_url, owner_webid)
        except OwnerLockout:
            return
        raise


def serialize_turtle(graph: Graph, base: str) -> str:
    """Turtle with absolute IRIs only (no ``@base``, no relative references), after checking that
    every node the agent manages is named inside ``base``: a graph built for one document must not
    be written to another."""
    prefix = document_url(base) + "#"
    for node in managed_nodes(graph):
        if isinstance(node, URIRef) and not node.startswith(prefix):
            raise WrongDocument(f"{node} does not belong to the document {document_url(base)}")
    return graph.serialize(format="turtle")


def parse_turtle(text: str | bytes, base: str) -> Graph:
    graph = new_graph()
    try:
        graph.parse(data=text, format="turtle", publicID=document_url(base))
    except Exception as exc:  # rdflib raises many unrelated types for bad input
        first = f"{type(exc).__name__}: {exc}".splitlines()[0]
        raise MalformedDocument(f"{document_url(base)} is not valid Turtle: {first}") from exc
    return graph

"""Grants as Web Access Control (WAC 1.0) authorizations in a resource's ``.acl`` document.

Each grant is one authorization named ``<{acl}#vrm-grant-{id}>``::

    <#vrm-grant-ID> a acl:Authorization, vrm:Grant ;
        acl:agent <https://vendor.example/profile#id> ;
        acl:accessTo <https://pod.example/alice/shared/> ;
        acl:default <https://pod.example/alice/shared/> ;      # only with members=True
        acl:mode acl:Read ;
        vrm:managedBy vrm:VrmAgent ; vrm:grantId "ID" ;
        vrm:expires "2030-01-01T00:00:00Z"^^xsd:dateTime ; vrm:agreement <...> .

Everything is a pure function from graphs to new graphs: the input graph is never changed, and
every triple not on one of our nodes is carried over as the same term (blank nodes included).
"""

from __future__ import annotations

from collections.abc import Sequence

from rdflib import RDF, BNode, Graph, URIRef
from rdflib.term import IdentifiedNode, Node

from vrm_agent.access._rdf import (
    ACL,
    FOAF,
    GRANT_PREFIX,
    add_metadata,
    copy_graph,
    document_url,
    ensure_free,
    grant_id_of,
    grant_node,
    guard_owner,
    managed_nodes,
    modes_of,
    new_graph,
    nodes_with_id,
    one,
    read_metadata,
    term_label,
    unused_iri,
)
from vrm_agent.access.errors import InvalidGrant, OwnerLockout
from vrm_agent.access.model import (
    OWNER_MODES,
    AccessMode,
    ForeignRule,
    Grant,
    check_modes,
    prepare_changes,
)

__all__ = [
    "apply_changes",
    "check_modes",
    "check_owner_keeps_control",
    "damaged_grants",
    "foreign_authorizations",
    "foreign_triples",
    "grant_triples",
    "initial_document",
    "patch_for",
    "read_grants",
    "with_grant",
    "with_owner_control",
    "without_grant",
]

# agentClass values that include the owner whoever they are (the owner is authenticated).
_CLASSES_INCLUDING_EVERYONE = (FOAF.Agent, ACL.AuthenticatedAgent)


def _is_container(url: str) -> bool:
    return url.endswith("/")


# --- reading -----------------------------------------------------------------------------------


def _parse_grant(graph: Graph, node: IdentifiedNode) -> Grant | None:
    grant_id = grant_id_of(node, graph)
    agent = one(graph.objects(node, ACL.agent))
    # A managed node with any other subject or condition is not a grant we could have written:
    # it is reported as damaged rather than trusted.
    others = any(
        (node, p, None) in graph for p in (ACL.agentClass, ACL.agentGroup, ACL.origin)
    )
    resource = one(graph.objects(node, ACL.accessTo))
    defaults = set(graph.objects(node, ACL.default))
    modes, unknown = modes_of(graph, node, ACL.mode)
    if grant_id is None or not isinstance(agent, URIRef) or others or unknown:
        return None
    if not isinstance(resource, URIRef) or not defaults <= {resource}:
        return None
    expires, agreement, created = read_metadata(graph, node)
    try:
        return Grant(
            id=grant_id,
            agent=str(agent),
            resource=str(resource),
            modes=modes,
            expires=expires,
            members=bool(defaults),
            agreement=agreement,
            created=created,
        )
    except InvalidGrant:
        return None


def read_grants(graph: Graph, acl_url: str) -> list[Grant]:
    """The grants the agent wrote in this ``.acl``, sorted by id.

    Only nodes marked ``vrm:managedBy vrm:VrmAgent`` and named inside ``acl_url`` count. The
    grant is read from what the server enforces (agent, accessTo, default, modes) plus our
    metadata, so what is listed is what is in force. A grant whose expiry is unreadable comes back
    as already expired.
    """
    prefix = document_url(acl_url) + "#" + GRANT_PREFIX
    grants = []
    for node in sorted(managed_nodes(graph)):
        if isinstance(node, URIRef) and node.startswith(prefix):
            grant = _parse_grant(graph, node)
            if grant is not None:
                grants.append(grant)
    return sorted(grants, key=lambda g: g.id)


def damaged_grants(graph: Graph) -> list[str]:
    """Ids of nodes marked as ours that are not a grant we could have written (edited by hand or
    by another tool). The reconciler removes them: a rule we cannot read must not outlive us."""
    ids = set()
    for node in managed_nodes(graph):
        if _parse_grant(graph, node) is None:
            grant_id = grant_id_of(node, graph)
            if grant_id is not None:
                ids.add(grant_id)
    return sorted(ids)


def _authorization_nodes(graph: Graph) -> set[IdentifiedNode]:
    nodes = set(graph.subjects(RDF.type, ACL.Authorization))
    for predicate in (ACL.accessTo, ACL.default, ACL.mode):
        nodes.update(graph.subjects(predicate, None))
    return {n for n in nodes if isinstance(n, IdentifiedNode)}


def foreign_authorizations(graph: Graph) -> list[ForeignRule]:
    """Summaries of the authorizations the agent did not write: the owner's own, public rules,
    other apps'. They are never edited."""
    ours = managed_nodes(graph)
    rules = []
    for node in sorted(_authorization_nodes(graph) - ours, key=term_label):
        modes, _ = modes_of(graph, node, ACL.mode)
        rules.append(
            ForeignRule(
                node=term_label(node),
                agents=frozenset(str(v) for v in graph.objects(node, ACL.agent)),
                agent_classes=frozenset(str(v) for v in graph.objects(node, ACL.agentClass)),
                agent_groups=frozenset(str(v) for v in graph.objects(node, ACL.agentGroup)),
                modes=modes,
                this_resource=(node, ACL.accessTo, None) in graph,
                members=(node, ACL.default, None) in graph,
                restricted=(node, ACL.origin, None) in graph,
            )
        )
    return rules


def foreign_rules(graph: Graph) -> list[ForeignRule]:
    return foreign_authorizations(graph)


def foreign_triples(graph: Graph) -> Graph:
    """Every triple that is not on a node the agent manages."""
    ours = managed_nodes(graph)
    out = new_graph()
    for triple in graph:
        if triple[0] not in ours:
            out.add(triple)
    return out


# --- safety checks -----------------------------------------------------------------------------


def _covers_agent(graph: Graph, node: Node, webid: URIRef) -> bool:
    if (node, ACL.agent, webid) in graph:
        return True
    return any((node, ACL.agentClass, cls) in graph for cls in _CLASSES_INCLUDING_EVERYONE)


def owner_modes(graph: Graph, resource_url: str, owner_webid: str) -> frozenset[AccessMode]:
    """The modes this document gives the owner on the resource itself (``acl:accessTo``).

    Only typed ``acl:Authorization`` nodes count and groups are not resolved: the check may find
    less than the server would, never more.
    """
    owner = URIRef(owner_webid)
    modes: set[AccessMode] = set()
    for node in graph.subjects(ACL.accessTo, URIRef(resource_url)):
        if (node, RDF.type, ACL.Authorization) in graph and _covers_agent(graph, node, owner):
            modes |= modes_of(graph, node, ACL.mode)[0]
    return frozenset(modes)


def check_owner_keeps_control(graph: Graph, resource_url: str, owner_webid: str) -> None:
    """Raise :class:`OwnerLockout` unless the owner has Read, Write and Control on the resource."""
    missing = OWNER_MODES - owner_modes(graph, resource_url, owner_webid)
    if missing:
        names = ", ".join(m.label for m in AccessMode if m in missing)
        raise OwnerLockout(
            f"this .acl would leave the owner {owner_webid} without {names} on {resource_url}"
        )


# --- editing -----------------------------------------------------------------------------------


def _remove(graph: Graph, grant_id: str) -> None:
    for node in nodes_with_id(graph, grant_id):
        graph.remove((node, None, None))


def _add(graph: Graph, acl_url: str, grant: Grant) -> None:
    node = grant_node(acl_url, grant.id)
    ensure_free(graph, [node])
    resource = URIRef(grant.resource)
    graph.add((node, RDF.type, ACL.Authorization))
    graph.add((node, ACL.agent, URIRef(grant.agent)))
    graph.add((node, ACL.accessTo, resource))
    if grant.members:
        # WAC: acl:default makes the rule apply to every member that has no .acl of its own.
        graph.add((node, ACL.default, resource))
    for mode in grant.modes:
        graph.add((node, ACL.mode, mode.iri))
    add_metadata(graph, node, grant.id, grant.expires, grant.agreement, grant.created)


def grant_triples(acl_url: str, grant: Grant) -> Graph:
    """Exactly the triples :func:`apply_changes` writes for one grant (to patch them in or out)."""
    graph = new_graph()
    _add(graph, acl_url, grant)
    return graph


def patch_for(
    acl_url: str, resource_url: str, add: Sequence[Grant] = (), remove: Sequence[Grant] = ()
) -> tuple[Graph | None, Graph, Graph]:
    """(where, deletes, inserts) of an N3 Patch that removes ``remove`` and adds ``add``: each
    authorization stands alone, so nothing else in the document needs matching."""
    deletes, inserts = new_graph(), new_graph()
    for grant in remove:
        deletes += grant_triples(acl_url, grant)
    for grant in add:
        inserts += grant_triples(acl_url, grant)
    return None, deletes, inserts


def apply_changes(
    graph: Graph,
    acl_url: str,
    resource_url: str,
    owner_webid: str,
    add: Sequence[Grant] = (),
    remove: Sequence[str] = (),
) -> Graph:
    """The document after removing the grants ``remove`` and adding (or replacing) ``add``.

    Many concurrent requests on one resource are coalesced here into one document, hence one
    write. Removals come first, so a grant both removed and added is replaced; removing an id that
    is not there is not an error (two revokes of one grant may race). Vendor modes are checked,
    and the owner's control on the result (a removal-only change is refused only if it is what
    takes that control away, so revoking always works); the input graph is not changed.
    """
    grants = prepare_changes(resource_url, owner_webid, add)
    out = copy_graph(graph)
    for grant_id in [*remove, *(g.id for g in grants)]:
        _remove(out, grant_id)
    for grant in grants:
        _add(out, acl_url, grant)
    guard_owner(
        check_owner_keeps_control, graph, out, resource_url, owner_webid, adding=bool(grants)
    )
    return out


def with_grant(
    graph: Graph, acl_url: str, resource_url: str, grant: Grant, owner_webid: str
) -> Graph:
    return apply_changes(graph, acl_url, resource_url, owner_webid, add=[grant])


def without_grant(graph: Graph, grant_id: str) -> Graph:
    """The document without the grant ``grant_id`` (unchanged when it is not there)."""
    out = copy_graph(graph)
    _remove(out, grant_id)
    return out


# --- a first .acl for a resource ---------------------------------------------------------------


def with_owner_control(
    graph: Graph, acl_url: str, resource_url: str, owner_webid: str
) -> Graph:
    """The document, plus an owner rule (Read, Write, Control; ``acl:default`` too on a
    container) when the owner does not already have all three. Nothing is removed."""
    out = copy_graph(graph)
    if owner_modes(out, resource_url, owner_webid) >= OWNER_MODES:
        return out
    node = unused_iri(out, acl_url, "owner")
    resource = URIRef(resource_url)
    out.add((node, RDF.type, ACL.Authorization))
    out.add((node, ACL.agent, URIRef(owner_webid)))
    out.add((node, ACL.accessTo, resource))
    if _is_container(resource_url):
        out.add((node, ACL.default, resource))
    for mode in (AccessMode.READ, AccessMode.WRITE, AccessMode.CONTROL):
        out.add((node, ACL.mode, mode.iri))
    return out


def _inherited_rules(
    inherited: Graph, resource_url: str, inherited_container: str | None
) -> list[IdentifiedNode]:
    """The rules of the nearest ancestor's ACL that apply to ``resource_url`` today: those with
    ``acl:default`` naming that ancestor (CSS matches the default's object to the container whose
    ACL it is). Without the container's URL, any proper ancestor of the resource is accepted."""
    found = set()
    for node, container in inherited.subject_objects(ACL.default):
        if not isinstance(node, IdentifiedNode) or not isinstance(container, URIRef):
            continue
        if inherited_container is not None:
            applies = str(container) == inherited_container
        else:
            applies = (
                _is_container(container)
                and resource_url.startswith(container)
                and resource_url != container
            )
        if applies:
            found.add(node)
    return sorted(found, key=term_label)


def _closure(graph: Graph, node: Node) -> list[tuple[Node, Node, Node]]:
    """The node's triples and, recursively, those of the blank nodes it points to."""
    triples: list[tuple[Node, Node, Node]] = []
    seen = {node}
    todo = [node]
    while todo:
        current = todo.pop()
        for _, p, o in graph.triples((current, None, None)):
            triples.append((current, p, o))
            if isinstance(o, BNode) and o not in seen:
                seen.add(o)
                todo.append(o)
    return triples


def _copy_inherited(
    inherited: Graph, rule: IdentifiedNode, out: Graph, acl_url: str, resource_url: str
) -> None:
    """Copy one inherited rule into the new document as a rule on this resource: its acl:default
    becomes acl:accessTo this resource (plus acl:default when it is a container, so the members
    keep inheriting it). Everything else on the rule is kept as it was."""
    if isinstance(rule, URIRef) and "#" in rule:
        # Keep the fragment (#owner, #public, #vrm-grant-ID) so the copy is recognisable.
        new_rule: IdentifiedNode = unused_iri(out, acl_url, rule.split("#", 1)[1])
    else:
        new_rule = BNode()
    renamed: dict[Node, Node] = {rule: new_rule}
    for s, p, o in _closure(inherited, rule):
        if s == rule and p in (ACL.accessTo, ACL.default, ACL.defaultForNew):
            continue
        if isinstance(o, BNode):
            o = renamed.setdefault(o, BNode())
        out.add((renamed.setdefault(s, BNode()), p, o))
    out.add((new_rule, ACL.accessTo, URIRef(resource_url)))
    if _is_container(resource_url):
        out.add((new_rule, ACL.default, URIRef(resource_url)))


def initial_document(
    acl_url: str,
    resource_url: str,
    owner_webid: str,
    inherited: Graph | None = None,
    *,
    inherited_container: str | None = None,
) -> Graph:
    """What to write for a resource that has no ``.acl`` of its own yet.

    Today the resource is governed by the nearest ancestor's ACL (``inherited``) through its
    ``acl:default`` rules; once it has its own ``.acl`` that ACL no longer applies to it. So every
    default rule that applies (the owner's, public ones, other apps', and grants of ours given on an
    ancestor with members=True, which keep their id and expiry) is copied as a rule on this
    resource, and the owner gets Read, Write and Control if the copies do not already give them.
    Creating the document therefore changes nothing about who may do what.
    """
    out = new_graph()
    if inherited is not None:
        for rule in _inherited_rules(inherited, resource_url, inherited_container):
            _copy_inherited(inherited, rule, out, acl_url, resource_url)
    out = with_owner_control(out, acl_url, resource_url, owner_webid)
    check_owner_keeps_control(out, resource_url, owner_webid)
    return out



def with_public_read(graph: Graph, acl_url: str, resource_url: str) -> Graph:
    """The document plus a rule letting anyone read the resource (for what the person publishes,
    such as the vocabulary). Not a grant: it has no end and names no agent, so it is kept apart
    from the grants and, like any rule the agent did not write as a grant, survives every edit."""
    out = copy_graph(graph)
    node = URIRef(f"{acl_url}#vrm-public-read")
    if (node, RDF.type, ACL.Authorization) in out:
        return out
    out.add((node, RDF.type, ACL.Authorization))
    out.add((node, ACL.agentClass, FOAF.Agent))
    out.add((node, ACL.accessTo, URIRef(resource_url)))
    out.add((node, ACL.mode, ACL.Read))
    return out


def without_public_read(graph: Graph, acl_url: str, resource_url: str) -> Graph:
    """The document without the rule :func:`with_public_read` adds; every other rule stays."""
    out = copy_graph(graph)
    out.remove((URIRef(f"{acl_url}#vrm-public-read"), None, None))
    return out

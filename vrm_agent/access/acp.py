"""Grants as Access Control Policy (ACP 0.9) rules in a resource's ``.acr`` document.

The document's own URL names the access control resource (the reference JS client reads an ACR only
under that subject), and each grant is three nodes with IRIs derived from its id, never blank nodes
(other Solid tools ignore blank-node policies)::

    <https://pod.example/alice/shared/.acr> a acp:AccessControlResource ;
        acp:resource <https://pod.example/alice/shared/> ;
        acp:accessControl <#owner>, <#vrm-grant-ID> ;
        acp:memberAccessControl <#vrm-grant-ID> .               # only with members=True
    <#vrm-grant-ID> a acp:AccessControl, vrm:Grant ;
        acp:apply <#vrm-grant-ID-policy> ;
        vrm:managedBy vrm:VrmAgent ; vrm:grantId "ID" ; vrm:expires "..."^^xsd:dateTime .
    <#vrm-grant-ID-policy> a acp:Policy ;
        acp:allow acl:Read ;
        acp:allOf <#vrm-grant-ID-matcher> .
    <#vrm-grant-ID-matcher> a acp:Matcher ;
        acp:agent <https://vendor.example/profile#id> .

(shown with relative IRIs for brevity; :func:`serialize` writes them absolute).

Unlike WAC, ACP rules add up: an ancestor's ``acp:memberAccessControl`` keeps applying when a
resource gets an ACR of its own, so a new ACR copies nothing; and a members grant reaches every
descendant, even one with its own ACR.
"""

from __future__ import annotations

from collections.abc import Sequence

from rdflib import RDF, Graph, URIRef
from rdflib.term import IdentifiedNode, Node, Variable

from vrm_agent.access._rdf import (
    ACP,
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
from vrm_agent.access.errors import InvalidGrant, OwnerLockout, WrongDocument
from vrm_agent.access.model import (
    OWNER_MODES,
    AccessMode,
    ForeignRule,
    Grant,
    check_modes,
    prepare_changes,
)

__all__ = [
    "acr_node",
    "apply_changes",
    "check_modes",
    "check_owner_keeps_control",
    "damaged_grants",
    "foreign_policies",
    "foreign_triples",
    "initial_document",
    "patch_for",
    "read_grants",
    "with_grant",
    "with_owner_control",
    "without_grant",
]

_CONTROL_LINKS = (ACP.accessControl, ACP.memberAccessControl)
_MATCHER_LISTS = (ACP.allOf, ACP.anyOf, ACP.noneOf)
_CONDITIONS = (ACP.client, ACP.issuer, ACP.vc)
_AGENT_CLASSES = (ACP.PublicAgent, ACP.AuthenticatedAgent, ACP.CreatorAgent, ACP.OwnerAgent)

# Three-valued answers to "does this rule apply to the owner?": conditions we cannot know here (the
# client, the issuer, a credential) make it MAYBE. AND is min, OR is max, NOT is 2 - x.
NO, MAYBE, YES = 0, 1, 2


def _is_container(url: str) -> bool:
    return url.endswith("/")


def _policy_node(control: URIRef) -> URIRef:
    return URIRef(f"{control}-policy")


def _matcher_node(control: URIRef) -> URIRef:
    return URIRef(f"{control}-matcher")


def acr_node(graph: Graph, acr_url: str, resource_url: str) -> IdentifiedNode:
    """The node that describes ``resource_url``'s access controls in this document.

    Normally the document's own URL. An existing document that names it otherwise (CSS writes
    ``<#root>`` for the pod root) keeps its node: a second node for the same resource would leave
    the server to pick one of them.
    """
    own = URIRef(document_url(acr_url))
    resource = URIRef(resource_url)
    for other in graph.objects(own, ACP.resource):
        if other != resource:
            raise WrongDocument(f"{own} is the access control resource of {other}, not {resource}")
    found = sorted(
        s for s in graph.subjects(ACP.resource, resource) if isinstance(s, IdentifiedNode)
    )
    if not found or own in found:
        return own
    return found[0]


def _ensure_acr(graph: Graph, acr: IdentifiedNode, resource_url: str) -> None:
    graph.add((acr, RDF.type, ACP.AccessControlResource))
    graph.add((acr, ACP.resource, URIRef(resource_url)))


# --- reading -----------------------------------------------------------------------------------


def _parse_grant(graph: Graph, control: IdentifiedNode) -> Grant | None:
    grant_id = grant_id_of(control, graph)
    applied_by = set(graph.subjects(ACP.accessControl, control))
    member_of = set(graph.subjects(ACP.memberAccessControl, control))
    if grant_id is None or len(applied_by) != 1 or not member_of <= applied_by:
        return None
    resource = one(graph.objects(next(iter(applied_by)), ACP.resource))
    policy = one(graph.objects(control, ACP.apply))
    if not isinstance(resource, URIRef) or policy is None:
        return None
    modes, unknown = modes_of(graph, policy, ACP.allow)
    # Only the exact shape we write counts: one policy that allows, with one matcher of one agent.
    if unknown or (policy, ACP.deny, None) in graph:
        return None
    if any((policy, p, None) in graph for p in (ACP.anyOf, ACP.noneOf)):
        return None
    matcher = one(graph.objects(policy, ACP.allOf))
    if matcher is None or any((matcher, p, None) in graph for p in _CONDITIONS):
        return None
    agent = one(graph.objects(matcher, ACP.agent))
    if not isinstance(agent, URIRef):
        return None
    expires, agreement, created = read_metadata(graph, control)
    try:
        return Grant(
            id=grant_id,
            agent=str(agent),
            resource=str(resource),
            modes=modes,
            expires=expires,
            members=bool(member_of),
            agreement=agreement,
            created=created,
        )
    except InvalidGrant:
        return None


def read_grants(graph: Graph, acr_url: str) -> list[Grant]:
    """The grants the agent wrote in this ``.acr``, sorted by id, read from what the server
    enforces (the policy's modes, the matcher's agent, which lists link the control) plus our
    metadata. A grant whose expiry is unreadable comes back as already expired."""
    prefix = document_url(acr_url) + "#" + GRANT_PREFIX
    grants = []
    for node in sorted(managed_nodes(graph)):
        if isinstance(node, URIRef) and node.startswith(prefix):
            grant = _parse_grant(graph, node)
            if grant is not None:
                grants.append(grant)
    return sorted(grants, key=lambda g: g.id)


def damaged_grants(graph: Graph) -> list[str]:
    """Ids of nodes marked as ours that are not a grant we could have written; the reconciler
    removes them."""
    ids = set()
    for node in managed_nodes(graph):
        if _parse_grant(graph, node) is None:
            grant_id = grant_id_of(node, graph)
            if grant_id is not None:
                ids.add(grant_id)
    return sorted(ids)


def _our_nodes(graph: Graph) -> set[Node]:
    nodes: set[Node] = set()
    for control in managed_nodes(graph):
        nodes.add(control)
        if isinstance(control, URIRef):
            nodes.update((_policy_node(control), _matcher_node(control)))
    return nodes


def foreign_triples(graph: Graph) -> Graph:
    """Every triple the agent did not write: not on our controls, policies and matchers, and not
    a link from the ACR to one of our controls."""
    ours = _our_nodes(graph)
    out = new_graph()
    for s, p, o in graph:
        if s in ours or (p in _CONTROL_LINKS and o in ours):
            continue
        out.add((s, p, o))
    return out


def _policy_nodes(graph: Graph) -> set[IdentifiedNode]:
    nodes: set[Node] = set(graph.subjects(RDF.type, ACP.Policy))
    nodes.update(graph.objects(None, ACP.apply))
    for predicate in (ACP.allow, ACP.deny, *_MATCHER_LISTS):
        nodes.update(graph.subjects(predicate, None))
    return {n for n in nodes if isinstance(n, IdentifiedNode)}


def foreign_policies(graph: Graph) -> list[ForeignRule]:
    """Summaries of the policies the agent did not write (one rule per policy)."""
    ours = _our_nodes(graph)
    rules = []
    for policy in sorted(_policy_nodes(graph) - ours, key=term_label):
        controls = set(graph.subjects(ACP.apply, policy))
        matchers = [m for p in _MATCHER_LISTS for m in graph.objects(policy, p)]
        agents = {a for m in matchers for a in graph.objects(m, ACP.agent)}
        restricted = (
            (policy, ACP.noneOf, None) in graph
            or len(set(graph.objects(policy, ACP.allOf))) > 1
            or any((m, c, None) in graph for m in matchers for c in _CONDITIONS)
        )
        rules.append(
            ForeignRule(
                node=term_label(policy),
                agents=frozenset(str(a) for a in agents if a not in _AGENT_CLASSES),
                agent_classes=frozenset(str(a) for a in agents if a in _AGENT_CLASSES),
                modes=modes_of(graph, policy, ACP.allow)[0],
                denied_modes=modes_of(graph, policy, ACP.deny)[0],
                this_resource=any((None, ACP.accessControl, c) in graph for c in controls),
                members=any((None, ACP.memberAccessControl, c) in graph for c in controls),
                restricted=restricted,
            )
        )
    return rules


def foreign_rules(graph: Graph) -> list[ForeignRule]:
    return foreign_policies(graph)


# --- safety checks -----------------------------------------------------------------------------


def _matcher_applies(graph: Graph, matcher: Node, owner: URIRef) -> int:
    agents = set(graph.objects(matcher, ACP.agent))
    clients = set(graph.objects(matcher, ACP.client))
    others = any((matcher, p, None) in graph for p in (ACP.issuer, ACP.vc))
    if not agents and not clients and not others:
        return NO  # a matcher with no attribute matches nobody
    answer = YES
    if agents:
        if agents & {owner, ACP.PublicAgent, ACP.AuthenticatedAgent}:
            part = YES
        elif agents & {ACP.CreatorAgent, ACP.OwnerAgent}:
            part = MAYBE  # depends on server metadata we do not have here
        else:
            part = NO
        answer = min(answer, part)
    if clients and ACP.PublicClient not in clients:
        answer = min(answer, MAYBE)  # depends on the app the owner uses
    if others:
        answer = min(answer, MAYBE)
    return answer


def _policy_applies(graph: Graph, policy: Node, owner: URIRef) -> int:
    all_of = list(graph.objects(policy, ACP.allOf))
    any_of = list(graph.objects(policy, ACP.anyOf))
    none_of = list(graph.objects(policy, ACP.noneOf))
    if not all_of and not any_of:
        return NO  # ACP: a policy needs an allOf or an anyOf to be satisfied
    answer = YES
    for matcher in all_of:
        answer = min(answer, _matcher_applies(graph, matcher, owner))
    if any_of:
        answer = min(answer, max(_matcher_applies(graph, m, owner) for m in any_of))
    for matcher in none_of:
        answer = min(answer, YES - _matcher_applies(graph, matcher, owner))
    return answer


def owner_access(
    graph: Graph, resource_url: str, owner_webid: str
) -> tuple[frozenset[AccessMode], frozenset[AccessMode], frozenset[AccessMode]]:
    """(surely allowed, possibly denied, possibly denied on members) for the owner, from this
    document alone. Allows count only when the policy surely applies to the owner; denies count as
    soon as it might, because in ACP a deny beats every allow, the inherited ones too."""
    owner = URIRef(owner_webid)
    allowed: set[AccessMode] = set()
    denied: set[AccessMode] = set()
    member_denied: set[AccessMode] = set()
    lists = ((ACP.accessControl, denied), (ACP.memberAccessControl, member_denied))
    for acr in graph.subjects(ACP.resource, URIRef(resource_url)):
        for link, deny_set in lists:
            for control in graph.objects(acr, link):
                for policy in graph.objects(control, ACP.apply):
                    applies = _policy_applies(graph, policy, owner)
                    if applies == YES and link == ACP.accessControl:
                        allowed |= modes_of(graph, policy, ACP.allow)[0]
                    if applies >= MAYBE:
                        deny_set |= modes_of(graph, policy, ACP.deny)[0]
    return frozenset(allowed), frozenset(denied), frozenset(member_denied)


def check_owner_keeps_control(graph: Graph, resource_url: str, owner_webid: str) -> None:
    """Raise :class:`OwnerLockout` unless this ACR itself allows the owner Read, Write and Control
    on the resource and nothing in it may deny them (on the resource or on its members).

    On CSS the owner also keeps access through the pod root's member access control, but the ACR
    must not depend on that: every ACR the agent writes carries the owner's own access control."""
    allowed, denied, member_denied = owner_access(graph, resource_url, owner_webid)
    problems = []
    missing = OWNER_MODES - allowed
    if missing:
        problems.append("no " + ", ".join(m.label for m in AccessMode if m in missing))
    for label, modes in (("a deny of", denied), ("a member deny of", member_denied)):
        if modes & OWNER_MODES:
            problems.append(f"{label} " + ", ".join(m.label for m in AccessMode if m in modes))
    if problems:
        raise OwnerLockout(
            f"this .acr would leave the owner {owner_webid} with {'; '.join(problems)} "
            f"on {resource_url}"
        )


# --- editing -----------------------------------------------------------------------------------


def _remove(graph: Graph, grant_id: str) -> None:
    for control in nodes_with_id(graph, grant_id):
        for link in _CONTROL_LINKS:
            graph.remove((None, link, control))
        graph.remove((control, None, None))
        if isinstance(control, URIRef):
            graph.remove((_policy_node(control), None, None))
            graph.remove((_matcher_node(control), None, None))


def _add(graph: Graph, acr: IdentifiedNode | Variable, acr_url: str, grant: Grant) -> None:
    control = grant_node(acr_url, grant.id)
    policy, matcher = _policy_node(control), _matcher_node(control)
    ensure_free(graph, [control, policy, matcher])
    graph.add((acr, ACP.accessControl, control))
    if grant.members:
        graph.add((acr, ACP.memberAccessControl, control))
    graph.add((control, RDF.type, ACP.AccessControl))
    graph.add((control, ACP.apply, policy))
    add_metadata(graph, control, grant.id, grant.expires, grant.agreement, grant.created)
    graph.add((policy, RDF.type, ACP.Policy))
    for mode in grant.modes:
        graph.add((policy, ACP.allow, mode.iri))
    graph.add((policy, ACP.allOf, matcher))
    graph.add((matcher, RDF.type, ACP.Matcher))
    graph.add((matcher, ACP.agent, URIRef(grant.agent)))


def patch_for(
    acr_url: str, resource_url: str, add: Sequence[Grant] = (), remove: Sequence[Grant] = ()
) -> tuple[Graph | None, Graph, Graph]:
    """(where, deletes, inserts) of an N3 Patch that removes ``remove`` and adds ``add``. The
    access control resource's node is matched (``?acr acp:resource <resource>``) rather than
    assumed: the server answers 409 unless exactly one node describes the resource."""
    acr = Variable("acr")
    where, deletes, inserts = new_graph(), new_graph(), new_graph()
    where.add((acr, ACP.resource, URIRef(resource_url)))
    for grant in remove:
        _add(deletes, acr, acr_url, grant)
    for grant in add:
        _add(inserts, acr, acr_url, grant)
    return where, deletes, inserts


def apply_changes(
    graph: Graph,
    acr_url: str,
    resource_url: str,
    owner_webid: str,
    add: Sequence[Grant] = (),
    remove: Sequence[str] = (),
) -> Graph:
    """The document after removing ``remove`` and adding (or replacing) ``add``, as one write.

    Same contract as :func:`vrm_agent.access.wac.apply_changes`: removals first, unknown ids
    ignored, vendor modes and the owner's control checked (removals alone are refused only when
    they cause the lockout), input left unchanged.
    """
    grants = prepare_changes(resource_url, owner_webid, add)
    out = copy_graph(graph)
    for grant_id in [*remove, *(g.id for g in grants)]:
        _remove(out, grant_id)
    if grants:
        acr = acr_node(out, acr_url, resource_url)
        _ensure_acr(out, acr, resource_url)
        for grant in grants:
            _add(out, acr, acr_url, grant)
    guard_owner(
        check_owner_keeps_control, graph, out, resource_url, owner_webid, adding=bool(grants)
    )
    return out


def with_grant(
    graph: Graph, acr_url: str, resource_url: str, grant: Grant, owner_webid: str
) -> Graph:
    return apply_changes(graph, acr_url, resource_url, owner_webid, add=[grant])


def without_grant(graph: Graph, grant_id: str) -> Graph:
    """The document without the grant ``grant_id``: its control, policy, matcher and the ACR's
    links to it (unchanged when it is not there)."""
    out = copy_graph(graph)
    _remove(out, grant_id)
    return out


def with_owner_control(
    graph: Graph, acr_url: str, resource_url: str, owner_webid: str
) -> Graph:
    """The document, plus an owner access control (Read, Write, Control for the owner's WebID;
    also a member access control on a container) when the ACR does not already allow all three.
    Nothing is removed; a deny is not overridden (the check still refuses it)."""
    out = copy_graph(graph)
    if owner_access(out, resource_url, owner_webid)[0] >= OWNER_MODES:
        return out
    acr = acr_node(out, acr_url, resource_url)
    _ensure_acr(out, acr, resource_url)
    control = unused_iri(out, acr_url, "owner")
    policy, matcher = _policy_node(control), _matcher_node(control)
    ensure_free(out, [policy, matcher])
    out.add((acr, ACP.accessControl, control))
    if _is_container(resource_url):
        out.add((acr, ACP.memberAccessControl, control))
    out.add((control, RDF.type, ACP.AccessControl))
    out.add((control, ACP.apply, policy))
    out.add((policy, RDF.type, ACP.Policy))
    for mode in (AccessMode.READ, AccessMode.WRITE, AccessMode.CONTROL):
        out.add((policy, ACP.allow, mode.iri))
    out.add((policy, ACP.allOf, matcher))
    out.add((matcher, RDF.type, ACP.Matcher))
    out.add((matcher, ACP.agent, URIRef(owner_webid)))
    return out


def initial_document(
    acr_url: str,
    resource_url: str,
    owner_webid: str,
    inherited: Graph | None = None,
    *,
    inherited_container: str | None = None,
) -> Graph:
    """What to write for a resource that has no ``.acr`` yet: the ACR node (the document's own URL)
    with the owner's access control.

    ``inherited`` and ``inherited_container`` are accepted for the common interface and ignored:
    ACP rules add up, so the ancestors' member access controls keep applying once this ACR exists
    and nothing needs copying.
    """
    del inherited, inherited_container
    out = new_graph()
    _ensure_acr(out, URIRef(document_url(acr_url)), resource_url)
    out = with_owner_control(out, acr_url, resource_url, owner_webid)
    check_owner_keeps_control(out, resource_url, owner_webid)
    return out


def with_public_read(graph: Graph, acr_url: str, resource_url: str) -> Graph:
    """The document plus an access control letting anyone read the resource (see the WAC twin)."""
    out = copy_graph(graph)
    control = URIRef(f"{acr_url}#vrm-public-read")
    if (control, RDF.type, ACP.AccessControl) in out:
        return out
    policy, matcher = _policy_node(control), _matcher_node(control)
    acr = acr_node(out, acr_url, resource_url)
    _ensure_acr(out, acr, resource_url)
    out.add((acr, ACP.accessControl, control))
    out.add((control, RDF.type, ACP.AccessControl))
    out.add((control, ACP.apply, policy))
    out.add((policy, RDF.type, ACP.Policy))
    out.add((policy, ACP.allow, AccessMode.READ.iri))
    out.add((policy, ACP.anyOf, matcher))
    out.add((matcher, RDF.type, ACP.Matcher))
    out.add((matcher, ACP.agent, ACP.PublicAgent))
    return out


def without_public_read(graph: Graph, acr_url: str, resource_url: str) -> Graph:
    """The document without the access control :func:`with_public_read` adds (its policy and
    matcher too); every other control stays."""
    out = copy_graph(graph)
    control = URIRef(f"{acr_url}#vrm-public-read")
    out.remove((None, ACP.accessControl, control))
    for node in (control, _policy_node(control), _matcher_node(control)):
        out.remove((node, None, None))
    return out

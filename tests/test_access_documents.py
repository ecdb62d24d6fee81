"""The pure core of access control: grants in and out of WAC .acl and ACP .acr documents.

No network here. The documents are checked for shape (what CSS and other Solid tools read), for
the safety rules (owner keeps control, vendors get Read/Append only) and for leaving every rule the
agent did not write exactly as it was.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

import pytest
from rdflib import RDF, BNode, Graph, Literal, Namespace, URIRef
from rdflib.compare import isomorphic

from vrm_agent.access import (
    ACP,
    ACP_ACCESS_CONTROL_RESOURCE,
    WAC,
    AccessDocumentFormat,
    AccessError,
    AccessMode,
    ForbiddenMode,
    Grant,
    InvalidGrant,
    MalformedDocument,
    OwnerLockout,
    WrongDocument,
    check_modes,
    expired,
    format_for,
    next_expiry,
)
from vrm_agent.access import acp as acp_module
from vrm_agent.access import wac as wac_module
from vrm_agent.errors import VrmAgentError

ACL = Namespace("http://www.w3.org/ns/auth/acl#")
ACPNS = Namespace("http://www.w3.org/ns/solid/acp#")
VRM = Namespace("https://w3id.org/vrm-agent/ns#")
FOAF = Namespace("http://xmlns.com/foaf/0.1/")
VRM_XSD_DATETIME = URIRef("http://www.w3.org/2001/XMLSchema#dateTime")

POD = "http://localhost:3000/alice/"
OWNER = "http://localhost:3000/alice/profile/card#me"
ACME = "http://localhost:3000/acme/profile/card#me"
BOLT = "http://localhost:3000/bolt/profile/card#me"
OTHER_APP = "https://app.example/profile#bot"
SHARED = POD + "shared/"
NOTE = SHARED + "note.ttl"
NOW = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
LATER = NOW + timedelta(days=30)

FORMATS = [WAC, ACP]


def doc_url(fmt: AccessDocumentFormat, resource: str) -> str:
    return resource + (".acl" if fmt is WAC else ".acr")


def make_grant(
    grant_id: str = "g1",
    agent: str = ACME,
    resource: str = SHARED,
    modes: tuple[AccessMode, ...] = (AccessMode.READ,),
    expires: datetime = LATER,
    **extra: object,
) -> Grant:
    return Grant(
        id=grant_id, agent=agent, resource=resource, modes=frozenset(modes), expires=expires,
        **extra,  # type: ignore[arg-type]
    )


def start(fmt: AccessDocumentFormat, resource: str = SHARED) -> Graph:
    return fmt.initial_document(doc_url(fmt, resource), resource, OWNER)


def roundtrip(fmt: AccessDocumentFormat, graph: Graph, base: str) -> Graph:
    return fmt.parse(fmt.serialize(graph, base), base)


def triples_of(graph: Graph) -> set[tuple[object, object, object]]:
    return set(graph)


# --- documents with rules the agent did not write ----------------------------------------------

WAC_FOREIGN = f"""
@prefix acl: <http://www.w3.org/ns/auth/acl#> .
@prefix foaf: <http://xmlns.com/foaf/0.1/> .
<#owner> a acl:Authorization ;
    acl:agent <{OWNER}> ;
    acl:accessTo <{SHARED}> ; acl:default <{SHARED}> ;
    acl:mode acl:Read, acl:Write, acl:Control .
<#public> a acl:Authorization ;
    acl:agentClass foaf:Agent ;
    acl:accessTo <{SHARED}> ;
    acl:mode acl:Read .
[] a acl:Authorization ;
    acl:agent <{OTHER_APP}> ;
    acl:origin <https://app.example> ;
    acl:accessTo <{SHARED}> ; acl:default <{SHARED}> ;
    acl:mode acl:Read, acl:Append ;
    <http://www.w3.org/2000/01/rdf-schema#comment> "written by another app"@en .
"""

ACP_FOREIGN = f"""
@prefix acp: <http://www.w3.org/ns/solid/acp#> .
@prefix acl: <http://www.w3.org/ns/auth/acl#> .
<> a acp:AccessControlResource ;
    acp:resource <{SHARED}> ;
    acp:accessControl <#fullOwnerAccess>, <#public>, _:app ;
    acp:memberAccessControl <#fullOwnerAccess> .
<#fullOwnerAccess> a acp:AccessControl ; acp:apply <#ownerPolicy> .
<#ownerPolicy> a acp:Policy ;
    acp:allow acl:Read, acl:Write, acl:Control ;
    acp:anyOf <#ownerMatcher> .
<#ownerMatcher> a acp:Matcher ; acp:agent <{OWNER}> .
<#public> a acp:AccessControl ; acp:apply [
    a acp:Policy ; acp:allow acl:Read ;
    acp:allOf [ a acp:Matcher ; acp:agent acp:PublicAgent ]
] .
_:app a acp:AccessControl ; acp:apply [
    a acp:Policy ; acp:allow acl:Read, acl:Append ;
    acp:allOf [ a acp:Matcher ; acp:agent <{OTHER_APP}> ; acp:client <https://app.example/id> ]
] .
"""


def foreign_document(fmt: AccessDocumentFormat) -> Graph:
    text = WAC_FOREIGN if fmt is WAC else ACP_FOREIGN
    return fmt.parse(text, doc_url(fmt, SHARED))


# --- the model -----------------------------------------------------------------------------------


def test_access_modes_and_iris() -> None:
    assert AccessMode.READ.iri == ACL.Read
    assert [m.label for m in AccessMode] == ["Read", "Append", "Write", "Control"]
    assert AccessMode.parse("read") is AccessMode.READ
    assert AccessMode.parse("acl:Append") is AccessMode.APPEND
    assert AccessMode.parse(str(ACL.Control)) is AccessMode.CONTROL
    assert AccessMode.from_iri(ACL.Write) is AccessMode.WRITE
    assert AccessMode.from_iri(ACL.Fly) is None
    with pytest.raises(InvalidGrant):
        AccessMode.parse("Delete")


def test_errors_are_vrm_agent_errors() -> None:
    for error in (OwnerLockout, ForbiddenMode, InvalidGrant, WrongDocument, MalformedDocument):
        assert issubclass(error, AccessError)
    assert issubclass(AccessError, VrmAgentError)


def test_grant_json_round_trip() -> None:
    grant = Grant.new(
        ACME, SHARED, ["Read", AccessMode.APPEND], LATER, members=True,
        agreement="https://localhost:3000/alice/agreements/7#it", now=NOW,
    )
    data = grant.to_json()
    assert {"id", "agent", "resources", "modes", "expires"} <= data.keys()
    assert data["resources"] == [SHARED]
    assert data["modes"] == ["Read", "Append"]
    assert data["expires"] == "2030-01-31T12:00:00Z"
    assert Grant.from_json(data) == grant
    only_list = {k: v for k, v in data.items() if k != "resource"}
    assert Grant.from_json(only_list) == grant
    assert len(grant.id) == 32 and grant.created == NOW


@pytest.mark.parametrize(
    "changes",
    [
        {"modes": []},
        {"modes": ["Fly"]},
        {"expires": "2030-01-01T00:00:00"},  # naive
        {"expires": "soon"},
        {"agent": "acme"},
        {"agent": "http://www.w3.org/ns/solid/acp#PublicAgent"},
        {"agent": "http://xmlns.com/foaf/0.1/Agent"},
        {"resource": SHARED + "#frag"},
        {"resource": "http://localhost:3000/alice/a b"},
        {"id": "../evil"},
        {"id": ""},
        {"modes": "Read"},
        {"members": True, "resource": NOTE},
    ],
)
def test_grant_validation(changes: dict[str, object]) -> None:
    data = make_grant().to_json()
    data.pop("resources")
    data.update(changes)
    with pytest.raises(InvalidGrant):
        Grant.from_json(data)


def test_grant_from_json_needs_its_fields() -> None:
    with pytest.raises(InvalidGrant):
        Grant.from_json({"agent": ACME, "resource": SHARED, "modes": ["Read"],
                         "expires": "2030-01-01T00:00:00Z"})
    with pytest.raises(InvalidGrant):
        Grant.from_json({"id": "x", "agent": ACME, "resources": [SHARED, NOTE],
                         "modes": ["Read"], "expires": "2030-01-01T00:00:00Z"})


def test_expiry_is_timezone_aware_and_normalised_to_utc() -> None:
    paris = timezone(timedelta(hours=2))
    local = datetime(2030, 6, 1, 14, 0, tzinfo=paris)
    grant = make_grant(expires=local)
    assert grant.expires == datetime(2030, 6, 1, 12, 0, tzinfo=UTC)
    assert grant.expires.utcoffset() == timedelta(0)
    assert grant == make_grant(expires=datetime(2030, 6, 1, 12, 0, tzinfo=UTC))
    assert grant.to_json()["expires"] == "2030-06-01T12:00:00Z"
    with pytest.raises(InvalidGrant):
        make_grant(expires=datetime(2030, 6, 1, 12, 0))
    with pytest.raises(InvalidGrant):
        make_grant(created=datetime(2030, 6, 1, 12, 0))


def test_expired_and_next_expiry() -> None:
    soon = make_grant("a", expires=NOW + timedelta(hours=1))
    gone = make_grant("b", expires=NOW - timedelta(seconds=1))
    edge = make_grant("c", expires=NOW)
    late = make_grant("d", expires=NOW + timedelta(days=9))
    grants = [soon, gone, edge, late]
    assert expired(grants, NOW) == [gone, edge]
    # The same instant in another zone gives the same answer.
    assert expired(grants, NOW.astimezone(timezone(timedelta(hours=-5)))) == [gone, edge]
    assert next_expiry(grants) == gone.expires
    assert next_expiry([]) is None
    assert soon.is_expired(NOW + timedelta(hours=1))
    with pytest.raises(AccessError):
        expired(grants, datetime(2030, 1, 1))


def test_check_modes() -> None:
    check_modes(make_grant(modes=(AccessMode.READ, AccessMode.APPEND)), OWNER)
    for mode in (AccessMode.WRITE, AccessMode.CONTROL):
        with pytest.raises(ForbiddenMode):
            check_modes(make_grant(modes=(AccessMode.READ, mode)), OWNER)
    # The owner may be given anything.
    check_modes(make_grant(agent=OWNER, modes=tuple(AccessMode)), OWNER)


# --- format_for ----------------------------------------------------------------------------------


def test_format_for_uses_the_link_types() -> None:
    assert format_for({ACP_ACCESS_CONTROL_RESOURCE}) is ACP
    assert format_for({"http://www.w3.org/ns/ldp#Resource", ACP_ACCESS_CONTROL_RESOURCE}) is ACP
    assert format_for(set()) is WAC
    assert format_for({"http://www.w3.org/ns/ldp#Resource"}) is WAC
    for fmt in FORMATS:
        assert isinstance(fmt, AccessDocumentFormat)
        assert fmt.content_type == "text/turtle"
    assert (WAC.name, ACP.name) == ("wac", "acp")


# --- both formats --------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS, ids=lambda f: f.name)
def test_add_and_remove_on_a_new_document(fmt: AccessDocumentFormat) -> None:
    url = doc_url(fmt, SHARED)
    initial = start(fmt)
    fmt.check_owner_keeps_control(initial, SHARED, OWNER)
    assert fmt.read_grants(initial, url) == []
    grant = make_grant(agreement="urn:uuid:5f0c", created=NOW)
    with_one = fmt.apply_changes(initial, url, SHARED, OWNER, add=[grant])
    assert fmt.read_grants(with_one, url) == [grant]
    without = fmt.apply_changes(with_one, url, SHARED, OWNER, remove=[grant.id])
    assert fmt.read_grants(without, url) == []
    assert isomorphic(without, initial)
    assert len(initial) == len(start(fmt))  # the input was not changed


@pytest.mark.parametrize("fmt", FORMATS, ids=lambda f: f.name)
def test_an_empty_document_is_refused(fmt: AccessDocumentFormat) -> None:
    # No owner rule at all: writing only the vendor's grant would lock the owner out.
    with pytest.raises(OwnerLockout):
        fmt.apply_changes(Graph(), doc_url(fmt, SHARED), SHARED, OWNER, add=[make_grant()])


@pytest.mark.parametrize("fmt", FORMATS, ids=lambda f: f.name)
def test_revoking_works_on_a_document_without_owner_control(fmt: AccessDocumentFormat) -> None:
    url = doc_url(fmt, SHARED)
    grants = [make_grant("a"), make_grant("b")]
    graph = fmt.apply_changes(start(fmt), url, SHARED, OWNER, add=grants)
    # Someone else removes the owner's own rule afterwards (the owner relies on the server's).
    owner_rule = URIRef(url + "#owner")
    for node in (owner_rule, URIRef(url + "#owner-policy"), URIRef(url + "#owner-matcher")):
        graph.remove((node, None, None))
        graph.remove((None, None, node))
    with pytest.raises(OwnerLockout):
        fmt.check_owner_keeps_control(graph, SHARED, OWNER)
    # A revoke still goes through: removing a vendor's access never costs the owner anything...
    revoked = fmt.apply_changes(graph, url, SHARED, OWNER, remove=["a"])
    assert [g.id for g in fmt.read_grants(revoked, url)] == ["b"]
    # ... but no new grant is written into such a document.
    with pytest.raises(OwnerLockout):
        fmt.apply_changes(graph, url, SHARED, OWNER, add=[make_grant("c")], remove=["a"])


def test_revoking_the_owners_only_control_is_refused() -> None:
    url = doc_url(WAC, SHARED)
    owner_grant = make_grant("mine", agent=OWNER, modes=tuple(AccessMode))
    graph = WAC.apply_changes(start(WAC), url, SHARED, OWNER, add=[owner_grant])
    graph.remove((URIRef(url + "#owner"), None, None))
    WAC.check_owner_keeps_control(graph, SHARED, OWNER)
    with pytest.raises(OwnerLockout):
        WAC.apply_changes(graph, url, SHARED, OWNER, remove=["mine"])


@pytest.mark.parametrize("fmt", FORMATS, ids=lambda f: f.name)
def test_foreign_rules_survive_add_and_remove(fmt: AccessDocumentFormat) -> None:
    url = doc_url(fmt, SHARED)
    original = foreign_document(fmt)
    assert fmt.read_grants(original, url) == []
    assert len(fmt.foreign_rules(original)) == 3
    grants = [
        make_grant("a", ACME, modes=(AccessMode.READ,), members=True),
        make_grant("b", BOLT, modes=(AccessMode.APPEND,)),
    ]
    edited = fmt.apply_changes(original, url, SHARED, OWNER, add=grants)
    # Every original triple is still there, as the very same terms (blank nodes included).
    assert triples_of(original) <= triples_of(edited)
    assert isomorphic(fmt.foreign_triples(edited), original)
    assert fmt.read_grants(edited, url) == grants
    # And after the trip through Turtle a server would make.
    reread = roundtrip(fmt, edited, url)
    assert isomorphic(fmt.foreign_triples(reread), original)
    assert fmt.read_grants(reread, url) == grants
    assert len(fmt.foreign_rules(reread)) == 3
    # Removing our grants gives back exactly the original document.
    back = fmt.apply_changes(reread, url, SHARED, OWNER, remove=["a", "b"])
    assert isomorphic(back, original)


@pytest.mark.parametrize("fmt", FORMATS, ids=lambda f: f.name)
def test_fifty_grants_in_one_change(fmt: AccessDocumentFormat) -> None:
    url = doc_url(fmt, SHARED)
    original = foreign_document(fmt)
    grants = [
        make_grant(f"g{i:02d}", f"http://localhost:3000/vendor{i}/profile/card#me",
                   modes=(AccessMode.READ,) if i % 2 else (AccessMode.READ, AccessMode.APPEND),
                   expires=NOW + timedelta(hours=i + 1), members=i % 3 == 0,
                   agreement=f"agreement-{i}")
        for i in range(50)
    ]
    edited = fmt.apply_changes(original, url, SHARED, OWNER, add=grants)
    assert fmt.read_grants(roundtrip(fmt, edited, url), url) == grants
    assert isomorphic(fmt.foreign_triples(edited), original)
    # A second batch: 25 revokes and 5 new grants, still one document.
    new = [make_grant(f"n{i}", BOLT, resource=SHARED) for i in range(5)]
    revoked = [g.id for g in grants[::2]]
    edited2 = fmt.apply_changes(edited, url, SHARED, OWNER, add=new, remove=revoked)
    assert fmt.read_grants(edited2, url) == sorted(grants[1::2] + new, key=lambda g: g.id)
    assert next_expiry(fmt.read_grants(edited2, url)) == grants[1].expires


@pytest.mark.parametrize("fmt", FORMATS, ids=lambda f: f.name)
def test_adding_an_existing_id_replaces_it(fmt: AccessDocumentFormat) -> None:
    url = doc_url(fmt, SHARED)
    first = make_grant("same", modes=(AccessMode.READ,), members=True)
    second = make_grant("same", modes=(AccessMode.APPEND,), expires=LATER + timedelta(days=1))
    graph = fmt.apply_changes(start(fmt), url, SHARED, OWNER, add=[first])
    graph = fmt.apply_changes(graph, url, SHARED, OWNER, add=[second])
    assert fmt.read_grants(graph, url) == [second]
    assert isomorphic(fmt.apply_changes(graph, url, SHARED, OWNER, remove=["same"]), start(fmt))


@pytest.mark.parametrize("fmt", FORMATS, ids=lambda f: f.name)
def test_batches_are_checked(fmt: AccessDocumentFormat) -> None:
    url = doc_url(fmt, SHARED)
    graph = start(fmt)
    grant = make_grant("dup")
    # A retried request gives the same grant twice: fine.
    assert fmt.read_grants(fmt.apply_changes(graph, url, SHARED, OWNER, add=[grant, grant]), url)
    with pytest.raises(InvalidGrant):
        fmt.apply_changes(graph, url, SHARED, OWNER, add=[grant, make_grant("dup", BOLT)])
    with pytest.raises(WrongDocument):
        fmt.apply_changes(graph, url, SHARED, OWNER, add=[make_grant(resource=NOTE)])
    # Revoking a grant that is not there (a racing revoke) changes nothing.
    assert isomorphic(fmt.apply_changes(graph, url, SHARED, OWNER, remove=["nope"]), graph)


@pytest.mark.parametrize("fmt", FORMATS, ids=lambda f: f.name)
@pytest.mark.parametrize("mode", [AccessMode.WRITE, AccessMode.CONTROL])
def test_write_or_control_for_a_vendor_is_refused(
    fmt: AccessDocumentFormat, mode: AccessMode
) -> None:
    url = doc_url(fmt, SHARED)
    with pytest.raises(ForbiddenMode):
        fmt.apply_changes(start(fmt), url, SHARED, OWNER, add=[make_grant(modes=(mode,))])
    # The owner's own grant may carry them.
    owner_grant = make_grant(agent=OWNER, modes=(mode,))
    graph = fmt.apply_changes(start(fmt), url, SHARED, OWNER, add=[owner_grant])
    assert fmt.read_grants(graph, url) == [owner_grant]


@pytest.mark.parametrize("fmt", FORMATS, ids=lambda f: f.name)
def test_turtle_round_trip_is_absolute_and_keeps_grants(fmt: AccessDocumentFormat) -> None:
    url = doc_url(fmt, SHARED)
    paris = timezone(timedelta(hours=2))
    grants = [
        make_grant("iri", agreement="https://localhost:3000/alice/agreements/1#a", created=NOW,
                   expires=datetime(2031, 3, 4, 5, 6, 7, 890000, tzinfo=paris)),
        make_grant("plain", BOLT, modes=(AccessMode.APPEND,), agreement="agreement 42",
                   members=True),
    ]
    graph = fmt.apply_changes(foreign_document(fmt), url, SHARED, OWNER, add=grants)
    text = fmt.serialize(graph, url)
    assert "@base" not in text
    for iri in re.findall(r"<([^>]*)>", text):
        assert re.match(r"[a-z][a-z0-9+.-]*:", iri), f"relative IRI <{iri}> in {text}"
    # Parsed with any base, absolute IRIs give the same grants for this document.
    reread = fmt.parse(text, "http://elsewhere.example/x")
    assert fmt.read_grants(reread, url) == grants
    assert fmt.read_grants(reread, url)[0].expires.tzinfo is not None


@pytest.mark.parametrize("fmt", FORMATS, ids=lambda f: f.name)
def test_serialize_refuses_a_graph_made_for_another_document(fmt: AccessDocumentFormat) -> None:
    url = doc_url(fmt, SHARED)
    graph = fmt.apply_changes(start(fmt), url, SHARED, OWNER, add=[make_grant()])
    with pytest.raises(WrongDocument):
        fmt.serialize(graph, doc_url(fmt, NOTE))


@pytest.mark.parametrize("fmt", FORMATS, ids=lambda f: f.name)
def test_malformed_turtle(fmt: AccessDocumentFormat) -> None:
    with pytest.raises(MalformedDocument):
        fmt.parse("<a> <b> .", doc_url(fmt, SHARED))


@pytest.mark.parametrize("fmt", FORMATS, ids=lambda f: f.name)
def test_a_foreign_node_with_our_name_is_not_overwritten(fmt: AccessDocumentFormat) -> None:
    url = doc_url(fmt, SHARED)
    graph = start(fmt)
    graph.add((URIRef(url + "#vrm-grant-g1"), RDF.type, ACL.Authorization))
    with pytest.raises(WrongDocument):
        fmt.apply_changes(graph, url, SHARED, OWNER, add=[make_grant("g1")])


@pytest.mark.parametrize("fmt", FORMATS, ids=lambda f: f.name)
def test_unreadable_expiry_reads_as_already_expired(fmt: AccessDocumentFormat) -> None:
    url = doc_url(fmt, SHARED)
    graph = fmt.apply_changes(start(fmt), url, SHARED, OWNER, add=[make_grant()])
    node = URIRef(url + "#vrm-grant-g1")
    graph.remove((node, VRM.expires, None))
    graph.add((node, VRM.expires, Literal("whenever")))
    (grant,) = fmt.read_grants(graph, url)
    assert expired([grant], NOW) == [grant]
    # An expiry without an offset (hand-edited) is read as UTC.
    graph.set((node, VRM.expires, Literal("2030-02-01T00:00:00", datatype=VRM_XSD_DATETIME)))
    assert fmt.read_grants(graph, url)[0].expires == datetime(2030, 2, 1, tzinfo=UTC)


# --- WAC -----------------------------------------------------------------------------------------


def test_wac_grant_shape() -> None:
    url = doc_url(WAC, SHARED)
    grant = make_grant(modes=(AccessMode.READ, AccessMode.APPEND), members=True,
                       agreement="urn:uuid:1")
    graph = WAC.apply_changes(start(WAC), url, SHARED, OWNER, add=[grant])
    node = URIRef(url + "#vrm-grant-g1")
    assert (node, RDF.type, ACL.Authorization) in graph
    assert (node, ACL.agent, URIRef(ACME)) in graph
    assert (node, ACL.accessTo, URIRef(SHARED)) in graph
    assert (node, ACL.default, URIRef(SHARED)) in graph
    assert set(graph.objects(node, ACL.mode)) == {ACL.Read, ACL.Append}
    assert (node, VRM.managedBy, VRM.VrmAgent) in graph
    assert (node, VRM.grantId, Literal("g1")) in graph
    assert (node, VRM.agreement, URIRef("urn:uuid:1")) in graph
    assert not [t for t in graph if isinstance(t[0], BNode)]
    # Without members: accessTo only.
    graph = WAC.apply_changes(start(WAC), url, SHARED, OWNER, add=[make_grant()])
    assert (node, ACL.default, None) not in graph
    assert (node, ACL.accessTo, URIRef(SHARED)) in graph


def test_wac_initial_document_without_inherited_acl() -> None:
    graph = start(WAC)
    (owner_rule,) = graph.subjects(ACL.agent, URIRef(OWNER))
    assert (owner_rule, ACL.accessTo, URIRef(SHARED)) in graph
    assert (owner_rule, ACL.default, URIRef(SHARED)) in graph  # a container: members too
    assert set(graph.objects(owner_rule, ACL.mode)) == {ACL.Read, ACL.Write, ACL.Control}
    note = WAC.initial_document(doc_url(WAC, NOTE), NOTE, OWNER)
    assert (None, ACL.default, None) not in note


def test_wac_owner_lockout() -> None:
    url = doc_url(WAC, SHARED)
    text = f"""@prefix acl: <http://www.w3.org/ns/auth/acl#> .
    <#owner> a acl:Authorization ; acl:agent <{OWNER}> ; acl:accessTo <{SHARED}> ;
        acl:mode acl:Read, acl:Write ."""
    graph = WAC.parse(text, url)
    with pytest.raises(OwnerLockout, match="Control"):
        WAC.check_owner_keeps_control(graph, SHARED, OWNER)
    with pytest.raises(OwnerLockout):
        WAC.apply_changes(graph, url, SHARED, OWNER, add=[make_grant()])
    # Control on another resource, or in an untyped rule, does not count.
    graph.add((URIRef(url + "#x"), ACL.agent, URIRef(OWNER)))
    graph.add((URIRef(url + "#x"), ACL.accessTo, URIRef(SHARED)))
    graph.add((URIRef(url + "#x"), ACL.mode, ACL.Control))
    with pytest.raises(OwnerLockout):
        WAC.check_owner_keeps_control(graph, SHARED, OWNER)
    # The explicit repair adds an owner rule and removes nothing.
    repaired = WAC.with_owner_control(graph, url, SHARED, OWNER)
    assert triples_of(graph) < triples_of(repaired)
    WAC.check_owner_keeps_control(repaired, SHARED, OWNER)
    assert WAC.read_grants(WAC.apply_changes(repaired, url, SHARED, OWNER, add=[make_grant()]),
                           url)


def test_wac_public_control_counts_for_the_owner() -> None:
    url = doc_url(WAC, SHARED)
    graph = Graph()
    rule = URIRef(url + "#open")
    graph.add((rule, RDF.type, ACL.Authorization))
    graph.add((rule, ACL.agentClass, FOAF.Agent))
    graph.add((rule, ACL.accessTo, URIRef(SHARED)))
    for mode in (ACL.Read, ACL.Write, ACL.Control):
        graph.add((rule, ACL.mode, mode))
    WAC.check_owner_keeps_control(graph, SHARED, OWNER)


def test_wac_foreign_authorizations_summary() -> None:
    rules = {r.node: r for r in wac_module.foreign_authorizations(foreign_document(WAC))}
    public = rules[doc_url(WAC, SHARED) + "#public"]
    assert public.agent_classes == {str(FOAF.Agent)}
    assert public.modes == {AccessMode.READ} and public.this_resource and not public.members
    (app,) = [r for r in rules.values() if r.node.startswith("_:")]
    assert app.agents == {OTHER_APP} and app.restricted and app.members


INHERITED = f"""
@prefix acl: <http://www.w3.org/ns/auth/acl#> .
@prefix foaf: <http://xmlns.com/foaf/0.1/> .
@prefix vrm: <https://w3id.org/vrm-agent/ns#> .
@prefix xsd: <http://www.w3.org/2001/XMLSchema#> .
<#owner> a acl:Authorization ;
    acl:agent <{OWNER}> ;
    acl:accessTo <{POD}> ; acl:default <{POD}> ;
    acl:mode acl:Read, acl:Write, acl:Control .
<#public-profile> a acl:Authorization ;
    acl:agentClass foaf:Agent ;
    acl:accessTo <{POD}> ;
    acl:mode acl:Read .
<#readers> a acl:Authorization ;
    acl:agentClass acl:AuthenticatedAgent ;
    acl:default <{POD}> ;
    acl:mode acl:Read .
[] a acl:Authorization ;
    acl:agent <{OTHER_APP}> ;
    acl:default <{POD}> ;
    acl:mode acl:Append .
<#vrm-grant-parent> a acl:Authorization, vrm:Grant ;
    acl:agent <{ACME}> ;
    acl:accessTo <{POD}> ; acl:default <{POD}> ;
    acl:mode acl:Read ;
    vrm:managedBy vrm:VrmAgent ; vrm:grantId "parent" ;
    vrm:expires "2030-03-01T00:00:00Z"^^xsd:dateTime ; vrm:agreement <urn:uuid:a1> .
"""


def _rules_for(graph: Graph, resource: str) -> set[tuple[frozenset[object], frozenset[object]]]:
    """(subjects, modes) of every rule that applies to ``resource`` itself."""
    found = set()
    for rule in graph.subjects(ACL.accessTo, URIRef(resource)):
        who = frozenset(
            (p, o) for p, o in graph.predicate_objects(rule) if p in (ACL.agent, ACL.agentClass)
        )
        found.add((who, frozenset(graph.objects(rule, ACL.mode))))
    return found


def _inherited_rules(graph: Graph) -> set[tuple[frozenset[object], frozenset[object]]]:
    found = set()
    for rule in graph.subjects(ACL.default, URIRef(POD)):
        who = frozenset(
            (p, o) for p, o in graph.predicate_objects(rule) if p in (ACL.agent, ACL.agentClass)
        )
        found.add((who, frozenset(graph.objects(rule, ACL.mode))))
    return found


@pytest.mark.parametrize("resource", [SHARED, NOTE])
def test_wac_initial_document_keeps_what_the_inherited_acl_allowed(resource: str) -> None:
    inherited = WAC.parse(INHERITED, POD + ".acl")
    url = doc_url(WAC, resource)
    graph = WAC.initial_document(url, resource, OWNER, inherited, inherited_container=POD)
    # Exactly the rules that applied through acl:default now apply through acl:accessTo;
    # the accessTo-only public rule on the pod root did not apply and is not copied.
    assert _rules_for(graph, resource) == _inherited_rules(inherited)
    if resource.endswith("/"):
        # A container keeps passing them on to its members.
        assert set(graph.subjects(ACL.default, URIRef(resource))) == set(
            graph.subjects(ACL.accessTo, URIRef(resource))
        )
    else:
        assert (None, ACL.default, None) not in graph
    # The owner's rule came from the inherited ACL; no second owner rule was needed.
    assert len(set(graph.subjects(ACL.agent, URIRef(OWNER)))) == 1
    assert (URIRef(url + "#owner"), ACL.agent, URIRef(OWNER)) in graph
    # The grant given on the pod root with members keeps its id, end and agreement here.
    (grant,) = WAC.read_grants(graph, url)
    assert (grant.id, grant.agent, grant.resource) == ("parent", ACME, resource)
    assert grant.expires == datetime(2030, 3, 1, tzinfo=UTC)
    assert grant.agreement == "urn:uuid:a1"
    assert grant.members is resource.endswith("/")
    # The other app's blank-node rule stays a blank node, with its own fresh label.
    (app_rule,) = graph.subjects(ACL.agent, URIRef(OTHER_APP))
    assert isinstance(app_rule, BNode)
    assert not list(inherited.triples((app_rule, None, None)))
    # It can be serialised for its own URL and the inherited graph was not changed.
    WAC.serialize(graph, url)
    assert isomorphic(inherited, WAC.parse(INHERITED, POD + ".acl"))


def test_wac_initial_document_adds_the_owner_when_the_inherited_acl_lacks_it() -> None:
    inherited = WAC.parse(INHERITED, POD + ".acl")
    inherited.remove((URIRef(POD + ".acl#owner"), None, None))
    url = doc_url(WAC, SHARED)
    graph = WAC.initial_document(url, SHARED, OWNER, inherited)
    WAC.check_owner_keeps_control(graph, SHARED, OWNER)
    assert len(_rules_for(graph, SHARED)) == len(_inherited_rules(inherited)) + 1


def test_wac_inherited_container_selects_the_governing_defaults() -> None:
    inherited = WAC.parse(INHERITED, POD + ".acl")
    # Defaults naming another container do not apply (CSS matches the ACL's own container).
    graph = WAC.initial_document(doc_url(WAC, SHARED), SHARED, OWNER, inherited,
                                 inherited_container=POD + "other/")
    assert _rules_for(graph, SHARED) == {
        (frozenset({(ACL.agent, URIRef(OWNER))}), frozenset({ACL.Read, ACL.Write, ACL.Control}))
    }


def test_wac_damaged_grant_is_reported_and_removable() -> None:
    url = doc_url(WAC, SHARED)
    graph = WAC.apply_changes(start(WAC), url, SHARED, OWNER, add=[make_grant()])
    node = URIRef(url + "#vrm-grant-g1")
    graph.add((node, ACL.agentClass, FOAF.Agent))  # someone made our grant public
    assert WAC.read_grants(graph, url) == []
    assert WAC.damaged_grants(graph) == ["g1"]
    cleaned = wac_module.without_grant(graph, "g1")
    assert (node, None, None) not in cleaned
    assert isomorphic(cleaned, start(WAC))


def test_wac_module_functions_match_the_brief() -> None:
    url = doc_url(WAC, SHARED)
    grant = make_grant()
    graph = wac_module.with_grant(start(WAC), url, SHARED, grant, OWNER)
    assert wac_module.read_grants(graph, url) == [grant]
    assert wac_module.read_grants(wac_module.without_grant(graph, "g1"), url) == []


# --- ACP -----------------------------------------------------------------------------------------


def test_acp_initial_document_shape() -> None:
    url = doc_url(ACP, SHARED)
    graph = start(ACP)
    acr = URIRef(url)
    assert (acr, RDF.type, ACPNS.AccessControlResource) in graph
    assert (acr, ACPNS.resource, URIRef(SHARED)) in graph
    controls = set(graph.objects(acr, ACPNS.accessControl))
    assert len(controls) == 1
    (control,) = controls
    assert (acr, ACPNS.memberAccessControl, control) in graph
    (policy,) = graph.objects(control, ACPNS.apply)
    assert set(graph.objects(policy, ACPNS.allow)) == {ACL.Read, ACL.Write, ACL.Control}
    (matcher,) = graph.objects(policy, ACPNS.allOf)
    assert (matcher, ACPNS.agent, URIRef(OWNER)) in graph
    assert not [t for t in graph if isinstance(t[0], BNode) or isinstance(t[2], BNode)]
    # A non-container gets no member access control.
    note = ACP.initial_document(doc_url(ACP, NOTE), NOTE, OWNER)
    assert (None, ACPNS.memberAccessControl, None) not in note


def test_acp_grant_shape() -> None:
    url = doc_url(ACP, SHARED)
    grant = make_grant(modes=(AccessMode.READ, AccessMode.APPEND), members=True)
    graph = ACP.apply_changes(start(ACP), url, SHARED, OWNER, add=[grant])
    acr = URIRef(url)
    control = URIRef(url + "#vrm-grant-g1")
    policy = URIRef(url + "#vrm-grant-g1-policy")
    matcher = URIRef(url + "#vrm-grant-g1-matcher")
    assert (acr, ACPNS.accessControl, control) in graph
    assert (acr, ACPNS.memberAccessControl, control) in graph
    assert (control, RDF.type, ACPNS.AccessControl) in graph
    assert (control, ACPNS.apply, policy) in graph
    assert (policy, RDF.type, ACPNS.Policy) in graph
    assert set(graph.objects(policy, ACPNS.allow)) == {ACL.Read, ACL.Append}
    assert (policy, ACPNS.allOf, matcher) in graph
    assert (matcher, RDF.type, ACPNS.Matcher) in graph
    assert (matcher, ACPNS.agent, URIRef(ACME)) in graph
    assert (control, VRM.managedBy, VRM.VrmAgent) in graph
    assert (control, VRM.expires, None) in graph
    assert not [t for t in graph if isinstance(t[0], BNode) or isinstance(t[2], BNode)]
    # Without members: only acp:accessControl.
    graph = ACP.apply_changes(start(ACP), url, SHARED, OWNER, add=[make_grant()])
    assert (acr, ACPNS.accessControl, control) in graph
    assert (acr, ACPNS.memberAccessControl, control) not in graph
    # Removal takes the control, the policy, the matcher and the links.
    removed = acp_module.without_grant(graph, "g1")
    for node in (control, policy, matcher):
        assert (node, None, None) not in removed and (None, None, node) not in removed


def test_acp_root_style_acr_keeps_its_node() -> None:
    url = POD + ".acr"
    text = f"""@prefix acp: <http://www.w3.org/ns/solid/acp#> .
    @prefix acl: <http://www.w3.org/ns/auth/acl#> .
    <#root> a acp:AccessControlResource ; acp:resource <{POD}> ;
        acp:accessControl <#fullOwnerAccess> ; acp:memberAccessControl <#fullOwnerAccess> .
    <#fullOwnerAccess> a acp:AccessControl ; acp:apply <#fullOwnerPolicy> .
    <#fullOwnerPolicy> a acp:Policy ; acp:allow acl:Read, acl:Write, acl:Control ;
        acp:allOf <#ownerMatcher> .
    <#ownerMatcher> a acp:Matcher ; acp:agent <{OWNER}> ."""
    graph = ACP.parse(text, url)
    grant = make_grant(resource=POD, members=True)
    edited = ACP.apply_changes(graph, url, POD, OWNER, add=[grant])
    root = URIRef(url + "#root")
    assert (root, ACPNS.accessControl, URIRef(url + "#vrm-grant-g1")) in edited
    assert set(edited.subjects(ACPNS.resource, None)) == {root}  # no second ACR node
    assert ACP.read_grants(edited, url) == [grant]


def test_acp_document_of_another_resource_is_refused() -> None:
    url = doc_url(ACP, SHARED)
    with pytest.raises(WrongDocument):
        ACP.apply_changes(start(ACP), url, NOTE, OWNER, add=[make_grant(resource=NOTE)])


ACP_HEADER = """@prefix acp: <http://www.w3.org/ns/solid/acp#> .
@prefix acl: <http://www.w3.org/ns/auth/acl#> .
"""


def _acr(body: str) -> Graph:
    return ACP.parse(ACP_HEADER + f"<> a acp:AccessControlResource ; acp:resource <{SHARED}> ;\n"
                     + body, doc_url(ACP, SHARED))


def test_acp_owner_lockout_without_an_owner_control() -> None:
    url = doc_url(ACP, SHARED)
    graph = _acr(f"""acp:accessControl <#app> .
    <#app> acp:apply <#p> . <#p> acp:allow acl:Read ; acp:allOf <#m> .
    <#m> acp:agent <{OTHER_APP}> .""")
    with pytest.raises(OwnerLockout):
        ACP.apply_changes(graph, url, SHARED, OWNER, add=[make_grant()])
    repaired = ACP.with_owner_control(graph, url, SHARED, OWNER)
    assert triples_of(graph) < triples_of(repaired)
    assert ACP.read_grants(ACP.apply_changes(repaired, url, SHARED, OWNER, add=[make_grant()]),
                           url)


@pytest.mark.parametrize(
    "body",
    [
        # An allow that only applies with one particular client is not sure to reach the owner.
        f"""acp:accessControl <#o> . <#o> acp:apply <#p> .
        <#p> acp:allow acl:Read, acl:Write, acl:Control ; acp:allOf <#m> .
        <#m> acp:agent <{OWNER}> ; acp:client <https://app.example/id> .""",
        # A deny that may apply to the owner beats every allow.
        f"""acp:accessControl <#o>, <#d> . <#o> acp:apply <#p> .
        <#p> acp:allow acl:Read, acl:Write, acl:Control ; acp:allOf <#m> .
        <#m> acp:agent <{OWNER}> .
        <#d> acp:apply <#q> . <#q> acp:deny acl:Write ; acp:anyOf <#all> .
        <#all> acp:agent acp:AuthenticatedAgent .""",
        # ... also on the members of a container.
        f"""acp:accessControl <#o> ; acp:memberAccessControl <#d> . <#o> acp:apply <#p> .
        <#p> acp:allow acl:Read, acl:Write, acl:Control ; acp:allOf <#m> .
        <#m> acp:agent <{OWNER}> .
        <#d> acp:apply <#q> . <#q> acp:deny acl:Control ; acp:allOf <#m2> .
        <#m2> acp:client <https://app.example/id> .""",
        # A noneOf excluding the owner.
        f"""acp:accessControl <#o> . <#o> acp:apply <#p> .
        <#p> acp:allow acl:Read, acl:Write, acl:Control ; acp:anyOf <#pub> ; acp:noneOf <#m> .
        <#pub> acp:agent acp:PublicAgent . <#m> acp:agent <{OWNER}> .""",
    ],
)
def test_acp_owner_lockout_cases(body: str) -> None:
    graph = _acr(body)
    with pytest.raises(OwnerLockout):
        ACP.check_owner_keeps_control(graph, SHARED, OWNER)


def test_acp_owner_control_through_public_or_any_of() -> None:
    graph = _acr(f"""acp:accessControl <#o> . <#o> acp:apply <#p>, <#q> .
    <#p> acp:allow acl:Read, acl:Write ; acp:anyOf <#pub>, <#nobody> .
    <#pub> acp:agent acp:PublicAgent . <#nobody> acp:agent <{BOLT}> .
    <#q> acp:allow acl:Control ; acp:allOf <#m> ; acp:noneOf <#x> .
    <#m> acp:agent <{OWNER}> . <#x> acp:agent <{ACME}> .""")
    ACP.check_owner_keeps_control(graph, SHARED, OWNER)


def test_acp_foreign_policies_summary() -> None:
    rules = acp_module.foreign_policies(foreign_document(ACP))
    by_node = {r.node: r for r in rules}
    owner = by_node[doc_url(ACP, SHARED) + "#ownerPolicy"]
    assert owner.agents == {OWNER} and owner.this_resource and owner.members
    public = [r for r in rules if r.agent_classes == {str(ACPNS.PublicAgent)}]
    assert len(public) == 1 and public[0].modes == {AccessMode.READ}
    (app,) = [r for r in rules if r.agents == {OTHER_APP}]
    assert app.restricted and app.modes == {AccessMode.READ, AccessMode.APPEND}


def test_acp_damaged_grant_is_reported_and_removable() -> None:
    url = doc_url(ACP, SHARED)
    graph = ACP.apply_changes(start(ACP), url, SHARED, OWNER, add=[make_grant()])
    policy = URIRef(url + "#vrm-grant-g1-policy")
    extra = URIRef(url + "#sneaky")
    graph.add((policy, ACPNS.anyOf, extra))
    graph.add((extra, ACPNS.agent, ACPNS.PublicAgent))
    assert ACP.read_grants(graph, url) == []
    assert ACP.damaged_grants(graph) == ["g1"]
    cleaned = acp_module.without_grant(graph, "g1")
    assert ACP.damaged_grants(cleaned) == []
    assert (policy, None, None) not in cleaned


def test_acp_members_grant_and_initial_document_ignore_inherited() -> None:
    inherited = WAC.parse(INHERITED, POD + ".acl")
    url = doc_url(ACP, SHARED)
    # ACP rules add up: nothing is copied from the ancestors.
    assert isomorphic(ACP.initial_document(url, SHARED, OWNER, inherited), start(ACP))

"""The shapes compiled into graph checks give pyshacl's verdicts: the same focus nodes, paths and
messages, on valid records of every kind, on the broken ones of test_shapes, on the records the
daemon writes (agreement records in every state, audit events, terms, the data map, grant index
entries) and on many random variants of them. No network, no pod."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rdflib import BNode, Graph, Literal, URIRef
from rdflib import namespace as rdfns  # not its closed namespaces: pytest probes module names
from rdflib.term import Node

from tests.test_shapes import BAD, VALID, broken, record
from vrm_agent.access.index import GrantView, entry_graph
from vrm_agent.access.model import AccessMode
from vrm_agent.errors import VrmAgentError
from vrm_agent.integrity import SigningKey, add_proof
from vrm_agent.ledger.audit import EVENT_NAMES, AuditEvent
from vrm_agent.ledger.categories import map_graph
from vrm_agent.ledger.store import Ledger
from vrm_agent.ledger.terms import TermsStore
from vrm_agent.negotiation.decide import agreement_for
from vrm_agent.negotiation.odrl import DPV, PD, Constraint, Policy, Rule, asks_of
from vrm_agent.negotiation.records import GrantedAccess, agreement_document, agreement_record_graph
from vrm_agent.negotiation.terms import ROSTER
from vrm_agent.negotiation.wire import policy_graph
from vrm_agent.vocabulary import shapes_graph
from vrm_agent.vocabulary.compiled import validate_graph
from vrm_agent.vocabulary.graph_checks import (
    NotCompilable,
    Undecided,
    compile_shapes,
    focus_count,
    graph_violations,
)
from vrm_agent.vocabulary.validation import ShapeViolation, Violation, violations

POD = "http://pod.example/alice/"
PERSON, VENDOR = f"{POD}profile/card#me", "http://pod.example/acme/profile/card#me"
NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)


def comparable(found: list[Violation]) -> list[tuple[str, str, str, str, str]]:
    """The violations with the shapes' own messages; where a shape has none, each side words
    its own, so those are compared only as being there."""
    own = {str(m) for m in shapes_graph().objects(None, rdfns.SH.message)}
    return sorted({(str(v.focus), v.path or "",
                    v.message if v.message in own else "(no sh:message)", v.severity, v.where)
                   for v in found})


def same(graph: Graph) -> tuple[list[tuple[str, str, str, str, str]], ...]:
    return comparable(graph_violations(graph, shapes_graph())), comparable(violations(graph))


def agreement_record(state: str = "Finalized", *, revoked: bool = False) -> Graph:
    request = Policy("urn:uuid:req-1", "Request", (
        Rule("permission", "use", (PD + "EmailAddress",),
             (Constraint("purpose", "eq", DPV + "DeliveryOfGoods"),
              Constraint("elapsedTime", "eq", "P7D"))),
        Rule("permission", "use", (PD + "TelephoneNumber",),
             (Constraint("purpose", "eq", DPV + "ServiceProvision"),
              Constraint("elapsedTime", "eq", "P30D")))))
    agreement = agreement_for(asks_of(request), uid="urn:uuid:agr-1", person=PERSON,
                              vendor=VENDOR, now=NOW)
    access = [GrantedAccess((f"{POD}vrm/contact/email-home",), NOW + timedelta(days=7))]
    signed = add_proof(agreement_document(agreement, access), SigningKey(), created=NOW)
    countersigned = add_proof(signed, SigningKey(), created=NOW)
    return agreement_record_graph(
        f"{POD}vrm/agreements/n1", agreement, countersigned, vendor=VENDOR, state=state,
        valid_from=NOW, valid_through=NOW + timedelta(days=30), terms=[f"{POD}vrm/terms/a#it"],
        invalidated=NOW + timedelta(days=1) if revoked else None,
        revoked_by=PERSON if revoked else None)


def audit_event(kind: str) -> Graph:
    return AuditEvent(kind, at=NOW, actor=PERSON, vendor=VENDOR,
                      agreement=f"{POD}vrm/agreements/n1#it", grant=f"{POD}a.acl#g1",
                      resources=(f"{POD}vrm/contact/email-home",), description="why",
                      id="e1").to_graph(f"{POD}vrm/audit/2026-06-01")


def terms(name: str) -> Graph:
    store = TermsStore(Ledger(None, POD), PERSON)  # type: ignore[arg-type]  # no pod: no I/O
    return store.as_personal(policy_graph(ROSTER[name](PERSON)), name)


def grant_entry() -> Graph:
    view = GrantView("g1", VENDOR, (f"{POD}a", f"{POD}box/"), frozenset({AccessMode.READ}),
                     NOW, False, f"{POD}vrm/negotiations/n1")
    return entry_graph(f"{POD}vrm/grant-index/s00", view, {f"{POD}a": f"{POD}a.acl"},
                       created=NOW)


# What the daemon writes, built by the daemon's own code.
DAEMON_RECORDS = {
    **{f"agreement {s}": (lambda s=s: agreement_record(s))
       for s in ("Agreed", "Finalized", "Terminated", "Expired")},
    "agreement Revoked": lambda: agreement_record("Revoked", revoked=True),
    **{f"audit {kind}": (lambda kind=kind: audit_event(kind)) for kind in EVENT_NAMES},
    **{f"terms {name}": (lambda name=name: terms(name)) for name in ROSTER},
    "data map": lambda: map_graph(f"{POD}vrm/categories/map", {
        "https://w3id.org/dpv/pd#EmailAddress": [f"{POD}vrm/contact/email-home"]}),
    "grant index entry": grant_entry,
}


def test_the_published_shapes_compile() -> None:
    compile_shapes(shapes_graph())


@pytest.mark.parametrize("kind", sorted(VALID))
def test_valid_examples_agree(kind: str) -> None:
    mine, reference = same(record(kind))
    assert mine == reference == []


@pytest.mark.parametrize(("case", "kind", "update", "path"), BAD, ids=[b[0] for b in BAD])
def test_broken_examples_agree(case: str, kind: str, update: str, path: str | None) -> None:
    mine, reference = same(broken(kind, update))
    assert reference, case
    assert mine == reference


@pytest.mark.parametrize("name", sorted(DAEMON_RECORDS))
def test_what_the_daemon_writes_agrees_and_conforms(name: str) -> None:
    graph = DAEMON_RECORDS[name]()
    assert focus_count(graph, shapes_graph()) > 0  # the shapes do look at it
    mine, reference = same(graph)
    assert mine == reference == []
    validate_graph(graph)


def test_a_revoked_agreement_needs_its_time_in_both() -> None:
    graph = agreement_record("Revoked")
    mine, reference = same(graph)
    assert [path for _, path, *_ in mine] == [""]
    assert mine == reference
    with pytest.raises(ShapeViolation, match="prov:invalidatedAtTime"):
        validate_graph(graph)


# --- random variants -----------------------------------------------------------------------------

ODD_VALUES: list[Node] = [
    Literal(""), Literal("text"), Literal("texte", lang="fr"), Literal("EUR"),
    Literal("-1", datatype=rdfns.XSD.decimal), Literal("2.5", datatype=rdfns.XSD.decimal),
    Literal("12", datatype=rdfns.XSD.integer), Literal("x", datatype=rdfns.XSD.integer),
    Literal("2026-02-30", datatype=rdfns.XSD.date), Literal("2026-06-01", datatype=rdfns.XSD.date),
    Literal("2026-06-01T12:00:00Z", datatype=rdfns.XSD.dateTime),
    Literal("2020-01-01T00:00:00", datatype=rdfns.XSD.dateTime),
    Literal("yesterday", datatype=rdfns.XSD.dateTime), Literal("true", datatype=rdfns.XSD.boolean),
    Literal("sha256:" + "ab" * 32), Literal("eddsa-rdfc-2022"),
    URIRef("https://w3id.org/vrm-agent/ns#Revoked"), URIRef("https://w3id.org/vrm-agent/ns#Nope"),
    URIRef("http://www.w3.org/ns/odrl/2/Agreement"), URIRef("mailto:alice@example.org"),
    URIRef("https://w3id.org/security#DataIntegrityProof"), URIRef(VENDOR), BNode("odd"),
]
# Every class a shape targets, and one none does.
CLASSES = sorted({*shapes_graph().objects(None, rdfns.SH.targetClass), URIRef("urn:other")},
                 key=str)
SAMPLES = {**{f"valid {k}": (lambda k=k: record(k)) for k in VALID}, **DAEMON_RECORDS}


@st.composite
def variants(draw: st.DrawFn) -> Graph:
    graph = SAMPLES[draw(st.sampled_from(sorted(SAMPLES)))]()
    triples = sorted(graph, key=lambda t: (str(t[0]), str(t[1]), str(t[2])))
    for _ in range(draw(st.integers(1, 4))):
        if not triples:
            break
        s, p, o = triples.pop(draw(st.integers(0, len(triples) - 1)))
        graph.remove((s, p, o))
        change = draw(st.sampled_from(("drop", "replace", "add", "retype")))
        if change == "replace":
            graph.add((s, p, draw(st.sampled_from(ODD_VALUES))))
        elif change == "add":
            graph.add((s, p, o))
            graph.add((s, p, draw(st.sampled_from(ODD_VALUES))))
        elif change == "retype":
            graph.add((s, p, o))
            graph.add((draw(st.sampled_from([s, o])), rdfns.RDF.type,
                       draw(st.sampled_from(CLASSES))))
    return graph


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(variants())
def test_random_variants_agree(graph: Graph) -> None:
    try:
        mine = graph_violations(graph, shapes_graph())
    except Undecided:
        with pytest.raises(VrmAgentError):
            violations(graph)  # pyshacl stops on it too
        return
    assert comparable(mine) == comparable(violations(graph))


def test_what_pyshacl_stops_on_is_left_to_it() -> None:
    graph = record("intent")
    intent = next(graph.subjects(rdfns.RDF.type, URIRef("https://w3id.org/vrm-agent/ns#Intent")))
    graph.set((intent, URIRef("http://schema.org/availabilityEnds"), BNode()))
    with pytest.raises(Undecided):
        graph_violations(graph, shapes_graph())
    with pytest.raises(VrmAgentError) as reference:
        violations(graph)
    with pytest.raises(VrmAgentError) as through_fallback:
        validate_graph(graph)
    assert type(through_fallback.value) is type(reference.value)


def test_shapes_with_features_it_does_not_evaluate_are_refused() -> None:
    shapes = Graph().parse(format="turtle", data="""
        @prefix sh: <http://www.w3.org/ns/shacl#> .
        <urn:s> sh:targetClass <urn:C> ; sh:closed true .""")
    with pytest.raises(NotCompilable):
        compile_shapes(shapes)

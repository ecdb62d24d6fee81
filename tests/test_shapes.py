"""The SHACL shapes: a valid example of every record kind conforms, and bad records are refused
with a violation that names the offending property. No network, no pod."""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path

import pytest
from rdflib import Graph, Literal, URIRef
from rdflib import namespace as rdfns  # not its closed namespaces: pytest probes module names

from vrm_agent.errors import VrmAgentError
from vrm_agent.vocabulary import SCHEMA, VRM, bind_prefixes, shapes_graph
from vrm_agent.vocabulary.validation import ShapeViolation, Violation, validate, violations

ROOT = Path(__file__).resolve().parents[1]
BASE = "https://alice.example/vrm/"

PREFIXES = """\
@prefix vrm:    <https://w3id.org/vrm-agent/ns#> .
@prefix schema: <http://schema.org/> .
@prefix odrl:   <http://www.w3.org/ns/odrl/2/> .
@prefix dpv:    <https://w3id.org/dpv#> .
@prefix pd:     <https://w3id.org/dpv/pd#> .
@prefix vcard:  <http://www.w3.org/2006/vcard/ns#> .
@prefix prov:   <http://www.w3.org/ns/prov#> .
@prefix sec:    <https://w3id.org/security#> .
@prefix dct:    <http://purl.org/dc/terms/> .
@prefix acl:    <http://www.w3.org/ns/auth/acl#> .
@prefix xsd:    <http://www.w3.org/2001/XMLSchema#> .
@prefix vrmp:   <https://w3id.org/vrm-agent/protocol#> .
"""

ALICE = "<https://alice.example/profile/card#me>"
ACME = f"<{BASE}vendors/acme#it>"

# One valid record of every kind the agent writes, each as the document it would be in the pod:
# (path of the document under BASE, its Turtle).
VALID: dict[str, tuple[str, str]] = {
    "vendor": ("vendors/acme", """
<#it> a vrm:Vendor, schema:Organization ;
    schema:name "ACME Outdoor" ;
    schema:url <https://acme.example/> ;
    schema:identifier "acme-outdoor" ;
    vrm:webId <https://acme.example/profile/card#me> .
"""),
    "relationship": ("relationships/acme", f"""
<#it> a vrm:Relationship ;
    vrm:vendor {ACME} ;
    vrm:relationshipState vrm:Member ;
    vrm:initiatedBy {ALICE} ;
    schema:startDate "2019-04-01"^^xsd:date ;
    vrm:personSignal true ;
    vrm:vendorSignal false ;
    vrm:loyaltyStatement "My first stop for hiking gear since 2019."@en .
"""),
    "membership": ("memberships/acme-trail-club", f"""
<#it> a schema:ProgramMembership ;
    schema:hostingOrganization {ACME} ;
    schema:programName "ACME Trail Club" ;
    schema:membershipNumber "TC-0042-7781" ;
    schema:membershipPointsEarned 1250 ;
    schema:member {ALICE} .
"""),
    "transactions": ("transactions/2024-05", f"""
<#chunk> a vrm:TransactionChunk ;
    schema:startDate "2024-05-01"^^xsd:date ;
    schema:endDate "2024-05-31"^^xsd:date ;
    dct:modified "2024-06-01T08:00:00Z"^^xsd:dateTime ;
    dct:hasPart <#t-3f9a>, <#t-77c1> .
<#t-3f9a> a vrm:Transaction ;
    schema:orderDate "2024-05-03"^^xsd:date ;
    schema:seller {ACME} ;
    schema:description "Trail shoes" ;
    schema:price 129.95 ;
    schema:priceCurrency "EUR" ;
    schema:orderNumber "A-1001" ;
    schema:category "outdoor" ;
    vrm:channel vrm:OnlineChannel ;
    vrm:receipt <../receipts/a-1001.pdf> ;
    schema:orderedItem [ a schema:Product ; schema:name "Trail shoes, size 39" ] .
<#t-77c1> a vrm:Transaction ;
    schema:orderDate "2024-05-20"^^xsd:date ;
    schema:seller {ACME} ;
    schema:description "Returned socks" ;
    schema:price 12.00 ;
    schema:priceCurrency "EUR" ;
    vrm:channel vrm:InStoreChannel ;
    vrm:refund true .
"""),
    "preference": ("preferences/contact-channel", f"""
<#it> a vrm:Preference ;
    schema:name "How to contact me" ;
    schema:propertyID "contact-channel" ;
    schema:value "email" ;
    vrm:vendor {ACME} .
"""),
    "email": ("contact/email", """
<#it> a vrm:EmailUnit ;
    schema:name "Home e-mail" ;
    vcard:hasEmail <mailto:alice@example.org> .
"""),
    "telephone": ("contact/telephone", """
<#it> a vrm:TelephoneUnit ;
    vcard:hasTelephone <tel:+31-20-555-0100> .
"""),
    "address": ("contact/address", """
<#it> a vrm:PostalAddressUnit ;
    vcard:hasAddress <#address> .
<#address> a vcard:Address ;
    vcard:street-address "Keizersgracht 1" ;
    vcard:locality "Amsterdam" ;
    vcard:postal-code "1015 AA" ;
    vcard:country-name "Netherlands" .
"""),
    "terms": ("terms/service-delivery-only", f"""
<#it> a vrm:PersonalTerms, odrl:Offer ;
    odrl:uid <#it> ;
    dct:title "Service delivery only"@en ;
    vrm:rosterTerm <https://example.org/ieee7012/SD-BASE> ;
    odrl:assigner {ALICE} ;
    odrl:permission [
        odrl:action odrl:use ;
        odrl:target <../contact/email> ;
        odrl:constraint [ odrl:leftOperand odrl:purpose ; odrl:operator odrl:eq ;
                          odrl:rightOperand dpv:ServiceProvision ] ] ;
    odrl:prohibition [ odrl:action odrl:distribute ] ,
        [ odrl:action odrl:use ;
          odrl:constraint [ odrl:leftOperand odrl:purpose ; odrl:operator odrl:isAnyOf ;
                            odrl:rightOperand dpv:Marketing, dpv:PersonalisedAdvertising ] ] .
"""),
    "agreement": ("agreements/acme-2024", f"""
<#it> a vrm:AgreementRecord ;
    vrm:vendor {ACME} ;
    vrm:policy <#policy> ;
    vrm:agreementState vrm:Finalized ;
    vrm:basedOnTerms <../terms/service-delivery-only#it> ;
    schema:validFrom "2024-06-01T00:00:00Z"^^xsd:dateTime ;
    schema:validThrough "2025-06-01T00:00:00Z"^^xsd:dateTime ;
    vrm:contentHash "sha256:{"ab" * 32}" ;
    vrm:signature <#alice-signature> ;
    dct:created "2024-05-31T17:02:11Z"^^xsd:dateTime .
<#policy> a odrl:Agreement ;
    odrl:uid <#policy> ;
    odrl:assigner {ALICE} ;
    odrl:assignee <https://acme.example/profile/card#me> ;
    odrl:permission [ odrl:action odrl:read ; odrl:target <../contact/email> ] .
<#alice-signature> a sec:DataIntegrityProof ;
    sec:cryptosuite "eddsa-rdfc-2022" ;
    sec:verificationMethod <https://alice.example/profile/card#key-1> ;
    sec:proofPurpose sec:assertionMethod ;
    sec:proofValue "z3FXQjecWufY46yg5abdVZsXqLhxhueuSoZgNSARiKBk9czhSePTFehP8c3PGfb6a22gkfUKKeT" ;
    dct:created "2024-05-31T17:02:11Z"^^xsd:dateTime .
"""),
    # A negotiation record as the pod renders the JSON-LD the agent stores: the agreement is
    # named by its uid (ODRL's JSON-LD context maps "uid" to "@id"), with no odrl:uid triple.
    "negotiation": ("negotiations/0123456789abcdef", f"""
<https://agent.example/negotiations/0123456789abcdef> a vrmp:NegotiationRecord ;
    vrm:vendor <https://acme.example/profile/card#me> ;
    vrmp:state vrmp:FINALIZED ;
    vrmp:awaitingPerson false ;
    vrmp:request <urn:uuid:request-1> ;
    vrmp:agreement <urn:uuid:agreement-1> ;
    dct:created "2024-05-31T17:02:11Z"^^xsd:dateTime ;
    dct:modified "2024-05-31T17:02:12Z"^^xsd:dateTime .
<urn:uuid:request-1> a odrl:Request ;
    odrl:permission [ odrl:action odrl:use ; odrl:target pd:EmailAddress ] .
<urn:uuid:agreement-1> a odrl:Agreement ;
    odrl:assigner {ALICE} ;
    odrl:assignee <https://acme.example/profile/card#me> ;
    odrl:permission [ odrl:action odrl:use ; odrl:target pd:EmailAddress ] .
"""),
    "import": ("imports/3f2a9c", """
<#it> a prov:Activity ;
    dct:identifier "sha256:3f2a9c" ;
    prov:generated <../transactions/acme/2024> ;
    prov:endedAtTime "2024-06-01T09:00:03Z"^^xsd:dateTime .
"""),
    "intent": ("intents/touring-bike", """
<#it> a vrm:Intent ;
    schema:itemOffered [ a schema:Product ; schema:name "touring bicycle" ;
                         schema:category "bicycles" ] ;
    schema:areaServed "Amsterdam" ;
    schema:availabilityStarts "2024-07-01"^^xsd:date ;
    schema:availabilityEnds "2024-07-31"^^xsd:date ;
    schema:priceSpecification [ a schema:PriceSpecification ;
        schema:minPrice 600.00 ; schema:maxPrice 1200.00 ; schema:priceCurrency "EUR" ] ;
    vrm:terms <../terms/service-delivery-only#it> ;
    schema:validThrough "2024-07-15T00:00:00Z"^^xsd:dateTime .
"""),
    "intent-audience": ("intent-audience/touring-bike", """
<#it> a vrm:IntentAudience ;
    vrm:intent <../intents/touring-bike#it> ;
    vrm:visibleTo <https://bikes.example/profile/card#me> ;
    vrm:visibleToAll false ;
    vrm:visibilityGrant "4f0c2a9e1b7d4c3a" ;
    vrm:acceptedOffer <../offers/touring-bike/3a9c01#it> ;
    prov:invalidatedAtTime "2024-07-10T12:00:00Z"^^xsd:dateTime .
"""),
    "intent-offer": ("offers/touring-bike/3a9c01", """
<#it> a vrm:IntentOffer, schema:Offer ;
    vrm:intent <../../intents/touring-bike#it> ;
    schema:seller <https://bikes.example/profile/card#me> ;
    schema:price 950.00 ;
    schema:priceCurrency "EUR" ;
    schema:availability schema:InStock ;
    schema:availabilityStarts "2024-07-05"^^xsd:date ;
    schema:description "A steel touring bicycle, fitted to you" ;
    vrm:acceptsTerms <../../terms/service-delivery-only#it> ;
    vrm:callbackAddress <https://bikes.example/inbox> ;
    dct:created "2024-07-02T08:00:00Z"^^xsd:dateTime .
"""),
    "payment": ("payments/2024-05-20-blog", """
<#it> a vrm:VoluntaryPayment ;
    schema:recipient <https://blog.example/#author> ;
    schema:price 5.00 ;
    schema:priceCurrency "EUR" ;
    schema:startTime "2024-05-20T18:30:00Z"^^xsd:dateTime ;
    schema:object <https://blog.example/posts/42> ;
    schema:description "For a useful article" .
"""),
    "loyalty": ("loyalty/acme", f"""
<#it> a vrm:LoyaltyStatement ;
    schema:text "I have bought here since 2019 and intend to keep doing so" ;
    vrm:vendor {ACME} .
"""),
    "payment-intention": ("payment-intentions/podcast-monthly", """
<#it> a vrm:PaymentIntention ;
    schema:recipient <#recipient> ;
    schema:price 4.50 ;
    schema:priceCurrency "EUR" ;
    schema:startDate "2026-01-01"^^xsd:date ;
    vrm:frequency "P1M"^^xsd:duration ;
    schema:object "the weekly episodes" ;
    vrm:reason "it keeps me company on the way to work" .
<#recipient> schema:name "A podcast" ; schema:url <https://podcast.example/> .
"""),
    "data-map": ("data-map", """
<#email> a vrm:DataCategoryMapping ;
    dpv:hasPersonalData pd:EmailAddress ;
    vrm:storedIn <contact/email> .
<#purchases> a vrm:DataCategoryMapping ;
    dpv:hasPersonalData pd:Purchase ;
    vrm:storedIn <transactions/> .
"""),
    "audit": ("audit/2024-06", f"""
<#e-0001> a vrm:AuditEvent ;
    vrm:eventType vrm:AccessGranted ;
    prov:atTime "2024-06-01T09:00:03Z"^^xsd:dateTime ;
    vrm:actor {ALICE} ;
    vrm:vendor {ACME} ;
    vrm:agreement <../agreements/acme-2024#it> ;
    vrm:grant <../contact/email.acl#vrm-grant-7f3c> ;
    vrm:affectedResource <../contact/email> ;
    schema:description "ACME may read the e-mail unit until 2025-06-01" .
"""),
    "grant": ("contact/email.acl", """
<#vrm-grant-7f3c> a acl:Authorization, vrm:Grant ;
    acl:agent <https://acme.example/profile/card#me> ;
    acl:accessTo <email> ;
    acl:mode acl:Read ;
    vrm:managedBy vrm:VrmAgent ;
    vrm:grantId "7f3c" ;
    vrm:expires "2025-06-01T00:00:00Z"^^xsd:dateTime ;
    vrm:agreement <../agreements/acme-2024#it> ;
    vrm:created "2024-06-01T09:00:03Z"^^xsd:dateTime .
"""),
    "change": ("changes/0192a7c3e5f14c0d9a8b7e6f5d4c3b2a", f"""
<#it> a vrm:ChangeRecord ;
    vrm:changedResource <../contact/address-home> ;
    vrm:changeId <urn:uuid:0192a7c3-e5f1-4c0d-9a8b-7e6f5d4c3b2a> ;
    prov:generatedAtTime "2024-06-02T10:00:00Z"^^xsd:dateTime ;
    prov:wasAttributedTo {ALICE} ;
    vrm:etag "\\"1717322400000-text/turtle\\"" ;
    vrm:notice <#notice-1> .
<#notice-1> a vrm:ChangeNotice ;
    vrm:noticeTo <https://acme.example/profile/card#me> ;
    vrm:underAgreement <https://agent.alice.example/negotiations/3f9a0c1d2e4b5a69> ;
    vrm:messageDelivery "delivered" ;
    vrm:notificationChannel <https://alice.example/.notifications/WebhookChannel2023/8c1d> ;
    vrm:readAcknowledgedAt "2024-06-02T10:00:02Z"^^xsd:dateTime ;
    vrm:etag "\\"1717322400000-text/turtle\\"" .
"""),
}


def record(kind: str) -> Graph:
    path, turtle = VALID[kind]
    return bind_prefixes(Graph()).parse(data=PREFIXES + turtle, format="turtle",
                                        publicID=BASE + path)


def paths(found: list[Violation]) -> set[str | None]:
    return {v.path for v in found}


@pytest.mark.parametrize("kind", sorted(VALID))
def test_valid_records_conform(kind: str) -> None:
    graph = record(kind)
    assert violations(graph) == []
    validate(graph)  # does not raise


def test_every_shape_target_has_a_valid_example() -> None:
    """So that "every kind of record" stays true when a shape is added."""
    examples = Graph()
    for kind in VALID:
        examples += record(kind)
    targets = set(shapes_graph().objects(None, rdfns.SH.targetClass))
    typed = set(examples.objects(None, rdfns.RDF.type))
    assert targets - typed == set()
    for prop in shapes_graph().objects(None, rdfns.SH.targetObjectsOf):
        if prop not in {URIRef("http://www.w3.org/ns/odrl/2/obligation"),
                        URIRef("http://www.w3.org/ns/odrl/2/duty")}:
            assert (None, prop, None) in examples, prop


def swap(subject: str, predicate: str, value: str) -> str:
    """A SPARQL update giving ``subject`` a new ``predicate`` value in place of the old one."""
    return (f"DELETE {{ {subject} {predicate} ?old }} INSERT {{ {subject} {predicate} {value} }}"
            f" WHERE {{ {subject} {predicate} ?old }}")


# (case, record kind, SPARQL update that breaks it, the property the violation must name)
BAD: list[tuple[str, str, str, str | None]] = [
    ("transaction without vendor", "transactions",
     "DELETE WHERE { <#t-3f9a> schema:seller ?v }", "schema:seller"),
    ("lower-case currency code", "transactions",
     swap("<#t-3f9a>", "schema:priceCurrency", '"eur"'), "schema:priceCurrency"),
    ("four-letter currency code", "transactions",
     swap("<#t-3f9a>", "schema:priceCurrency", '"EURO"'), "schema:priceCurrency"),
    # (typed out: rdflib's SPARQL cannot negate a decimal written as -129.95)
    ("negative amount", "transactions",
     swap("<#t-3f9a>", "schema:price", '"-129.95"^^xsd:decimal'), "schema:price"),
    ("amount as a float", "transactions",
     swap("<#t-3f9a>", "schema:price", "1.2995e2"), "schema:price"),
    ("date that is not a date", "transactions",
     swap("<#t-3f9a>", "schema:orderDate", '"last Tuesday"'), "schema:orderDate"),
    ("ill-formed xsd:date", "transactions",
     swap("<#t-3f9a>", "schema:orderDate", '"2024-02-30"^^xsd:date'), "schema:orderDate"),
    ("unknown channel", "transactions",
     swap("<#t-3f9a>", "vrm:channel", "vrm:CarrierPigeon"), "vrm:channel"),
    ("chunk part that is no transaction", "transactions",
     "DELETE WHERE { <#t-77c1> a vrm:Transaction }", "dct:hasPart"),
    ("vendor without a name", "vendor", "DELETE WHERE { <#it> schema:name ?n }", "schema:name"),
    ("unknown relationship state", "relationship",
     swap("<#it>", "vrm:relationshipState", "vrm:BestFriend"), "vrm:relationshipState"),
    ("relationship without state", "relationship",
     "DELETE WHERE { <#it> vrm:relationshipState ?s }", "vrm:relationshipState"),
    ("relationship without vendor", "relationship",
     "DELETE WHERE { <#it> vrm:vendor ?v }", "vrm:vendor"),
    ("membership without number", "membership",
     "DELETE WHERE { <#it> schema:membershipNumber ?n }", "schema:membershipNumber"),
    ("negative loyalty points", "membership",
     swap("<#it>", "schema:membershipPointsEarned", "-5"), "schema:membershipPointsEarned"),
    ("preference without value", "preference",
     "DELETE WHERE { <#it> schema:value ?v }", "schema:value"),
    ("e-mail as a plain string", "email",
     swap("<#it>", "vcard:hasEmail", '"alice@example.org"'), "vcard:hasEmail"),
    ("e-mail IRI that is not mailto:", "email",
     swap("<#it>", "vcard:hasEmail", "<https://example.org/alice>"), "vcard:hasEmail"),
    ("mailto: without a domain", "email",
     swap("<#it>", "vcard:hasEmail", "<mailto:alice>"), "vcard:hasEmail"),
    ("telephone that is not tel:", "telephone",
     swap("<#it>", "vcard:hasTelephone", '"+31 20 555 0100"'), "vcard:hasTelephone"),
    ("address without town", "address",
     "DELETE WHERE { <#address> vcard:locality ?l }", "vcard:locality"),
    ("personal terms without assigner", "terms",
     "DELETE WHERE { <#it> odrl:assigner ?a }", "odrl:assigner"),
    ("personal terms not typed odrl:Offer", "terms",
     "DELETE WHERE { <#it> a odrl:Offer }", "rdf:type"),
    ("personal terms without any rule", "terms",
     "DELETE WHERE { <#it> odrl:permission ?p } ; DELETE WHERE { <#it> odrl:prohibition ?p }",
     None),
    # A prohibition without an action forbids every action, which is ODRL; a permission
    # without one would allow every action, which terms must not say by omission.
    ("permission without action", "terms",
     "DELETE { ?r odrl:action odrl:use } WHERE { <#it> odrl:permission ?r . ?r odrl:action "
     "odrl:use }", "odrl:action"),
    ("agreement without assignee", "agreement",
     "DELETE WHERE { <#policy> odrl:assignee ?a }", "odrl:assignee"),
    ("agreement without parties", "agreement",
     "DELETE WHERE { <#policy> odrl:assignee ?a } ; DELETE WHERE { <#policy> odrl:assigner ?b }",
     "odrl:assigner"),
    ("agreement record without policy", "agreement",
     "DELETE WHERE { <#it> vrm:policy ?p }", "vrm:policy"),
    ("unknown agreement state", "agreement",
     swap("<#it>", "vrm:agreementState", "vrm:Maybe"), "vrm:agreementState"),
    ("agreement ending before it starts", "agreement",
     swap("<#it>", "schema:validThrough", '"2024-01-01T00:00:00Z"^^xsd:dateTime'),
     "schema:validFrom"),
    ("revoked agreement without revocation time", "agreement",
     swap("<#it>", "vrm:agreementState", "vrm:Revoked"), None),
    ("signature without key", "agreement",
     "DELETE WHERE { <#alice-signature> sec:verificationMethod ?k }", "sec:verificationMethod"),
    ("agreement named by a blank node", "negotiation",
     "DELETE { <urn:uuid:agreement-1> ?p ?o . ?s vrmp:agreement <urn:uuid:agreement-1> } "
     "INSERT { _:a ?p ?o . ?s vrmp:agreement _:a } WHERE { <urn:uuid:agreement-1> ?p ?o . "
     "?s vrmp:agreement <urn:uuid:agreement-1> }", None),
    ("negotiation record without vendor", "negotiation",
     "DELETE WHERE { ?n vrm:vendor ?v }", "vrm:vendor"),
    ("negotiation record in an unknown state", "negotiation",
     swap("?n", "vrmp:state", "vrmp:MAYBE"), "https://w3id.org/vrm-agent/protocol#state"),
    ("import without its file's digest", "import",
     "DELETE WHERE { <#it> dct:identifier ?d }", "dct:identifier"),
    ("import that wrote a string", "import",
     swap("<#it>", "prov:generated", '"chunk 1"'), "prov:generated"),
    ("intent without what", "intent",
     "DELETE WHERE { <#it> schema:itemOffered ?i . ?i ?p ?o }", "schema:itemOffered"),
    ("intent item without a name", "intent",
     "DELETE WHERE { <#it> schema:itemOffered ?i . ?i schema:name ?n }", "schema:itemOffered"),
    ("budget in a bad currency", "intent",
     'DELETE { ?b schema:priceCurrency ?c } INSERT { ?b schema:priceCurrency "euro" }'
     " WHERE { <#it> schema:priceSpecification ?b . ?b schema:priceCurrency ?c }",
     "schema:priceCurrency"),
    ("voluntary payment of nothing", "payment",
     swap("<#it>", "schema:price", "0.00"), "schema:price"),
    ("category that is not DPV", "data-map",
     swap("<#email>", "dpv:hasPersonalData", "<https://example.org/Email>"),
     "dpv:hasPersonalData"),
    ("category mapped nowhere", "data-map",
     "DELETE WHERE { <#email> vrm:storedIn ?r }", "vrm:storedIn"),
    ("audit event without time", "audit",
     "DELETE WHERE { <#e-0001> prov:atTime ?t }", "prov:atTime"),
    ("audit event of an unknown type", "audit",
     swap("<#e-0001>", "vrm:eventType", "vrm:Whatever"), "vrm:eventType"),
    ("grant without expiry", "grant",
     "DELETE WHERE { <#vrm-grant-7f3c> vrm:expires ?e }", "vrm:expires"),
    ("change record without its resource", "change",
     "DELETE WHERE { <#it> vrm:changedResource ?r }", "vrm:changedResource"),
    ("change id that is not a urn:uuid", "change",
     swap("<#it>", "vrm:changeId", "<https://example.org/change/1>"), "vrm:changeId"),
    ("change notice with an unknown delivery", "change",
     swap("<#notice-1>", "vrm:messageDelivery", '"maybe"'), "vrm:messageDelivery"),
    ("change notice to nobody", "change",
     "DELETE WHERE { <#notice-1> vrm:noticeTo ?v }", "vrm:noticeTo"),
]


def broken(kind: str, update: str) -> Graph:
    graph = record(kind)
    before = set(graph)
    path, _ = VALID[kind]
    sparql_prefixes = PREFIXES.replace("@prefix", "PREFIX").replace(" .\n", "\n")
    prologue = f"BASE <{BASE + path}>\n{sparql_prefixes}"
    graph.update(prologue + update)
    assert set(graph) != before, "the update changed nothing: the test case is wrong"
    return graph


@pytest.mark.parametrize(("case", "kind", "update", "path"), BAD, ids=[b[0] for b in BAD])
def test_bad_records_are_refused(case: str, kind: str, update: str, path: str | None) -> None:
    found = violations(broken(kind, update))
    assert found, f"{case}: no violation"
    assert path in paths(found), f"{case}: expected {path}, got {[str(v) for v in found]}"
    with pytest.raises(ShapeViolation) as raised:
        validate(broken(kind, update))
    if path is not None:
        assert path in str(raised.value)


def test_at_least_ten_kinds_of_bad_record() -> None:
    assert len({path for *_, path in BAD}) >= 10


def test_shape_violation_names_focus_property_and_message() -> None:
    graph = broken("transactions", "DELETE WHERE { <#t-3f9a> schema:seller ?v }")
    with pytest.raises(VrmAgentError) as raised:
        validate(graph)
    error = raised.value
    assert isinstance(error, ShapeViolation)
    text = str(error)
    assert f"<{BASE}transactions/2024-05#t-3f9a>" in text
    assert "schema:seller" in text
    assert "the vendor's IRI" in text  # the shape's own sh:message
    [violation] = error.violations
    assert violation.focus == URIRef(f"{BASE}transactions/2024-05#t-3f9a")
    assert violation.severity == "Violation"


def test_blank_node_problems_say_where_the_node_hangs() -> None:
    graph = broken("terms", "DELETE { ?r odrl:action odrl:use }"
                            " WHERE { <#it> odrl:permission ?r . ?r odrl:action odrl:use }")
    [violation] = violations(graph)
    assert violation.path == "odrl:action"
    where = f"<{BASE}terms/service-delivery-only#it> odrl:permission [...]"
    assert str(violation).startswith(where)


def test_many_problems_are_summarised() -> None:
    graph = broken("transactions", "DELETE WHERE { ?t schema:seller ?v }")
    with pytest.raises(ShapeViolation) as raised:
        validate(graph)
    assert len(raised.value.violations) == 2
    graph = Graph()
    for i in range(8):
        graph.add((URIRef(f"{BASE}x#e{i}"), rdfns.RDF.type, VRM.AuditEvent))
    with pytest.raises(ShapeViolation) as raised:
        validate(graph)
    assert len(raised.value.violations) == 16  # eight events, each without type and time
    assert "... and 11 more" in str(raised.value)


def thousand_transactions() -> Graph:
    graph = bind_prefixes(Graph())
    doc = BASE + "transactions/2023-01"
    chunk = URIRef(doc + "#chunk")
    graph.add((chunk, rdfns.RDF.type, VRM.TransactionChunk))
    for i in range(1000):
        t = URIRef(f"{doc}#t-{i:04d}")
        graph.add((chunk, rdfns.DCTERMS.hasPart, t))
        graph.add((t, rdfns.RDF.type, VRM.Transaction))
        day = Literal(f"2023-01-{i % 28 + 1:02d}", datatype=rdfns.XSD.date)
        graph.add((t, SCHEMA.orderDate, day))
        graph.add((t, SCHEMA.seller, URIRef(f"{BASE}vendors/v{i % 40}#it")))
        graph.add((t, SCHEMA.description, Literal(f"purchase {i}")))
        graph.add((t, SCHEMA.price, Literal(Decimal(i) / 4)))
        graph.add((t, SCHEMA.priceCurrency, Literal("EUR")))
        graph.add((t, VRM.channel, VRM.OnlineChannel))
        graph.add((t, SCHEMA.category, Literal("groceries")))
        graph.add((t, SCHEMA.orderNumber, Literal(f"N-{i}")))
    return graph


def test_a_chunk_of_a_thousand_transactions_validates() -> None:
    # How long it takes is measured by benchmarks/validation.py, not asserted here.
    graph = thousand_transactions()
    validate(graph)
    assert violations(graph) == []


def test_a_bad_transaction_among_a_thousand_is_found() -> None:
    graph = thousand_transactions()
    bad = URIRef(BASE + "transactions/2023-01#t-0500")
    graph.set((bad, SCHEMA.priceCurrency, Literal("E")))
    [violation] = violations(graph)
    assert (violation.focus, violation.path) == (bad, "schema:priceCurrency")


def test_validation_leaves_the_graph_alone() -> None:
    graph = record("agreement")
    before = set(graph)
    violations(graph)
    assert set(graph) == before


# --- the examples in docs/vocabulary.md ---------------------------------------------------------

DOC = ROOT / "docs" / "vocabulary.md"


def doc_examples() -> list[tuple[str, str]]:
    """(heading, Turtle) for each ```turtle block after the first (the first holds the prefixes
    every other block assumes)."""
    text = DOC.read_text(encoding="utf-8")
    blocks = []
    heading = ""
    for match in re.finditer(r"^(#+ [^\n]*)$|^```turtle\n(.*?)^```", text, re.M | re.S):
        if match.group(1):
            heading = match.group(1).lstrip("# ").strip()
        else:
            blocks.append((heading, match.group(2)))
    return blocks


def test_the_documentation_examples_conform() -> None:
    examples = doc_examples()
    assert len(examples) > 10
    prefixes = examples[0][1]
    for heading, turtle in examples[1:]:
        graph = Graph().parse(data=prefixes + turtle, format="turtle", publicID=BASE + "doc")
        assert len(graph) > 0, heading
        assert violations(graph) == [], heading


def test_terms_may_use_logical_constraints_and_prohibitions_without_an_action() -> None:
    graph = broken("terms", """INSERT { <#it> odrl:prohibition [ odrl:constraint [ odrl:or (
            [ odrl:leftOperand odrl:purpose ; odrl:operator odrl:isA ;
              odrl:rightOperand dpv:Marketing ]
            [ odrl:leftOperand odrl:recipient ; odrl:operator odrl:eq ;
              odrl:rightOperand <https://broker.example/#me> ] ) ] ] } WHERE {}""")
    assert violations(graph) == []
    half = broken("terms", """INSERT { <#it> odrl:prohibition [ odrl:constraint [
            odrl:leftOperand odrl:purpose ] ] } WHERE {}""")
    assert [v.path for v in violations(half)] != []

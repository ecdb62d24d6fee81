"""The vocabulary, its JSON-LD context, its generated page, the packaged copies, and the HTTP
handler that serves them with content negotiation. No network: the server runs on localhost."""

from __future__ import annotations

import asyncio
import json
import re
import socket
from collections.abc import AsyncIterator
from html.parser import HTMLParser
from pathlib import Path

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from pyld import jsonld
from rdflib import Graph, URIRef
from rdflib import namespace as rdfns  # not its closed namespaces: pytest probes module names
from rdflib.collection import Collection
from rdflib.compare import isomorphic

from vrm_agent.vocabulary import (
    AGREEMENT_STATES,
    AUDIT_EVENT_TYPES,
    CHANNELS,
    CONTEXT_PATH,
    HTML_PATH,
    NAMESPACE,
    PROTOCOL_VOCABULARY_PATH,
    RELATIONSHIP_STATES,
    SHAPES_PATH,
    VOCABULARY_PATH,
    VRM,
    context,
    shapes_graph,
    vocabulary_graph,
)
from vrm_agent.vocabulary.html import PACKAGED_FILES, SOURCE_DIR, generate, render_html, stale_files
from vrm_agent.vocabulary.http import (
    HTML,
    JSON_LD,
    TURTLE,
    add_vocabulary_routes,
    choose,
    parse_accept,
    serve_vocabulary,
)
from vrm_agent.vocabulary.validation import violations

# rdflib's own JSON-LD parser still builds a ConjunctiveGraph internally; not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore:ConjunctiveGraph is deprecated:DeprecationWarning")

ROOT = Path(__file__).resolve().parents[1]
RDF, RDFS, OWL, DCTERMS, SH = rdfns.RDF, rdfns.RDFS, rdfns.OWL, rdfns.DCTERMS, rdfns.SH
ONTOLOGY = URIRef(NAMESPACE.rstrip("#"))


def minted(graph: Graph) -> set[URIRef]:
    return {s for s in graph.subjects() if isinstance(s, URIRef) and s.startswith(NAMESPACE)}


def mentioned(graph: Graph) -> set[URIRef]:
    """Every term of our namespace a graph uses, in any position."""
    return {t for triple in graph for t in triple
            if isinstance(t, URIRef) and t.startswith(NAMESPACE)}


PROPERTY_TYPES = {OWL.ObjectProperty, OWL.DatatypeProperty, RDF.Property}


def properties(graph: Graph) -> set[URIRef]:
    return {s for s in minted(graph) if set(graph.objects(s, RDF.type)) & PROPERTY_TYPES}


# --- the vocabulary -----------------------------------------------------------------------------


def test_the_vocabulary_parses_and_has_an_ontology_header() -> None:
    g = Graph().parse(SOURCE_DIR / "vrm.ttl", format="turtle")
    assert (ONTOLOGY, RDF.type, OWL.Ontology) in g
    for predicate in (DCTERMS.title, DCTERMS.description, OWL.versionInfo, DCTERMS.license):
        assert g.value(ONTOLOGY, predicate) is not None, predicate
    assert str(g.value(ONTOLOGY, DCTERMS.creator)) == "vrm-agent project"
    assert str(g.value(ONTOLOGY, URIRef("http://purl.org/vocab/vann/preferredNamespaceUri"))) \
        == NAMESPACE


def test_every_minted_term_has_label_and_comment() -> None:
    g = vocabulary_graph()
    terms = minted(g)
    assert len(terms) > 60
    for term in terms:
        assert g.value(term, RDFS.label) is not None, f"{term} has no rdfs:label"
        assert g.value(term, RDFS.comment) is not None, f"{term} has no rdfs:comment"
        assert (term, RDFS.isDefinedBy, ONTOLOGY) in g, term
        assert set(g.objects(term, RDF.type)), f"{term} has no type"


def test_every_property_has_domain_and_range() -> None:
    g = vocabulary_graph()
    props = properties(g)
    assert len(props) > 25
    for prop in props:
        assert g.value(prop, RDFS.domain) is not None, f"{prop} has no rdfs:domain"
        assert g.value(prop, RDFS.range) is not None, f"{prop} has no rdfs:range"


def test_no_term_of_ours_is_used_without_being_defined() -> None:
    """In the vocabulary itself, in the shapes, and anywhere in the package's code."""
    defined = minted(vocabulary_graph())
    assert mentioned(vocabulary_graph()) - {ONTOLOGY} <= defined
    assert mentioned(shapes_graph()) <= defined
    used_in_code = {
        VRM[name]
        for path in (ROOT / "vrm_agent").rglob("*.py")
        for name in re.findall(r"\bVRM\.([A-Za-z_]\w*)", path.read_text(encoding="utf-8"))
    }
    assert used_in_code - defined == set(), "used in vrm_agent but not in vocab/vrm.ttl"


def test_enumerations_are_closed_and_match_the_shapes() -> None:
    g, shapes = vocabulary_graph(), shapes_graph()
    allowed_lists = [set(Collection(shapes, node)) for node in shapes.objects(None, SH["in"])]
    for cls, values in (
        (VRM.RelationshipState, set(RELATIONSHIP_STATES.values())),
        (VRM.Channel, set(CHANNELS.values())),
        (VRM.AgreementState, set(AGREEMENT_STATES.values())),
        (VRM.AuditEventType, set(AUDIT_EVENT_TYPES)),
    ):
        members = set(g.subjects(RDF.type, cls))
        one_of = set(Collection(g, g.value(cls, OWL.oneOf)))
        assert members == one_of == values, cls
        assert values in allowed_lists, f"no shape allows exactly the {cls} values"


def test_the_plain_names_match_the_importer() -> None:
    # The CSV importer's channel and state words are the keys of these maps.
    assert set(CHANNELS) == {"online", "in-store", "phone", "app", "mail", "other"}
    assert set(RELATIONSHIP_STATES) == {"none", "prospect", "customer", "member", "former"}


def test_reused_namespaces_are_the_usual_ones() -> None:
    g = vocabulary_graph()
    references = {str(o) for o in g.objects(ONTOLOGY, DCTERMS.references)}
    for namespace in ("http://schema.org/", "http://www.w3.org/ns/odrl/2/", "https://w3id.org/dpv#",
                      "https://w3id.org/dpv/pd#", "http://www.w3.org/2006/vcard/ns#"):
        assert namespace in references
    assert (VRM.Transaction, RDFS.subClassOf, URIRef("http://schema.org/Order")) in g
    assert (VRM.PersonalTerms, RDFS.subClassOf, URIRef("http://www.w3.org/ns/odrl/2/Offer")) in g


# --- the JSON-LD context ------------------------------------------------------------------------


def test_the_context_names_every_minted_term() -> None:
    ctx = context()["@context"]
    assert ctx["@version"] == 1.1
    prefixes = {k: v for k, v in ctx.items() if isinstance(v, str) and v.endswith(("#", "/"))}

    def expand(value: str) -> str:
        prefix, _, rest = value.partition(":")
        return prefixes[prefix] + rest if prefix in prefixes else value

    named = {
        expand(v if isinstance(v, str) else v["@id"])
        for k, v in ctx.items() if not k.startswith("@") and (isinstance(v, str) or "@id" in v)
    }
    missing = {str(t) for t in minted(vocabulary_graph())} - named
    assert missing == set()


def test_context_is_a_fresh_copy_each_time() -> None:
    first = context()
    first["@context"]["vrm"] = "changed"
    assert context()["@context"]["vrm"] == NAMESPACE


SAMPLE = {
    "@id": "https://alice.example/vrm/transactions/2024-05#t1",
    "type": "Transaction",
    "orderDate": "2024-05-03",
    "seller": "https://alice.example/vrm/vendors/acme#it",
    "description": "Trail shoes",
    "price": "129.95",
    "priceCurrency": "EUR",
    "channel": "OnlineChannel",
    "receipt": "https://alice.example/vrm/receipts/a-1001.pdf",
}


def test_the_context_expands_a_record_to_the_expected_iris() -> None:
    document = {"@context": context()["@context"], **SAMPLE}
    [expanded] = jsonld.expand(document)
    schema = "http://schema.org/"
    assert expanded["@type"] == [NAMESPACE + "Transaction"]
    assert expanded[schema + "orderDate"] == [
        {"@value": "2024-05-03", "@type": "http://www.w3.org/2001/XMLSchema#date"}]
    assert expanded[schema + "seller"] == [{"@id": "https://alice.example/vrm/vendors/acme#it"}]
    assert expanded[schema + "price"] == [
        {"@value": "129.95", "@type": "http://www.w3.org/2001/XMLSchema#decimal"}]
    assert expanded[schema + "priceCurrency"] == [{"@value": "EUR"}]
    assert expanded[NAMESPACE + "channel"] == [{"@id": NAMESPACE + "OnlineChannel"}]
    assert expanded[NAMESPACE + "receipt"] == [
        {"@id": "https://alice.example/vrm/receipts/a-1001.pdf"}]


def test_a_record_written_with_the_context_conforms() -> None:
    document = {"@context": context()["@context"], **SAMPLE}
    graph = Graph().parse(data=json.dumps(document), format="json-ld")
    assert len(graph) == len(SAMPLE) - 1  # one triple per key but @id
    assert violations(graph) == []


def test_context_terms_for_states_and_agreements() -> None:
    document = {
        "@context": context()["@context"],
        "@id": "https://alice.example/vrm/agreements/acme#it",
        "type": "AgreementRecord",
        "vendor": "https://alice.example/vrm/vendors/acme#it",
        "agreementState": "Finalized",
        "validFrom": "2024-06-01T00:00:00Z",
        "policy": {
            "@id": "https://alice.example/vrm/agreements/acme#policy",
            "type": "Agreement",
            "uid": "https://alice.example/vrm/agreements/acme#policy",
            "assigner": "https://alice.example/profile/card#me",
            "assignee": "https://acme.example/profile/card#me",
            "permission": {"action": "odrl:read", "target": "https://alice.example/vrm/contact/email"},
        },
    }
    graph = Graph().parse(data=json.dumps(document), format="json-ld")
    assert violations(graph) == []
    record = URIRef("https://alice.example/vrm/agreements/acme#it")
    assert graph.value(record, VRM.agreementState) == VRM.Finalized
    assert graph.value(record, URIRef("http://schema.org/validFrom")).datatype == rdfns.XSD.dateTime


# --- files: packaged copies and the generated page ---------------------------------------------


def test_the_package_finds_its_files() -> None:
    for path in (VOCABULARY_PATH, CONTEXT_PATH, SHAPES_PATH, HTML_PATH):
        assert path.is_file(), path


@pytest.mark.parametrize("name", PACKAGED_FILES)
def test_packaged_copies_are_identical_to_vocab(name: str) -> None:
    source = SOURCE_DIR / name
    copy = VOCABULARY_PATH.parent / name
    assert copy.read_bytes() == source.read_bytes(), (
        f"{copy} differs from {source}: run python -m vrm_agent.vocabulary.html")


def test_the_committed_page_equals_a_fresh_generation() -> None:
    assert (SOURCE_DIR / "vrm.html").read_text(encoding="utf-8") == generate(), (
        "vocab/vrm.html is stale: run python -m vrm_agent.vocabulary.html")
    assert stale_files() == []


def test_generation_is_deterministic() -> None:
    assert render_html(vocabulary_graph(), shapes_graph()) == render_html(
        Graph().parse(VOCABULARY_PATH), Graph().parse(SHAPES_PATH))


class _Anchors(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.ids: list[str] = []
        self.tags: set[str] = set()
        self.sources: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        for name, value in attrs:
            if name == "id" and value:
                self.ids.append(value)
            if name == "src" and value:
                self.sources.append(value)


def test_the_page_has_an_anchor_per_term_and_no_external_assets() -> None:
    page = HTML_PATH.read_text(encoding="utf-8")
    parser = _Anchors()
    parser.feed(page)
    assert len(parser.ids) == len(set(parser.ids)), "duplicate anchors"
    for term in minted(vocabulary_graph()):
        assert term[len(NAMESPACE):] in parser.ids, term
    assert not parser.tags & {"script", "link", "img", "iframe"}
    assert parser.sources == []
    assert "@import" not in page and "url(" not in page
    for target in re.findall(r'href="#([^"]+)"', page):
        assert target in parser.ids, f"broken link #{target}"


def test_the_page_shows_each_record_fields() -> None:
    page = HTML_PATH.read_text(encoding="utf-8")
    section = page[page.index('id="Transaction"'):]
    section = section[:section.index("</section>")]
    for field in ("schema:seller", "schema:priceCurrency", "vrm:channel", "^[A-Z]{3}$"):
        assert field in section


# --- content negotiation: the pure part ---------------------------------------------------------

OFFERED = [TURTLE, JSON_LD, HTML]


@pytest.mark.parametrize(("accept", "expected"), [
    (None, TURTLE),
    ("", TURTLE),
    ("*/*", TURTLE),
    ("text/turtle", TURTLE),
    ("application/ld+json", JSON_LD),
    ("text/html", HTML),
    ("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", HTML),
    ("text/turtle;q=0.2, application/ld+json;q=0.9", JSON_LD),
    ("text/html;q=0.1, */*;q=0.5", TURTLE),
    ("text/*", TURTLE),
    ("text/*, text/turtle;q=0", HTML),
    ("application/*", JSON_LD),
    ('application/ld+json;profile="http://www.w3.org/ns/json-ld#compacted, x";q=0.7, '
     "text/turtle;q=0.6", JSON_LD),
    ("TEXT/HTML", HTML),
    ("text/turtle;q=bogus, text/html;q=0.3", HTML),
    ("text/html;q=0.5, text/turtle;q=0.5", TURTLE),
    ("image/png", None),
    ("text/turtle;q=0, application/ld+json;q=0, text/html;q=0", None),
    ("application/json", None),
])
def test_choose(accept: str | None, expected: str | None) -> None:
    assert choose(accept, OFFERED) == expected


def test_parse_accept_keeps_q_and_skips_junk() -> None:
    assert parse_accept("a/b;q=0.5, junk, c/d") == [("a/b", 0.5), ("c/d", 1.0)]
    assert parse_accept("a/b;q=2") == []


# --- content negotiation over HTTP --------------------------------------------------------------


@pytest_asyncio.fixture(loop_scope="session")
async def client() -> AsyncIterator[TestClient]:
    app = web.Application()
    add_vocabulary_routes(app)
    async with TestClient(TestServer(app)) as test_client:
        yield test_client


async def get(client: TestClient, path: str, accept: str | None = None,
              **headers: str) -> tuple[aiohttp.ClientResponse, bytes]:
    if accept is not None:
        headers["Accept"] = accept
    response = await client.get(path, headers=headers, skip_auto_headers=["Accept"])
    return response, await response.read()


async def test_turtle_by_default(client: TestClient) -> None:
    for accept in (None, "*/*", "text/turtle"):
        response, body = await get(client, "/vocab", accept)
        assert response.status == 200
        assert response.headers["Content-Type"] == "text/turtle; charset=utf-8"
        assert response.headers["Vary"] == "Accept"
        assert isomorphic(Graph().parse(data=body, format="turtle"), vocabulary_graph())


async def test_json_ld(client: TestClient) -> None:
    response, body = await get(client, "/vocab", "application/ld+json")
    assert response.status == 200
    assert response.headers["Content-Type"] == "application/ld+json"
    assert response.headers["Vary"] == "Accept"
    assert isomorphic(Graph().parse(data=body, format="json-ld"), vocabulary_graph())


async def test_html_for_browsers(client: TestClient) -> None:
    browser = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
    response, body = await get(client, "/vocab", browser)
    assert response.status == 200
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    assert body == HTML_PATH.read_bytes()


async def test_q_values_decide(client: TestClient) -> None:
    response, _ = await get(client, "/vocab", "text/turtle;q=0.3, application/ld+json;q=0.8")
    assert response.headers["Content-Type"] == "application/ld+json"
    response, _ = await get(client, "/vocab", "text/html;q=0.9, text/turtle;q=0.4")
    assert response.headers["Content-Type"].startswith("text/html")
    response, _ = await get(client, "/vocab", "text/*;q=0.5, text/turtle;q=0")
    assert response.headers["Content-Type"].startswith("text/html")


async def test_406_when_nothing_fits(client: TestClient) -> None:
    for accept in ("image/png", "application/json", "text/turtle;q=0"):
        response, body = await get(client, "/vocab", accept)
        assert response.status == 406, accept
        assert response.headers["Vary"] == "Accept"
        assert b"text/turtle" in body


async def test_other_paths_to_the_vocabulary(client: TestClient) -> None:
    _, turtle = await get(client, "/vocab/vrm", "text/turtle")
    assert turtle == VOCABULARY_PATH.read_bytes()
    response, body = await get(client, "/vocab/vrm.html", "text/turtle")  # fixed, Accept aside
    assert response.headers["Content-Type"].startswith("text/html")
    assert "Vary" not in response.headers
    assert body == HTML_PATH.read_bytes()
    response, _ = await get(client, "/vocab/vrm.jsonld")
    assert response.headers["Content-Type"] == "application/ld+json"
    response, _ = await get(client, "/vocab/vrm.ttl")
    assert response.headers["Content-Type"].startswith("text/turtle")
    assert 'rel="alternate"' in (await get(client, "/vocab"))[0].headers["Link"]


async def test_the_context_has_its_own_path(client: TestClient) -> None:
    for path in ("/vocab/context", "/vocab/vrm.context.jsonld"):
        response, body = await get(client, path, "application/ld+json")
        assert response.status == 200
        assert response.headers["Content-Type"] == "application/ld+json"
        assert response.headers["Access-Control-Allow-Origin"] == "*"
        assert json.loads(body) == context()


async def test_the_shapes(client: TestClient) -> None:
    response, body = await get(client, "/vocab/shapes")
    assert response.headers["Content-Type"].startswith("text/turtle")
    assert isomorphic(Graph().parse(data=body, format="turtle"), shapes_graph())
    response, body = await get(client, "/vocab/shapes", "application/ld+json")
    assert isomorphic(Graph().parse(data=body, format="json-ld"), shapes_graph())
    response, _ = await get(client, "/vocab/shapes", "text/html")
    assert response.status == 406
    response, body = await get(client, "/vocab/vrm.shapes.ttl")
    assert body == SHAPES_PATH.read_bytes()


async def test_the_protocol_vocabulary(client: TestClient) -> None:
    response, body = await get(client, "/vocab/protocol")
    assert response.headers["Content-Type"].startswith("text/turtle")
    expected = Graph().parse(PROTOCOL_VOCABULARY_PATH)
    assert isomorphic(Graph().parse(data=body, format="turtle"), expected)
    response, body = await get(client, "/vocab/protocol", "application/ld+json")
    assert isomorphic(Graph().parse(data=body, format="json-ld"), expected)
    response, body = await get(client, "/vocab/vrmp.ttl")
    assert body == PROTOCOL_VOCABULARY_PATH.read_bytes()


def test_every_protocol_term_is_defined_with_label_and_comment() -> None:
    """Every vrmp: IRI the protocol context or a stored negotiation record names, and every
    value the protocol sends in a vocabulary-typed field (state, event, ended), is a term of
    the context defined in the protocol vocabulary, with a label and a comment."""
    from vrm_agent.linkeddata.contexts import PROTOCOL_CONTEXT, bundled_context
    from vrm_agent.negotiation.lws import EXTENSION_CONTEXT
    from vrm_agent.negotiation.protocol import State
    from vrm_agent.negotiation.records import _RECORD_TERMS

    vrmp = "https://w3id.org/vrm-agent/protocol#"
    protocol = bundled_context(PROTOCOL_CONTEXT)["@context"]
    named = set()
    for definitions in (protocol, _RECORD_TERMS, EXTENSION_CONTEXT):
        for value in definitions.values():
            iri = value if isinstance(value, str) else (
                value.get("@id") if isinstance(value, dict) else None)
            if isinstance(iri, str) and iri.startswith("vrmp:"):
                named.add(vrmp + iri[5:])
    graph = Graph().parse(PROTOCOL_VOCABULARY_PATH)
    undefined = sorted(t for t in named if not (
        graph.value(URIRef(t), rdfns.RDFS.label) and graph.value(URIRef(t), rdfns.RDFS.comment)))
    assert not undefined
    used = {s.value for s in State} | {"refused", "terminated", "revoked", "expired",
                                       "replaced", "ACCEPTED"}
    assert not sorted(v for v in used if protocol.get(v) != f"vrmp:{v}")


async def test_head_and_conditional_requests(client: TestClient) -> None:
    response = await client.head("/vocab", headers={"Accept": "text/turtle"})
    assert response.status == 200
    etag = response.headers["ETag"]
    response, body = await get(client, "/vocab", "text/turtle", **{"If-None-Match": etag})
    assert response.status == 304
    assert body == b""
    # Another representation has another tag.
    response, _ = await get(client, "/vocab", "text/html", **{"If-None-Match": etag})
    assert response.status == 200


async def test_any_prefix() -> None:
    app = web.Application()
    add_vocabulary_routes(app, prefix="/ns/")
    async with TestClient(TestServer(app)) as test_client:
        response, _ = await get(test_client, "/ns", "text/html")
        assert response.headers["Content-Type"].startswith("text/html")
        response, _ = await get(test_client, "/ns/context")
        assert response.status == 200
    app = web.Application()
    add_vocabulary_routes(app, prefix="")
    async with TestClient(TestServer(app)) as test_client:
        response, _ = await get(test_client, "/", "text/turtle")
        assert response.status == 200
        response, _ = await get(test_client, "/shapes")
        assert response.status == 200


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_serve_vocabulary_on_a_real_port_until_cancelled() -> None:
    port = free_port()
    task = asyncio.create_task(serve_vocabulary("127.0.0.1", port))
    try:
        async with aiohttp.ClientSession() as session:
            for _ in range(100):  # wait for the socket to open
                try:
                    async with session.get(f"http://127.0.0.1:{port}/vocab",
                                           headers={"Accept": "application/ld+json"}) as response:
                        assert response.status == 200
                        assert response.headers["Content-Type"] == "application/ld+json"
                        break
                except aiohttp.ClientConnectionError:
                    await asyncio.sleep(0.05)
            else:
                pytest.fail("the vocabulary server did not start")
            async with session.get(f"http://127.0.0.1:{port}/", allow_redirects=False) as response:
                assert response.status == 302
                assert response.headers["Location"] == "/vocab"
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    # Cancelled means closed: the port is free again.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))


async def test_serve_vocabulary_reports_a_busy_port() -> None:
    from vrm_agent.errors import VrmAgentError

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        with pytest.raises(VrmAgentError, match="cannot serve the vocabulary"):
            await serve_vocabulary("127.0.0.1", port)

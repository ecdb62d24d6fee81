"""Intents and offers as pure data: records that read back as written, an offer read from what a
vendor sends (and every way it is refused), who sees an intent, how offers compare, and the
access layer's narrow door for making one intent public. No pod."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
from rdflib import Graph, Literal, URIRef

from vrm_agent.access import acp, wac
from vrm_agent.access.errors import AccessError
from vrm_agent.access.service import AccessControl
from vrm_agent.daemon.intents import comparison, has_ended, seller_tag
from vrm_agent.ledger.intents import (
    Intent,
    IntentAudience,
    IntentOffer,
    RecordError,
    amount,
    intent_id_of,
)
from vrm_agent.ledger.layout import PodLayout
from vrm_agent.linkeddata.contexts import PROTOCOL_CONTEXT
from vrm_agent.negotiation.intent_wire import (
    OfferRefused,
    closed_message,
    money,
    parse_notice,
    read_offer,
)
from vrm_agent.negotiation.wire import PREFIXES, MalformedMessage
from vrm_agent.pod.client import PodClient
from vrm_agent.vocabulary import SCHEMA
from vrm_agent.vocabulary.compiled import validate_graph

STORAGE = "https://pod.example/rfp/"
LAYOUT = PodLayout(STORAGE)
TERMS = STORAGE + "vrm/terms/sd-base#it"
INTENT = STORAGE + "vrm/intents/bike"
SHOP = "https://shop.example/profile/card#me"
XSD_DECIMAL = "http://www.w3.org/2001/XMLSchema#decimal"


def test_an_intent_reads_back_as_written_and_conforms() -> None:
    intent = Intent("bike", "touring  bicycle", Decimal("1200.50"), "eur", TERMS, "Amsterdam",
                    date(2030, 7, 1), date(2030, 7, 31),
                    datetime(2030, 6, 1, 9, 0, tzinfo=UTC))
    graph = intent.to_graph(LAYOUT)
    validate_graph(graph)
    again = Intent.from_graph(graph, INTENT, LAYOUT)
    assert again == intent
    assert again.what == "touring bicycle" and again.currency == "EUR"


@pytest.mark.parametrize(("changes", "fragment"), [
    ({"what": "  "}, "needs what you want"),
    ({"what": "x" * 201}, "at most 200"),
    ({"what": "bike\x1b[31m"}, "plain text"),
    ({"currency": "euro"}, "ISO 4217"),
    ({"terms": "../terms/sd-base#it"}, "absolute"),
    ({"starts": date(2030, 8, 1), "ends": date(2030, 7, 1)}, "starts after it ends"),
    ({"id": "../vendors/acme"}, "cannot name a resource"),
])
def test_a_bad_intent_is_refused_before_anything_is_written(
        changes: dict[str, Any], fragment: str) -> None:
    fields: dict[str, Any] = {"id": "bike", "what": "bicycle", "max_price": Decimal(900),
                              "currency": "EUR", "terms": TERMS, **changes}
    with pytest.raises(RecordError, match=fragment):
        Intent(**fields)


def test_the_audience_and_an_offer_read_back_and_conform() -> None:
    audience = IntentAudience("bike", vendors=(SHOP,), grants=("g1",),
                              accepted_offer=STORAGE + "vrm/offers/bike/o1#it",
                              closed=datetime(2030, 7, 2, tzinfo=UTC))
    graph = audience.to_graph(LAYOUT)
    validate_graph(graph)
    assert IntentAudience.from_graph(graph, STORAGE + "vrm/intent-audience/bike",
                                     LAYOUT) == audience
    offer = IntentOffer("o1", "bike", SHOP, Decimal("899.50"), "EUR", TERMS,
                        datetime(2030, 7, 1, 8, tzinfo=UTC), "http://schema.org/InStock",
                        date(2030, 7, 5), "steel frame", "https://shop.example/inbox")
    graph = offer.to_graph(LAYOUT)
    validate_graph(graph)
    assert IntentOffer.from_graph(graph, STORAGE + "vrm/offers/bike/o1", LAYOUT) == offer


def test_who_sees_an_intent() -> None:
    public = IntentAudience("a", public=True)
    named = IntentAudience("b", vendors=(SHOP,))
    closed = IntentAudience("c", public=True, closed=datetime(2030, 1, 1, tzinfo=UTC))
    assert public.sees("https://anyone.example/#me")
    assert named.sees(SHOP) and not named.sees("https://other.example/#me")
    assert not closed.sees(SHOP)


def offer(**changes: Any) -> bytes:
    body: dict[str, Any] = {"@context": PROTOCOL_CONTEXT, "type": "IntentOfferMessage",
                            "intent": INTENT, "price": "180", "priceCurrency": "EUR",
                            "acceptsTerms": TERMS, "availability": "schema:InStock",
                            "availabilityStarts": "2030-07-05", "description": "ready",
                            "callbackAddress": "https://shop.example/inbox"}
    body.update(changes)
    return json.dumps({k: v for k, v in body.items() if v is not None}).encode()


def read(body: bytes) -> Any:
    return read_offer(body, intent=INTENT, terms=TERMS, prefixes=PREFIXES)


def test_an_offer_is_read_with_every_field() -> None:
    got = read(offer())
    assert (got.price, got.currency, got.accepts_terms) == (Decimal(180), "EUR", TERMS)
    assert got.availability == "http://schema.org/InStock"
    assert got.starts == date(2030, 7, 5) and got.description == "ready"
    assert got.callback == "https://shop.example/inbox"


def test_an_offer_in_full_iris_reads_the_same() -> None:
    body = {"@context": PROTOCOL_CONTEXT, "type": "IntentOfferMessage",
            "https://w3id.org/vrm-agent/protocol#acceptsTerms": {"@id": TERMS},
            "http://schema.org/price": "180", "http://schema.org/priceCurrency": "EUR"}
    got = read(json.dumps(body).encode())
    assert (got.price, got.accepts_terms) == (Decimal(180), TERMS)


@pytest.mark.parametrize(("body", "slug"), [
    (offer(acceptsTerms=STORAGE + "vrm/terms/no-marketing#it"), "terms-not-accepted"),
    (offer(acceptsTerms=None), "terms-not-accepted"),
    (offer(acceptsTerms="../terms/sd-base#it"), "relative-iri"),
    (offer(intent="https://pod.example/rfp/vrm/intents/other"), "wrong-intent"),
    (offer(intent="bike"), "relative-iri"),
    (offer(price=None), "malformed-offer"),
    (offer(price="12,50"), "malformed-offer"),
    (offer(price="1e3"), "malformed-offer"),
    (offer(price=["1", "2"]), "malformed-offer"),
    (offer(price=True), "malformed-offer"),
    (offer(price=40), "malformed-offer"),  # a JSON number, whole or not, is not an amount
    (offer(price=39.5), "malformed-offer"),
    (offer(priceCurrency="eur"), "malformed-offer"),
    (offer(availability="schema:Teleported"), "malformed-offer"),
    (offer(availability="https://evil.example/InStock"), "malformed-offer"),
    (offer(availabilityStarts="soon"), "malformed-offer"),
    (offer(availabilityStarts="2030-07-05T10:00:00"), "malformed-offer"),  # no time zone
    (offer(description="a\x1b[2Jb"), "malformed-offer"),
    (offer(description="d" * 2001), "malformed-offer"),
    (offer(callbackAddress="inbox"), "relative-iri"),
    (offer(extra="field"), "malformed-offer"),
    (offer(type="ContractRequestMessage"), "wrong-message-type"),
    (offer(description="d" * 17_000), "too-large"),
    (b"[1, 2]", "malformed-offer"),
    (b'{"type": "IntentOfferMessage"}', "malformed-offer"),  # no @context
    (json.dumps({"@context": "https://evil.example/context", "type": "x"}).encode(),
     "malformed-offer"),
])
def test_a_bad_offer_is_refused_with_its_reason(body: bytes, slug: str) -> None:
    with pytest.raises(OfferRefused) as caught:
        read(body)
    assert caught.value.slug == slug, str(caught.value)


def test_amounts_and_their_display() -> None:
    assert amount("1200.5", "budget") == Decimal("1200.5")
    with pytest.raises(RecordError):
        amount("-1", "budget")
    assert [money(Decimal(v)) for v in ("1100", "1100.0", "899.5", "12.3456")] == \
        ["1100.00", "1100.00", "899.50", "12.3456"]


def test_offers_compare_cheapest_first_then_earliest() -> None:
    def one(offer_id: str, price: str, hour: int) -> IntentOffer:
        return IntentOffer(offer_id, "bike", SHOP, Decimal(price), "EUR", TERMS,
                           datetime(2030, 1, 1, hour, tzinfo=UTC))

    offers = [one("c", "950", 1), one("a", "899.50", 3), one("b", "899.5", 2)]
    assert [o.id for o in comparison(offers)] == ["b", "a", "c"]
    assert seller_tag(SHOP) == seller_tag(SHOP) != seller_tag("https://other.example/#me")


def test_an_intent_notice_names_the_offer_it_is_about() -> None:
    body = json.dumps(closed_message(intent=INTENT, offer="https://agent.example/intents/"
                                     "bike/offers/o1", reason="closed")).encode()
    notice = parse_notice(body)
    assert notice is not None and notice.type == "IntentClosedMessage"
    assert notice.negotiation == "https://agent.example/intents/bike/offers/o1"
    assert parse_notice(b'{"type": "ContractAgreementMessage"}') is None
    with pytest.raises(MalformedMessage):
        parse_notice(json.dumps({"@context": PROTOCOL_CONTEXT, "type": "IntentClosedMessage",
                                 "intent": INTENT, "intentOffer": "o1"}).encode())


@pytest.mark.parametrize("price", ["lots", "NaN", "sNaN", "Infinity", "1E+999999", "-5", ""])
def test_an_amount_another_app_stored_is_no_amount(price: str) -> None:
    """Read back as strictly as the person types it: NaN would break every comparison."""
    graph = Intent("bike", "a bike", Decimal("10"), "EUR", TERMS).to_graph(LAYOUT)
    budget = URIRef(INTENT + "#budget")
    graph.set((budget, SCHEMA.maxPrice, Literal(price, datatype=URIRef(XSD_DECIMAL))))
    with pytest.raises(RecordError, match="no usable budget"):
        Intent.from_graph(graph, INTENT, LAYOUT)


@pytest.mark.parametrize("url", [
    STORAGE + "vrm/contact/email-home", STORAGE + "vrm/intents/", STORAGE + "vrm/intents/a/b",
    STORAGE + "vrm/intents/bike#it", STORAGE + "vrm/intents/.acl", STORAGE,
    "https://elsewhere.example/rfp/vrm/intents/bike", STORAGE + "vrm/intents/bike?x=1",
    # The access control or description of an intent, never the intent itself.
    INTENT + ".acl", INTENT + ".acr", INTENT + ".meta", INTENT + ".ACL",
    STORAGE + "vrm/intents/..", STORAGE + "vrm/intents/%2e%2e", STORAGE + "vrm/intents/a%2Fb",
])
async def test_only_an_intent_document_is_ever_made_public(url: str) -> None:
    async with PodClient() as pod:
        access = AccessControl(pod, owner_webid=STORAGE + "profile/card#me", storage=STORAGE)
        with pytest.raises(AccessError, match="only an intent document"):
            await access.publish_intent(url)
        with pytest.raises(AccessError, match="only an intent document"):
            await access.unpublish_intent(url)
    assert intent_id_of(LAYOUT, STORAGE + "vrm/intents/bike") == "bike"


@pytest.mark.parametrize("module", [wac, acp], ids=["wac", "acp"])
def test_public_read_is_taken_back_and_nothing_else(module: Any) -> None:
    doc, resource = INTENT + (".acl" if module is wac else ".acr"), INTENT
    before = Graph()
    before.add((URIRef(doc + "#owner"), URIRef("http://example.org/keeps"), URIRef(resource)))
    opened = module.with_public_read(before, doc, resource)
    assert len(opened) > len(before)
    closed = module.without_public_read(opened, doc, resource)
    assert set(before) <= set(closed)  # (an ACR keeps the node that names its resource)
    assert not [t for t in closed if any("vrm-public-read" in str(term) for term in t)]


def test_an_intent_ends_after_its_last_wanted_day() -> None:
    until = Intent("bike", "bicycle", Decimal(900), "EUR", TERMS, ends=date(2030, 7, 31))
    open_ended = Intent("bike", "bicycle", Decimal(900), "EUR", TERMS)
    assert not has_ended(until, date(2030, 7, 31))
    assert has_ended(until, date(2030, 8, 1))
    assert not has_ended(open_ended, date(2999, 1, 1))

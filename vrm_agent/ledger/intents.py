"""Intents (personal RFPs), who may see them, and the offers vendors make: records and their
linked-data form in the pod (docs/pod-layout.md).

Three places, so that each can be shared on its own terms:

- ``vrm/intents/<id>``: the ``vrm:Intent`` itself (what, where, when, budget, terms). This is
  the resource vendors read, when the person lets them.
- ``vrm/intent-audience/<id>``: who may see it (everyone, or named vendors' WebIDs), the grants
  that enforce it, the offer accepted and when it closed. Never shared: a vendor reading the
  intent does not learn who else was asked.
- ``vrm/offers/<intent id>/<offer id>``: each vendor's offer, the person's alone.

Pure: dataclasses in, graphs out and back.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import ClassVar

from rdflib import RDF, Graph, Literal, URIRef
from rdflib.namespace import DCTERMS, PROV, XSD

from vrm_agent.ledger.layout import PodLayout
from vrm_agent.ledger.records import RecordError, check_record_id, check_web_iri
from vrm_agent.vocabulary import SCHEMA, VRM

INTENTS = "intents"
AUDIENCE = "intent-audience"
OFFERS = "offers"
MAX_WHAT = 200  # characters of "what", "where" and the like: a line, not an essay
_CURRENCY = re.compile(r"[A-Z]{3}")
_AMOUNT = re.compile(r"[0-9]{1,12}(\.[0-9]{1,4})?")


def intent_url(layout: PodLayout, intent_id: str) -> str:
    return layout.resource(INTENTS, check_record_id(intent_id, "intent"))


def audience_url(layout: PodLayout, intent_id: str) -> str:
    return layout.resource(AUDIENCE, check_record_id(intent_id, "intent"))


def offers_container(layout: PodLayout, intent_id: str) -> str:
    return f"{layout.container(OFFERS)}{check_record_id(intent_id, 'intent')}/"


def offer_url(layout: PodLayout, intent_id: str, offer_id: str) -> str:
    return offers_container(layout, intent_id) + check_record_id(offer_id, "offer")


def intent_id_of(layout: PodLayout, url: str) -> str | None:
    """The id of the intent whose document ``url`` is (``#it`` or not), None for anything else:
    what the access layer asks before it makes one resource public."""
    container = layout.container(INTENTS)
    if not url.startswith(container):
        return None
    rest = url[len(container):].split("#", 1)[0]
    try:
        return check_record_id(rest, "intent")
    except RecordError:
        return None


def amount(text: str, what: str) -> Decimal:
    """A money amount as people write it (``1200``, ``1200.50``): digits, at most four
    decimals, never negative, never in exponent form."""
    text = text.strip() if isinstance(text, str) else ""
    if not _AMOUNT.fullmatch(text):
        raise RecordError(f"{what} {text!r} is not an amount; write it like 1200 or 1200.50")
    try:
        return Decimal(text)
    except InvalidOperation:  # pragma: no cover - the pattern admits only decimals
        raise RecordError(f"{what} {text!r} is not an amount") from None


def stored_amount(value: object, what: str, url: str) -> Decimal:
    """An amount read from the pod, as strict as one the person types: another app may have
    written a word, NaN or an exponent there, which would break every comparison later."""
    try:
        return amount(str(value) if value is not None else "", what)
    except RecordError:
        raise RecordError(f"{url} holds no usable {what}") from None


def currency(text: str) -> str:
    if not isinstance(text, str) or not _CURRENCY.fullmatch(text.strip().upper()):
        raise RecordError(f"currency {text!r} is not an ISO 4217 code like EUR or USD")
    return text.strip().upper()


def _line(text: str | None, what: str, *, required: bool = False) -> str | None:
    if text is None or not text.strip():
        if required:
            raise RecordError(f"an intent needs {what}")
        return None
    text = " ".join(text.split())
    if len(text) > MAX_WHAT or any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in text):
        raise RecordError(f"{what} is at most {MAX_WHAT} characters of plain text")
    return text


def _date_literal(value: date | datetime) -> Literal:
    return Literal(value.isoformat(), datatype=XSD.dateTime if isinstance(value, datetime)
                   else XSD.date)


def _when(value: object) -> date | datetime | None:
    if value is None:
        return None
    text = str(value)
    return datetime.fromisoformat(text.replace("Z", "+00:00")) if "T" in text \
        else date.fromisoformat(text)


def _it(url: str) -> URIRef:
    return URIRef(url + "#it")


@dataclass(frozen=True)
class Intent:
    """What the person wants: what, where, when, for at most how much, on which terms."""

    kind: ClassVar[str] = INTENTS
    id: str
    what: str
    max_price: Decimal
    currency: str
    terms: str  # the IRI of the person's terms an answering vendor accepts
    where: str | None = None
    starts: date | None = None
    ends: date | None = None
    created: datetime | None = None

    def __post_init__(self) -> None:
        check_record_id(self.id, "intent")
        object.__setattr__(self, "what", _line(self.what, "what you want", required=True))
        object.__setattr__(self, "where", _line(self.where, "where"))
        object.__setattr__(self, "currency", currency(self.currency))
        if self.max_price < 0:
            raise RecordError("a budget is zero or more")
        check_web_iri(self.terms, "the terms")
        if self.starts and self.ends and self.starts > self.ends:
            raise RecordError("the intent starts after it ends; give --from before --until")

    def to_graph(self, layout: PodLayout) -> Graph:
        url = intent_url(layout, self.id)
        graph, it = Graph(), _it(url)
        item, budget = URIRef(url + "#item"), URIRef(url + "#budget")
        graph.add((it, RDF.type, VRM.Intent))
        graph.add((it, RDF.type, SCHEMA.Demand))
        graph.add((it, SCHEMA.itemOffered, item))
        graph.add((item, SCHEMA.name, Literal(self.what)))
        graph.add((it, SCHEMA.priceSpecification, budget))
        graph.add((budget, RDF.type, SCHEMA.PriceSpecification))
        graph.add((budget, SCHEMA.maxPrice, Literal(self.max_price, datatype=XSD.decimal)))
        graph.add((budget, SCHEMA.priceCurrency, Literal(self.currency)))
        graph.add((it, VRM.terms, URIRef(self.terms)))
        if self.where:
            graph.add((it, SCHEMA.areaServed, Literal(self.where)))
        if self.starts:
            graph.add((it, SCHEMA.availabilityStarts, _date_literal(self.starts)))
        if self.ends:
            graph.add((it, SCHEMA.availabilityEnds, _date_literal(self.ends)))
        if self.created:
            graph.add((it, DCTERMS.created, _date_literal(self.created)))
        return graph

    @classmethod
    def from_graph(cls, graph: Graph, url: str, layout: PodLayout) -> Intent:
        it = _it(url)
        item = graph.value(it, SCHEMA.itemOffered)
        budget = graph.value(it, SCHEMA.priceSpecification)
        terms = graph.value(it, VRM.terms)
        if (it, RDF.type, VRM.Intent) not in graph or item is None or budget is None \
                or terms is None:
            raise RecordError(f"{url} holds no intent")
        created = _when(graph.value(it, DCTERMS.created))
        return cls(
            url.rsplit("/", 1)[-1], str(graph.value(item, SCHEMA.name) or ""),
            stored_amount(graph.value(budget, SCHEMA.maxPrice), "budget", url),
            str(graph.value(budget, SCHEMA.priceCurrency) or ""), str(terms),
            _opt(graph.value(it, SCHEMA.areaServed)),
            _day(_when(graph.value(it, SCHEMA.availabilityStarts))),
            _day(_when(graph.value(it, SCHEMA.availabilityEnds))),
            created if isinstance(created, datetime) else None)


def _opt(value: object) -> str | None:
    return None if value is None else str(value)


def _day(value: date | datetime | None) -> date | None:
    return value.date() if isinstance(value, datetime) else value


@dataclass(frozen=True)
class IntentAudience:
    """Who may see one intent and how that is enforced; and its end."""

    kind: ClassVar[str] = AUDIENCE
    id: str  # the intent's id
    public: bool = False
    vendors: tuple[str, ...] = ()  # WebIDs with a read grant
    grants: tuple[str, ...] = ()  # the ids of those grants
    accepted_offer: str | None = None
    closed: datetime | None = None

    def __post_init__(self) -> None:
        check_record_id(self.id, "intent")
        for webid in self.vendors:
            check_web_iri(webid, "a vendor's WebID")

    @property
    def is_open(self) -> bool:
        return self.closed is None

    def sees(self, webid: str) -> bool:
        """Whether the vendor with this WebID may see the intent while it is open."""
        return self.is_open and (self.public or webid in self.vendors)

    def to_graph(self, layout: PodLayout) -> Graph:
        graph, it = Graph(), _it(audience_url(layout, self.id))
        graph.add((it, RDF.type, VRM.IntentAudience))
        graph.add((it, VRM.intent, _it(intent_url(layout, self.id))))
        graph.add((it, VRM.visibleToAll, Literal(self.public)))
        for webid in self.vendors:
            graph.add((it, VRM.visibleTo, URIRef(webid)))
        for grant in self.grants:
            graph.add((it, VRM.visibilityGrant, Literal(grant)))
        if self.accepted_offer:
            graph.add((it, VRM.acceptedOffer, URIRef(self.accepted_offer)))
        if self.closed:
            graph.add((it, PROV.invalidatedAtTime, _date_literal(self.closed)))
        return graph

    @classmethod
    def from_graph(cls, graph: Graph, url: str, layout: PodLayout) -> IntentAudience:
        it = _it(url)
        if (it, RDF.type, VRM.IntentAudience) not in graph:
            raise RecordError(f"{url} holds no intent audience")
        public = graph.value(it, VRM.visibleToAll)
        closed = _when(graph.value(it, PROV.invalidatedAtTime))
        return cls(
            url.rsplit("/", 1)[-1], bool(public is not None and public.toPython() is True),  # type: ignore[union-attr]
            tuple(sorted(str(v) for v in graph.objects(it, VRM.visibleTo))),
            tuple(sorted(str(g) for g in graph.objects(it, VRM.visibilityGrant))),
            _opt(graph.value(it, VRM.acceptedOffer)),
            closed if isinstance(closed, datetime) else None)


@dataclass(frozen=True)
class IntentOffer:
    """A vendor's offer for one intent, as the person's pod keeps it."""

    id: str
    intent_id: str
    seller: str  # the WebID the vendor authenticated with: never what it says of itself
    price: Decimal
    currency: str
    accepts_terms: str
    created: datetime
    availability: str | None = None  # a schema.org ItemAvailability IRI
    starts: date | datetime | None = None
    description: str | None = None
    callback: str | None = None

    def to_graph(self, layout: PodLayout) -> Graph:
        url = offer_url(layout, self.intent_id, self.id)
        graph, it = Graph(), _it(url)
        graph.add((it, RDF.type, VRM.IntentOffer))
        graph.add((it, RDF.type, SCHEMA.Offer))
        graph.add((it, VRM.intent, _it(intent_url(layout, self.intent_id))))
        graph.add((it, SCHEMA.seller, URIRef(self.seller)))
        graph.add((it, SCHEMA.price, Literal(self.price, datatype=XSD.decimal)))
        graph.add((it, SCHEMA.priceCurrency, Literal(self.currency)))
        graph.add((it, VRM.acceptsTerms, URIRef(self.accepts_terms)))
        graph.add((it, DCTERMS.created, _date_literal(self.created)))
        if self.availability:
            graph.add((it, SCHEMA.availability, URIRef(self.availability)))
        if self.starts:
            graph.add((it, SCHEMA.availabilityStarts, _date_literal(self.starts)))
        if self.description:
            graph.add((it, SCHEMA.description, Literal(self.description)))
        if self.callback:
            graph.add((it, VRM.callbackAddress, URIRef(self.callback)))
        return graph

    @classmethod
    def from_graph(cls, graph: Graph, url: str, layout: PodLayout) -> IntentOffer:
        it = _it(url)
        seller, price = graph.value(it, SCHEMA.seller), graph.value(it, SCHEMA.price)
        terms, created = graph.value(it, VRM.acceptsTerms), _when(graph.value(it, DCTERMS.created))
        if (it, RDF.type, VRM.IntentOffer) not in graph or seller is None or price is None \
                or terms is None or not isinstance(created, datetime):
            raise RecordError(f"{url} holds no offer")
        intent_id, offer_id = url.rstrip("/").rsplit("/", 2)[-2:]
        return cls(offer_id, intent_id, str(seller), stored_amount(price, "price", url),
                   str(graph.value(it, SCHEMA.priceCurrency) or ""), str(terms), created,
                   _opt(graph.value(it, SCHEMA.availability)),
                   _when(graph.value(it, SCHEMA.availabilityStarts)),
                   _opt(graph.value(it, SCHEMA.description)),
                   _opt(graph.value(it, VRM.callbackAddress)))

"""Customer-held loyalty and paychoice (EmanciPay): the person's loyalty statements, voluntary
payments and intentions to pay, as records in the pod, and their totals beside purchases.

A loyalty statement is its own resource (``vrm/loyalty/<vendor-id>``, or ``general`` for one
meant for every vendor), so an agreement can share it without the relationship record it speaks
of. A payment or an intention names its recipient either as a vendor of the ledger or by a name
and an optional web address (a podcast, a writer, an open-source project).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import ClassVar

from rdflib import RDF, Graph, Literal, URIRef
from rdflib.namespace import XSD

from vrm_agent.ledger.layout import PodLayout
from vrm_agent.ledger.records import RecordError, check_record_id, check_web_iri
from vrm_agent.vocabulary import SCHEMA, VRM

GENERAL_STATEMENT = "general"  # the id of the statement for every vendor
MAX_TEXT = 2000  # a statement or a reason is a few sentences, not a document
# How often an intention pays, as the person says it, and as the record keeps it (xsd:duration).
FREQUENCIES = {"once": None, "weekly": "P7D", "monthly": "P1M", "quarterly": "P3M",
               "yearly": "P1Y"}
_FREQUENCY_NAMES = {v: k for k, v in FREQUENCIES.items() if v}
_CURRENCY_LENGTH = 3
MAX_WHOLE_DIGITS = 12  # a trillion in any currency is more than anyone pays by choice
MAX_DECIMALS = 8  # the finest subdivision in use (a satoshi)


def _it(url: str) -> URIRef:
    return URIRef(url + "#it")


def _text(graph: Graph, subject: URIRef, predicate: URIRef) -> str | None:
    value = graph.value(subject, predicate)
    return None if value is None else str(value)


def check_text(value: str | None, what: str) -> str | None:
    if value is None:
        return None
    value = value.strip()
    if not value:
        raise RecordError(f"{what} is empty; write a few words, or leave it out")
    if len(value) > MAX_TEXT:
        raise RecordError(f"{what} has {len(value)} characters; keep it to {MAX_TEXT}")
    return value


def check_amount(amount: Decimal) -> Decimal:
    if not isinstance(amount, Decimal) or not amount.is_finite() or amount <= 0:
        raise RecordError(f"{str(amount)[:40]} is not an amount to pay; give a number above "
                          "zero, like 5 or 4.50")
    # Bounded so that a record another app wrote (1E+999999, a thousand digits) can neither
    # swell the totals nor print a megabyte.
    exponent = int(amount.as_tuple().exponent)  # finite, so a number
    if amount.adjusted() >= MAX_WHOLE_DIGITS or exponent < -MAX_DECIMALS:
        raise RecordError(f"{str(amount)[:40]} is not an amount to pay; give at most "
                          f"{MAX_WHOLE_DIGITS} digits before the point and {MAX_DECIMALS} after")
    return amount


def parse_amount(text: str) -> Decimal:
    try:
        return check_amount(Decimal(text.strip()))
    except InvalidOperation:
        raise RecordError(f"{text!r} is not an amount; write it like 5 or 4.50") from None


def check_currency(code: str) -> str:
    code = code.strip().upper()
    if len(code) != _CURRENCY_LENGTH or not code.isascii() or not code.isalpha():
        raise RecordError(f"{code!r} is not a currency code; use three letters, like EUR or USD")
    return code


def _decimal(amount: Decimal) -> Literal:
    """As the person wrote it: 4.50 stays 4.50, 3 stays 3 (not 3.0)."""
    return Literal(format(amount, "f"), datatype=XSD.decimal)


@dataclass(frozen=True)
class Recipient:
    """Who is paid: a vendor of the ledger (``vendor_id``), or anyone else by name."""

    vendor_id: str | None = None
    name: str | None = None
    url: str | None = None

    def __post_init__(self) -> None:
        if self.vendor_id is not None:
            check_record_id(self.vendor_id, "vendor")
        elif not (self.name and self.name.strip()):
            raise RecordError("a payment needs a recipient: a vendor, or a name")
        check_web_iri(self.url, "the recipient's address")

    def add_to(self, graph: Graph, it: URIRef, url: str, layout: PodLayout) -> None:
        if self.vendor_id:
            graph.add((it, SCHEMA.recipient, URIRef(layout.vendor_iri(self.vendor_id))))
            return
        node = URIRef(url + "#recipient")
        graph.add((it, SCHEMA.recipient, node))
        graph.add((node, SCHEMA.name, Literal(self.name)))
        if self.url:
            graph.add((node, SCHEMA.url, URIRef(self.url)))

    @classmethod
    def read(cls, graph: Graph, it: URIRef, layout: PodLayout) -> Recipient:
        node = graph.value(it, SCHEMA.recipient)
        if node is None:
            raise RecordError(f"{it} names no recipient")
        name = _text(graph, node, SCHEMA.name)  # type: ignore[arg-type]
        if name is None and str(node).startswith(layout.container("vendors")):
            return cls(vendor_id=layout.vendor_id_of(str(node)))
        return cls(name=name or str(node), url=_text(graph, node, SCHEMA.url))  # type: ignore[arg-type]


@dataclass(frozen=True)
class LoyaltyStatement:
    """The person's own word of loyalty, for one vendor or (``general``) for any."""

    kind: ClassVar[str] = "loyalty"
    id: str  # the vendor's id, or GENERAL_STATEMENT
    text: str

    def __post_init__(self) -> None:
        check_record_id(self.id, "loyalty statement")
        object.__setattr__(self, "text", check_text(self.text, "the loyalty statement"))

    @property
    def vendor_id(self) -> str | None:
        return None if self.id == GENERAL_STATEMENT else self.id

    def to_graph(self, layout: PodLayout) -> Graph:
        graph, it = Graph(), _it(layout.resource(self.kind, self.id))
        graph.add((it, RDF.type, VRM.LoyaltyStatement))
        graph.add((it, SCHEMA.text, Literal(self.text)))
        if self.vendor_id:
            graph.add((it, VRM.vendor, URIRef(layout.vendor_iri(self.vendor_id))))
        return graph

    @classmethod
    def from_graph(cls, graph: Graph, url: str, layout: PodLayout) -> LoyaltyStatement:
        text = _text(graph, _it(url), SCHEMA.text)
        if text is None:
            raise RecordError(f"{url} holds no loyalty statement")
        return cls(url.rsplit("/", 1)[-1], text)


@dataclass(frozen=True)
class VoluntaryPayment:
    kind: ClassVar[str] = "payments"
    id: str
    recipient: Recipient
    amount: Decimal
    currency: str
    when: date
    purpose: str | None = None  # for what: the episode, the article, the release
    reason: str | None = None  # why, in the person's words

    def __post_init__(self) -> None:
        check_record_id(self.id, "payment")
        check_amount(self.amount)
        object.__setattr__(self, "currency", check_currency(self.currency))
        object.__setattr__(self, "purpose", check_text(self.purpose, "what it is for"))
        object.__setattr__(self, "reason", check_text(self.reason, "the reason"))

    def to_graph(self, layout: PodLayout) -> Graph:
        url = layout.resource(self.kind, self.id)
        graph, it = Graph(), _it(url)
        graph.add((it, RDF.type, VRM.VoluntaryPayment))
        self.recipient.add_to(graph, it, url, layout)
        graph.add((it, SCHEMA.price, _decimal(self.amount)))
        graph.add((it, SCHEMA.priceCurrency, Literal(self.currency)))
        graph.add((it, SCHEMA.startTime, Literal(self.when.isoformat(), datatype=XSD.date)))
        if self.purpose:
            graph.add((it, SCHEMA.object, Literal(self.purpose)))
        if self.reason:
            graph.add((it, VRM.reason, Literal(self.reason)))
        return graph

    @classmethod
    def from_graph(cls, graph: Graph, url: str, layout: PodLayout) -> VoluntaryPayment:
        it = _it(url)
        price, currency = graph.value(it, SCHEMA.price), _text(graph, it, SCHEMA.priceCurrency)
        when = _text(graph, it, SCHEMA.startTime)
        if price is None or currency is None or when is None:
            raise RecordError(f"{url} holds no voluntary payment")
        return cls(url.rsplit("/", 1)[-1], Recipient.read(graph, it, layout),
                   Decimal(str(price)), currency, date.fromisoformat(when[:10]),
                   _text(graph, it, SCHEMA.object), _text(graph, it, VRM.reason))


@dataclass(frozen=True)
class PaymentIntention:
    """An intention to pay: how much, how often (None: once), to whom, why, from when."""

    kind: ClassVar[str] = "payment-intentions"
    id: str
    recipient: Recipient
    amount: Decimal
    currency: str
    start: date
    frequency: str | None = None  # an xsd:duration from FREQUENCIES
    purpose: str | None = None
    reason: str | None = None

    def __post_init__(self) -> None:
        check_record_id(self.id, "intention")
        check_amount(self.amount)
        object.__setattr__(self, "currency", check_currency(self.currency))
        if self.frequency is not None and self.frequency not in _FREQUENCY_NAMES:
            raise RecordError(f"{self.frequency!r} is not a frequency (one of "
                              f"{', '.join(FREQUENCIES)})")
        object.__setattr__(self, "purpose", check_text(self.purpose, "what it is for"))
        object.__setattr__(self, "reason", check_text(self.reason, "the reason"))

    @property
    def every(self) -> str:
        return _FREQUENCY_NAMES.get(self.frequency or "", "once")

    def to_graph(self, layout: PodLayout) -> Graph:
        url = layout.resource(self.kind, self.id)
        graph, it = Graph(), _it(url)
        graph.add((it, RDF.type, VRM.PaymentIntention))
        self.recipient.add_to(graph, it, url, layout)
        graph.add((it, SCHEMA.price, _decimal(self.amount)))
        graph.add((it, SCHEMA.priceCurrency, Literal(self.currency)))
        graph.add((it, SCHEMA.startDate, Literal(self.start.isoformat(), datatype=XSD.date)))
        if self.frequency:
            graph.add((it, VRM.frequency, Literal(self.frequency, datatype=XSD.duration)))
        if self.purpose:
            graph.add((it, SCHEMA.object, Literal(self.purpose)))
        if self.reason:
            graph.add((it, VRM.reason, Literal(self.reason)))
        return graph

    @classmethod
    def from_graph(cls, graph: Graph, url: str, layout: PodLayout) -> PaymentIntention:
        it = _it(url)
        price, currency = graph.value(it, SCHEMA.price), _text(graph, it, SCHEMA.priceCurrency)
        start = _text(graph, it, SCHEMA.startDate)
        if price is None or currency is None or start is None:
            raise RecordError(f"{url} holds no payment intention")
        return cls(url.rsplit("/", 1)[-1], Recipient.read(graph, it, layout),
                   Decimal(str(price)), currency, date.fromisoformat(start[:10]),
                   _text(graph, it, VRM.frequency), _text(graph, it, SCHEMA.object),
                   _text(graph, it, VRM.reason))


# -- totals ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class PaidRow:
    key: str
    currency: str
    count: int
    total: Decimal

    def to_json(self) -> dict[str, object]:
        return {"kind": "voluntary", "key": self.key, "currency": self.currency,
                "count": self.count, "total": str(self.total)}


def recipient_name(recipient: Recipient, names: dict[str, str]) -> str:
    if recipient.vendor_id:
        return names.get(recipient.vendor_id, recipient.vendor_id)
    return recipient.name or "(unnamed)"


def voluntary_totals(payments: Sequence[VoluntaryPayment], names: dict[str, str],
                     by: str) -> list[PaidRow]:
    """Pure: voluntary payments per month (``by="month"``) or per recipient (otherwise), each
    currency apart."""
    totals: dict[tuple[str, str], list[Decimal]] = defaultdict(list)
    for payment in payments:
        key = (payment.when.isoformat()[:7] if by == "month"
               else recipient_name(payment.recipient, names))
        totals[(key, payment.currency)].append(payment.amount)
    rows = [PaidRow(key, currency, len(values), sum(values, Decimal(0)))
            for (key, currency), values in totals.items()]
    if by == "month":
        return sorted(rows, key=lambda r: (r.key, r.currency))
    return sorted(rows, key=lambda r: (-r.total, r.key, r.currency))


def intention_json(intention: PaymentIntention, names: dict[str, str]) -> dict[str, object]:
    return {"kind": "intention", "id": intention.id,
            "recipient": recipient_name(intention.recipient, names),
            "amount": str(intention.amount), "currency": intention.currency,
            "every": intention.every, "from": intention.start.isoformat(),
            "for": intention.purpose, "why": intention.reason}


def payment_json(payment: VoluntaryPayment, names: dict[str, str]) -> dict[str, object]:
    return {"kind": "payment", "id": payment.id,
            "recipient": recipient_name(payment.recipient, names),
            "amount": str(payment.amount), "currency": payment.currency,
            "date": payment.when.isoformat(), "for": payment.purpose, "why": payment.reason}


__all__ = [
    "FREQUENCIES",
    "GENERAL_STATEMENT",
    "LoyaltyStatement",
    "PaidRow",
    "PaymentIntention",
    "Recipient",
    "VoluntaryPayment",
    "check_currency",
    "intention_json",
    "parse_amount",
    "payment_json",
    "voluntary_totals",
]

"""Intents and offers on the wire (docs/protocol.md §17): the vendor's offer, read and checked,
and the agent's messages about it. Pure: bytes in, plain data or a typed refusal out.

An offer is JSON-LD like every message: it is expanded and compacted against the protocol
context (no base, so a relative IRI stays relative and is refused here), then every field is
checked and bounded. Fields the protocol does not define are refused rather than dropped, so an
offer is never read as less than the vendor wrote.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from vrm_agent.errors import VrmAgentError
from vrm_agent.linkeddata.contexts import PROTOCOL_CONTEXT
from vrm_agent.negotiation.wire import (
    MalformedMessage,
    Message,
    load_message_json,
    normalise,
)

MAX_OFFER_BYTES = 16 * 1024  # an offer is a price and a few lines, not a catalogue
MAX_DESCRIPTION = 2000
MAX_PRICE_DIGITS = 12
SCHEMA = "http://schema.org/"
# schema:ItemAvailability, the values an offer's availability may take.
AVAILABILITY = ("InStock", "PreOrder", "PreSale", "BackOrder", "LimitedAvailability",
                "OnlineOnly", "InStoreOnly", "MadeToOrder", "OutOfStock", "SoldOut",
                "Discontinued")
OFFER_FIELDS = frozenset({"type", "intent", "price", "priceCurrency", "availability",
                          "availabilityStarts", "description", "acceptsTerms", "callbackAddress"})
NOTICE_TYPES = ("OfferAcceptedMessage", "IntentClosedMessage")
_ABSOLUTE = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:[^\s<>\"{}|\\^`]+")
_PRICE = re.compile(rf"[0-9]{{1,{MAX_PRICE_DIGITS}}}(\.[0-9]{{1,4}})?")
_CURRENCY = re.compile(r"[A-Z]{3}")


class OfferRefused(VrmAgentError):
    """An offer the agent does not take; ``slug`` names the problem, the text says what to do."""

    def __init__(self, slug: str, detail: str) -> None:
        super().__init__(detail)
        self.slug = slug


@dataclass(frozen=True)
class OfferInput:
    """What a vendor offered, checked: everything but who it is (the token says that)."""

    price: Decimal
    currency: str
    accepts_terms: str
    availability: str | None = None
    starts: date | datetime | None = None
    description: str | None = None
    callback: str | None = None


def _one(value: Any) -> Any:
    if isinstance(value, list):
        if len(value) != 1:
            raise OfferRefused("malformed-offer", "each field of an offer has one value")
        return value[0]
    return value


def _iri(value: Any, what: str) -> str:
    value = _one(value)
    if isinstance(value, dict):
        value = value.get("@id")
    if not isinstance(value, str) or not _ABSOLUTE.fullmatch(value) or len(value) > 2048:
        raise OfferRefused("relative-iri" if isinstance(value, str) else "malformed-offer",
                           f"{what} must be an absolute IRI, not {str(value)[:80]!r}")
    return value


def _text(value: Any, what: str) -> str:
    value = _one(value)
    if isinstance(value, dict) and "@value" in value:
        value = value["@value"]
    if not isinstance(value, str):
        # A JSON number too: 40 and 39.5 are refused alike, so no amount is read as another.
        raise OfferRefused("malformed-offer", f"{what} must be a JSON string, such as \"180.00\"")
    return value


def _expand(value: str, prefixes: Mapping[str, str]) -> str:
    prefix, colon, rest = value.partition(":")
    return prefixes[prefix] + rest if colon and prefix in prefixes else value


def _moment(text: str) -> date | datetime:
    try:
        if "T" in text:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
            if moment.tzinfo is None:
                raise ValueError("no time zone")
            return moment
        return date.fromisoformat(text)
    except ValueError:
        raise OfferRefused("malformed-offer", f"availabilityStarts {text[:40]!r} is not a date "
                           "(YYYY-MM-DD) or a date and time with a time zone") from None


def read_offer(body: bytes, *, intent: str, terms: str,
               prefixes: Mapping[str, str]) -> OfferInput:
    """The vendor's ``IntentOfferMessage`` for the intent whose pod document is ``intent`` and
    whose terms are ``terms``; :class:`OfferRefused` with the reason otherwise."""
    if len(body) > MAX_OFFER_BYTES:
        raise OfferRefused("too-large", f"an offer is at most {MAX_OFFER_BYTES} bytes")
    try:
        data = load_message_json(body, limit=MAX_OFFER_BYTES)
        if not isinstance(data, dict) or "@context" not in data:
            raise MalformedMessage(f"an offer is a JSON-LD object with an @context (use "
                                   f"{PROTOCOL_CONTEXT})")
        # JSON-LD drops a key its context does not define; an offer must not lose a word.
        strays = sorted(k for k in data if not k.startswith("@") and k not in OFFER_FIELDS
                        and not _ABSOLUTE.fullmatch(k))
        if strays:
            raise OfferRefused("malformed-offer", f"an offer has no field {strays[0][:80]!r} "
                               f"(its fields: {', '.join(sorted(OFFER_FIELDS - {'type'}))})")
        compacted = normalise(data)
    except MalformedMessage as exc:
        raise OfferRefused("malformed-offer", str(exc)) from None
    if _one(compacted.get("type")) != "IntentOfferMessage":
        raise OfferRefused("wrong-message-type", "this endpoint takes an IntentOfferMessage")
    unknown = sorted(k for k in compacted if k not in OFFER_FIELDS)
    if unknown:
        raise OfferRefused("malformed-offer", f"an offer has no field {unknown[0][:80]!r} "
                           f"(its fields: {', '.join(sorted(OFFER_FIELDS - {'type'}))})")
    if "intent" in compacted and _iri(compacted["intent"], "intent") != intent:
        raise OfferRefused("wrong-intent", f"this endpoint takes offers for {intent}")
    if "acceptsTerms" not in compacted:
        raise OfferRefused("terms-not-accepted", f"an offer accepts the intent's terms: send "
                           f"acceptsTerms {terms}")
    accepted = _iri(compacted["acceptsTerms"], "acceptsTerms")
    if accepted != terms:
        raise OfferRefused("terms-not-accepted", f"the intent is answered on the terms {terms} "
                           f"exactly, not {accepted[:200]}")
    for needed in ("price", "priceCurrency"):
        if needed not in compacted:
            raise OfferRefused("malformed-offer", f"an offer needs {needed}")
    price = _text(compacted["price"], "price").strip()
    if not _PRICE.fullmatch(price):
        raise OfferRefused("malformed-offer", f"price {price[:40]!r} is an amount like "
                           "\"180.00\": digits, at most four decimals, not negative")
    money = _text(compacted["priceCurrency"], "priceCurrency").strip()
    if not _CURRENCY.fullmatch(money):
        raise OfferRefused("malformed-offer", f"priceCurrency {money[:20]!r} is an ISO 4217 "
                           "code like EUR")
    availability = None
    if "availability" in compacted:
        availability = _expand(_iri(compacted["availability"], "availability"), prefixes)
        name = availability.removeprefix(SCHEMA).removeprefix("https://schema.org/")
        if name not in AVAILABILITY or name == availability:
            raise OfferRefused("malformed-offer", "availability is a schema.org "
                               f"ItemAvailability ({', '.join(AVAILABILITY)})")
        availability = SCHEMA + name
    starts = _moment(_text(compacted["availabilityStarts"], "availabilityStarts").strip()) \
        if "availabilityStarts" in compacted else None
    description = None
    if "description" in compacted:
        description = _text(compacted["description"], "description").strip()
        if len(description) > MAX_DESCRIPTION or any(
                (ord(c) < 0x20 and c not in "\n\t") or 0x7F <= ord(c) <= 0x9F
                for c in description):
            raise OfferRefused("malformed-offer", f"description is at most {MAX_DESCRIPTION} "
                               "characters of text")
    callback = _iri(compacted["callbackAddress"], "callbackAddress") \
        if "callbackAddress" in compacted else None
    return OfferInput(Decimal(price), money, accepted, availability, starts,
                      description or None, callback)


# -- what the agent sends --------------------------------------------------------------------


def money(value: Decimal) -> str:
    """An amount as offers show it, whatever spelling it was stored in: at least two decimals
    (``1100`` and ``1100.0`` are both ``1100.00``), more only when it has them."""
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and exponent >= -2:
        return str(value.quantize(Decimal("0.01")))
    return str(value)


def _iso(value: date | datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def offer_view(offer_id: str, *, url: str, intent: str, offer: OfferInput, state: str,
               received: datetime) -> dict[str, Any]:
    """The vendor's own offer, as the agent answers a POST or a GET of it."""
    out: dict[str, Any] = {"@context": PROTOCOL_CONTEXT, "id": url,
                           "type": "IntentOfferMessage", "intent": intent,
                           "price": money(offer.price), "priceCurrency": offer.currency,
                           "acceptsTerms": offer.accepts_terms, "offerState": state,
                           "dct:created": _iso(received)}
    if offer.availability:
        out["availability"] = "schema:" + offer.availability.removeprefix(SCHEMA)
    if offer.starts:
        out["availabilityStarts"] = _iso(offer.starts)
    if offer.description:
        out["description"] = offer.description
    if offer.callback:
        out["callbackAddress"] = offer.callback
    return out


def listing(url: str, entries: Sequence[tuple[str, str, str]]) -> dict[str, Any]:
    """The intents a vendor may see: for each, its id at the agent, its pod document and where
    offers go."""
    return {"@context": PROTOCOL_CONTEXT, "id": url,
            "intents": [{"id": agent_url, "intent": pod_url, "offerEndpoint": offers}
                        for agent_url, pod_url, offers in entries]}


def accepted_message(*, intent: str, offer: str, agreement: Mapping[str, Any]) -> dict[str, Any]:
    return {"@context": PROTOCOL_CONTEXT, "type": "OfferAcceptedMessage", "intent": intent,
            "intentOffer": offer, "agreement": dict(agreement)}


def closed_message(*, intent: str, offer: str, reason: str) -> dict[str, Any]:
    return {"@context": PROTOCOL_CONTEXT, "type": "IntentClosedMessage", "intent": intent,
            "intentOffer": offer, "reason": [reason]}


def parse_notice(body: bytes) -> Message | None:
    """An agent's message about an intent, for a vendor's inbox; None when the body is not one
    (then it is read as a negotiation message). Its ``negotiation`` is the offer's URL at the
    agent, which says which agent it is about."""
    try:
        data = load_message_json(body)
    except MalformedMessage:
        return None
    if not isinstance(data, dict) or data.get("type") not in NOTICE_TYPES:
        return None
    compacted = normalise(data)
    kind = _one(compacted.get("type"))
    if kind not in NOTICE_TYPES:
        raise MalformedMessage("not an intent message")
    try:
        offer = _iri(compacted.get("intentOffer"), "intentOffer")
        _iri(compacted.get("intent"), "intent")
    except OfferRefused as exc:
        raise MalformedMessage(str(exc)) from None
    if kind == "OfferAcceptedMessage" and not isinstance(data.get("agreement"), dict):
        raise MalformedMessage("an OfferAcceptedMessage carries the signed agreement")
    reasons = compacted.get("reason", [])
    return Message(kind, negotiation=offer,
                   reasons=tuple(str(r) for r in (reasons if isinstance(reasons, list)
                                                  else [reasons])),
                   document=compacted)

"""The person's records as plain dataclasses, and their linked-data form in the pod.

Each record maps to one resource; its subject is ``<resource>#it``. Reading a record back is the
inverse of writing it, so the ledger's round trips (export, import, update) lose nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import ClassVar, TypeVar

from rdflib import RDF, Graph, Literal, URIRef
from rdflib.namespace import XSD

from vrm_agent.errors import VrmAgentError
from vrm_agent.ledger.layout import PodLayout
from vrm_agent.vocabulary import RELATIONSHIP_STATES, SCHEMA, VCARD, VRM


class RecordError(VrmAgentError):
    """A record cannot be read from its resource."""


# A record id is the last segment of its resource's URL: nothing that could leave the record's
# container (a slash, a dot segment), start a query or fragment, or need escaping in Turtle.
_RECORD_ID = re.compile(r"[^\s/?#%\\<>\"{}|^`.][^\s/?#%\\<>\"{}|^`]{0,127}")
_WEB_IRI = re.compile(r"https?://[^\s/?#<>\"{}|\\^`]+[^\s<>\"{}|\\^`]*")
# The pod reads these endings as the access control or the description of the resource named
# without them: a record so named would rewrite who may read its sibling.
AUXILIARY_SUFFIXES = (".acl", ".acr", ".meta")


def check_record_id(record_id: str, what: str = "record") -> str:
    """``record_id`` when it is usable as a resource name in the record's container."""
    if not isinstance(record_id, str) or not _RECORD_ID.fullmatch(record_id) or any(
            ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in record_id) or \
            record_id.lower().endswith(AUXILIARY_SUFFIXES):
        raise RecordError(
            f"{what} id {record_id!r} cannot name a resource: use up to 128 letters, digits, "
            "'-' or '_' (no '/', '?', '#', '%', spaces, not starting with '.' and not ending "
            "in .acl, .acr or .meta)")
    return record_id


def check_web_iri(value: str | None, what: str) -> str | None:
    """An absolute http(s) IRI, or None; anything else (``shop``, ``shop.example``) would be
    stored as an IRI relative to the record and point into the person's own pod."""
    if value is None:
        return None
    if not isinstance(value, str) or not _WEB_IRI.fullmatch(value):
        raise RecordError(f"{what} {value!r} is not an absolute http(s) address; "
                          "give it in full, like https://shop.example/")
    return value


def _it(url: str) -> URIRef:
    return URIRef(url + "#it")


def _text(graph: Graph, subject: URIRef, predicate: URIRef) -> str | None:
    value = graph.value(subject, predicate)
    return None if value is None else str(value)


def _date(value: str | None) -> date | datetime | None:
    if value is None:
        return None
    return datetime.fromisoformat(value) if "T" in value else date.fromisoformat(value)


def _date_literal(value: date | datetime) -> Literal:
    return Literal(value.isoformat(), datatype=XSD.dateTime if isinstance(value, datetime)
                   else XSD.date)


@dataclass(frozen=True)
class Vendor:
    kind: ClassVar[str] = "vendors"
    id: str
    name: str
    url: str | None = None
    webid: str | None = None

    def __post_init__(self) -> None:
        check_record_id(self.id, "vendor")
        if not self.name.strip():
            raise RecordError("a vendor needs a name")
        check_web_iri(self.url, "the vendor's web site")
        check_web_iri(self.webid, "the vendor's WebID")

    def to_graph(self, layout: PodLayout) -> Graph:
        graph, it = Graph(), URIRef(layout.vendor_iri(self.id))
        graph.add((it, RDF.type, VRM.Vendor))
        graph.add((it, RDF.type, SCHEMA.Organization))
        graph.add((it, SCHEMA.name, Literal(self.name)))
        graph.add((it, SCHEMA.identifier, Literal(self.id)))
        if self.url:
            graph.add((it, SCHEMA.url, URIRef(self.url)))
        if self.webid:
            graph.add((it, VRM.webId, URIRef(self.webid)))
        return graph

    @classmethod
    def from_graph(cls, graph: Graph, url: str, layout: PodLayout) -> Vendor:
        it = _it(url)
        name = _text(graph, it, SCHEMA.name)
        if name is None:
            raise RecordError(f"{url} holds no vendor")
        return cls(layout.vendor_id_of(url), name, _text(graph, it, SCHEMA.url),
                   _text(graph, it, VRM.webId))


def _flag(value: object) -> bool | None:
    """An ``xsd:boolean`` as written; anything else another app wrote there ("false" as a
    string, 1) is not a yes: the signal is consent, so it fails closed."""
    if value is None:
        return None
    return isinstance(value, Literal) and value.toPython() is True


@dataclass(frozen=True)
class Relationship:
    """The person's relationship with one vendor; its id is the vendor's id."""

    kind: ClassVar[str] = "relationships"
    vendor_id: str
    state: str = "customer"
    since: date | None = None
    initiated_by: str | None = None  # the person's WebID or the vendor's IRI
    person_signal: bool | None = None  # the r-button: does each side show the relationship?
    vendor_signal: bool | None = None
    loyalty_statement: str | None = None
    # The vendor's own side of the r-button, as it last said it, and when.
    vendor_state: str | None = None
    vendor_state_at: datetime | None = None

    def __post_init__(self) -> None:
        check_record_id(self.vendor_id, "vendor")

    @property
    def id(self) -> str:
        return self.vendor_id

    def to_graph(self, layout: PodLayout) -> Graph:
        if self.state not in RELATIONSHIP_STATES:
            raise RecordError(f"relationship state {self.state!r} is not one of "
                              f"{', '.join(RELATIONSHIP_STATES)}")
        graph, it = Graph(), _it(layout.resource(self.kind, self.id))
        graph.add((it, RDF.type, VRM.Relationship))
        graph.add((it, VRM.vendor, URIRef(layout.vendor_iri(self.vendor_id))))
        graph.add((it, VRM.relationshipState, RELATIONSHIP_STATES[self.state]))
        if self.since:
            graph.add((it, SCHEMA.startDate, _date_literal(self.since)))
        if self.initiated_by:
            graph.add((it, VRM.initiatedBy, URIRef(self.initiated_by)))
        if self.person_signal is not None:
            graph.add((it, VRM.personSignal, Literal(self.person_signal)))
        if self.vendor_signal is not None:
            graph.add((it, VRM.vendorSignal, Literal(self.vendor_signal)))
        if self.loyalty_statement:
            graph.add((it, VRM.loyaltyStatement, Literal(self.loyalty_statement)))
        if self.vendor_state is not None:
            if self.vendor_state not in RELATIONSHIP_STATES:
                raise RecordError(f"the vendor's relationship state {self.vendor_state!r} is "
                                  f"not one of {', '.join(RELATIONSHIP_STATES)}")
            graph.add((it, VRM.vendorState, RELATIONSHIP_STATES[self.vendor_state]))
        if self.vendor_state_at is not None:
            graph.add((it, VRM.vendorStateAt, _date_literal(self.vendor_state_at)))
        return graph

    @classmethod
    def from_graph(cls, graph: Graph, url: str, layout: PodLayout) -> Relationship:
        it = _it(url)
        vendor = graph.value(it, VRM.vendor)
        state = graph.value(it, VRM.relationshipState)
        names = {v: k for k, v in RELATIONSHIP_STATES.items()}
        if vendor is None or state not in names:
            raise RecordError(f"{url} holds no relationship")
        since = _date(_text(graph, it, SCHEMA.startDate))
        person, vendor_signal = graph.value(it, VRM.personSignal), graph.value(it, VRM.vendorSignal)
        vendor_state_at = _date(_text(graph, it, VRM.vendorStateAt))
        return cls(
            layout.vendor_id_of(str(vendor)), names[state],  # type: ignore[index]
            since if isinstance(since, date) and not isinstance(since, datetime) else None,
            _text(graph, it, VRM.initiatedBy),
            _flag(person), _flag(vendor_signal),
            _text(graph, it, VRM.loyaltyStatement),
            names.get(graph.value(it, VRM.vendorState)),  # type: ignore[arg-type]
            vendor_state_at if isinstance(vendor_state_at, datetime) else None,
        )


@dataclass(frozen=True)
class Membership:
    kind: ClassVar[str] = "memberships"
    id: str
    vendor_id: str
    number: str
    program: str | None = None
    points: Decimal | None = None
    valid_from: date | None = None
    valid_through: date | None = None
    tier: str | None = None
    since: date | None = None  # a member since, which a card's validity may not say

    def __post_init__(self) -> None:
        check_record_id(self.id, "membership")
        check_record_id(self.vendor_id, "vendor")
        if not self.number.strip():
            raise RecordError("a membership needs its number")

    def to_graph(self, layout: PodLayout) -> Graph:
        graph, it = Graph(), _it(layout.resource(self.kind, self.id))
        graph.add((it, RDF.type, SCHEMA.ProgramMembership))
        graph.add((it, SCHEMA.membershipNumber, Literal(self.number)))
        graph.add((it, SCHEMA.hostingOrganization, URIRef(layout.vendor_iri(self.vendor_id))))
        if self.program:
            graph.add((it, SCHEMA.programName, Literal(self.program)))
        if self.points is not None:
            graph.add((it, SCHEMA.membershipPointsEarned, Literal(self.points)))
        if self.valid_from:
            graph.add((it, SCHEMA.validFrom, _date_literal(self.valid_from)))
        if self.valid_through:
            graph.add((it, SCHEMA.validThrough, _date_literal(self.valid_through)))
        if self.tier:
            graph.add((it, VRM.membershipTier, Literal(self.tier)))
        if self.since:
            graph.add((it, VRM.memberSince, _date_literal(self.since)))
        return graph

    @classmethod
    def from_graph(cls, graph: Graph, url: str, layout: PodLayout) -> Membership:
        it = _it(url)
        number, host = _text(graph, it, SCHEMA.membershipNumber), graph.value(
            it, SCHEMA.hostingOrganization)
        if number is None or host is None:
            raise RecordError(f"{url} holds no membership")
        points = graph.value(it, SCHEMA.membershipPointsEarned)
        vendor_id = layout.vendor_id_of(str(host))
        # Only a vendor of this ledger hosts a card: the card is shared with that vendor alone,
        # so an address elsewhere that merely ends in its id must not make it that vendor's.
        if str(host) not in (layout.vendor_iri(vendor_id), layout.vendor(vendor_id)):
            raise RecordError(f"{url} names a programme host outside the ledger's vendors")
        return cls(
            url.rsplit("/", 1)[-1], vendor_id, number,
            _text(graph, it, SCHEMA.programName),
            None if points is None else Decimal(str(points)),
            _date(_text(graph, it, SCHEMA.validFrom)),  # type: ignore[arg-type]
            _date(_text(graph, it, SCHEMA.validThrough)),  # type: ignore[arg-type]
            _text(graph, it, VRM.membershipTier),
            _date(_text(graph, it, VRM.memberSince)),  # type: ignore[arg-type]
        )


@dataclass(frozen=True)
class Preference:
    kind: ClassVar[str] = "preferences"
    id: str
    name: str
    value: str
    vendor_id: str | None = None  # a preference for one vendor only, or for all

    def __post_init__(self) -> None:
        check_record_id(self.id, "preference")
        if self.vendor_id is not None:
            check_record_id(self.vendor_id, "vendor")

    def to_graph(self, layout: PodLayout) -> Graph:
        graph, it = Graph(), _it(layout.resource(self.kind, self.id))
        graph.add((it, RDF.type, VRM.Preference))
        graph.add((it, SCHEMA.name, Literal(self.name)))
        graph.add((it, SCHEMA.value, Literal(self.value)))
        if self.vendor_id:
            graph.add((it, VRM.vendor, URIRef(layout.vendor_iri(self.vendor_id))))
        return graph

    @classmethod
    def from_graph(cls, graph: Graph, url: str, layout: PodLayout) -> Preference:
        it = _it(url)
        name, value = _text(graph, it, SCHEMA.name), _text(graph, it, SCHEMA.value)
        if name is None or value is None:
            raise RecordError(f"{url} holds no preference")
        vendor = graph.value(it, VRM.vendor)
        return cls(url.rsplit("/", 1)[-1], name, value,
                   layout.vendor_id_of(str(vendor)) if vendor else None)


@dataclass(frozen=True)
class ContactUnit:
    """One unit of contact data, shareable alone: an e-mail address, a phone number or a postal
    address (``value`` is then the street address)."""

    kind: ClassVar[str] = "contact"
    id: str
    type: str  # "email", "phone" or "address"
    value: str
    label: str | None = None
    locality: str | None = None
    postal_code: str | None = None
    region: str | None = None
    country: str | None = None

    CLASSES: ClassVar[dict[str, URIRef]] = {
        "email": VRM.EmailUnit, "phone": VRM.TelephoneUnit, "address": VRM.PostalAddressUnit,
    }

    def __post_init__(self) -> None:
        check_record_id(self.id, "contact unit")
        # Stored as mailto:/tel: IRIs, which hold no spaces or scheme twice: normalise up front
        # so a unit reads back equal to what was written.
        value = self.value.strip()
        if self.type == "email":
            value = value.removeprefix("mailto:")
        elif self.type == "phone":
            value = "".join(value.removeprefix("tel:").split())
        object.__setattr__(self, "value", value)

    def to_graph(self, layout: PodLayout) -> Graph:
        if self.type not in self.CLASSES:
            raise RecordError(f"contact type {self.type!r} is not email, phone or address")
        url = layout.resource(self.kind, self.id)
        graph, it = Graph(), _it(url)
        graph.add((it, RDF.type, self.CLASSES[self.type]))
        if self.label:
            graph.add((it, SCHEMA.name, Literal(self.label)))
        if self.type == "email":
            graph.add((it, VCARD.hasEmail, URIRef("mailto:" + self.value)))
        elif self.type == "phone":
            graph.add((it, VCARD.hasTelephone, URIRef("tel:" + self.value)))
        else:
            address = URIRef(url + "#address")
            graph.add((it, VCARD.hasAddress, address))
            graph.add((address, RDF.type, VCARD.Address))
            graph.add((address, VCARD["street-address"], Literal(self.value)))
            for predicate, value in (("locality", self.locality),
                                     ("postal-code", self.postal_code),
                                     ("region", self.region), ("country-name", self.country)):
                if value:
                    graph.add((address, VCARD[predicate], Literal(value)))
        return graph

    @classmethod
    def from_graph(cls, graph: Graph, url: str, layout: PodLayout) -> ContactUnit:
        it = _it(url)
        types = {v: k for k, v in cls.CLASSES.items()}
        found = [types[t] for t in graph.objects(it, RDF.type) if t in types]
        if not found:
            raise RecordError(f"{url} holds no contact unit")
        label = _text(graph, it, SCHEMA.name)
        unit_id = url.rsplit("/", 1)[-1]
        if found[0] == "email":
            return cls(unit_id, "email", str(graph.value(it, VCARD.hasEmail))[7:], label)
        if found[0] == "phone":
            return cls(unit_id, "phone", str(graph.value(it, VCARD.hasTelephone))[4:], label)
        address = graph.value(it, VCARD.hasAddress)
        part = lambda name: _text(graph, address, VCARD[name])  # type: ignore[arg-type]  # noqa: E731
        return cls(unit_id, "address", part("street-address") or "", label, part("locality"),
                   part("postal-code"), part("region"), part("country-name"))


LedgerRecord = Vendor | Relationship | Membership | Preference | ContactUnit
R = TypeVar("R", Vendor, Relationship, Membership, Preference, ContactUnit)
RECORD_TYPES: dict[str, type[LedgerRecord]] = {
    t.kind: t for t in (Vendor, Relationship, Membership, Preference, ContactUnit)
}

"""Change of address: the pure half (docs/protocol.md §16).

When the person changes a resource an agreement shares, the agent tells each vendor whose
agreement in force covers it (``DataChangedMessage``), the pod tells vendors that subscribed to
it (Solid Notifications, a ``WebhookChannel2023`` each vendor makes with its own token), and a
vendor that has read the new value says so (``DataReadMessage``). A vendor registers each
channel it made (``ChannelRegistrationMessage``) so the agent can delete it when the agreement
ends: the pod checks Read only when a channel is created, and would keep notifying a vendor
whose access has ended.

Here: the messages in and out, the rules for a channel address the agent will keep and later
DELETE, which agreements cover a resource, and the change record kept in the pod
(``vrm/changes/<id>``, one ``vrm:ChangeRecord`` with a ``vrm:ChangeNotice`` per vendor).
Strings and graphs in, values or a typed error out; the I/O is in
:mod:`vrm_agent.daemon.changes`.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from rdflib import RDF, XSD, Graph, Literal, URIRef
from rdflib.namespace import PROV

from vrm_agent.errors import VrmAgentError
from vrm_agent.negotiation.records import GrantedAccess, iso
from vrm_agent.negotiation.urls import UrlRefused, normalise
from vrm_agent.negotiation.wire import Message, message_json

VRM = "https://w3id.org/vrm-agent/ns#"
WEBHOOK_CHANNEL = "http://www.w3.org/ns/solid/notifications#WebhookChannel2023"
NOTIFY = "http://www.w3.org/ns/solid/notifications#"
MAX_CHANNELS_PER_AGREEMENT = 4  # one per granted resource is the usual case; a few to spare
MAX_ETAG_LENGTH = 200
_ETAG = re.compile(r'(W/)?"?[\x21\x23-\x7e]{1,200}"?')  # printable ASCII, no inner quotes
CHANGE_ID = re.compile(r"[0-9a-f]{32}")
DELIVERED, FAILED, NO_CALLBACK = "delivered", "failed", "no callback"


class ChangeRefused(VrmAgentError):
    """A change message the agent will not act on; the text says why."""


# -- which agreements cover a resource -----------------------------------------------------------


def covers(access: Sequence[GrantedAccess], resource: str, now: datetime) -> bool:
    """Whether access still in force names ``resource`` or a container holding it."""
    return any(a.until > now and any(r == resource or (r.endswith("/") and
                                                       resource.startswith(r))
                                     for r in a.resources)
               for a in access)


# -- channel addresses ---------------------------------------------------------------------------


def webhook_service(description: Graph, storage: str) -> str | None:
    """The storage description's ``WebhookChannel2023`` subscription service, if it lists one
    for ``storage``."""
    for service in description.objects(URIRef(storage), URIRef(NOTIFY + "subscription")):
        if (service, URIRef(NOTIFY + "channelType"), URIRef(WEBHOOK_CHANNEL)) in description:
            return str(service)
    return None


def check_channel(url: str, *, service: str) -> str:
    """``url`` in canonical form when it is one channel of the person's own pod's webhook
    subscription service (one path segment below it, nothing else); :class:`ChangeRefused`
    otherwise. Only such URLs are ever kept, and DELETEd when the agreement ends."""
    try:
        channel, base = normalise(url, what="the channel"), normalise(service)
    except UrlRefused as exc:
        raise ChangeRefused(str(exc)) from None
    prefix = base.path if base.path.endswith("/") else base.path + "/"
    rest = channel.path[len(prefix):] if channel.path.startswith(prefix) else ""
    # One plain segment: no escapes a server might decode into a slash or a dot segment.
    if channel.origin != base.origin or not rest or "/" in rest or "%" in rest \
            or channel.query or "#" in url or rest in (".", ".."):
        raise ChangeRefused(f"{url[:120]} is not a channel of the person's pod's notification "
                            f"service ({service})")
    return channel.url


# -- the messages --------------------------------------------------------------------------------


def new_change_iri() -> str:
    return f"urn:uuid:{uuid.uuid4()}"


def change_id_of(change_iri: str) -> str:
    """The record id (32 hex digits) of a change IRI; :class:`ChangeRefused` for any other."""
    try:
        return uuid.UUID(change_iri.removeprefix("urn:uuid:")).hex if \
            change_iri.startswith("urn:uuid:") else _refuse_change(change_iri)
    except ValueError:
        return _refuse_change(change_iri)


def _refuse_change(value: str) -> str:
    raise ChangeRefused(f"{value[:80]!r} is not a change this agent announced (a urn:uuid)")


def changed_message(*, negotiation: str, agreement: str | None, change: str, resource: str,
                    changed_at: datetime) -> dict[str, Any]:
    """What a vendor is told: which resource changed, when, under which agreement. Never the
    new value: the vendor reads it from the pod with its own token."""
    return message_json("DataChangedMessage", negotiation=negotiation, agreement=agreement,
                        change=change, resource=[resource], changedAt=iso(changed_at))


@dataclass(frozen=True)
class ChannelRegistration:
    channel: str
    resource: str


@dataclass(frozen=True)
class ReadAcknowledgement:
    resource: str
    etag: str
    change: str | None  # None: the latest change of the resource this vendor was told of


def _one_resource(compacted: Mapping[str, Any], what: str) -> str:
    value = compacted.get("resource")
    items = value if isinstance(value, list) else [value] if value is not None else []
    if len(items) != 1:
        raise ChangeRefused(f"a {what} names exactly one resource")
    item = items[0]
    found = item.get("id") if isinstance(item, dict) else item
    if not isinstance(found, str) or not found:
        raise ChangeRefused(f"a {what} names its resource as an IRI")
    return found


def _iri(compacted: Mapping[str, Any], key: str) -> str | None:
    value = compacted.get(key)
    if isinstance(value, list) and len(value) == 1:
        value = value[0]
    if isinstance(value, dict):
        value = value.get("id")
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise ChangeRefused(f"'{key}' must be one IRI")
    return value


def registration_of(message: Message) -> ChannelRegistration:
    document = message.document or {}
    channel = _iri(document, "channel")
    if channel is None:
        raise ChangeRefused("a ChannelRegistrationMessage names its channel as 'channel'")
    return ChannelRegistration(channel, _one_resource(document, "ChannelRegistrationMessage"))


def acknowledgement_of(message: Message) -> ReadAcknowledgement:
    document = message.document or {}
    etag = document.get("etag")
    if isinstance(etag, list) and len(etag) == 1:
        etag = etag[0]
    if not isinstance(etag, str) or len(etag) > MAX_ETAG_LENGTH or not _ETAG.fullmatch(etag):
        raise ChangeRefused(f"'etag' must be the ETag the pod gave for what was read (at most "
                            f"{MAX_ETAG_LENGTH} printable characters)")
    return ReadAcknowledgement(_one_resource(document, "DataReadMessage"), etag,
                               _iri(document, "change"))


# -- the change record ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Notice:
    """What one vendor was told of one change, and what it said back."""

    negotiation: str  # the negotiation (its URL at the agent) the vendor's agreement is
    vendor: str
    message: str  # delivered, failed, no callback
    channels: tuple[str, ...] = ()  # the pod notification channels the vendor registered
    read_at: datetime | None = None  # when the vendor acknowledged a read
    read_etag: str | None = None

    @property
    def read(self) -> bool:
        return self.read_at is not None


@dataclass(frozen=True)
class ChangeRecord:
    id: str  # 32 hex digits; the change's IRI is urn:uuid:<id>
    resource: str
    at: datetime
    by: str  # the person
    etag: str | None = None  # the pod's ETag for the new value, as a vendor reading Turtle sees
    notices: tuple[Notice, ...] = field(default=())

    @property
    def iri(self) -> str:
        return f"urn:uuid:{uuid.UUID(self.id)}"

    def notice_for(self, negotiation: str) -> Notice | None:
        return next((n for n in self.notices if n.negotiation == negotiation), None)

    def acknowledged(self, negotiation: str, etag: str, at: datetime) -> ChangeRecord:
        notices = tuple(replace(n, read_at=at, read_etag=etag) if n.negotiation == negotiation
                        else n for n in self.notices)
        return replace(self, notices=notices)

    def to_graph(self, url: str) -> Graph:
        graph, it = Graph(), URIRef(url + "#it")
        graph.add((it, RDF.type, URIRef(VRM + "ChangeRecord")))
        graph.add((it, URIRef(VRM + "changedResource"), URIRef(self.resource)))
        graph.add((it, URIRef(VRM + "changeId"), URIRef(self.iri)))
        graph.add((it, PROV.generatedAtTime, Literal(iso(self.at), datatype=XSD.dateTime)))
        graph.add((it, PROV.wasAttributedTo, URIRef(self.by)))
        if self.etag:
            graph.add((it, URIRef(VRM + "etag"), Literal(self.etag)))
        for index, notice in enumerate(self.notices):
            node = URIRef(f"{url}#notice-{index + 1}")
            graph.add((it, URIRef(VRM + "notice"), node))
            graph.add((node, RDF.type, URIRef(VRM + "ChangeNotice")))
            graph.add((node, URIRef(VRM + "noticeTo"), URIRef(notice.vendor)))
            graph.add((node, URIRef(VRM + "underAgreement"), URIRef(notice.negotiation)))
            graph.add((node, URIRef(VRM + "messageDelivery"), Literal(notice.message)))
            for channel in notice.channels:
                graph.add((node, URIRef(VRM + "notificationChannel"), URIRef(channel)))
            if notice.read_at is not None:
                graph.add((node, URIRef(VRM + "readAcknowledgedAt"),
                           Literal(iso(notice.read_at), datatype=XSD.dateTime)))
            if notice.read_etag is not None:
                graph.add((node, URIRef(VRM + "etag"), Literal(notice.read_etag)))
        return graph

    @classmethod
    def from_graph(cls, graph: Graph, url: str, record_id: str) -> ChangeRecord:
        """The record as the agent wrote it; :class:`ChangeRefused` when it cannot be read
        that way (someone else wrote it, or it broke)."""
        it = URIRef(url + "#it")

        def one(node: URIRef, name: str) -> Any:
            value = graph.value(node, URIRef(VRM + name))
            return None if value is None else str(value)

        try:
            resource = one(it, "changedResource")
            at = graph.value(it, PROV.generatedAtTime)
            by = graph.value(it, PROV.wasAttributedTo)
            if resource is None or at is None or by is None:
                raise ValueError("it lacks its resource, time or author")
            notices = []
            for node in sorted(graph.objects(it, URIRef(VRM + "notice")), key=str):
                assert isinstance(node, URIRef)
                read_at = graph.value(node, URIRef(VRM + "readAcknowledgedAt"))
                notices.append(Notice(
                    str(graph.value(node, URIRef(VRM + "underAgreement"))),
                    str(graph.value(node, URIRef(VRM + "noticeTo"))),
                    one(node, "messageDelivery") or FAILED,
                    tuple(sorted(str(c) for c in graph.objects(
                        node, URIRef(VRM + "notificationChannel")))),
                    _moment(str(read_at)) if read_at is not None else None,
                    one(node, "etag")))
            return cls(record_id, resource, _moment(str(at)), str(by), one(it, "etag"),
                       tuple(notices))
        except (ValueError, TypeError, AssertionError) as exc:
            raise ChangeRefused(f"the change record {record_id} cannot be read: {exc}") from None


def read_patch(graph: Graph, negotiation: str, etag: str, at: datetime) -> dict[str, Graph]:
    """The N3 Patch (``inserts``, and ``deletes`` when there was one) that records a vendor's
    read acknowledgement on its notice in the change record ``graph``: its earlier
    acknowledgement, if any, replaced; the other notices untouched."""
    node = next((n for n in graph.subjects(URIRef(VRM + "underAgreement"), URIRef(negotiation))
                 if isinstance(n, URIRef)), None)
    if node is None:
        raise ChangeRefused(f"no notice under {negotiation} in this change record")
    marks = (URIRef(VRM + "readAcknowledgedAt"), URIRef(VRM + "etag"))
    deletes, inserts = Graph(), Graph()
    for predicate in marks:
        for old in graph.objects(node, predicate):
            deletes.add((node, predicate, old))
    inserts.add((node, marks[0], Literal(iso(at), datatype=XSD.dateTime)))
    inserts.add((node, marks[1], Literal(etag)))
    return {"inserts": inserts, **({"deletes": deletes} if len(deletes) else {})}


def _moment(text: str) -> datetime:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def told_rows(record: ChangeRecord, names: Mapping[str, str]) -> list[dict[str, Any]]:
    """The person's view of one change: per vendor, how it was told and whether it has
    acknowledged reading the new value since."""
    rows = []
    for notice in record.notices:
        if notice.read_at is None:
            read = "no"
        elif record.etag is None or notice.read_etag == record.etag:
            read = "yes"
        else:
            read = "yes, another version"  # an earlier or a later one than this change's
        rows.append({
            "vendor": names.get(notice.vendor, notice.vendor), "vendor_webid": notice.vendor,
            "agreement": notice.negotiation, "message": notice.message,
            "pod_notification": "subscribed" if notice.channels else "not subscribed",
            "channels": list(notice.channels), "read": read,
            "read_at": notice.read_at.isoformat() if notice.read_at else None,
            "read_etag": notice.read_etag})
    return rows

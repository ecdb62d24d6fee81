"""What each side keeps of a negotiation, as plain data, and its linked-data forms.

A :class:`NegotiationRecord` is the provider's working copy: the request, the offer or agreement,
the state, the grants that carry the agreement out. In the pod it is one JSON-LD document per
negotiation whose contexts are written inline, so the pod server (or any reader) can turn it into
RDF without fetching anything. The signed agreement also gets a Turtle agreement record
(``vrm:AgreementRecord``), the form the vocabulary's shapes check.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from rdflib import RDF, Graph, Literal, URIRef
from rdflib.namespace import DCTERMS, PROV, XSD

from vrm_agent.integrity.proofs import DATA_INTEGRITY_CONTEXT, bundled_context, canonical
from vrm_agent.negotiation.odrl import Policy
from vrm_agent.negotiation.protocol import Negotiation, Role, State
from vrm_agent.negotiation.wire import (
    CONTEXT_DOCUMENT,
    PROTOCOL_CONTEXT,
    MalformedMessage,
    policy_from_json,
    policy_graph,
    policy_json,
)
from vrm_agent.policy.rdf import REPORT_CONTEXT
from vrm_agent.vocabulary import SCHEMA  # http://schema.org/, the one form the shapes check

VRM = "https://w3id.org/vrm-agent/ns#"
SEC = "https://w3id.org/security#"
VRMP = "https://w3id.org/vrm-agent/protocol#"
AGREEMENT_CONTEXTS = [PROTOCOL_CONTEXT, DATA_INTEGRITY_CONTEXT]

# Terms only the stored record uses, beside the protocol's own.
_RECORD_TERMS = {
    "NegotiationRecord": "vrmp:NegotiationRecord",
    "vendor": {"@id": "vrm:vendor", "@type": "@id"},
    "awaitingPerson": {"@id": "vrmp:awaitingPerson", "@type": "xsd:boolean"},
    "request": {"@id": "vrmp:request"},
    "offer": {"@id": "vrmp:offer"},
    "grantId": {"@id": "vrmp:grantId", "@container": "@set"},
    "ended": "vrmp:ended",
    "history": {"@id": "vrmp:history", "@container": "@list"},
    "createdAt": {"@id": "dct:created", "@type": "xsd:dateTime"},
    "modifiedAt": {"@id": "dct:modified", "@type": "xsd:dateTime"},
    "vendorKey": {"@id": "vrmp:vendorKey", "@type": "@id"},
    "proposed": {"@id": "vrmp:proposedResources", "@container": "@set"},
    # A request that came as a W3C LWS access request: its JSON, kept as text, and its end.
    "lwsAccessRequest": "vrmp:lwsAccessRequest",
    "notAfter": {"@id": "vrmp:notAfter", "@type": "xsd:dateTime"},
    # The evaluator's compliance reports (FORCE Compliance Report Model), in their own terms.
    "complianceReport": {"@id": "vrmp:complianceReport", "@container": "@set",
                         "@context": REPORT_CONTEXT},
}
STORED_CONTEXT: list[Any] = [CONTEXT_DOCUMENT["@context"],
                             bundled_context(DATA_INTEGRITY_CONTEXT)["@context"], _RECORD_TERMS]


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class GrantedAccess:
    """Pod resources opened for one end time: what the vendor may now read."""

    resources: tuple[str, ...]
    until: datetime

    def to_json(self) -> dict[str, Any]:
        return {"resource": list(self.resources), "until": iso(self.until)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> GrantedAccess:
        resources = data.get("resource", [])
        return cls(tuple(resources if isinstance(resources, list) else [resources]),
                   datetime.fromisoformat(str(data["until"]).replace("Z", "+00:00")))


@dataclass(frozen=True)
class NegotiationRecord:
    id: str  # short id, also the grant id of the access it leads to
    url: str  # the negotiation's IRI at the agent (its status URL)
    vendor: str
    negotiation: Negotiation
    request: Policy
    created: datetime
    modified: datetime
    callback: str | None = None
    consideration: str | None = None
    offer: Policy | None = None
    agreement: Mapping[str, Any] | None = None  # the signed agreement document
    access: tuple[GrantedAccess, ...] = ()
    grant_ids: tuple[str, ...] = ()
    reasons: tuple[str, ...] = ()
    trace: tuple[str, ...] = ()
    ended: str | None = None  # refused, revoked, expired, terminated
    vendor_key: str | None = None  # the verification method of the vendor's countersignature
    # What the person is shown for each item waiting for them (target -> pod resources), and
    # then exactly what they chose: an approval grants these and nothing found later.
    proposed: Mapping[str, tuple[str, ...]] | None = None
    replaces: tuple[str, ...] = ()  # earlier agreements this one replaced (same resource, purpose)
    # Why the terms decided as they did, item by item: FORCE policy reports as JSON-LD nodes.
    compliance: tuple[Mapping[str, Any], ...] = ()
    etag: str | None = field(default=None, compare=False)
    # Set when the request came as an LWS access request (vrm_agent.negotiation.lws): what it
    # asked, as JSON text, and the latest end it allows (no grant of it lasts beyond).
    lws: str | None = None
    not_after: datetime | None = None
    # Pod notification channels the vendor made on resources of this agreement and registered
    # here (vrm_agent.negotiation.changes): deleted at the pod when the agreement ends.
    channels: tuple[str, ...] = ()

    @property
    def takes_offers(self) -> bool:
        """Whether the requester can answer a counter-offer: an LWS access request cannot."""
        return self.lws is None

    @property
    def state(self) -> State | None:
        return self.negotiation.state

    @property
    def until(self) -> datetime | None:
        return max((a.until for a in self.access), default=None)

    def with_changes(self, now: datetime, **changes: Any) -> NegotiationRecord:
        return replace(self, modified=now, **changes)

    # -- what the vendor sees ----------------------------------------------------------------

    def view(self) -> dict[str, Any]:
        """The ContractNegotiation document the vendor gets (and the protocol defines)."""
        out: dict[str, Any] = {
            "@context": PROTOCOL_CONTEXT, "type": "ContractNegotiation", "id": self.url,
            "state": self.state.value if self.state else None,
        }
        if self.negotiation.awaiting_person:
            out["status"] = self.url
            out["reason"] = ["the person decides this request; the answer comes to the "
                             "callbackAddress, or poll this status URL"]
        if self.offer is not None and self.state is State.OFFERED:
            out["policy"] = policy_json(self.offer)
        if self.agreement is not None:
            out["agreement"] = dict(self.agreement)
        if self.access and self.state in (State.AGREED, State.VERIFIED, State.FINALIZED):
            out["grant"] = [a.to_json() for a in self.access]
        if self.reasons and "reason" not in out:
            out["reason"] = list(self.reasons)
        if self.replaces:
            out["replaces"] = list(self.replaces)
        if self.ended:
            out["event"] = self.ended
        return out

    # -- the stored form ---------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "@context": STORED_CONTEXT, "type": "NegotiationRecord", "id": self.url,
            "negotiation": self.url, "vendor": self.vendor,
            "state": self.state.value if self.state else None,
            "awaitingPerson": self.negotiation.awaiting_person,
            "request": policy_json(self.request),
            "createdAt": iso(self.created), "modifiedAt": iso(self.modified),
            "history": [f"{event} -> {state}" for event, state in self.negotiation.history],
        }
        optional: dict[str, Any] = {
            "callbackAddress": self.callback, "consideration": self.consideration,
            "offer": policy_json(self.offer) if self.offer else None,
            "agreement": ({k: v for k, v in self.agreement.items() if k != "@context"}
                          if self.agreement else None),
            "grant": [a.to_json() for a in self.access] or None,
            "grantId": list(self.grant_ids) or None, "reason": list(self.reasons) or None,
            "trace": list(self.trace) or None, "ended": self.ended, "vendorKey": self.vendor_key,
            "proposed": ([{"target": t, "resource": list(urls)}
                          for t, urls in sorted(self.proposed.items())]
                         if self.proposed is not None else None),
            "replaces": list(self.replaces) or None,
            "complianceReport": [dict(r) for r in self.compliance] or None,
            "lwsAccessRequest": self.lws,
            "notAfter": iso(self.not_after) if self.not_after else None,
            "channel": list(self.channels) or None,
        }
        out.update({k: v for k, v in optional.items() if v is not None})
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any], *, record_id: str,
                  etag: str | None = None) -> NegotiationRecord:
        try:
            state = State(data["state"]) if data.get("state") else None
            history = tuple(tuple(h.split(" -> ", 1)) for h in data.get("history", []))
            negotiation = Negotiation(record_id, Role.PROVIDER, state,
                                      bool(data.get("awaitingPerson")), data.get("ended"),
                                      history)  # type: ignore[arg-type]
            agreement = data.get("agreement")
            grants = data.get("grant", [])
            return cls(
                record_id, str(data["id"]), str(data["vendor"]), negotiation,
                policy_from_json(data["request"]),
                _time(data["createdAt"]), _time(data["modifiedAt"]),
                data.get("callbackAddress"), data.get("consideration"),
                policy_from_json(data["offer"]) if data.get("offer") else None,
                {"@context": AGREEMENT_CONTEXTS, **agreement} if agreement else None,
                tuple(GrantedAccess.from_json(g) for g in grants),
                tuple(data.get("grantId", [])), tuple(data.get("reason", [])),
                tuple(data.get("trace", [])), data.get("ended"), data.get("vendorKey"),
                _proposed(data.get("proposed")), tuple(data.get("replaces", [])),
                _reports(data.get("complianceReport")), etag,
                _text(data.get("lwsAccessRequest")),
                _zoned(data["notAfter"]) if data.get("notAfter") else None,
                channels=_channels(data.get("channel")),
            )
        except (KeyError, ValueError, TypeError, AttributeError, MalformedMessage) as exc:
            raise MalformedMessage(f"the stored negotiation {record_id} cannot be read: "
                                   f"{exc}") from exc


def _reports(value: Any) -> tuple[Mapping[str, Any], ...]:
    if value is None:
        return ()
    items = value if isinstance(value, list) else [value]
    return tuple(item for item in items if isinstance(item, dict))


def _proposed(value: Any) -> dict[str, tuple[str, ...]] | None:
    if value is None:
        return None
    out: dict[str, tuple[str, ...]] = {}
    for item in value if isinstance(value, list) else [value]:
        resources = item.get("resource", [])
        out[str(item["target"])] = tuple(
            str(r) for r in (resources if isinstance(resources, list) else [resources]))
    return out


def _channels(value: Any) -> tuple[str, ...]:
    items = value if isinstance(value, list) else [] if value is None else [value]
    found = tuple(i.get("id") if isinstance(i, dict) else i for i in items)
    if not all(isinstance(i, str) for i in found):
        raise ValueError("a kept notification channel is an IRI")
    return found  # type: ignore[return-value]


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError("a kept LWS access request is text")
    return value


def _zoned(value: Any) -> datetime:
    moment = _time(str(value))
    if moment.tzinfo is None:
        raise ValueError("a kept end time has no time zone")
    return moment


def _time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


# -- the signed agreement ------------------------------------------------------------------------


def agreement_document(agreement: Policy, access: Sequence[GrantedAccess]) -> dict[str, Any]:
    """The agreement as both parties sign it: the odrl:Agreement plus the access it grants."""
    return {"@context": AGREEMENT_CONTEXTS, **policy_json(agreement),
            "grant": [a.to_json() for a in access]}


def unsigned(document: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in document.items() if k != "proof"}


def content_hash(document: Mapping[str, Any]) -> str:
    """``sha256:`` of the canonical form of the agreement without its proofs."""
    return "sha256:" + hashlib.sha256(canonical(unsigned(document))).hexdigest()


def proofs_of(document: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    found = document.get("proof")
    return found if isinstance(found, list) else [found] if found else []


def agreement_record_graph(
    record_url: str, agreement: Policy, document: Mapping[str, Any], *, vendor: str,
    state: str, valid_from: datetime, valid_through: datetime,
    terms: Sequence[str] = (), invalidated: datetime | None = None,
    revoked_by: str | None = None, relationship: str | None = None,
) -> Graph:
    """The vrm:AgreementRecord for the pod: the policy, its state, times and signatures, and
    the person's relationship record with the vendor when there is one."""
    graph = policy_graph(agreement)
    node = URIRef(record_url + "#it")
    graph.add((node, RDF.type, URIRef(VRM + "AgreementRecord")))
    graph.add((node, URIRef(VRM + "vendor"), URIRef(vendor)))
    if relationship:
        graph.add((node, URIRef(VRM + "relationship"), URIRef(relationship)))
    graph.add((node, URIRef(VRM + "policy"), URIRef(agreement.uid)))
    graph.add((node, URIRef(VRM + "agreementState"), URIRef(VRM + state)))
    graph.add((node, URIRef(SCHEMA + "validFrom"), Literal(iso(valid_from),
                                                           datatype=XSD.dateTime)))
    graph.add((node, URIRef(SCHEMA + "validThrough"), Literal(iso(valid_through),
                                                              datatype=XSD.dateTime)))
    graph.add((node, URIRef(VRM + "contentHash"), Literal(content_hash(document))))
    if terms:
        graph.add((node, URIRef(VRM + "basedOnTerms"), URIRef(terms[0])))
    if invalidated is not None:
        graph.add((node, PROV.invalidatedAtTime, Literal(iso(invalidated),
                                                         datatype=XSD.dateTime)))
    if revoked_by:
        graph.add((node, URIRef(VRM + "revokedBy"), URIRef(revoked_by)))
    for index, proof in enumerate(proofs_of(document)):
        signature = URIRef(f"{record_url}#signature-{index + 1}")
        graph.add((node, URIRef(VRM + "signature"), signature))
        graph.add((signature, RDF.type, URIRef(SEC + "DataIntegrityProof")))
        graph.add((signature, URIRef(SEC + "cryptosuite"), Literal(str(proof["cryptosuite"]))))
        graph.add((signature, URIRef(SEC + "verificationMethod"),
                   URIRef(str(proof["verificationMethod"]))))
        graph.add((signature, URIRef(SEC + "proofValue"), Literal(str(proof["proofValue"]))))
        graph.add((signature, DCTERMS.created, Literal(str(proof["created"]),
                                                       datatype=XSD.dateTime)))
    return graph

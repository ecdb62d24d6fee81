"""The VRM vocabulary: its namespace, the namespaces it reuses, and its files as rdflib objects.

The files are edited in the repository's ``vocab/`` folder (the single source). Copies of them ship
inside this package (``vrm_agent/vocabulary/data/``), because an installed package cannot reach
``vocab/``; ``python -m vrm_agent.vocabulary.html`` regenerates the HTML page and refreshes the
copies, and a test fails when a copy differs from its source.

The graphs returned here are cached and shared: read them, do not change them (copy first).
"""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path
from typing import Any

from rdflib import OWL, RDF, RDFS, XSD, Graph, Namespace, URIRef
from rdflib.namespace import DCTERMS, FOAF, PROV, SH

from vrm_agent.errors import VrmAgentError

__all__ = [
    "ACL",
    "ACP",
    "AGREEMENT_STATES",
    "AUDIT_EVENT_TYPES",
    "CHANNELS",
    "CONTEXT_PATH",
    "DATA_DIR",
    "DCTERMS",
    "DPV",
    "FOAF",
    "HTML_PATH",
    "INTEROP",
    "LDP",
    "NAMESPACE",
    "ODRL",
    "OWL",
    "PD",
    "PIM",
    "PREFIXES",
    "PROTOCOL_VOCABULARY_PATH",
    "PROV",
    "RDF",
    "RDFS",
    "RELATIONSHIP_STATES",
    "SCHEMA",
    "SEC",
    "SH",
    "SHAPES_PATH",
    "SOLID",
    "VCARD",
    "VOCABULARY_PATH",
    "VRM",
    "VRMSH",
    "XSD",
    "VocabularyError",
    "bind_prefixes",
    "context",
    "shapes_graph",
    "vocabulary_graph",
]

NAMESPACE = "https://w3id.org/vrm-agent/ns#"
VRM = Namespace(NAMESPACE)
# The shapes live in a namespace of their own: they are not vocabulary terms.
VRMSH = Namespace("https://w3id.org/vrm-agent/shapes#")

# Reused vocabularies. schema.org is the http form, as in schema.org's own JSON-LD context and in
# the Solid ecosystem (rdflib's SDO is the https form: do not mix them).
SCHEMA = Namespace("http://schema.org/")
ODRL = Namespace("http://www.w3.org/ns/odrl/2/")
DPV = Namespace("https://w3id.org/dpv#")
PD = Namespace("https://w3id.org/dpv/pd#")
VCARD = Namespace("http://www.w3.org/2006/vcard/ns#")
SEC = Namespace("https://w3id.org/security#")
ACL = Namespace("http://www.w3.org/ns/auth/acl#")
ACP = Namespace("http://www.w3.org/ns/solid/acp#")
LDP = Namespace("http://www.w3.org/ns/ldp#")
SOLID = Namespace("http://www.w3.org/ns/solid/terms#")
PIM = Namespace("http://www.w3.org/ns/pim/space#")
INTEROP = Namespace("http://www.w3.org/ns/solid/interop#")

# Prefixes bound on every graph the agent writes, so the Turtle it puts in pods reads well.
PREFIXES: dict[str, Namespace] = {
    prefix: Namespace(str(namespace))  # rdflib's closed namespaces become plain ones here
    for prefix, namespace in (
        ("vrm", VRM),
        ("schema", SCHEMA),
        ("odrl", ODRL),
        ("dpv", DPV),
        ("pd", PD),
        ("vcard", VCARD),
        ("foaf", FOAF),
        ("prov", PROV),
        ("sec", SEC),
        ("dct", DCTERMS),
        ("acl", ACL),
        ("acp", ACP),
        ("ldp", LDP),
        ("solid", SOLID),
        ("pim", PIM),
        ("interop", INTEROP),
        ("xsd", XSD),
    )
}

# Plain names (as in CSV imports and CLI options) to the vocabulary's individuals. The channel
# names are the ones vrm_agent.ledger.transactions accepts.
RELATIONSHIP_STATES: dict[str, URIRef] = {
    "none": VRM.NoRelationship,
    "prospect": VRM.Prospect,
    "customer": VRM.Customer,
    "member": VRM.Member,
    "former": VRM.FormerCustomer,
}
CHANNELS: dict[str, URIRef] = {
    "online": VRM.OnlineChannel,
    "in-store": VRM.InStoreChannel,
    "phone": VRM.PhoneChannel,
    "app": VRM.AppChannel,
    "mail": VRM.MailChannel,
    "other": VRM.OtherChannel,
}
AGREEMENT_STATES: dict[str, URIRef] = {
    name.lower(): VRM[name]
    for name in ("Requested", "Offered", "Accepted", "Agreed", "Verified", "Finalized",
                 "Terminated", "Revoked", "Expired")
}
AUDIT_EVENT_TYPES: tuple[URIRef, ...] = tuple(
    VRM[name]
    for name in ("RequestReceived", "TermsProffered", "AgreementReached", "AgreementRefused",
                 "AgreementRevoked", "AgreementExpired", "AccessGranted", "AccessRevoked",
                 "AccessExpired", "DataImported", "DataChanged", "IntentSent", "OfferReceived",
                 "PaymentMade", "RelationshipChanged")
)

DATA_DIR = Path(__file__).resolve().parent / "data"
VOCABULARY_PATH = DATA_DIR / "vrm.ttl"
CONTEXT_PATH = DATA_DIR / "vrm.context.jsonld"
SHAPES_PATH = DATA_DIR / "vrm.shapes.ttl"
HTML_PATH = DATA_DIR / "vrm.html"
# The negotiation protocol's own terms (vrmp:), beside the VRM vocabulary.
PROTOCOL_VOCABULARY_PATH = DATA_DIR / "vrmp.ttl"


class VocabularyError(VrmAgentError):
    """A vocabulary file is missing or unreadable: the installation is broken."""


def bind_prefixes(graph: Graph) -> Graph:
    """Bind the agent's usual prefixes on ``graph`` (keeping any it already has); returns it."""
    for prefix, namespace in PREFIXES.items():
        graph.bind(prefix, namespace, override=False)
    return graph


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise VocabularyError(f"cannot read the vocabulary file {path}: {exc}") from exc


def _parse(path: Path) -> Graph:
    graph = Graph()
    try:
        graph.parse(data=_read(path), format="turtle")
    except VocabularyError:
        raise
    except Exception as exc:  # rdflib raises many unrelated types for bad input
        raise VocabularyError(f"{path.name} is not valid Turtle: {exc}") from exc
    return graph


@cache
def vocabulary_graph() -> Graph:
    """The vocabulary (vrm.ttl) as a graph. Cached and shared: do not modify."""
    return _parse(VOCABULARY_PATH)


@cache
def shapes_graph() -> Graph:
    """The SHACL shapes (vrm.shapes.ttl) as a graph. Cached and shared: do not modify."""
    return _parse(SHAPES_PATH)


@cache
def _context_document() -> dict[str, Any]:
    try:
        document = json.loads(_read(CONTEXT_PATH))
    except ValueError as exc:
        raise VocabularyError(f"{CONTEXT_PATH.name} is not valid JSON: {exc}") from exc
    if not isinstance(document, dict) or not isinstance(document.get("@context"), dict):
        raise VocabularyError(f"{CONTEXT_PATH.name} has no @context object")
    return document


def context() -> dict[str, Any]:
    """The JSON-LD context document (``{"@context": {...}}``); a fresh copy the caller may edit."""
    return copy.deepcopy(_context_document())

"""The vendor's side of customer-held loyalty and the r-button.

A vendor asks for proof of membership, or for the person's loyalty statement, through a
negotiation like any data (``request_policy([MEMBERSHIP], ...)``), and reads what was granted with
its own token: :func:`read_membership` and :func:`read_loyalty_statement` parse it. The r-button:
:func:`read_relationship` reads the person's relationship state (answered only when the person
switched the signal on for this vendor), :func:`tell_state` sends the vendor's own state.
Relationship states and payment intentions the agent sends arrive on the vendor's
:class:`~vrm_agent.vendor.inbox.Inbox` like any notification.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from rdflib import Graph, URIRef

from vrm_agent.errors import PodError
from vrm_agent.negotiation.signals import STATES, vendor_state_message
from vrm_agent.vendor.client import AgentInfo, VendorAgent, VendorError
from vrm_agent.vocabulary import SCHEMA, VRM

MEMBERSHIP = "pd:GroupMembership"  # the category a membership proof is asked for by
LOYALTY_STATEMENT = "pd:Opinion"  # the category of the person's own loyalty statement
DISCOVERY_PATH = ".well-known/vrm-agent"
JSON_LD = "application/ld+json"
MAX_RECORD_BYTES = 65536  # a membership or a statement is a few lines of Turtle


@dataclass(frozen=True)
class MembershipProof:
    """A membership as the person's pod holds it."""

    url: str
    number: str
    program: str | None
    tier: str | None
    points: Decimal | None
    since: str | None
    valid_through: str | None
    host: str | None  # the vendor IRI in the person's ledger


async def _graph(vendor: VendorAgent, url: str) -> Graph:
    response = await vendor.read(url)
    if response.status != 200:
        raise VendorError(f"{url} cannot be read (HTTP {response.status}): no agreement covers "
                          "it, or it ended")
    if len(response.body) > MAX_RECORD_BYTES:
        raise VendorError(f"{url} is larger than a record can be")
    try:
        return Graph().parse(data=response.body.decode("utf-8"), format="turtle",
                             publicID=url)
    except (ValueError, SyntaxError, UnicodeDecodeError) as exc:
        raise VendorError(f"{url} is not a readable record: {exc}") from None


def _text(graph: Graph, subject: URIRef, predicate: URIRef) -> str | None:
    value = graph.value(subject, predicate)
    return None if value is None else str(value)


async def read_membership(vendor: VendorAgent, url: str) -> MembershipProof:
    """The membership at ``url`` (granted to this vendor), as proof of membership."""
    graph, it = await _graph(vendor, url), URIRef(url + "#it")
    number = _text(graph, it, SCHEMA.membershipNumber)
    if number is None:
        raise VendorError(f"{url} holds no membership")
    points_text = _text(graph, it, SCHEMA.membershipPointsEarned)
    try:
        points = None if points_text is None else Decimal(points_text)
    except InvalidOperation:
        points = None
    return MembershipProof(url, number, _text(graph, it, SCHEMA.programName),
                           _text(graph, it, VRM.membershipTier), points,
                           _text(graph, it, VRM.memberSince),
                           _text(graph, it, SCHEMA.validThrough),
                           _text(graph, it, SCHEMA.hostingOrganization))


async def read_loyalty_statement(vendor: VendorAgent, url: str) -> str:
    """The person's loyalty statement at ``url``, in their words."""
    graph = await _graph(vendor, url)
    text = _text(graph, URIRef(url + "#it"), SCHEMA.text)
    if text is None:
        raise VendorError(f"{url} holds no loyalty statement")
    return text


async def relationship_endpoint(vendor: VendorAgent, agent: AgentInfo) -> str:
    """Where the agent's discovery document says the r-button is."""
    response = await vendor.pod.request("GET", agent.url + DISCOVERY_PATH,
                                        headers={"Accept": JSON_LD}, authenticated=False)
    try:
        document = response.json()
    except PodError as exc:
        raise VendorError(f"the agent at {agent.url} has no readable discovery document") \
            from exc
    node = document.get("vrm:relationshipEndpoint") if isinstance(document, dict) else None
    endpoint = node.get("@id") if isinstance(node, dict) else None
    if not isinstance(endpoint, str) or not endpoint.startswith(agent.url):
        raise VendorError(f"the agent at {agent.url} offers no relationship endpoint")
    return endpoint


async def read_relationship(vendor: VendorAgent, agent: AgentInfo) -> dict[str, Any]:
    """The person's relationship state with this vendor (a ``RelationshipStateMessage``);
    :class:`~vrm_agent.vendor.client.AgentRefused` (403) without the person's consent."""
    url = await relationship_endpoint(vendor, agent)
    return await vendor._send(url, {}, method="GET")


async def tell_state(vendor: VendorAgent, agent: AgentInfo, state: str) -> dict[str, Any]:
    """Send this vendor's own side of the relationship (one of the five states)."""
    if state not in STATES:
        raise VendorError(f"{state!r} is not a relationship state ({', '.join(STATES)})")
    url = await relationship_endpoint(vendor, agent)
    return await vendor._send(url, vendor_state_message(vendor=vendor.pod.webid, state=state))


__all__ = ["LOYALTY_STATEMENT", "MEMBERSHIP", "MembershipProof", "read_loyalty_statement",
           "read_membership", "read_relationship", "relationship_endpoint", "tell_state"]

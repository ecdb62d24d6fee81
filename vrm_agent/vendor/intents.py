"""A vendor's side of intentcasting (docs/protocol.md §17): the person's intents it may see,
each read from the pod with the vendor's own token, an offer to one, and its own offer back.
Whether the offer was accepted comes to the vendor's :class:`~vrm_agent.vendor.inbox.Inbox`
(an ``OfferAcceptedMessage`` with the signed agreement, or an ``IntentClosedMessage``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from vrm_agent.ledger.intents import Intent
from vrm_agent.ledger.layout import PodLayout
from vrm_agent.linkeddata.contexts import PROTOCOL_CONTEXT
from vrm_agent.vendor.client import DISCOVERY_PATH, JSON_LD, AgentInfo, VendorAgent, VendorError


@dataclass(frozen=True)
class IntentEntry:
    """One intent in the agent's listing: its id at the agent, its document in the person's
    pod, and where offers to it go."""

    id: str
    intent: str
    offers: str


def _ids(value: Any) -> str | None:
    if isinstance(value, dict):
        value = value.get("@id")
    return value if isinstance(value, str) and value else None


class IntentClient:
    """Intents and offers for one vendor (its :class:`VendorAgent`: pod client and inbox)."""

    def __init__(self, vendor: VendorAgent) -> None:
        self.vendor = vendor

    async def endpoint(self, agent: AgentInfo) -> str:
        """The agent's intents endpoint, from its discovery document."""
        response = await self.vendor.pod.request("GET", agent.url + DISCOVERY_PATH,
                                                 headers={"Accept": JSON_LD},
                                                 authenticated=False)
        document = response.json()
        found = _ids(document.get("vrm:intentsEndpoint")) if isinstance(document, dict) \
            else None
        if found is None:
            raise VendorError(f"the agent at {agent.url} names no intents endpoint")
        return found

    async def list(self, agent: AgentInfo) -> list[IntentEntry]:
        """The open intents this vendor may see."""
        body = await self.vendor._send(await self.endpoint(agent), {}, method="GET")
        entries = body.get("intents", [])
        out = []
        for entry in entries if isinstance(entries, list) else []:
            if not isinstance(entry, dict):
                continue
            ids = (_ids(entry.get("id")), _ids(entry.get("intent")),
                   _ids(entry.get("offerEndpoint")))
            if all(ids):
                out.append(IntentEntry(*ids))  # type: ignore[arg-type]
        return out

    async def read(self, intent: str | IntentEntry) -> Intent:
        """The intent, read from the person's pod with the vendor's own token (the pod answers
        403 to a vendor the person did not let see it: a ``Forbidden``)."""
        url = intent.intent if isinstance(intent, IntentEntry) else intent
        resource = await self.vendor.pod.get_graph(url)
        return Intent.from_graph(resource.graph, url, PodLayout(url.rsplit("/", 1)[0]))

    async def offer(self, entry: IntentEntry, *, price: Decimal | str, currency: str,
                    terms: str, availability: str | None = None,
                    starts: date | datetime | None = None,
                    description: str | None = None) -> dict[str, Any]:
        """Offer ``price`` in ``currency`` on the person's ``terms`` (the intent's, exactly);
        answers go to the vendor's callback address. The agent's view of the offer."""
        message: dict[str, Any] = {"@context": PROTOCOL_CONTEXT, "type": "IntentOfferMessage",
                                   "intent": entry.intent, "price": str(price),
                                   "priceCurrency": currency, "acceptsTerms": terms}
        optional: Mapping[str, Any] = {
            "availability": availability, "description": description,
            "availabilityStarts": starts.isoformat() if starts else None,
            "callbackAddress": self.vendor.callback}
        message.update({k: v for k, v in optional.items() if v is not None})
        return await self.vendor._send(entry.offers, message)

    async def own_offer(self, url: str) -> dict[str, Any]:
        """The vendor's offer as the agent keeps it (``offerState``: open, accepted, declined)."""
        return await self.vendor._send(url, {}, method="GET")

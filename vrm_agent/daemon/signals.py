"""Telling a vendor of the person's relationship state or of an intention to pay.

Messages go only to the callback address the vendor itself named in an authenticated call (the
newest of its negotiations that names one), signed and checked by the :class:`Notifier` like every
notification; a vendor that named none is not told, and the person hears why.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from vrm_agent.errors import VrmAgentError
from vrm_agent.ledger.paychoice import PaymentIntention
from vrm_agent.ledger.records import Relationship, Vendor
from vrm_agent.negotiation.signals import intention_message, person_state_message

if TYPE_CHECKING:
    from vrm_agent.daemon.negotiations import NegotiationService


class CannotTell(VrmAgentError):
    """The vendor cannot be sent a message."""


def initiated_by(relationship: Relationship, person: str) -> str | None:
    """Who started the relationship, in the protocol's two words."""
    if relationship.initiated_by is None:
        return None
    return "person" if relationship.initiated_by == person else "vendor"


def person_state(service: NegotiationService, vendor: Vendor, relationship: Relationship,
                 *, agent: str | None = None) -> dict[str, object]:
    """The person's side of the r-button for ``vendor`` (with the vendor's side as kept)."""
    return person_state_message(
        agent=agent or service.agent_url, person=service.owner, vendor=_webid(vendor),
        state=relationship.state, initiated_by=initiated_by(relationship, service.owner),
        since=relationship.since, changed_at=datetime.now(UTC),
        vendor_state=relationship.vendor_state, vendor_state_at=relationship.vendor_state_at)


async def callback_of(service: NegotiationService, webid: str) -> tuple[str, str] | None:
    """The callback address the vendor named last in its own negotiations, and the address of
    the agent it negotiated with (which the vendor trusts to sign, and which a command may not
    know otherwise); None when it named none."""
    named = [r for r in await service.records() if r.vendor == webid and r.callback]
    if not named:
        return None
    newest = max(named, key=lambda r: r.modified)
    assert newest.callback is not None
    return newest.callback, newest.url.rsplit("negotiations/", 1)[0]


def _webid(vendor: Vendor) -> str:
    if not vendor.webid:
        raise CannotTell(f"{vendor.name} has no WebID in your ledger, so its agent cannot be "
                         f"told; add it with `vrm-agent vendors set {vendor.id} --webid W`")
    return vendor.webid


async def _deliver(service: NegotiationService, vendor: Vendor,
                   message: Callable[[str], dict[str, object]]) -> str:
    found = await callback_of(service, _webid(vendor))
    if found is None:
        raise CannotTell(f"{vendor.name} has named no callback address in its calls to your "
                         "agent, so it cannot be told; nothing was sent")
    callback, agent = found
    if not await service.notifier.deliver(callback, message(agent)):
        raise CannotTell(f"{vendor.name}'s callback address {callback} did not take the "
                         "message; try again later (the agent's log says why)")
    return callback


async def tell_state(service: NegotiationService, vendor: Vendor,
                     relationship: Relationship) -> str:
    """Send the person's relationship state to the vendor; the callback it went to."""
    return await _deliver(service, vendor, lambda agent: person_state(
        service, vendor, relationship, agent=agent))


async def tell_intention(service: NegotiationService, vendor: Vendor,
                         intention: PaymentIntention) -> str:
    webid = _webid(vendor)
    return await _deliver(service, vendor, lambda agent: intention_message(
        agent=agent, person=service.owner, vendor=webid, intention=intention.id,
        amount=str(intention.amount), currency=intention.currency, start=intention.start,
        frequency=intention.frequency, purpose=intention.purpose, reason=intention.reason,
        changed_at=datetime.now(UTC)))


__all__ = ["CannotTell", "callback_of", "initiated_by", "person_state", "tell_intention",
           "tell_state"]

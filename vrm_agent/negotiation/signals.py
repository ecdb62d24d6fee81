"""The r-button and paychoice messages (docs/protocol.md §18), as pure data and functions.

``RelationshipStateMessage`` carries one side's relationship state: the agent's, sent to the
vendor's callback or read by the vendor at the agent's relationship endpoint; the vendor's own,
POSTed to that endpoint. ``PaymentIntentionMessage`` tells a vendor the person means to pay it.
What a vendor sends is read within tight bounds (it is a few fields, so a few kilobytes) and only
as the message type, the vendor's own WebID and one known state.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

from vrm_agent.linkeddata.contexts import PROTOCOL_CONTEXT
from vrm_agent.negotiation.wire import MalformedMessage, absolute_iri, load_message_json, normalise

RELATIONSHIP_STATE_MESSAGE = "RelationshipStateMessage"
PAYMENT_INTENTION_MESSAGE = "PaymentIntentionMessage"
SIGNAL_TYPES = (RELATIONSHIP_STATE_MESSAGE, PAYMENT_INTENTION_MESSAGE)
STATES = ("none", "prospect", "customer", "member", "former")
MAX_SIGNAL_BYTES = 4096


class NotYours(MalformedMessage):
    """A vendor's message about another vendor's relationship."""


def _iso(value: date | datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _clean(fields: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in fields.items() if v is not None}


def person_state_message(*, agent: str, person: str, vendor: str, state: str,
                         initiated_by: str | None, since: date | None, changed_at: datetime,
                         vendor_state: str | None = None,
                         vendor_state_at: datetime | None = None) -> dict[str, Any]:
    """The person's side of the r-button, as the agent sends it or answers a vendor's read.
    ``initiated_by`` is said as ``person`` or ``vendor``, never as an IRI of the ledger."""
    return _clean({
        "@context": PROTOCOL_CONTEXT, "type": RELATIONSHIP_STATE_MESSAGE, "agent": agent,
        "person": person, "vendor": vendor, "relationshipState": state,
        "initiatedBy": initiated_by, "since": _iso(since), "changedAt": _iso(changed_at),
        "vendorState": vendor_state, "vendorStateAt": _iso(vendor_state_at)})


def vendor_state_message(*, vendor: str | None, state: str,
                         changed_at: datetime | None = None) -> dict[str, Any]:
    """What a vendor POSTs to the agent's relationship endpoint."""
    return _clean({"@context": PROTOCOL_CONTEXT, "type": RELATIONSHIP_STATE_MESSAGE,
                   "vendor": vendor, "relationshipState": state,
                   "changedAt": _iso(changed_at)})


def intention_message(*, agent: str, person: str, vendor: str, intention: str, amount: str,
                      currency: str, start: date, frequency: str | None, purpose: str | None,
                      reason: str | None, changed_at: datetime) -> dict[str, Any]:
    return _clean({
        "@context": PROTOCOL_CONTEXT, "type": PAYMENT_INTENTION_MESSAGE, "agent": agent,
        "person": person, "vendor": vendor, "intention": intention, "amount": amount,
        "currency": currency, "frequency": frequency, "startDate": start.isoformat(),
        "paymentFor": purpose, "reason": [reason] if reason else None,
        "changedAt": changed_at.isoformat()})


def _one(value: Any) -> Any:
    return value[0] if isinstance(value, list) and len(value) == 1 else value


def _iri(value: Any, what: str) -> str:
    value = _one(value)
    if isinstance(value, dict):
        value = value.get("id", value.get("@id"))
    if not isinstance(value, str):
        raise MalformedMessage(f"{what} must be an IRI")
    return absolute_iri(value)


def read_signal(body: bytes | str, *, limit: int = MAX_SIGNAL_BYTES) -> dict[str, Any]:
    """The body as one of the signal messages, compacted against the protocol context (so any
    equivalent JSON-LD reads the same); :class:`MalformedMessage` otherwise."""
    data = load_message_json(body, limit=limit)
    if not isinstance(data, dict) or "@context" not in data:
        raise MalformedMessage(f"a message is a JSON-LD object with an @context (use "
                               f"{PROTOCOL_CONTEXT})")
    compacted = normalise(data)
    kind = _one(compacted.get("type"))
    if kind not in SIGNAL_TYPES:
        raise MalformedMessage(f"expected one of {', '.join(SIGNAL_TYPES)}, not {kind!r}")
    compacted["type"] = kind
    return compacted


def vendor_state_from(body: bytes | str, caller: str) -> str:
    """Pure: the state a vendor (authenticated as ``caller``) tells of its own relationship.
    A message naming another vendor is :class:`NotYours`; anything but one known state is
    :class:`MalformedMessage`."""
    message = read_signal(body)
    if message["type"] != RELATIONSHIP_STATE_MESSAGE:
        raise MalformedMessage(f"this endpoint takes a {RELATIONSHIP_STATE_MESSAGE}")
    if "vendor" in message and _iri(message["vendor"], "vendor") != caller:
        raise NotYours("a vendor tells only its own relationship state: 'vendor' must be the "
                       "WebID you authenticated with")
    state = _one(message.get("relationshipState"))
    if not isinstance(state, str) or state not in STATES:
        shown = state[:40] if isinstance(state, str) else state
        raise MalformedMessage(f"relationshipState must be one of {', '.join(STATES)}, "
                               f"not {shown!r}")
    return state


def signal_agent(message: Mapping[str, Any]) -> str | None:
    """The agent a signal message says it comes from (checked against the signing key by the
    vendor's inbox)."""
    try:
        return _iri(message.get("agent"), "agent")
    except MalformedMessage:
        return None


__all__ = [
    "MAX_SIGNAL_BYTES",
    "PAYMENT_INTENTION_MESSAGE",
    "RELATIONSHIP_STATE_MESSAGE",
    "SIGNAL_TYPES",
    "STATES",
    "NotYours",
    "intention_message",
    "person_state_message",
    "read_signal",
    "signal_agent",
    "vendor_state_from",
    "vendor_state_message",
]

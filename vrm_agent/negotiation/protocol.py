"""One contract-negotiation state machine for both sides, after the Dataspace Protocol.

States: REQUESTED, OFFERED, ACCEPTED, AGREED, VERIFIED, FINALIZED, TERMINATED. The consumer is
the vendor, the provider the person's agent. Each transition is one message from one side;
:func:`transition` refuses a message the state does not allow, or one sent by the wrong side.
A request the person must decide stays REQUESTED with ``awaiting_person`` set. One deviation
from the Dataspace Protocol, on purpose: a FINALIZED negotiation can still be TERMINATED, because
a person may revoke an agreement and every agreement expires; the reason says which.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, replace

from vrm_agent.errors import VrmAgentError


class State(enum.StrEnum):
    REQUESTED = "REQUESTED"
    OFFERED = "OFFERED"
    ACCEPTED = "ACCEPTED"
    AGREED = "AGREED"
    VERIFIED = "VERIFIED"
    FINALIZED = "FINALIZED"
    TERMINATED = "TERMINATED"


class Role(enum.StrEnum):
    CONSUMER = "consumer"  # the vendor
    PROVIDER = "provider"  # the person's agent


class Event(enum.StrEnum):
    REQUEST = "ContractRequestMessage"
    OFFER = "ContractOfferMessage"
    ACCEPT = "accepted"
    AGREE = "ContractAgreementMessage"
    VERIFY = "ContractAgreementVerificationMessage"
    FINALIZE = "finalized"
    TERMINATE = "ContractNegotiationTerminationMessage"


class ProtocolViolation(VrmAgentError):
    """A message the negotiation's state does not allow, or from the wrong side."""


# (state before, event) -> (who may send it, state after). None is "no negotiation yet".
TRANSITIONS: dict[tuple[State | None, Event], tuple[Role, State]] = {
    (None, Event.REQUEST): (Role.CONSUMER, State.REQUESTED),
    (State.OFFERED, Event.REQUEST): (Role.CONSUMER, State.REQUESTED),  # the vendor counters
    (State.REQUESTED, Event.OFFER): (Role.PROVIDER, State.OFFERED),
    (State.OFFERED, Event.ACCEPT): (Role.CONSUMER, State.ACCEPTED),
    (State.REQUESTED, Event.AGREE): (Role.PROVIDER, State.AGREED),
    (State.ACCEPTED, Event.AGREE): (Role.PROVIDER, State.AGREED),
    (State.AGREED, Event.VERIFY): (Role.CONSUMER, State.VERIFIED),
    (State.VERIFIED, Event.FINALIZE): (Role.PROVIDER, State.FINALIZED),
}
TERMINABLE = frozenset(s for s in State if s is not State.TERMINATED)


@dataclass(frozen=True)
class Negotiation:
    id: str
    role: Role  # which side keeps this copy
    state: State | None = None
    awaiting_person: bool = False
    reason: str | None = None
    history: tuple[tuple[str, str], ...] = field(default=())  # (event, state after)


def transition(
    negotiation: Negotiation, event: Event, *, sender: Role, reason: str | None = None,
    awaiting_person: bool = False,
) -> Negotiation:
    if event is Event.TERMINATE:
        if negotiation.state not in TERMINABLE:
            raise ProtocolViolation(f"a negotiation in state {negotiation.state} cannot end")
        after = State.TERMINATED
    else:
        allowed = TRANSITIONS.get((negotiation.state, event))
        if allowed is None:
            raise ProtocolViolation(
                f"{event.value} is not allowed in state {negotiation.state or '(new)'}")
        who, after = allowed
        if who is not sender:
            raise ProtocolViolation(f"{event.value} must come from the {who.value}, "
                                    f"not the {sender.value}")
    return replace(negotiation, state=after, reason=reason or negotiation.reason,
                   awaiting_person=awaiting_person and after is State.REQUESTED,
                   history=(*negotiation.history, (event.value, after.value)))

"""The vendor side: find a person's agent, negotiate, keep the agreement, read what was granted,
and hear of revocation, expiry and changes of what was granted; proof of membership, loyalty
statements and the r-button."""

from vrm_agent.vendor.changes import ChangeFollower, Observed, subscribe
from vrm_agent.vendor.client import (
    AgentInfo,
    AgentRefused,
    NegotiationView,
    VendorAgent,
    VendorError,
    request_policy,
)
from vrm_agent.vendor.inbox import Inbox, Notification
from vrm_agent.vendor.intents import IntentClient, IntentEntry
from vrm_agent.vendor.loyalty import (
    LOYALTY_STATEMENT,
    MEMBERSHIP,
    MembershipProof,
    read_loyalty_statement,
    read_membership,
    read_relationship,
    tell_state,
)

__all__ = ["AgentInfo", "AgentRefused", "Inbox", "IntentClient", "IntentEntry",
           "NegotiationView", "Notification", "VendorAgent", "VendorError", "request_policy"]
__all__ += ["LOYALTY_STATEMENT", "MEMBERSHIP", "MembershipProof", "read_loyalty_statement",
            "read_membership", "read_relationship", "tell_state"]
__all__ += ["ChangeFollower", "Observed", "subscribe"]  # change of address (protocol.md §16)

"""The vendor side: find a person's agent, negotiate, keep the agreement, read what was granted,
and hear of revocation, expiry and changes of what was granted."""

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

__all__ = ["AgentInfo", "AgentRefused", "Inbox", "NegotiationView", "Notification",
           "VendorAgent", "VendorError", "request_policy"]
__all__ += ["ChangeFollower", "Observed", "subscribe"]  # change of address (protocol.md §16)

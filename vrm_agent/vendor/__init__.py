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

__all__ = [
    "AgentInfo",
    "AgentRefused",
    "ChangeFollower",
    "Inbox",
    "NegotiationView",
    "Notification",
    "Observed",
    "VendorAgent",
    "VendorError",
    "request_policy",
    "subscribe",
]

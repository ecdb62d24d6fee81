"""The vendor side: find a person's agent, negotiate, keep the agreement, read what was granted,
and hear of revocation and expiry."""

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

__all__ = ["AgentInfo", "AgentRefused", "Inbox", "IntentClient", "IntentEntry",
           "NegotiationView", "Notification", "VendorAgent", "VendorError", "request_policy"]

"""Access grants to a person's pod: who (a vendor's WebID) may do what, on which resources, until
when, and under which agreement.

This package's core is pure: plain data and rdflib graphs in, graphs out. ``wac`` writes grants
into WAC ``.acl`` documents, ``acp`` into ACP ``.acr`` documents, and :func:`format_for` picks one
from what the server says about its access-control resource. Pod I/O lives in the layers above.
"""

from __future__ import annotations

from vrm_agent.access.documents import (
    ACP,
    ACP_ACCESS_CONTROL_RESOURCE,
    WAC,
    AccessDocumentFormat,
    format_for,
)
from vrm_agent.access.errors import (
    AccessError,
    ForbiddenMode,
    InvalidGrant,
    MalformedDocument,
    OwnerLockout,
    WrongDocument,
)
from vrm_agent.access.model import (
    OWNER_MODES,
    VENDOR_MODES,
    AccessMode,
    ForeignRule,
    Grant,
    check_modes,
    expired,
    next_expiry,
)

__all__ = [
    "ACP",
    "ACP_ACCESS_CONTROL_RESOURCE",
    "OWNER_MODES",
    "VENDOR_MODES",
    "WAC",
    "AccessDocumentFormat",
    "AccessError",
    "AccessMode",
    "ForbiddenMode",
    "ForeignRule",
    "Grant",
    "InvalidGrant",
    "MalformedDocument",
    "OwnerLockout",
    "WrongDocument",
    "check_modes",
    "expired",
    "format_for",
    "next_expiry",
]

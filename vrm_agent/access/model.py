"""Access grants as plain data.

A :class:`Grant` is what the person agreed to share: one agent (a vendor's WebID) gets some modes on
one resource, or on one container and its members, until a fixed time, usually because of an
agreement. The same grant is written as a WAC authorization or as an ACP access control; this module
knows nothing about either.

A grant given on several resources is several ``Grant`` values with the same ``id``, one per
access-control document (each document governs one resource). ``to_json`` therefore lists
``resources``, so the layer above can merge the per-document values of one id into one object.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from typing import Any

from rdflib import URIRef

from vrm_agent.access.errors import (
    AccessError,
    ForbiddenMode,
    InvalidGrant,
    MalformedDocument,
    OwnerLockout,
    WrongDocument,
)

__all__ = [
    "VENDOR_MODES",
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
    "next_expiry",
    "prepare_changes",
]

ACL_NS = "http://www.w3.org/ns/auth/acl#"


class AccessMode(Enum):
    """The four WAC modes. ACP 0.9 reuses the same ``acl:`` IRIs in ``acp:allow``/``acp:deny``."""

    READ = ACL_NS + "Read"
    APPEND = ACL_NS + "Append"
    WRITE = ACL_NS + "Write"
    CONTROL = ACL_NS + "Control"

    @property
    def iri(self) -> URIRef:
        return URIRef(self.value)

    @property
    def label(self) -> str:
        """The short name used in JSON and on the command line: ``Read``, ``Append``..."""
        return self.value[len(ACL_NS) :]

    @classmethod
    def parse(cls, text: str) -> AccessMode:
        """A mode from its label (any case), its ``acl:`` prefixed name or its full IRI."""
        name = text.strip()
        if name.startswith(ACL_NS):
            name = name[len(ACL_NS) :]
        elif name.startswith("acl:"):
            name = name[4:]
        for mode in cls:
            if mode.label.lower() == name.lower():
                return mode
        raise InvalidGrant(f"unknown access mode {text!r} (use Read, Append, Write or Control)")

    @classmethod
    def from_iri(cls, iri: object) -> AccessMode | None:
        """The mode an RDF term names, or None for anything else (a foreign or misspelt mode)."""
        try:
            return cls(str(iri))
        except ValueError:
            return None


# Vendors may read what was shared and append to it (e.g. post a message or an offer), never
# change or delete the person's data (Write) nor decide who else gets access (Control).
VENDOR_MODES: frozenset[AccessMode] = frozenset({AccessMode.READ, AccessMode.APPEND})
OWNER_MODES: frozenset[AccessMode] = frozenset(
    {AccessMode.READ, AccessMode.WRITE, AccessMode.CONTROL}
)

# Agent IRIs that name a class of agents, not one agent. In ACP ``acp:agent acp:PublicAgent`` means
# everyone, so a "WebID" like these would silently turn a grant into public access.
_AGENT_CLASS_NAMESPACES = (ACL_NS, "http://www.w3.org/ns/solid/acp#")
_AGENT_CLASSES = frozenset({"http://xmlns.com/foaf/0.1/Agent"})

_GRANT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,127}")
# Characters that may not appear in a Turtle IRI reference; rejecting them here means no grant can
# ever produce a document the server refuses to parse (or parses into something else).
_IRI_FORBIDDEN = re.compile(r"[\x00-\x20<>\"{}|\\^`]")
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:")


def is_absolute_iri(text: str) -> bool:
    return bool(_SCHEME.match(text)) and not _IRI_FORBIDDEN.search(text)


def _check_http_iri(value: object, what: str, *, fragment_ok: bool) -> str:
    if not isinstance(value, str) or not value.startswith(("http://", "https://")):
        raise InvalidGrant(f"{what} must be an http(s) IRI, got {value!r}")
    if _IRI_FORBIDDEN.search(value):
        raise InvalidGrant(f"{what} contains characters not allowed in an IRI: {value!r}")
    if not fragment_ok and "#" in value:
        raise InvalidGrant(f"{what} must not have a #fragment: {value!r}")
    return value


def _aware_utc(value: object, what: str) -> datetime:
    if not isinstance(value, datetime):
        raise InvalidGrant(f"{what} must be a datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        # A naive time is ambiguous across the person's laptop, the server and the pod.
        raise InvalidGrant(f"{what} must be timezone-aware, got naive {value.isoformat()}")
    return value.astimezone(UTC)


def _time_json(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _time_from_json(value: object, what: str) -> datetime:
    if not isinstance(value, str):
        raise InvalidGrant(f"{what} must be an ISO 8601 string, got {value!r}")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise InvalidGrant(f"{what} is not an ISO 8601 date-time: {value!r}") from exc
    return _aware_utc(parsed, what)


@dataclass(frozen=True)
class Grant:
    """One agent's access to one resource (or container and members) until ``expires``.

    Times are normalised to UTC, so two grants for the same instant compare equal whatever offset
    they were written with.
    """

    id: str
    agent: str
    resource: str
    modes: frozenset[AccessMode]
    expires: datetime
    members: bool = False
    agreement: str | None = None
    created: datetime | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not _GRANT_ID.fullmatch(self.id):
            # The id becomes an IRI fragment (#vrm-grant-{id}): keep it to safe characters.
            raise InvalidGrant(f"grant id must match {_GRANT_ID.pattern}, got {self.id!r}")
        _check_http_iri(self.agent, "agent WebID", fragment_ok=True)
        if self.agent.startswith(_AGENT_CLASS_NAMESPACES) or self.agent in _AGENT_CLASSES:
            raise InvalidGrant(f"a grant is for one agent's WebID, not a class: {self.agent}")
        _check_http_iri(self.resource, "resource", fragment_ok=False)
        try:
            modes = frozenset(self.modes) if not isinstance(self.modes, str) else None
        except TypeError:
            modes = None
        if not modes or not all(isinstance(m, AccessMode) for m in modes):
            raise InvalidGrant(f"a grant needs at least one AccessMode, got {self.modes!r}")
        object.__setattr__(self, "modes", modes)
        if self.members and not self.resource.endswith("/"):
            raise InvalidGrant(f"members=True needs a container (URL ending in /): {self.resource}")
        object.__setattr__(self, "expires", _aware_utc(self.expires, "expires"))
        if self.created is not None:
            object.__setattr__(self, "created", _aware_utc(self.created, "created"))
        if self.agreement is not None and (
            not isinstance(self.agreement, str) or not self.agreement.strip()
        ):
            raise InvalidGrant(f"agreement must be a non-empty string, got {self.agreement!r}")

    @classmethod
    def new(
        cls,
        agent: str,
        resource: str,
        modes: Iterable[AccessMode | str],
        expires: datetime,
        *,
        members: bool = False,
        agreement: str | None = None,
        now: datetime | None = None,
        id: str | None = None,
    ) -> Grant:
        """A fresh grant with a random id and ``created`` set to ``now`` (default: the clock)."""
        return cls(
            id=id or uuid.uuid4().hex,
            agent=agent,
            resource=resource,
            modes=frozenset(m if isinstance(m, AccessMode) else AccessMode.parse(m) for m in modes),
            expires=expires,
            members=members,
            agreement=agreement,
            created=now or datetime.now(UTC),
        )

    def is_expired(self, now: datetime) -> bool:
        return self.expires <= _aware_utc(now, "now")

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "agent": self.agent,
            "resource": self.resource,
            "resources": [self.resource],
            "modes": [m.label for m in AccessMode if m in self.modes],
            "members": self.members,
            "expires": _time_json(self.expires),
            "agreement": self.agreement,
            "created": _time_json(self.created) if self.created else None,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Grant:
        """The inverse of :meth:`to_json`; accepts ``resource`` or a one-element ``resources``."""
        if not isinstance(data, Mapping):
            raise InvalidGrant(f"a grant must be a JSON object, got {type(data).__name__}")
        resource = data.get("resource")
        if resource is None:
            resources = data.get("resources")
            if not isinstance(resources, list) or len(resources) != 1:
                raise InvalidGrant("a grant needs one resource ('resource' or 'resources': [url])")
            resource = resources[0]
        modes = data.get("modes")
        if not isinstance(modes, list) or not all(isinstance(m, str) for m in modes):
            raise InvalidGrant(f"modes must be a list of mode names, got {modes!r}")
        try:
            return cls(
                id=data["id"],
                agent=data["agent"],
                resource=resource,
                modes=frozenset(AccessMode.parse(m) for m in modes),
                expires=_time_from_json(data.get("expires"), "expires"),
                members=bool(data.get("members", False)),
                agreement=data.get("agreement"),
                created=(
                    _time_from_json(data["created"], "created") if data.get("created") else None
                ),
            )
        except KeyError as exc:
            raise InvalidGrant(f"a grant needs {exc.args[0]!r}") from exc


@dataclass(frozen=True)
class ForeignRule:
    """A summary of one rule the agent did not write, for showing the person who else has access.

    It is a reading aid, not a decision procedure: the document itself stays authoritative, and
    these rules are never edited. ``node`` is the rule's IRI or ``_:label`` for a blank node. For
    ACP one rule is one policy; ``restricted`` says it has conditions beyond the agent (a client,
    an issuer, a ``noneOf``) so it may apply to fewer requests than its agents suggest.
    """

    node: str
    agents: frozenset[str] = frozenset()
    agent_classes: frozenset[str] = frozenset()
    agent_groups: frozenset[str] = frozenset()
    modes: frozenset[AccessMode] = frozenset()
    denied_modes: frozenset[AccessMode] = frozenset()
    this_resource: bool = False
    members: bool = False
    restricted: bool = False


def check_modes(grant: Grant, owner: str) -> None:
    """Refuse Write or Control for anyone but the owner (raises :class:`ForbiddenMode`)."""
    if grant.agent == owner:
        return
    extra = grant.modes - VENDOR_MODES
    if extra:
        names = ", ".join(m.label for m in AccessMode if m in extra)
        raise ForbiddenMode(
            f"grant {grant.id}: {grant.agent} may only get Read or Append, not {names}"
        )


def prepare_changes(
    resource_url: str, owner_webid: str, add: Iterable[Grant]
) -> list[Grant]:
    """The grants of one batch, checked: each once (identical duplicates from retried requests
    collapse; two *different* grants with one id is a caller's bug), each for this document's
    resource, and each within the modes its agent may get."""
    by_id: dict[str, Grant] = {}
    for grant in add:
        previous = by_id.setdefault(grant.id, grant)
        if previous != grant:
            raise InvalidGrant(f"two different grants with the id {grant.id} in one change")
    for grant in by_id.values():
        check_modes(grant, owner_webid)
        if grant.resource != resource_url:
            raise WrongDocument(
                f"grant {grant.id} is for {grant.resource}, not for {resource_url}"
            )
    return list(by_id.values())


def expired(grants: Iterable[Grant], now: datetime) -> list[Grant]:
    """The grants whose end is at or before ``now`` (which must be timezone-aware)."""
    moment = _aware_utc(now, "now")
    return [g for g in grants if g.expires <= moment]


def next_expiry(grants: Iterable[Grant]) -> datetime | None:
    """The earliest end among ``grants`` (the reconciler sleeps until then), or None."""
    return min((g.expires for g in grants), default=None)

"""Which pod resources a vendor may be granted: a pure check on the URLs a request names.

A target from a vendor is a stranger's string. It is normalised the way the pod server will read
it (scheme and host in lower case, default port dropped, unreserved percent-escapes decoded, dot
segments removed), so ``<pod>/../bolt/`` or ``<pod>/%2e%2e/bolt/`` is seen as the other pod it
names. Only what then lies inside the person's storage may be shared, and never:

- the storage root, nor any container that holds the agent's own records (``vrm/``): a grant on
  such a container with its members would open the negotiations, the terms and every vendor's
  purchases at once;
- anything inside ``vrm/`` named as a resource URL: the person's ledger data is shared by category
  (``pd:EmailAddress``, ``pd:Purchase``), which maps to exactly one vendor's share of it;
- auxiliary resources (``.acl``, ``.acr``, ``.meta``), URLs with a query, fragment or userinfo,
  or with empty path segments (``//``), which servers read in different ways.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from vrm_agent.negotiation.odrl import Policy
from vrm_agent.negotiation.urls import MAX_URL_LENGTH, UrlRefused, normalise

AUXILIARY_SUFFIXES = (".acl", ".acr", ".meta")
MAX_TARGET_LENGTH = MAX_URL_LENGTH
# Servers disagree on whether an escaped slash separates segments: never guess.
_AMBIGUOUS_ESCAPE = re.compile("%(2[fF]|5[cC]|00)")


class TargetRefused(UrlRefused):
    """A target that is never granted; the text says why, in words a vendor can act on."""


@dataclass(frozen=True)
class ShareableArea:
    """The person's storage and, inside it, the agent's own records."""

    storage: str
    records_root: str  # <storage>vrm/

    def __post_init__(self) -> None:
        object.__setattr__(self, "storage", normalise_url(self.storage))
        object.__setattr__(self, "records_root", normalise_url(self.records_root))


def normalise_url(url: str) -> str:
    """The URL as a server resolves it; raises TargetRefused for what is not a plain http(s)
    URL naming a resource (no query, fragment, user information or ambiguous escape)."""
    if not isinstance(url, str) or not url or len(url) > MAX_TARGET_LENGTH:
        raise TargetRefused("a target is an absolute http(s) URL of reasonable length")
    if _AMBIGUOUS_ESCAPE.search(url):
        raise TargetRefused("a target may not contain escaped slashes, backslashes or NULs")
    if "#" in url or "?" in url:
        raise TargetRefused("a target names a resource, without query or fragment")
    return normalise(url, what="a target", error=TargetRefused).url


def shareable_target(url: str, area: ShareableArea) -> str:
    """The normalised target if a vendor may be granted it; TargetRefused says why not."""
    target = normalise_url(url)
    if "//" in target.split("://", 1)[1]:
        raise TargetRefused("a target may not hold empty path segments ('//')")
    if not target.startswith(area.storage):
        raise TargetRefused("it is outside the person's storage")
    if target == area.storage or area.records_root.startswith(target):
        raise TargetRefused("the storage root and the containers holding the agent's records "
                            "are never shared; ask for the resources or categories you need")
    if target.startswith(area.records_root):
        raise TargetRefused("the agent's records are not shared by URL; ask for a personal-data "
                            "category (pd:EmailAddress, pd:Purchase, ...) instead")
    name = target.rstrip("/").rsplit("/", 1)[-1].lower()
    if name.endswith(AUXILIARY_SUFFIXES):
        raise TargetRefused("access-control and description resources are never shared")
    return target


def with_normalised_targets(request: Policy) -> Policy:
    """The request with every URL target spelt as the server resolves it, so that the terms
    judge the resource that would be granted (``./``, case, ports, escapes) and not its
    spelling. A target that does not normalise is left for shareable_target to refuse."""
    def one(target: str) -> str:
        if not target.startswith(("http://", "https://")):
            return target
        try:
            return normalise_url(target)
        except TargetRefused:
            return target

    rules = tuple(replace(r, targets=tuple(one(t) for t in r.targets)) for r in request.rules)
    return replace(request, rules=rules)


__all__ = ["ShareableArea", "TargetRefused", "normalise_url", "shareable_target",
           "with_normalised_targets"]

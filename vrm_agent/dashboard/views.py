"""What the dashboard's pages compute from what the agent keeps, without I/O."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from vrm_agent.access.index import GrantView
from vrm_agent.negotiation.records import NegotiationRecord


def version_tag(items: Iterable[str]) -> str:
    """A short tag that changes when the set of ``items`` a list shows changes."""
    digest = hashlib.sha256("\n".join(sorted(items)).encode()).hexdigest()
    return digest[:16]


_WORD = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+")


def in_words(iri: str | None) -> str:
    """A DPV, DPV-PD or ODRL term as a person reads it ("email address", "service provision",
    "read"): its English label from the pinned vocabulary, else its name split into words.
    Any other IRI is shown as it is, since nobody vouches for a word for it."""
    from vrm_agent.negotiation.decide import short
    from vrm_agent.policy.model import ODRL
    from vrm_agent.policy.vocabulary import vocabulary

    if not iri:
        return "(nothing named)"
    known = short(iri)
    name = (known.split(":", 1)[1] if known != iri else
            iri[len(ODRL):] if iri.startswith(ODRL) else None)
    if not name:
        return iri
    label = vocabulary().label(iri) or " ".join(_WORD.findall(name)) or name
    # "Email Address" reads "email address"; an acronym ("IP Address") keeps its capitals.
    return " ".join(w.lower() if w[1:].islower() else w for w in label.split())


def agreement_categories(agreement: Mapping[str, Any] | None) -> list[str]:
    """The data an agreement permits, in plain words ("email address"); none when it cannot
    be read, so a damaged record shows its resources only."""
    from vrm_agent.errors import VrmAgentError
    from vrm_agent.negotiation.wire import policy_from_json

    if not agreement:
        return []
    try:
        policy = policy_from_json({k: v for k, v in agreement.items()
                                   if k not in ("@context", "proof", "grant")})
    except (VrmAgentError, ValueError, TypeError, KeyError):
        return []
    return sorted({in_words(t) for r in policy.rules if r.kind == "permission"
                   for t in r.targets})


def holdings(grants: Iterable[GrantView], records: Mapping[str, NegotiationRecord],
             names: Mapping[str, str],
             negotiation_of: Callable[[str, str | None], str | None]) -> list[dict[str, Any]]:
    """Who holds what: per grant in force, the vendor, the data categories its agreement
    names, until when, the resources, and the agreement to download (when there is one)."""
    rows = []
    for grant in grants:
        negotiation_id = negotiation_of(grant.id, grant.agreement)
        record = records.get(negotiation_id) if negotiation_id else None
        rows.append({
            "vendor": names.get(grant.agent, grant.agent), "webid": grant.agent,
            "categories": agreement_categories(record.agreement if record else None),
            "until": grant.expires, "resources": list(grant.resources),
            "agreement": negotiation_id if record and record.agreement else None})
    return sorted(rows, key=lambda r: (str(r["vendor"]).casefold(), r["until"]))

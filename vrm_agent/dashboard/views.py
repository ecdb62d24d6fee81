"""What the dashboard's pages compute from what the agent keeps, without I/O."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from vrm_agent.access.index import GrantView
from vrm_agent.daemon.negotiations import NEGOTIATION_ID
from vrm_agent.ledger.intents import Intent, IntentAudience, IntentOffer
from vrm_agent.ledger.records import RecordError, check_record_id
from vrm_agent.negotiation.records import NegotiationRecord

INTENT_AGREEMENT = "intent-"  # agreements made by accepting an offer: intent-<intent id>
CLOSED_SHOWN = 20  # closed intents on the page, newest first; the command line lists all


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


def is_record_id(value: str) -> bool:
    """Whether ``value`` may name a record (an intent, an offer) by the ledger's rules."""
    try:
        check_record_id(value)
    except RecordError:
        return False
    return True


def agreement_file_id(agreement_id: str) -> str | None:
    """``agreement_id`` when it names an agreement record the agent writes: a negotiation's
    (16 hex digits) or an accepted intent offer's (``intent-`` and the intent's id); None for
    anything else, so nothing outside the agreements container is ever read."""
    if NEGOTIATION_ID.fullmatch(agreement_id):
        return agreement_id
    intent_id = agreement_id.removeprefix(INTENT_AGREEMENT)
    if intent_id != agreement_id and is_record_id(intent_id):
        return agreement_id
    return None


def download_name(agreement_id: str) -> str:
    """A file name for the download: an intent id may hold characters a header cannot carry
    or a file system would read as something else."""
    return "agreement-" + "".join(c if c.isascii() and (c.isalnum() or c in "-_") else "_"
                                  for c in agreement_id)


def intents_in_order(pairs: Iterable[tuple[Intent, IntentAudience]],
                     closed_shown: int = CLOSED_SHOWN
                     ) -> tuple[list[tuple[Intent, IntentAudience]], int]:
    """The intents the page shows, open first and closed after, newest first in each; at most
    ``closed_shown`` closed ones. Also how many closed ones were left out."""
    def newest_first(pair: tuple[Intent, IntentAudience]) -> tuple[str, str]:
        created = pair[0].created
        return (created.isoformat() if created else "", pair[0].id)

    ordered = sorted(pairs, key=newest_first, reverse=True)
    still_open = [p for p in ordered if p[1].is_open]
    closed = [p for p in ordered if not p[1].is_open]
    return still_open + closed[:closed_shown], max(0, len(closed) - closed_shown)


def intent_card(row: Mapping[str, Any], offers: Iterable[IntentOffer] | None,
                names: Mapping[str, str]) -> dict[str, Any]:
    """One intent as the page shows it (``row`` is the shared :func:`intent_row`): who may read
    it by name, its offers compared cheapest first with the accepted one marked, and the
    agreement the accepted offer made; ``offers`` None when they could not be read."""
    from vrm_agent.daemon.intents import comparison, offer_row

    visible = row["visible_to"]
    accepted = row["accepted_offer"]
    compared = [{**offer_row(o, names), "accepted": o.id == accepted}
                for o in comparison(offers or ())]
    return {
        **row,
        "who": "everyone" if isinstance(visible, str) else
               ", ".join(names.get(w, w) for w in visible) or "nobody",
        "offers": compared, "offers_unreadable": offers is None,
        "agreement": INTENT_AGREEMENT + row["id"] if accepted else None,
    }

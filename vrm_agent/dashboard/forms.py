"""What the dashboard's forms mean, without I/O: a form's fields checked and turned into what
the shared functions take. Each problem is one line in the person's words."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

CONTACT_FIELDS = ("value", "label", "locality", "postal_code", "region", "country")
FIELD_CHARACTERS = 300  # longer than any address line; a longer one is refused, not cut


class FormProblem(ValueError):
    """A form the person can correct; the text says how."""


def contact_changes(current: Any, form: Mapping[str, Any]) -> dict[str, str]:
    """The fields of contact unit ``current`` the form changes: the value must stay, an
    emptied field is cleared, a field left as it was is not sent."""
    changes: dict[str, str] = {}
    for name in CONTACT_FIELDS:
        sent = form.get(name)
        if sent is None:
            continue
        if not isinstance(sent, str):
            raise FormProblem(f"the {name.replace('_', ' ')} must be text")
        sent = sent.strip()
        if len(sent) > FIELD_CHARACTERS:
            raise FormProblem(f"the {name.replace('_', ' ')} is longer than "
                              f"{FIELD_CHARACTERS} characters; shorten it")
        if name == "value" and not sent:
            raise FormProblem("the new value is empty; write it, or leave the form alone")
        if sent != (getattr(current, name) or ""):
            changes[name] = sent
    if not changes:
        raise FormProblem("nothing was changed; edit a field before saving")
    return changes


AUDIT_DAYS = 31  # days one timeline reads, one pod document each
AUDIT_PAGE = 50  # events on one page of the timeline
AUDIT_PAGES = 1000  # more than 31 busy days hold
_DAY = re.compile("[0-9]{4}-[0-9]{2}-[0-9]{2}")


@dataclass(frozen=True)
class AuditQuery:
    """The audit timeline's filters, from its GET form; every one optional."""

    first: date
    last: date
    type: str | None = None
    vendor: str | None = None
    page: int = 1

    def days(self) -> list[date]:
        """The days to read, newest first."""
        count = (self.last - self.first).days + 1
        return [self.last - timedelta(days=n) for n in range(count)]


def audit_query(query: Mapping[str, str], today: date, types: Iterable[str],
                vendors: Iterable[str]) -> AuditQuery:
    """The filters the form sent, checked: a date range of at most AUDIT_DAYS days ending by
    today (the last week when none is given), an event type and a vendor among those known."""
    def day(name: str, default: date) -> date:
        sent = (query.get(name) or "").strip()
        if not sent:
            return default
        try:
            if not _DAY.fullmatch(sent):
                raise ValueError
            return date.fromisoformat(sent)
        except ValueError:
            raise FormProblem(f"the {name} date {sent[:20]!r} is not a date like "
                              f"{today.isoformat()}") from None

    last = min(day("to", today), today)
    first = day("from", last - timedelta(days=6))
    if first > last:
        raise FormProblem("the 'from' date is after the 'to' date; swap them")
    if (last - first).days >= AUDIT_DAYS:
        raise FormProblem(f"the dates span more than {AUDIT_DAYS} days; choose a shorter range")
    event_type = (query.get("type") or "").strip() or None
    if event_type is not None and event_type not in set(types):
        raise FormProblem("that event type is not one the log keeps; choose one from the list")
    vendor = (query.get("vendor") or "").strip() or None
    if vendor is not None and vendor not in set(vendors):
        raise FormProblem("that vendor is not one of yours; choose one from the list")
    page = (query.get("page") or "1").strip()
    if not re.fullmatch("[0-9]{1,4}", page) or not 1 <= int(page) <= AUDIT_PAGES:
        raise FormProblem("that page of the timeline does not exist; start from the first")
    return AuditQuery(first, last, event_type, vendor, int(page))


def audit_page(events: Iterable[Mapping[str, Any]], query: AuditQuery
               ) -> tuple[list[Mapping[str, Any]], bool]:
    """The events that pass the filters, newest first, on the query's page; and whether a
    later page has more."""
    kept = [e for e in events
            if (query.type is None or e.get("type") == query.type)
            and (query.vendor is None or e.get("vendor") == query.vendor)]
    kept.sort(key=lambda e: str(e.get("at") or ""), reverse=True)
    start = (query.page - 1) * AUDIT_PAGE
    return kept[start:start + AUDIT_PAGE], len(kept) > start + AUDIT_PAGE

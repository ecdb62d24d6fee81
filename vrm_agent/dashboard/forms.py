"""What the dashboard's forms mean, without I/O: a form's fields checked and turned into what
the shared functions take. Each problem is one line in the person's words."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from vrm_agent.ledger.intents import amount, currency
from vrm_agent.ledger.records import RecordError

if TYPE_CHECKING:  # what aiohttp's form is (aiohttp's own dependency)
    from multidict import MultiMapping

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


INTENT_LINE = 200  # characters of what and where, as the ledger keeps them


@dataclass(frozen=True)
class IntentWanted:
    """What the "put out an intent" form asks for, checked."""

    what: str
    budget: Decimal
    currency: str
    where: str | None
    starts: date | None
    ends: date | None
    public: bool
    vendors: tuple[str, ...]  # WebIDs, each a vendor of the ledger


def intent_wanted(form: MultiMapping[Any], today: date, vendors: Mapping[str, str]
                  ) -> IntentWanted:
    """The intent the form describes: a line of what, an amount and a currency code, optional
    where and dates (not ending before today), and who may read it: everyone, or vendors among
    ``vendors`` (the ledger's, WebID to name) and no others."""
    def line(name: str, what: str) -> str | None:
        sent = form.get(name)
        if sent is not None and not isinstance(sent, str):
            raise FormProblem(f"{what} must be text")
        sent = " ".join((sent or "").split())
        if any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in sent):
            raise FormProblem(f"{what} holds control characters; write plain text")
        if len(sent) > INTENT_LINE:
            raise FormProblem(f"{what} is longer than {INTENT_LINE} characters; shorten it")
        return sent or None

    def day(name: str, what: str) -> date | None:
        sent = line(name, what)
        if sent is None:
            return None
        try:
            if not _DAY.fullmatch(sent):
                raise ValueError
            return date.fromisoformat(sent)
        except ValueError:
            raise FormProblem(f"{what} {sent[:20]!r} is not a date like "
                              f"{today.isoformat()}") from None

    what = line("what", "what you want")
    if what is None:
        raise FormProblem("say what you want in a line")
    # The ledger's own checks, so the form takes exactly what `intent add` takes.
    sent = line("budget", "the budget") or ""
    try:
        budget = amount(sent, "the budget")
    except RecordError:
        raise FormProblem(f"the budget {sent[:20]!r} is not an amount; write it like 1200 or "
                          "1200.50") from None
    sent = line("currency", "the currency") or ""
    try:
        code = currency(sent)
    except RecordError:
        raise FormProblem(f"the currency {sent[:20]!r} is not a code like EUR or USD") from None
    starts, ends = day("from", "the first day"), day("until", "the last day")
    if ends is not None and ends < today:
        raise FormProblem("the last day is in the past; choose one to come")
    if starts is not None and ends is not None and starts > ends:
        raise FormProblem("the first day is after the last day; swap them")
    chosen = [v for v in form.getall("vendor", []) if isinstance(v, str)]
    audience = form.get("audience")
    if audience == "public":
        if chosen:
            raise FormProblem("choose everyone or some vendors, not both")
        return IntentWanted(what, budget, code, line("where", "where"),
                            starts, ends, True, ())
    if audience != "chosen":
        raise FormProblem("choose who may read it: everyone, or the vendors you tick")
    if not chosen:
        raise FormProblem("tick at least one vendor who may read it, or choose everyone")
    if any(v not in vendors for v in chosen):
        raise FormProblem("that vendor is not one of yours; choose from the list")
    return IntentWanted(what, budget, code, line("where", "where"), starts,
                        ends, False, tuple(sorted(set(chosen))))

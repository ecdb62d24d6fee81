"""xsd:duration values (ODRL elapsedTime) to and from timedelta, in days, hours, minutes and
seconds only: months and years have no fixed length, so terms must say P30D, not P1M."""

from __future__ import annotations

import math
from datetime import datetime, timedelta

import isodate

# Far beyond any agreement a person would make, and far inside what dates can hold: a longer
# one is refused rather than left to overflow where an end time is worked out.
MAX_DURATION = timedelta(days=100 * 366)
# The shortest agreement a vendor may ask for (docs/protocol.md §4.3). A grant ends on a whole
# second and the agent must be able to write it before it ends; anything shorter is refused.
MIN_REQUESTED = timedelta(seconds=1)


def duration_of(text: str) -> timedelta:
    if not isinstance(text, str) or len(text) > 64:
        raise ValueError("an xsd:duration is a short text such as P7D")
    try:
        value = isodate.parse_duration(text)
    except (isodate.ISO8601Error, ValueError, OverflowError, ArithmeticError):
        raise ValueError(f"{text!r} is not an xsd:duration this agent can use") from None
    if not isinstance(value, timedelta):
        raise ValueError(f"{text!r}: use days (P30D) rather than months or years")
    if value <= timedelta(0):
        raise ValueError(f"{text!r}: a duration must be positive")
    if value > MAX_DURATION:
        raise ValueError(f"{text!r}: a duration may be at most {MAX_DURATION.days} days")
    return value


def duration_text(value: timedelta) -> str:
    seconds = int(value.total_seconds())
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    time = "".join(f"{n}{u}" for n, u in ((hours, "H"), (minutes, "M"), (secs, "S")) if n)
    return "P" + (f"{days}D" if days else "") + (f"T{time}" if time else "") if seconds else "PT0S"


def duration_words(value: timedelta) -> str:
    """A duration as a person says it, to its two largest units: "30 days", "1 day and
    6 hours", "45 seconds". Days are not turned into months or years (their length varies)."""
    seconds = int(value.total_seconds())
    parts = [f"{n} {unit}{'s' if n != 1 else ''}"
             for n, unit in ((seconds // 86400, "day"), (seconds % 86400 // 3600, "hour"),
                             (seconds % 3600 // 60, "minute"), (seconds % 60, "second"))
             if n][:2]
    return " and ".join(parts) if parts else "no time at all"


def requested_duration(text: str) -> timedelta:
    """A duration a vendor asks for: an xsd:duration of at least MIN_REQUESTED, in whole
    seconds (a fraction is rounded up: PT1.2S is two seconds)."""
    value = duration_of(text)
    if value < MIN_REQUESTED:
        raise ValueError(f"{text!r} is shorter than the shortest agreement, "
                         f"{duration_text(MIN_REQUESTED)}")
    return timedelta(seconds=math.ceil(value.total_seconds()))


def end_of(start: datetime, duration: timedelta) -> datetime:
    """When an agreement made at ``start`` for ``duration`` ends: counted from the agreement
    and rounded up to the whole second, so it is never shorter than agreed."""
    end = start + duration
    return end if end.microsecond == 0 else end.replace(microsecond=0) + timedelta(seconds=1)

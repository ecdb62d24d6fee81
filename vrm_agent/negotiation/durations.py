"""xsd:duration values (ODRL elapsedTime) to and from timedelta, in days, hours, minutes and
seconds only: months and years have no fixed length, so terms must say P30D, not P1M."""

from __future__ import annotations

from datetime import timedelta

import isodate

# Far beyond any agreement a person would make, and far inside what dates can hold: a longer
# one is refused rather than left to overflow where an end time is worked out.
MAX_DURATION = timedelta(days=100 * 366)


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

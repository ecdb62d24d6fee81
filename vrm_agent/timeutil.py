"""Reading the durations and times people type: ``30s``, ``15m``, ``2h``, ``7d``, ``2w`` or ISO 8601
(``P30D``, ``PT1H30M``), and ISO 8601 date-times."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import isodate

from vrm_agent.errors import VrmAgentError

_SHORT = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$", re.IGNORECASE)
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


class TimeFormatError(VrmAgentError):
    """A duration or a time that cannot be read."""


def parse_duration(text: str) -> timedelta:
    match = _SHORT.match(text)
    if match:
        value = timedelta(**{_UNITS[match.group(2).lower()]: float(match.group(1))})
    else:
        try:
            parsed = isodate.parse_duration(text.strip().upper())
        except (isodate.ISO8601Error, ValueError):
            raise TimeFormatError(
                f"{text!r} is not a duration (try 30s, 15m, 2h, 7d, 2w or ISO 8601 like P30D)"
            ) from None
        if not isinstance(parsed, timedelta):  # years or months: no fixed length
            raise TimeFormatError(f"{text!r}: use days or weeks instead of months or years")
        value = parsed
    if value <= timedelta(0):
        raise TimeFormatError(f"{text!r}: a duration must be positive")
    return value


def parse_time(text: str) -> datetime:
    """An ISO 8601 date-time; without a zone it is taken as the local time of this machine."""
    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise TimeFormatError(f"{text!r} is not an ISO 8601 date-time") from None
    if value.tzinfo is None:
        value = value.astimezone()
    return value.astimezone(UTC)


def utc_now() -> datetime:
    return datetime.now(UTC)

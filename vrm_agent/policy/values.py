"""Operand values read as what they are (numbers, times, durations, IRIs, text) and compared
with ODRL's operators. Every function answers True, False or None, where None means *cannot be
decided*: a date without a time zone, values of different types, a duration in months against
one in days, an IRI no vocabulary places. The evaluator turns None into the reading that shares
less, so nothing here has to guess."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from functools import lru_cache

from vrm_agent.policy.model import ODRL, XSD, Value

NUMBER_TYPES = frozenset(XSD + t for t in (
    "integer", "decimal", "float", "double", "int", "long", "short", "byte",
    "nonNegativeInteger", "positiveInteger", "nonPositiveInteger", "negativeInteger",
    "unsignedInt", "unsignedLong", "unsignedShort", "unsignedByte"))
DATETIME_TYPES = frozenset((XSD + "dateTime", XSD + "dateTimeStamp"))
DURATION_TYPES = frozenset((XSD + "duration", XSD + "dayTimeDuration",
                            XSD + "yearMonthDuration"))
TEXT_TYPES = frozenset((XSD + "string", "http://www.w3.org/1999/02/22-rdf-syntax-ns#langString",
                        XSD + "token", XSD + "normalizedString"))

# What each ODRL left operand measures, where the Vocabulary says it is a number, a time or a
# duration; every other one is compared as IRIs or text.
TIME_OPERANDS = frozenset({ODRL + "dateTime"})
DURATION_OPERANDS = frozenset(ODRL + n for n in (
    "elapsedTime", "delayPeriod", "meteredTime", "timeInterval"))
NUMBER_OPERANDS = frozenset(ODRL + n for n in (
    "count", "payAmount", "percentage", "absoluteSize", "relativeSize", "resolution",
    "absolutePosition", "relativePosition", "absoluteTemporalPosition",
    "relativeTemporalPosition", "relativeSpatialPosition"))

_DURATION = re.compile(
    r"(?P<sign>-)?P(?:(?P<y>\d+)Y)?(?:(?P<mo>\d+)M)?(?:(?P<d>\d+)D)?"
    r"(?:T(?:(?P<h>\d+)H)?(?:(?P<mi>\d+)M)?(?:(?P<s>\d+(?:\.\d+)?)S)?)?")
_MAX_TEXT = 256
# The lexical forms of XML Schema, so that a near miss (a space for the T, a week date) is
# refused rather than read as something the author may not have meant.
_DATETIME = re.compile(r"-?\d{4,}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:\d{2})?")
_INTEGER = re.compile(r"[+-]?\d+")
_DECIMAL = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)")
_FLOAT = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
SET_OPERATORS_LOCAL = frozenset(("isAnyOf", "isAllOf", "isNoneOf"))


class Undecidable(Exception):
    """A value that cannot be compared; the text says why, in words for the person."""


@dataclass(frozen=True, slots=True)
class Duration:
    """An xsd:duration as months and seconds: the two only compare when one of them is zero
    on both sides (a month has no fixed number of days)."""

    months: int
    seconds: Decimal

    def key(self, other: Duration) -> tuple[Decimal, Decimal]:
        if (self.months and other.seconds) or (self.seconds and other.months):
            raise Undecidable("a duration in months or years cannot be compared with one in "
                              "days or hours")
        return Decimal(self.months), self.seconds


Typed = Decimal | datetime | date | Duration | str | tuple[str, str]  # tuple: (IRI marker, iri)


def parse_duration(text: str) -> Duration:
    match = _DURATION.fullmatch(text) if len(text) <= 64 else None
    if not match or text in ("P", "-P") or text.endswith("T"):
        raise Undecidable(f"{text!r} is not an xsd:duration (P30D, PT12H, P1Y, ...)")
    parts = {k: v for k, v in match.groupdict().items() if k != "sign"}
    months = int(parts["y"] or 0) * 12 + int(parts["mo"] or 0)
    seconds = (int(parts["d"] or 0) * 86400 + int(parts["h"] or 0) * 3600
               + int(parts["mi"] or 0) * 60 + Decimal(parts["s"] or 0))
    if match.group("sign"):
        raise Undecidable(f"{text!r} is a negative duration")
    return Duration(months, seconds)


def parse_datetime(text: str) -> datetime:
    if not _DATETIME.fullmatch(text.strip()):
        raise Undecidable(f"{text!r} is not an xsd:dateTime (2025-01-01T00:00:00Z)")
    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise Undecidable(f"{text!r} is not a date and time") from None
    if value.tzinfo is None or value.utcoffset() is None:
        raise Undecidable(f"{text!r} has no time zone, so the moment it names is not known "
                          f"(add Z or an offset such as +01:00)")
    return value


def parse_number(text: str, kind: str = XSD + "decimal") -> Decimal:
    pattern = _FLOAT if kind in (XSD + "float", XSD + "double") else \
        _INTEGER if kind not in (XSD + "decimal",) and kind in NUMBER_TYPES else _DECIMAL
    if not pattern.fullmatch(text.strip()):
        raise Undecidable(f"{text!r} is not a number of type {_name(kind)}")
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        raise Undecidable(f"{text!r} is not a number") from None
    if not value.is_finite():
        raise Undecidable(f"{text!r} is not a finite number")
    return value


def typed(value: Value, left: str) -> Typed:
    """The value as the left operand ``left`` measures it (its datatype first, then what the
    left operand is); raises Undecidable when it cannot be read as that."""
    found = _typed_cached(value, left)
    if isinstance(found, _Refusal):
        raise Undecidable(found.why)  # a new exception each time: a cached one keeps frames
    return found


@dataclass(frozen=True, slots=True)
class _Refusal:
    why: str


@lru_cache(maxsize=4096)
def _typed_cached(value: Value, left: str) -> Typed | _Refusal:
    # Terms are judged again for every request: their values are read once. The results are
    # immutable (Decimal, datetime, Duration, str, tuple), so sharing them is safe.
    try:
        return _typed(value, left)
    except Undecidable as exc:
        return _Refusal(str(exc))


def _typed(value: Value, left: str) -> Typed:
    if len(value.text) > _MAX_TEXT and not value.is_iri:
        raise Undecidable("a value is too long to compare")
    if value.is_iri:
        if left in TIME_OPERANDS | DURATION_OPERANDS | NUMBER_OPERANDS:
            raise Undecidable(f"{_name(left)} is compared with an IRI")
        return ("@id", value.text)
    kind = value.kind
    if kind in DATETIME_TYPES or (left in TIME_OPERANDS and kind in TEXT_TYPES):
        return parse_datetime(value.text)
    if kind == XSD + "date":
        raise Undecidable(f"{value.text!r} is a date without a time, so the moment it "
                          "names is not known")
    if kind in DURATION_TYPES or (left in DURATION_OPERANDS and kind in TEXT_TYPES):
        return parse_duration(value.text.strip())
    if kind in NUMBER_TYPES or (left in NUMBER_OPERANDS and kind in TEXT_TYPES):
        return parse_number(value.text, kind if kind in NUMBER_TYPES else XSD + "decimal")
    if left in TIME_OPERANDS | DURATION_OPERANDS | NUMBER_OPERANDS:
        raise Undecidable(f"{_name(left)} cannot be compared with a value of type "
                          f"{_name(kind)}")
    if kind in TEXT_TYPES:
        return value.text
    raise Undecidable(f"values of type {_name(kind)} cannot be compared")


def _name(iri: str) -> str:
    return iri.rsplit("#", 1)[-1].rsplit("/", 1)[-1]


def _ordered(left: Typed, right: Typed) -> tuple[object, object]:
    """Two values of one ordered type, ready for <, or Undecidable."""
    if isinstance(left, Duration) and isinstance(right, Duration):
        return left.key(right), right.key(left)
    if isinstance(left, datetime) and isinstance(right, datetime):
        return left, right
    if isinstance(left, Decimal) and isinstance(right, Decimal):
        return left, right
    raise Undecidable("the values are of different kinds (a time, a number, a duration, "
                      "an IRI or text) and cannot be compared")


def _equal(left: Typed, right: Typed) -> bool:
    if isinstance(left, tuple) != isinstance(right, tuple) or \
            isinstance(left, str) != isinstance(right, str):
        raise Undecidable("an IRI or text is compared with a value of another kind")
    if isinstance(left, str | tuple):
        return left == right
    a, b = _ordered(left, right)
    return a == b


def compare(left: Typed, operator: str, right: Typed) -> bool:
    """eq, neq, lt, lteq, gt, gteq between two single values."""
    name = _name(operator)
    if name == "eq":
        return _equal(left, right)
    if name == "neq":
        return not _equal(left, right)
    a, b = _ordered(left, right)
    match name:
        case "lt":
            return a < b  # type: ignore[operator]
        case "lteq":
            return a <= b  # type: ignore[operator]
        case "gt":
            return a > b  # type: ignore[operator]
        case "gteq":
            return a >= b  # type: ignore[operator]
    raise Undecidable(f"the operator {name} does not compare single values")


Placement = Callable[[str, str], bool | None]  # is ``a`` the same as or within ``b``?


def any_of(results: Sequence[bool | None]) -> bool | None:
    """Three-valued OR: True if one is True, None if none is but one cannot be decided."""
    if any(r is True for r in results):
        return True
    return None if any(r is None for r in results) else False


def all_of(results: Sequence[bool | None]) -> bool | None:
    """Three-valued AND."""
    if any(r is False for r in results):
        return False
    return None if any(r is None for r in results) else True


def exactly_one(results: Sequence[bool | None]) -> bool | None:
    trues = sum(r is True for r in results)
    if trues > 1:
        return False
    if any(r is None for r in results):
        return None
    return trues == 1

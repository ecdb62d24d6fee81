"""Transactions from files: CSV and JSON rows to validated :class:`Transaction` records.

Pure: bytes in, records and row errors out. Bank exports come in many shapes, so the encoding,
the column separator, the date format and the decimal mark are read from the whole file (or given
by the person), and the choice is reported. A record that does not parse cleanly is a bad row,
reported by the line it starts on; it never takes its neighbours with it, and the good rows still
land. Identity is derived from content, so importing the same file twice gives the same ids and
adds nothing twice.
"""

from __future__ import annotations

import codecs
import hashlib
import json
import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from vrm_agent.errors import VrmAgentError

REQUIRED = ("date", "vendor", "description", "amount", "currency")
OPTIONAL = ("category", "order_id", "channel")
FIELDS = REQUIRED + OPTIONAL
CHANNELS = ("online", "in-store", "phone", "app", "mail", "other")
_CURRENCY = re.compile(r"^[A-Z]{3}$")

# Bounds on what a file from elsewhere may make the agent do.
MAX_FILE_BYTES = 100 * 1024 * 1024
MAX_FIELD_CHARS = 4096
MAX_VENDOR_NAME_CHARS = 200
MAX_AMOUNT_CHARS = 40
# A quoted field running over more lines than this is a stray quote, not a note; the bound also
# keeps resynchronising after many stray quotes linear in the file's size.
MAX_QUOTED_LINES = 64
HEADER_SEARCH_LINES = 30  # some banks put the account's details above the header

DELIMITERS = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}
DELIMITER_NAMES = {"comma": ",", "semicolon": ";", "tab": "\t", "pipe": "|", ",": ",", ";": ";",
                   "\t": "\t", "\\t": "\t", "|": "|"}
# Tried in this order; where two read every date alike, the first is taken.
DATE_FORMATS = ("%Y-%m-%d", "%d.%m.%Y", "%d/%m/%Y", "%m/%d/%Y", "%Y/%m/%d", "%d-%m-%Y",
                "%m-%d-%Y")
_TIME_OF_DAY = r"(?:[ T]\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?"


class ImportFileError(VrmAgentError):
    """The file cannot be read as transactions at all (as opposed to single bad rows)."""


@dataclass(frozen=True)
class Transaction:
    id: str
    date: date
    vendor: str
    description: str
    amount: Decimal
    currency: str
    category: str | None = None
    order_id: str | None = None
    channel: str | None = None

    @property
    def vendor_id(self) -> str:
        """The id this vendor gets when the ledger holds no vendor of the same name."""
        return vendor_id_for(self.vendor)

    @property
    def vendor_key(self) -> str:
        return vendor_key(self.vendor)


@dataclass(frozen=True)
class RowError:
    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"

    def to_json(self) -> dict[str, Any]:
        return {"line": self.line, "message": self.message}


@dataclass(frozen=True)
class FormatChoice:
    """What the person said about the file; None: read it from the file."""

    encoding: str | None = None
    delimiter: str | None = None
    date_format: str | None = None
    decimal_comma: bool | None = None


@dataclass(frozen=True)
class FileFormat:
    """How the file was read, and which of it was read from the file rather than given."""

    date_format: str
    decimal_comma: bool
    encoding: str | None = None  # None: rows given in memory
    delimiter: str | None = None  # None: JSON
    header_line: int | None = None
    detected: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"encoding": self.encoding,
                "delimiter": DELIMITERS.get(self.delimiter or "", self.delimiter),
                "header_line": self.header_line, "date_format": self.date_format,
                "decimal_comma": self.decimal_comma, "detected": list(self.detected)}

    def describe(self) -> str:
        parts = []
        if self.encoding:
            parts.append(self.encoding)
        if self.delimiter:
            parts.append(f"{DELIMITERS[self.delimiter]}-separated")
        if self.header_line and self.header_line > 1:
            parts.append(f"header on line {self.header_line}")
        parts.append(f"dates {readable_date_format(self.date_format)}")
        parts.append("decimal comma" if self.decimal_comma else "decimal point")
        given = "; detected: " + ", ".join(self.detected) if self.detected else ""
        return "read as " + ", ".join(parts) + given


@dataclass
class ParsedFile:
    transactions: list[Transaction] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    format: FileFormat | None = None

    @property
    def rows(self) -> int:
        return len(self.transactions) + len(self.errors)


# --- vendor identity ---------------------------------------------------------------------------

_ASCII_FOLDS = str.maketrans({"ł": "l", "ø": "o", "đ": "d", "ð": "d", "þ": "th", "æ": "ae",
                              "œ": "oe", "\u0131": "i", "ß": "ss"})


def vendor_key(name: str) -> str:
    """A vendor name as compared: NFC, case-folded, runs of white space as one space."""
    folded = unicodedata.normalize("NFC", unicodedata.normalize("NFC", name).casefold())
    return " ".join(folded.split())


def _ascii_slug(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.translate(_ASCII_FOLDS))
    ascii_only = "".join(char for char in decomposed if char.isascii())
    return re.sub(r"[^a-z0-9]+", "-", ascii_only.lower()).strip("-")


# Ids no vendor is given: `general` names the loyalty statement for every vendor
# (paychoice.GENERAL_STATEMENT), and `vrm/loyalty/<vendor-id>` holds each vendor's own.
RESERVED_VENDOR_IDS = frozenset({"general"})


def vendor_id_for(name: str) -> str:
    """A stable, URL-safe id for a vendor name that no other name gets.

    A plain name (letters a-z, digits, single spaces once case-folded) keeps its readable slug:
    'Bolt Rides' -> 'bolt-rides'. Any other name ('ACME Corp.', 'Bäckerei Müller', 'Żabka')
    gets its ASCII slug, '--' and a hash of the normalised name, because the slug alone would
    merge different vendors. Plain slugs never hold '--', so the two kinds never meet.
    """
    key = vendor_key(name)
    slug = _ascii_slug(key)[:48].strip("-")
    if slug and slug.replace("-", " ") == key and slug not in RESERVED_VENDOR_IDS:
        return slug
    return hashed_vendor_id(name)


def hashed_vendor_id(name: str) -> str:
    """The slug, '--' and a hash of the normalised name: never another name's id."""
    key = vendor_key(name)
    slug = _ascii_slug(key)[:48].strip("-")
    return f"{slug or 'vendor'}--{hashlib.sha256(key.encode()).hexdigest()[:10]}"


def vendor_slug(name: str) -> str:
    """A readable ASCII slug ('ACME Corp.' -> 'acme-corp'); different names may share one, so
    vendor ids come from :func:`vendor_id_for`."""
    slug = _ascii_slug(name)
    return slug or "vendor-" + hashlib.sha256(name.encode()).hexdigest()[:8]


# --- values ------------------------------------------------------------------------------------

def readable_date_format(pattern: str) -> str:
    """'%d.%m.%Y' -> 'DD.MM.YYYY', for messages."""
    for directive, shown in (("%Y", "YYYY"), ("%y", "YY"), ("%m", "MM"), ("%d", "DD")):
        pattern = pattern.replace(directive, shown)
    return pattern


def _date_regex(pattern: str) -> re.Pattern[str]:
    parts = {"%Y": r"(?P<Y>\d{4})", "%m": r"(?P<m>\d{1,2})", "%d": r"(?P<d>\d{1,2})"}
    regex = "".join(parts.get(token, re.escape(token))
                    for token in re.findall(r"%[Ymd]|.", pattern))
    return re.compile(regex + _TIME_OF_DAY)


_DATE_REGEXES = {pattern: _date_regex(pattern) for pattern in DATE_FORMATS}


def parse_date(text: str, pattern: str) -> date | None:
    """The date in text, read with a strftime pattern; None when it is not one."""
    regex = _DATE_REGEXES.get(pattern)
    if regex is None:
        try:
            return datetime.strptime(text, pattern).date()
        except ValueError:
            return None
    match = regex.fullmatch(text)
    if match is None:
        return None
    try:
        return date(int(match["Y"]), int(match["m"]), int(match["d"]))
    except ValueError:
        return None


_GROUPED = {
    False: re.compile(r"(?P<int>\d{1,3}(?P<sep>[,' \u00a0\u202f])\d{3}(?:(?P=sep)\d{3})*|\d+)"
                      r"(?:\.(?P<frac>\d+))?"),
    True: re.compile(r"(?P<int>\d{1,3}(?P<sep>[.' \u00a0\u202f])\d{3}(?:(?P=sep)\d{3})*|\d+)"
                     r"(?:,(?P<frac>\d+))?"),
}


def parse_amount(text: str, decimal_comma: bool) -> Decimal | None:
    """'-1.234,56' (decimal comma), '(12.50)', '12.50-', '1,234.56' -> a Decimal; None when the
    text is not an amount written with that decimal mark."""
    text = text.strip()
    if not text or len(text) > MAX_AMOUNT_CHARS:
        return None
    negative = False
    if text.startswith("(") and text.endswith(")"):
        negative, text = True, text[1:-1].strip()
    if text[:1] in ("-", "+", "\u2212"):
        negative, text = negative != (text[0] != "+"), text[1:].strip()
    elif text.endswith("-"):  # some banks write the sign after the amount
        negative, text = not negative, text[:-1].strip()
    match = _GROUPED[decimal_comma].fullmatch(text)
    if match is None:
        return None
    digits = re.sub(r"\D", "", match["int"])
    value = Decimal(f"{digits}.{match['frac']}" if match["frac"] else digits)
    return -value if negative else value


# --- detection from the whole file -------------------------------------------------------------

def detect_date_format(values: Iterable[str]) -> str:
    """The one known format that reads the most dates; refused when two read them differently."""
    distinct = sorted({v for v in values if v})
    if not distinct:
        return DATE_FORMATS[0]
    read = {pattern: {v: parse_date(v, pattern) for v in distinct} for pattern in DATE_FORMATS}
    counts = {p: sum(d is not None for d in dates.values()) for p, dates in read.items()}
    best = max(counts.values())
    if best == 0:
        raise ImportFileError(
            f"dates such as {distinct[0]!r} are in no format known here; give --date-format "
            "with a strftime pattern, such as --date-format %d.%m.%Y")
    leaders = [p for p in DATE_FORMATS if counts[p] == best]
    for pattern in leaders[1:]:
        differing = next((v for v in distinct if read[pattern][v] != read[leaders[0]][v]), None)
        if differing is not None:
            raise ImportFileError(
                f"every date could be {readable_date_format(leaders[0])} or "
                f"{readable_date_format(pattern)} ({differing!r}); say which with "
                f"--date-format {leaders[0]} or --date-format {pattern}")
    return leaders[0]


def detect_decimal_comma(values: Iterable[str]) -> bool:
    """Whether amounts use a decimal comma: by the amounts only one reading accepts."""
    comma = point = 0
    ambiguous: str | None = None
    for value in {v for v in values if v}:
        as_point, as_comma = parse_amount(value, False), parse_amount(value, True)
        if as_point is not None and as_comma is None:
            point += 1
        elif as_comma is not None and as_point is None:
            comma += 1
        elif as_point is not None and as_point != as_comma and ambiguous is None:
            ambiguous = value
    if comma == point and (comma or ambiguous is not None):
        example = f" ({ambiguous!r} could be either)" if ambiguous else ""
        raise ImportFileError(
            f"cannot tell whether amounts use a decimal comma or a decimal point{example}; "
            "say which with --decimal-comma or --decimal-point")
    return comma > point


# --- CSV records -------------------------------------------------------------------------------

_LINE_END = re.compile(r"\r\n|\r|\n")


def split_lines(text: str) -> list[str]:
    lines = _LINE_END.split(text)
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def split_record(
    lines: Sequence[str], start: int, delimiter: str
) -> tuple[list[str], int, str | None]:
    """The fields of the record that starts at ``lines[start]``, the index of the line after it,
    and what is wrong with it (None when it parsed cleanly). A quoted field may run across line
    ends; quotes inside it are doubled."""
    line = lines[start]
    if '"' not in line:  # most rows: no quoting at all
        return line.split(delimiter), start + 1, None
    fields: list[str] = []
    index, pos = start, 0
    while True:
        opening = pos
        while opening < len(line) and line[opening] == " ":
            opening += 1
        if opening >= len(line) or line[opening] != '"':
            end = line.find(delimiter, pos)
            if end == -1:
                fields.append(line[pos:])
                return fields, index + 1, None
            fields.append(line[pos:end])
            pos = end + 1
            continue
        pos, parts = opening + 1, []
        while True:
            quote = line.find('"', pos)
            if quote == -1:
                parts.append(line[pos:])
                index += 1
                if index >= len(lines):
                    return fields, index, 'a quote (") opened on this line is never closed'
                if index - start >= MAX_QUOTED_LINES:
                    return fields, index, (f'a quote (") opened on this line is not closed '
                                           f"within {MAX_QUOTED_LINES} lines")
                parts.append("\n")
                line, pos = lines[index], 0
            elif line.startswith('"', quote + 1):
                parts.append(line[pos:quote + 1])
                pos = quote + 2
            else:
                parts.append(line[pos:quote])
                pos = quote + 1
                break
        fields.append("".join(parts))
        after = pos
        while after < len(line) and line[after] == " ":
            after += 1
        if after >= len(line):
            return fields, index + 1, None
        if line[after] != delimiter:
            return fields, index + 1, (f"text after the closing quote of column {len(fields)} "
                                       '(a stray quote (")?)')
        pos = after + 1


def _row_alone(
    line: str, delimiter: str, width: int, is_row: Callable[[list[str]], bool]
) -> bool:
    # One line only, and a row by its content too (a date where the date goes): the lines of a
    # legitimate note may hold separators, but are rarely a whole dated row by themselves.
    fields, _, problem = split_record([line], 0, delimiter)
    return problem is None and len(fields) == width and is_row(fields)


def csv_records(
    lines: Sequence[str], first: int, delimiter: str, width: int,
    is_row: Callable[[list[str]], bool] = lambda fields: True,
) -> Iterator[tuple[int, list[str] | None, str | None]]:
    """(line number, fields, problem) for each record from ``lines[first]`` on.

    A record spanning several lines must close cleanly, have ``width`` fields and swallow no line
    that is a row on its own (``width`` fields that ``is_row`` accepts); otherwise it is reported
    at the line it starts on, and reading starts again at the next line, so a stray quote costs
    its own row and no other. What this cannot tell from a note across lines: a stray quote that
    closes exactly where a row of the right width would end, having swallowed only rows that
    themselves span lines.
    """
    index = first
    while index < len(lines):
        if not lines[index].strip(delimiter + " "):
            index += 1  # blank lines, and rows of separators only, hold nothing
            continue
        fields, after, problem = split_record(lines, index, delimiter)
        spans = after - index > 1
        if problem is not None and spans and problem.startswith("text after"):
            problem = (f'a quote (") opened on this line is closed on line {after} where no '
                       "field ends (a stray quote?)")
        if problem is None and len(fields) != width:
            problem = (f'a quote (") opened on this line runs over {after - index} lines and '
                       f"leaves {len(fields)} columns where the header has {width}"
                       if spans else
                       f"{len(fields)} columns where the header has {width} (a separator "
                       "inside an unquoted field?)")
        if problem is None and spans:
            swallowed = next((k for k in range(index + 1, after)
                              if _row_alone(lines[k], delimiter, width, is_row)), None)
            if swallowed is not None:
                problem = (f'a quote (") opened on this line runs on into line {swallowed + 1}, '
                           "which is a row of its own")
        yield index + 1, None if problem else fields, problem
        index = index + 1 if problem and spans else after


def _header_name(name: str) -> str:
    return " ".join(name.split()).casefold()


def find_header(
    lines: Sequence[str], wanted: Mapping[str, str], delimiter: str | None
) -> tuple[str, int, list[str]]:
    """The separator, the header's line index and its columns: where most wanted columns are."""
    wanted_names = {_header_name(column) for column in wanted.values()}
    # For each separator, its best header line: most wanted columns, then most rows below as
    # wide as it, then the widest; the earliest line of equals.
    best: dict[str, tuple[tuple[int, int, int], int, list[str]]] = {}
    for candidate in [delimiter] if delimiter else list(DELIMITERS):
        for index in range(min(len(lines), HEADER_SEARCH_LINES)):
            if not lines[index].strip():
                continue
            columns, after, _ = split_record(lines, index, candidate)
            known = len({_header_name(c) for c in columns} & wanted_names)
            alike = sum(len(split_record(lines, k, candidate)[0]) == len(columns)
                        for k in range(after, min(len(lines), after + 20)))
            score = (known, alike, len(columns))
            if candidate not in best or score > best[candidate][0]:
                best[candidate] = (score, index, columns)
    if not best:
        raise ImportFileError("the file is empty")
    ranked = sorted(best.items(), key=lambda item: item[1][0], reverse=True)
    (first, (score, index, columns)), *others = ranked
    if others and others[0][1][0] == score and len(columns) > 1:
        raise ImportFileError(
            f"cannot tell whether columns are separated by {DELIMITERS[first]} or "
            f"{DELIMITERS[others[0][0]]}; say which with --delimiter")
    return first, index, columns


def _csv_rows(
    text: str, mapping: Mapping[str, str], delimiter: str | None, date_format: str | None = None
) -> tuple[list[tuple[int, dict[str, Any] | str]], str, int]:
    lines = split_lines(text)
    wanted = {name: mapping.get(name, name) for name in FIELDS}
    delimiter, header_index, columns = find_header(lines, wanted, delimiter)
    positions: dict[str, int] = {}
    for position, column in enumerate(columns):
        name = _header_name(column)
        if name in positions:
            raise ImportFileError(f"the header names column {column.strip()!r} twice (line "
                                  f"{header_index + 1}); rename one, or map with --map")
        positions[name] = position
    absent = [f"{col!r}" for name, col in wanted.items()
              if name in REQUIRED and _header_name(col) not in positions]
    if absent:
        found = ", ".join(repr(c.strip()) for c in columns[:12])
        raise ImportFileError(
            f"the header lacks column(s) {', '.join(absent)}; found {found} "
            f"({DELIMITERS[delimiter]}-separated); name yours with --map "
            "date=COLUMN,vendor=COLUMN,... or give --delimiter")
    where = {name: positions.get(_header_name(col)) for name, col in wanted.items()}
    date_at = where["date"]
    date_formats = (date_format,) if date_format else DATE_FORMATS

    def dated(fields: list[str]) -> bool:
        return date_at is not None and any(
            parse_date(fields[date_at].strip(), pattern) for pattern in date_formats)

    rows: list[tuple[int, dict[str, Any] | str]] = []
    for line, fields, problem in csv_records(lines, header_index + 1, delimiter, len(columns),
                                             dated):
        if fields is None:
            rows.append((line, problem or "not a row"))
        else:
            rows.append((line, {name: None if at is None else fields[at]
                                for name, at in where.items()}))
    return rows, delimiter, header_index + 1


def _json_value(value: Any) -> Any:
    if isinstance(value, Decimal | int) and not isinstance(value, bool):
        return format(Decimal(value), "f")  # never an exponent: '1E+2' is no amount text
    return value


def _json_rows(
    text: str, mapping: Mapping[str, str]
) -> list[tuple[int, dict[str, Any] | str]]:
    try:
        payload = json.loads(text, parse_float=Decimal, parse_constant=str)
    except (ValueError, RecursionError) as exc:
        raise ImportFileError(f"not valid JSON: {exc}") from exc
    if isinstance(payload, dict):
        payload = payload.get("transactions")
    if not isinstance(payload, list):
        raise ImportFileError("JSON must be a list of transactions or {\"transactions\": [...]}")
    rows: list[tuple[int, dict[str, Any] | str]] = []
    for index, item in enumerate(payload, start=1):
        if not isinstance(item, dict):
            rows.append((index, "not an object"))
            continue
        rows.append((index, {name: _json_value(item.get(mapping.get(name, name)))
                             for name in FIELDS}))
    return rows


# --- rows to transactions ----------------------------------------------------------------------

def _content_key(fields: Mapping[str, str]) -> str:
    return "\x1f".join(fields.get(name) or "" for name in FIELDS)


def transaction_id(key: str, occurrence: int) -> str:
    """Same content and same occurrence in the file: same id, on every import."""
    return hashlib.sha256(f"{key}\x1e{occurrence}".encode()).hexdigest()[:24]


def _clean(fields: Mapping[str, Any]) -> dict[str, str]:
    cleaned = {}
    for name, value in fields.items():
        if value is not None:
            text = (value if isinstance(value, str) else str(value)).strip()
            if text:
                cleaned[name] = text
    return cleaned


def _amount_text(decimal_comma: bool) -> str:
    return "a decimal comma" if decimal_comma else "a decimal point"


def _read_row(
    fields: Mapping[str, str], file_format: FileFormat
) -> tuple[dict[str, Any], str]:
    """Validate one row's fields (ValueError names the field that is wrong): the transaction's
    values but its id, and its content key."""
    missing = [name for name in REQUIRED if not fields.get(name)]
    if missing:
        raise ValueError(f"missing {', '.join(missing)}")
    too_long = [name for name, value in fields.items() if len(value) > MAX_FIELD_CHARS]
    if too_long:
        raise ValueError(f"{too_long[0]} is longer than {MAX_FIELD_CHARS} characters")
    vendor = unicodedata.normalize("NFC", " ".join(fields["vendor"].split()))
    if len(vendor) > MAX_VENDOR_NAME_CHARS:
        raise ValueError(f"vendor name is longer than {MAX_VENDOR_NAME_CHARS} characters")
    when = parse_date(fields["date"], file_format.date_format)
    if when is None:
        raise ValueError(f"date {fields['date']!r} is not "
                         f"{readable_date_format(file_format.date_format)}")
    amount = parse_amount(fields["amount"], file_format.decimal_comma)
    if amount is None:
        raise ValueError(f"amount {fields['amount']!r} is not a number with "
                         f"{_amount_text(file_format.decimal_comma)}")
    currency = fields["currency"].upper()
    if not _CURRENCY.match(currency):
        raise ValueError(f"currency {fields['currency']!r} is not an ISO 4217 code")
    channel = fields.get("channel")
    if channel is not None:
        channel = channel.lower()
        if channel not in CHANNELS:
            raise ValueError(f"channel {fields['channel']!r} is not one of {', '.join(CHANNELS)}")
    # The key holds the values as read, so one purchase written another way (12,50 or 12.50,
    # 05.01.2024 or 2024-01-05) is the same purchase; ISO files give the keys they always gave.
    key = _content_key({**fields, "date": when.isoformat(), "currency": currency,
                        "amount": str(amount.normalize())})
    return {"date": when, "vendor": vendor, "description": fields["description"],
            "amount": amount, "currency": currency, "category": fields.get("category"),
            "order_id": fields.get("order_id"), "channel": channel}, key


def to_transaction(
    fields: Mapping[str, str], occurrence: int, file_format: FileFormat | None = None
) -> Transaction:
    """One row's fields as a transaction, the ``occurrence``-th of its content in its file."""
    values, key = _read_row(fields, file_format or FileFormat(DATE_FORMATS[0], False))
    return Transaction(id=transaction_id(key, occurrence), **values)


def _format_for(
    rows: Sequence[tuple[int, dict[str, Any] | str]], choice: FormatChoice,
    encoding: str | None = None, delimiter: str | None = None, header_line: int | None = None,
) -> FileFormat:
    detected = [] if encoding is None or choice.encoding else ["encoding"]
    if delimiter is not None and not choice.delimiter:
        detected.append("delimiter")
    cleaned = [raw for _, raw in rows if not isinstance(raw, str)]
    date_format = choice.date_format
    if date_format is None:
        date_format = detect_date_format(f.get("date", "") for f in cleaned)
        detected.append("date format")
    decimal_comma = choice.decimal_comma
    if decimal_comma is None:
        decimal_comma = detect_decimal_comma(f.get("amount", "") for f in cleaned)
        detected.append("decimal mark")
    return FileFormat(date_format, decimal_comma, encoding, delimiter, header_line,
                      tuple(detected))


Rows = list[tuple[int, dict[str, Any] | str]]


def _cleaned(rows: Iterable[tuple[int, Mapping[str, Any] | str]]) -> Rows:
    return [(line, raw if isinstance(raw, str) else _clean(raw)) for line, raw in rows]


def parse_rows(
    rows: Iterable[tuple[int, Mapping[str, Any] | str]],
    file_format: FileFormat | None = None,
) -> ParsedFile:
    """(line number, raw fields or what is wrong) pairs to transactions and row errors. Without
    a format, the date format and decimal mark are read from the rows themselves."""
    cleaned = _cleaned(rows)
    return _parse_cleaned(cleaned, file_format or _format_for(cleaned, FormatChoice()))


def _parse_cleaned(rows: Rows, file_format: FileFormat) -> ParsedFile:
    parsed = ParsedFile(format=file_format)
    seen: Counter[str] = Counter()
    for line, fields in rows:
        if isinstance(fields, str):
            parsed.errors.append(RowError(line, fields))
            continue
        if not fields:
            continue  # an empty record holds nothing to lose
        try:
            values, key = _read_row(fields, file_format)
        except ValueError as exc:
            parsed.errors.append(RowError(line, str(exc)))
            continue
        seen[key] += 1
        parsed.transactions.append(Transaction(id=transaction_id(key, seen[key]), **values))
    return parsed


def read_mapping(spec: str | Path | None) -> dict[str, str]:
    """A column mapping: our field -> the file's column. From a JSON file or 'a=b,c=d'."""
    if spec is None:
        return {}
    text = str(spec)
    if Path(text).is_file():
        try:
            mapping = json.loads(Path(text).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ImportFileError(f"cannot read the column mapping {text}: {exc}") from exc
    else:
        mapping = {}
        for pair in text.split(","):
            ours, sep, theirs = pair.partition("=")
            if not sep:
                raise ImportFileError(f"column mapping {pair!r} is not FIELD=COLUMN")
            mapping[ours.strip()] = theirs.strip()
    if not isinstance(mapping, dict) or not all(isinstance(v, str) for v in mapping.values()):
        raise ImportFileError("a column mapping maps field names to column names")
    unknown = sorted(set(mapping) - set(FIELDS))
    if unknown:
        raise ImportFileError(f"unknown field(s) in the column mapping: {', '.join(unknown)}")
    return mapping


def decode(raw: bytes, encoding: str | None = None) -> tuple[str, str]:
    """The file's text and the encoding it was read in: the one given, or by its byte order
    mark, else UTF-8, else Windows-1252 (which European banks use), else Latin-1."""
    if encoding:
        try:
            codec = codecs.lookup(encoding).name
        except LookupError:
            raise ImportFileError(f"unknown encoding {encoding!r}; try --encoding utf-8, "
                                  "cp1252, latin-1 or utf-16") from None
        try:
            return raw.decode(codec).removeprefix("\ufeff"), encoding
        except UnicodeDecodeError as exc:
            raise ImportFileError(f"the file is not {encoding} (byte {exc.start} cannot be "
                                  "read); try another --encoding, or leave it out") from None
    for bom, codec, name in ((codecs.BOM_UTF8, "utf-8-sig", "utf-8 with BOM"),
                             (codecs.BOM_UTF16_LE, "utf-16", "utf-16"),
                             (codecs.BOM_UTF16_BE, "utf-16", "utf-16")):
        if raw.startswith(bom):
            try:
                return raw.decode(codec), name
            except UnicodeDecodeError as exc:
                raise ImportFileError(f"the file starts as {name} but byte {exc.start} is not "
                                      "in it; give --encoding") from None
    if b"\x00" in raw[:4096]:
        raise ImportFileError("the file holds NUL bytes: UTF-16 without a byte order mark, or "
                              "not text; if it is text, give --encoding utf-16-le or utf-16-be")
    for codec, name in (("utf-8", "utf-8"), ("cp1252", "cp1252")):
        try:
            return raw.decode(codec), name
        except UnicodeDecodeError:
            continue
    return raw.decode("latin-1"), "latin-1"


def parse_bytes(
    raw: bytes, kind: str, mapping: Mapping[str, str] | None = None,
    choice: FormatChoice | None = None,
) -> ParsedFile:
    """A file's bytes ('csv' or 'json') to transactions, the format read or given included."""
    choice = choice or FormatChoice()
    mapping = mapping or {}
    pattern = choice.date_format
    if pattern is not None and not ("%d" in pattern and re.search("%[Yy]", pattern)
                                    and re.search("%[mbB]", pattern)):
        raise ImportFileError(f"--date-format {pattern!r} needs a day (%d), a month (%m) and "
                              "a year (%Y), such as %d.%m.%Y")
    text, encoding = decode(raw, choice.encoding)
    if kind == "json":
        rows = _cleaned(_json_rows(text, mapping))
        return _parse_cleaned(rows, _format_for(rows, choice, encoding))
    delimiter = choice.delimiter
    if delimiter is not None and delimiter not in DELIMITERS:
        delimiter = DELIMITER_NAMES.get(delimiter.lower())
        if delimiter is None:
            raise ImportFileError(f"--delimiter {choice.delimiter!r}: give comma, semicolon, "
                                  "tab or pipe")
    raw_rows, delimiter, header_line = _csv_rows(text, mapping, delimiter, pattern)
    rows = _cleaned(raw_rows)
    return _parse_cleaned(rows, _format_for(rows, choice, encoding, delimiter, header_line))


def parse_file(
    path: Path, mapping: Mapping[str, str] | None = None, choice: FormatChoice | None = None
) -> ParsedFile:
    """Read a CSV or JSON file (by extension). Row numbers: CSV lines, or JSON item positions."""
    suffix = path.suffix.lower()
    if suffix not in (".json", ".csv", ".txt", ".tsv", ""):
        raise ImportFileError(f"{path.name}: import reads .csv or .json files")
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            raise ImportFileError(f"{path.name} is larger than {MAX_FILE_BYTES // 2**20} MB; "
                                  "split it and import the parts")
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ImportFileError(f"no such file: {path}") from None
    except OSError as exc:
        raise ImportFileError(f"cannot read {path}: {exc.strerror or exc}") from exc
    return parse_bytes(raw, "json" if suffix == ".json" else "csv", mapping, choice)

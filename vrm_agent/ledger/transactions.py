"""Transactions from files: CSV and JSON rows to validated :class:`Transaction` records.

Pure: text in, records and row errors out. A bad row is reported with its line number and the
good rows still land. Identity is derived from content, so importing the same file twice gives
the same ids and adds nothing twice.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from vrm_agent.errors import VrmAgentError

REQUIRED = ("date", "vendor", "description", "amount", "currency")
OPTIONAL = ("category", "order_id", "channel")
FIELDS = REQUIRED + OPTIONAL
CHANNELS = ("online", "in-store", "phone", "app", "mail", "other")
_CURRENCY = re.compile(r"^[A-Z]{3}$")


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
        return vendor_slug(self.vendor)


@dataclass(frozen=True)
class RowError:
    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


@dataclass
class ParsedFile:
    transactions: list[Transaction] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)


def vendor_slug(name: str) -> str:
    """A stable, URL-safe id for a vendor name: 'ACME Corp.' -> 'acme-corp'."""
    slug = re.sub(r"[^a-z0-9]+", "-", name.casefold()).strip("-")
    return slug or "vendor-" + hashlib.sha256(name.encode()).hexdigest()[:8]


def _content_key(fields: Mapping[str, str]) -> str:
    return "\x1f".join(fields.get(name) or "" for name in FIELDS)


def transaction_id(key: str, occurrence: int) -> str:
    """Same content and same occurrence in the file: same id, on every import."""
    return hashlib.sha256(f"{key}\x1e{occurrence}".encode()).hexdigest()[:24]


def _clean(fields: Mapping[str, Any]) -> dict[str, str]:
    return {k: str(v).strip() for k, v in fields.items() if v is not None and str(v).strip()}


def to_transaction(fields: Mapping[str, str], occurrence: int) -> Transaction:
    """Validate one row's fields; ValueError names the field that is wrong."""
    missing = [name for name in REQUIRED if not fields.get(name)]
    if missing:
        raise ValueError(f"missing {', '.join(missing)}")
    try:
        when = date.fromisoformat(fields["date"])
    except ValueError:
        raise ValueError(f"date {fields['date']!r} is not YYYY-MM-DD") from None
    try:
        amount = Decimal(fields["amount"])
    except InvalidOperation:
        raise ValueError(f"amount {fields['amount']!r} is not a number") from None
    if not amount.is_finite():
        raise ValueError(f"amount {fields['amount']!r} is not a number")
    currency = fields["currency"].upper()
    if not _CURRENCY.match(currency):
        raise ValueError(f"currency {fields['currency']!r} is not an ISO 4217 code")
    channel = fields.get("channel")
    if channel is not None:
        channel = channel.lower()
        if channel not in CHANNELS:
            raise ValueError(f"channel {fields['channel']!r} is not one of {', '.join(CHANNELS)}")
    normalised = {**fields, "currency": currency, "amount": str(amount.normalize())}
    return Transaction(
        id=transaction_id(_content_key(normalised), occurrence),
        date=when,
        vendor=fields["vendor"],
        description=fields["description"],
        amount=amount,
        currency=currency,
        category=fields.get("category"),
        order_id=fields.get("order_id"),
        channel=channel,
    )


def parse_rows(rows: Iterable[tuple[int, Mapping[str, Any]]]) -> ParsedFile:
    """(line number, raw fields) pairs to transactions and row errors."""
    parsed = ParsedFile()
    seen: Counter[str] = Counter()
    for line, raw in rows:
        fields = _clean(raw)
        key = _content_key(fields)
        seen[key] += 1
        try:
            parsed.transactions.append(to_transaction(fields, seen[key]))
        except ValueError as exc:
            parsed.errors.append(RowError(line, str(exc)))
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


def _csv_rows(text: str, mapping: Mapping[str, str]) -> Iterator[tuple[int, dict[str, Any]]]:
    reader = csv.DictReader(io.StringIO(text, newline=""))
    columns = reader.fieldnames or []
    wanted = {name: mapping.get(name, name) for name in FIELDS}
    absent = [f"{col!r}" for name, col in wanted.items() if name in REQUIRED and col not in columns]
    if absent:
        raise ImportFileError(
            f"the CSV header lacks column(s) {', '.join(absent)}; found {', '.join(columns)} "
            "(map other layouts with --map FIELD=COLUMN)"
        )
    for row in reader:
        yield reader.line_num, {name: row.get(col) for name, col in wanted.items()}


def _json_rows(text: str, mapping: Mapping[str, str]) -> Iterator[tuple[int, dict[str, Any]]]:
    try:
        payload = json.loads(text)
    except ValueError as exc:
        raise ImportFileError(f"not valid JSON: {exc}") from exc
    if isinstance(payload, dict):
        payload = payload.get("transactions")
    if not isinstance(payload, list):
        raise ImportFileError("JSON must be a list of transactions or {\"transactions\": [...]}")
    for index, item in enumerate(payload, start=1):
        if not isinstance(item, dict):
            yield index, {}
            continue
        yield index, {name: item.get(mapping.get(name, name)) for name in FIELDS}


def parse_file(path: Path, mapping: Mapping[str, str] | None = None) -> ParsedFile:
    """Read a CSV or JSON file (by extension). Row numbers: CSV lines, or JSON item positions."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise ImportFileError(f"no such file: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ImportFileError(f"cannot read {path}: {exc}") from exc
    mapping = mapping or {}
    suffix = path.suffix.lower()
    if suffix == ".json":
        return parse_rows(_json_rows(text, mapping))
    if suffix in (".csv", ".txt", ""):
        return parse_rows(_csv_rows(text, mapping))
    raise ImportFileError(f"{path.name}: import reads .csv or .json files")

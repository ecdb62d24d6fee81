"""How commands show results: aligned ``key: value`` lines for people, JSON with ``--json``."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Mapping, Sequence
from typing import Any

# Vendors write some of what is shown (reasons, considerations, names): control characters and
# bidirectional overrides would let them repaint the person's terminal or reorder what it shows.
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def printable(value: object) -> str:
    """The text of a value with every control character shown as an escape, not obeyed."""
    return _UNPRINTABLE.sub(lambda m: f"\\u{ord(m.group(0)):04x}", str(value))


def show(record: Mapping[str, Any], *, as_json: bool) -> None:
    if as_json:
        print(json.dumps(record, indent=2, default=str))
        return
    width = max((len(k) for k in record), default=0)
    for key, value in record.items():
        print(f"{printable(key) + ':':<{width + 1}} {'-' if value is None else printable(value)}")


def show_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str], *, as_json: bool) -> None:
    if as_json:
        print(json.dumps(list(rows), indent=2, default=str))
        return
    if not rows:
        print("(none)")
        return
    cells = [[("-" if row.get(c) is None else printable(row.get(c))) for c in columns]
             for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    print("  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip())
    for row in cells:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())


def info(message: str) -> None:
    """Progress for people goes to stderr, so stdout stays clean for --json."""
    print(message, file=sys.stderr, flush=True)

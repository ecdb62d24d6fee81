"""How commands show results: aligned tables and ``key: value`` records for people (rendered by
rich, imported on first output so `--help` stays fast), JSON with ``--json``.

For people: colour only on a terminal and never with NO_COLOR; on a terminal long values wrap
within the window, into a pipe or file nothing is cut or wrapped (what is grepped stays whole).
Text vendors wrote is shown with control characters escaped, never as rich markup.

For programs (``--json``): one JSON document on stdout; lists are lists, counts are numbers,
times and dates ISO 8601 strings, an absent value null. Amounts of money stay decimal strings,
so no digit is lost to floating point.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
from collections.abc import Mapping, Sequence
from datetime import date, datetime, timedelta
from decimal import Decimal
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console, RenderableType

# Vendors write some of what is shown (reasons, considerations, names): control characters and
# bidirectional overrides would let them repaint the person's terminal or reorder what it shows.
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")
ABSENT = "-"
# Into a pipe or a file a line is as long as its values: wide enough never to wrap.
UNBOUNDED_WIDTH = 1_000_000
NARROWEST_TERMINAL = 40
# More rows than this are drawn without rich (no wrapping, no colour): it needs about half a
# millisecond a row (benchmarks/cli_output.py).
RICH_ROWS = 1000
SHORT_VALUE = 32  # cells: an ISO time with its zone fits; a column this narrow is never wrapped


def printable(value: object) -> str:
    """The text of a value with every control character shown as an escape, not obeyed."""
    return _UNPRINTABLE.sub(lambda m: f"\\u{ord(m.group(0)):04x}", str(value))


def json_value(value: Any) -> Any:
    """A value in the JSON types the commands promise (see the module's docstring)."""
    if isinstance(value, Mapping):
        return {str(k): json_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = [json_value(v) for v in value]
        return sorted(items, key=str) if isinstance(value, set | frozenset) else items
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, Enum):
        return json_value(value.value)
    if isinstance(value, Decimal | Path):
        return str(value)
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def emit_json(value: Any) -> None:
    print(json.dumps(json_value(value), indent=2, ensure_ascii=False))


def colour_wanted() -> bool:
    return sys.stdout.isatty() and "NO_COLOR" not in os.environ


def _cell_text(value: object) -> str:
    """One cell: a list one item a line, absent values as a dash."""
    if value is None or value == [] or value == ():
        return ABSENT
    if isinstance(value, list | tuple | set | frozenset):
        return "\n".join(_cell_text(v) for v in value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, datetime | date):
        return value.isoformat()
    return printable(value)


def _console(colour: bool) -> Console:
    from io import StringIO

    from rich.console import Console

    width = (max(NARROWEST_TERMINAL, shutil.get_terminal_size().columns)
             if sys.stdout.isatty() else UNBOUNDED_WIDTH)
    return Console(file=StringIO(), width=width, force_terminal=colour, no_color=not colour,
                   color_system="standard" if colour else None, highlight=False, emoji=False,
                   markup=False, soft_wrap=False, legacy_windows=False)


def render(renderable: RenderableType) -> str:
    """What rich draws, as text for stdout, without the padding it leaves at line ends."""
    console = _console(colour_wanted())
    console.print(renderable)
    text = console.file.getvalue()  # type: ignore[attr-defined]
    return "\n".join(line.rstrip() for line in text.rstrip("\n").split("\n"))


def _text(value: object, style: str = "") -> Any:
    from rich.text import Text

    cell = _cell_text(value)
    return Text(cell, style="dim" if cell == ABSENT else style)


def _padded(text: str, width: int) -> str:
    from rich.cells import cell_len

    return text + " " * (width - cell_len(text))


def plain_table_text(rows: Sequence[Mapping[str, Any]], columns: Sequence[str],
                     headers: Mapping[str, str] | None = None) -> str:
    """The table as a pipe gets it: aligned by terminal cells, nothing wrapped or cut, a list
    one item a line. Drawn here rather than by rich, which takes seconds for 10,000 rows."""
    from rich.cells import cell_len

    titles = [(headers or {}).get(c, c.upper()) for c in columns]
    cells = [[_cell_text(row.get(c)).split("\n") for c in columns] for row in rows]
    widths = [max(cell_len(line) for row in [[[t] for t in titles], *cells] for line in row[i])
              for i in range(len(columns))]
    lines = ["  ".join(_padded(t, w) for t, w in zip(titles, widths, strict=True)).rstrip()]
    for row in cells:
        for depth in range(max(len(cell) for cell in row)):
            lines.append("  ".join(_padded(cell[depth] if depth < len(cell) else "", w)
                                   for cell, w in zip(row, widths, strict=True)).rstrip())
    return "\n".join(lines)


def table_text(rows: Sequence[Mapping[str, Any]], columns: Sequence[str],
               headers: Mapping[str, str] | None = None) -> str:
    """Rows as an aligned table: widths by what the terminal shows (wide CJK and emoji count
    two, combining marks none); long values wrap (URLs anywhere) on a terminal only."""
    if not sys.stdout.isatty() or len(rows) > RICH_ROWS:
        return plain_table_text(rows, columns, headers)
    from rich import box
    from rich.cells import cell_len
    from rich.table import Table

    table = Table(box=box.SIMPLE_HEAD if colour_wanted() else None, show_edge=False,
                  pad_edge=False, padding=(0, 2, 0, 0), header_style="bold", expand=False)
    cells = [[_text(row.get(c)) for c in columns] for row in rows]
    for index, column in enumerate(columns):
        title = (headers or {}).get(column, column.upper())
        widest = max([cell_len(title), *(cell_len(line) for row in cells
                                          for line in row[index].plain.split("\n"))])
        # Short values (ids, states, times) keep their line; long ones (URLs) give way.
        short = widest <= SHORT_VALUE
        table.add_column(title, overflow="fold", no_wrap=short,
                         min_width=widest if short else None)
    for row in cells:
        table.add_row(*row)
    return render(table)


def record_text(record: Mapping[str, Any]) -> str:
    """A record as ``key: value`` lines, the values aligned."""
    from rich.table import Table

    grid = Table.grid(padding=(0, 1))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column(overflow="fold")
    for key, value in record.items():
        grid.add_row(_text(f"{key}:", "bold"), _text(value))
    return render(grid)


def show(record: Mapping[str, Any], *, as_json: bool) -> None:
    if as_json:
        emit_json(record)
    elif record:
        print(record_text(record))


def show_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str], *, as_json: bool,
               headers: Mapping[str, str] | None = None) -> None:
    if as_json:
        emit_json(list(rows))
    elif not rows:
        print("(none)")
    else:
        print(table_text(rows, columns, headers))


def done(message: str, record: Mapping[str, Any], *, as_json: bool) -> None:
    """A command that changed something: a sentence for people, the record for programs."""
    if as_json:
        emit_json(record)
    else:
        print(message)


def info(message: str) -> None:
    """Progress for people goes to stderr, so stdout stays clean for --json."""
    print(message, file=sys.stderr, flush=True)

"""The spending page's charts, without I/O: the totals ``vrm-agent stats`` computes
(``vrm_agent.ledger.stats``), bounded for a chart and kept apart per currency, and drawn as SVG by
pygal. pygal loads on the first drawing only, so neither the daemon nor the page's HTML loads it.

One chart per grouping and currency: amounts in different currencies are never added, and bars
of one currency are never set beside another's as if they were comparable.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from vrm_agent.cli.output import printable
from vrm_agent.ledger.stats import SpendingRow

MONTHS_SHOWN = 24  # two years of months; earlier ones become one bar
KEYS_SHOWN = 12  # vendors or categories; the rest become one bar
CURRENCIES_SHOWN = 6  # charts per grouping; more currencies are said, not drawn
LABEL_CHARACTERS = 40  # a label longer than this is cut, with an ellipsis
# What XML cannot hold at all, beyond the control characters `printable` escapes: a name in a
# pod document could carry them, and lxml would refuse to draw the chart.
_NOT_XML = re.compile("[\ud800-\udfff\ufffe\uffff]")
WHAT = {"month": "per month", "vendor": "per vendor", "category": "per category"}
PLURAL = {"vendor": "vendors", "category": "categories"}


@dataclass(frozen=True)
class Bar:
    label: str  # as the ledger has it; `label()` makes it fit for a chart
    total: Decimal
    count: int  # purchases in this bar
    folded: int = 0  # how many months, vendors or categories this one bar stands for

    def to_json(self) -> dict[str, object]:
        return {"label": self.label, "total": str(self.total), "count": self.count,
                "folded": self.folded}


@dataclass(frozen=True)
class Chart:
    by: str
    currency: str
    bars: tuple[Bar, ...]

    @property
    def total(self) -> Decimal:
        return sum((b.total for b in self.bars), Decimal(0))

    @property
    def count(self) -> int:
        return sum(b.count for b in self.bars)

    @property
    def description(self) -> str:
        """What the chart shows, for its image's alternative text."""
        return f"Bar chart of your spending {WHAT[self.by]} in {label(self.currency)}"


def label(text: str) -> str:
    """A name as a chart may show it: control characters and bidirectional overrides escaped,
    nothing XML cannot hold, and no longer than LABEL_CHARACTERS."""
    text = _NOT_XML.sub("\ufffd", printable(text))
    return text if len(text) <= LABEL_CHARACTERS else text[:LABEL_CHARACTERS - 1] + "…"


def _folded(rows: Sequence[SpendingRow], name: str) -> Bar:
    return Bar(name, sum((r.total for r in rows), Decimal(0)), sum(r.count for r in rows),
               folded=len(rows))


def spending_charts(rows: Sequence[SpendingRow], by: str) -> tuple[list[Chart], list[str]]:
    """The charts for rows of ``spending(..., by)``: per currency (most purchases first, at
    most CURRENCIES_SHOWN), the latest MONTHS_SHOWN months after one bar for the earlier ones,
    or the KEYS_SHOWN largest totals before one bar for the others. Every purchase of a shown
    currency is in exactly one bar. Also the currencies left out, for the page to name."""
    counts: dict[str, int] = {}
    for row in rows:
        counts[row.currency] = counts.get(row.currency, 0) + row.count
    currencies = sorted(counts, key=lambda c: (-counts[c], c))
    charts = []
    for currency in currencies[:CURRENCIES_SHOWN]:
        mine = [r for r in rows if r.currency == currency]
        if by == "month":
            mine.sort(key=lambda r: r.key)
            early, late = mine[:-MONTHS_SHOWN], mine[-MONTHS_SHOWN:]
            bars = [Bar(r.key, r.total, r.count) for r in late]
            if early:
                bars.insert(0, _folded(early, f"before {late[0].key}"))
        else:
            mine.sort(key=lambda r: (-r.total, r.key))
            top, rest = mine[:KEYS_SHOWN], mine[KEYS_SHOWN:]
            bars = [Bar(r.key, r.total, r.count) for r in top]
            if rest:
                bars.append(_folded(rest, f"{len(rest)} other {PLURAL[by]}"))
        charts.append(Chart(by, currency, tuple(bars)))
    return charts, currencies[CURRENCIES_SHOWN:]


def _without_scripts(root: object) -> object:
    """pygal writes its settings into a script element even when told to load no script: it
    is removed, so the chart holds no code at all."""
    for parent in list(root.iter()):  # type: ignore[attr-defined]
        for child in list(parent):
            if isinstance(child.tag, str) and child.tag.rsplit("}", 1)[-1] == "script":
                parent.remove(child)
    return root


def chart_size(chart: Chart) -> tuple[int, int]:
    """Width and height of the drawing, which the page gives its image so nothing moves as it
    loads: months stand side by side, names one under another with room for each."""
    return (800, 400) if chart.by == "month" else (800, max(240, 34 * len(chart.bars) + 80))


def chart_svg(chart: Chart) -> bytes:
    """The chart as a standalone SVG document: no script, nothing fetched from anywhere (its
    style is inline), names as text. Amounts become floats for drawing only; the page's table
    gives them exactly."""
    import pygal
    from pygal.style import Style

    style = Style(font_family="system-ui, sans-serif", background="#ffffff",
                  plot_background="#ffffff", foreground="#1b1f24",
                  foreground_strong="#1b1f24", foreground_subtle="#d5dbe1",
                  colors=("#0b5cad",), label_font_size=13, major_label_font_size=13,
                  value_font_size=12, tooltip_font_size=13)
    horizontal = chart.by != "month"
    kind = pygal.HorizontalBar if horizontal else pygal.Bar
    width, height = chart_size(chart)
    drawing = kind(
        js=[],  # no script from a CDN (or anywhere)
        style=style, width=width, height=height, explicit_size=True, show_legend=False,
        x_label_rotation=0 if horizontal else 45, truncate_label=-1, margin=16,
        value_formatter=lambda v: f"{v:,.2f} {label(chart.currency)}")
    drawing.add_xml_filter(_without_scripts)
    drawing.x_labels = [label(b.label) for b in chart.bars]
    drawing.add(label(chart.currency), [float(b.total) for b in chart.bars])
    return drawing.render()  # type: ignore[no-any-return]

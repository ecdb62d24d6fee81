"""The spending page's charts without a pod or a browser: currencies never mixed, bars bounded
with nothing lost, and the names vendors chose drawn as text, never as SVG markup."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from decimal import Decimal

import pytest

from vrm_agent.dashboard.charts import (
    CURRENCIES_SHOWN,
    KEYS_SHOWN,
    LABEL_CHARACTERS,
    MONTHS_SHOWN,
    chart_svg,
    label,
    spending_charts,
)
from vrm_agent.ledger.stats import SpendingRow

SVG = "{http://www.w3.org/2000/svg}"
HOSTILE = ("<script>alert(1)</script>", "<a href='https://evil.example/'>x</a>",
           "]]><image href='https://evil.example/i.png'/>", "nul\x00bell\x07",
           "\u202egnp.exe", "lone\ud800surrogate", "&amp; &lt;b&gt;")


def rows_of(*items: tuple[str, str, int, str]) -> list[SpendingRow]:
    return [SpendingRow(key, currency, count, Decimal(total))
            for key, currency, count, total in items]


def test_each_currency_gets_its_own_chart_and_no_amounts_are_added_across() -> None:
    rows = rows_of(("Shop", "EUR", 2, "30.00"), ("Shop", "USD", 1, "12.50"),
                   ("Cafe", "EUR", 1, "4.20"), ("Cafe", "USD", 3, "9"))
    charts, left_out = spending_charts(rows, "vendor")
    assert left_out == []
    assert [c.currency for c in charts] == ["USD", "EUR"]  # most purchases first
    usd, eur = charts
    assert [(b.label, b.total) for b in eur.bars] == [("Shop", Decimal("30.00")),
                                                      ("Cafe", Decimal("4.20"))]
    assert [(b.label, b.total) for b in usd.bars] == [("Shop", Decimal("12.50")),
                                                      ("Cafe", Decimal("9"))]
    assert eur.total == Decimal("34.20") and usd.total == Decimal("21.50")
    assert "in EUR" in eur.description


def test_months_are_the_latest_two_years_with_the_earlier_ones_in_one_bar() -> None:
    months = [f"{2020 + n // 12}-{n % 12 + 1:02d}" for n in range(MONTHS_SHOWN + 6)]
    rows = rows_of(*((m, "EUR", 1, f"{n}.25") for n, m in enumerate(months)))
    (chart,), _ = spending_charts(rows, "month")
    assert len(chart.bars) == MONTHS_SHOWN + 1
    earlier = chart.bars[0]
    assert earlier.label == f"before {months[6]}" and earlier.folded == 6
    assert earlier.total == sum(Decimal(f"{n}.25") for n in range(6)) and earlier.count == 6
    assert [b.label for b in chart.bars[1:]] == months[6:]  # in order, oldest first
    assert chart.total == sum(r.total for r in rows) and chart.count == len(months)


def test_the_largest_vendors_are_drawn_and_the_others_are_one_bar() -> None:
    rows = rows_of(*((f"vendor {n:02d}", "EUR", 2, str(100 - n)) for n in range(20)),
                   ("refunds only", "EUR", 1, "-5"))
    (chart,), _ = spending_charts(rows, "vendor")
    assert len(chart.bars) == KEYS_SHOWN + 1
    assert [b.label for b in chart.bars[:3]] == ["vendor 00", "vendor 01", "vendor 02"]
    others = chart.bars[-1]
    assert others.label == "9 other vendors" and others.folded == 9
    assert chart.total == sum(r.total for r in rows) and chart.count == 41
    (categories,), _ = spending_charts(
        rows_of(*((f"c{n}", "EUR", 1, "1") for n in range(KEYS_SHOWN + 2))), "category")
    assert categories.bars[-1].label == "2 other categories"


def test_currencies_beyond_the_bound_are_named_and_not_drawn() -> None:
    codes = [f"C{n:02d}" for n in range(CURRENCIES_SHOWN + 2)]
    rows = rows_of(*((f"2024-0{n % 9 + 1}", code, 10 - n, "1") for n, code in enumerate(codes)))
    charts, left_out = spending_charts(rows, "month")
    assert [c.currency for c in charts] == codes[:CURRENCIES_SHOWN]
    assert left_out == codes[CURRENCIES_SHOWN:]
    assert spending_charts([], "vendor") == ([], [])


def test_a_label_is_printable_xml_and_short() -> None:
    assert label("nul\x00") == "nul\\u0000"
    assert label("\u202eevil") == "\\u202eevil"
    assert label("a\ud800b") == "a\ufffdb"
    long = label("x" * 500)
    assert len(long) == LABEL_CHARACTERS and long.endswith("…")


def elements(svg: bytes) -> list[ET.Element]:
    return list(ET.fromstring(svg).iter())


@pytest.mark.parametrize("by", ["vendor", "month"])
def test_names_vendors_chose_are_text_in_the_svg_never_elements(by: str) -> None:
    rows = rows_of(*((name, "EU<R", 1, str(n + 1)) for n, name in enumerate(HOSTILE)))
    (chart,), _ = spending_charts(rows, by)
    svg = chart_svg(chart)
    tags = {e.tag.removeprefix(SVG) for e in elements(svg)}  # well-formed, or this raises
    assert not tags & {"script", "a", "image", "foreignObject", "use", "iframe"}
    attributes = " ".join(v for e in elements(svg) for v in e.attrib.values())
    assert "evil" not in attributes and "javascript" not in attributes
    texts = " ".join(e.text or "" for e in elements(svg))
    assert "<script>alert(1)</script>" in texts  # drawn as the characters the vendor wrote
    assert "nul\\u0000bell\\u0007" in texts and "\\u202egnp.exe" in texts


def test_the_svg_has_no_script_and_fetches_nothing() -> None:
    (chart,), _ = spending_charts(rows_of(("Shop", "EUR", 1, "3.50")), "vendor")
    svg = chart_svg(chart)
    text = svg.decode()
    assert "<script" not in text and "@import" not in text and "url(http" not in text
    assert not [e for e in elements(svg)
                if any(k.endswith("href") for k in e.attrib)]  # no links, no external images
    root = ET.fromstring(svg)
    assert root.get("width") == "800" and root.find(f".//{SVG}style") is not None


def page(**values: object) -> str:
    from vrm_agent.dashboard.pages import templates
    from vrm_agent.dashboard.sessions import Sessions

    defaults: dict[str, object] = {
        "sections": [], "payments": [], "intentions": [], "shown_rows": 200, "problem": None,
        "counts": {"payments": 0, "intentions": 0}}
    return templates().get_template("spending.html").render(
        session=Sessions().create("https://example.org/me#i", 0), flashes=[],
        prefix="/dashboard", page="spending", **{**defaults, **values})


def test_an_empty_ledger_says_how_to_add_purchases_and_payments() -> None:
    empty = page()
    assert "No purchases yet" in empty and "vrm-agent import transactions FILE" in empty
    assert "vrm-agent pay add" in empty and "vrm-agent pay intend" in empty
    assert "<img" not in empty and 'aria-current="page">Spending' in empty


def test_the_page_escapes_what_the_ledger_holds_in_alt_text_and_tables() -> None:
    from vrm_agent.dashboard.charts import chart_size
    from vrm_agent.dashboard.spending_pages import chart_src

    (chart,), _ = spending_charts(rows_of(("<b>Shop</b>", '"><x', 1, "2")), "vendor")
    html = page(sections=[{"by": "vendor", "title": "Per vendor", "column": "Vendor",
                           "left_out": ["<i>ZZZ</i>"], "charts": [
                               {"chart": chart, "src": chart_src("vendor", chart.currency),
                                "size": chart_size(chart)}]}])
    assert "<b>Shop</b>" not in html and "&lt;b&gt;Shop&lt;/b&gt;" in html
    assert '"><x' not in html and "<i>ZZZ</i>" not in html
    assert 'src="/dashboard/charts/vendor/~223e3c78.svg"' in html
    assert '<th scope="row">' in html and "<caption>" in html


@pytest.mark.parametrize("currency", ["EUR", "usd", "A/B", "%2F", '"><x', "..", "€", "~41",
                                      "X" * 64, "X" * 65])
def test_a_chart_address_names_its_currency_in_one_path_segment(currency: str) -> None:
    from yarl import URL

    from vrm_agent.dashboard.spending_pages import chart_src, currency_of

    path = URL(chart_src("vendor", currency)).path  # as the router reads it, %2F decoded
    segments = path.split("/")
    assert segments[:4] == ["", "dashboard", "charts", "vendor"] and len(segments) == 5
    assert segments[4].endswith(".svg") and currency_of(segments[4][:-4]) == currency


@pytest.mark.parametrize("key", ["~", "~4", "~zz", "~ff", "..", ".x", "~4555", "a b"])
def test_an_address_no_chart_has_names_no_currency(key: str) -> None:
    from vrm_agent.dashboard.spending_pages import currency_of

    assert currency_of(key) is None

"""What the dashboard's spending page costs the agent apart from reading the pod: pygal's load on
the first chart (timed in a fresh interpreter that holds what a running daemon holds already),
the totals per month, vendor and category, the page's HTML and each chart's SVG, for ledgers
of 1,000 and 10,000 purchases (60 vendors, 8 categories, two currencies, four years).

    .venv/bin/python -m benchmarks.spending [--samples 5]
"""

from __future__ import annotations

import argparse
import random
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from decimal import Decimal

from rdflib import Graph, Literal, URIRef
from rdflib.namespace import XSD

from benchmarks.common import print_table
from vrm_agent.vocabulary import SCHEMA

LOAD = ("import time, vrm_agent.daemon.server, vrm_agent.dashboard.spending_pages; "
        "from decimal import Decimal; "
        "from vrm_agent.dashboard.charts import Bar, Chart, chart_svg; "
        "t = time.perf_counter(); chart_svg(Chart('vendor', 'EUR', (Bar('a', Decimal(1), 1),)));"
        " print(time.perf_counter() - t)")
VENDORS = 60
CATEGORIES = ("books", "food", "home", "travel", "garden", "music", "health", "toys")


def purchase_graphs(count: int) -> tuple[list[Graph], dict[str, str]]:
    """Purchases as their chunk documents hold them, one graph per vendor."""
    rng = random.Random(count)
    names = {f"https://pod.example/me/vrm/vendors/v{n}#it": f"Vendor <{n}> & Co"
             for n in range(VENDORS)}
    graphs = {iri: Graph() for iri in names}
    for n in range(count):
        seller = f"https://pod.example/me/vrm/vendors/v{rng.randrange(VENDORS)}#it"
        tx = URIRef(f"{seller[:-3]}/tx#{n}")
        graph = graphs[seller]
        day = f"{2022 + rng.randrange(4)}-{rng.randrange(1, 13):02d}-{rng.randrange(1, 29):02d}"
        graph.add((tx, SCHEMA.orderDate, Literal(day, datatype=XSD.date)))
        graph.add((tx, SCHEMA.price, Literal(Decimal(rng.randrange(100, 20000)) / 100)))
        graph.add((tx, SCHEMA.priceCurrency, Literal("EUR" if n % 5 else "USD")))
        graph.add((tx, SCHEMA.seller, URIRef(seller)))
        graph.add((tx, SCHEMA.category, Literal(rng.choice(CATEGORIES))))
    return list(graphs.values()), names


def median_seconds(samples: int, work: Callable[[], object]) -> float:
    runs = []
    for _ in range(samples):
        start = time.perf_counter()
        work()
        runs.append(time.perf_counter() - start)
    return statistics.median(runs)


def first_chart_load(samples: int) -> float:
    return statistics.median(
        float(subprocess.run([sys.executable, "-c", LOAD], capture_output=True, text=True,
                             check=True).stdout) for _ in range(samples))


def main() -> None:
    from vrm_agent.dashboard.charts import chart_size, chart_svg, spending_charts
    from vrm_agent.dashboard.pages import templates
    from vrm_agent.dashboard.sessions import Sessions
    from vrm_agent.dashboard.spending_pages import SECTIONS, chart_src
    from vrm_agent.ledger.stats import GROUPINGS, spending

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=5)
    samples = parser.parse_args().samples
    rows = [("first chart: load pygal and draw", f"{first_chart_load(samples) * 1000:.0f} ms")]
    for count in (1_000, 10_000):
        graphs, names = purchase_graphs(count)
        totals = {by: spending(graphs, names, by) for by in GROUPINGS}
        took = median_seconds(samples, lambda g=graphs, n=names: [spending(g, n, by)
                                                                  for by in GROUPINGS])
        rows.append((f"{count:,} purchases: totals per month, vendor, category",
                     f"{took * 1000:.1f} ms"))
        sections = []
        for by, title, column in SECTIONS:
            charts, left_out = spending_charts(totals[by], by)
            sections.append({"by": by, "title": title, "column": column, "left_out": left_out,
                             "charts": [{"chart": c, "src": chart_src(by, c.currency),
                                         "size": chart_size(c)} for c in charts]})
        took = median_seconds(samples, lambda s=sections: templates().get_template(
            "spending.html").render(
            session=Sessions().create("https://example.org/me#i", 0), flashes=[],
            prefix="/dashboard", problem=None, sections=s,
            payments=[], intentions=[], counts={"payments": 0, "intentions": 0},
            shown_rows=200, page="spending"))
        rows.append((f"{count:,} purchases: the page's HTML", f"{took * 1000:.1f} ms"))
        every = [item["chart"] for s in sections for item in s["charts"]]
        for by in GROUPINGS:
            chart = next(c for c in every if c.by == by)
            took = median_seconds(samples, lambda c=chart: chart_svg(c))
            rows.append((f"{count:,} purchases: one chart per {by} ({len(chart.bars)} bars)",
                         f"{took * 1000:.1f} ms"))
    print_table(f"Spending page, median of {samples}", rows)


if __name__ == "__main__":
    main()

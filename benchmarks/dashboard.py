"""What the dashboard's pages cost the agent, apart from the pod: loading the pages' code and
Jinja2 on the first request (timed in a fresh interpreter), and drawing the overview, the
requests page and the intents page from data already read, for growing numbers of vendors,
requests and offers.

    .venv/bin/python -m benchmarks.dashboard [--samples 5]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime

from benchmarks.common import print_table

# After what a running daemon holds already: only the dashboard's own cost is timed.
LOAD = ("import time, vrm_agent.daemon.server, vrm_agent.daemon.negotiations; "
        "t = time.perf_counter(); import vrm_agent.dashboard.pages as p; "
        "p.templates().get_template('overview.html'); print(time.perf_counter() - t)")


def first_request_load(samples: int) -> float:
    runs = [float(subprocess.run([sys.executable, "-c", LOAD], capture_output=True, text=True,
                                 check=True).stdout) for _ in range(samples)]
    return statistics.median(runs)


def render_seconds(template: str, samples: int, **values: object) -> float:
    from vrm_agent.dashboard.pages import templates
    from vrm_agent.dashboard.sessions import Sessions

    page = templates().get_template(template)
    runs = []
    for _ in range(samples):
        session = Sessions().create("https://example.org/me#i", 0)
        start = time.perf_counter()
        page.render(session=session, flashes=[], prefix="/dashboard", problem=None, **values)
        runs.append(time.perf_counter() - start)
    return statistics.median(runs)


def vendors(n: int) -> list[dict[str, object]]:
    now = datetime.now(UTC)
    return [{"name": f"Vendor <{i}> & Co", "id": f"v{i}", "state": "customer", "signal": i % 2,
             "vendor_state": "customer", "vendor_state_at": now} for i in range(n)]


def requests(n: int) -> list[dict[str, object]]:
    now = datetime.now(UTC)
    return [{"id": f"{i:016x}", "vendor": f"Vendor {i}", "webid": f"https://v{i}.example/#i",
             "received": now, "offers": None,
             "asks": [{"what": "pd:EmailAddress", "action": "odrl:use",
                       "purpose": "dpv:ResearchAndDevelopment", "duration": "P3D",
                       "resources": [f"https://pod.example/me/vrm/contact/email-{j}"
                                     for j in range(3)]}]} for i in range(n)]


def intent_cards(offers_each: int) -> tuple[list[dict[str, object]], float]:
    """The most intents the page shows (50 open, the most the agent keeps, and 20 closed), each
    with ``offers_each`` offers, made into cards as the page makes them; and the seconds the
    cards took (the records themselves made before)."""
    from decimal import Decimal
    from types import SimpleNamespace

    from vrm_agent.daemon.intents import intent_row
    from vrm_agent.dashboard.views import CLOSED_SHOWN, intent_card
    from vrm_agent.ledger.intents import Intent, IntentAudience, IntentOffer

    now = datetime.now(UTC).replace(microsecond=0)
    terms = "https://pod.example/me/vrm/terms/sd-base#it"
    urls = SimpleNamespace(document=lambda i: f"https://pod.example/me/vrm/intents/{i}",
                           offers_endpoint=lambda i: f"https://agent.example/intents/{i}/offers")
    names = {f"https://v{j}.example/#i": f"Vendor <{j}> & Co" for j in range(offers_each)}
    read = []
    for i in range(50 + CLOSED_SHOWN):
        intent = Intent(f"intent-{i}", f"thing {i}", Decimal("1200"), "EUR", terms,
                        created=now)
        audience = IntentAudience(intent.id, public=True, closed=now if i >= 50 else None)
        offers = [IntentOffer(f"o{j}", intent.id, f"https://v{j}.example/#i",
                              Decimal(1000 + j), "EUR", terms, now,
                              "https://schema.org/InStock", description=f"offer {j}")
                  for j in range(offers_each)]
        read.append((intent, audience, offers))
    start = time.perf_counter()
    cards = [intent_card(intent_row(i, a, urls), offers, names)  # type: ignore[arg-type]
             for i, a, offers in read]
    return cards, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=5)
    samples = parser.parse_args().samples
    rows = [("first request: load pages, Jinja2, compile overview",
             f"{first_request_load(samples) * 1000:.0f} ms")]
    for n in (10, 100, 1000):
        took = render_seconds("overview.html", samples, rows=vendors(n), waiting=1,
                              page="overview")
        rows.append((f"overview, {n} vendors", f"{took * 1000:.1f} ms"))
    for n in (1, 10, 100):
        took = render_seconds("requests.html", samples, items=requests(n), page="requests",
                              version="0" * 16, every=5000)
        rows.append((f"requests page, {n} requests of 3 resources", f"{took * 1000:.1f} ms"))
    for n in (1, 10, 200):
        cards, made = intent_cards(n)
        took = render_seconds("intents.html", samples, cards=cards, left_out=0, page="intents")
        rows.append((f"intents page, 70 intents of {n} offer(s) each: cards / drawn",
                     f"{made * 1000:.1f} / {took * 1000:.1f} ms"))
    print_table(f"Dashboard pages, median of {samples}", rows)


if __name__ == "__main__":
    main()

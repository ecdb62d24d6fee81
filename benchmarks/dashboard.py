"""What the dashboard's pages cost the agent, apart from the pod: loading the pages' code and
Jinja2 on the first request (timed in a fresh interpreter), and drawing the overview and the
requests page from data already read, for growing numbers of vendors and requests.

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
        took = render_seconds("requests.html", samples, items=requests(n), page="requests")
        rows.append((f"requests page, {n} requests of 3 resources", f"{took * 1000:.1f} ms"))
    print_table(f"Dashboard pages, median of {samples}", rows)


if __name__ == "__main__":
    main()

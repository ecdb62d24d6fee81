"""Intentcasting against a real agent: how long a vendor waits to list the intents it may see as
the person keeps more of them, to make an offer, and how long accepting one takes (vendor
record, relationship, signed agreement, closing, telling the vendors).

The agent runs in this process as ``serve()`` assembles it; the person's side is the intent
service the commands use.

    .venv/bin/python -m benchmarks.intents [--flavour wac|acp] [--samples 20]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from decimal import Decimal
from pathlib import Path

from benchmarks.common import local_css, print_table
from benchmarks.negotiation import create_accounts, running_agent, vendor_session
from vrm_agent.daemon.intents import LISTING_FRESH_SECONDS, IntentService
from vrm_agent.daemon.notify import Notifier
from vrm_agent.integrity import SigningKey
from vrm_agent.ledger.intents import Intent
from vrm_agent.pod import PodClient
from vrm_agent.podserver import Flavour
from vrm_agent.vendor import IntentClient


def median_ms(samples: list[float]) -> str:
    return f"{statistics.median(samples) * 1000:.0f} ms (of {len(samples)})"


async def run(flavour: Flavour, samples: int) -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = []
    folder = Path(tempfile.mkdtemp(prefix="vrm-bench-intents-"))
    with local_css(flavour) as server:
        person, seller, other = await create_accounts(server.base_url,
                                                      ["rfp", "rfp-vendor-1", "rfp-vendor-2"])
        async with running_agent(person, folder) as agent, \
                PodClient(person.credentials) as pod, \
                vendor_session(seller, person.webid) as (vendor, info):
            await pod.login()
            notifier = Notifier(SigningKey(), storage=person.pod, agent_url=agent.url,
                                issuer=pod.issuer)
            from vrm_agent.access.service import AccessControl

            service = IntentService(pod, owner=person.webid, storage=person.pod,
                                    agent_url=agent.url, signing_key=notifier.key,
                                    access=AccessControl(pod, owner_webid=person.webid,
                                                         storage=person.pod),
                                    notifier=notifier)
            terms = await service.terms_iri(None)
            intents = IntentClient(vendor)
            kept = 0
            for count in (1, 10, 40):
                while kept < count:
                    kept += 1
                    intent = Intent(f"bench-{kept}", f"thing {kept}", Decimal(100), "EUR",
                                    terms)
                    start = time.perf_counter()
                    await service.add(intent, public=kept % 2 == 1,
                                      vendors=[] if kept % 2 == 1 else [other.webid])
                    if kept == 1:
                        rows.append(("intent add (public)",
                                     f"{(time.perf_counter() - start) * 1000:.0f} ms"))
                fresh, remembered = [], []
                for _ in range(3):  # each after the agent's listing has gone stale
                    await asyncio.sleep(LISTING_FRESH_SECONDS + 0.1)
                    start = time.perf_counter()
                    await intents.list(info)
                    fresh.append(time.perf_counter() - start)
                for _ in range(samples):
                    start = time.perf_counter()
                    await intents.list(info)
                    remembered.append(time.perf_counter() - start)
                rows.append((f"GET /intents, {count} open intents, read afresh",
                             median_ms(fresh)))
                rows.append((f"GET /intents, {count} open intents, within 2 s of the last",
                             median_ms(remembered)))
            # Closed intents are never read again: close all but one, then list afresh.
            for number in range(2, kept + 1):
                await service.close(f"bench-{number}")
            fresh = []
            for _ in range(3):
                await asyncio.sleep(LISTING_FRESH_SECONDS + 0.1)
                start = time.perf_counter()
                await intents.list(info)
                fresh.append(time.perf_counter() - start)
            rows.append((f"GET /intents, 1 open and {kept - 1} closed, read afresh",
                         median_ms(fresh)))
            await asyncio.sleep(LISTING_FRESH_SECONDS + 0.1)
            entry = next(e for e in await intents.list(info))
            times = []
            for _ in range(3):  # the most one vendor may make
                start = time.perf_counter()
                await intents.offer(entry, price="90", currency="EUR", terms=terms)
                times.append(time.perf_counter() - start)
            rows.append(("POST an offer", median_ms(times)))
            offers = await service.offers(entry.id.rsplit("/", 1)[-1])
            start = time.perf_counter()
            await service.accept(entry.id.rsplit("/", 1)[-1], offers[0].id)
            rows.append(("intent accept (vendor, relationship, signed agreement, close)",
                         f"{(time.perf_counter() - start) * 1000:.0f} ms"))
            start = time.perf_counter()
            status = (await vendor.read(entry.intent)).status
            rows.append(("first read after accept", f"{status}"))
            await service.flush()
            await notifier.drain()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flavour", choices=["wac", "acp"], default="wac")
    parser.add_argument("--samples", type=int, default=20)
    args = parser.parse_args()
    rows = asyncio.run(run(Flavour(args.flavour), args.samples))
    print_table(f"Intents ({args.flavour})", rows)


if __name__ == "__main__":
    main()

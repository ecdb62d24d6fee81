"""Managed access on one local CSS: how soon a grant works and a revoke bites, and how many
document writes concurrent grants cost.

    .venv/bin/python -m benchmarks.access [--flavour wac|acp] [--samples 20] [--burst 100]
"""

from __future__ import annotations

import argparse
import asyncio
import time
from datetime import UTC, datetime, timedelta

from benchmarks.common import local_css, percentile, print_table
from vrm_agent.access.service import AccessControl
from vrm_agent.pod import PodClient
from vrm_agent.podserver import AccountApi, Flavour

BODY = '<#it> <http://schema.org/name> "shared".'


async def until_status(client: PodClient, url: str, wanted: int) -> int:
    polls = 0
    while True:
        polls += 1
        if (await client.request("GET", url, expect_ok=False)).status == wanted:
            return polls


async def run(flavour: Flavour, samples: int, burst: int) -> list[tuple[str, str]]:
    with local_css(flavour) as server:
        async with AccountApi(server.base_url) as api:
            alice = await api.create_pod_account("alice", "alice@example.org", "alice-secret-1")
            acme = await api.create_pod_account("acme", "acme@example.org", "acme-secret-1")
        async with PodClient(alice.credentials) as owner, PodClient(acme.credentials) as vendor:
            access = AccessControl(owner, owner_webid=alice.webid, storage=alice.pod)
            await owner.login()
            await vendor.login()
            until = datetime.now(UTC) + timedelta(hours=1)
            grant_s, revoke_s, grant_writes, first_polls = [], [], [], []
            for i in range(samples):
                url = f"{alice.pod}bench/r{i}"
                await owner.put(url, BODY, content_type="text/turtle")
                await access.locate(url)  # discovery is cached per resource after first use
                docs_before = access.writes
                start = time.perf_counter()
                view = await access.grant(acme.webid, [url], ["Read"], until=until)
                first_polls.append(await until_status(vendor, url, 200))
                grant_s.append(time.perf_counter() - start)
                grant_writes.append(access.writes - docs_before)
                start = time.perf_counter()
                await access.revoke(view.id)
                await until_status(vendor, url, 403)
                revoke_s.append(time.perf_counter() - start)

            url = f"{alice.pod}bench/burst"
            await owner.put(url, BODY, content_type="text/turtle")
            await access.locate(url)
            docs_before = access.writes
            start = time.perf_counter()
            await asyncio.gather(*(
                access.grant(f"{server.base_url}vendor-{i}/profile/card#me", [url], ["Read"],
                             until=until) for i in range(burst)
            ))
            burst_s = time.perf_counter() - start
            burst_writes = access.writes - docs_before
            in_force = len(await access.grants(resource=url))

    def ms(values: list[float], q: float) -> str:
        return f"{percentile(values, q) * 1000:.0f} ms"

    return [
        (f"grant to vendor's first 200, p50 of {samples}", ms(grant_s, 0.5)),
        (f"grant to vendor's first 200, p99 of {samples}", ms(grant_s, 0.99)),
        ("vendor GETs until the first 200 (max)", str(max(first_polls))),
        ("document writes per grant (max)", str(max(grant_writes))),
        (f"revoke to vendor's first 403, p50 of {samples}", ms(revoke_s, 0.5)),
        (f"revoke to vendor's first 403, p99 of {samples}", ms(revoke_s, 0.99)),
        (f"{burst} concurrent grants on one resource: writes", str(burst_writes)),
        (f"{burst} concurrent grants on one resource: time", f"{burst_s:.2f} s"),
        (f"{burst} concurrent grants: in force afterwards", str(in_force)),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--flavour", choices=["wac", "acp"], default="wac")
    parser.add_argument("--samples", type=int, default=20)
    parser.add_argument("--burst", type=int, default=100)
    args = parser.parse_args()
    flavour = Flavour(args.flavour)
    rows = asyncio.run(run(flavour, args.samples, args.burst))
    print_table(f"Managed access on one local CSS 7.2.0 ({flavour.value.upper()})", rows)


if __name__ == "__main__":
    main()

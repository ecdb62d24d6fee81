"""Pod client latency and bulk-write throughput against one local CSS, in one run.

    .venv/bin/python -m benchmarks.pod_client [--requests 200] [--resources 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import time

from benchmarks.common import local_css, median_ms, print_table
from vrm_agent.pod import PodClient
from vrm_agent.podserver import AccountApi

BODY = '<#it> <http://schema.org/name> "small resource".'


async def run(requests: int, resources: int, concurrency: int) -> list[tuple[str, str]]:
    with local_css() as server:
        async with AccountApi(server.base_url) as api:
            account = await api.create_pod_account("bench", "bench@example.org", "bench-secret-1")
        async with PodClient(account.credentials, concurrency=concurrency) as pod:
            await pod.login()
            url = account.pod + "bench/latency"
            await pod.put(url, BODY, content_type="text/turtle")
            gets, puts = [], []
            for _ in range(requests):
                start = time.perf_counter()
                await pod.get(url)
                gets.append(time.perf_counter() - start)
                start = time.perf_counter()
                await pod.put(url, BODY, content_type="text/turtle")
                puts.append(time.perf_counter() - start)

            start = time.perf_counter()
            for i in range(resources):
                await pod.put(f"{account.pod}bench/seq/{i}", BODY, content_type="text/turtle")
            sequential = time.perf_counter() - start

            start = time.perf_counter()
            await asyncio.gather(*(
                pod.put(f"{account.pod}bench/par/{i}", BODY, content_type="text/turtle")
                for i in range(resources)
            ))
            concurrent = time.perf_counter() - start
    return [
        (f"authenticated GET, median of {requests}", median_ms(gets)),
        (f"authenticated PUT, median of {requests}", median_ms(puts)),
        (f"{resources} small PUTs, sequential",
         f"{sequential:.1f} s ({resources / sequential:.0f}/s)"),
        (f"{resources} small PUTs, concurrency {concurrency}",
         f"{concurrent:.1f} s ({resources / concurrent:.0f}/s)"),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--resources", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    rows = asyncio.run(run(args.requests, args.resources, args.concurrency))
    print_table("Pod client against one local CSS 7.2.0 (WAC, file backend)", rows)


if __name__ == "__main__":
    main()

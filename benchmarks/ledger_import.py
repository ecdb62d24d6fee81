"""Importing generated transactions into one local CSS: wall time, pod writes, peak memory; and,
as a baseline, 1,000 transactions written one resource each.

    .venv/bin/python -m benchmarks.ledger_import [--transactions 100000] [--baseline 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import random
import resource
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

from benchmarks.common import local_css, print_table
from vrm_agent.ledger.importing import TransactionImporter, file_digest, plain_record, term_text
from vrm_agent.ledger.store import Ledger
from vrm_agent.ledger.transactions import parse_file
from vrm_agent.pod import PodClient
from vrm_agent.podserver import AccountApi
from vrm_agent.vocabulary.compiled import Term

VENDORS = [f"Vendor {i:02d}" for i in range(40)]
CATEGORIES = ["groceries", "travel", "books", "energy", "clothing", "software"]


def generate(path: Path, count: int, seed: int = 7) -> None:
    """A bank-export-like CSV: 40 vendors over three years."""
    rng = random.Random(seed)
    start = date(2023, 1, 1)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["date", "vendor", "description", "amount", "currency", "category",
                         "order_id", "channel"])
        for i in range(count):
            writer.writerow([
                (start + timedelta(days=rng.randrange(3 * 365))).isoformat(),
                rng.choice(VENDORS), f"purchase {i}", f"{rng.uniform(1, 250):.2f}", "EUR",
                rng.choice(CATEGORIES), f"ORD-{i:07d}", rng.choice(["online", "in-store"]),
            ])


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def run(count: int, baseline: int) -> list[tuple[str, str]]:
    folder = Path(tempfile.mkdtemp(prefix="vrm-import-"))
    csv_path = folder / "transactions.csv"
    generate(csv_path, count)
    with local_css() as server:
        async with AccountApi(server.base_url) as api:
            alice = await api.create_pod_account("alice", "alice@example.org", "alice-secret-1")
        async with PodClient(alice.credentials) as pod:
            await pod.login()
            ledger = Ledger(pod, alice.pod)
            memory_before = peak_mb()
            start = time.perf_counter()
            parsed = parse_file(csv_path)
            parse_seconds = time.perf_counter() - start
            report = await TransactionImporter(ledger).run(
                parsed.transactions, digest=file_digest(csv_path.read_bytes()))
            wall = time.perf_counter() - start
            peak = peak_mb()

            start = time.perf_counter()
            again = await TransactionImporter(ledger).run(
                parsed.transactions, digest=file_digest(csv_path.read_bytes()))
            rerun = time.perf_counter() - start

            sample = parsed.transactions[:baseline]
            writes_before = pod.request_counts["PUT"]
            start = time.perf_counter()
            for transaction in sample:
                url = f"{alice.pod}baseline/{transaction.id}"
                record = plain_record(transaction, ledger.layout.vendor_iri(transaction.vendor_id))
                body = "".join(f"<{url}#it> <{p}> {_nt(t)}.\n" for p, ts in record.items()
                               for t in ts)
                await pod.put(url, body, content_type="text/turtle")
            one_each = time.perf_counter() - start
            one_each_writes = pod.request_counts["PUT"] - writes_before
    return [
        (f"import {count:,} transactions: wall time", f"{wall:.1f} s"),
        ("  of which reading the CSV into records", f"{parse_seconds:.1f} s"),
        (f"import {count:,}: pod writes", str(report.pod_writes)),
        (f"import {count:,}: chunks", str(report.chunks_written)),
        (f"import {count:,}: peak memory (process RSS)", f"{peak:.0f} MB"),
        ("  peak RSS before the import", f"{memory_before:.0f} MB"),
        ("re-import of the same file", f"{rerun:.2f} s, complete={again.already_complete}"),
        (f"baseline: {baseline:,} transactions one resource each",
         f"{one_each:.1f} s, {one_each_writes} writes"),
    ]


def _nt(term: Term) -> str:
    return term_text(term)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--transactions", type=int, default=100_000)
    parser.add_argument("--baseline", type=int, default=1000)
    args = parser.parse_args()
    rows = asyncio.run(run(args.transactions, args.baseline))
    print_table("Transaction import into one local CSS 7.2.0 (WAC)", rows)


if __name__ == "__main__":
    main()

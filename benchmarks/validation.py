"""How long the shapes take to check records before they are written: one chunk of 1,000
transactions, and the same chunk with one bad transaction, through the compiled checks.

Run: python -m benchmarks.validation
"""

from __future__ import annotations

import time

from benchmarks.common import median_ms, percentile, print_table
from tests.test_shapes import thousand_transactions
from vrm_agent.vocabulary.validation import validate, violations

RUNS = 15


def timed(action: object, runs: int = RUNS) -> list[float]:
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        action()  # type: ignore[operator]
        samples.append(time.perf_counter() - start)
    return samples


def main() -> None:
    graph = thousand_transactions()
    good = timed(lambda: validate(graph))
    found = timed(lambda: violations(graph))
    print_table(f"Shape checks of 1,000 transactions (p50 and p90 of {RUNS})", [
        ("validate (passes), p50", median_ms(good)),
        ("validate (passes), p90", f"{percentile(good, 0.9) * 1000:.1f} ms"),
        ("violations (lists all), p50", median_ms(found)),
    ])


if __name__ == "__main__":
    main()

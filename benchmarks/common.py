"""Shared by the benchmark scripts: one local CSS with one account, and table printing."""

from __future__ import annotations

import statistics
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from vrm_agent.podserver import CssServer, Flavour, start_server, stop_pid
from vrm_agent.podserver.process import free_port


@contextmanager
def local_css(flavour: Flavour = Flavour.WAC) -> Iterator[CssServer]:
    folder = Path(tempfile.mkdtemp(prefix="vrm-bench-"))
    server = start_server(port=free_port(), flavour=flavour, data_dir=folder / "data",
                          log_path=folder / "server.log")
    try:
        yield server
    finally:
        stop_pid(server.pid)


def percentile(samples: Sequence[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def median_ms(samples: Sequence[float]) -> str:
    return f"{statistics.median(samples) * 1000:.1f} ms"


def print_table(title: str, rows: Sequence[tuple[str, str]]) -> None:
    width = max(len(r[0]) for r in rows)
    print(f"\n{title}\n")
    print(f"| {'measure':<{width}} | result |")
    print(f"| {'-' * width} | --- |")
    for name, value in rows:
        print(f"| {name:<{width}} | {value} |")

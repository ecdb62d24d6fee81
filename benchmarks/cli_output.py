"""What the command line's output costs: ``vrm-agent --help`` (which must not load rich), the
first table of a process (rich imported then), and tables of many rows, into a pipe (never
wrapped) and into an 80-column terminal (wrapped), each in a fresh interpreter.

    .venv/bin/python -m benchmarks.cli_output [--rows 100 1000 10000] [--runs 5]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence

from benchmarks.common import print_table

TABLE = """
import os, sys, time
from vrm_agent.cli import output
if {terminal}:
    sys.stdout.isatty = lambda: True
    output.shutil.get_terminal_size = lambda: os.terminal_size((80, 24))
rows = [{{"id": f"g{{i}}", "agent": "東京書店 😀 e\\u0301cole", "modes": ["Read"],
         "resources": [f"https://pod.example/alice/vrm/purchases/shop/{{i}}" * 2],
         "expires": "2030-01-01T00:00:00+00:00"}} for i in range({rows})]
start = time.perf_counter()
output.show_table(rows, ("id", "agent", "resources", "modes", "expires"), as_json=False)
print(time.perf_counter() - start, file=sys.stderr)
"""


def seconds(code: list[str], env: dict[str, str] | None = None) -> float:
    start = time.perf_counter()
    subprocess.run(code, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   env=env)
    return time.perf_counter() - start


def render_seconds(rows: int, *, terminal: bool) -> float:
    """The time show_table itself takes, in a fresh interpreter (so rich's import counts)."""
    result = subprocess.run(
        [sys.executable, "-c", TABLE.format(rows=rows, terminal=terminal)],
        check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        env={"NO_COLOR": "1", "PATH": "", "PYTHONPATH": ":".join(sys.path)})
    return float(result.stderr.strip().splitlines()[-1])


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[1, 100, 1000, 10000])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)
    help_command = [sys.executable, "-m", "vrm_agent.cli.main", "--help"]
    results = [("`vrm-agent --help`, wall time, median of "
                f"{args.runs}",
                f"{statistics.median(seconds(help_command) for _ in range(args.runs)):.3f} s")]
    for rows in args.rows:
        for terminal in (False, True):
            where = "an 80-column terminal" if terminal else "a pipe"
            median = statistics.median(render_seconds(rows, terminal=terminal)
                                       for _ in range(args.runs))
            results.append((f"first table of {rows} row(s) into {where}", f"{median:.3f} s"))
    print_table("The command line's output", results)


if __name__ == "__main__":
    main()

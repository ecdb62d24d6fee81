"""How much memory the daemon holds: resident memory (VmRSS, and its peak VmHWM) of a real
``vrm-agent run`` process once ``/health`` answers, after its first approved request, and after
N approved requests from real vendor accounts; and how long ``vrm-agent --help`` takes. The
daemon measured is the second to start on the pod: the first writes the starter terms, which
costs modules no later start needs (its RSS is shown too).

    .venv/bin/python -m benchmarks.memory [--negotiations 1000] [--vendors 16] [--help-runs 5]

The daemon runs as a person runs it, a process of its own (with ``-X importtime``, whose lines on
its stderr count the modules it has imported). Each vendor is a real account on the same local
CSS, listed in the person's ledger, and asks for the person's e-mail address for delivery of
goods for 7 days, which the starter terms agree to without asking the person. The vendors ask
at the same time, each one request after another, so an agreement usually replaces the same
vendor's previous one (the agent ends it), as it would for a vendor that renews.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from benchmarks.common import local_css, print_table
from vrm_agent.ledger.records import ContactUnit, Vendor
from vrm_agent.ledger.store import Ledger
from vrm_agent.negotiation.odrl import Policy
from vrm_agent.negotiation.protocol import State
from vrm_agent.pod import PodClient
from vrm_agent.podserver import AccountApi, Flavour, PodAccount
from vrm_agent.podserver.process import free_port
from vrm_agent.vendor import AgentInfo, VendorAgent, request_policy

CLI = [sys.executable, "-m", "vrm_agent.cli.main"]


@dataclass(frozen=True)
class Memory:
    rss_kb: int
    hwm_kb: int
    modules: int | None = None

    def __str__(self) -> str:
        text = f"{self.rss_kb / 1024:.1f} MB (peak {self.hwm_kb / 1024:.1f} MB)"
        return text if self.modules is None else f"{text}, {self.modules} modules"


def memory_of(pid: int, importtime_log: Path | None = None) -> Memory:
    status = Path(f"/proc/{pid}/status").read_text()

    def field(name: str) -> int:
        found = re.search(rf"^{name}:\s+(\d+) kB", status, re.MULTILINE)
        if found is None:
            raise RuntimeError(f"no {name} in /proc/{pid}/status")
        return int(found.group(1))

    modules = None if importtime_log is None else importtime_modules(importtime_log.read_text())
    return Memory(field("VmRSS"), field("VmHWM"), modules)


def importtime_modules(text: str) -> int:
    """Modules imported, from the lines ``-X importtime`` writes (one a module)."""
    return sum(line.startswith("import time:") and not line.startswith("import time: self")
               for line in text.splitlines())


@dataclass(frozen=True)
class Daemon:
    url: str
    pid: int
    log: Path


@contextmanager
def daemon(config: Path) -> Iterator[tuple[Daemon, float]]:
    """``vrm-agent run`` as a process of its own; yields it and the seconds until /health."""
    port = free_port()
    log = config.with_name("agent.log")
    begin = time.perf_counter()
    with open(log, "w") as out:
        process = subprocess.Popen(
            [sys.executable, "-X", "importtime", "-m", "vrm_agent.cli.main", "run",
             "--port", str(port), "--config", str(config), "--log-level", "warning"],
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    url = f"http://localhost:{port}/"
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the agent did not start:\n" + log.read_text()[-3000:])
            try:
                with urllib.request.urlopen(url + "health", timeout=1):
                    break
            except OSError:
                time.sleep(0.05)
        yield Daemon(url, process.pid, log), time.perf_counter() - begin
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# The peak RSS of a child counts what it held before exec: forked from this process, --help
# would inherit this benchmark's tens of MB. A bare interpreter starts it instead and reports.
_PEAK_OF_CHILD = ("import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True, "
                  "stdout=subprocess.DEVNULL); "
                  "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")


def help_runs(runs: int) -> tuple[list[float], int, int]:
    """Wall seconds of each ``vrm-agent --help``, its peak RSS (kB) and its modules."""
    walls = []
    for _ in range(runs):
        begin = time.perf_counter()
        subprocess.run([*CLI, "--help"], stdout=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
                       check=True)
        walls.append(time.perf_counter() - begin)
    peak = subprocess.run([sys.executable, "-S", "-c", _PEAK_OF_CHILD, *CLI, "--help"],
                          capture_output=True, text=True, check=True, stdin=subprocess.DEVNULL)
    traced = subprocess.run([sys.executable, "-X", "importtime", *CLI[1:], "--help"],
                            capture_output=True, text=True, check=True,
                            stdin=subprocess.DEVNULL)
    return walls, int(peak.stdout), importtime_modules(traced.stderr)


def login(config: Path, person: PodAccount) -> None:
    result = subprocess.run([*CLI, "login", "--webid", person.webid, "--client-id",
                             person.client_id, "--client-secret", person.client_secret,
                             "--config", str(config)], capture_output=True, text=True,
                            stdin=subprocess.DEVNULL, check=False, timeout=120)
    if result.returncode != 0:
        raise RuntimeError(f"vrm-agent login failed: {result.stderr}")


async def create_accounts(base_url: str, names: Sequence[str]) -> list[PodAccount]:
    gate = asyncio.Semaphore(4)  # CSS does its account work on one core; more only queues

    async def one(api: AccountApi, name: str) -> PodAccount:
        async with gate:
            return await api.create_pod_account(name, f"{name}@example.org", f"secret-{name}-1")

    async with AccountApi(base_url) as api:
        return list(await asyncio.gather(*(one(api, n) for n in names)))


def agreed_policy() -> Policy:
    # Delivery of goods for 7 days: the starter terms agree without asking the person.
    return request_policy(["pd:EmailAddress"], purpose="dpv:DeliveryOfGoods",
                          duration=timedelta(days=7))


async def negotiate(vendors: Sequence[tuple[VendorAgent, AgentInfo]], count: int,
                    done: list[int]) -> None:
    """``count`` approved requests, the vendors asking at once, each one after another."""
    numbers = iter(range(count))

    async def asker(vendor: VendorAgent, info: AgentInfo) -> None:
        for _ in numbers:
            view = await vendor.request(info, agreed_policy())
            if view.state is not State.AGREED:
                raise RuntimeError(f"a request was not agreed: {view.document}")
            done[0] += 1

    await asyncio.gather(*(asker(v, i) for v, i in vendors))


async def run(negotiations: int, vendor_count: int, runs: int) -> list[tuple[str, str]]:
    walls, help_peak, help_modules = help_runs(runs)
    rows: list[tuple[str, str]] = [
        (f"vrm-agent --help: wall time, median of {runs}", f"{statistics.median(walls):.2f} s"),
        ("vrm-agent --help: peak RSS, modules", f"{help_peak / 1024:.1f} MB, "
         f"{help_modules} modules"),
    ]
    folder = Path(tempfile.mkdtemp(prefix="vrm-bench-memory-"))
    with local_css(Flavour.WAC) as server:
        names = [f"v{i}" for i in range(vendor_count)]
        person, *accounts = await create_accounts(server.base_url, ["carol", *names])
        async with PodClient(person.credentials) as own:
            ledger = Ledger(own, person.pod)
            await ledger.create(ContactUnit("email-home", "email", "carol@example.org"))
            await asyncio.gather(*(ledger.create(Vendor(n, n.title(), webid=a.webid))
                                   for n, a in zip(names, accounts, strict=True)))
        config = folder / "config.json"
        login(config, person)
        clients = [PodClient(a.credentials) for a in accounts]
        try:
            for client in clients:
                await client.open()
            await asyncio.gather(*(c.login() for c in clients))
            # The first start on a new pod writes the starter terms; every later one reads them.
            with daemon(config) as (agent, _):
                await asyncio.sleep(1.0)
                first_start = memory_of(agent.pid, agent.log)
            with daemon(config) as (agent, started):
                await asyncio.sleep(1.0)  # the background work's first round, as after any start
                at_start = memory_of(agent.pid, agent.log)
                vendors = [VendorAgent(c) for c in clients]
                infos = await asyncio.gather(*(v.discover(person.webid) for v in vendors))
                pairs = list(zip(vendors, infos, strict=True))
                done = [0]
                await negotiate(pairs[:1], 1, done)
                after_one = memory_of(agent.pid, agent.log)
                begin = time.perf_counter()
                half = negotiations // 2
                await negotiate(pairs, half - 1, done)
                at_half = memory_of(agent.pid, agent.log)
                await negotiate(pairs, negotiations - half, done)
                took = time.perf_counter() - begin
                await asyncio.sleep(2.0)  # audit entries queued after the answers go out
                after_all = memory_of(agent.pid, agent.log)
        finally:
            for client in clients:
                await client.close()
    return [
        *rows,
        ("daemon: RSS after its first start on the pod (starter terms written)",
         str(first_start)),
        ("daemon: start to /health answering", f"{started:.2f} s"),
        ("daemon: RSS after start", str(at_start)),
        ("daemon: RSS after its first approved request", str(after_one)),
        (f"daemon: RSS after {half:,} approved requests", str(at_half)),
        (f"daemon: RSS after {done[0]:,} approved requests", str(after_all)),
        (f"{done[0]:,} approved requests from {vendor_count} vendors at once",
         f"{took:.1f} s ({done[0] / took:.1f}/s)"),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--negotiations", type=int, default=1000)
    parser.add_argument("--vendors", type=int, default=16,
                        help="vendor accounts, asking at the same time")
    parser.add_argument("--help-runs", type=int, default=5)
    args = parser.parse_args()
    if args.negotiations < 2:
        parser.error("--negotiations must be at least 2")
    rows = asyncio.run(run(args.negotiations, args.vendors, args.help_runs))
    print_table("Daemon memory on one local CSS 7.2.0 (WAC)", rows)


if __name__ == "__main__":
    main()

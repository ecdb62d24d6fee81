"""Expiry on time whatever the history: how late a vendor's access ends (from the grant's end
to the vendor's first 403, polled with its own token) with 0, 1,000 and 10,000 negotiation
records in the pod, when the daemon's loop ends it and when the CLI's detached keeper does.

    .venv/bin/python -m benchmarks.expiry [--flavour wac|acp] [--samples 3] [--levels 0,1000,10000]

The agent runs as real processes (`vrm-agent run`, `vrm-agent share`, the keeper), as a person
runs them. The records are copies of a real refused request's record, written 16 at a time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

from benchmarks.common import local_css, print_table
from vrm_agent.access.service import AccessControl
from vrm_agent.daemon.expiry import keeper_pid
from vrm_agent.ledger.layout import PodLayout
from vrm_agent.ledger.records import ContactUnit
from vrm_agent.ledger.store import Ledger
from vrm_agent.pod import PodClient
from vrm_agent.podserver import AccountApi, Flavour, PodAccount
from vrm_agent.podserver.process import free_port
from vrm_agent.vendor import VendorAgent, request_policy

GRANT_SECONDS = 5
BODY = '<#it> <http://schema.org/name> "shared".'


def cli(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([sys.executable, "-m", "vrm_agent.cli.main", *args,
                             "--config", str(config)], capture_output=True, text=True,
                            stdin=subprocess.DEVNULL, check=False, timeout=120)
    if result.returncode != 0:
        raise RuntimeError(f"vrm-agent {' '.join(args)} failed: {result.stderr}")
    return result


@contextmanager
def daemon(config: Path) -> Iterator[str]:
    port = free_port()
    log = config.with_name("agent.log")
    with open(log, "a") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "vrm_agent.cli.main", "run", "--port", str(port),
             "--config", str(config)], stdout=out, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL)
    url = f"http://localhost:{port}/"
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the agent did not start:\n" + log.read_text()[-2000:])
            try:
                with urllib.request.urlopen(url + "health", timeout=1):
                    break
            except OSError:
                time.sleep(0.2)
        while keeper_pid(config) != process.pid:  # a keeper may hold the work until it leaves
            time.sleep(0.2)
        yield url
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


async def first_403(vendor: PodClient, url: str, until: datetime) -> float:
    """Seconds from ``until`` to the vendor's first 403 (negative: access ended early)."""
    while True:
        if (await vendor.request("GET", url, expect_ok=False)).status == 403:
            return (datetime.now(UTC) - until).total_seconds()
        await asyncio.sleep(0.02)


async def write_records(person: PodAccount, template: dict[str, object], start: int,
                        stop: int) -> float:
    began = time.monotonic()
    async with PodClient(person.credentials, concurrency=16) as pod:
        base = PodLayout(person.pod).container("negotiations")
        numbers = iter(range(start, stop))

        async def writer() -> None:
            for number in numbers:
                record_id = f"bulk{number:06d}"
                body = json.dumps(template).replace(str(template["id"]), record_id)
                await pod.put(base + record_id, body, content_type="application/ld+json")

        await asyncio.gather(*(writer() for _ in range(16)))
    return time.monotonic() - began


def spread(samples: list[float]) -> str:
    return (f"median {statistics.median(samples) * 1000:.0f} ms, "
            f"max {max(samples) * 1000:.0f} ms")


async def run(flavour: Flavour, samples: int, levels: list[int]) -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = []
    with local_css(flavour) as server:
        async with AccountApi(server.base_url) as api:
            person = await api.create_pod_account("alice", "alice@example.org", "alice-secret-1")
            acme = await api.create_pod_account("acme", "acme@example.org", "acme-secret-1")
        config = Path(tempfile.mkdtemp(prefix="vrm-bench-expiry-")) / "config.json"
        cli(config, "login", "--webid", person.webid, "--client-id", person.client_id,
            "--client-secret", person.client_secret)
        async with PodClient(person.credentials) as pod, PodClient(acme.credentials) as vendor:
            email = await Ledger(pod, person.pod).create(
                ContactUnit("email-home", "email", "alice@example.org"))
            access = AccessControl(pod, owner_webid=person.webid, storage=person.pod)
            agent_vendor = VendorAgent(vendor)
            with daemon(config):
                info = await agent_vendor.discover(person.webid)
                refused = await agent_vendor.request(info, request_policy(
                    ["pd:EmailAddress"], purpose="dpv:DirectMarketing"))
            record_id = refused.url.rsplit("/", 1)[-1]
            template = (await pod.get(PodLayout(person.pod).resource(
                "negotiations", record_id))).json()
            written = 0
            for level in levels:
                if level > written:
                    took = await write_records(person, template, written, level)
                    rows.append((f"writing records {written:,} to {level:,} (16 at a time)",
                                 f"{took:.1f} s ({(level - written) / took:.0f}/s)"))
                    written = level
                agreements, shares, kept = [], [], []
                with daemon(config):
                    info = await agent_vendor.discover(person.webid)
                    for sample in range(samples):
                        view = await agent_vendor.request(info, request_policy(
                            ["pd:EmailAddress"], purpose="dpv:DeliveryOfGoods",
                            duration=timedelta(seconds=GRANT_SECONDS)))
                        entry = (await access.index()).entries[view.url.rsplit("/", 1)[-1]]
                        agreements.append(await first_403(vendor, email, entry.expires))
                        url = f"{person.pod}bench/d{level}-{sample}"
                        await pod.put(url, BODY, content_type="text/turtle")
                        shared = json.loads(cli(config, "share", url, "--with", acme.webid,
                                                "--for", f"{GRANT_SECONDS}s", "--json").stdout)
                        until = datetime.fromisoformat(shared["expires"].replace("Z", "+00:00"))
                        shares.append(await first_403(vendor, url, until))
                for sample in range(samples):
                    url = f"{person.pod}bench/k{level}-{sample}"
                    await pod.put(url, BODY, content_type="text/turtle")
                    shared = json.loads(cli(config, "share", url, "--with", acme.webid,
                                            "--for", f"{GRANT_SECONDS}s", "--json").stdout)
                    until = datetime.fromisoformat(shared["expires"].replace("Z", "+00:00"))
                    kept.append(await first_403(vendor, url, until))
                pid = keeper_pid(config)
                if pid:
                    deadline = time.monotonic() + 10
                    while keeper_pid(config) and time.monotonic() < deadline:
                        await asyncio.sleep(0.2)  # it leaves once no grant is left
                    if keeper_pid(config):
                        os.kill(pid, signal.SIGTERM)
                rows += [
                    (f"{level:,} records, agreement, daemon loop: lateness of {samples}",
                     spread(agreements)),
                    (f"{level:,} records, share, daemon loop: lateness of {samples}",
                     spread(shares)),
                    (f"{level:,} records, share, CLI keeper: lateness of {samples}",
                     spread(kept)),
                ]
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--flavour", choices=["wac", "acp"], default="wac")
    parser.add_argument("--samples", type=int, default=3)
    parser.add_argument("--levels", default="0,1000,10000",
                        help="negotiation records in the pod, comma-separated, increasing")
    args = parser.parse_args()
    flavour = Flavour(args.flavour)
    levels = [int(x) for x in args.levels.split(",")]
    rows = asyncio.run(run(flavour, args.samples, levels))
    print_table(f"Expiry lateness on one local CSS 7.2.0 ({flavour.value.upper()})", rows)


if __name__ == "__main__":
    main()

"""A change of address reaching the vendors that hold it: how long `vrm-agent contact set` takes
with N vendors whose agreements share the address, and how soon each vendor hears of it from the
pod (its webhook channel) and from the agent (its signed message), reads the new value and says
so.

    .venv/bin/python -m benchmarks.change_of_address [--flavour wac|acp] [--vendors 1,5,10]
                                                     [--samples 3]

A real `vrm-agent run` process on a local CSS; every vendor is a real account with an inbox and a
follower of its own (vrm_agent.vendor), all in this process. Times are from the start of the
command: "heard" is when a vendor's inbox or follower took the notice, "acknowledged" when its
DataReadMessage was answered. The command is a new process each time (Python start and login
included), as a person runs it.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from benchmarks.common import local_css, percentile, print_table
from vrm_agent.ledger.records import ContactUnit
from vrm_agent.ledger.store import Ledger
from vrm_agent.negotiation.protocol import State
from vrm_agent.pod.client import PodClient
from vrm_agent.podserver import AccountApi, Flavour, PodAccount
from vrm_agent.podserver.process import free_port
from vrm_agent.vendor import ChangeFollower, Inbox, VendorAgent, request_policy


def cli(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "vrm_agent.cli.main", *args, "--config",
                           str(config)], capture_output=True, text=True, check=True)


def start_agent(person: PodAccount, folder: Path) -> tuple[subprocess.Popen[str], Path, str]:
    config = folder / "config.json"
    cli(config, "login", "--webid", person.webid, "--client-id", person.client_id,
        "--client-secret", person.client_secret)
    port = free_port()
    log = open(folder / "agent.log", "w")  # noqa: SIM115 - kept open for the process's life
    process = subprocess.Popen([sys.executable, "-m", "vrm_agent.cli.main", "run", "--port",
                                str(port), "--config", str(config)], stdout=log,
                               stderr=subprocess.STDOUT, text=True)
    url = f"http://localhost:{port}/"
    import urllib.request

    for _ in range(150):
        try:
            with urllib.request.urlopen(url + "health", timeout=1):
                return process, config, url
        except OSError:
            time.sleep(0.2)
    process.terminate()
    raise RuntimeError("the agent did not start")


async def heard_of(inbox: Inbox, follower: ChangeFollower, started: float
                   ) -> tuple[float, float, float]:
    """When one vendor got the pod's webhook, the agent's message, and had acknowledged: the
    first of each to arrive after ``started`` (the command is under way meanwhile)."""
    seen_observed, seen_received = len(follower.observed), len(inbox.received)

    async def webhook() -> float:
        await follower.wait_for(lambda o: follower.observed.index(o) >= seen_observed
                                and o.via == "pod notification")
        return time.monotonic() - started

    async def message() -> tuple[float, float]:
        heard = await inbox.wait_for(lambda n: inbox.received.index(n) >= seen_received
                                     and n.type == "DataChangedMessage")
        arrived = time.monotonic() - started
        await follower.on_message(heard)
        return arrived, time.monotonic() - started

    pod, (agent, ack) = await asyncio.gather(webhook(), message())
    return pod, agent, ack


async def measure(base_url: str, counts: list[int], samples: int) -> list[tuple[str, str]]:
    most = max(counts)
    async with AccountApi(base_url) as api:
        person = await api.create_pod_account("mover-bench", "mb@example.org", "secret-mb-0123")
        accounts = [await api.create_pod_account(f"mover-bench-shop-{n}", f"mb{n}@example.org",
                                                 f"secret-mb{n}-0123") for n in range(most)]
    async with PodClient(person.credentials) as pod:
        await Ledger(pod, person.pod).create(ContactUnit(
            "address-home", "address", "1 Old Street", locality="Oldtown", country="DE"))
    address = f"{person.pod}vrm/contact/address-home"
    folder = Path(tempfile.mkdtemp(prefix="vrm-bench-move-"))
    process, config, _ = start_agent(person, folder)
    rows: list[tuple[str, str]] = []
    vendors: list[tuple[VendorAgent, Inbox, ChangeFollower, PodClient]] = []
    try:
        for account in accounts:
            pod = PodClient(account.credentials)
            await pod.open()
            inbox = Inbox()
            await inbox.start()
            vendor = VendorAgent(pod, inbox=inbox)
            follower = ChangeFollower(vendor)
            await follower.start()
            vendors.append((vendor, inbox, follower, pod))
        agreed = 0
        for count in counts:
            while agreed < count:  # the next vendor agrees and follows the address
                vendor, _, follower, _ = vendors[agreed]
                agent = await vendor.discover(person.webid)
                view = await vendor.verify(await vendor.request(agent, request_policy(
                    ["pd:PhysicalAddress"], purpose="dpv:DeliveryOfGoods",
                    duration=timedelta(days=1))))
                assert view.state is State.FINALIZED
                await follower.follow(view, address)
                agreed += 1
            commands, webhooks, messages, acks = [], [], [], []
            for sample in range(samples):
                started = time.monotonic()
                waits = [asyncio.create_task(heard_of(inbox, follower, started))
                         for _, inbox, follower, _ in vendors[:count]]
                await asyncio.to_thread(cli, config, "contact", "set", "address-home",
                                        f"{count}-{sample} New Avenue")
                commands.append(time.monotonic() - started)
                timings = await asyncio.gather(*waits)
                for webhook, message, ack in timings:
                    webhooks.append(webhook)
                    messages.append(message)
                    acks.append(ack)

            def spread(values: list[float]) -> str:
                return (f"median {sorted(values)[len(values) // 2] * 1000:.0f} ms, "
                        f"p90 {percentile(values, 0.9) * 1000:.0f} ms")

            rows += [(f"{count} vendor(s): contact set, whole command", spread(commands)),
                     (f"{count} vendor(s): pod webhook arrived", spread(webhooks)),
                     (f"{count} vendor(s): agent's message arrived (the command "
                      "delivers it)", spread(messages)),
                     (f"{count} vendor(s): read again and acknowledged", spread(acks))]
    finally:
        for _, inbox, follower, pod in vendors:
            await follower.stop()
            await inbox.stop()
            await pod.close()
        process.terminate()
        process.wait(timeout=20)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--flavour", choices=["wac", "acp"], default="wac")
    parser.add_argument("--vendors", default="1,5,10")
    parser.add_argument("--samples", type=int, default=5)
    args = parser.parse_args()
    counts = sorted({int(c) for c in args.vendors.split(",")})
    with local_css(Flavour(args.flavour)) as server:
        rows = asyncio.run(measure(server.base_url, counts, args.samples))
    print_table(f"Change of address ({args.flavour}, times from the start of `contact set`)",
                rows)


if __name__ == "__main__":
    main()

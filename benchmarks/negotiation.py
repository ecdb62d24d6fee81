"""An approved request end to end: from a vendor's request to its first successful read of what
was granted, the person's pod round trips the agent spends on it, and many vendors asking at once.

The agent runs in this process, built from the same pieces as ``serve()``, so every pod request it
makes can be attributed to the vendor request that caused it and timed against its answer.

    .venv/bin/python -m benchmarks.negotiation [--flavour wac|acp] [--samples 20] [--burst 100]
                                               [--timeline]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from aiohttp import web

from benchmarks.common import local_css, percentile, print_table
from vrm_agent.access.service import AccessControl
from vrm_agent.config import Config
from vrm_agent.daemon.server import assembled
from vrm_agent.ledger.records import ContactUnit, Vendor
from vrm_agent.ledger.store import Ledger
from vrm_agent.negotiation.odrl import Policy
from vrm_agent.negotiation.protocol import State
from vrm_agent.pod import ClientCredentials, PodClient, PodResponse
from vrm_agent.podserver import AccountApi, Flavour, PodAccount
from vrm_agent.podserver.process import free_port
from vrm_agent.vendor import AgentInfo, NegotiationView, VendorAgent, request_policy

BODY = '<#it> <http://schema.org/name> "bare".'
# Which incoming agent request a pod request serves; tasks the handler starts inherit it.
CAUSE: ContextVar[int | None] = ContextVar("cause", default=None)


def agreed_policy() -> Policy:
    # Service delivery within 90 days: the starter terms agree without asking the person.
    return request_policy(["pd:EmailAddress"], purpose="dpv:DeliveryOfGoods",
                          duration=timedelta(days=7))


def refused_policy() -> Policy:
    return request_policy(["pd:EmailAddress"], purpose="dpv:DirectMarketing")


@dataclass(frozen=True)
class Sent:
    cause: int | None
    method: str
    url: str
    start: float
    end: float
    status: int | None  # None: no answer


@dataclass
class Served:
    method: str
    path: str
    arrived: float
    answered: float = 0.0
    status: int = 0


class TracedPodClient(PodClient):
    """A PodClient that logs each request it sends, with its cause and its start and end."""

    def __init__(self, credentials: ClientCredentials | None = None) -> None:
        super().__init__(credentials)
        self.sent: list[Sent] = []

    async def _send(self, method: str, url: str, headers: Mapping[str, str], data: bytes | None,
                    *, retry: bool, proof: Callable[[], str] | None = None) -> PodResponse:
        start, status = time.perf_counter(), None
        try:
            response = await super()._send(method, url, headers, data, retry=retry, proof=proof)
            status = response.status
            return response
        finally:
            self.sent.append(Sent(CAUSE.get(), method, url, start, time.perf_counter(), status))


@dataclass
class Agent:
    url: str
    pod: TracedPodClient
    anonymous: TracedPodClient
    access: AccessControl
    served: dict[int, Served]


def observer(served: dict[int, Served]) -> Callable[..., Awaitable[web.StreamResponse]]:
    numbers = itertools.count()

    @web.middleware
    async def observe(request: web.Request,
                      handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
                      ) -> web.StreamResponse:
        number = next(numbers)
        served[number] = Served(request.method, request.path, time.perf_counter())
        token = CAUSE.set(number)
        try:
            response = await handler(request)
            served[number].status = response.status
            return response
        finally:
            served[number].answered = time.perf_counter()
            CAUSE.reset(token)

    return observe


@asynccontextmanager
async def running_agent(person: PodAccount, folder: Path) -> AsyncIterator[Agent]:
    """The daemon as ``serve()`` assembles it, on a free localhost port, in this event loop."""
    config = Config(path=folder / "config.json")
    config.set_credentials(person.credentials)
    port = free_port()
    public_url = f"http://localhost:{port}/"
    async with TracedPodClient(person.credentials) as pod, TracedPodClient() as anonymous:
        await pod.login()
        async with assembled(config, pod, anonymous, public_url=public_url) as (app, service):
            served: dict[int, Served] = {}
            app.middlewares.append(observer(served))
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            await web.TCPSite(runner, "localhost", port).start()
            try:
                yield Agent(public_url, pod, anonymous, service.access, served)
            finally:
                await runner.cleanup()


@asynccontextmanager
async def vendor_session(account: PodAccount, person: str) -> AsyncIterator[
        tuple[VendorAgent, AgentInfo]]:
    async with PodClient(account.credentials) as pod:
        await pod.login()  # the token is had before any timer starts
        vendor = VendorAgent(pod)
        yield vendor, await vendor.discover(person)


async def reads_until_200(vendor: VendorAgent, url: str, limit: int = 100) -> int:
    for polls in range(1, limit + 1):
        if (await vendor.read(url)).status == 200:
            return polls
    raise RuntimeError(f"no 200 on {url} after {limit} reads")


def sequential_depth(requests: Sequence[Sent]) -> int:
    """Round trips one after another: the most requests of which none overlaps another."""
    depth, free_at = 0, float("-inf")
    for sent in sorted(requests, key=lambda s: s.end):
        if sent.start >= free_at:
            depth, free_at = depth + 1, sent.end
    return depth


def by_folder(requests: Sequence[Sent], pod_root: str) -> str:
    """Counts by what was read or written: the vrm/ folder, or access-control documents."""
    def folder(url: str) -> str:
        path = url.removeprefix(pod_root)
        if path.endswith((".acl", ".acr")):
            return "access control"
        return path.split("/")[1] if path.startswith("vrm/") else "other"

    counts = Counter(folder(s.url) for s in requests)
    return ", ".join(f"{name} {n}" for name, n in counts.most_common())


def by_method(requests: Sequence[Sent]) -> str:
    counts = Counter(s.method for s in requests)
    return ", ".join(f"{m} {n}" for m, n in sorted(counts.items()))


def spread(values: Sequence[int]) -> str:
    low, high = min(values), max(values)
    return str(low) if low == high else f"{low}-{high}"


@dataclass(frozen=True)
class Trace:
    """What the agent sent to pods for one incoming request, split at its answer."""

    before: list[Sent]
    after: list[Sent]
    verifier: list[Sent]

    @property
    def depth(self) -> int:
        return sequential_depth(self.before)


def trace_of(agent: Agent, number: int) -> Trace:
    answered = agent.served[number].answered
    mine = [s for s in agent.pod.sent if s.cause == number]
    return Trace([s for s in mine if s.end <= answered], [s for s in mine if s.end > answered],
                 [s for s in agent.anonymous.sent if s.cause == number])


def last_request(agent: Agent, since: int) -> int:
    return max(n for n, s in agent.served.items()
               if n >= since and s.method == "POST" and s.path == "/negotiations")


def timeline(agent: Agent, number: int, pod_root: str) -> list[str]:
    arrived = agent.served[number].arrived
    trace = trace_of(agent, number)
    lines = [f"{'':>8} {'':>8}  request arrives at the agent (0.0 ms), answered at "
             f"{(agent.served[number].answered - arrived) * 1000:.1f} ms"]
    for sent in sorted(trace.before + trace.after + trace.verifier, key=lambda s: s.start):
        where = "verifier" if sent in trace.verifier else "answer" if sent in trace.before \
            else "after"
        lines.append(f"{(sent.start - arrived) * 1000:8.1f} {(sent.end - arrived) * 1000:8.1f}"
                     f"  {sent.method:<6} {sent.url.replace(pod_root, '<pod>/'):<48} {where}")
    return lines


async def create_accounts(base_url: str, names: Sequence[str]) -> list[PodAccount]:
    gate = asyncio.Semaphore(4)  # CSS does its account work on one core; more only queues

    async def one(api: AccountApi, name: str) -> PodAccount:
        async with gate:
            return await api.create_pod_account(name, f"{name}@example.org", f"secret-{name}-1")

    async with AccountApi(base_url) as api:
        return list(await asyncio.gather(*(one(api, n) for n in names)))


def ms(values: Sequence[float], q: float) -> str:
    return f"{percentile(values, q) * 1000:.0f} ms"


async def run(flavour: Flavour, samples: int, burst: int, show_timeline: bool,
              ) -> list[tuple[str, str]]:
    folder = Path(tempfile.mkdtemp(prefix="vrm-bench-agent-"))
    with local_css(flavour) as server:
        start = time.perf_counter()
        names = ["warm", "refused", *(f"s{i}" for i in range(samples)),
                 *(f"b{i}" for i in range(burst))]
        person, *accounts = await create_accounts(server.base_url, ["carol", *names])
        vendors = dict(zip(names, accounts, strict=True))
        async with PodClient(person.credentials) as own:
            ledger = Ledger(own, person.pod)
            email = await ledger.create(ContactUnit("email-home", "email", "carol@example.org"))
            await asyncio.gather(*(ledger.create(Vendor(n, n.title(), webid=a.webid))
                                   for n, a in vendors.items()))
        setup_s = time.perf_counter() - start
        print(f"{len(names) + 1} accounts and ledger entries made in {setup_s:.1f} s")

        # The baseline client is the person's but not the agent's: it queues behind nothing.
        async with PodClient(person.credentials) as bare, running_agent(person, folder) as agent:
            await bare.login()
            # The first request after start finds the email's access-control document; measured
            # alone, so the samples show the steady state.
            mark = len(agent.served)
            async with vendor_session(vendors["warm"], person.webid) as (vendor, info):
                view = await vendor.request(info, agreed_policy())
                if view.state is not State.AGREED:
                    raise RuntimeError(f"first request not agreed: {view.document}")
                await reads_until_200(vendor, email)
            cold = trace_of(agent, last_request(agent, mark))

            bare_put, bare_get, answered, first_200, polls, traces = [], [], [], [], [], []
            bare_url = person.pod + "bench/bare"
            window = len(agent.pod.sent)
            for i in range(samples):
                # Same run, same server load as the negotiations.
                begin = time.perf_counter()
                await bare.put(bare_url, BODY, content_type="text/turtle")
                bare_put.append(time.perf_counter() - begin)
                begin = time.perf_counter()
                await bare.get(bare_url)
                bare_get.append(time.perf_counter() - begin)
                async with vendor_session(vendors[f"s{i}"], person.webid) as (vendor, info):
                    if (await vendor.read(email)).status != 403:
                        raise RuntimeError("a fresh vendor could read before asking")
                    mark = len(agent.served)
                    begin = time.perf_counter()
                    view = await vendor.request(info, agreed_policy())
                    answered.append(time.perf_counter() - begin)
                    if view.state is not State.AGREED:
                        raise RuntimeError(f"sample {i} not agreed: {view.document}")
                    polls.append(await reads_until_200(vendor, email))
                    first_200.append(time.perf_counter() - begin)
                    traces.append(last_request(agent, mark))
            await asyncio.sleep(0.5)  # anything the samples left running ends before counting
            sample_traces = [trace_of(agent, n) for n in traces]
            background = [s for s in agent.pod.sent[window:] if s.cause is None]
            if show_timeline:
                print(f"\nOne sample ({flavour.value}): start, end (ms from arrival), request")
                print("\n".join(timeline(agent, traces[-1], person.pod)))

            burst_rows = await run_burst(agent, vendors, person, email, burst)

    before = Counter(len(t.before) for t in sample_traces)
    depth = Counter(t.depth for t in sample_traces)
    typical = max(sample_traces, key=lambda t: before[len(t.before)])
    return [
        (f"bare pod PUT (person's own client), p50 of {samples}", ms(bare_put, 0.5)),
        (f"bare pod PUT (person's own client), p99 of {samples}", ms(bare_put, 0.99)),
        (f"bare pod GET (person's own client), p50 of {samples}", ms(bare_get, 0.5)),
        (f"vendor request to the agent's answer, p50 of {samples}", ms(answered, 0.5)),
        (f"vendor request to the agent's answer, p99 of {samples}", ms(answered, 0.99)),
        (f"vendor request to its first 200, p50 of {samples}", ms(first_200, 0.5)),
        (f"vendor request to its first 200, p99 of {samples}", ms(first_200, 0.99)),
        ("vendor GETs until the first 200 (max)", str(max(polls))),
        ("pod requests per approved request", f"{len(typical.before) + len(typical.after)} "
         f"({by_method(typical.before + typical.after)})"),
        ("  of them before the answer", spread([len(t.before) for t in sample_traces])),
        ("  of them one after another before the answer", spread([t.depth for t in sample_traces])
         + f" (of {samples}: " + ", ".join(f"{k}: {v}" for k, v in sorted(depth.items())) + ")"),
        ("  of them after the answer", spread([len(t.after) for t in sample_traces])),
        ("vendor WebID profile reads to authenticate (first contact)",
         spread([len(t.verifier) for t in sample_traces])),
        ("agent's background pod requests during the samples",
         f"{len(background)} ({by_method(background)}: {by_folder(background, person.pod)})"
         if background else "0"),
        ("first request after start: pod requests before the answer",
         f"{len(cold.before)} ({by_method(cold.before)}), {cold.depth} one after another"),
        *burst_rows,
    ]



async def run_burst(agent: Agent, vendors: Mapping[str, PodAccount], person: PodAccount,
                    email: str, burst: int) -> list[tuple[str, str]]:
    """``burst`` distinct vendors ask at once, and one more asks for what the terms refuse."""
    names = [f"b{i}" for i in range(burst)]
    clients = [PodClient(vendors[n].credentials) for n in [*names, "refused"]]
    try:
        for client in clients:
            await client.open()
        await asyncio.gather(*(c.login() for c in clients))
        agents = [VendorAgent(c) for c in clients]
        infos = await asyncio.gather(*(a.discover(person.webid) for a in agents))
        writes = agent.access.writes
        counts = agent.pod.request_counts.copy()
        mark, first = len(agent.pod.sent), len(agent.served)
        begin = time.perf_counter()
        results: list[NegotiationView | BaseException] = await asyncio.gather(
            *(a.request(i, agreed_policy()) for a, i in zip(agents[:-1], infos, strict=False)),
            agents[-1].request(infos[-1], refused_policy()), return_exceptions=True)
        wall = time.perf_counter() - begin
        # A vendor that gave up (its client's 30 s timeout) leaves the agent still working.
        ours = list(agent.served.values())[first:]
        while not all(s.answered for s in ours):
            await asyncio.sleep(0.1)
        slowest = max(s.answered for s in ours) - begin
        statuses = Counter(s.status for s in ours)
        await asyncio.sleep(0.5)  # requests under way at the end are logged when they end
        burst_writes = agent.access.writes - writes
        sent = sum((agent.pod.request_counts - counts).values())
        during = [s for s in agent.pod.sent[mark:] if s.start >= begin]
        caused = [s for s in during if s.cause is not None]
        background = [s for s in during if s.cause is None]
        audit = sum(s.method == "PATCH" and "/vrm/audit/" in s.url for s in caused)
        agreed = sum(isinstance(r, NegotiationView) and r.state is State.AGREED
                     for r in results[:-1])
        gave_up = Counter(type(r).__name__ for r in results if isinstance(r, BaseException))
        reads = await asyncio.gather(*(a.read(email) for a in agents[:-1]))
        refused = results[-1]
        refused_state = refused.state.value if isinstance(refused, NegotiationView) \
            else type(refused).__name__
        refused_read = (await agents[-1].read(email)).status
    finally:
        for client in clients:
            await client.close()
    return [
        (f"{burst} vendors at once: time until each had its answer", f"{wall:.2f} s"),
        (f"{burst} vendors at once: answered AGREED", str(agreed)),
        (f"{burst} vendors at once: gave up waiting (30 s client timeout)",
         ", ".join(f"{n} ({kind})" for kind, n in gave_up.items()) or "0"),
        (f"{burst} vendors at once: agent's slowest answer", f"{slowest:.2f} s"),
        (f"{burst + 1} requests (the refused one too): agent's answers", ", ".join(
            f"HTTP {code}: {n}" for code, n in sorted(statuses.items()))),
        (f"{burst} vendors at once: first read 200", f"{sum(r.status == 200 for r in reads)}"),
        (f"{burst} vendors at once: ACL document writes", str(burst_writes)),
        (f"{burst} vendors at once: agent's pod requests", str(sent)),
        ("  of them for the requests", f"{len(caused)} ({by_method(caused)})"),
        ("  of them appends to the day's audit document", str(audit)),
        ("  of them in the background", f"{len(background)} ({by_method(background)}: "
         f"{by_folder(background, person.pod)})" if background else "0"),
        ("  of them failed (5xx or no answer, after retries)",
         str(sum(s.status is None or s.status >= 500 for s in during))),
        ("refused vendor in the same burst: state, read", f"{refused_state}, {refused_read}"),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--flavour", choices=["wac", "acp"], default="wac")
    parser.add_argument("--samples", type=int, default=20)
    parser.add_argument("--burst", type=int, default=100)
    parser.add_argument("--timeline", action="store_true",
                        help="print the pod requests of one sample against its answer")
    args = parser.parse_args()
    flavour = Flavour(args.flavour)
    rows = asyncio.run(run(flavour, args.samples, args.burst, args.timeline))
    print_table(f"Negotiation on one local CSS 7.2.0 ({flavour.value.upper()})", rows)


if __name__ == "__main__":
    main()

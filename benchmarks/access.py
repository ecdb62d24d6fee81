"""Grant and revoke side by side on one local CSS, in one run: a minimal hand-written client
(RAW, the floor), vrm-agent's access layer as the daemon runs it, and Inrupt's
``@inrupt/solid-client`` 3.0.0 ``universalAccess`` (driven from a long-lived Node process; left
out when Node is not installed). Rounds are interleaved, the order rotating, so the machine's
drift falls on every client alike.

    .venv/bin/python -m benchmarks.access [--flavour wac|acp|both] [--samples 20]
                                          [--grants 10000] [--burst 100]

Each client works on its own resources, at the same depth below the pod root
(``<pod>bench/<client>/...``), the vendor's WebID being a second real account:

* **grant, fresh**: the resource has no access-control document yet; timed from the call to the
  vendor's first 200 (its own GETs, polled);
* **grant, owner-only document exists**: another tool left an owner-only document;
* **revoke**: from the call to the vendor's first 403, on the fresh resource and on one of the
  "seeded" kind while the client governs 30 other resources;
* **with N grants in force** (``--grants``): vrm-agent's grant and revoke on a fresh resource
  again, after N grants (10 vendors on each of N/10 resources) were made and indexed.

Requests are the client's own, counted during the timed call (the vendor's polls apart); for
vrm-agent they are split into access-control documents, the grant index and the audit log.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from benchmarks import inrupt_driver
from benchmarks.common import local_css, print_table
from vrm_agent.access.documents import AccessDocumentFormat
from vrm_agent.access.service import AccessControl
from vrm_agent.pod import PodClient, PodResponse
from vrm_agent.podserver import AccountApi, Flavour

BODY = '<#it> <http://schema.org/name> "shared".'
GOVERNED = 30  # other resources each client governs before the seeded revokes


class CountingPod(PodClient):
    """The owner's pod client, noting every request it sends."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sent: list[tuple[str, str]] = []

    async def request(self, method: str, url: str, **kwargs: Any) -> PodResponse:
        self.sent.append((method.upper(), url))
        return await super().request(method, url, **kwargs)


@dataclass
class Sample:
    seconds: float
    requests: int
    detail: Counter[str] = field(default_factory=Counter)


Measures = dict[str, list[Sample]]


async def first_status(vendor: PodClient, url: str, wanted: int) -> None:
    while (await vendor.request("GET", url, expect_ok=False)).status != wanted:
        await asyncio.sleep(0)


# -- the floor: a hand-written client -------------------------------------------------------------


class RawClient:
    """What a careful hand-written client does, and no more: HEAD for the ``rel="acl"`` link,
    then PUT the complete document (owner rule and vendor rule); a revoke PUTs the owner-only
    document again. It knows, as its author would, whether a document exists."""

    name = "RAW"

    def __init__(self, pod: CountingPod, owner: str, fmt: AccessDocumentFormat) -> None:
        self.pod, self.owner, self.fmt = pod, owner, fmt
        self.docs: dict[str, str] = {}

    def document(self, doc_url: str, resource: str, vendor: str | None) -> str:
        base = f"<{doc_url}#owner>"
        if self.fmt.name == "wac":
            rules = (f"{base} a <http://www.w3.org/ns/auth/acl#Authorization>; "
                     f"<http://www.w3.org/ns/auth/acl#agent> <{self.owner}>; "
                     f"<http://www.w3.org/ns/auth/acl#accessTo> <{resource}>; "
                     "<http://www.w3.org/ns/auth/acl#mode> <http://www.w3.org/ns/auth/acl#Read>, "
                     "<http://www.w3.org/ns/auth/acl#Write>, "
                     "<http://www.w3.org/ns/auth/acl#Control>.\n")
            if vendor:
                rules += (f"<{doc_url}#vendor> a <http://www.w3.org/ns/auth/acl#Authorization>; "
                          f"<http://www.w3.org/ns/auth/acl#agent> <{vendor}>; "
                          f"<http://www.w3.org/ns/auth/acl#accessTo> <{resource}>; "
                          "<http://www.w3.org/ns/auth/acl#mode> "
                          "<http://www.w3.org/ns/auth/acl#Read>.\n")
            return rules
        acp = "http://www.w3.org/ns/solid/acp#"
        controls = [("owner", self.owner, "<http://www.w3.org/ns/auth/acl#Read>, "
                     "<http://www.w3.org/ns/auth/acl#Write>, <http://www.w3.org/ns/auth/acl#Control>")]
        if vendor:
            controls.append(("vendor", vendor, "<http://www.w3.org/ns/auth/acl#Read>"))
        text = (f"<{doc_url}> a <{acp}AccessControlResource>; <{acp}resource> <{resource}>; "
                + "; ".join(f"<{acp}accessControl> <{doc_url}#{n}>" for n, _, _ in controls)
                + ".\n")
        for name, agent, modes in controls:
            text += (f"<{doc_url}#{name}> a <{acp}AccessControl>; <{acp}apply> "
                     f"<{doc_url}#{name}-p>.\n<{doc_url}#{name}-p> a <{acp}Policy>; "
                     f"<{acp}allow> {modes}; <{acp}allOf> <{doc_url}#{name}-m>.\n"
                     f"<{doc_url}#{name}-m> a <{acp}Matcher>; <{acp}agent> <{agent}>.\n")
        return text

    async def grant(self, resource: str, vendor: str, exists: bool) -> None:
        head = await self.pod.request("HEAD", resource)
        doc_url = head.links.acl
        assert doc_url is not None
        self.docs[resource] = doc_url
        headers = {"Content-Type": "text/turtle"}
        if exists:  # read it first, to write it back conditionally
            current = await self.pod.request("GET", doc_url, headers={"Accept": "text/turtle"})
            headers["If-Match"] = current.etag or "*"
        await self.pod.request("PUT", doc_url, headers=headers,
                               body=self.document(doc_url, resource, vendor))

    async def revoke(self, resource: str, vendor: str) -> None:
        doc_url = self.docs[resource]
        await self.pod.request("PUT", doc_url, headers={"Content-Type": "text/turtle"},
                               body=self.document(doc_url, resource, None))


# -- the three clients behind one face ----------------------------------------------------------


@dataclass
class Contender:
    name: str
    grant: Callable[[str, str, bool], Awaitable[None]]
    revoke: Callable[[str, str], Awaitable[None]]
    counted: Callable[[], tuple[int, Counter[str]]]  # requests so far, by kind


def _kinds(pod: CountingPod, storage: str) -> tuple[int, Counter[str]]:
    kinds: Counter[str] = Counter()
    for _, url in pod.sent:
        if url.startswith(storage + "vrm/grant-index/"):
            kinds["index"] += 1
        elif url.startswith(storage + "vrm/audit/"):
            kinds["audit"] += 1
        else:
            kinds["access"] += 1
    return len(pod.sent), kinds


async def timed(contender: Contender, vendor: PodClient, url: str, wanted: int,
                call: Awaitable[Any]) -> Sample:
    before, kinds_before = contender.counted()
    start = time.perf_counter()
    requests = await call
    await first_status(vendor, url, wanted)
    seconds = time.perf_counter() - start
    after, kinds_after = contender.counted()
    if isinstance(requests, int):  # Inrupt counts its own
        return Sample(seconds, requests, Counter({"access": requests}))
    return Sample(seconds, after - before, kinds_after - kinds_before)


async def run_flavour(flavour: Flavour, samples: int, grants_in_force: int,
                      burst: int) -> tuple[list[tuple[str, ...]], list[tuple[str, str]]]:
    results: dict[str, Measures] = {}
    with local_css(flavour) as server:
        async with AccountApi(server.base_url) as api:
            alice = await api.create_pod_account("alice", "alice@example.org", "alice-secret-1")
            acme = await api.create_pod_account("acme", "acme@example.org", "acme-secret-1")
        async with CountingPod(alice.credentials) as raw_pod, \
                CountingPod(alice.credentials) as agent_pod, \
                PodClient(alice.credentials) as setup, PodClient(acme.credentials) as vendor:
            for client in (raw_pod, agent_pod, setup, vendor):
                await client.login()
            access = AccessControl(agent_pod, owner_webid=alice.webid, storage=alice.pod,
                                   announce=False)
            await access.prepare()  # what the daemon reads at start
            _, fmt = await access.locate(alice.pod)
            raw = RawClient(raw_pod, alice.webid, fmt)
            until = datetime.now(UTC) + timedelta(hours=2)
            views: dict[str, str] = {}

            async def agent_grant(url: str, who: str, exists: bool) -> None:
                views[url] = (await access.grant(who, [url], ["Read"], until=until)).id

            async def agent_revoke(url: str, who: str) -> None:
                await access.revoke(views.pop(url))

            contenders = [
                Contender("RAW", raw.grant, raw.revoke, lambda: (len(raw_pod.sent), Counter())),
                Contender("vrm-agent", agent_grant, agent_revoke,
                          lambda: _kinds(agent_pod, alice.pod)),
            ]
            driver = None
            if inrupt_driver.available():
                driver = inrupt_driver.InruptDriver()
                await driver.start()
                await driver.login(alice.credentials)

                async def inrupt_grant(url: str, who: str, exists: bool) -> int:
                    assert driver is not None
                    result = await driver.grant(url, who)
                    if not result.ok or result.result is None:
                        raise RuntimeError(f"Inrupt's grant wrote nothing ({result.error})")
                    return result.requests

                async def inrupt_revoke(url: str, who: str) -> int:
                    assert driver is not None
                    return (await driver.revoke(url, who)).requests

                contenders.append(Contender("Inrupt", inrupt_grant, inrupt_revoke,  # type: ignore[arg-type]
                                            lambda: (0, Counter())))

            def folder(c: Contender) -> str:
                return f"{alice.pod}bench/{c.name.lower()}/"

            async def owner_only(url: str) -> None:
                doc_url, _ = await access.locate(url)
                await setup.put(doc_url, fmt.serialize(fmt.initial_document(
                    doc_url, url, alice.webid), doc_url), content_type="text/turtle")

            # Warm up each client on its own folder (a first grant reads what the folder
            # passes on; Node compiles its code), then let it govern 30 other resources.
            for c in contenders:
                for i in range(GOVERNED + 1):
                    url = f"{folder(c)}governed-{i}"
                    await setup.put(url, BODY, content_type="text/turtle")
                    if c.name == "Inrupt" and fmt.name == "acp":
                        await owner_only(url)  # it cannot grant where no .acr exists
                    await c.grant(url, acme.webid, False)
                    if i == 0:
                        await c.revoke(url, acme.webid)
            measures: dict[str, Measures] = {c.name: {} for c in contenders}
            for i in range(samples):
                order = contenders[i % len(contenders):] + contenders[:i % len(contenders)]
                for c in order:
                    m = measures[c.name]
                    fresh, seeded = f"{folder(c)}fresh-{i}", f"{folder(c)}seeded-{i}"
                    await setup.put(fresh, BODY, content_type="text/turtle")
                    await setup.put(seeded, BODY, content_type="text/turtle")
                    await owner_only(seeded)
                    if c.name == "Inrupt" and fmt.name == "acp":
                        m.setdefault("grant, fresh", [])
                        m.setdefault("revoke, fresh", [])
                    else:
                        m.setdefault("grant, fresh", []).append(await timed(
                            c, vendor, fresh, 200, c.grant(fresh, acme.webid, False)))
                        m.setdefault("revoke, fresh", []).append(await timed(
                            c, vendor, fresh, 403, c.revoke(fresh, acme.webid)))
                    m.setdefault("grant, owner-only document exists", []).append(await timed(
                        c, vendor, seeded, 200, c.grant(seeded, acme.webid, True)))
                    m.setdefault(f"revoke, {GOVERNED} resources governed", []).append(
                        await timed(c, vendor, seeded, 403, c.revoke(seeded, acme.webid)))
            results.update(measures)

            many: list[tuple[str, str]] = []
            if grants_in_force:
                many = await with_many_grants(agent_pod, setup, vendor, acme.webid,
                                              contenders[0], alice.webid, alice.pod,
                                              server.base_url, grants_in_force, samples, until)
            many += await concurrent(access, setup, server.base_url, alice.pod, burst, until)
            if driver is not None:
                await driver.stop()
            await access.flush()

    return table(results, flavour), many


async def with_many_grants(agent_pod: CountingPod, setup: PodClient, vendor: PodClient,
                           vendor_webid: str, raw: Contender, owner: str, pod: str, base: str,
                           count: int, samples: int, until: datetime) -> list[tuple[str, str]]:
    """Make ``count`` grants (10 vendors on each of count/10 resources), start a new agent (as
    the daemon after a restart: it reads the whole index), then grant and revoke on fresh
    resources again, RAW and vrm-agent interleaved.

    The grants are made without audit entries: 10,000 grants in force build up over months,
    and one day's audit document holding 10,000 events is a cost of its own (see
    docs/performance.md), not the one measured here."""
    seeder = AccessControl(setup, owner_webid=owner, storage=pod, announce=False)
    seeder.handled_elsewhere = lambda view: True  # no audit entries
    start = time.perf_counter()
    resources = [f"{pod}many/r{i}" for i in range(max(1, count // 10))]
    for chunk in (resources[i:i + 50] for i in range(0, len(resources), 50)):
        await asyncio.gather(*(setup.put(u, BODY, content_type="text/turtle") for u in chunk))
        await asyncio.gather(*(
            seeder.grant(f"{base}vendor-{n}/profile/card#me", [u], ["Read"], until=until)
            for u in chunk for n in range(10)))
    seeding = time.perf_counter() - start
    access = AccessControl(agent_pod, owner_webid=owner, storage=pod, announce=False)
    start = time.perf_counter()
    await access.prepare()
    loading = time.perf_counter() - start
    in_force = len((await access.index()).entries)
    views: dict[str, str] = {}

    async def agent_grant(url: str, who: str, exists: bool) -> None:
        views[url] = (await access.grant(who, [url], ["Read"], until=until)).id

    async def agent_revoke(url: str, who: str) -> None:
        await access.revoke(views.pop(url))

    agent = Contender("vrm-agent", agent_grant, agent_revoke, lambda: _kinds(agent_pod, pod))
    contenders = [raw, agent]
    for c in contenders:  # the new agent reads what the folder passes on, once
        url = f"{pod}bench/{c.name.lower()}/after-warm"
        await setup.put(url, BODY, content_type="text/turtle")
        await c.grant(url, vendor_webid, False)
    measures: dict[str, Measures] = {c.name: {} for c in contenders}
    for i in range(samples):
        order = contenders[i % 2:] + contenders[:i % 2]
        for c in order:
            url = f"{pod}bench/{c.name.lower()}/after-{i}"
            await setup.put(url, BODY, content_type="text/turtle")
            measures[c.name].setdefault("grant", []).append(
                await timed(c, vendor, url, 200, c.grant(url, vendor_webid, False)))
            measures[c.name].setdefault("revoke", []).append(
                await timed(c, vendor, url, 403, c.revoke(url, vendor_webid)))
    await access.flush()
    rows = [(f"making {count:,} grants (10 per resource, no audit entries)", f"{seeding:.0f} s"),
            ("a new agent reads the whole index (256 shards)", f"{loading:.1f} s"),
            ("grants in force, as that agent reads them", f"{in_force:,}")]
    for what in ("grant", "revoke"):
        for c in contenders:
            rows.append((f"{what} on a fresh resource, {c.name}, p50 of {samples}",
                         cell(measures[c.name][what])))
        ratio = (statistics.median(s.seconds for s in measures["vrm-agent"][what])
                 / statistics.median(s.seconds for s in measures["RAW"][what]))
        rows.append((f"{what}: vrm-agent / RAW, time", f"{ratio:.2f}x"))
    return rows


async def concurrent(access: AccessControl, setup: PodClient, base: str, pod: str,
                     burst: int, until: datetime) -> list[tuple[str, str]]:
    url = f"{pod}bench/burst"
    await setup.put(url, BODY, content_type="text/turtle")
    await access.locate(url)
    writes = access.writes
    start = time.perf_counter()
    await asyncio.gather(*(access.grant(f"{base}burst-{i}/profile/card#me", [url], ["Read"],
                                        until=until) for i in range(burst)))
    took = time.perf_counter() - start
    return [(f"{burst} concurrent grants on one resource: document writes",
             str(access.writes - writes)),
            (f"{burst} concurrent grants on one resource: time", f"{took:.2f} s")]


def cell(samples: list[Sample]) -> str:
    if not samples:
        return "cannot (writes nothing)"
    ms = statistics.median(s.seconds for s in samples) * 1000
    requests = statistics.median(s.requests for s in samples)
    kinds = Counter[str]()
    for s in samples:
        kinds.update(s.detail)
    split = ""
    if set(kinds) - {"access"}:
        split = " (" + ", ".join(f"{k} {v / len(samples):g}" for k, v in sorted(kinds.items())) \
            + ")"
    return f"{ms:,.0f} ms, {requests:g} requests{split}"


def table(results: dict[str, Measures], flavour: Flavour) -> list[tuple[str, ...]]:
    names = list(results)
    rows: list[tuple[str, ...]] = []
    for what in results[names[0]]:
        rows.append((what, *(cell(results[n].get(what, [])) for n in names)))
    raw = results["RAW"]
    for n in names[1:]:
        ratios = []
        for what, base in raw.items():
            mine = results[n].get(what, [])
            if mine and base:
                ratios.append(f"{what}: {statistics.median(s.seconds for s in mine) / statistics.median(s.seconds for s in base):.2f}x")  # noqa: E501
        rows.append((f"{n} / RAW, time", "; ".join(ratios)))
    return [(f"{flavour.value.upper()}, p50", *names), *rows]


def print_wide(title: str, rows: list[tuple[str, ...]]) -> None:
    print(f"\n{title}\n")
    header, *body = rows
    print("| " + " | ".join(header) + " |")
    print("| " + " | ".join("---" for _ in header) + " |")
    for row in body:
        if len(row) == 2 and len(header) > 2:
            print(f"| {row[0]} | " + row[1] + " |" + " |" * (len(header) - 2))
        else:
            print("| " + " | ".join(row) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--flavour", choices=["wac", "acp", "both"], default="both")
    parser.add_argument("--samples", type=int, default=20)
    parser.add_argument("--grants", type=int, default=0,
                        help="grants in force for the second part (10000 for the issue's check)")
    parser.add_argument("--burst", type=int, default=100)
    args = parser.parse_args()
    if inrupt_driver.available():
        inrupt_driver.ensure_installed()
    flavours = [Flavour.WAC, Flavour.ACP] if args.flavour == "both" else [Flavour(args.flavour)]
    for flavour in flavours:
        rows, many = asyncio.run(run_flavour(flavour, args.samples, args.grants, args.burst))
        print_wide(f"Grant and revoke on one local CSS 7.2.0 ({flavour.value.upper()}), "
                   "time to the vendor's first 200 / 403", rows)
        print_table(f"vrm-agent at scale ({flavour.value.upper()})", many)


if __name__ == "__main__":
    main()

"""Expiry from the grant index: on time whatever the history, with the daemon running or not,
audited, never listed once ended, and a revoke that says what access remains.

The pure parts (the index document) are tested without sockets; the rest on real CSS (WAC and
ACP) with real accounts: what a vendor may read is proved by its own requests, and the cost of an
expiry pass by counting the pod requests the agent really sends.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import pytest_asyncio
from rdflib import Graph, Literal

from tests.conftest import CountingPod, PodEnv, new_account, run_cli, start_agent, stop_agent
from vrm_agent.access._rdf import ACL, VRM, grant_node
from vrm_agent.access.index import (
    GrantView,
    entry_graph,
    entry_triples,
    read_index,
    shard_name,
    triples_of,
)
from vrm_agent.access.model import AccessMode
from vrm_agent.access.service import AccessControl
from vrm_agent.daemon.expiry import keeper_pid
from vrm_agent.daemon.negotiations import NegotiationService
from vrm_agent.daemon.notify import Notifier
from vrm_agent.integrity import SigningKey
from vrm_agent.ledger.audit import AuditLog, stable_event_id
from vrm_agent.ledger.layout import PodLayout
from vrm_agent.ledger.records import ContactUnit
from vrm_agent.ledger.store import Ledger
from vrm_agent.negotiation.protocol import State
from vrm_agent.negotiation.wire import Message
from vrm_agent.pod.client import PodClient
from vrm_agent.podserver import PodAccount
from vrm_agent.vendor import request_policy
from vrm_agent.vocabulary.compiled import validate_graph

INDEX = "http://pod.example/alice/vrm/grant-index/s00"
ACME = "http://pod.example/acme/profile/card#me"
WHEN = datetime(2030, 1, 1, tzinfo=UTC)
RECORDS = 1000  # negotiation records put in the pod before the second expiry pass
IN_FORCE = 12  # seconds the expiry-cost test's grants last


def view(grant_id: str = "g1", *, resources: tuple[str, ...] = ("http://pod.example/alice/a",),
         expires: datetime = WHEN, members: bool = False,
         agreement: str | None = None) -> GrantView:
    return GrantView(grant_id, ACME, resources, frozenset({AccessMode.READ}), expires, members,
                     agreement)


# -- the index document, without sockets -----------------------------------------------------


def test_an_entry_reads_back_as_written() -> None:
    entry = view(resources=("http://pod.example/alice/a", "http://pod.example/alice/box/"),
                 agreement="http://localhost:8750/negotiations/abc")
    graph = entry_graph(INDEX, entry, {"http://pod.example/alice/a": "http://pod.example/a.acl"})
    index = read_index(INDEX, graph)
    assert index.entries == {"g1": entry} and index.problems == ()
    assert index.documents == {"http://pod.example/alice/a": "http://pod.example/a.acl"}
    # What is deleted when the grant ends is exactly the entry as written, without the
    # document triple (other grants may govern the same resource).
    assert set(entry_triples(INDEX, index.entries["g1"])) == set(triples_of(graph, INDEX, "g1"))
    assert len(triples_of(graph, INDEX, "g1")) == len(graph) - 1


def test_shards_are_stable_and_spread() -> None:
    names = {shard_name(f"grant-{n}") for n in range(10_000)}
    assert shard_name("abc") == shard_name("abc") and len(names) == 256


def test_an_entry_conforms_to_the_grant_shape() -> None:
    validate_graph(entry_graph(INDEX, view(agreement="http://a.example/negotiations/x"), {},
                               created=WHEN))


def test_due_and_next_end() -> None:
    graph = Graph()
    for number, hours in enumerate((-1, 0, 2, 5)):
        graph += entry_graph(INDEX, view(f"g{number}", expires=WHEN + timedelta(hours=hours)), {})
    index = read_index(INDEX, graph)
    assert [v.id for v in index.due(WHEN)] == ["g0", "g1"]  # an end at `now` is due
    assert index.next_end(WHEN) == WHEN + timedelta(hours=2)
    assert read_index(INDEX, Graph()).next_end(WHEN) is None


def test_broken_entries_are_skipped_and_reported_and_an_unreadable_end_is_due() -> None:
    graph = entry_graph(INDEX, view("good"), {})
    bad_agent = entry_graph(INDEX, view("noagent"), {})
    bad_agent.remove((None, ACL.agent, None))
    graph += bad_agent
    foreign = grant_node("http://elsewhere.example/doc", "x")
    graph.add((foreign, VRM.managedBy, VRM.VrmAgent))
    misnamed = grant_node(INDEX, "one")
    graph += entry_graph(INDEX, view("two"), {})
    for p, o in list(graph.predicate_objects(grant_node(INDEX, "two"))):
        graph.remove((grant_node(INDEX, "two"), p, o))
        graph.add((misnamed, p, o))
    undated = entry_graph(INDEX, view("undated"), {})
    undated.remove((None, VRM.expires, None))
    undated.add((grant_node(INDEX, "undated"), VRM.expires, Literal("soon")))
    graph += undated
    index = read_index(INDEX, graph)
    assert set(index.entries) == {"good", "undated"}
    assert len(index.problems) == 3
    assert [v.id for v in index.due(WHEN - timedelta(days=3650))] == ["undated"]


def test_covers_a_member_only_through_a_members_grant() -> None:
    box = "http://pod.example/alice/box/"
    assert view(resources=(box,), members=True).covers(box + "x")
    assert not view(resources=(box,)).covers(box + "x")
    assert view(resources=(box,)).covers(box)


def test_an_expiry_has_one_event_id_whoever_logs_it() -> None:
    assert stable_event_id("AccessExpired", "g1") == stable_event_id("AccessExpired", "g1")
    assert stable_event_id("AccessExpired", "g1") != stable_event_id("AccessExpired", "g2")


# -- on a real pod -----------------------------------------------------------------------------

@dataclass(frozen=True)
class Person:
    account: PodAccount
    email: str


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def dora(pod_env: PodEnv) -> Person:
    """A person of her own, so the records and grants of these tests meet no other test's."""
    account = await new_account(pod_env, "dora")
    async with PodClient(account.credentials) as pod:
        email = await Ledger(pod, account.pod).create(
            ContactUnit("email-home", "email", "dora@example.org"))
    return Person(account, email)


async def status(client: PodClient, url: str) -> int:
    return (await client.request("GET", url, expect_ok=False)).status


def service_for(pod: PodClient, person: Person) -> NegotiationService:
    access = AccessControl(pod, owner_webid=person.account.webid, storage=person.account.pod)
    key, agent_url = SigningKey(), "http://localhost:8750/"
    notifier = Notifier(key, storage=person.account.pod, agent_url=agent_url, issuer=pod.issuer)
    return NegotiationService(pod, owner=person.account.webid, storage=person.account.pod,
                              agent_url=agent_url, signing_key=key, access=access,
                              notifier=notifier)


def ask(purpose: str, seconds: float) -> Message:
    return Message("ContractRequestMessage", policy=request_policy(
        ["pd:EmailAddress"], purpose=purpose, duration=timedelta(seconds=seconds)))


async def put_records(person: Person, template: dict[str, object], count: int) -> float:
    """``count`` negotiation records like ``template``, 16 writes in flight; the seconds it took."""
    started = time.monotonic()
    async with PodClient(person.account.credentials, concurrency=16) as pod:
        base = PodLayout(person.account.pod).container("negotiations")
        queue = iter(range(count))

        async def writer() -> None:
            for number in queue:
                record_id = f"bulk{number:05d}"
                body = json.dumps(template).replace(str(template["id"]), record_id)
                await pod.put(base + record_id, body, content_type="application/ld+json")

        await asyncio.gather(*(writer() for _ in range(16)))
    return time.monotonic() - started


async def wait_until(moment: datetime) -> None:
    await asyncio.sleep(max(0.0, (moment - datetime.now(UTC)).total_seconds()) + 0.05)


async def pass_cost(service: NegotiationService, pod: CountingPod
                    ) -> tuple[Counter[str], set[str], list[str]]:
    """One expiry pass: its pod requests by method, the negotiation records and agreement
    records it touched, and the negotiations it ended. Left apart: audit appends and the
    grant index's upkeep patches (an ended entry's deletion, the feed's announcements, and
    the trimming of announcements older than a minute), which leave in the background or
    by the clock, whatever the number of records; at most three of them may fall in a pass."""
    first = len(pod.sent)
    ended, _ = await service.expire_due()
    upkeep = service.access.index_container
    sent = [(m, u) for m, u in pod.sent[first:] if "/vrm/audit/" not in u]
    tidying = [u for m, u in sent if m == "PATCH" and u.startswith(upkeep)]
    assert len(tidying) <= 3, tidying
    sent = [(m, u) for m, u in sent if not (m == "PATCH" and u.startswith(upkeep))]
    records = {u for _, u in sent if "/vrm/negotiations/" in u or "/vrm/agreements/" in u}
    return Counter(m for m, _ in sent), records, [r.id for r in ended]


@pytest.mark.pod
@pytest.mark.asyncio(loop_scope="session")
async def test_expiry_cost_does_not_grow_with_the_negotiation_records(
        pod_env: PodEnv, dora: Person) -> None:
    async with CountingPod(dora.account.credentials) as pod, \
            PodClient(pod_env.acme.credentials) as acme:
        service = service_for(pod, dora)
        refused = await service.request(pod_env.acme.webid, ask("dpv:DirectMarketing", 60))
        assert refused.state is State.TERMINATED
        template = (await pod.get(service.record_url(refused.id))).json()
        shared = dora.account.pod + "notes/shared"
        await pod.put(shared, '<#it> <http://schema.org/name> "n".', content_type="text/turtle")

        costs = []
        for history in (0, RECORDS):
            if history:
                took = await put_records(dora, template, history)
                print(f"\n{history} negotiation records written in {took:.1f} s")
            # Long enough for the vendor's two reads to fall inside it on a loaded machine.
            agreed = await service.request(pod_env.acme.webid,
                                           ask("dpv:DeliveryOfGoods", IN_FORCE))
            assert agreed.state is State.AGREED
            plain = await service.access.grant(
                pod_env.acme.webid, [shared], ["Read"],
                until=datetime.now(UTC) + timedelta(seconds=IN_FORCE))
            assert await status(acme, dora.email) == 200
            assert await status(acme, shared) == 200
            until = max(plain.expires, agreed.until or plain.expires)
            await wait_until(until)
            cost, records, ended = await pass_cost(service, pod)
            assert ended == [agreed.id]
            # Of all the records, only the due agreement's were read or written.
            assert records == {service.record_url(agreed.id), service.agreement_url(agreed.id)}
            assert await status(acme, dora.email) == 403
            assert await status(acme, shared) == 403
            assert (await service.load(agreed.id)).ended == "expired"
            costs.append(cost)
        await service.flush()
        await service.access.flush()
        await service.expire_due()  # the feed as this process's own changes left it
        idle = len(pod.sent)
        await service.expire_due()
        read = await service.access.index()
        await service.expire_due()  # nothing changed: the feed is answered 304, no body
        assert await service.access.index() is read  # kept in memory
        # One conditional GET of the feed per pass; an announcement that turns a minute old
        # between the passes may be trimmed from the feed (by the clock, not by any change).
        upkeep = service.access.index_container
        idle_sent = pod.sent[idle:]
        trims = [u for m, u in idle_sent if m == "PATCH" and u == service.access.feed_url]
        assert len(trims) <= 1, idle_sent
        assert Counter(m for m, u in idle_sent
                       if not (m == "PATCH" and u.startswith(upkeep))) == Counter({"GET": 2})
    # The same requests with 1,000 records as with none: the records of due agreements only.
    assert costs[0] == costs[1], costs
    assert sum(costs[1].values()) <= 20, costs


@pytest.mark.pod
@pytest.mark.asyncio(loop_scope="session")
async def test_the_loop_ends_access_after_until_and_logs_it_once(
        pod_env: PodEnv, dora: Person) -> None:
    """The order of events as the vendor sees them: 200 until the end, 403 after it."""
    async with PodClient(dora.account.credentials) as pod, \
            PodClient(pod_env.acme.credentials) as acme:
        service = service_for(pod, dora)
        shared = dora.account.pod + "notes/timed"
        await pod.put(shared, '<#it> <http://schema.org/name> "t".', content_type="text/turtle")
        # A second agent working for the same person (a keeper, say) sees the same expiry.
        other = service_for(pod, dora)
        loops = [asyncio.create_task(s.run_expiry()) for s in (service, other)]
        try:
            grant = await service.access.grant(pod_env.acme.webid, [shared], ["Read"],
                                               until=datetime.now(UTC) + timedelta(seconds=2))
            reads: list[tuple[datetime, int]] = []
            for _ in range(400):
                reads.append((datetime.now(UTC), await status(acme, shared)))
                if reads[-1][1] == 403:
                    break
                await asyncio.sleep(0.05)
            for _ in range(100):  # let the loops finish their pass (the index entry goes last)
                if grant.id not in (await service.access.index()).entries:
                    break
                await asyncio.sleep(0.05)
        finally:
            for loop in loops:
                loop.cancel()
            await asyncio.gather(*loops, return_exceptions=True)
        await service.access.flush()
        await other.access.flush()
        assert reads[0][1] == 200 and reads[-1][1] == 403
        first_denied = reads[-1][0]
        assert first_denied >= grant.expires
        assert all(code == 200 for at, code in reads if at < grant.expires)
        log = AuditLog(pod, PodLayout(dora.account.pod))
        expired = [e for e in await log.events(grant.expires)
                   if e["type"] == "AccessExpired"
                   and e["grant"] == service.access.grant_iri(grant.id)]
        assert len(expired) == 1 and expired[0]["resources"] == [shared]


@pytest.mark.pod
@pytest.mark.asyncio(loop_scope="session")
async def test_concurrent_grants_share_few_index_patches_and_all_land(
        pod_env: PodEnv, dora: Person) -> None:
    url = dora.account.pod + "notes/popular"
    later = datetime.now(UTC) + timedelta(hours=1)
    async with CountingPod(dora.account.credentials) as pod, \
            PodClient(dora.account.credentials) as other_pod:
        await pod.put(url, '<#it> <http://schema.org/name> "p".', content_type="text/turtle")
        # Two processes' worth of managers, each with its own client.
        first, second = (AccessControl(p, owner_webid=dora.account.webid,
                                       storage=dora.account.pod) for p in (pod, other_pod))
        await first.locate(url)
        await second.locate(url)
        sent = len(pod.sent)
        views = await asyncio.gather(*(
            manager.grant(f"{pod_env.server.base_url}vendor-{i}/profile/card#me", [url],
                          ["Read"], until=later)
            for i, manager in enumerate([first] * 40 + [second] * 10)))
        patched = Counter(u for m, u in pod.sent[sent:]
                          if m == "PATCH" and "/vrm/audit/" not in u)
        # 40 grants by one manager: one patch per shard their entries fall in, however many
        # arrive at once, and a few announcements in the feed, not 40.
        shards = {first.shard_url(v.id) for v in views[:40]}
        assert set(patched) - {first.feed_url} <= shards | {url + ".acl", url + ".acr"}
        assert all(patched[s] <= 2 for s in shards)
        assert patched[first.feed_url] <= 6
        reader = AccessControl(pod, owner_webid=dora.account.webid, storage=dora.account.pod)
        assert {v.id for v in views} <= set((await reader.index()).entries)
        await asyncio.gather(*(first.revoke(v.id) for v in views))
        await first.flush()
        # The reader learns of it from the feed, reading only the shards announced there.
        assert not {v.id for v in views} & set((await reader.index(fresh=True)).entries)
        await first.flush()
        await second.flush()


# -- the CLI and the daemon as real processes --------------------------------------------------


@pytest.fixture
def dora_config(dora: Person, tmp_path: Path) -> Iterator[Path]:
    config = tmp_path / "agent" / "config.json"
    account = dora.account
    result = run_cli("login", "--webid", account.webid, "--client-id", account.client_id,
                     "--client-secret", account.client_secret, "--config", str(config))
    assert result.returncode == 0, result.stderr
    yield config
    pid = keeper_pid(config)  # a detached expiry keeper this test started
    if pid:
        os.kill(pid, signal.SIGTERM)


def cli(config: Path, *args: str) -> dict | list:  # type: ignore[type-arg]
    result = run_cli(*args, "--json", "--config", str(config))
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)  # type: ignore[no-any-return]


@pytest_asyncio.fixture(loop_scope="session")
async def vendor(pod_env: PodEnv) -> AsyncIterator[PodClient]:
    async with PodClient(pod_env.acme.credentials) as client:
        yield client


async def audit_events(person: Person, day: datetime, grant_id: str, wanted: set[str],
                       within: float = 20) -> dict[str, dict[str, object]]:
    """The audit events of one grant, polled until the wanted types are there (they are
    written just after the answer)."""
    node = str(grant_node(f"{person.account.pod}vrm/grant-index/{shard_name(grant_id)}",
                          grant_id))
    deadline = time.monotonic() + within
    async with PodClient(person.account.credentials) as pod:
        log = AuditLog(pod, PodLayout(person.account.pod))
        while True:
            found = {}
            for moment in {day, datetime.now(UTC)}:
                found.update({str(e["type"]): e for e in await log.events(moment)
                              if e["grant"] == node})
            if wanted <= set(found) or time.monotonic() > deadline:
                return found
            await asyncio.sleep(0.3)


@pytest.mark.pod
@pytest.mark.asyncio(loop_scope="session")
async def test_a_share_made_while_the_daemon_runs_is_ended_by_the_daemon(
        pod_env: PodEnv, dora: Person, dora_config: Path, vendor: PodClient,
        tmp_path: Path) -> None:
    agent = await asyncio.to_thread(start_agent, pod_env, dora_config.parent, dora.account)
    try:
        url = dora.account.pod + "notes/while-running"
        async with PodClient(dora.account.credentials) as pod:
            await pod.put(url, '<#it> <http://schema.org/name> "r".', content_type="text/turtle")
        granted_at = datetime.now(UTC)
        grant = await asyncio.to_thread(cli, dora_config, "share", url, "--with",
                                        pod_env.acme.webid, "--for", "3s")
        assert isinstance(grant, dict)
        # The daemon holds the expiry work: the share started no keeper of its own.
        assert keeper_pid(dora_config) == agent.process.pid
        assert await status(vendor, url) == 200
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and await status(vendor, url) == 200:
            await asyncio.sleep(0.2)
        assert await status(vendor, url) == 403
        expires = datetime.fromisoformat(str(grant["expires"]).replace("Z", "+00:00"))
        assert datetime.now(UTC) >= expires
        events = await audit_events(dora, granted_at, str(grant["id"]),
                                    {"AccessGranted", "AccessExpired"})
        assert {"AccessGranted", "AccessExpired"} <= set(events), events
        assert events["AccessExpired"]["at"] == grant["expires"].replace("Z", "+00:00")
        listed = await asyncio.to_thread(cli, dora_config, "grants", "--resource", url)
        assert listed == []
    finally:
        await asyncio.to_thread(stop_agent, agent)


@pytest.mark.pod
@pytest.mark.asyncio(loop_scope="session")
async def test_with_no_daemon_the_keeper_ends_a_share_and_logs_it(
        pod_env: PodEnv, dora: Person, dora_config: Path, vendor: PodClient) -> None:
    url = dora.account.pod + "notes/kept"
    async with PodClient(dora.account.credentials) as pod:
        await pod.put(url, '<#it> <http://schema.org/name> "k".', content_type="text/turtle")
    granted_at = datetime.now(UTC)
    grant = await asyncio.to_thread(cli, dora_config, "share", url, "--with",
                                    pod_env.acme.webid, "--for", "3s")
    assert isinstance(grant, dict)
    assert await status(vendor, url) == 200
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and await status(vendor, url) == 200:
        await asyncio.sleep(0.2)
    assert await status(vendor, url) == 403
    expires = datetime.fromisoformat(str(grant["expires"]).replace("Z", "+00:00"))
    assert datetime.now(UTC) >= expires
    events = await audit_events(dora, granted_at, str(grant["id"]),
                                {"AccessGranted", "AccessExpired"})
    assert {"AccessGranted", "AccessExpired"} <= set(events), events
    assert events["AccessGranted"]["actor"] == dora.account.webid


@pytest.mark.pod
@pytest.mark.asyncio(loop_scope="session")
async def test_grants_never_lists_a_grant_past_its_end(
        pod_env: PodEnv, dora: Person, dora_config: Path) -> None:
    url = dora.account.pod + "notes/past-end"
    async with PodClient(dora.account.credentials) as pod:
        await pod.put(url, '<#it> <http://schema.org/name> "p".', content_type="text/turtle")
        access = AccessControl(pod, owner_webid=dora.account.webid, storage=dora.account.pod)
        grant = await access.grant(pod_env.acme.webid, [url], ["Read"],
                                   until=datetime.now(UTC) + timedelta(seconds=1))
        await wait_until(grant.expires)
        # No loop has run: the document still holds the grant...
        _, ended = await access.survey(resource=url)
        assert [v.id for v in ended] == [grant.id]
        result = await asyncio.to_thread(run_cli, "grants", "--json", "--resource", url,
                                         "--config", str(dora_config))
        assert result.returncode == 0 and json.loads(result.stdout) == []
        assert grant.id in result.stderr and "past their end" in result.stderr
        table = await asyncio.to_thread(run_cli, "grants", "--resource", url,
                                        "--config", str(dora_config))
        assert grant.id not in table.stdout and "(none)" in table.stdout
        await access.expire_due()
        await access.flush()


@pytest.mark.pod
@pytest.mark.asyncio(loop_scope="session")
async def test_revoking_one_of_two_overlapping_grants_reports_the_other(
        pod_env: PodEnv, dora: Person, dora_config: Path, vendor: PodClient) -> None:
    box = dora.account.pod + "notes/overlap/"
    url = box + "card"
    async with PodClient(dora.account.credentials) as pod:
        await pod.put(url, '<#it> <http://schema.org/name> "o".', content_type="text/turtle")
    first = cli(dora_config, "share", url, "--with", pod_env.acme.webid, "--for", "1h")
    second = cli(dora_config, "share", url, "--with", pod_env.acme.webid, "--for", "2h")
    members = cli(dora_config, "share", box, "--members", "--with", pod_env.acme.webid,
                  "--for", "3h")
    assert isinstance(first, dict) and isinstance(second, dict) and isinstance(members, dict)

    revoked = cli(dora_config, "grants", "revoke", str(first["id"]))
    assert isinstance(revoked, dict) and revoked["id"] == first["id"]
    remaining = {(r["grant"], r["resource"], r["via"]) for r in revoked["remaining"]}
    assert remaining == {(second["id"], url, None), (members["id"], url, box)}
    assert await status(vendor, url) == 200  # true: it still reads

    text = await asyncio.to_thread(run_cli, "grants", "revoke", str(second["id"]),
                                   "--config", str(dora_config))
    assert text.returncode == 0, text.stderr
    assert "no longer has access" not in text.stdout
    assert f"can still read {url}" in text.stdout and str(members["id"]) in text.stdout

    last = cli(dora_config, "grants", "revoke", str(members["id"]))
    assert isinstance(last, dict) and last["remaining"] == []
    assert await status(vendor, url) == 403
    events = await audit_events(dora, datetime.now(UTC), str(first["id"]),
                                {"AccessGranted", "AccessRevoked"})
    assert {"AccessGranted", "AccessRevoked"} <= set(events)
    assert events["AccessRevoked"]["actor"] == dora.account.webid


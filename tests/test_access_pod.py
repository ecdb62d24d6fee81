"""Managed access on real CSS, WAC and ACP: what a vendor may do is proved by its own requests."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
import pytest_asyncio
from rdflib import Graph, Literal, Namespace, URIRef

from tests.conftest import CountingPod, PodEnv
from vrm_agent.access import ForbiddenMode
from vrm_agent.access.service import AccessControl, GrantNotFound
from vrm_agent.errors import Forbidden
from vrm_agent.pod import PodClient

SCHEMA = Namespace("http://schema.org/")
pytestmark = [pytest.mark.pod, pytest.mark.asyncio(loop_scope="session")]


def later(seconds: float = 3600) -> datetime:
    return datetime.now(UTC) + timedelta(seconds=seconds)


async def put_thing(pod: PodClient, url: str, name: str = "x") -> None:
    graph = Graph()
    graph.add((URIRef(url + "#it"), SCHEMA.name, Literal(name)))
    await pod.put_graph(url, graph)


async def status(client: PodClient, method: str, url: str) -> int:
    body = "<#a> <#b> <#c>." if method == "PUT" else None
    headers = {"Content-Type": "text/turtle"} if body else None
    response = await client.request(method, url, headers=headers, body=body, expect_ok=False)
    return response.status


async def assert_owner_keeps_everything(alice: PodClient, url: str, access: AccessControl) -> None:
    doc_url, _ = await access.locate(url)
    assert await status(alice, "GET", url) == 200
    assert await status(alice, "PUT", url) in (200, 201, 205)
    assert await status(alice, "GET", doc_url) in (200, 404)  # Control: may read its document


@pytest_asyncio.fixture(loop_scope="session")
async def access(alice: PodClient, pod_env: PodEnv) -> AsyncIterator[AccessControl]:
    manager = AccessControl(alice, owner_webid=pod_env.alice.webid, storage=pod_env.alice.pod)
    yield manager
    await manager.flush()  # what it queued leaves before the client closes


async def test_grant_is_exactly_as_wide_as_agreed(
    alice: PodClient, acme: PodClient, access: AccessControl, pod_env: PodEnv, scratch: str
) -> None:
    shared, sibling = scratch + "shared", scratch + "sibling"
    await put_thing(alice, shared)
    await put_thing(alice, sibling)
    assert await status(acme, "GET", shared) == 403
    view = await access.grant(pod_env.acme.webid, [shared], ["Read"], until=later())
    doc_url, _ = await access.locate(shared)
    assert await status(acme, "GET", shared) == 200
    assert await status(acme, "GET", sibling) == 403
    assert await status(acme, "PUT", shared) == 403
    assert await status(acme, "GET", doc_url) == 403
    async with PodClient(pod_env.bolt.credentials) as bolt:
        assert await status(bolt, "GET", shared) == 403  # only the agent named
    await assert_owner_keeps_everything(alice, shared, access)
    listed = await access.grants(agent=pod_env.acme.webid)
    assert [v.id for v in listed if shared in v.resources] == [view.id]
    assert listed[0].to_json()["modes"] == ["Read"]

    await access.revoke(view.id)
    assert await status(acme, "GET", shared) == 403
    await assert_owner_keeps_everything(alice, shared, access)
    with pytest.raises(GrantNotFound):
        await access.revoke(view.id)


async def test_expired_grants_are_removed_even_after_a_restart(
    alice: PodClient, acme: PodClient, access: AccessControl, pod_env: PodEnv, scratch: str
) -> None:
    url = scratch + "brief"
    await put_thing(alice, url)
    await access.grant(pod_env.acme.webid, [url], ["Read"], until=later(2))
    assert await status(acme, "GET", url) == 200
    await asyncio.sleep(2.2)
    # A new AccessControl is what the agent has after a restart: it reads the pod, not memory.
    restarted = AccessControl(alice, owner_webid=pod_env.alice.webid, storage=pod_env.alice.pod)
    await restarted.reconcile()
    # Gone from the documents: removed by this reconcile, unless an agent running for alice in
    # the same test session (its loop reads the grant index every second) was first.
    in_force, past = await restarted.survey(resource=url)
    assert not in_force and not past
    assert await status(acme, "GET", url) == 403
    await assert_owner_keeps_everything(alice, url, restarted)


async def test_the_expiry_loop_ends_access_on_time(
    alice: PodClient, acme: PodClient, access: AccessControl, pod_env: PodEnv, scratch: str
) -> None:
    url = scratch + "timed"
    await put_thing(alice, url)
    loop = asyncio.create_task(access.run_expiry(max_sleep=30))
    try:
        await access.grant(pod_env.acme.webid, [url], ["Read"], until=later(1.5))
        assert await status(acme, "GET", url) == 200
        for _ in range(40):
            await asyncio.sleep(0.25)
            if await status(acme, "GET", url) == 403:
                break
        assert await status(acme, "GET", url) == 403
    finally:
        loop.cancel()


async def test_container_with_and_without_members(
    alice: PodClient, acme: PodClient, access: AccessControl, pod_env: PodEnv, scratch: str
) -> None:
    await put_thing(alice, scratch + "box/one")
    await put_thing(alice, scratch + "deep/two")
    await access.grant(pod_env.acme.webid, [scratch + "box/"], ["Read"], until=later(),
                       members=True)
    await access.grant(pod_env.acme.webid, [scratch + "deep/"], ["Read"], until=later())
    assert await status(acme, "GET", scratch + "box/") == 200
    assert await status(acme, "GET", scratch + "box/one") == 200
    assert await status(acme, "GET", scratch + "deep/") == 200
    assert await status(acme, "GET", scratch + "deep/two") == 403
    assert await status(acme, "PUT", scratch + "box/new") == 403


async def test_vendors_never_get_write_or_control(
    alice: PodClient, acme: PodClient, access: AccessControl, pod_env: PodEnv, scratch: str
) -> None:
    url = scratch + "guarded"
    await put_thing(alice, url)
    writes_before = access.writes
    for modes in (["Write"], ["Read", "Control"]):
        with pytest.raises(ForbiddenMode):
            await access.grant(pod_env.acme.webid, [url], modes, until=later())
    assert access.writes == writes_before
    assert await status(acme, "PUT", url) == 403


async def test_append_where_the_owner_allows_it(
    alice: PodClient, acme: PodClient, access: AccessControl, pod_env: PodEnv, scratch: str
) -> None:
    inbox = scratch + "inbox/"
    await alice.create_container(inbox)
    await access.grant(pod_env.acme.webid, [inbox], ["Append"], until=later())
    response = await acme.request("POST", inbox, headers={"Content-Type": "text/turtle"},
                                  body="<#m> <#says> \"hello\".", expect_ok=False)
    assert response.status == 201
    assert await status(acme, "GET", inbox) == 403


async def test_fifty_concurrent_grants_all_land_in_few_writes(
    alice: PodClient, acme: PodClient, access: AccessControl, pod_env: PodEnv, scratch: str
) -> None:
    url = scratch + "popular"
    await put_thing(alice, url)
    real = [pod_env.acme.webid, pod_env.bolt.webid]
    others = [f"{pod_env.server.base_url}vendor-{i}/profile/card#me" for i in range(48)]
    writes_before = access.writes
    views = await asyncio.gather(*(
        access.grant(webid, [url], ["Read"], until=later()) for webid in real + others
    ))
    assert access.writes - writes_before <= 5
    in_force = await access.grants(resource=url)
    assert {v.id for v in in_force} == {v.id for v in views}
    assert {v.agent for v in in_force} == set(real + others)
    assert await status(acme, "GET", url) == 200
    async with PodClient(pod_env.bolt.credentials) as bolt:
        assert await status(bolt, "GET", url) == 200
    await assert_owner_keeps_everything(alice, url, access)


async def test_two_agents_editing_at_once_lose_nothing(
    alice: PodClient, acme: PodClient, pod_env: PodEnv, scratch: str
) -> None:
    url = scratch + "contended"
    await put_thing(alice, url)
    # Two independent managers (as two processes would be) race on one document: If-Match and
    # a retry after 412 keep both grants.
    async with PodClient(pod_env.alice.credentials) as other_client:
        first = AccessControl(alice, owner_webid=pod_env.alice.webid, storage=pod_env.alice.pod)
        second = AccessControl(other_client, owner_webid=pod_env.alice.webid,
                               storage=pod_env.alice.pod)
        await first.locate(url)
        await second.locate(url)
        results = await asyncio.gather(*(
            manager.grant(f"{pod_env.server.base_url}racer-{i}/profile/card#me", [url], ["Read"],
                          until=later())
            for i, manager in enumerate([first, second] * 5)
        ))
        in_force = {v.id for v in await first.grants(resource=url)}
    assert {v.id for v in results} <= in_force


async def test_foreign_rules_survive_grant_and_revoke(
    alice: PodClient, acme: PodClient, access: AccessControl, pod_env: PodEnv, scratch: str
) -> None:
    url = scratch + "mixed"
    await put_thing(alice, url)
    doc_url, fmt = await access.locate(url)
    owner, bolt_id = pod_env.alice.webid, pod_env.bolt.webid
    # The owner's own document, written by hand (another app would write it like this):
    # bolt may read, through a rule the agent did not write.
    if fmt.name == "wac":
        hand_written = f"""
            @prefix acl: <http://www.w3.org/ns/auth/acl#>.
            <#owner> a acl:Authorization; acl:agent <{owner}>; acl:accessTo <{url}>;
                acl:mode acl:Read, acl:Write, acl:Control.
            <#bolt-app> a acl:Authorization; acl:agent <{bolt_id}>; acl:accessTo <{url}>;
                acl:mode acl:Read."""
    else:
        hand_written = f"""
            @prefix acp: <http://www.w3.org/ns/solid/acp#>.
            @prefix acl: <http://www.w3.org/ns/auth/acl#>.
            <> a acp:AccessControlResource; acp:resource <{url}>;
                acp:accessControl <#owner>, <#bolt-app>.
            <#owner> a acp:AccessControl; acp:apply [ a acp:Policy;
                acp:allow acl:Read, acl:Write, acl:Control;
                acp:anyOf [ a acp:Matcher; acp:agent <{owner}> ] ].
            <#bolt-app> a acp:AccessControl; acp:apply [ a acp:Policy; acp:allow acl:Read;
                acp:anyOf [ a acp:Matcher; acp:agent <{bolt_id}> ] ]."""
    await alice.put(doc_url, hand_written, content_type="text/turtle")
    foreign_before = fmt.foreign_triples(fmt.parse(hand_written, doc_url))

    async with PodClient(pod_env.bolt.credentials) as bolt:
        assert await status(bolt, "GET", url) == 200
        view = await access.grant(pod_env.acme.webid, [url], ["Read"], until=later())
        assert await status(acme, "GET", url) == 200
        assert await status(bolt, "GET", url) == 200
        await access.revoke(view.id)
        assert await status(acme, "GET", url) == 403
        assert await status(bolt, "GET", url) == 200

    after = fmt.parse((await alice.get(doc_url, accept="text/turtle")).body, doc_url)
    from rdflib.compare import isomorphic

    assert isomorphic(fmt.foreign_triples(after), foreign_before)
    await assert_owner_keeps_everything(alice, url, access)


async def test_a_missing_resource_is_a_clear_error(
    access: AccessControl, pod_env: PodEnv, scratch: str
) -> None:
    from vrm_agent.errors import NotFound

    with pytest.raises(NotFound):
        await access.grant(pod_env.acme.webid, [scratch + "nothing-here"], ["Read"],
                           until=later())


async def test_a_vendor_cannot_manage_access(
    acme: PodClient, pod_env: PodEnv, scratch: str, alice: PodClient
) -> None:
    url = scratch + "not-yours"
    await put_thing(alice, url)
    vendor_side = AccessControl(acme, owner_webid=pod_env.acme.webid, storage=pod_env.alice.pod)
    with pytest.raises(Forbidden):
        await vendor_side.grant(pod_env.acme.webid, [url], ["Read"], until=later())


def _costs(pod: CountingPod, since: int) -> Counter[str]:
    """The requests sent since ``since``, by method (audit appends apart: they leave later)."""
    return Counter(m for m, u in pod.sent[since:] if "/vrm/audit/" not in u)


async def test_a_grant_and_its_revoke_cost_one_write_each(
    acme: PodClient, pod_env: PodEnv, scratch: str
) -> None:
    """A fresh resource: its document discovered from one HEAD and written whole at once, the
    index entry beside it; a revoke is one patch of that document (and of the entry). After a
    restart, a resource whose owner-only document the agent left behind costs one patch: the
    index says where the document is, and nothing in it is read."""
    async with CountingPod(pod_env.alice.credentials) as pod:
        access = AccessControl(pod, owner_webid=pod_env.alice.webid,
                               storage=pod_env.alice.pod, announce=False)
        await access.prepare()
        warm, fresh, seeded = scratch + "warm", scratch + "fresh", scratch + "seeded"
        for url in (warm, fresh, seeded):
            await put_thing(pod, url)
        # What the container passes on is read once, by the first grant in it.
        await access.revoke((await access.grant(pod_env.acme.webid, [warm], ["Read"],
                                                until=later())).id)
        leftover = await access.grant(pod_env.acme.webid, [seeded], ["Read"], until=later())
        await access.revoke(leftover.id)  # leaves a document with the owner's rules only

        cold = AccessControl(pod, owner_webid=pod_env.alice.webid,
                             storage=pod_env.alice.pod, announce=False)
        await cold.prepare()
        await cold.revoke((await cold.grant(pod_env.acme.webid, [warm], ["Read"],
                                            until=later())).id)
        await access.flush()
        await cold.flush()
        for restarted in (False, True):
            manager = cold if restarted else access
            url = seeded if restarted else fresh
            sent = len(pod.sent)
            view = await manager.grant(pod_env.acme.webid, [url], ["Read"], until=later())
            doc_url, _ = await manager.locate(url)
            costs = _costs(pod, sent)
            if restarted:  # the index names the document: a patch of it, no HEAD, no read
                assert costs == Counter({"PATCH": 2}), costs
                assert ("PATCH", doc_url) in pod.sent[sent:]
            else:
                assert costs == Counter({"HEAD": 1, "PUT": 1, "PATCH": 1}), costs
                assert ("PUT", doc_url) in pod.sent[sent:]
            assert await status(acme, "GET", url) == 200

            # A moment after the write, the document is read back once (off the vendor's first
            # read), so that its next change is one conditional PUT.
            for _ in range(100):
                if doc_url in manager._known:
                    break
                await asyncio.sleep(0.05)
            sent = len(pod.sent)
            await manager.revoke(view.id)
            # The document, and only it (audit appends apart: they leave in the background).
            assert [r for r in pod.sent[sent:] if "/vrm/audit/" not in r[1]] == \
                [("PUT", doc_url)]
            assert await status(acme, "GET", url) == 403
            await manager.flush()  # then the entry, a moment later
            assert _costs(pod, sent) == Counter({"PUT": 1, "PATCH": 1})
            await assert_owner_keeps_everything(pod, url, manager)
        # A document another tool wrote (owner-only): the PUT meets a 412, the grant is
        # patched in; nothing in it is read or rewritten.
        foreign = scratch + "foreign"
        await put_thing(pod, foreign)
        doc_url, fmt = await access.locate(foreign)
        await pod.put(doc_url, fmt.serialize(fmt.initial_document(
            doc_url, foreign, pod_env.alice.webid), doc_url), content_type="text/turtle")
        sent = len(pod.sent)
        view = await access.grant(pod_env.acme.webid, [foreign], ["Read"], until=later())
        costs = _costs(pod, sent)
        assert costs == Counter({"PUT": 1, "PATCH": 2}), costs  # located above: no HEAD
        assert await status(acme, "GET", foreign) == 200
        await access.revoke(view.id)
        assert await status(acme, "GET", foreign) == 403
        await assert_owner_keeps_everything(pod, foreign, access)
        await access.flush()
        await cold.flush()


async def test_a_grant_edited_by_hand_is_still_revoked(
    alice: PodClient, acme: PodClient, access: AccessControl, pod_env: PodEnv, scratch: str
) -> None:
    """When the grant in the document is not as written (a mode added by hand), the exact
    patch fails and the revoke reads the document and writes it whole, without the grant."""
    url = scratch + "edited"
    await put_thing(alice, url)
    view = await access.grant(pod_env.acme.webid, [url], ["Read"], until=later())
    doc_url, fmt = await access.locate(url)
    response = await alice.request("GET", doc_url, headers={"Accept": "text/turtle"})
    graph = fmt.parse(response.body, doc_url)
    for node in [s for s in graph.subjects() if str(s).endswith(f"vrm-grant-{view.id}")]:
        graph.add((node, URIRef("https://w3id.org/vrm-agent/ns#note"), Literal("hand-made")))
    await alice.put(doc_url, fmt.serialize(graph, doc_url), content_type="text/turtle")
    assert await status(acme, "GET", url) == 200
    await access.revoke(view.id)
    assert await status(acme, "GET", url) == 403
    await assert_owner_keeps_everything(alice, url, access)


async def test_ending_a_members_grant_ends_the_copies_it_left(
    alice: PodClient, acme: PodClient, access: AccessControl, pod_env: PodEnv, scratch: str
) -> None:
    """WAC: a member that gets its own document while a grant on its container is in force
    carries a copy of that grant (else the grant would stop reaching it). Ending the grant,
    even from another process that only has the index, ends the copy too."""
    box = scratch + "box/"
    await put_thing(alice, box + "one")
    members = await access.grant(pod_env.acme.webid, [box], ["Read"], until=later(),
                                 members=True)
    assert await status(acme, "GET", box + "one") == 200
    async with PodClient(pod_env.bolt.credentials) as bolt:
        other = await access.grant(pod_env.bolt.webid, [box + "one"], ["Read"], until=later())
        assert await status(acme, "GET", box + "one") == 200  # the copy keeps it reaching
        assert await status(bolt, "GET", box + "one") == 200
        restarted = AccessControl(alice, owner_webid=pod_env.alice.webid,
                                  storage=pod_env.alice.pod)
        await restarted.revoke(members.id)
        assert await status(acme, "GET", box + "one") == 403
        assert await status(acme, "GET", box) == 403
        assert await status(bolt, "GET", box + "one") == 200  # the other grant stands
        await restarted.revoke(other.id)
        assert await status(bolt, "GET", box + "one") == 403
        await restarted.flush()


async def test_a_command_revokes_by_reading_one_shard_of_the_index(
    acme: PodClient, pod_env: PodEnv, scratch: str
) -> None:
    """The CLI reads the index directly: a revoke by id reads the grant's shard, not all of
    them, and writes the document and that shard (and a line in the feed for the daemon)."""
    url = scratch + "by-command"
    async with CountingPod(pod_env.alice.credentials) as pod:
        await put_thing(pod, url)
        maker = AccessControl(pod, owner_webid=pod_env.alice.webid, storage=pod_env.alice.pod)
        view = await maker.grant(pod_env.acme.webid, [url], ["Read"], until=later())
        await maker.flush()
        command = AccessControl(pod, owner_webid=pod_env.alice.webid,
                                storage=pod_env.alice.pod)
        sent = len(pod.sent)
        await command.revoke(view.id)
        await command.flush()
        reads = [u for m, u in pod.sent[sent:] if m == "GET"]
        assert reads == [command.shard_url(view.id)]
        writes = Counter(u for m, u in pod.sent[sent:] if m == "PATCH"
                         and "/vrm/audit/" not in u)
        assert writes == Counter({command.shard_url(view.id): 1, command.feed_url: 1,
                                  (await command.locate(url))[0]: 1})
        assert await status(acme, "GET", url) == 403


async def test_the_index_of_earlier_versions_is_moved_into_the_shards(
    alice: PodClient, acme: PodClient, pod_env: PodEnv, scratch: str
) -> None:
    """A pod whose grants were indexed in the single ``vrm/grants`` document: the first read
    of the index moves the entries into their shards and deletes the old document, and the
    grants can still be revoked."""
    from vrm_agent.access.index import entry_graph, entry_triples

    url = scratch + "old-index"
    await put_thing(alice, url)
    before = AccessControl(alice, owner_webid=pod_env.alice.webid, storage=pod_env.alice.pod)
    view = await before.grant(pod_env.acme.webid, [url], ["Read"], until=later())
    shard = before.shard_url(view.id)
    doc_url, _ = await before.locate(url)
    known = (await before._views_of([view.id]))[view.id]
    await alice.patch(shard, deletes=entry_triples(shard, known))  # as an earlier version left it
    legacy = pod_env.alice.pod + "vrm/grants"
    await alice.patch(legacy, inserts=entry_graph(legacy, known, {url: doc_url}))
    await before.flush()

    after = AccessControl(alice, owner_webid=pod_env.alice.webid, storage=pod_env.alice.pod)
    assert view.id in (await after.index()).entries
    assert (await alice.request("GET", legacy, expect_ok=False)).status == 404
    fresh = AccessControl(alice, owner_webid=pod_env.alice.webid, storage=pod_env.alice.pod)
    await fresh.revoke(view.id)  # from its shard now
    assert await status(acme, "GET", url) == 403
    await after.flush()
    await fresh.flush()


async def test_an_entry_whose_grant_is_gone_is_removed_at_the_next_start(
    alice: PodClient, acme: PodClient, pod_env: PodEnv, scratch: str
) -> None:
    """A process that ended a grant and stopped before its entry's deletion left: the next
    start's look through the documents finds the grant in none of them and deletes the entry,
    without logging the grant as ended a second time."""
    url = scratch + "orphan"
    await put_thing(alice, url)
    first = AccessControl(alice, owner_webid=pod_env.alice.webid, storage=pod_env.alice.pod)
    view = await first.grant(pod_env.acme.webid, [url], ["Read"], until=later())
    await first.flush()
    doc_url, fmt = await first.locate(url)
    response = await alice.request("GET", doc_url, headers={"Accept": "text/turtle"})
    without = fmt.apply_changes(fmt.parse(response.body, doc_url), doc_url, url,
                                pod_env.alice.webid, remove=[view.id])
    await alice.put(doc_url, fmt.serialize(without, doc_url), content_type="text/turtle",
                    if_match=response.etag)  # ended in the document; the entry stays
    assert await status(acme, "GET", url) == 403

    restarted = AccessControl(alice, owner_webid=pod_env.alice.webid,
                              storage=pod_env.alice.pod)
    assert view.id in (await restarted.index()).entries
    recent, _ = await restarted.reconcile()
    assert view.id in (await restarted.index()).entries  # made a moment ago: left alone
    removed, _ = await restarted.reconcile(datetime.now(UTC) + timedelta(minutes=2))
    assert view.id not in (await restarted.index()).entries and removed == recent == []
    await restarted.flush()
    again = AccessControl(alice, owner_webid=pod_env.alice.webid, storage=pod_env.alice.pod)
    assert view.id not in (await again.index()).entries


async def test_an_index_naming_places_outside_the_pod_is_not_followed(
    alice: PodClient, pod_env: PodEnv, scratch: str
) -> None:
    """The index is a document in the pod that other apps may write to. An entry whose
    resources or copies lie outside the person's storage, or a document placed outside it, is
    skipped and reported: the agent never writes there with the person's token."""
    from rdflib import URIRef as Iri

    from vrm_agent.access._rdf import ACL
    from vrm_agent.access.index import GrantView, entry_graph
    from vrm_agent.access.model import AccessMode

    outside = "http://attacker.example/steal"
    maker = AccessControl(alice, owner_webid=pod_env.alice.webid, storage=pod_env.alice.pod)
    inside = scratch + "named"
    hostile = {
        "far-resource": GrantView("far-resource", pod_env.acme.webid, (outside,),
                                  frozenset({AccessMode.READ}), later(), False, None),
        "far-copy": GrantView("far-copy", pod_env.acme.webid, (scratch,),
                              frozenset({AccessMode.READ}), later(), True, None,
                              copies=(outside,)),
    }
    for view in hostile.values():
        shard = maker.shard_url(view.id)
        await alice.patch(shard, inserts=entry_graph(shard, view, {}))
    misplaced = Graph()
    misplaced.add((Iri(inside), ACL.accessControl, Iri(outside + ".acl")))
    await alice.patch(maker.shard_url("far-resource"), inserts=misplaced)

    reader = AccessControl(alice, owner_webid=pod_env.alice.webid, storage=pod_env.alice.pod)
    index = await reader.index()
    assert not set(hostile) & set(index.entries)
    assert any("far-resource" in p for p in index.problems)
    assert any("far-copy" in p for p in index.problems)
    assert index.documents.get(inside) != outside + ".acl"
    with pytest.raises(GrantNotFound):
        await reader.revoke("far-copy")
    await reader.flush()

"""Change of address in one move, end to end: a real `vrm-agent run` process on a real pod server
(WAC and ACP), the person `mover` and vendors with accounts of their own.

mover-shop-1 and mover-shop-2 hold agreements on mover's postal address and follow it through
the pod's notifications (channels made with their own tokens and registered with the agent);
mover-shop-3 held one too, with a channel, and it was revoked. `vrm-agent contact set` changes
the address: the first two hear of it from the agent and from the pod, read the new value and
say so, and mover's view shows it; the third hears nothing and reads 403. What each vendor may
read is proved by its own requests; the pod's own answer proves a channel is gone.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
import pytest_asyncio

from tests.conftest import PodEnv, RunningAgent, new_accounts, run_cli, start_agent, stop_agent
from vrm_agent.ledger.records import ContactUnit, Vendor
from vrm_agent.ledger.store import Ledger
from vrm_agent.negotiation.protocol import State
from vrm_agent.negotiation.wire import PROTOCOL_CONTEXT
from vrm_agent.pod.client import PodClient
from vrm_agent.podserver import PodAccount
from vrm_agent.vendor import (
    AgentInfo,
    AgentRefused,
    ChangeFollower,
    Inbox,
    NegotiationView,
    VendorAgent,
    request_policy,
)
from vrm_agent.vendor.changes import Channel

pytestmark = pytest.mark.pod
VENDORS = ("mover-shop-1", "mover-shop-2", "mover-shop-3", "mover-shop-4", "mover-stranger")


@dataclass
class Shop:
    account: PodAccount
    pod: PodClient
    inbox: Inbox
    vendor: VendorAgent
    agent: AgentInfo
    follower: ChangeFollower
    view: NegotiationView | None = None
    channel: Channel | None = None

    async def read(self, url: str) -> int:
        return (await self.vendor.read(url)).status

    async def post(self, path: str, message: dict[str, Any], *,
                   negotiation: str | None = None) -> int:
        """A message of the vendor's own making to an endpoint of its negotiation (or of
        ``negotiation``)."""
        url = negotiation or (self.view.url if self.view else "")
        response = await self.pod.request(
            "POST", url + path, body=json.dumps(message),
            headers={"Content-Type": "application/ld+json"}, expect_ok=False)
        return response.status


@dataclass
class Move:
    person: PodAccount
    agent: RunningAgent
    address: str
    phone: str
    shops: dict[str, Shop]
    first: dict[str, Any] = field(default_factory=dict)  # contact set, before shop-2 agreed
    second: dict[str, Any] = field(default_factory=dict)  # contact set, both agreements in force
    told: dict[str, Any] = field(default_factory=dict)  # contact told, after the reads


def cli(move: Move, *args: str) -> str:
    result = run_cli(*args, "--config", str(move.agent.config))
    assert result.returncode == 0, result.stderr
    return result.stdout


async def agree(shop: Shop, *categories: str) -> NegotiationView:
    view = await shop.vendor.request(shop.agent, request_policy(
        list(categories), purpose="dpv:DeliveryOfGoods", duration=timedelta(days=7)))
    assert view.state is State.AGREED, view.document
    shop.view = await shop.vendor.verify(view)
    return shop.view


def changed(change: str) -> Any:
    return lambda n: n.type == "DataChangedMessage" and n.document.get("change") == change


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def move(pod_env: PodEnv, tmp_path_factory: pytest.TempPathFactory
               ) -> AsyncIterator[Move]:
    accounts = await new_accounts(pod_env.server, "mover", *VENDORS)
    person = accounts.pop("mover")
    async with PodClient(person.credentials) as pod:
        ledger = Ledger(pod, person.pod)
        address = await ledger.create(ContactUnit(
            "address-home", "address", "1 Old Street", locality="Oldtown", postal_code="11111",
            country="DE"))
        phone = await ledger.create(ContactUnit("phone-mobile", "phone", "+49 30 1234567"))
        for name, account in accounts.items():
            await ledger.create(Vendor(name, name.title(), webid=account.webid))
    agent = start_agent(pod_env, tmp_path_factory.mktemp(f"mover-{pod_env.flavour.value}"),
                        account=person)
    shops: dict[str, Shop] = {}
    try:
        for name, account in accounts.items():
            pod = PodClient(account.credentials)
            await pod.open()
            inbox = Inbox()
            await inbox.start()
            vendor = VendorAgent(pod, inbox=inbox)
            follower = ChangeFollower(vendor)
            await follower.start()
            shops[name] = Shop(account, pod, inbox, vendor,
                               await vendor.discover(person.webid), follower)
        move = Move(person, agent, address, phone, shops)
        await story(move)
        yield move
    finally:
        for shop in shops.values():
            await shop.follower.stop()
            await shop.inbox.stop()
            await shop.pod.close()
        stop_agent(agent)


async def story(move: Move) -> None:
    """What the tests below look at, in the order it happens."""
    one, two, three = (move.shops[f"mover-shop-{n}"] for n in (1, 2, 3))
    for shop in (one, three):
        view = await agree(shop, "pd:PhysicalAddress")
        assert view.resources == [move.address]
        shop.channel = await shop.follower.follow(view, move.address)
    # The third agreement ends: its grant, then its channel at the pod, then the vendor is told.
    assert three.view is not None
    await asyncio.to_thread(cli, move, "grants", "revoke", three.view.url.rsplit("/", 1)[-1])
    await three.inbox.wait_for(lambda n: n.type == "ContractNegotiationTerminationMessage")
    move.first = json.loads(await asyncio.to_thread(
        cli, move, "contact", "set", "address-home", "2 Middle Road", "--json"))
    await one.inbox.wait_for(changed(move.first["change"]))
    view = await agree(two, "pd:PhysicalAddress")
    two.channel = await two.follower.follow(view, move.address)
    move.second = json.loads(await asyncio.to_thread(
        cli, move, "contact", "set", "address-home", "3 New Avenue", "--locality", "Newtown",
        "--json"))
    for shop in (one, two):
        message = await shop.inbox.wait_for(changed(move.second["change"]))
        observed = await shop.follower.on_message(message)
        assert observed.acknowledged, observed
        await shop.follower.wait_for(lambda o: o.via == "pod notification"
                                     and o.etag == move.second["etag"])
    move.told = json.loads(await asyncio.to_thread(
        cli, move, "contact", "told", "address-home", "--json"))


# -- the move --------------------------------------------------------------------------------------


async def test_vendors_with_agreements_are_told_by_the_agent_and_by_the_pod(move: Move) -> None:
    for name in ("mover-shop-1", "mover-shop-2"):
        shop = move.shops[name]
        message = await shop.inbox.wait_for(changed(move.second["change"]))
        assert message.document["resource"] == [move.address]
        assert message.negotiation == (shop.view.url if shop.view else None)
        assert "3 New Avenue" not in json.dumps(message.document)  # never the value itself
        webhook = await shop.follower.wait_for(lambda o: o.via == "pod notification"
                                               and o.etag == move.second["etag"])
        assert (webhook.resource, webhook.status) == (move.address, 200)
    assert not move.shops["mover-shop-1"].follower.refusals
    rows = {r["vendor_webid"]: r for r in move.second["told"]}
    assert set(rows) == {move.shops[n].account.webid for n in ("mover-shop-1", "mover-shop-2")}
    assert {r["message"] for r in rows.values()} == {"delivered"}
    assert {r["pod_notification"] for r in rows.values()} == {"subscribed"}


async def test_they_read_the_new_value_and_the_person_sees_who_read_it(move: Move) -> None:
    for name in ("mover-shop-1", "mover-shop-2"):
        response = await move.shops[name].vendor.read(move.address)
        assert response.status == 200 and "3 New Avenue" in response.text()
    rows = {r["vendor"]: r for r in move.told["told"]}
    assert move.told["change"] == move.second["change"]
    assert set(rows) == {"Mover-Shop-1", "Mover-Shop-2"}  # the names the ledger gives them
    for row in rows.values():
        assert (row["message"], row["pod_notification"], row["read"]) == \
            ("delivered", "subscribed", "yes")
        assert row["read_etag"] == move.second["etag"] and row["read_at"]
    text = await asyncio.to_thread(cli, move, "contact", "told", "address-home")
    assert "Mover-Shop-1" in text and "the vendor's own acknowledgement" in text


async def test_a_vendor_whose_agreement_ended_is_not_told_and_cannot_read(move: Move) -> None:
    three = move.shops["mover-shop-3"]
    assert await three.read(move.address) == 403
    assert [n.type for n in three.inbox.received] == ["ContractNegotiationTerminationMessage"]
    assert three.follower.observed == []  # no webhook, for either change
    assert all(r["vendor_webid"] != three.account.webid
               for change in (move.first, move.second) for r in change["told"])
    # The pod itself says the channel is gone: it was deleted when the agreement ended.
    assert three.channel is not None
    async with PodClient(move.person.credentials) as pod:
        assert (await pod.request("DELETE", three.channel.id, expect_ok=False)).status == 404


async def test_a_change_before_an_agreement_is_not_told_to_it(move: Move) -> None:
    assert [r["vendor"] for r in move.first["told"]] == ["Mover-Shop-1"]
    two = move.shops["mover-shop-2"]
    assert not [n for n in two.inbox.received if n.document.get("change") == move.first["change"]]


# -- what vendors may not do -----------------------------------------------------------------------


def read_message(shop: Shop, resource: str, *, change: str | None = None,
                 negotiation: str | None = None) -> dict[str, Any]:
    assert shop.view is not None
    message = {"@context": PROTOCOL_CONTEXT, "type": "DataReadMessage",
               "negotiation": negotiation or shop.view.url, "resource": [resource],
               "etag": '"forged"'}
    return {**message, "change": change} if change else message


async def test_an_acknowledgement_without_an_agreement_is_refused(move: Move) -> None:
    one, three = move.shops["mover-shop-1"], move.shops["mover-shop-3"]
    stranger = move.shops["mover-stranger"]
    # A vendor that never agreed, on another vendor's negotiation: that negotiation is unknown
    # to it.
    assert one.view is not None
    assert await stranger.post("/reads", read_message(
        one, move.address, change=move.second["change"]), negotiation=one.view.url) == 404
    # The vendor whose agreement was revoked, on its own negotiation.
    assert await three.post("/reads", read_message(three, move.address)) == 409
    rows = json.loads(await asyncio.to_thread(
        cli, move, "contact", "told", "address-home", "--json"))["told"]
    assert '"forged"' not in {r["read_etag"] for r in rows}


async def test_an_acknowledgement_of_another_vendors_change_is_refused(move: Move) -> None:
    two = move.shops["mover-shop-2"]
    # The first change was told to mover-shop-1 alone, before mover-shop-2 agreed.
    with pytest.raises(AgentRefused) as refused:
        await two.follower.acknowledge(two.view.url if two.view else "", move.address,
                                       '"forged"', change=move.first["change"])
    assert refused.value.status == 404
    # A change the agent never announced is refused, named as the vendor named it.
    unknown = f"urn:uuid:{uuid.uuid4()}"
    with pytest.raises(AgentRefused) as refused:
        await two.follower.acknowledge(two.view.url if two.view else "", move.address,
                                       '"forged"', change=unknown)
    assert refused.value.status == 404
    assert unknown in str(refused.value.problem.get("detail"))
    # Nor a resource its agreement does not cover, nor a change that is not a urn:uuid.
    assert await two.post("/reads", read_message(two, move.phone)) == 409
    assert await two.post("/reads", read_message(
        two, move.address, change=f"{move.person.pod}vrm/changes/x")) == 400


async def test_a_channel_outside_the_pods_notification_service_is_refused_and_never_deleted(
        move: Move, pod_env: PodEnv) -> None:
    one = move.shops["mover-shop-1"]
    assert one.view is not None and one.channel is not None
    service = one.channel.id.rsplit("/", 1)[0] + "/"
    hostile = [move.address, move.person.webid, f"{move.person.pod}vrm/negotiations/",
               service + "../../mover/profile/card", service + "x/y",
               "http://localhost:1/.notifications/WebhookChannel2023/x"]
    for url in hostile:
        assert await one.post("/channels", {
            "@context": PROTOCOL_CONTEXT, "type": "ChannelRegistrationMessage",
            "negotiation": one.view.url, "channel": [url], "resource": [move.address]}) == 400
    # Another vendor's negotiation is not the caller's to register on.
    assert await move.shops["mover-shop-2"].post("/channels", {
        "@context": PROTOCOL_CONTEXT, "type": "ChannelRegistrationMessage",
        "negotiation": one.view.url, "channel": [service + "abc"],
        "resource": [move.address]}, negotiation=one.view.url) == 404
    # Revoking the agreement deletes the channel it registered, and nothing else.
    await asyncio.to_thread(cli, move, "grants", "revoke", one.view.url.rsplit("/", 1)[-1])
    await one.inbox.wait_for(lambda n: n.type == "ContractNegotiationTerminationMessage")
    async with PodClient(move.person.credentials) as pod:
        assert (await pod.request("DELETE", one.channel.id, expect_ok=False)).status == 404
        for url in (move.address, move.person.webid):
            assert (await pod.request("GET", url, expect_ok=False)).status == 200
    assert await one.read(move.address) == 403


async def test_the_discovery_document_names_the_change_endpoints(move: Move) -> None:
    shop = move.shops["mover-shop-2"]
    response = await shop.pod.request("GET", move.agent.url + ".well-known/vrm-agent",
                                      authenticated=False)
    document = response.json()
    assert document["vrm:channelRegistrationEndpoint"] == \
        move.agent.url + "negotiations/{id}/channels"
    assert document["vrm:readAcknowledgementEndpoint"] == \
        move.agent.url + "negotiations/{id}/reads"


async def test_an_agreement_keeps_a_bounded_number_of_channels_and_bounded_etags(
        move: Move) -> None:
    two = move.shops["mover-shop-2"]
    assert two.view is not None and two.channel is not None
    service = two.channel.id.rsplit("/", 1)[0] + "/"

    def registration(name: str) -> dict[str, Any]:
        assert two.view is not None
        return {"@context": PROTOCOL_CONTEXT, "type": "ChannelRegistrationMessage",
                "negotiation": two.view.url, "channel": [service + name],
                "resource": [move.address]}

    # The one it made, and three more: four in all. (Made up, they are only ever deleted,
    # which the pod answers 404.)
    statuses = [await two.post("/channels", registration(f"made-up-{n}")) for n in range(4)]
    assert statuses == [201, 201, 201, 409]
    assert await two.post("/channels", registration("made-up-0")) == 201  # the same again
    assert await two.post("/reads", {**read_message(two, move.address),
                                     "etag": "x" * 201}) == 400


async def test_a_webhook_the_pod_did_not_sign_is_refused_and_changes_nothing(move: Move) -> None:
    two = move.shops["mover-shop-2"]
    before = len(two.follower.observed)
    body = json.dumps({"@context": ["https://www.w3.org/ns/solid/notification/v1"],
                       "type": "Update", "object": move.address})
    async with PodClient(move.person.credentials) as pod:  # any token but the pod's own
        forged = await pod.request("POST", two.follower.url, body=body, expect_ok=False,
                                   headers={"Content-Type": "application/ld+json"})
        anonymous = await pod.request("POST", two.follower.url, body=body, expect_ok=False,
                                      authenticated=False,
                                      headers={"Content-Type": "application/ld+json"})
        elsewhere = await pod.request(
            "POST", two.follower.url, expect_ok=False, authenticated=False,
            body=json.dumps({"type": "Update", "object": move.phone}),
            headers={"Content-Type": "application/ld+json"})
    assert (forged.status, anonymous.status, elsewhere.status) == (401, 401, 404)
    assert len(two.follower.observed) == before


async def test_an_agreement_that_expires_takes_its_channel_with_it(move: Move) -> None:
    """The running agent's expiry ends the agreement: the channel goes at the pod as with a
    revocation, and the vendor is told after."""
    four = move.shops["mover-shop-4"]
    view = await four.vendor.request(four.agent, request_policy(
        ["pd:PhysicalAddress"], purpose="dpv:DeliveryOfGoods", duration=timedelta(seconds=4)))
    assert view.state is State.AGREED, view.document
    four.view = view
    four.channel = await four.follower.follow(view, move.address)
    ended = await four.inbox.wait_for(
        lambda n: n.type == "ContractNegotiationTerminationMessage", timeout=30)
    assert ended.event == "expired"
    async with PodClient(move.person.credentials) as pod:
        assert (await pod.request("DELETE", four.channel.id, expect_ok=False)).status == 404
    assert await four.read(move.address) == 403

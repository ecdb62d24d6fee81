"""Attacks on change of address and intentcasting (docs/protocol.md §16, §17): a real
`vrm-agent run` process on a real pod server (WAC and ACP), the person `capx` and vendors with
accounts of their own, and records other apps wrote into the person's pod.

What each attack may reach is judged by the pod (an anonymous or a vendor's own read) and by the
person's own listing of their records, never by the agent's word alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import aiohttp
import pytest
import pytest_asyncio

from tests.conftest import PodEnv, RunningAgent, new_accounts, run_cli, start_agent, stop_agent
from vrm_agent.ledger.intents import IntentAudience
from vrm_agent.ledger.records import ContactUnit, Relationship, Vendor
from vrm_agent.ledger.store import Ledger, RecordNotFound
from vrm_agent.negotiation.protocol import State
from vrm_agent.negotiation.wire import PROTOCOL_CONTEXT
from vrm_agent.pod.client import PodClient
from vrm_agent.podserver import PodAccount
from vrm_agent.vendor import (
    AgentInfo,
    AgentRefused,
    ChangeFollower,
    Inbox,
    IntentClient,
    NegotiationView,
    VendorAgent,
    request_policy,
)

pytestmark = pytest.mark.pod
VENDORS = ("capx-v1", "capx-v2")
TURTLE = "text/turtle"
PREFIXES = """@prefix vrm: <https://w3id.org/vrm-agent/ns#> .
@prefix schema: <http://schema.org/> .
@prefix xsd: <http://www.w3.org/2001/XMLSchema#> .
@prefix dcterms: <http://purl.org/dc/terms/> .
@prefix prov: <http://www.w3.org/ns/prov#> .
"""


@dataclass
class Shop:
    pod: PodClient
    inbox: Inbox
    vendor: VendorAgent
    intents: IntentClient
    agent: AgentInfo


@dataclass
class Scene:
    person: PodAccount
    agent: RunningAgent
    owner: PodClient
    shops: dict[str, Shop]
    accounts: dict[str, PodAccount]

    @property
    def pod(self) -> str:
        return self.person.pod

    async def cli(self, *args: str) -> Any:
        """The real command, in a thread: the vendors' inboxes on this loop answer meanwhile."""
        result = await asyncio.to_thread(run_cli, *args, "--json", "--config",
                                         str(self.agent.config))
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    async def cli_fails(self, *args: str) -> str:
        """The command's refusal: one line in the person's words, no traceback."""
        result = await asyncio.to_thread(run_cli, *args, "--config", str(self.agent.config))
        assert result.returncode != 0 and "Traceback" not in result.stderr, result
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
        return result.stderr

    async def put(self, path: str, turtle: str) -> None:
        await self.owner.put(self.pod + path, PREFIXES + turtle, content_type=TURTLE)


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def scene(pod_env: PodEnv, tmp_path_factory: pytest.TempPathFactory
                ) -> AsyncIterator[Scene]:
    accounts = await new_accounts(pod_env.server, "capx", *VENDORS)
    person = accounts.pop("capx")
    async with PodClient(person.credentials) as pod:
        ledger = Ledger(pod, person.pod)
        await ledger.create(ContactUnit("address-home", "address", "1 Old Street",
                                        locality="Oldtown", postal_code="11111", country="DE"))
        for name, account in accounts.items():
            await ledger.create(Vendor(name, name.title(), webid=account.webid))
    agent = start_agent(pod_env, tmp_path_factory.mktemp(f"capx-{pod_env.flavour.value}"),
                        account=person)
    shops: dict[str, Shop] = {}
    owner = PodClient(person.credentials)
    await owner.open()
    try:
        for name, account in accounts.items():
            pod = PodClient(account.credentials)
            await pod.open()
            inbox = Inbox()
            await inbox.start()
            vendor = VendorAgent(pod, inbox=inbox)
            shops[name] = Shop(pod, inbox, vendor, IntentClient(vendor),
                               await vendor.discover(person.webid))
        yield Scene(person, agent, owner, shops, accounts)
    finally:
        for shop in shops.values():
            await shop.inbox.stop()
            await shop.pod.close()
        await owner.close()
        stop_agent(agent)


async def anonymous_status(url: str) -> int:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return response.status


async def post(shop: Shop, url: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    response = await shop.pod.request("POST", url, body=json.dumps(body),
                                      headers={"Content-Type": "application/ld+json"},
                                      expect_ok=False)
    return response.status, json.loads(response.body or b"{}")


def offer_body(intent: dict[str, Any], price: str = "10") -> dict[str, Any]:
    return {"@context": "https://w3id.org/vrm-agent/protocol/v1", "type": "IntentOfferMessage",
            "intent": intent["resource"], "price": price, "priceCurrency": "EUR",
            "acceptsTerms": intent["terms"]}


# -- publish_intent: one intent document public, nothing else --------------------------------


async def test_an_intent_id_never_names_an_access_control_or_description_resource(
        scene: Scene) -> None:
    """`.acl` and `.acr` name the access control of the resource named without them: an intent
    `capx-sibling.acl` would be written as the access control of `capx-sibling`, granting
    nobody anything, and lock the person out of that intent before it exists."""
    for odd in ("capx-sibling.acl", "capx-sibling.acr"):  # .meta: tests/test_intents.py
        line = await scene.cli_fails("intent", "add", "odd", "--budget", "10", "--currency",
                                     "EUR", "--public", "--id", odd)
        assert f"id {odd!r} cannot name a resource" in line, line
    sibling = await scene.cli("intent", "add", "a sibling", "--budget", "10", "--currency",
                              "EUR", "--public", "--id", "capx-sibling")
    assert await anonymous_status(sibling["resource"]) == 200
    members = await scene.owner.list_container(f"{scene.pod}vrm/intents/")
    assert [m.rsplit("/", 1)[-1] for m in members] == ["capx-sibling"]
    for private in ("vrm/intents/", "vrm/intent-audience/capx-sibling", "vrm/offers/",
                    "vrm/"):
        assert await anonymous_status(scene.pod + private) in (401, 403), private
    await scene.cli("intent", "close", "capx-sibling")
    assert await anonymous_status(sibling["resource"]) in (401, 403)


# -- records other apps wrote into the person's pod ----------------------------------------


async def test_malformed_intents_and_offers_from_other_apps_break_nothing(scene: Scene) -> None:
    """Another app with write access put intents the agent never wrote into `vrm/intents/`
    (prices that are no number, not a number, an exponent beyond any budget) and a junk offer
    beside real ones: vendors still list and offer, commands still answer, in one line where
    they cannot."""
    shop = scene.shops["capx-v1"]
    for intent_id, price in (("capx-junk-word", "lots"), ("capx-junk-nan", "NaN"),
                             ("capx-junk-huge", "1E+999999")):
        await scene.put(f"vrm/intents/{intent_id}", f"""
<#it> a vrm:Intent, schema:Demand ; schema:itemOffered <#item> ;
    schema:priceSpecification <#budget> ; vrm:terms <{scene.pod}vrm/terms/sd-base#it> .
<#item> schema:name "junk" .
<#budget> schema:maxPrice "{price}"^^xsd:decimal ; schema:priceCurrency "EUR" .
""")
        await scene.put(f"vrm/intent-audience/{intent_id}", f"""
<#it> a vrm:IntentAudience ; vrm:intent <../intents/{intent_id}#it> ;
    vrm:visibleToAll true .
""")
    real = await scene.cli("intent", "add", "a lamp", "--budget", "50", "--currency", "EUR",
                           "--public", "--id", "capx-lamp")
    status, view = await post(shop, real["offers_endpoint"], offer_body(real, "40"))
    assert status == 201, view
    await scene.put("vrm/offers/capx-lamp/capx-junk-offer", f"""
<#it> a vrm:IntentOffer, schema:Offer ; vrm:intent <../../intents/capx-lamp#it> ;
    schema:seller <{scene.accounts['capx-v2'].webid}> ;
    schema:price "NaN"^^xsd:decimal ; schema:priceCurrency "EUR" ;
    vrm:acceptsTerms <{real['terms']}> ;
    dcterms:created "2026-01-01T00:00:00Z"^^xsd:dateTime .
""")
    # The vendors' side: a listing, offers refused as a problem document, never a 500.
    listing = await shop.intents.list(shop.agent)
    assert real["resource"] in {e.intent for e in listing}
    for intent_id in ("capx-junk-word", "capx-junk-nan", "capx-junk-huge"):
        junk = {"resource": f"{scene.pod}vrm/intents/{intent_id}", "terms": real["terms"]}
        status, problem = await post(shop, f"{scene.agent.url}intents/{intent_id}/offers",
                                     offer_body(junk))
        assert 400 <= status < 500, (intent_id, status, problem)
    # The person's side: the good ones listed and compared, the junk named in one line.
    listed = {i["id"] for i in await scene.cli("intent", "list", "--all")}
    assert "capx-lamp" in listed
    offers = await scene.cli("intent", "offers", "capx-lamp")
    assert [o["price"] for o in offers] == ["40.00"]
    for argv in (("intent", "show", "capx-junk-nan"),
                 ("intent", "accept", "capx-lamp", "capx-junk-offer")):
        line = await scene.cli_fails(*argv)
        assert "class" not in line and "decimal" not in line.lower(), line


# -- accepting -------------------------------------------------------------------------------


async def test_two_offers_accepted_at_once_make_one_customer(scene: Scene) -> None:
    """Two `intent accept` commands at the same moment, for two vendors' offers: one agreement,
    and only its vendor becomes a customer."""
    intent = await scene.cli("intent", "add", "a kettle", "--budget", "30", "--currency", "EUR",
                             "--public", "--id", "capx-kettle")
    offers = {}
    for name, price in (("capx-v1", "25"), ("capx-v2", "26")):
        status, view = await post(scene.shops[name], intent["offers_endpoint"],
                                  offer_body(intent, price))
        assert status == 201, view
        offers[name] = view["id"].rsplit("/", 1)[-1]
    results = await asyncio.gather(*(asyncio.to_thread(
        run_cli, "intent", "accept", "capx-kettle", offer, "--json", "--config",
        str(scene.agent.config)) for offer in offers.values()))
    won = [name for name, r in zip(offers, results, strict=True) if r.returncode == 0]
    assert len(won) == 1, [(r.returncode, r.stderr) for r in results]
    for result in results:
        assert "Traceback" not in result.stderr
    ledger = Ledger(scene.owner, scene.pod)
    vendors = {v.webid: v.id for v in await ledger.list(Vendor)}
    customers = set()
    for name, account in scene.accounts.items():
        with contextlib.suppress(KeyError, RecordNotFound):
            if (await ledger.get(Relationship, vendors[account.webid])).state == "customer":
                customers.add(name)
    assert customers == set(won)
    assert not (await ledger.get(IntentAudience, "capx-kettle")).is_open


# -- what vendors may see and offer ------------------------------------------------------------


async def test_a_vendor_sees_neither_a_private_intent_nor_who_else_was_asked(
        scene: Scene) -> None:
    asked, stranger = scene.shops["capx-v1"], scene.shops["capx-v2"]
    webid = scene.accounts["capx-v1"].webid
    intent = await scene.cli("intent", "add", "a quiet room", "--budget", "900", "--currency",
                             "EUR", "--vendor", webid, "--id", "capx-room")
    document = await asked.vendor.read(intent["resource"])
    assert document.status == 200
    assert scene.accounts["capx-v2"].webid not in document.text()
    assert "intent-audience" not in document.text()
    for url in (f"{scene.pod}vrm/intent-audience/capx-room", f"{scene.pod}vrm/offers/"):
        assert (await asked.vendor.read(url)).status == 403
    assert (await stranger.vendor.read(intent["resource"])).status == 403
    assert intent["resource"] not in {e.intent for e in
                                      await stranger.intents.list(stranger.agent)}
    status, _ = await post(stranger, intent["offers_endpoint"], offer_body(intent))
    assert status == 404  # the same answer as for an intent that does not exist
    status, view = await post(asked, intent["offers_endpoint"], offer_body(intent, "800"))
    assert status == 201
    with pytest.raises(AgentRefused) as refused:
        await stranger.intents.own_offer(view["id"])
    assert refused.value.status == 404
    # Prices: the most the protocol takes, and one digit more.
    status, _ = await post(asked, intent["offers_endpoint"],
                           offer_body(intent, "999999999999.9999"))
    assert status == 201
    for price in ("9999999999999", "1" + "0" * 400, "NaN", "Infinity", "0x10", "1_000"):
        status, problem = await post(asked, intent["offers_endpoint"],
                                     offer_body(intent, price))
        assert status == 400, (price, problem)
    await scene.cli_fails("intent", "add", "x", "--budget", "1e400", "--currency", "EUR",
                          "--public")
    compared = await scene.cli("intent", "offers", "capx-room")
    assert [o["price"] for o in compared] == ["800.00", "999999999999.9999"]


# -- change of address ---------------------------------------------------------------------------


async def agree_on_address(shop: Shop) -> NegotiationView:
    view = await shop.vendor.request(shop.agent, request_policy(
        ["pd:PhysicalAddress"], purpose="dpv:DeliveryOfGoods", duration=timedelta(days=7)))
    assert view.state is State.AGREED, view.document
    return await shop.vendor.verify(view)


def registration(view: NegotiationView, channel: str, resource: str) -> dict[str, Any]:
    return {"@context": PROTOCOL_CONTEXT, "type": "ChannelRegistrationMessage",
            "negotiation": view.url, "channel": [channel], "resource": [resource]}


async def test_a_vendor_gets_nothing_but_its_own_channel_deleted_and_its_own_reads_kept(
        scene: Scene) -> None:
    one, two = scene.shops["capx-v1"], scene.shops["capx-v2"]
    address = f"{scene.pod}vrm/contact/address-home"
    views = [await agree_on_address(shop) for shop in (one, two)]
    follower = ChangeFollower(one.vendor)
    await follower.start()
    try:
        channel = await follower.follow(views[0], address)
    finally:
        await follower.stop()
    service = channel.id.rsplit("/", 1)[0] + "/"
    origin = service.split("/.notifications/", 1)[0]
    # The storage description and the service itself, spelled otherwise: never channels.
    for url in (f"{origin}/.well-known/solid", service, service.rstrip("/"),
                service + "%2E%2E", service + "./", service + "x?y=1",
                service.replace("localhost", "LOCALHOST", 1) + "..",
                f"{scene.pod}vrm/negotiations/"):
        status, problem = await post(one, views[0].url + "/channels",
                                     registration(views[0], url, address))
        assert status == 400, (url, problem)
    # One plain segment below the service that is the pod's own (the WebID its webhooks are
    # signed as) is taken, and deleting it when the agreement ends does nothing to the pod.
    webhook_sender = service + "webId"
    for url in (channel.id, webhook_sender):
        status, problem = await post(one, views[0].url + "/channels",
                                     registration(views[0], url, address))
        assert status == 201, problem
    # Another vendor's negotiation: unknown to the caller, whatever it says.
    status, _ = await post(one, views[1].url + "/channels",
                           registration(views[1], service + "abc", address))
    assert status == 404
    read = {"@context": PROTOCOL_CONTEXT, "type": "DataReadMessage", "negotiation": views[1].url,
            "resource": [address], "etag": '"forged"'}
    status, _ = await post(one, views[1].url + "/reads", read)
    assert status == 404
    # A change record another app wrote, newer than any the agent wrote and unreadable, does
    # not stop the vendor's acknowledgement of the real one, nor the person's view of it.
    await scene.cli("contact", "set", "address-home", "2 New Street")
    await scene.put("vrm/changes/ffffffffffffffffffffffffffffffff", f"""
<#it> a vrm:ChangeRecord ; vrm:changedResource <{address}> ;
    prov:generatedAtTime "yesterday"^^xsd:dateTime .
""")
    read.update(negotiation=views[0].url, etag='"read"')
    status, problem = await post(one, views[0].url + "/reads", read)
    assert status == 204, problem
    told = {r["vendor_webid"]: r for r in
            (await scene.cli("contact", "told", "address-home"))["told"]}
    assert told[scene.accounts["capx-v1"].webid]["read_etag"] == '"read"'
    assert told[scene.accounts["capx-v2"].webid]["read"] == "no"
    # Revoked: its channel is gone at the pod; the pod's own webhook identity is not.
    await scene.cli("grants", "revoke", views[0].url.rsplit("/", 1)[-1])
    assert (await scene.owner.request("DELETE", channel.id, expect_ok=False)).status == 404
    assert await anonymous_status(webhook_sender) == 200

"""Intentcasting end to end: the person (rfp) puts out intents with the real `vrm-agent intent`
command, vendors with accounts of their own find them through a running agent (a real
`vrm-agent run` process), read them from the pod with their own tokens and answer with offers;
the person compares and accepts one. What each vendor may read is proved by its own requests.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from rdflib import URIRef

from tests.conftest import PodEnv, RunningAgent, new_accounts, run_cli, start_agent, stop_agent
from vrm_agent.integrity import verify_proofs
from vrm_agent.ledger.records import Relationship, Vendor
from vrm_agent.ledger.store import Ledger
from vrm_agent.linkeddata.contexts import PROTOCOL_CONTEXT
from vrm_agent.pod.client import PodClient
from vrm_agent.podserver import PodAccount
from vrm_agent.vendor import AgentInfo, AgentRefused, Inbox, IntentClient, IntentEntry, VendorAgent

pytestmark = pytest.mark.pod
VENDORS = ("rfp-vendor-1", "rfp-vendor-2", "rfp-vendor-3", "rfp-vendor-4")
VRM = "https://w3id.org/vrm-agent/ns#"


@dataclass
class Market:
    person: PodAccount
    agent: RunningAgent
    vendors: dict[str, PodAccount]


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def market(pod_env: PodEnv, tmp_path_factory: pytest.TempPathFactory
                 ) -> AsyncIterator[Market]:
    vendors = await new_accounts(pod_env.server, "rfp", *VENDORS)
    person = vendors.pop("rfp")
    async with PodClient(person.credentials) as pod:
        # One vendor the person knows already; the others are strangers until accepted.
        await Ledger(pod, person.pod).create(Vendor("bikes", "Bikes & Co",
                                                    webid=vendors["rfp-vendor-1"].webid))
    agent = start_agent(pod_env, tmp_path_factory.mktemp(f"rfp-{pod_env.flavour.value}"),
                        account=person)
    yield Market(person, agent, vendors)
    stop_agent(agent)


@dataclass
class Shop:
    name: str
    vendor: VendorAgent
    intents: IntentClient
    agent: AgentInfo
    inbox: Inbox
    pod: PodClient


@pytest_asyncio.fixture(loop_scope="session")
async def shops(market: Market) -> AsyncIterator[dict[str, Shop]]:
    opened: dict[str, Shop] = {}
    try:
        for name in VENDORS:
            inbox = Inbox()
            await inbox.start()
            pod = PodClient(market.vendors[name].credentials)
            await pod.__aenter__()
            vendor = VendorAgent(pod, inbox=inbox)
            opened[name] = Shop(name, vendor, IntentClient(vendor),
                                await vendor.discover(market.person.webid), inbox, pod)
        yield opened
    finally:
        for shop in opened.values():
            await shop.pod.__aexit__(None, None, None)
            await shop.inbox.stop()


async def cli(market: Market, *args: str) -> Any:
    """The real command, in a thread: the vendors' inboxes on this loop must answer meanwhile."""
    result = await asyncio.to_thread(run_cli, *args, "--json", "--config",
                                     str(market.agent.config))
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


async def cli_fails(market: Market, *args: str) -> str:
    result = await asyncio.to_thread(run_cli, *args, "--config", str(market.agent.config))
    assert result.returncode != 0 and "Traceback" not in result.stderr, result
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    return result.stderr


async def status(shop: Shop, url: str) -> int:
    return (await shop.vendor.read(url)).status


async def entry_for(shop: Shop, resource: str) -> IntentEntry | None:
    return next((e for e in await shop.intents.list(shop.agent) if e.intent == resource), None)


async def listed(shop: Shop, resource: str, *, shown: bool = True) -> IntentEntry | None:
    """The listing's entry once it shows (or no longer shows) the intent: the agent answers
    listings from what it read up to two seconds before (docs/protocol.md 17.1)."""
    for _ in range(50):
        entry = await entry_for(shop, resource)
        if (entry is not None) == shown:
            return entry
        await asyncio.sleep(0.2)
    raise AssertionError(f"{shop.name} {'never' if shown else 'still'} lists {resource}")


async def offers_kept(market: Market, intent_id: str) -> int:
    return len(await cli(market, "intent", "offers", intent_id))


async def refused(status_code: int, coroutine: Any) -> dict[str, Any]:
    with pytest.raises(AgentRefused) as caught:
        await coroutine
    assert caught.value.status == status_code, caught.value.problem
    return caught.value.problem


def offer_body(entry: IntentEntry, terms: str, **changes: Any) -> dict[str, Any]:
    body = {"@context": PROTOCOL_CONTEXT, "type": "IntentOfferMessage", "intent": entry.intent,
            "price": "700.00", "priceCurrency": "EUR", "acceptsTerms": terms}
    body.update(changes)
    return {k: v for k, v in body.items() if v is not None}


async def post_raw(shop: Shop, url: str, body: bytes | str,
                   content_type: str = "application/ld+json") -> tuple[int, dict[str, Any]]:
    response = await shop.pod.request("POST", url, headers={"Content-Type": content_type},
                                      body=body, expect_ok=False)
    return response.status, json.loads(response.body or b"{}")


async def test_three_vendors_answer_a_public_intent_and_one_is_accepted(
        market: Market, shops: dict[str, Shop]) -> None:
    intent = await cli(market, "intent", "add", "touring bicycle", "--budget", "1200",
                       "--currency", "EUR", "--where", "Amsterdam", "--until", "2099-07-31",
                       "--public")
    resource, terms = intent["resource"], intent["terms"]
    assert terms == f"{market.person.pod}vrm/terms/sd-base#it"  # the default terms
    prices = {"rfp-vendor-1": "950.00", "rfp-vendor-2": "899.50", "rfp-vendor-3": "1100"}
    views = {}
    for name, price in prices.items():
        shop = shops[name]
        entry = await listed(shop, resource)  # public: every vendor lists it
        assert entry is not None
        seen = await shop.intents.read(entry)  # from the pod, with the vendor's own token
        assert seen.what == "touring bicycle" and seen.terms == terms
        views[name] = await shop.intents.offer(
            entry, price=price, currency="EUR", terms=terms, availability="schema:InStock",
            description=f"{name}'s best bicycle")
        assert views[name]["offerState"] == "open"
    # Each vendor sees its own offer, and no other.
    for name, view in views.items():
        assert (await shops[name].intents.own_offer(view["id"]))["price"] == \
            str(views[name]["price"])
    await refused(404, shops["rfp-vendor-1"].intents.own_offer(views["rfp-vendor-2"]["id"]))
    # The offers are the person's: no vendor reads them from the pod.
    offers_container = f"{market.person.pod}vrm/offers/{intent['id']}/"
    assert await status(shops["rfp-vendor-1"], offers_container) == 403

    compared = await cli(market, "intent", "offers", intent["id"])
    assert [o["price"] for o in compared] == ["899.50", "950.00", "1100.00"]  # cheapest first
    assert compared[1]["vendor"] == "Bikes & Co"  # the ledger's name for a known vendor
    winner = compared[0]
    assert winner["vendor_webid"] == market.vendors["rfp-vendor-2"].webid

    accepted = await cli(market, "intent", "accept", intent["id"], winner["id"])
    assert accepted["relationship"] == "customer" and accepted["vendors_not_told"] == 0
    won = await shops["rfp-vendor-2"].inbox.wait_for(lambda n: n.type == "OfferAcceptedMessage")
    assert won.negotiation == views["rfp-vendor-2"]["id"]
    agreement = won.document["agreement"]
    assert verify_proofs(agreement)  # signed by the person's agent
    assert agreement["acceptsTerms"] == terms
    for loser in ("rfp-vendor-1", "rfp-vendor-3"):
        told = await shops[loser].inbox.wait_for(lambda n: n.type == "IntentClosedMessage")
        assert told.negotiation == views[loser]["id"]
        assert not [n for n in shops[loser].inbox.received if n.type == "OfferAcceptedMessage"]
    assert (await shops["rfp-vendor-2"].intents.own_offer(views["rfp-vendor-2"]["id"])
            )["offerState"] == "accepted"
    assert (await shops["rfp-vendor-1"].intents.own_offer(views["rfp-vendor-1"]["id"])
            )["offerState"] == "declined"

    # The ledger: a vendor named from its WebID, a customer relationship the person started,
    # and the agreement record under the person's terms.
    async with PodClient(market.person.credentials) as pod:
        ledger = Ledger(pod, market.person.pod)
        vendor = await ledger.get(Vendor, accepted["vendor"])
        assert vendor.webid == market.vendors["rfp-vendor-2"].webid
        assert vendor.name.endswith("/rfp-vendor-2")  # not what the vendor says of itself
        relationship = await ledger.get(Relationship, vendor.id)
        assert relationship.state == "customer"
        assert relationship.initiated_by == market.person.webid
        record = (await pod.get_graph(accepted["agreement"])).graph
        assert URIRef(terms) in set(record.objects(None, URIRef(VRM + "basedOnTerms")))

        day = (await pod.get_graph(f"{market.person.pod}vrm/audit/"
                                   f"{datetime.now(UTC).date().isoformat()}")).graph
        logged = {str(o).rsplit("#", 1)[-1]
                  for o in day.objects(None, URIRef(VRM + "eventType"))}
        assert {"IntentSent", "OfferReceived", "RelationshipChanged", "AgreementReached"} <= \
            logged

    # Closed: nobody reads it any more, nobody lists it, nobody offers to it.
    for shop in shops.values():
        assert await status(shop, resource) == 403
        await listed(shop, resource, shown=False)
    entry = IntentEntry(intent["id"], resource, intent["offers_endpoint"])
    problem = await refused(409, shops["rfp-vendor-3"].intents.offer(
        entry, price="1.00", currency="EUR", terms=terms))
    assert problem["type"].endswith("intent-closed")
    assert await offers_kept(market, intent["id"]) == 3
    await cli_fails(market, "intent", "accept", intent["id"], compared[1]["id"])


async def test_a_private_intent_is_read_only_by_the_vendor_named(
        market: Market, shops: dict[str, Shop]) -> None:
    named, other = shops["rfp-vendor-1"], shops["rfp-vendor-4"]
    intent = await cli(market, "intent", "add", "winter tyres", "--budget", "300",
                       "--currency", "EUR", "--vendor", "Bikes & Co")
    resource = intent["resource"]
    assert intent["visible_to"] == [market.vendors["rfp-vendor-1"].webid]
    assert await status(named, resource) == 200
    assert await listed(named, resource) is not None
    assert await status(other, resource) == 403
    assert await entry_for(other, resource) is None  # the listing is fresh: named sees it
    entry = IntentEntry(intent["id"], resource, intent["offers_endpoint"])
    await refused(404, other.intents.offer(entry, price="250", currency="EUR",
                                           terms=intent["terms"]))
    assert await offers_kept(market, intent["id"]) == 0

    closed = await cli(market, "intent", "close", intent["id"])
    assert closed["state"] == "closed"
    assert await status(named, resource) == 403
    await listed(named, resource, shown=False)
    assert "closed already" in await cli_fails(market, "intent", "close", intent["id"])


async def test_hostile_offers_are_refused_and_nothing_is_kept(
        market: Market, shops: dict[str, Shop]) -> None:
    shop = shops["rfp-vendor-3"]
    intent = await cli(market, "intent", "add", "a week of bicycle repairs", "--budget", "200",
                       "--currency", "EUR", "--public")
    entry = await listed(shop, intent["resource"])
    assert entry is not None
    terms = intent["terms"]
    cases: list[tuple[dict[str, Any] | bytes, int, str]] = [
        (offer_body(entry, terms.replace("sd-base", "no-marketing")), 400, "terms-not-accepted"),
        (offer_body(entry, None), 400, "terms-not-accepted"),
        (offer_body(entry, "../terms/sd-base#it"), 400, "relative-iri"),
        (offer_body(entry, terms, intent="../intents/other"), 400, "relative-iri"),
        (offer_body(entry, terms, callbackAddress=f"{market.person.pod}inbox/"), 400,
         "bad-callback"),
        (offer_body(entry, terms, callbackAddress=market.agent.url + "inbox"), 400,
         "bad-callback"),
        (offer_body(entry, terms, price="-5"), 400, "malformed-offer"),
        (offer_body(entry, terms, price="1e9"), 400, "malformed-offer"),
        (offer_body(entry, terms, priceCurrency="euro"), 400, "malformed-offer"),
        (offer_body(entry, terms, availability="schema:Teleported"), 400, "malformed-offer"),
        (offer_body(entry, terms, description="x" * 3000), 400, "malformed-offer"),
        (offer_body(entry, terms, **{"http://example.org/sneaky": "1"}), 400,
         "malformed-offer"),
        (offer_body(entry, terms, type="ContractRequestMessage"), 400, "wrong-message-type"),
        (offer_body(entry, terms, description="y" * 20_000), 413, "too-large"),
        (b"{not json", 400, "malformed-offer"),
        (b'{"price": "5"}', 400, "malformed-offer"),
    ]
    for body, code, slug in cases:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        got, problem = await post_raw(shop, entry.offers, raw)
        assert (got, problem.get("type", "").rsplit("/", 1)[-1]) == (code, slug), (body, problem)
    # To an intent that does not exist, or is no intent id at all.
    for path in ("intents/nosuchintent/offers", "intents/.acl/offers"):
        got, problem = await post_raw(shop, market.agent.url + path,
                                      json.dumps(offer_body(entry, terms)))
        assert got == 404, problem
    # Without credentials, nothing at all.
    async with aiohttp.ClientSession() as anonymous, anonymous.post(
            entry.offers, data=json.dumps(offer_body(entry, terms))) as response:
        assert response.status == 401
    assert await offers_kept(market, intent["id"]) == 0
    # A good offer still goes through, and a vendor is bounded in how many it makes.
    for _ in range(3):
        await shop.intents.offer(entry, price="150", currency="EUR", terms=terms)
    problem = await refused(409, shop.intents.offer(entry, price="140", currency="EUR",
                                                    terms=terms))
    assert problem["type"].endswith("too-many-offers")
    assert await offers_kept(market, intent["id"]) == 3
    await cli(market, "intent", "close", intent["id"])


def test_the_discovery_document_names_the_intents_endpoint(market: Market) -> None:
    import urllib.request

    with urllib.request.urlopen(market.agent.url + ".well-known/vrm-agent") as response:
        document = json.loads(response.read())
    assert document["vrm:intentsEndpoint"] == {"@id": market.agent.url + "intents"}


def test_intent_commands_refuse_bad_input_in_one_line(market: Market, tmp_path: Path) -> None:
    config = str(market.agent.config)
    for argv, fragment in (
            (["intent", "add", "x", "--budget", "10", "--currency", "EUR", "--public",
              "--terms", "no-such-terms"], "no terms named"),
            (["intent", "add", "x", "--budget", "10", "--currency", "EUR", "--public",
              "--from", "2030-02-01", "--until", "2030-01-01"], "starts after it ends"),
            (["intent", "add", "x", "--budget", "10", "--currency", "EUR", "--public",
              "--until", "2001-01-01"], "in the past"),
            (["intent", "add", "x", "--budget", "10", "--currency", "EUR",
              "--vendor", "https://shop.example/card#me", "--public"], "not allowed with"),
            (["intent", "show", "../vendors/bikes"], "no intent"),
            # The pod's access layer refuses a class of agents as a vendor: nothing stays.
            (["intent", "add", "half visible", "--budget", "10", "--currency", "EUR",
              "--vendor", "http://xmlns.com/foaf/0.1/Agent"], "not a class")):
        result = run_cli(*argv, "--config", config)
        assert result.returncode != 0 and "Traceback" not in result.stderr, result
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and fragment in lines[0], result.stderr
    listed = run_cli("intent", "list", "--all", "--json", "--config", config)
    assert not [i for i in json.loads(listed.stdout) if i["what"] in ("x", "half visible")]


async def test_the_example_vendor_answers_an_intent_and_hears_it_won(
        market: Market, tmp_path: Path) -> None:
    """The README's walkthrough: `vrm-agent vendor-offer` as the vendor, `intent accept` as the
    person."""
    vendor = market.vendors["rfp-vendor-4"]
    vendor_config = str(tmp_path / "vendor.json")
    login = await asyncio.to_thread(
        run_cli, "login", "--webid", vendor.webid, "--client-id", vendor.client_id,
        "--client-secret", vendor.client_secret, "--config", vendor_config)
    assert login.returncode == 0, login.stderr
    intent = await cli(market, "intent", "add", "a tandem", "--budget", "2000", "--currency",
                       "EUR", "--public")
    offering = asyncio.create_task(asyncio.to_thread(
        run_cli, "vendor-offer", "1800", "--intent", intent["id"], "--vendor-config",
        vendor_config, "--wait", "60", "--json", "--config", str(market.agent.config)))
    offers: list[dict[str, Any]] = []
    for _ in range(200):
        offers = await cli(market, "intent", "offers", intent["id"])
        if offers or offering.done():
            break
        await asyncio.sleep(0.3)
    assert [o["price"] for o in offers] == ["1800.00"], offering
    await cli(market, "intent", "accept", intent["id"], offers[0]["id"])
    result = await offering
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["outcome"] == "accepted"

"""Customer-held loyalty, paychoice and the r-button against a running agent (a real `vrm-agent
run` process) on a real pod server, with real vendor accounts; what each vendor may read is
proved by its own requests.

The person is "loyal": two cards (loyal-shop-1's programme and loyal-shop-2's), a loyalty
statement for every vendor and one for loyal-shop-1, and terms that agree to share memberships
and loyalty statements for providing a service. loyal-shop-3 issued no card; loyal-shop-4 is not
in the ledger at all.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

import pytest
import pytest_asyncio

from tests.conftest import PodEnv, RunningAgent, new_accounts, run_cli, start_agent, stop_agent
from vrm_agent.ledger.paychoice import GENERAL_STATEMENT, LoyaltyStatement
from vrm_agent.ledger.records import Membership, Relationship, Vendor
from vrm_agent.ledger.store import Ledger
from vrm_agent.ledger.terms import TermsStore
from vrm_agent.negotiation.odrl import DPV, PD, Constraint, Policy, Rule
from vrm_agent.negotiation.protocol import State
from vrm_agent.negotiation.signals import vendor_state_message
from vrm_agent.negotiation.wire import policy_graph
from vrm_agent.pod.client import PodClient
from vrm_agent.podserver import PodAccount
from vrm_agent.vendor import (
    LOYALTY_STATEMENT,
    MEMBERSHIP,
    AgentInfo,
    AgentRefused,
    Inbox,
    VendorAgent,
    read_loyalty_statement,
    read_membership,
    read_relationship,
    request_policy,
    tell_state,
)
from vrm_agent.vendor.loyalty import relationship_endpoint

pytestmark = pytest.mark.pod
SHOPS = ("loyal-shop-1", "loyal-shop-2", "loyal-shop-3", "loyal-shop-4")
IN_LEDGER = SHOPS[:3]
STATEMENT = "I have bought here since 2019 and intend to keep doing so"


@dataclass
class Loyal:
    person: PodAccount
    agent: RunningAgent
    vendors: dict[str, PodAccount]
    inbox: Inbox

    def url(self, path: str) -> str:
        return f"{self.person.pod}vrm/{path}"


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def loyal(pod_env: PodEnv, tmp_path_factory: pytest.TempPathFactory
                ) -> AsyncIterator[Loyal]:
    vendors = await new_accounts(pod_env.server, "loyal", *SHOPS)
    person = vendors.pop("loyal")
    async with PodClient(person.credentials) as pod:
        ledger = Ledger(pod, person.pod)
        for name in IN_LEDGER:
            await ledger.create(Vendor(name, name.title(), webid=vendors[name].webid))
        await ledger.create(Membership("card-1", "loyal-shop-1", "1001", "Club One",
                                       Decimal(120), tier="Gold", since=None))
        await ledger.create(Membership("card-2", "loyal-shop-2", "2002", "Club Two"))
        await ledger.create(LoyaltyStatement(GENERAL_STATEMENT, STATEMENT))
        await ledger.create(LoyaltyStatement("loyal-shop-1", "My first stop for bread"))
        store = TermsStore(ledger, person.webid)
        await store.all()  # the starter roster first
        await store.save("loyalty-proof", policy_graph(Policy(
            "urn:uuid:loyalty-proof", "Offer", (Rule(
                "permission", "use", (PD + "GroupMembership", PD + "Opinion"),
                (Constraint("purpose", "isA", DPV + "ServiceProvision"),
                 Constraint("elapsedTime", "lteq", "P90D"))),), assigner=person.webid)))
    agent = start_agent(pod_env, tmp_path_factory.mktemp(f"loyal-{pod_env.flavour.value}"),
                        account=person)
    async with Inbox() as inbox:
        yield Loyal(person, agent, vendors, inbox)
    stop_agent(agent)


@dataclass
class Shop:
    vendor: VendorAgent
    agent: AgentInfo
    pod: PodClient


@pytest_asyncio.fixture(loop_scope="session")
async def shops(loyal: Loyal) -> AsyncIterator[dict[str, Shop]]:
    opened: dict[str, Shop] = {}
    clients = [PodClient(loyal.vendors[name].credentials) for name in SHOPS]
    for name, client in zip(SHOPS, clients, strict=True):
        await client.__aenter__()
        vendor = VendorAgent(client, inbox=loyal.inbox)
        opened[name] = Shop(vendor, await vendor.discover(loyal.person.webid), client)
    yield opened
    for client in clients:
        await client.__aexit__(None, None, None)


async def cli(loyal: Loyal, *args: str) -> str:
    # In a thread: the vendors' inbox answers on this event loop meanwhile.
    result = await asyncio.to_thread(run_cli, *args, "--config", str(loyal.agent.config))
    assert result.returncode == 0, result.stderr
    return result.stdout


async def cli_fails(loyal: Loyal, *args: str) -> str:
    result = await asyncio.to_thread(run_cli, *args, "--config", str(loyal.agent.config))
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode != 0 and len(lines) == 1 and "Traceback" not in result.stderr, \
        result.stderr
    return lines[0]


async def agreed(shop: Shop, category: str) -> list[str]:
    view = await shop.vendor.request(shop.agent, request_policy(
        [category], purpose="dpv:ServiceProvision", duration=timedelta(days=7)))
    assert view.state is State.AGREED, view.document
    view = await shop.vendor.verify(view)
    assert view.state is State.FINALIZED
    return view.resources


async def relationship(loyal: Loyal, vendor_id: str) -> Relationship:
    async with PodClient(loyal.person.credentials) as pod:
        return await Ledger(pod, loyal.person.pod).get(Relationship, vendor_id)


# -- customer-held loyalty -----------------------------------------------------------------------


async def test_a_membership_proof_is_shared_under_terms_for_the_own_programme_only(
        loyal: Loyal, shops: dict[str, Shop]) -> None:
    shop = shops["loyal-shop-1"]
    resources = await agreed(shop, MEMBERSHIP)
    assert resources == [loyal.url("memberships/card-1")]
    proof = await read_membership(shop.vendor, loyal.url("memberships/card-1"))
    assert (proof.number, proof.program, proof.tier, proof.points) == \
        ("1001", "Club One", "Gold", Decimal(120))
    # Another programme's card is not this vendor's to read.
    assert (await shop.vendor.read(loyal.url("memberships/card-2"))).status == 403


async def test_another_programmes_card_asked_for_by_address_is_not_given(
        loyal: Loyal, shops: dict[str, Shop]) -> None:
    shop = shops["loyal-shop-3"]
    view = await shop.vendor.request(shop.agent, request_policy(
        [loyal.url("memberships/card-2")], purpose="dpv:ServiceProvision",
        duration=timedelta(days=7)))
    assert view.state is State.TERMINATED, view.document
    assert (await shop.vendor.read(loyal.url("memberships/card-2"))).status == 403


async def test_the_loyalty_statement_goes_to_a_vendor_that_issued_no_card(
        loyal: Loyal, shops: dict[str, Shop]) -> None:
    shop = shops["loyal-shop-3"]
    resources = await agreed(shop, LOYALTY_STATEMENT)
    assert resources == [loyal.url(f"loyalty/{GENERAL_STATEMENT}")]
    assert await read_loyalty_statement(shop.vendor, resources[0]) == STATEMENT
    # The statement made for another vendor stays with it.
    assert (await shop.vendor.read(loyal.url("loyalty/loyal-shop-1"))).status == 403


# -- paychoice -----------------------------------------------------------------------------------


async def test_a_payment_intention_reaches_the_vendor_signed(
        loyal: Loyal, shops: dict[str, Shop]) -> None:
    await agreed(shops["loyal-shop-3"], LOYALTY_STATEMENT)  # it names its callback here
    out = json.loads(await cli(loyal, "pay", "intend", "loyal-shop-3", "4.50", "eur", "--every",
                         "monthly", "--for", "the bread club", "--why", "fair prices",
                         "--id", "bread-monthly", "--tell", "--json"))
    assert out["told"] == loyal.vendors["loyal-shop-3"].webid
    note = await loyal.inbox.wait_for(lambda n: n.type == "PaymentIntentionMessage",
                                      timeout=10)
    assert note.sender == loyal.person.webid  # the inbox checked the agent's signature
    assert {k: note.document.get(k) for k in ("amount", "currency", "frequency", "intention",
                                               "vendor")} == {
        "amount": "4.50", "currency": "EUR", "frequency": "P1M", "intention": "bread-monthly",
        "vendor": loyal.vendors["loyal-shop-3"].webid}
    # A vendor that never named a callback is not told, and the person hears why.
    await cli(loyal, "pay", "intend", "loyal-shop-2", "2", "EUR", "--id", "club-two")
    assert "named no callback address" in await cli_fails(loyal, "pay", "tell", "club-two")
    # Voluntary payments stand beside purchases in the statistics.
    await cli(loyal, "pay", "add", "A podcast", "3", "EUR", "--url", "https://podcast.example/",
        "--date", "2026-01-05", "--why", "it keeps me company")
    assert "not a vendor" in await cli_fails(loyal, "pay", "intend", "A podcast", "1", "EUR",
                                       "--url", "https://podcast.example/", "--tell")
    rows = json.loads(await cli(loyal, "stats", "--json"))
    paid = [r for r in rows if r.get("kind") == "voluntary"]
    assert [(r["key"], r["currency"], r["count"], Decimal(r["total"])) for r in paid] == \
        [("A podcast", "EUR", 1, Decimal(3))]
    assert {r["id"] for r in rows if r.get("kind") == "intention"} >= {"bread-monthly",
                                                                      "club-two"}


# -- the r-button --------------------------------------------------------------------------------


async def test_the_r_button_round_trip(loyal: Loyal, shops: dict[str, Shop]) -> None:
    shop = shops["loyal-shop-1"]
    await agreed(shop, MEMBERSHIP)  # it names its callback here
    with pytest.raises(AgentRefused) as refused:  # no signal yet: nothing to read
        await read_relationship(shop.vendor, shop.agent)
    assert refused.value.status == 403
    out = json.loads(await cli(loyal, "vendors", "set", "loyal-shop-1", "--state", "member",
                         "--signal", "on", "--json"))
    assert out["told"] and "has been told" in out["told"]
    note = await loyal.inbox.wait_for(
        lambda n: n.type == "RelationshipStateMessage" and n.state == "member", timeout=10)
    assert note.sender == loyal.person.webid
    assert note.document["vendor"] == loyal.vendors["loyal-shop-1"].webid
    read = await read_relationship(shop.vendor, shop.agent)
    assert (read["relationshipState"], read["initiatedBy"]) == ("member", "person")
    answer = await tell_state(shop.vendor, shop.agent, "customer")
    assert answer["relationshipState"] == "customer"
    shown = json.loads(await cli(loyal, "vendors", "show", "loyal-shop-1", "--json"))
    assert (shown["state"], shown["signal"], shown["vendor_state"]) == \
        ("member", "on", "customer")
    assert shown["memberships"] == ["card-1"]
    listed = {v["id"]: v for v in json.loads(await cli(loyal, "vendors", "--json"))}
    assert (listed["loyal-shop-1"]["state"], listed["loyal-shop-1"]["vendor_state"]) == \
        ("member", "customer")


async def test_hostile_relationship_messages_change_nothing(
        loyal: Loyal, shops: dict[str, Shop]) -> None:
    shop = shops["loyal-shop-2"]
    endpoint = await relationship_endpoint(shop.vendor, shop.agent)
    before = await relationship(loyal, "loyal-shop-2") if await _has_relationship(
        loyal, "loyal-shop-2") else None

    async def post(body: bytes, client: PodClient | None = None) -> int:
        response = await (client or shop.pod).request(
            "POST", endpoint, headers={"Content-Type": "application/ld+json"}, body=body,
            expect_ok=False)
        return response.status

    other = loyal.vendors["loyal-shop-1"].webid
    own = loyal.vendors["loyal-shop-2"].webid
    # Another vendor's relationship, an unknown state, a body too large, a list of states.
    assert await post(json.dumps(vendor_state_message(vendor=other, state="former")).encode()) \
        == 403
    assert await post(json.dumps(vendor_state_message(vendor=own, state="vip")).encode()) == 400
    padded = {**vendor_state_message(vendor=own, state="member"), "reason": ["x" * 5000]}
    assert await post(json.dumps(padded).encode()) == 413
    listed = {**vendor_state_message(vendor=own, state="member"),
              "relationshipState": ["member", "customer"]}
    assert await post(json.dumps(listed).encode()) == 400
    assert await post(b"not json") == 400
    # Without credentials, nothing is read or written.
    async with PodClient() as anonymous:
        response = await anonymous.request("POST", endpoint, body=json.dumps(
            vendor_state_message(vendor=own, state="member")),
            headers={"Content-Type": "application/ld+json"}, expect_ok=False,
            authenticated=False)
        assert response.status == 401
    # A vendor the ledger does not know is told so, and nothing is made for it.
    stranger = shops["loyal-shop-4"]
    assert await post(json.dumps(vendor_state_message(
        vendor=loyal.vendors["loyal-shop-4"].webid, state="customer")).encode(),
        stranger.pod) == 403
    # Reading the signal without the person's consent.
    with pytest.raises(AgentRefused) as refused:
        await read_relationship(shop.vendor, shop.agent)
    assert refused.value.status == 403
    after = await relationship(loyal, "loyal-shop-2") if await _has_relationship(
        loyal, "loyal-shop-2") else None
    assert after == before
    assert before is None or before.vendor_state is None
    shop_one = await relationship(loyal, "loyal-shop-1")
    assert shop_one.vendor_state in (None, "customer")  # what it said itself, if anything


async def _has_relationship(loyal: Loyal, vendor_id: str) -> bool:
    async with PodClient(loyal.person.credentials) as pod:
        return vendor_id in await Ledger(pod, loyal.person.pod).ids(Relationship)


async def test_no_vendor_takes_the_name_of_the_statement_for_every_vendor(loyal: Loyal) -> None:
    """``vrm/loyalty/general`` is the statement for every vendor, and ``vrm/loyalty/<id>`` a
    vendor's own: a vendor called General gets another id, the id itself is refused, and a
    vendor another app wrote under it cannot have its statement replace the general one."""
    refused = await cli_fails(loyal, "vendors", "add", "General", "--id", GENERAL_STATEMENT)
    assert "kept for your loyalty statement" in refused
    added = json.loads(await cli(loyal, "vendors", "add", "General", "--json"))
    assert added["id"] != GENERAL_STATEMENT
    await cli(loyal, "loyalty", "set", "Good value", "--vendor", "General")
    async with PodClient(loyal.person.credentials) as pod:
        ledger = Ledger(pod, loyal.person.pod)
        assert (await ledger.get(LoyaltyStatement, GENERAL_STATEMENT)).text == STATEMENT
        assert (await ledger.get(LoyaltyStatement, added["id"])).text == "Good value"
        await ledger.create(Vendor(GENERAL_STATEMENT, "General Store"))  # another app's
        try:
            refused = await cli_fails(loyal, "loyalty", "set", "Mine", "--vendor",
                                      "General Store")
            assert "under another id" in refused
            assert (await ledger.get(LoyaltyStatement, GENERAL_STATEMENT)).text == STATEMENT
        finally:
            await ledger.delete(Vendor, GENERAL_STATEMENT)

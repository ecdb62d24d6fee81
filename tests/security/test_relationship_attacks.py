"""Attacks on customer-held loyalty, paychoice and the r-button (docs/protocol.md §18), against
a running agent (a real `vrm-agent run` process) on a real pod server, by real vendor accounts.

The person is "loyalx": vendors loyalx-a and loyalx-b in the ledger, each with a card of its own
programme, a loyalty statement for every vendor and one meant for loyalx-b only, and terms that
share memberships and statements for providing a service. loyalx-c is a stranger to the ledger.
Records another app writes into the pod (a payment of a non-number, of a thousand digits, in a
currency of symbols, to a ``javascript:`` address; a card with points that are not a number) must
cost the person nothing but those records. The vendors' inbox is attacked on its own.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from subprocess import CompletedProcess

import aiohttp
import pytest
import pytest_asyncio

from tests.conftest import PodEnv, RunningAgent, new_accounts, run_cli, start_agent, stop_agent
from vrm_agent.integrity.http_signatures import sign_request
from vrm_agent.integrity.keys import SigningKey
from vrm_agent.ledger.layout import PodLayout
from vrm_agent.ledger.paychoice import (
    GENERAL_STATEMENT,
    LoyaltyStatement,
    Recipient,
    VoluntaryPayment,
)
from vrm_agent.ledger.records import Membership, Relationship, Vendor
from vrm_agent.ledger.store import Ledger
from vrm_agent.ledger.terms import TermsStore
from vrm_agent.negotiation.odrl import DPV, PD, Constraint, Policy, Rule
from vrm_agent.negotiation.protocol import State
from vrm_agent.negotiation.signals import person_state_message, vendor_state_message
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
    read_relationship,
    request_policy,
)
from vrm_agent.vendor.loyalty import relationship_endpoint
from vrm_agent.vocabulary import SCHEMA

SHOPS = ("loyalx-a", "loyalx-b", "loyalx-c")
IN_LEDGER = SHOPS[:2]
TURTLE = "text/turtle"
XSD = "http://www.w3.org/2001/XMLSchema#"


@dataclass
class Loyalx:
    person: PodAccount
    agent: RunningAgent
    vendors: dict[str, PodAccount]

    def url(self, path: str) -> str:
        return f"{self.person.pod}vrm/{path}"


@dataclass
class Shop:
    vendor: VendorAgent
    agent: AgentInfo
    pod: PodClient


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def loyalx(pod_env: PodEnv, tmp_path_factory: pytest.TempPathFactory
                 ) -> AsyncIterator[Loyalx]:
    vendors = await new_accounts(pod_env.server, "loyalx", *SHOPS)
    person = vendors.pop("loyalx")
    async with PodClient(person.credentials) as pod:
        ledger = Ledger(pod, person.pod)
        for name in IN_LEDGER:
            await ledger.create(Vendor(name, name.title(), webid=vendors[name].webid))
        await ledger.create(Membership("card-a", "loyalx-a", "1001", "Club A"))
        await ledger.create(Membership("card-b", "loyalx-b", "2002", "Club B"))
        await ledger.create(LoyaltyStatement(GENERAL_STATEMENT, "A good shop to come back to"))
        await ledger.create(LoyaltyStatement("loyalx-b", "Only B may read this"))
        await ledger.create(VoluntaryPayment(
            "fair", Recipient(name="A podcast"), Decimal("3"), "EUR", date(2026, 1, 5)))
        store = TermsStore(ledger, person.webid)
        await store.all()  # the starter roster first
        await store.save("loyalty-proof", policy_graph(Policy(
            "urn:uuid:loyalx-proof", "Offer", (Rule(
                "permission", "use", (PD + "GroupMembership", PD + "Opinion"),
                (Constraint("purpose", "isA", DPV + "ServiceProvision"),
                 Constraint("elapsedTime", "lteq", "P90D"))),), assigner=person.webid)))
    agent = start_agent(pod_env, tmp_path_factory.mktemp(f"loyalx-{pod_env.flavour.value}"),
                        account=person)
    yield Loyalx(person, agent, vendors)
    stop_agent(agent)


@pytest_asyncio.fixture(loop_scope="session")
async def shops(loyalx: Loyalx) -> AsyncIterator[dict[str, Shop]]:
    opened: dict[str, Shop] = {}
    clients = [PodClient(loyalx.vendors[name].credentials) for name in SHOPS]
    for name, client in zip(SHOPS, clients, strict=True):
        await client.__aenter__()
        vendor = VendorAgent(client)
        opened[name] = Shop(vendor, await vendor.discover(loyalx.person.webid), client)
    yield opened
    for client in clients:
        await client.__aexit__(None, None, None)


async def cli(loyalx: Loyalx, *args: str) -> CompletedProcess[str]:
    return await asyncio.to_thread(run_cli, *args, "--config", str(loyalx.agent.config))


def ok(result: CompletedProcess[str]) -> str:
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    return result.stdout


async def ask(shop: Shop, target: str) -> tuple[State, list[str]]:
    view = await shop.vendor.request(shop.agent, request_policy(
        [target], purpose="dpv:ServiceProvision", duration=timedelta(days=7)))
    if view.state is not State.AGREED:
        return view.state, []
    view = await shop.vendor.verify(view)
    return view.state, view.resources


async def reads(shop: Shop, url: str) -> int:
    return (await shop.vendor.read(url)).status


async def relationship_of(loyalx: Loyalx, vendor_id: str) -> Relationship | None:
    async with PodClient(loyalx.person.credentials) as pod:
        ledger = Ledger(pod, loyalx.person.pod)
        if vendor_id not in await ledger.ids(Relationship):
            return None
        return await ledger.get(Relationship, vendor_id)


async def post_state(shop: Shop, body: Mapping[str, object] | bytes) -> int:
    endpoint = await relationship_endpoint(shop.vendor, shop.agent)
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    response = await shop.pod.request("POST", endpoint, body=data, expect_ok=False,
                                      headers={"Content-Type": "application/ld+json"})
    return response.status


# -- what a vendor may be given ------------------------------------------------------------------


async def test_no_vendor_gets_another_vendors_card_or_statement(
        loyalx: Loyalx, shops: dict[str, Shop]) -> None:
    a, c = shops["loyalx-a"], shops["loyalx-c"]
    # By category: its own card, the statement for every vendor; nothing of loyalx-b's.
    assert await ask(a, MEMBERSHIP) == (State.FINALIZED, [loyalx.url("memberships/card-a")])
    assert await ask(a, LOYALTY_STATEMENT) == (
        State.FINALIZED, [loyalx.url(f"loyalty/{GENERAL_STATEMENT}")])
    # A stranger to the ledger holds no card.
    state, given = await ask(c, MEMBERSHIP)
    assert given == [] and state is not State.FINALIZED
    # By address, however spelled: the card itself, dot segments, escapes, case, the containers.
    base = loyalx.person.pod
    for spelling in ("vrm/memberships/card-b", "vrm/./memberships/card-b",
                     "vrm/loyalty/../memberships/card-b", "vrm/%6Demberships/card-b",
                     "vrm/memberships/card%2Db", "vrm/memberships/", "vrm/loyalty/loyalx-b",
                     "vrm/loyalty/", "vrm/loyalty/loyalx-b#it", "vrm/loyalty/loyalx-b?x=1"):
        state, given = await ask(a, base + spelling)
        assert given == [] and state is not State.FINALIZED, spelling
    for url in ("memberships/card-b", "loyalty/loyalx-b", "memberships/", "loyalty/"):
        assert await reads(a, loyalx.url(url)) == 403, url
    for url in ("memberships/card-a", "memberships/card-b", f"loyalty/{GENERAL_STATEMENT}"):
        assert await reads(c, loyalx.url(url)) == 403, url


# -- the r-button --------------------------------------------------------------------------------


async def test_a_vendor_reads_and_sets_only_its_own_relationship_with_consent(
        loyalx: Loyalx, shops: dict[str, Shop]) -> None:
    a, b, c = shops["loyalx-a"], shops["loyalx-b"], shops["loyalx-c"]
    ok(await cli(loyalx, "vendors", "set", "loyalx-a", "--state", "customer", "--signal", "on"))
    assert (await read_relationship(a.vendor, a.agent))["vendor"] == loyalx.vendors[
        "loyalx-a"].webid
    for other in (b, c):  # no consent for them, and a's consent is not theirs
        with pytest.raises(AgentRefused) as refused:
            await read_relationship(other.vendor, other.agent)
        assert refused.value.status == 403
    assert await post_state(a, vendor_state_message(vendor=None, state="member")) == 200
    before = await relationship_of(loyalx, "loyalx-a")
    assert before is not None and before.vendor_state == "member"
    victim = loyalx.vendors["loyalx-a"].webid
    # b replays a's own message, and names a otherwise: as a node, in a list, by a full IRI.
    forged: list[Mapping[str, object]] = [
        vendor_state_message(vendor=victim, state="former"),
        {**vendor_state_message(vendor=None, state="former"), "vendor": {"id": victim}},
        {**vendor_state_message(vendor=None, state="former"), "vendor": [victim]},
        {**vendor_state_message(vendor=None, state="former"),
         "vendor": [loyalx.vendors["loyalx-b"].webid, victim]},
        # What the agent sends a vendor is not what a vendor may say of itself.
        person_state_message(agent=a.agent.url, person=loyalx.person.webid, vendor=victim,
                             state="former", initiated_by="vendor", since=None,
                             changed_at=before.vendor_state_at or datetime.now(UTC)),
    ]
    for body in forged:
        assert await post_state(b, body) in (400, 403), body
    assert await post_state(c, vendor_state_message(vendor=None, state="customer")) == 403
    after = await relationship_of(loyalx, "loyalx-a")
    assert after is not None and after.vendor_state == "member"
    assert await relationship_of(loyalx, "loyalx-c") is None


async def _put_relationship(loyalx: Loyalx, vendor_id: str, turtle: str) -> None:
    async with PodClient(loyalx.person.credentials) as pod:
        await pod.put(loyalx.url(f"relationships/{vendor_id}"), turtle, content_type=TURTLE)


async def test_a_relationship_record_another_app_wrote_gives_no_consent_and_no_500(
        loyalx: Loyalx, shops: dict[str, Shop]) -> None:
    b = shops["loyalx-b"]
    written = Relationship("loyalx-b", "customer", person_signal=False).to_graph(
        PodLayout(loyalx.person.pod)).serialize(format="turtle")
    # "false" as a plain string, 1 as a number: neither is the person switching the signal on.
    for signal in ('"false"', "1", '"no"'):
        await _put_relationship(loyalx, "loyalx-b", written.replace(
            "personSignal false", f"personSignal {signal}"))
        shown = await relationship_of(loyalx, "loyalx-b")
        assert shown is not None and shown.person_signal is not True, signal
        with pytest.raises(AgentRefused) as refused:
            await read_relationship(b.vendor, b.agent)
        assert refused.value.status == 403, signal
    # A record that is not one: the vendor is refused in words, and the record is kept.
    broken = "@prefix vrm: <https://w3id.org/vrm-agent/ns#> . <#it> vrm:relationshipState 42 ."
    await _put_relationship(loyalx, "loyalx-b", broken)
    with pytest.raises(AgentRefused) as refused:
        await read_relationship(b.vendor, b.agent)
    assert refused.value.status == 403
    assert await post_state(b, vendor_state_message(vendor=None, state="member")) == 409
    async with PodClient(loyalx.person.credentials) as pod:
        kept = await pod.get(loyalx.url("relationships/loyalx-b"))
        assert "42" in kept.text() and "member" not in kept.text()
        await pod.delete(loyalx.url("relationships/loyalx-b"))


async def test_a_state_is_never_sent_where_the_vendor_did_not_name_or_into_the_person(
        loyalx: Loyalx, shops: dict[str, Shop]) -> None:
    b = shops["loyalx-b"]
    for callback in (loyalx.person.pod + "inbox/", loyalx.person.pod + "./vrm/../inbox/",
                     b.agent.url + "inbox"):
        mallory = VendorAgent(b.pod, callback=callback)
        with pytest.raises(AgentRefused) as refused:
            await mallory.request(b.agent, request_policy(
                [LOYALTY_STATEMENT], purpose="dpv:ServiceProvision", duration=timedelta(days=7)))
        assert refused.value.status == 400, callback
    # So b named no callback the agent kept, and the person's state goes nowhere.
    shown = json.loads(ok(await cli(loyalx, "vendors", "set", "loyalx-b", "--state", "member",
                                    "--signal", "on", "--json")))
    assert "was not told" in shown["told"] and "named no callback" in shown["told"]


async def _raw_state_post(shop: Shop, url: str, body: bytes, token: str, proof: str) -> int:
    headers = {"Content-Type": "application/ld+json", "Authorization": f"DPoP {token}",
               "DPoP": proof}
    async with aiohttp.ClientSession() as session, session.post(
            url, data=body, headers=headers) as response:
        return response.status


async def test_a_state_message_replayed_changes_nothing(
        loyalx: Loyalx, shops: dict[str, Shop]) -> None:
    a = shops["loyalx-a"]
    endpoint = await relationship_endpoint(a.vendor, a.agent)
    body = json.dumps(vendor_state_message(vendor=None, state="prospect")).encode()
    token = await a.pod.access_token()
    proof = a.pod.dpop_key.proof("POST", endpoint, token)
    assert await _raw_state_post(a, endpoint, body, token, proof) == 200
    said = await relationship_of(loyalx, "loyalx-a")
    assert said is not None and said.vendor_state == "prospect"
    # The same request later, word for word, by whoever captured it: refused, nothing written.
    assert await _raw_state_post(a, endpoint, body, token, proof) == 401
    later = json.dumps(vendor_state_message(vendor=None, state="former")).encode()
    assert await _raw_state_post(a, endpoint, later, token, proof) == 401
    assert await relationship_of(loyalx, "loyalx-a") == said


# -- records another app wrote into the pod ------------------------------------------------------


def _payment(recipient: str, price: str, currency: str = "EUR", extra: str = "") -> str:
    return (f"@prefix s: <{SCHEMA}> . @prefix x: <{XSD}> .\n"
            f"<#it> s:recipient {recipient}; s:price {price}; s:priceCurrency \"{currency}\"; "
            f"s:startTime \"2026-02-01\"^^x:date .\n{extra}")


def _intention(price: str) -> str:
    return (f"@prefix s: <{SCHEMA}> . @prefix x: <{XSD}> .\n"
            f"<#it> s:recipient <#r>; s:price {price}; s:priceCurrency \"EUR\"; "
            f"s:startDate \"2026-02-01\"^^x:date . <#r> s:name \"Someone\" .\n")


HOSTILE = {
    "payments/nan": _payment("<https://podcast.example/>", '"lots"^^x:decimal'),
    "payments/huge": _payment("<https://podcast.example/>", '"1E+999999"^^x:decimal'),
    "payments/long": _payment("<https://podcast.example/>", '"' + "9" * 3000 + '"^^x:decimal'),
    "payments/tiny": _payment("<https://podcast.example/>", '"1E-999999"^^x:decimal'),
    "payments/symbols": _payment("<https://podcast.example/>", "5", currency="€€€"),
    "payments/script": _payment("<#r>", "5",
                                extra='<#r> s:name "x"; s:url <javascript:alert(1)> .'),
    "payment-intentions/nan": _intention('"lots"^^x:decimal'),
    "payment-intentions/huge": _intention('"1E+999999"^^x:decimal'),
    # A card hosted elsewhere whose address merely ends in a vendor's id.
    "memberships/elsewhere": (
        f"@prefix s: <{SCHEMA}> .\n<#it> s:membershipNumber \"7\"; "
        "s:hostingOrganization <https://cards.example/vendors/loyalx-a#it> ."),
    "memberships/points": (f"@prefix s: <{SCHEMA}> .\n<#it> s:membershipNumber \"9\"; "
                           "s:hostingOrganization <../vendors/loyalx-a>; "
                           "s:membershipPointsEarned \"lots\" ."),
}


async def test_malformed_records_from_another_app_cost_only_themselves(
        loyalx: Loyalx, shops: dict[str, Shop]) -> None:
    async with PodClient(loyalx.person.credentials) as pod:
        for path, turtle in HOSTILE.items():
            await pod.put(loyalx.url(path), turtle, content_type=TURTLE)
    try:
        # The agent reads the ledger again for a caller it does not know (at most once a
        # second, hence the pause), and still answers it, not with a 500.
        await asyncio.sleep(1.1)
        assert await post_state(shops["loyalx-c"], vendor_state_message(
            vendor=None, state="customer")) == 403
        assert await ask(shops["loyalx-a"], MEMBERSHIP) == (
            State.FINALIZED, [loyalx.url("memberships/card-a")])
        # The command line lists and counts only the records that are records.
        rows = json.loads(ok(await cli(loyalx, "stats", "--json")))
        paid = [(r["key"], r["currency"], r["count"], Decimal(r["total"]))
                for r in rows if r.get("kind") == "voluntary"]
        assert paid == [("A podcast", "EUR", 1, Decimal(3))]
        assert [r for r in rows if r.get("kind") == "intention"] == []
    finally:
        async with PodClient(loyalx.person.credentials) as pod:
            for path in HOSTILE:
                await pod.delete(loyalx.url(path))


# -- the vendor's inbox --------------------------------------------------------------------------


AGENT_KEY = SigningKey()
AGENT = "http://agent.test/"
PERSON = "https://pod.example/loyalx/profile/card#me"


def _signal(agent: str = AGENT, **fields: object) -> bytes:
    message = person_state_message(agent=agent, person=PERSON, vendor="https://shop.example/#i",
                                   state="member", initiated_by="person", since=None,
                                   changed_at=datetime.now(UTC))
    return json.dumps({**message, **fields}).encode()


async def _post(url: str, body: bytes, headers: Mapping[str, str]) -> int:
    async with aiohttp.ClientSession() as session, session.post(
            url, data=body, headers=dict(headers)) as response:
        return response.status


async def test_the_inbox_takes_a_signal_only_from_the_agent_that_signed_it_once() -> None:
    async with Inbox() as inbox:
        inbox.trust(AgentInfo(AGENT, PERSON, AGENT + "negotiations/",
                              AGENT_KEY.verification_method))
        other = SigningKey()
        inbox.trust(AgentInfo("http://other.test/", "https://pod.example/mallory/profile/card#me",
                              "http://other.test/negotiations/", other.verification_method))

        def signed(body: bytes, key: SigningKey = AGENT_KEY) -> dict[str, str]:
            return sign_request(key, "POST", inbox.url, body, content_type="application/ld+json")

        good = _signal()
        headers = signed(good)
        assert await _post(inbox.url, good, headers) == 202
        assert [n.sender for n in inbox.received] == [PERSON]
        # The same request again, word for word.
        assert await _post(inbox.url, good, headers) == 401
        # Another trusted agent speaking for this one; an unknown key; no signature at all.
        assert await _post(inbox.url, good, signed(good, other)) == 401
        assert await _post(inbox.url, good, signed(good, SigningKey())) == 401
        assert await _post(inbox.url, good, {"Content-Type": "application/ld+json"}) == 401
        # This agent's key, naming another agent, none, a list of both, or an object.
        for body in (_signal("http://other.test/"), _signal(agent=None),  # type: ignore[arg-type]
                     _signal(**{"agent": [AGENT, "http://other.test/"]}),
                     _signal(**{"agent": {"id": "http://other.test/"}})):
            assert await _post(inbox.url, body, signed(body)) in (400, 401), body
        # A signal type spelled otherwise or a broken body is refused, not a crash.
        for body in (json.dumps({**json.loads(_signal()), "type": ["RelationshipStateMessage",
                                                                    "X"]}).encode(),
                     b'{"type": "RelationshipStateMessage"}', b"[1, 2]", b"\xff\xfe"):
            assert await _post(inbox.url, body, signed(body)) in (400, 401), body
        assert [n.sender for n in inbox.received] == [PERSON]

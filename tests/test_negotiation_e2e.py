"""Vendors negotiate with a running agent (a real `vrm-agent run` process) over HTTP, on a real
pod server, each with its own account; what each may then read is proved by its own requests.

The person is carol, with an e-mail address, a phone number and purchases from one shop in her
pod; every test has its own vendor account, so the grants of one test never answer another's.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest
import pytest_asyncio
from rdflib import Graph, Literal, URIRef

from tests.conftest import PodEnv, RunningAgent, new_accounts, run_cli, start_agent, stop_agent
from vrm_agent.errors import NotFound
from vrm_agent.integrity import verify_proofs
from vrm_agent.ledger.records import ContactUnit, Relationship, Vendor
from vrm_agent.ledger.store import Ledger
from vrm_agent.negotiation.protocol import Negotiation, Role, State
from vrm_agent.pod.client import PodClient
from vrm_agent.podserver import PodAccount
from vrm_agent.vendor import AgentInfo, Inbox, NegotiationView, VendorAgent, request_policy

pytestmark = pytest.mark.pod
SHOPS = ("shop-agree", "shop-refuse", "shop-counter", "shop-approve", "shop-deny",
         "shop-expire", "shop-revoke", "shop-bad", "shop-other", "shop-choose", "shop-twice",
         "shop-paths", "shop-light", "shop-unknown")
UNKNOWN = "shop-unknown"  # a vendor the person's ledger does not know before it negotiates
VRM = "https://w3id.org/vrm-agent/ns#"


@dataclass
class Market:
    person: PodAccount
    agent: RunningAgent
    vendors: dict[str, PodAccount]
    email: str
    phone: str
    work_phone: str

    def purchases(self, shop: str) -> str:
        return f"{self.person.pod}vrm/transactions/{shop}/"


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def market(pod_env: PodEnv, tmp_path_factory: pytest.TempPathFactory
                 ) -> AsyncIterator[Market]:
    vendors = await new_accounts(pod_env.server, "carol", *SHOPS)
    person = vendors.pop("carol")
    async with PodClient(person.credentials) as pod:
        ledger = Ledger(pod, person.pod)
        email = await ledger.create(ContactUnit("email-home", "email", "carol@example.org"))
        phone = await ledger.create(ContactUnit("phone-mobile", "phone", "+49 30 1234567"))
        work_phone = await ledger.create(ContactUnit("phone-work", "phone", "+49 30 7654321"))
        for name, account in vendors.items():
            if name != UNKNOWN:
                await ledger.create(Vendor(name, name.title(), webid=account.webid))
        for shop in ("shop-counter",):
            purchase = Graph()
            purchase.add((URIRef(f"{person.pod}vrm/transactions/{shop}/2026#t1"),
                          URIRef("http://schema.org/price"), Literal("12.50")))
            await pod.put_graph(f"{person.pod}vrm/transactions/{shop}/2026", purchase)
    folder = tmp_path_factory.mktemp(f"carol-{pod_env.flavour.value}")
    # -X importtime: the agent's log then names every module it imports (see the last test).
    agent = start_agent(pod_env, folder, account=person, python_options=("-X", "importtime"))
    yield Market(person, agent, vendors, email, phone, work_phone)
    stop_agent(agent)


@pytest_asyncio.fixture(loop_scope="session")
async def inbox() -> AsyncIterator[Inbox]:
    async with Inbox() as box:
        yield box


@dataclass
class Shop:
    vendor: VendorAgent
    agent: AgentInfo
    pod: PodClient


@pytest_asyncio.fixture(loop_scope="session")
async def shop(market: Market, inbox: Inbox, request: pytest.FixtureRequest
               ) -> AsyncIterator[Shop]:
    name = request.param if hasattr(request, "param") else "shop-other"
    async with PodClient(market.vendors[name].credentials) as pod:
        vendor = VendorAgent(pod, inbox=inbox)
        yield Shop(vendor, await vendor.discover(market.person.webid), pod)


def shop_named(name: str) -> pytest.MarkDecorator:
    return pytest.mark.parametrize("shop", [name], indirect=True)


async def status_of(shop: Shop, url: str) -> int:
    return (await shop.vendor.read(url)).status


async def audit_has(market: Market, *wanted: str, within: float = 10.0) -> bool:
    """Whether today's audit log comes to hold every wanted event type (the agent writes its
    audit entries just after it answers, so they may land a moment later)."""
    deadline = asyncio.get_running_loop().time() + within
    async with PodClient(market.person.credentials) as pod:
        day = datetime.now(UTC).date().isoformat()
        while True:
            graph = (await pod.get_graph(f"{market.person.pod}vrm/audit/{day}")).graph
            found = {str(o).rsplit("#", 1)[-1]
                     for o in graph.objects(None, URIRef(VRM + "eventType"))}
            if set(wanted) <= found or asyncio.get_running_loop().time() > deadline:
                return set(wanted) <= found
            await asyncio.sleep(0.2)


async def agreement_state(market: Market, view: NegotiationView) -> str:
    negotiation_id = view.url.rsplit("/", 1)[-1]
    async with PodClient(market.person.credentials) as pod:
        graph = (await pod.get_graph(f"{market.person.pod}vrm/agreements/{negotiation_id}")).graph
    states = list(graph.objects(None, URIRef(VRM + "agreementState")))
    assert len(states) == 1
    return str(states[0]).rsplit("#", 1)[-1]


def cli(market: Market, *args: str) -> str:
    result = run_cli(*args, "--config", str(market.agent.config))
    assert result.returncode == 0, result.stderr
    return result.stdout


# -- the terms decide ----------------------------------------------------------------------------


@shop_named("shop-agree")
async def test_a_request_the_terms_approve(market: Market, shop: Shop) -> None:
    policy = request_policy(["pd:EmailAddress"], purpose="dpv:DeliveryOfGoods",
                            duration=timedelta(days=7), consideration="free delivery")
    view = await shop.vendor.request(shop.agent, policy)
    assert view.state is State.AGREED, view.document
    assert view.resources == [market.email]
    assert (view.agreement or {}).get("consideration") == "free delivery"  # what it offered
    assert verify_proofs(view.agreement or {})  # signed by the person's agent
    assert await status_of(shop, market.email) == 200  # before countersigning: in force
    view = await shop.vendor.verify(view)
    assert view.state is State.FINALIZED
    proofs = verify_proofs(view.agreement or {})
    assert len(proofs) == 2  # both parties' signatures on one document
    assert await status_of(shop, market.email) == 200
    assert await status_of(shop, market.phone) == 403  # not asked, not given
    assert await status_of(shop, market.purchases("shop-counter")) == 403
    until = view.access[0].until
    # Counted from the agreement and rounded up to the whole second (docs/protocol.md §4.3).
    assert timedelta(days=6, hours=23) < until - datetime.now(UTC) <= timedelta(days=7, seconds=1)
    assert await agreement_state(market, view) == "Finalized"
    assert await relationship_of_agreement(market, view) == \
        f"{market.person.pod}vrm/relationships/shop-agree#it"
    assert await audit_has(market, "RequestReceived", "AgreementReached", "AccessGranted")


async def relationship_of_agreement(market: Market, view: NegotiationView) -> str | None:
    negotiation_id = view.url.rsplit("/", 1)[-1]
    async with PodClient(market.person.credentials) as pod:
        graph = (await pod.get_graph(f"{market.person.pod}vrm/agreements/{negotiation_id}")).graph
    found = list(graph.objects(None, URIRef(VRM + "relationship")))
    return str(found[0]) if found else None


@shop_named(UNKNOWN)
async def test_an_agreement_names_the_relationship_with_the_vendor(
        market: Market, shop: Shop) -> None:
    """Who holds what is answered from the person's own records: the agreement links to the
    relationship, which names the vendor; a vendor the ledger did not know gets a record."""
    policy = request_policy(["pd:EmailAddress"], purpose="dpv:DeliveryOfGoods",
                            duration=timedelta(days=1))
    view = await shop.vendor.request(shop.agent, policy)
    assert view.state is State.AGREED, view.document
    link = await relationship_of_agreement(market, view)
    assert link is not None and link.startswith(f"{market.person.pod}vrm/relationships/")
    async with PodClient(market.person.credentials) as pod:
        ledger = Ledger(pod, market.person.pod)
        vendor_id = link.rsplit("/", 1)[-1].split("#", 1)[0]
        vendor = await ledger.get(Vendor, vendor_id)
        relationship = await ledger.get(Relationship, vendor_id)
        assert vendor.webid == market.vendors[UNKNOWN].webid
        assert vendor.name.endswith("/shop-unknown")  # named from its WebID, not by itself
        assert relationship.state == "prospect"
        assert relationship.initiated_by == market.vendors[UNKNOWN].webid
        # A second agreement finds the same vendor rather than making another.
        again = await shop.vendor.request(shop.agent, request_policy(
            ["pd:TelephoneNumber"], purpose="dpv:DeliveryOfGoods", duration=timedelta(days=1)))
        assert await relationship_of_agreement(market, again) == link
        same = [v for v in await ledger.list(Vendor) if v.webid == vendor.webid]
        assert [v.id for v in same] == [vendor_id]


@shop_named("shop-refuse")
async def test_a_request_the_terms_refuse(market: Market, shop: Shop) -> None:
    policy = request_policy(["pd:EmailAddress"], purpose="dpv:DirectMarketing",
                            duration=timedelta(days=7))
    view = await shop.vendor.request(shop.agent, policy)
    assert view.state is State.TERMINATED
    assert view.event == "refused"
    assert any("No marketing" in r for r in view.reasons), view.reasons
    assert await status_of(shop, market.email) == 403
    assert await audit_has(market, "AgreementRefused")


@shop_named("shop-counter")
async def test_a_counter_offer_the_vendor_accepts(market: Market, shop: Shop) -> None:
    # Service delivery is allowed for at most 90 days: 180 is countered with 90.
    policy = request_policy(["pd:EmailAddress", "pd:Purchase"], purpose="dpv:ServiceProvision",
                            duration=timedelta(days=180))
    view = await shop.vendor.request(shop.agent, policy)
    assert view.state is State.OFFERED, view.document
    assert view.offer is not None and view.offer.type == "Offer"
    assert any("P90D" in r for r in view.reasons), view.reasons
    assert await status_of(shop, market.email) == 403  # nothing until accepted
    view = await shop.vendor.accept(view)
    assert view.state is State.AGREED
    view = await shop.vendor.verify(view)
    assert view.state is State.FINALIZED
    assert sorted(view.resources) == sorted([market.email, market.purchases("shop-counter")])
    assert await status_of(shop, market.email) == 200
    assert await status_of(shop, market.purchases("shop-counter") + "2026") == 200
    assert await status_of(shop, market.phone) == 403
    assert view.access[0].until - datetime.now(UTC) <= timedelta(days=90, seconds=1)


# -- the person decides --------------------------------------------------------------------------


@shop_named("shop-approve")
async def test_a_request_the_person_approves_by_cli(market: Market, shop: Shop,
                                                    inbox: Inbox) -> None:
    policy = request_policy(["pd:TelephoneNumber"], purpose="dpv:ResearchAndDevelopment",
                            duration=timedelta(days=3))
    view = await shop.vendor.request(shop.agent, policy)
    assert view.state is State.REQUESTED and view.awaiting_person
    assert view.document["status"] == view.url
    negotiation_id = view.url.rsplit("/", 1)[-1]
    listed = json.loads(await asyncio.to_thread(cli, market, "requests", "--json"))
    assert negotiation_id in [row["id"] for row in listed]
    assert await status_of(shop, market.phone) == 403
    await asyncio.to_thread(cli, market, "requests", "approve", negotiation_id)
    told = await inbox.wait_for(lambda n: n.negotiation == view.url, timeout=30)
    assert told.type == "ContractAgreementMessage" and told.sender == market.person.webid
    assert not inbox.refusals
    view = await shop.vendor.status(view)
    assert view.state is State.AGREED
    view = await shop.vendor.verify(view)
    assert view.state is State.FINALIZED
    assert await status_of(shop, market.phone) == 200
    listed = json.loads(await asyncio.to_thread(cli, market, "requests", "--json"))
    assert negotiation_id not in [row["id"] for row in listed]
    in_force = json.loads(await asyncio.to_thread(cli, market, "negotiations", "--json"))
    row = next(row for row in in_force if row["id"] == negotiation_id)
    assert {"id": negotiation_id, "state": "FINALIZED"}.items() <= row.items()
    assert row["resources"] == sorted([market.phone, market.work_phone])  # a list, sorted
    shown = json.loads(await asyncio.to_thread(cli, market, "negotiations", "show",
                                               negotiation_id))
    assert any("the person is asked" in line for line in shown["trace"])


@shop_named("shop-deny")
async def test_a_request_the_person_denies(market: Market, shop: Shop, inbox: Inbox) -> None:
    policy = request_policy(["pd:TelephoneNumber"], purpose="dpv:ResearchAndDevelopment")
    view = await shop.vendor.request(shop.agent, policy)
    assert view.awaiting_person
    await asyncio.to_thread(cli, market, "requests", "deny", view.url.rsplit("/", 1)[-1],
                            "--reason", "not for research")
    told = await inbox.wait_for(lambda n: n.negotiation == view.url, timeout=30)
    assert told.type == "ContractNegotiationTerminationMessage"
    assert "not for research" in json.dumps(told.document)
    view = await shop.vendor.status(view)
    assert view.state is State.TERMINATED
    assert await status_of(shop, market.phone) == 403


# -- the end of an agreement ---------------------------------------------------------------------


@shop_named("shop-expire")
async def test_expiry_ends_access_and_tells_the_vendor(market: Market, shop: Shop,
                                                       inbox: Inbox) -> None:
    policy = request_policy(["pd:EmailAddress"], purpose="dpv:DeliveryOfGoods",
                            duration=timedelta(seconds=4))
    view = await shop.vendor.verify(await shop.vendor.request(shop.agent, policy))
    assert view.state is State.FINALIZED
    assert await status_of(shop, market.email) == 200
    told = await inbox.wait_for(
        lambda n: n.negotiation == view.url
        and n.type == "ContractNegotiationTerminationMessage", timeout=40)
    assert told.event == "expired"
    assert await status_of(shop, market.email) == 403
    assert await agreement_state(market, view) == "Expired"
    assert (await shop.vendor.status(view)).state is State.TERMINATED


@shop_named("shop-revoke")
async def test_revocation_by_cli_ends_access_and_tells_the_vendor(
        market: Market, shop: Shop, inbox: Inbox) -> None:
    policy = request_policy(["pd:EmailAddress"], purpose="dpv:DeliveryOfGoods",
                            duration=timedelta(days=30))
    view = await shop.vendor.verify(await shop.vendor.request(shop.agent, policy))
    assert await status_of(shop, market.email) == 200
    grants = json.loads(await asyncio.to_thread(cli, market, "grants", "--json", "--agent",
                                                market.vendors["shop-revoke"].webid))
    assert len(grants) == 1 and grants[0]["agreement"] == view.url
    await asyncio.to_thread(cli, market, "grants", "revoke", grants[0]["id"])
    told = await inbox.wait_for(
        lambda n: n.negotiation == view.url
        and n.type == "ContractNegotiationTerminationMessage", timeout=30)
    assert told.event == "revoked"
    assert await status_of(shop, market.email) == 403
    assert await agreement_state(market, view) == "Revoked"
    assert await audit_has(market, "AgreementRevoked")


# -- what is refused changes nothing ---------------------------------------------------------------


async def negotiation_count(market: Market) -> int:
    async with PodClient(market.person.credentials) as pod:
        return len(await pod.list_container(f"{market.person.pod}vrm/negotiations/"))


async def raw_post(shop: Shop, url: str, body: bytes, *, token: bool = True,
                   proof: str | None = None) -> tuple[int, str, dict]:  # type: ignore[type-arg]
    headers = {"Content-Type": "application/ld+json"}
    if token:
        access = await shop.pod.access_token()
        headers["Authorization"] = f"DPoP {access}"
        headers["DPoP"] = proof or shop.pod.dpop_key.proof("POST", url, access)
    async with aiohttp.ClientSession() as session, session.post(
            url, data=body, headers=headers) as response:
        text = await response.text()
        return response.status, response.content_type, json.loads(text) if text else {}


@shop_named("shop-bad")
async def test_bad_requests_get_problems_and_change_nothing(market: Market, shop: Shop) -> None:
    before = await negotiation_count(market)
    url = shop.agent.negotiations
    good = json.dumps({
        "@context": "https://w3id.org/vrm-agent/protocol/v1", "type": "ContractRequestMessage",
        "policy": {"uid": "urn:uuid:bad-test", "type": "Request", "permission": [{
            "action": "use", "target": ["pd:EmailAddress"],
            "constraint": [{"leftOperand": "purpose", "operator": "eq",
                            "rightOperand": {"id": "dpv:DeliveryOfGoods"}}]}]},
    }).encode()
    cases = {
        "malformed": (b'{"@context": "https://w3id.org/vrm-agent/protocol/v1", "type": ', {}),
        "no policy": (json.dumps({"@context": "https://w3id.org/vrm-agent/protocol/v1",
                                  "type": "ContractRequestMessage"}).encode(), {}),
        "foreign context": (good.replace(b"https://w3id.org/vrm-agent/protocol/v1",
                                         b"https://example.org/ctx"), {}),
        "oversized": (good[:-1] + b', "padding": "' + b"x" * 70_000 + b'"}', {}),
        "unauthenticated": (good, {"token": False}),
        "uid not an IRI": (good.replace(b"urn:uuid:bad-test", b"bad test"), {}),
        "names a negotiation": (good[:-1] + b', "negotiation": "' + url.encode() + b'/x"}', {}),
    }
    expected = {"malformed": 400, "no policy": 400, "foreign context": 400, "oversized": 413,
                "unauthenticated": 401, "uid not an IRI": 400, "names a negotiation": 400}
    for name, (body, options) in cases.items():
        status, content_type, problem = await raw_post(shop, url, body, **options)
        assert status == expected[name], (name, problem)
        assert content_type == "application/problem+json", name
        assert problem["status"] == status and problem["detail"], name
    # A DPoP proof used twice: the second request is a replay, refused before anything happens.
    token = await shop.pod.access_token()
    proof = shop.pod.dpop_key.proof("POST", url, token)
    first, _, honest = await raw_post(shop, url, good, proof=proof)
    assert first == 201
    replayed, content_type, problem = await raw_post(shop, url, good, proof=proof)
    assert replayed == 401 and "replay" in problem["detail"]
    # A message must name the negotiation its URL names.
    elsewhere = json.dumps({"@context": "https://w3id.org/vrm-agent/protocol/v1",
                            "type": "ContractNegotiationTerminationMessage",
                            "negotiation": url + "/0123456789abcdef", "reason": ["no"]}).encode()
    status, _, problem = await raw_post(shop, honest["id"] + "/termination", elsewhere)
    assert status == 400 and problem["type"].endswith("wrong-negotiation")
    # A wrong method is a problem document too.
    wrong_method = await shop.pod.request("DELETE", url, expect_ok=False)
    assert wrong_method.status == 405 and wrong_method.content_type == "application/problem+json"
    honest_view = NegotiationView(honest["id"], Negotiation("", Role.CONSUMER, State.AGREED))
    assert (await shop.vendor.status(honest_view)).state is State.AGREED  # it stands
    assert await negotiation_count(market) == before + 1  # only the one honest request


@shop_named("shop-other")
async def test_a_vendor_sees_only_its_own_negotiations(market: Market, shop: Shop) -> None:
    async with PodClient(market.vendors["shop-agree"].credentials) as pod:
        owner = VendorAgent(pod)
        view = await owner.request(await owner.discover(market.person.webid), request_policy(
            ["pd:EmailAddress"], purpose="dpv:DirectMarketing"))
    response = await shop.pod.request("GET", view.url, expect_ok=False)
    assert response.status == 404
    assert response.content_type == "application/problem+json"


def test_the_signing_key_is_kept_private(market: Market) -> None:
    secrets = Path(str(market.agent.config).replace(".json", ".secrets.json"))
    assert "signing_key" in json.loads(secrets.read_text())
    assert secrets.stat().st_mode & 0o077 == 0


# -- exactly what was agreed -----------------------------------------------------------------------


@shop_named("shop-choose")
async def test_the_person_approves_exactly_the_resources_chosen(
        market: Market, shop: Shop, inbox: Inbox) -> None:
    policy = request_policy(["pd:TelephoneNumber"], purpose="dpv:ResearchAndDevelopment",
                            duration=timedelta(days=3))
    view = await shop.vendor.request(shop.agent, policy)
    assert view.awaiting_person
    negotiation_id = view.url.rsplit("/", 1)[-1]
    listed = json.loads(await asyncio.to_thread(cli, market, "requests", "--json"))
    shown = next(row for row in listed if row["id"] == negotiation_id)
    assert sorted(shown["asks"][0]["resources"]) == sorted([market.phone, market.work_phone])
    refused = run_cli("requests", "approve", negotiation_id, "--only",
                      f"{market.person.pod}vrm/terms/", "--config", str(market.agent.config))
    assert refused.returncode != 0 and "not among the resources" in refused.stderr
    await asyncio.to_thread(cli, market, "requests", "approve", negotiation_id, "--only",
                            market.work_phone)
    await inbox.wait_for(lambda n: n.negotiation == view.url, timeout=30)
    view = await shop.vendor.verify(await shop.vendor.status(view))
    assert view.state is State.FINALIZED
    assert view.resources == [market.work_phone]
    assert await status_of(shop, market.work_phone) == 200
    assert await status_of(shop, market.phone) == 403  # shown, but not chosen


@shop_named("shop-twice")
async def test_a_second_agreement_on_the_same_data_and_purpose_replaces_the_first(
        market: Market, shop: Shop, inbox: Inbox) -> None:
    first = await shop.vendor.verify(await shop.vendor.request(shop.agent, request_policy(
        ["pd:EmailAddress"], purpose="dpv:DeliveryOfGoods", duration=timedelta(days=7))))
    assert first.state is State.FINALIZED
    second = await shop.vendor.request(shop.agent, request_policy(
        ["pd:EmailAddress"], purpose="dpv:DeliveryOfGoods", duration=timedelta(days=2)))
    assert second.state is State.AGREED
    assert second.document["replaces"] == [first.url]
    told = await inbox.wait_for(lambda n: n.negotiation == first.url, timeout=30)
    assert told.event == "replaced"
    assert (await shop.vendor.status(first)).state is State.TERMINATED
    grants = json.loads(await asyncio.to_thread(
        cli, market, "grants", "--json", "--agent", market.vendors["shop-twice"].webid))
    assert [g["agreement"] for g in grants] == [second.url]  # one agreement, not two
    assert await status_of(shop, market.email) == 200  # no gap: the new one holds
    await asyncio.to_thread(cli, market, "grants", "revoke", grants[0]["id"])
    assert await status_of(shop, market.email) == 403  # and nothing else keeps it open


@shop_named("shop-paths")
async def test_the_storage_root_the_agents_records_and_other_pods_are_never_granted(
        market: Market, shop: Shop) -> None:
    pod = market.person.pod
    server = pod.rsplit("/", 2)[0] + "/"
    for target in (pod, f"{pod}vrm/", f"{pod}vrm/negotiations/", f"{pod}vrm/terms/",
                   f"{pod}vrm/transactions/shop-counter/", f"{pod}../shop-agree/",
                   f"{pod}%2e%2e/shop-agree/", f"{pod}notes/%2E%2E/", server):
        view = await shop.vendor.request(shop.agent, request_policy(
            [target], purpose="dpv:ResearchAndDevelopment", duration=timedelta(days=1)))
        assert view.state is State.TERMINATED and view.event == "refused", (target,
                                                                            view.document)
        assert not view.awaiting_person
    for readable in (f"{pod}vrm/negotiations/", f"{pod}vrm/terms/", f"{pod}vrm/agreements/",
                     market.purchases("shop-counter"), market.email):
        assert await status_of(shop, readable) == 403, readable


@shop_named("shop-other")
async def test_a_broken_negotiation_record_is_never_fatal(market: Market, shop: Shop) -> None:
    container = f"{market.person.pod}vrm/negotiations/"
    junk = {"00000000000000aa": ("application/ld+json", "[1, 2, 3]"),
            "00000000000000bb": ("application/ld+json", '{"@context": {}, "id": "x"}'),
            "00000000000000cc": ("text/plain", "not a record")}
    async with PodClient(market.person.credentials) as pod:
        for name, (content_type, body) in junk.items():
            await pod.put(container + name, body, content_type=content_type)
    try:
        for name in junk:
            response = await shop.pod.request("GET", f"{shop.agent.negotiations}/{name}",
                                              expect_ok=False)
            assert response.status == 404, (name, response.status, response.text())
            assert response.content_type == "application/problem+json"
        listed = await asyncio.to_thread(cli, market, "negotiations", "--all", "--json")
        assert all(row["id"] not in junk for row in json.loads(listed))
        health = await shop.pod.request("GET", market.agent.url + "health", expect_ok=False,
                                        authenticated=False)
        assert health.status == 200
    finally:
        async with PodClient(market.person.credentials) as pod:
            for name in junk:
                await pod.delete(container + name)


@shop_named("shop-other")
async def test_a_callback_aimed_at_the_person_is_refused(market: Market, shop: Shop) -> None:
    """The agent never takes a callback that would make it write into the person's pod, call
    itself or the person's identity provider: 400 bad-callback, and nothing is stored."""
    async def count() -> int:
        try:
            return await negotiation_count(market)
        except NotFound:
            return 0

    before = await count()
    pod = market.person.pod
    for callback in (pod + "vrm/terms/", pod, pod.upper().replace("HTTP://", "http://"),
                     pod + "x/../vrm/contact/", shop.agent.url + "negotiations",
                     "http://shop.example/inbox", "https://user:pw@shop.example/inbox"):
        body = json.dumps({
            "@context": "https://w3id.org/vrm-agent/protocol/v1", "type": "ContractRequestMessage",
            "callbackAddress": callback,
            "policy": {"uid": "urn:uuid:callback-test", "type": "Request", "permission": [{
                "action": "use", "target": ["pd:EmailAddress"],
                "constraint": [{"leftOperand": "purpose", "operator": "eq",
                                "rightOperand": {"id": "dpv:DeliveryOfGoods"}}]}]},
        }).encode()
        status, content_type, problem = await raw_post(shop, shop.agent.negotiations, body)
        assert (status, problem.get("type", "").rsplit("/", 1)[-1]) == (400, "bad-callback"), \
            (callback, problem)
        assert content_type == "application/problem+json"
    assert await count() == before


# -- what the agent loads ----------------------------------------------------------------------


@shop_named("shop-light")
async def test_the_agent_checks_what_it_writes_without_pyshacl(market: Market,
                                                               shop: Shop) -> None:
    # pyshacl and rdflib's SPARQL engine cost some 8 MB; the records a negotiation writes (the
    # agreement record, audit events, terms) are checked by the compiled shapes instead. Run
    # last, the log covers every negotiation of this module; run alone, this one.
    policy = request_policy(["pd:EmailAddress"], purpose="dpv:DeliveryOfGoods",
                            duration=timedelta(days=7))
    view = await shop.vendor.verify(await shop.vendor.request(shop.agent, policy))
    assert view.state is State.FINALIZED
    assert await agreement_state(market, view) == "Finalized"
    assert await audit_has(market, "AgreementReached", "AccessGranted")
    imported = [line.rsplit("|", 1)[-1].strip()
                for line in market.agent.log.read_text().splitlines()
                if line.startswith("import time:")]
    assert "vrm_agent.negotiation.records" in imported  # the trace is there and complete
    assert not [m for m in imported if m.startswith(("pyshacl", "rdflib.plugins.sparql"))]

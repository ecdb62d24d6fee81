"""W3C LWS access requests and grants, against a real `vrm-agent run` and real pods (WAC, ACP).

The person is lena. Her terms let anyone read her `shared/` container for service provision for
up to 30 days; the starter roster forbids marketing; nothing decides her `private/` diary, so a
request for it waits for her. Each LWS client is an account of its own, authenticating with its
own DPoP-bound token, and proves what it may read by reading from the pod itself.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web
from rdflib import RDF, Graph, Literal, URIRef

from tests.conftest import PodEnv, RunningAgent, new_accounts, run_cli, start_agent, stop_agent
from vrm_agent.errors import NotFound
from vrm_agent.pod.client import PodClient, PodResponse
from vrm_agent.podserver import PodAccount
from vrm_agent.podserver.process import free_port

pytestmark = pytest.mark.pod
LWS = "https://www.w3.org/ns/lws#"
DPV = "https://w3id.org/dpv#"
CLIENTS = ("lws-agree", "lws-refuse", "lws-ask", "lws-bad", "lws-other", "lws-typed")


@dataclass
class LwsInbox:
    """A client's inbox: keeps what arrives (the agent signs it; the body is what matters)."""

    url: str = ""
    received: list[dict[str, Any]] = field(default_factory=list)
    signed: list[bool] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def wait_for(self, kind: str, object_url: str, timeout: float = 30) -> dict[str, Any]:
        async def first() -> dict[str, Any]:
            while True:
                for note in self.received:
                    activity = note.get("activity", {})
                    if kind in activity.get("type", []) and \
                            activity.get("object", {}).get("id") == object_url:
                        return note
                self.arrived.clear()
                await self.arrived.wait()

        return await asyncio.wait_for(first(), timeout)


@dataclass
class World:
    person: PodAccount
    agent: RunningAgent
    clients: dict[str, PodAccount]
    notes: str
    diary: str
    inbox: LwsInbox

    @property
    def requests(self) -> str:
        return self.agent.url + "lws/requests/"

    @property
    def grants(self) -> str:
        return self.agent.url + "lws/grants/"


TERMS = """{
  "@context": "https://w3id.org/vrm-agent/protocol/v1",
  "uid": "urn:uuid:5d0f6a52-1c1b-4f57-9a0e-6b0c3f2e7a11",
  "type": "Set",
  "title": "Shared notes for service provision",
  "permission": [{"action": "use", "target": ["SHARED"], "constraint": [
    {"leftOperand": "purpose", "operator": "isA", "rightOperand": {"id": "dpv:ServiceProvision"}},
    {"leftOperand": "elapsedTime", "operator": "lteq",
     "rightOperand": {"@value": "P30D", "@type": "xsd:duration"}}]}]
}"""


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def world(pod_env: PodEnv, tmp_path_factory: pytest.TempPathFactory
                ) -> AsyncIterator[World]:
    clients = await new_accounts(pod_env.server, "lena", *CLIENTS)
    person = clients.pop("lena")
    notes, diary = f"{person.pod}shared/notes", f"{person.pod}private/diary"
    async with PodClient(person.credentials) as pod:
        for url, text in ((notes, "shopping list"), (diary, "dear diary")):
            graph = Graph()
            graph.add((URIRef(url + "#it"), URIRef("http://schema.org/text"), Literal(text)))
            await pod.put_graph(url, graph)
    folder = tmp_path_factory.mktemp(f"lena-{pod_env.flavour.value}")
    config = folder / "config.json"
    login = run_cli("login", "--webid", person.webid, "--client-id", person.client_id,
                    "--client-secret", person.client_secret, "--config", str(config))
    assert login.returncode == 0, login.stderr
    terms = folder / "shared.jsonld"
    terms.write_text(TERMS.replace("SHARED", f"{person.pod}shared/"))
    added = run_cli("terms", "add", str(terms), "--name", "shared-notes", "--config", str(config))
    assert added.returncode == 0, added.stderr
    # Terms of her own mean no starter roster: she takes the one against marketing herself.
    added = run_cli("terms", "add", "--roster", "no-marketing", "--config", str(config))
    assert added.returncode == 0, added.stderr
    inbox = LwsInbox()

    async def receive(request: web.Request) -> web.Response:
        inbox.received.append(json.loads(await request.read()))
        inbox.signed.append("Signature" in request.headers)
        inbox.arrived.set()
        return web.Response(status=202)

    app = web.Application()
    app.router.add_post("/inbox", receive)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "localhost", port).start()
    inbox.url = f"http://localhost:{port}/inbox"
    agent = start_agent(pod_env, folder, account=person)
    yield World(person, agent, clients, notes, diary, inbox)
    stop_agent(agent)
    await runner.cleanup()


def cli(world: World, *args: str) -> str:
    result = run_cli(*args, "--config", str(world.agent.config))
    assert result.returncode == 0, result.stderr
    return result.stdout


def end_in(delta: timedelta) -> str:
    return (datetime.now(UTC) + delta).strftime("%Y-%m-%dT%H:%M:%SZ")


def access_request(world: World, client: str, resource: str, *, purpose: str = DPV +
                   "ServiceProvision", end: timedelta | None = timedelta(days=2),
                   extra: list[dict[str, Any]] | None = None,
                   inbox: str | None = None) -> dict[str, Any]:
    constraints: list[dict[str, Any]] = [
        {"leftOperand": "purpose", "operator": "eq", "rightOperand": purpose}]
    if end is not None:
        constraints.append({"leftOperand": "dateTime", "operator": "lteq",
                            "rightOperand": end_in(end)})
    body: dict[str, Any] = {
        "@context": ["https://www.w3.org/ns/lws/v1"], "type": ["AccessRequest"],
        "storage": world.person.pod,
        "access": [{"type": ["AccessPolicy"], "action": ["read"],
                    "assignee": world.clients[client].webid,
                    "target": {"type": "DataResource", "value": [resource]},
                    "constraint": constraints + (extra or [])}]}
    if inbox:
        body["inbox"] = inbox
    return body


async def call(pod: PodClient, method: str, url: str, body: Any = None,
               content_type: str = "application/lws+json") -> tuple[int, dict[str, Any]]:
    response: PodResponse = await pod.request(
        method, url, headers={"Content-Type": content_type, "Accept": "application/lws+json"},
        body=(body if isinstance(body, str | bytes) else json.dumps(body))
        if body is not None else None, expect_ok=False)
    try:
        document = json.loads(response.body) if response.body else {}
    except ValueError:
        document = {}
    return response.status, document


async def reads(pod: PodClient, url: str) -> int:
    return (await pod.request("GET", url, headers={"Accept": "text/turtle"},
                              expect_ok=False)).status


async def negotiation_count(world: World) -> int:
    async with PodClient(world.person.credentials) as pod:
        try:
            return len(await pod.list_container(f"{world.person.pod}vrm/negotiations/"))
        except NotFound:  # no container yet: none kept
            return 0


# -- discovery -----------------------------------------------------------------------------------


async def test_the_services_are_advertised_in_discovery_and_profile(world: World) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.get(world.agent.url + ".well-known/vrm-agent") as response:
            discovery = await response.json(content_type=None)
        async with session.get(world.agent.url + "lws/description") as response:
            assert response.headers["Content-Type"].startswith("application/lws+json")
            description = await response.json(content_type=None)
        async with session.get(world.agent.url + "lws/v1") as response:
            context = await response.json(content_type=None)
    endpoints = {s["@type"]: s["lws:serviceEndpoint"]["@id"] for s in discovery["lws:service"]}
    assert endpoints == {"lws:AccessRequestService": world.requests,
                         "lws:AccessGrantService": world.grants}
    assert description["id"] == world.person.pod
    assert {s["type"]: s["serviceEndpoint"] for s in description["service"]} == {
        "AccessRequestService": world.requests, "AccessGrantService": world.grants,
        "StorageDescription": world.agent.url + "lws/description"}
    assert context["@context"]["AccessRequest"] == "lws:AccessRequest"
    async with PodClient() as anonymous:
        profile = (await anonymous.get_graph(world.person.webid, authenticated=False)).graph
    services = set(profile.objects(URIRef(world.person.webid), URIRef(LWS + "service")))
    found = {str(next(profile.objects(s, RDF.type))): str(next(profile.objects(
        s, URIRef(LWS + "serviceEndpoint")))) for s in services}
    assert found == {LWS + "AccessRequestService": world.requests,
                     LWS + "AccessGrantService": world.grants}


async def test_a_call_without_credentials_is_401(world: World) -> None:
    async with aiohttp.ClientSession() as session:
        for method, url in (("GET", world.requests), ("POST", world.requests),
                            ("GET", world.grants), ("DELETE", world.grants + "0123456789abcdef")):
            async with session.request(method, url, data=b"{}") as response:
                assert response.status == 401, (method, url)
                assert "DPoP" in response.headers["WWW-Authenticate"]


# -- the terms decide ----------------------------------------------------------------------------


async def test_a_request_the_terms_agree_to_is_granted_and_ends_on_delete(world: World) -> None:
    async with PodClient(world.clients["lws-agree"].credentials) as client, \
            PodClient(world.clients["lws-other"].credentials) as other:
        assert await reads(client, world.notes) == 403
        status, answer = await call(client, "POST", world.requests, access_request(
            world, "lws-agree", world.notes, inbox=world.inbox.url))
        assert status == 201, answer
        assert answer["status"] == "granted" and answer["type"] == ["AccessRequest"]
        grant_url = answer["grant"]
        assert grant_url.startswith(world.grants)
        assert await reads(client, world.notes) == 200  # its own token, from the pod itself
        assert await reads(client, world.diary) == 403  # not asked, not given
        status, grant = await call(client, "GET", grant_url)
        assert status == 200 and grant["type"] == ["AccessGrant"]
        policy = grant["access"][0]
        assert policy["action"] == ["read"] and policy["target"]["value"] == [world.notes]
        ends = [c["rightOperand"] for c in policy["constraint"] if c["leftOperand"] == "dateTime"]
        until = datetime.fromisoformat(ends[0].replace("Z", "+00:00"))
        assert until <= datetime.now(UTC) + timedelta(days=2)  # never beyond what was asked
        note = await world.inbox.wait_for("Create", grant_url)
        assert note["type"] == "Notification" and note["storage"] == world.person.pod
        assert all(world.inbox.signed)
        # Another client learns nothing of it, and cannot end it.
        assert (await call(other, "GET", grant_url))[0] == 404
        assert (await call(other, "DELETE", grant_url))[0] == 404
        assert (await call(other, "GET", answer["id"]))[0] == 404
        assert grant_url not in json.dumps((await call(other, "GET", world.grants))[1])
        assert await reads(client, world.notes) == 200
        listed = (await call(client, "GET", world.grants))[1]
        assert grant_url in [item["id"] for item in listed["items"]]
        assert (await call(client, "DELETE", grant_url))[0] == 204
        assert await reads(client, world.notes) == 403
        assert (await call(client, "GET", grant_url))[0] == 404
        assert (await call(client, "GET", answer["id"]))[1]["status"] == "withdrawn"


async def test_resource_constraints_are_checked_before_granting(world: World) -> None:
    async with PodClient(world.clients["lws-typed"].credentials) as client:
        kept = await negotiation_count(world)
        status, answer = await call(client, "POST", world.requests, access_request(
            world, "lws-typed", world.notes, extra=[
                {"leftOperand": "mediaType", "operator": "isAnyOf",
                 "rightOperand": ["image/png", "image/jpeg"]}]))
        assert status == 409, answer
        assert await reads(client, world.notes) == 403
        assert await negotiation_count(world) == kept
        status, answer = await call(client, "POST", world.requests, access_request(
            world, "lws-typed", world.notes, extra=[
                {"leftOperand": "mediaType", "operator": "eq", "rightOperand": "text/turtle"},
                {"leftOperand": "type", "operator": "eq", "rightOperand": LWS + "DataResource"}]))
        assert status == 201 and answer["status"] == "granted", answer
        assert await reads(client, world.notes) == 200
        assert (await call(client, "DELETE", answer["grant"]))[0] == 204


async def test_a_request_the_terms_refuse(world: World) -> None:
    async with PodClient(world.clients["lws-refuse"].credentials) as client:
        status, answer = await call(client, "POST", world.requests, access_request(
            world, "lws-refuse", world.notes, purpose=DPV + "Marketing", inbox=world.inbox.url))
        assert status == 201 and answer["status"] == "refused", answer
        assert "grant" not in answer and answer["reason"]
        assert await reads(client, world.notes) == 403
        await world.inbox.wait_for("Reject", answer["id"])
        # Longer than the terms allow: an LWS request cannot take a counter-offer, so it is no.
        status, answer = await call(client, "POST", world.requests, access_request(
            world, "lws-refuse", world.notes, end=timedelta(days=60)))
        assert status == 201 and answer["status"] == "refused", answer
        assert any("allow less than asked" in r for r in answer["reason"])
        assert await reads(client, world.notes) == 403


# -- the person decides --------------------------------------------------------------------------


async def test_a_request_left_to_the_person_then_approved(world: World) -> None:
    async with PodClient(world.clients["lws-ask"].credentials) as client:
        status, answer = await call(client, "POST", world.requests, access_request(
            world, "lws-ask", world.diary, inbox=world.inbox.url))
        assert status == 201 and answer["status"] == "pending", answer
        request_id = answer["id"].rsplit("/", 1)[-1]
        listed = json.loads(await asyncio.to_thread(cli, world, "requests", "--json"))
        assert request_id in [row["id"] for row in listed]
        assert await reads(client, world.diary) == 403
        await asyncio.to_thread(cli, world, "requests", "approve", request_id)
        grant_url = world.grants + request_id
        await world.inbox.wait_for("Create", grant_url)
        assert await reads(client, world.diary) == 200
        answer = (await call(client, "GET", answer["id"]))[1]
        assert answer["status"] == "granted" and answer["grant"] == grant_url
        # The person revokes it: access ends, the client is told.
        await asyncio.to_thread(cli, world, "grants", "revoke", request_id)
        assert await reads(client, world.diary) == 403
        await world.inbox.wait_for("Delete", grant_url)
        assert (await call(client, "GET", answer["id"]))[1]["status"] == "revoked"


# -- bad requests change nothing -----------------------------------------------------------------


async def test_bad_requests_are_refused_and_change_nothing(world: World) -> None:
    async with PodClient(world.clients["lws-bad"].credentials) as client:
        kept = await negotiation_count(world)
        good = access_request(world, "lws-bad", world.notes)
        policy = good["access"][0]
        cases: dict[str, tuple[Any, int, str]] = {
            "unknown constraint": ({**good, "access": [{**policy, "constraint": [
                *policy["constraint"],
                {"leftOperand": "spatial", "operator": "eq", "rightOperand": "x"}]}]}, 400,
                "leftOperand"),
            "relative target": ({**good, "access": [{**policy, "target": {
                "type": "DataResource", "value": ["shared/notes"]}}]}, 400, "absolute"),
            "relative inbox": ({**good, "inbox": "inbox/"}, 400, "absolute"),
            "inbox in the person's pod": ({**good, "inbox": world.person.pod + "inbox/"}, 400,
                                          "storage"),
            "write access": ({**good, "access": [{**policy, "action": ["read", "modify"]}]},
                             400, "read access only"),
            "another assignee": ({**good, "access": [{**policy, "assignee":
                                                      world.clients["lws-other"].webid}]}, 400,
                                 "assignee"),
            "unknown member": ({**good, "grantAll": True}, 400, "does not know"),
            "another context": ({**good, "@context": ["https://www.w3.org/ns/lws/v1",
                                                      {"x": "http://x.example/"}]}, 400,
                                "context"),
            "no purpose": ({**good, "access": [{**policy, "constraint": policy["constraint"][1:]}]},
                           400, "purpose"),
            "oversized": ({**good, "padding": "x" * 70_000}, 413, "bytes"),
        }
        for name, (body, expected, words) in cases.items():
            status, problem = await call(client, "POST", world.requests, body)
            assert status == expected, (name, problem)
            assert words in problem.get("detail", ""), (name, problem)
        status, _ = await call(client, "POST", world.requests, json.dumps(good),
                               content_type="text/plain")
        assert status == 415
        assert await reads(client, world.notes) == 403
        assert await negotiation_count(world) == kept
        assert (await call(client, "GET", world.requests))[1]["items"] == []
        # Ids that are not its own, or not ids at all.
        for url in (world.grants + "0123456789abcdef", world.grants + "not-an-id",
                    world.requests + "zz"):
            assert (await call(client, "GET", url))[0] == 404
            assert (await call(client, "DELETE", url))[0] == 404
        assert (await call(client, "POST", world.grants, good))[0] == 403
        assert await negotiation_count(world) == kept


async def test_a_pending_request_can_be_withdrawn(world: World, tmp_path: Path) -> None:
    async with PodClient(world.clients["lws-other"].credentials) as client:
        status, answer = await call(client, "POST", world.requests, access_request(
            world, "lws-other", world.diary))
        assert status == 201 and answer["status"] == "pending", answer
        assert (await call(client, "DELETE", answer["id"]))[0] == 204
        assert (await call(client, "GET", answer["id"]))[1]["status"] == "withdrawn"
        listed = json.loads(await asyncio.to_thread(cli, world, "requests", "--json"))
        assert answer["id"].rsplit("/", 1)[-1] not in [row["id"] for row in listed]
        assert (await call(client, "DELETE", answer["id"]))[0] == 409

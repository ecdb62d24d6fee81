"""The attack harness: a person's agent running as a real process (``vrm-agent run``) on a real
pod server (WAC and ACP), attacked by real vendor accounts sending real authenticated requests.

Every attack is judged by two kinds of evidence, never by the agent's word alone:

- the person's pod, listed recursively by its owner before and after the attack (every resource
  with its body hash and ETag, every container with its members, and every access-control
  document the server links, ``.acl`` or ``.acr``): :func:`snapshot` and :func:`changes`;
- what the vendor can read with its own credentials (200 or 403): :meth:`Victim.reads`.

One person and one agent per flavour are shared by the attacks that cannot disturb each other;
attacks that could leave the agent unable to start, or that fill the pod with records, get a
person and an agent of their own (:func:`make_victim`).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from rdflib import Graph, Literal, URIRef

from tests.conftest import PodEnv, RunningAgent, new_account, run_cli, start_agent, stop_agent
from vrm_agent.ledger.records import ContactUnit, Vendor
from vrm_agent.ledger.store import Ledger
from vrm_agent.negotiation.odrl import Policy
from vrm_agent.negotiation.wire import PROTOCOL_CONTEXT, message_json
from vrm_agent.pod.client import LDP, PodClient
from vrm_agent.podserver import PodAccount
from vrm_agent.vendor import AgentInfo, NegotiationView, VendorAgent, request_policy

JSON_LD = "application/ld+json"
PROBLEM = "application/problem+json"
VRM = "https://w3id.org/vrm-agent/ns#"
# Absolute local paths as they would leak from this machine (tmp folders, the package, home).
LOCAL_PATH = re.compile(r"(?:file://)?/(?:tmp|home|root|usr|work|etc|var|proc)/")


# -- the person -----------------------------------------------------------------------------------


@dataclass
class Victim:
    """A person with contact data and purchases in their pod, and their agent running."""

    env: PodEnv
    person: PodAccount
    agent: RunningAgent
    email: str
    email_work: str
    phone: str
    folder: Path

    @property
    def diary(self) -> str:
        """A resource of the person's outside ``vrm/``, which a vendor may ask for by URL."""
        return f"{self.pod}notes/diary"

    @property
    def pod(self) -> str:
        return self.person.pod

    @property
    def negotiations(self) -> str:
        return self.agent.url + "negotiations"

    @property
    def info(self) -> AgentInfo:
        """The agent as a vendor finds it (built directly: attacks on the profile's
        advertisement must not send the others elsewhere)."""
        return AgentInfo(self.agent.url, self.person.webid, self.negotiations, None)

    def purchases(self, shop: str) -> str:
        return f"{self.pod}vrm/transactions/{shop}/"

    def cli(self, *args: str) -> Any:
        return run_cli(*args, "--config", str(self.agent.config))

    def cli_ok(self, *args: str) -> str:
        result = self.cli(*args)
        assert result.returncode == 0, (args, result.stdout, result.stderr)
        return str(result.stdout)

    async def owner(self) -> PodClient:
        client = PodClient(self.person.credentials)
        await client.open()
        return client

    def restart(self) -> None:
        """Stop the agent and run it again on the same config (raises if it cannot start)."""
        stop_agent(self.agent)
        self.agent = start_again(self.agent)


def start_again(previous: RunningAgent) -> RunningAgent:
    """`vrm-agent run` once more on an existing config, on a free port."""
    return run_agent(previous.config, previous.log.parent)


def run_agent(config: Path, folder: Path) -> RunningAgent:
    """`vrm-agent run` on a config that is logged in already, on a free port; raises
    RuntimeError with the agent's log when it exits at start or does not answer."""
    import subprocess
    import sys
    import time
    import urllib.request

    from vrm_agent.podserver.process import free_port

    port = free_port()
    log = folder / f"agent-{port}.log"
    with open(log, "w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "vrm_agent.cli.main", "run", "--port", str(port),
             "--config", str(config)],
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True)
    url = f"http://localhost:{port}/"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("the agent exited at start:\n" + log.read_text())
        try:
            with urllib.request.urlopen(url + "health", timeout=1):
                return RunningAgent(url, config, process, log)
        except OSError:
            time.sleep(0.2)
    process.terminate()
    process.wait()
    raise RuntimeError("the agent did not answer within 30 s:\n" + log.read_text())


async def make_victim(env: PodEnv, name: str, folder: Path,
                      shops: Mapping[str, PodAccount] | None = None,
                      settings: Mapping[str, Any] | None = None) -> Victim:
    """A new person ``name`` with two e-mail addresses, a phone number, purchases from each
    shop (``vrm/transactions/<shop>/2026``), the shops as vendors, and their agent running."""
    person = await new_account(env, name)
    shops = shops if shops is not None else {"acme": env.acme, "bolt": env.bolt}
    async with PodClient(person.credentials) as pod:
        ledger = Ledger(pod, person.pod)
        email = await ledger.create(ContactUnit("email-home", "email", f"{name}@example.org"))
        work = await ledger.create(ContactUnit("email-work", "email", f"{name}@work.example"))
        phone = await ledger.create(ContactUnit("phone-mobile", "phone", "+49 30 1234567"))
        for shop, account in shops.items():
            await ledger.create(Vendor(shop, shop.title(), webid=account.webid))
            purchase = Graph()
            purchase.add((URIRef(f"{person.pod}vrm/transactions/{shop}/2026#t1"),
                          URIRef("http://schema.org/price"), Literal("12.50")))
            await pod.put_graph(f"{person.pod}vrm/transactions/{shop}/2026", purchase)
        diary = Graph()
        diary.add((URIRef(f"{person.pod}notes/diary#today"), URIRef("http://schema.org/text"),
                   Literal("dear diary")))
        await pod.put_graph(f"{person.pod}notes/diary", diary)
    agent = await asyncio.to_thread(start_agent, env, folder, person, (), settings)
    return Victim(env, person, agent, email, work, phone, folder)


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def victim(pod_env: PodEnv, tmp_path_factory: pytest.TempPathFactory
                 ) -> AsyncIterator[Victim]:
    """The person most attacks are aimed at (one per flavour), with their agent running."""
    folder = tmp_path_factory.mktemp(f"victim-{pod_env.flavour.value}")
    target = await make_victim(pod_env, "victim", folder)
    yield target
    stop_agent(target.agent)


_counter = 0


@pytest_asyncio.fixture(loop_scope="session")
async def vendor_account(pod_env: PodEnv) -> PodAccount:
    """A vendor account of its own for one attack, so agreements of one attack never answer
    another's reads."""
    global _counter
    _counter += 1
    return await new_account(pod_env, f"shop{_counter}x")


@dataclass
class Attacker:
    """A vendor with its own account: valid messages through :class:`VendorAgent`, hostile ones
    through :meth:`send` (signed with the vendor's own token and DPoP key all the same)."""

    account: PodAccount
    pod: PodClient
    vendor: VendorAgent
    sent: list[int] = field(default_factory=list)

    @property
    def webid(self) -> str:
        return self.account.webid

    async def send(self, method: str, url: str, body: bytes | str | Mapping[str, Any] | None
                   = None, *, timeout: float = 120.0,
                   headers: Mapping[str, str] | None = None) -> Answer:
        """One request exactly as given, authenticated as this vendor."""
        data: bytes | None
        if body is None:
            data = None
        elif isinstance(body, bytes):
            data = body
        elif isinstance(body, str):
            data = body.encode("utf-8")
        else:
            data = json.dumps(body).encode("utf-8")
        token = await self.pod.access_token()
        all_headers = {"Authorization": f"DPoP {token}",
                       "DPoP": self.pod.dpop_key.proof(method, url, token),
                       "Accept": JSON_LD, **(headers or {})}
        if data is not None:
            all_headers.setdefault("Content-Type", JSON_LD)
        return await raw_request(method, url, data, all_headers, timeout=timeout)

    async def request(self, victim: Victim, policy: Policy, **fields: Any) -> Answer:
        """A ContractRequestMessage with extra or replaced envelope fields."""
        message = message_json("ContractRequestMessage", policy=policy, **fields)
        return await self.send("POST", victim.negotiations, message)

    async def reads(self, url: str) -> int:
        return (await self.vendor.read(url)).status


@dataclass(frozen=True)
class Answer:
    status: int
    content_type: str
    text: str
    retry_after: str | None = None

    @property
    def json(self) -> Any:
        try:
            return json.loads(self.text)
        except ValueError:
            return None

    def is_problem(self, status: int | None = None) -> bool:
        body = self.json
        return (self.content_type == PROBLEM and isinstance(body, dict)
                and (status is None or self.status == status)
                and body.get("status") == self.status and bool(body.get("detail")))

    def __str__(self) -> str:
        return f"{self.status} {self.content_type} {' '.join(self.text[:300].split())}"


async def raw_request(method: str, url: str, data: bytes | None, headers: Mapping[str, str],
                      *, timeout: float = 120.0) -> Answer:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as session, \
            session.request(method, url, data=data, headers=dict(headers),
                            allow_redirects=False) as response:
        text = await response.text(errors="replace")
        return Answer(response.status, response.content_type, text,
                      response.headers.get("Retry-After"))


@pytest_asyncio.fixture(loop_scope="session")
async def attacker(vendor_account: PodAccount) -> AsyncIterator[Attacker]:
    async with PodClient(vendor_account.credentials) as pod:
        yield Attacker(vendor_account, pod, VendorAgent(pod))


@pytest_asyncio.fixture(loop_scope="session")
async def bolt(pod_env: PodEnv) -> AsyncIterator[Attacker]:
    """bolt, a vendor the person buys from (its purchases are in the person's pod)."""
    async with PodClient(pod_env.bolt.credentials) as pod:
        yield Attacker(pod_env.bolt, pod, VendorAgent(pod))


def research(*targets: str, duration: timedelta | None = timedelta(days=3)) -> Policy:
    """A request the starter terms leave to the person (research is neither allowed nor
    forbidden by them)."""
    return request_policy(list(targets), purpose="dpv:ResearchAndDevelopment", duration=duration)


def delivery(*targets: str, duration: timedelta = timedelta(days=7)) -> Policy:
    """A request the starter terms agree to at once."""
    return request_policy(list(targets), purpose="dpv:DeliveryOfGoods", duration=duration)


def marketing(*targets: str) -> Policy:
    """A request the starter terms refuse (no-marketing)."""
    return request_policy(list(targets), purpose="dpv:DirectMarketing",
                          duration=timedelta(days=7))


def view_of(answer: Answer) -> NegotiationView:
    """The vendor's view of a negotiation from the agent's answer (its state as reported)."""
    from vrm_agent.negotiation.protocol import Negotiation, Role, State

    body = answer.json or {}
    state = State(str(body.get("state")))
    view = NegotiationView(str(body.get("id")), Negotiation("", Role.CONSUMER, state),
                           agreement=body.get("agreement"))
    return VendorAgent._follow(VendorAgent.__new__(VendorAgent), view, body)


# -- the pod as its owner sees it -----------------------------------------------------------------


Snapshot = dict[str, str]


async def snapshot(owner: PodClient, root: str, *, concurrency: int = 8) -> Snapshot:
    """Every resource under ``root`` as its owner reads it: a container by its members, any
    other resource by the hash of its body and its ETag; and every access-control document the
    server links from them (key ``acl <url>``), by body hash, or "absent"."""
    found: Snapshot = {}
    limit = asyncio.Semaphore(concurrency)

    async def visit(url: str) -> None:
        # A document as stored (*/*: the server converts nothing, so the hash is stable; a
        # JSON-LD record converted to Turtle gets new blank-node labels on every read).
        accept = "text/turtle" if url.endswith("/") else "*/*"
        async with limit:
            response = await owner.request("GET", url, headers={"Accept": accept},
                                           expect_ok=False)
        if response.status != 200:
            found[url] = f"status {response.status}"
            return
        acl = response.links.acl
        children: list[str] = []
        if url.endswith("/"):
            graph = Graph()
            graph.parse(data=response.body, format="turtle", publicID=url)
            children = sorted(str(o) for o in graph.objects(URIRef(url), LDP.contains))
            found[url] = "members " + " ".join(c.removeprefix(url) for c in children)
        else:
            found[url] = (hashlib.sha256(response.body).hexdigest()[:16]
                          + f" {response.headers.get('ETag')}")
        tasks = [visit(child) for child in children]
        if acl and acl != url:
            tasks.append(visit_acl(acl))
        await asyncio.gather(*tasks)

    async def visit_acl(url: str) -> None:
        async with limit:
            response = await owner.request("GET", url, headers={"Accept": "text/turtle"},
                                           expect_ok=False)
        found[f"acl {url}"] = (hashlib.sha256(response.body).hexdigest()[:16]
                               if response.status == 200 else "absent")

    await visit(root)
    return found


def changes(before: Snapshot, after: Snapshot) -> dict[str, tuple[str | None, str | None]]:
    """What differs: url -> (before, after); None where a resource was absent."""
    def state(snap: Snapshot, key: str) -> str | None:
        value = snap.get(key)
        return None if value == "absent" else value  # no access-control document either way

    return {key: (state(before, key), state(after, key))
            for key in sorted(set(before) | set(after)) if state(before, key) != state(after, key)}


class Changes(dict[str, tuple[str | None, str | None]]):
    """Changes to a pod, printed one per line when an assertion shows them."""

    def __repr__(self) -> str:
        return "\n" + "\n".join(f"  {key}: {old} -> {new}" for key, (old, new) in self.items())


def unexpected(before: Snapshot, after: Snapshot, allowed: Iterable[str] = ()) -> Changes:
    """Changes outside the allowed places. An allowed place is a URL prefix; a container
    whose members stay the same may change only by being listed again (its key stays the same
    when its members do), so allowing ``vrm/audit/`` allows new days of audit log."""
    prefixes = tuple(allowed)
    out = Changes()
    for key, (old, new) in changes(before, after).items():
        url = key.removeprefix("acl ")
        if prefixes and url.startswith(prefixes) and not key.startswith("acl "):
            continue
        if url.endswith("/") and old and new and prefixes:
            # A container whose only new members lie in allowed places.
            added = set(new.split()[1:]) ^ set(old.split()[1:])
            if all((url + member).startswith(prefixes) for member in added):
                continue
        out[key] = (old, new)
    return out


# What a request refused by the terms may leave behind: its negotiation record and its audit
# entries (the issue allows at most one small write per refused request).
REFUSAL_TRACES = ("vrm/negotiations/", "vrm/audit/", "vrm/refused")


def allowed(victim: Victim, *places: str) -> list[str]:
    return [victim.pod + place for place in places]


async def settle(seconds: float = 1.0) -> None:
    """Give the agent's background writes (audit entries after the answer) time to land, so a
    snapshot taken after an attack sees them."""
    await asyncio.sleep(seconds)


__all__ = ["JSON_LD", "LOCAL_PATH", "PROBLEM", "PROTOCOL_CONTEXT", "REFUSAL_TRACES", "Answer",
           "Attacker", "Snapshot", "Victim", "allowed", "changes", "delivery", "make_victim",
           "marketing", "new_account", "research", "settle", "snapshot", "unexpected", "view_of"]

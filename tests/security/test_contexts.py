"""JSON-LD contexts from strangers: the agent reads WebID profiles and vendor messages as JSON-LD,
and JSON-LD names further documents (``@context``, ``@import``) that a careless processor loads:
from the network (a request the stranger counts), or from the agent's own disk (``file:``), whose
terms then change what the profile says, and whose errors tell the stranger what files exist.

A stranger here runs its own Solid-OIDC identity provider on loopback (which anyone may): its
tokens are properly signed, its WebID profile names it as issuer, so the agent's issuer check
holds as it should; what is under attack is only how the profile is read. A control case with a
Turtle profile proves the identity provider works, so a 401 elsewhere is the agent refusing the
context, not a broken set-up.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from aiohttp import web
from joserfc import jwt
from joserfc.jwk import ECKey

from tests.conftest import PodEnv, stop_agent
from tests.security.conftest import (
    LOCAL_PATH,
    REFUSAL_TRACES,
    Attacker,
    Victim,
    allowed,
    make_victim,
    marketing,
    raw_request,
    settle,
    snapshot,
    unexpected,
)
from vrm_agent.negotiation.wire import PROTOCOL_CONTEXT, message_json
from vrm_agent.pod.auth import DpopKey

pytestmark = pytest.mark.pod
SOLID_ISSUER = "http://www.w3.org/ns/solid/terms#oidcIssuer"


class StrangerIdentity:
    """An identity provider, WebID profiles and JSON-LD contexts, served from loopback, counting
    every request for a context."""

    def __init__(self) -> None:
        self.key = ECKey.generate_key("P-256", parameters={"kid": "stranger"})
        self.profiles: dict[str, tuple[str, str]] = {}  # name -> (content type, body)
        self.context_hits: Counter[str] = Counter()
        self.runner: web.AppRunner | None = None
        self.base = ""
        self.hold_configuration: asyncio.Event | None = None  # set: answer; None: at once

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/.well-known/openid-configuration", self._configuration)
        app.router.add_get("/jwks", self._jwks)
        app.router.add_get("/profile/{name}", self._profile)
        app.router.add_get("/ctx/{name}", self._context)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "localhost", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.base = f"http://localhost:{port}/"

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()

    @property
    def issuer(self) -> str:
        return self.base.rstrip("/")

    def webid(self, name: str) -> str:
        return f"{self.base}profile/{name}#me"

    def context_url(self, name: str) -> str:
        return f"{self.base}ctx/{name}"

    async def _configuration(self, request: web.Request) -> web.Response:
        if self.hold_configuration is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.hold_configuration.wait(), timeout=60)
        return web.json_response({"issuer": self.issuer, "jwks_uri": self.base + "jwks"})

    async def _jwks(self, request: web.Request) -> web.Response:
        return web.json_response({"keys": [self.key.as_dict(private=False)]})

    async def _profile(self, request: web.Request) -> web.Response:
        content_type, body = self.profiles[request.match_info["name"]]
        return web.Response(text=body, content_type=content_type)

    async def _context(self, request: web.Request) -> web.Response:
        self.context_hits[request.match_info["name"]] += 1
        return web.json_response({"@context": {
            "issuer": {"@id": SOLID_ISSUER, "@type": "@id"}}},
            content_type="application/ld+json")

    def token(self, webid: str, dpop: DpopKey) -> str:
        now = int(time.time())
        claims = {"webid": webid, "iss": self.issuer, "aud": "solid", "iat": now,
                  "exp": now + 600, "client_id": "stranger", "cnf": {"jkt": dpop.thumbprint}}
        return jwt.encode({"alg": "ES256", "typ": "at+jwt", "kid": "stranger"}, claims, self.key)

    async def call(self, victim: Victim, name: str, body: dict[str, Any]) -> Any:
        """A request to the agent as the stranger whose WebID is ``/profile/<name>#me``."""
        dpop = DpopKey()
        token = self.token(self.webid(name), dpop)
        headers = {"Authorization": f"DPoP {token}",
                   "DPoP": dpop.proof("POST", victim.negotiations, token),
                   "Content-Type": "application/ld+json"}
        return await raw_request("POST", victim.negotiations, json.dumps(body).encode(), headers)


@pytest_asyncio.fixture(loop_scope="session")
async def stranger() -> AsyncIterator[StrangerIdentity]:
    identity = StrangerIdentity()
    await identity.start()
    yield identity
    await identity.stop()


def refused_request(victim: Victim) -> dict[str, Any]:
    """A request the terms refuse: whoever is let in, nothing is granted."""
    return message_json("ContractRequestMessage", policy=marketing(victim.email))


async def test_webid_profile_with_a_remote_context_is_not_fetched(
        victim: Victim, stranger: StrangerIdentity, tmp_path: Path) -> None:
    # Control: the same stranger with a Turtle profile is let in (its terms refuse it).
    stranger.profiles["turtle"] = ("text/turtle", f"<#me> <{SOLID_ISSUER}> <{stranger.issuer}> .")
    control = await stranger.call(victim, "turtle", refused_request(victim))
    assert control.status == 201, f"the stranger's identity provider does not work: {control}"
    owner = await victim.owner()
    before = await snapshot(owner, victim.pod)
    for name, context in {
        "remote": stranger.context_url("remote"),
        "remote-in-list": [stranger.context_url("remote-in-list")],
        "import": {"@version": 1.1, "@import": stranger.context_url("import")},
    }.items():
        stranger.profiles[name] = ("application/ld+json", json.dumps({
            "@context": context, "@id": stranger.webid(name), "issuer": stranger.issuer}))
        answer = await stranger.call(victim, name, refused_request(victim))
        assert stranger.context_hits[name] == 0, f"{name}: the agent fetched the context"
        assert answer.status == 401 and answer.is_problem(401), f"{name}: {answer}"
    await settle()
    after = await snapshot(owner, victim.pod)
    await owner.close()
    assert not unexpected(before, after, allowed(victim, *REFUSAL_TRACES))


async def test_webid_profile_with_a_file_context_is_not_read(
        victim: Victim, stranger: StrangerIdentity, tmp_path: Path) -> None:
    local = tmp_path / "issuer-context.jsonld"
    local.write_text(json.dumps({"@context": {"issuer": {"@id": SOLID_ISSUER, "@type": "@id"}}}))
    stranger.profiles["file"] = ("application/ld+json", json.dumps({
        "@context": local.as_uri(), "@id": stranger.webid("file"), "issuer": stranger.issuer}))
    answer = await stranger.call(victim, "file", refused_request(victim))
    assert answer.status == 401, (
        f"an issuer named only through the terms of a local file was accepted: {answer}")
    assert answer.is_problem(401), answer


async def test_a_missing_local_file_is_no_oracle(victim: Victim,
                                                 stranger: StrangerIdentity) -> None:
    answers = []
    for name, path in {"missing": "/nonexistent/secret/ctx.jsonld",
                       "present": "/etc/hostname"}.items():
        stranger.profiles[name] = ("application/ld+json", json.dumps({
            "@context": f"file://{path}", "@id": stranger.webid(name),
            "issuer": stranger.issuer}))
        answer = await stranger.call(victim, name, refused_request(victim))
        assert answer.status == 401, answer
        assert "nonexistent" not in answer.text and not LOCAL_PATH.search(answer.text), (
            f"the 401 tells the stranger about local files: {answer.text}")
        assert "Errno" not in answer.text and "Traceback" not in answer.text, answer.text
        answers.append(answer.json.get("detail"))
    # A file that exists and one that does not are refused alike.
    assert answers[0] == answers[1], answers


async def test_message_contexts_are_never_loaded(victim: Victim, attacker: Attacker,
                                                 stranger: StrangerIdentity) -> None:
    policy = marketing(victim.email)
    base = message_json("ContractRequestMessage", policy=policy)
    cases: dict[str, Any] = {
        "remote": [PROTOCOL_CONTEXT, stranger.context_url("msg-remote")],
        "import": [PROTOCOL_CONTEXT, {"@version": 1.1,
                                      "@import": stranger.context_url("msg-import")}],
        "scoped": [PROTOCOL_CONTEXT, {"x": {"@id": "https://example.org/x",
                                            "@context": stranger.context_url("msg-scoped")}}],
        "file": "file:///etc/passwd",
        "file in list": [PROTOCOL_CONTEXT, "file:///etc/hostname"],
    }
    for name, context in cases.items():
        body = {**base, "@context": context}
        if name == "scoped":
            body["x"] = {"y": 1}
        answer = await attacker.send("POST", victim.negotiations, body)
        assert answer.is_problem(400), f"{name}: {answer}"
        assert "root:" not in answer.text, f"{name}: a local file's content came back"
    assert sum(stranger.context_hits.values()) == 0, dict(stranger.context_hits)


async def test_files_the_person_imports_load_no_context(victim: Victim,
                                                        stranger: StrangerIdentity,
                                                        tmp_path: Path) -> None:
    """A ledger export or a terms file made elsewhere is JSON-LD from outside too."""
    owner = await victim.owner()
    before = await snapshot(owner, victim.pod)
    local = tmp_path / "local-context.jsonld"
    local.write_text(json.dumps({"@context": {"n": "https://example.org/n#"}}))
    outcomes = {}
    for name, context in {"ledger-remote": stranger.context_url("ledger-remote"),
                          "ledger-file": local.as_uri(),
                          "terms-remote": stranger.context_url("terms-remote")}.items():
        document = tmp_path / f"{name}.jsonld"
        document.write_text(json.dumps({
            "@context": context, "@id": f"{victim.pod}vrm/vendors/x#it", "n:name": "x",
            "type": "Offer", "uid": "urn:uuid:0b6e8a3c-1d0f-4bde-9d1c-2f4e0c1a7a10",
            "permission": [{"action": "use"}]}))
        args = (("import", "ledger", str(document)) if name.startswith("ledger")
                else ("terms", "add", str(document), "--name", "imported"))
        result = await asyncio.to_thread(victim.cli, *args)
        outcomes[name] = (result.returncode, result.stderr.strip()[-200:])
        assert "Traceback" not in result.stderr, result.stderr
    after = await snapshot(owner, victim.pod)
    await owner.close()
    assert sum(stranger.context_hits.values()) == 0, (
        f"contexts fetched: {dict(stranger.context_hits)}; {outcomes}")
    assert all(code != 0 for code, _ in outcomes.values()), outcomes
    assert not unexpected(before, after, allowed(victim, "vrm/audit/"))


async def test_a_huge_profile_is_not_read_whole(victim: Victim,
                                                stranger: StrangerIdentity) -> None:
    """A stranger's server decides how much it sends: the agent reads a bounded amount."""
    padding = "# " + "x" * 1022 + "\n"
    stranger.profiles["huge"] = ("text/turtle", padding * 40_000 + (  # 40 MiB of comments
        f"<#me> <{SOLID_ISSUER}> <{stranger.issuer}> ."))
    answer = await stranger.call(victim, "huge", refused_request(victim))
    assert answer.status == 401 and answer.is_problem(401), answer
    health = await raw_request("GET", victim.agent.url + "health", None, {})
    assert health.status == 200


@pytest_asyncio.fixture(loop_scope="session")
async def fresh_agent(pod_env: PodEnv, tmp_path_factory: pytest.TempPathFactory
                      ) -> AsyncIterator[Victim]:
    """A person whose agent has just started: no issuer's keys are cached yet."""
    target = await make_victim(pod_env, "fresh",
                               tmp_path_factory.mktemp(f"fresh-{pod_env.flavour.value}"))
    yield target
    stop_agent(target.agent)


async def test_a_slow_stranger_issuer_does_not_hold_up_other_vendors(
        fresh_agent: Victim, stranger: StrangerIdentity, attacker: Attacker) -> None:
    """The agent fetches the keys of the issuer a token names; a stranger's issuer that never
    answers must not keep honest vendors out while the agent waits for it."""
    victim = fresh_agent
    stranger.profiles["slow"] = ("text/turtle",
                                 f"<#me> <{SOLID_ISSUER}> <{stranger.issuer}> .")
    stranger.hold_configuration = asyncio.Event()
    try:
        stalled = asyncio.create_task(stranger.call(victim, "slow", refused_request(victim)))
        await asyncio.sleep(0.5)  # the stranger's request is in the agent's hands
        honest = asyncio.create_task(attacker.request(victim, marketing("pd:EmailAddress")))
        done, _ = await asyncio.wait({honest}, timeout=20)
        answered_first = honest in done and not stalled.done()
    finally:
        stranger.hold_configuration.set()
    stranger_answer = await stalled
    honest_answer = await honest
    assert answered_first, (
        f"the honest vendor waited for the stranger's issuer (its answer: {honest_answer})")
    assert honest_answer.status == 201, honest_answer
    # The stranger's issuer answers once released: within the agent's fetch deadline its own
    # request goes on (and is refused by the terms), past it the request is a 401.
    assert stranger_answer.status in (201, 401), stranger_answer

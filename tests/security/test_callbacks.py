"""Confused deputy: a vendor names where the agent sends its notifications (``callbackAddress``),
and the agent sends them with the person's authority. Aimed into the person's own pod, one
notification creates resources there; junk in ``vrm/terms/`` then stops the agent from starting.

Every spelling of a place the agent must never send to is refused when the vendor names it (400,
nothing written); and the notifications themselves carry no token a pod would honour as the
person's.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import pytest_asyncio
from aiohttp import web

from tests.conftest import PodEnv, stop_agent
from tests.security.conftest import (
    REFUSAL_TRACES,
    Attacker,
    Victim,
    allowed,
    delivery,
    make_victim,
    research,
    settle,
    snapshot,
    unexpected,
)
from vrm_agent.negotiation.wire import message_json
from vrm_agent.vendor import request_policy

pytestmark = pytest.mark.pod


def hostile_callbacks(victim: Victim) -> dict[str, str]:
    """Places inside the person's storage, the agent or its issuer, spelled many ways; and
    addresses that are not absolute https (or http on loopback)."""
    pod = victim.pod
    port = urlsplit(pod).port
    path = urlsplit(pod).path  # /victim/
    agent = victim.agent.url
    issuer = victim.env.server.base_url
    return {
        "pod root": pod,
        "terms container": pod + "vrm/terms/",
        "contact container": pod + "vrm/contact/",
        "profile": pod + "profile/card",
        "upper-case host": f"http://LOCALHOST:{port}{path}vrm/terms/",
        "upper-case scheme": f"HTTP://localhost:{port}{path}vrm/terms/",
        "127.0.0.1 for localhost": f"http://127.0.0.1:{port}{path}vrm/terms/",
        "[::1] for localhost": f"http://[::1]:{port}{path}vrm/terms/",
        "127.1 for localhost": f"http://127.1:{port}{path}vrm/terms/",
        "hexadecimal loopback": f"http://0x7f.0.0.1:{port}{path}vrm/terms/",
        "IPv4-mapped IPv6 loopback": f"http://[::ffff:127.0.0.1]:{port}{path}vrm/terms/",
        "trailing dot in host": f"http://localhost.:{port}{path}vrm/terms/",
        "port with a leading zero": f"http://localhost:0{port}{path}vrm/terms/",
        "dot segments": pod + "public/../vrm/terms/",
        "single dot segments": pod + "./vrm/./contact/",
        "percent-encoded dots": pod + "public/%2e%2e/vrm/terms/",
        "percent-encoded dots, upper case": pod + "public/%2E%2E/vrm/contact/",
        "userinfo": f"http://someone:pw@localhost:{port}{path}vrm/terms/",
        "userinfo naming another host": f"http://vendor.example@localhost:{port}{path}",
        "query and fragment": pod + "vrm/terms/?x=1#y",
        "the agent itself": agent + "negotiations",
        "the agent's health": agent + "health",
        "the issuer": issuer + ".oidc/reg",
        "the pod server's root": issuer,
        "file": "file:///tmp/vrm-agent-callback",
        "plain http off loopback": "http://example.org/inbox",
        "relative": "inbox",
        "data": "data:text/plain,hello",
        "no host": "http:///victim/vrm/terms/",
    }


async def test_callback_into_the_persons_pod_is_refused(victim: Victim,
                                                        attacker: Attacker) -> None:
    owner = await victim.owner()
    before = await snapshot(owner, victim.pod)
    accepted = {}
    for name, callback in hostile_callbacks(victim).items():
        answer = await attacker.request(victim, research("pd:EmailAddress"),
                                        callbackAddress=callback)
        if not answer.is_problem(400):
            accepted[name] = f"{callback}: {answer.status}"
    # The same through the answer to an offer, which may name a new callback too.
    offer = await attacker.request(victim, request_policy(
        ["pd:EmailAddress"], purpose="dpv:ServiceProvision", duration=timedelta(days=180)),
                                   callbackAddress="http://localhost:9/inbox")
    assert offer.status == 201 and offer.json["state"] == "OFFERED", offer
    url = offer.json["id"]
    for name in ("pod root", "terms container", "dot segments"):
        callback = hostile_callbacks(victim)[name]
        answer = await attacker.send("POST", url + "/request", message_json(
            "ContractRequestMessage", negotiation=url,
            policy=research("pd:EmailAddress"), callbackAddress=callback))
        if not answer.is_problem(400):
            accepted[f"counter-request, {name}"] = f"{callback}: {answer.status}"
    await settle()
    after = await snapshot(owner, victim.pod)
    await owner.close()
    assert not accepted, f"callback addresses accepted: {json.dumps(accepted, indent=1)}"
    assert not unexpected(before, after, allowed(victim, *REFUSAL_TRACES))


# -- what the notifications would do ------------------------------------------------------------


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def deputy(pod_env: PodEnv, tmp_path_factory: pytest.TempPathFactory
                 ) -> AsyncIterator[Victim]:
    """A person of their own: this attack, where it succeeds, leaves the agent unable to start."""
    folder: Path = tmp_path_factory.mktemp(f"deputy-{pod_env.flavour.value}")
    target = await make_victim(pod_env, "deputy", folder)
    yield target
    stop_agent(target.agent)


async def test_notifications_never_write_into_the_pod_and_the_agent_still_starts(
        deputy: Victim, attacker: Attacker) -> None:
    owner = await deputy.owner()
    before = await snapshot(owner, deputy.pod)
    placed: list[str] = []
    # On the person's decision: the notification goes to vrm/terms/.
    asked = await attacker.request(deputy, research("pd:TelephoneNumber"),
                                   callbackAddress=deputy.pod + "vrm/terms/")
    if asked.status == 202:
        placed.append("vrm/terms/ (decision)")
        await asyncio.to_thread(deputy.cli_ok, "requests", "deny",
                                asked.json["id"].rsplit("/", 1)[-1])
    # On expiry: to vrm/contact/.
    short = await attacker.request(
        deputy, delivery("pd:EmailAddress", duration=timedelta(seconds=1)),
        callbackAddress=deputy.pod + "vrm/contact/")
    if short.status == 201:
        placed.append("vrm/contact/ (expiry)")
    # On revocation: to the pod root.
    kept = await attacker.request(deputy, delivery("pd:TelephoneNumber"),
                                 callbackAddress=deputy.pod)
    if kept.status == 201:
        placed.append("pod root (revocation)")
        await asyncio.to_thread(deputy.cli_ok, "grants", "revoke",
                                kept.json["id"].rsplit("/", 1)[-1])
    await asyncio.sleep(6 if placed else 1)  # the expiry and the deliveries, had they been taken
    after = await snapshot(owner, deputy.pod)
    await owner.close()
    written = {k: v for k, v in unexpected(before, after, allowed(
        deputy, "vrm/negotiations/", "vrm/agreements/", "vrm/audit/", "vrm/grants",
        "vrm/refused", "vrm/due")).items() if not k.startswith("acl ")}
    # Whatever was accepted, the agent must start again and its terms must still be read.
    started = True
    try:
        await asyncio.to_thread(deputy.restart)
    except RuntimeError as exc:
        started = False
        reason = str(exc)[-400:]
    terms = await asyncio.to_thread(deputy.cli, "terms")
    assert not written, f"accepted {placed}; the notifications wrote {written}"
    assert started, f"the agent no longer starts: {reason}"
    assert terms.returncode == 0, terms.stderr
    assert not placed, f"callbacks into the pod were accepted: {placed}"


# -- what the notifications carry ----------------------------------------------------------------


class CaptureInbox:
    """A vendor's receiver that keeps the headers of everything it is sent."""

    def __init__(self) -> None:
        self.received: list[dict[str, str]] = []
        self.arrived = asyncio.Event()
        self.runner: web.AppRunner | None = None
        self.url = ""

    async def start(self) -> None:
        async def receive(request: web.Request) -> web.Response:
            await request.read()
            self.received.append(dict(request.headers))
            self.arrived.set()
            return web.Response(status=202)

        app = web.Application()
        app.router.add_post("/inbox", receive)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "localhost", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://localhost:{port}/inbox"

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()


def _claims(jwt: str) -> dict[str, object]:
    try:
        payload = jwt.split(".")[1]
        decoded = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError):
        return {}
    return decoded if isinstance(decoded, dict) else {}


async def test_notifications_carry_no_token_a_pod_would_honour_as_the_persons(
        victim: Victim, attacker: Attacker) -> None:
    inbox = CaptureInbox()
    await inbox.start()
    try:
        asked = await attacker.request(victim, research("pd:TelephoneNumber"),
                                        callbackAddress=inbox.url)
        assert asked.status == 202, asked
        await asyncio.to_thread(victim.cli_ok, "requests", "deny",
                                asked.json["id"].rsplit("/", 1)[-1])
        await asyncio.wait_for(inbox.arrived.wait(), timeout=30)
    finally:
        await inbox.stop()
    headers = inbox.received[0]
    scheme, _, token = headers.get("Authorization", "").partition(" ")
    claims = _claims(token) if scheme.lower() in ("dpop", "bearer") else {}
    audience = claims.get("aud")
    audiences = audience if isinstance(audience, list) else [audience]
    assert not (claims.get("webid") == victim.person.webid and "solid" in audiences), (
        "the notification carried the person's Solid-OIDC access token (aud solid): any pod "
        "server would honour it as the person's")


async def test_junk_in_the_agents_own_containers_is_skipped_not_fatal(
        deputy: Victim, attacker: Attacker) -> None:
    """What a confused deputy, another app or a broken write may leave in ``vrm/``: the agent
    still starts, every command still answers, vendors still get an answer. What cannot be
    read among the terms may have been terms that forbade something, so the person decides
    what the readable terms alone would agree to."""
    owner = await deputy.owner()
    junk = {
        "vrm/terms/junk": (b"not RDF at all", "text/plain"),
        "vrm/terms/remote-context": (json.dumps({
            "@context": "http://localhost:9/ctx", "@id": "#it", "name": "x"}).encode(),
            "application/ld+json"),
        "vrm/terms/nested/deeper": (b"<#a> <#b> <#c> .", "text/turtle"),
        "vrm/negotiations/not-ours": (b"<#a> <#b> <#c> .", "text/turtle"),
        "vrm/negotiations/0123456789abcdef": (b"{}", "application/json"),
        "vrm/agreements/0123456789abcdef": (b"\x00\x01\x02", "application/octet-stream"),
        "vrm/vendors/junk": (b"<#it> a <https://example.org/NotAVendor> .", "text/turtle"),
        "vrm/contact/junk": (b"[" * 5000, "application/ld+json"),
    }
    try:
        for place, (body, content_type) in junk.items():
            await owner.put(deputy.pod + place, body, content_type=content_type)
    finally:
        await owner.close()
    started = True
    reason = ""
    try:
        await asyncio.to_thread(deputy.restart)
    except RuntimeError as exc:
        started, reason = False, str(exc)[-400:]
    assert started, f"the agent no longer starts: {reason}"
    failing = {}
    for command in (("terms",), ("requests",), ("negotiations", "--all"), ("vendors",),
                    ("contact",), ("grants",)):
        result = await asyncio.to_thread(deputy.cli, *command)
        if result.returncode != 0 or "Traceback" in result.stderr:
            failing[" ".join(command)] = result.stderr.strip()[-200:]
    assert not failing, failing
    answered = await attacker.request(deputy, delivery("pd:EmailAddress"))
    assert answered.status == 202 and answered.json["state"] == "REQUESTED", answered
    assert "status" in answered.json  # waiting for the person, who can be asked

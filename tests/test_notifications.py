"""Notifications: where the agent may send them (callback rules, pure), and how a vendor's
inbox knows the agent sent them (HTTP Message Signatures, over real HTTP on localhost)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime, timedelta

import aiohttp
import pytest
import pytest_asyncio
from hypothesis import given, settings
from hypothesis import strategies as st

from vrm_agent.daemon.notify import BadCallback, Notifier
from vrm_agent.integrity.http_signatures import sign_request
from vrm_agent.integrity.keys import SigningKey
from vrm_agent.negotiation.callbacks import CallbackRejected, check_callback, normalise
from vrm_agent.negotiation.wire import message_json
from vrm_agent.vendor import AgentInfo, Inbox

STORAGE = "https://pod.example/alice/"
AGENT = "http://localhost:8750/"
ISSUER = "https://idp.example/"


def allowed(url: str) -> str:
    return check_callback(url, storage=STORAGE, agent=AGENT, issuer=ISSUER)


# -- where notifications may go --------------------------------------------------------------


@pytest.mark.parametrize("url", [
    "https://shop.example/inbox",
    "https://pod.example/shop/inbox/",  # another pod on the person's pod server
    "https://pod.example/alice-shop/inbox",  # a sibling whose name starts alike
    "http://localhost:9000/inbox",
    "http://127.0.0.1:9000/inbox",
    "http://[::1]:9000/inbox",
    "https://idp.example:8443/inbox",  # another origin on the issuer's host
])
def test_a_callback_outside_the_person_is_accepted(url: str) -> None:
    assert allowed(url).startswith(("https://", "http://"))


@pytest.mark.parametrize("url", [
    # the person's storage, however spelled
    "https://pod.example/alice/",
    "https://pod.example/alice",
    "https://pod.example/alice/vrm/terms/",
    "HTTPS://POD.EXAMPLE/alice/vrm/contact/",
    "https://pod.example:443/alice/vrm/",
    "https://pod.example./alice/",
    "https://pod.example/shop/../alice/vrm/terms/",
    "https://pod.example/./alice/",
    "https://pod.example/%61lice/vrm/",
    "https://pod.example/x/%2e%2e/alice/",
    "https://pod.example/alice%2Fvrm/terms/",
    "https://pod.example/Alice/vrm/",
    "https://%70od.example/alice/",
    # the agent itself, under any loopback spelling
    "http://localhost:8750/negotiations",
    "http://localhost.:8750/",
    "http://LOCALHOST:8750/health",
    "http://127.0.0.1:8750/",
    "http://127.1:8750/",
    "http://0x7f.0.0.1:8750/",
    "http://2130706433:8750/",
    "http://0177.0.0.1:8750/",
    "http://[::1]:8750/",
    "http://[0:0:0:0:0:0:0:1]:8750/",
    "http://[::ffff:127.0.0.1]:8750/",
    "http://0.0.0.0:8750/",
    "http://agent.localhost:8750/",
    # the person's identity provider
    "https://idp.example/.oidc/token",
    "https://IDP.example:443/",
    # not a place a notification goes
    "http://shop.example/inbox",  # http off loopback
    "ftp://shop.example/inbox",
    "file:///etc/passwd",
    "/inbox",
    "shop.example/inbox",
    "https://user:pw@shop.example/inbox",
    "https://@shop.example/inbox",
    "https://shop.example:0/inbox",
    "https://shop.example:99999/inbox",
    "https://shop example/inbox",
    "https://shop.example/in box",
    "https://shop.example/%zz",
    "http://[fe80::1%25eth0]:9000/",
    "http://[::1/",
    "https:///inbox",
    "",
    "https://shop.example/" + "a" * 3000,
])
def test_a_callback_aimed_at_the_person_or_malformed_is_refused(url: str) -> None:
    with pytest.raises(CallbackRejected):
        allowed(url)


def test_the_accepted_callback_is_the_canonical_spelling() -> None:
    assert allowed("HTTPS://Shop.Example.:443/a/./b/../%7einbox?x=%2f#frag") == \
        "https://shop.example/a/~inbox?x=%2F"
    assert allowed("http://127.000.000.001:9000") == "http://127.0.0.1:9000/"
    assert normalise("http://[::FFFF:7f00:1]:80/").url == "http://127.0.0.1/"


def test_without_an_issuer_only_storage_and_agent_are_out() -> None:
    assert check_callback("https://idp.example/inbox", storage=STORAGE, agent=AGENT,
                          issuer=None) == "https://idp.example/inbox"


def test_the_service_refuses_a_bad_callback_as_a_400_problem() -> None:
    notifier = Notifier(SigningKey(), storage=STORAGE, agent_url=AGENT, issuer=ISSUER)
    assert notifier.accept_callback(None) is None
    with pytest.raises(BadCallback) as refused:
        notifier.accept_callback("https://pod.example/alice/vrm/terms/")
    assert refused.value.status == 400 and refused.value.slug == "bad-callback"


# -- who sent it ---------------------------------------------------------------------------------


@pytest_asyncio.fixture(loop_scope="session")
async def inbox() -> AsyncIterator[Inbox]:
    async with Inbox() as box:
        yield box


AGENT_KEY = SigningKey()


def agent_info(key: SigningKey = AGENT_KEY, url: str = "http://agent.test/") -> AgentInfo:
    return AgentInfo(url, "https://pod.example/alice/profile/card#me", url + "negotiations",
                     key.verification_method)


def notification(negotiation: str = "http://agent.test/negotiations/abc") -> bytes:
    return json.dumps(message_json("ContractNegotiationTerminationMessage",
                                   negotiation=negotiation, state="TERMINATED",
                                   event="expired", reason=["ended"])).encode()


async def post(url: str, body: bytes, headers: Mapping[str, str]) -> int:
    async with aiohttp.ClientSession() as session, session.post(
            url, data=body, headers=dict(headers)) as response:
        return response.status


async def test_a_signed_notification_from_a_trusted_agent_is_kept(inbox: Inbox) -> None:
    inbox.trust(agent_info())
    body = notification()
    assert await post(inbox.url, body, sign_request(
        AGENT_KEY, "POST", inbox.url, body, content_type="application/ld+json")) == 202
    kept = inbox.received[-1]
    assert kept.type == "ContractNegotiationTerminationMessage" and kept.event == "expired"
    assert kept.agent == "http://agent.test/"
    assert kept.sender == "https://pod.example/alice/profile/card#me"


async def test_an_inbox_behind_a_proxy_checks_signatures_against_its_public_url() -> None:
    public = "https://vendor.example/inbox"
    async with Inbox(public_url=public) as box:
        box.trust(agent_info())
        listening = f"http://localhost:{box.port}{box.path}"
        body = notification("http://agent.test/negotiations/proxied")
        signed_for_public = sign_request(AGENT_KEY, "POST", public, body,
                                         content_type="application/ld+json")
        assert await post(listening, body, signed_for_public) == 202
        signed_for_listening = sign_request(AGENT_KEY, "POST", listening, body,
                                            content_type="application/ld+json")
        assert await post(listening, body, signed_for_listening) == 401
        assert box.url == public


async def test_the_notifier_signs_what_the_inbox_accepts(inbox: Inbox) -> None:
    inbox.trust(agent_info())
    notifier = Notifier(AGENT_KEY, storage=STORAGE, agent_url=AGENT, issuer=ISSUER,
                        attempts=1)
    message = json.loads(notification("http://agent.test/negotiations/fromnotifier"))
    assert await notifier.deliver(inbox.url, message)
    await notifier.drain()
    assert inbox.received[-1].negotiation == "http://agent.test/negotiations/fromnotifier"
    assert notifier.delivered == 1


async def test_the_notifier_never_sends_to_a_stored_callback_inside_the_person(
        inbox: Inbox) -> None:
    """A record written before the callback rules existed is not honoured."""
    before = len(inbox.received)
    notifier = Notifier(AGENT_KEY, storage=inbox.url.rsplit("/", 1)[0] + "/",
                        agent_url=AGENT, issuer=ISSUER, attempts=1)
    assert not await notifier.deliver(inbox.url, json.loads(notification()))
    await notifier.drain()
    assert notifier.failed == 1 and len(inbox.received) == before and not any(
        "not signed" in r for r in inbox.refusals[-1:])


def refused(inbox: Inbox, before: int, status: int, why: str) -> bool:
    return (len(inbox.received) == before and inbox.refusals[-1].startswith(str(status))
            and why in inbox.refusals[-1])


async def test_a_notification_signed_with_another_key_is_refused(inbox: Inbox) -> None:
    inbox.trust(agent_info())
    before, body = len(inbox.received), notification()
    headers = sign_request(SigningKey(), "POST", inbox.url, body,
                           content_type="application/ld+json")
    assert await post(inbox.url, body, headers) == 401
    assert refused(inbox, before, 401, "key not trusted")


async def test_a_tampered_body_is_refused(inbox: Inbox) -> None:
    inbox.trust(agent_info())
    before, body = len(inbox.received), notification()
    headers = sign_request(AGENT_KEY, "POST", inbox.url, body,
                           content_type="application/ld+json")
    tampered = body.replace(b"expired", b"revoked")
    assert await post(inbox.url, tampered, headers) == 401
    assert refused(inbox, before, 401, "digest")


async def test_a_stale_signature_is_refused(inbox: Inbox) -> None:
    inbox.trust(agent_info())
    before, body = len(inbox.received), notification()
    headers = sign_request(AGENT_KEY, "POST", inbox.url, body, content_type="application/ld+json",
                           now=datetime.now(UTC) - timedelta(minutes=5))
    assert await post(inbox.url, body, headers) == 401
    assert refused(inbox, before, 401, "too old")
    future = sign_request(AGENT_KEY, "POST", inbox.url, body, content_type="application/ld+json",
                          now=datetime.now(UTC) + timedelta(minutes=5))
    assert await post(inbox.url, body, future) == 401
    assert refused(inbox, before, 401, "future")


async def test_a_replayed_notification_is_refused(inbox: Inbox) -> None:
    inbox.trust(agent_info())
    before, body = len(inbox.received), notification()
    headers = sign_request(AGENT_KEY, "POST", inbox.url, body,
                           content_type="application/ld+json")
    assert await post(inbox.url, body, headers) == 202
    assert await post(inbox.url, body, headers) == 401
    assert len(inbox.received) == before + 1 and "nonce was seen before" in inbox.refusals[-1]


async def test_an_unsigned_notification_is_refused(inbox: Inbox) -> None:
    inbox.trust(agent_info())
    before, body = len(inbox.received), notification()
    assert await post(inbox.url, body, {"Content-Type": "application/ld+json"}) == 401
    assert refused(inbox, before, 401, "not signed")
    headers = sign_request(AGENT_KEY, "POST", inbox.url, body,
                           content_type="application/ld+json")
    del headers["Signature"]
    assert await post(inbox.url, body, headers) == 401
    headers = sign_request(AGENT_KEY, "POST", inbox.url, body,
                           content_type="application/ld+json")
    headers["Signature"] = "vrm=:AAAA:"
    assert await post(inbox.url, body, headers) == 401
    headers["Signature-Input"] = "garbage((("
    assert await post(inbox.url, body, headers) == 401
    assert len(inbox.received) == before


async def test_a_signature_for_another_address_or_content_type_is_refused(
        inbox: Inbox) -> None:
    inbox.trust(agent_info())
    before, body = len(inbox.received), notification()
    elsewhere = sign_request(AGENT_KEY, "POST", "http://shop.test/inbox", body,
                             content_type="application/ld+json")
    assert await post(inbox.url, body, elsewhere) == 401
    headers = sign_request(AGENT_KEY, "POST", inbox.url, body,
                           content_type="application/ld+json")
    headers["Content-Type"] = "text/plain"
    assert await post(inbox.url, body, headers) == 401
    assert len(inbox.received) == before


async def test_an_agent_cannot_speak_for_another_agents_negotiation(inbox: Inbox) -> None:
    other = SigningKey()
    inbox.trust(agent_info())
    inbox.trust(agent_info(other, "http://other-agent.test/"))
    before = len(inbox.received)
    body = notification("http://agent.test/negotiations/abc")  # not the other agent's
    headers = sign_request(other, "POST", inbox.url, body, content_type="application/ld+json")
    assert await post(inbox.url, body, headers) == 401
    assert refused(inbox, before, 401, "not one of the signing agent's")


async def test_an_agent_that_publishes_no_key_is_not_trusted(inbox: Inbox) -> None:
    keyless = SigningKey()
    inbox.trust(AgentInfo("http://keyless.test/", "https://pod.example/bob#me",
                          "http://keyless.test/negotiations", None))
    before, body = len(inbox.received), notification("http://keyless.test/negotiations/x")
    headers = sign_request(keyless, "POST", inbox.url, body, content_type="application/ld+json")
    assert await post(inbox.url, body, headers) == 401
    assert refused(inbox, before, 401, "key not trusted")


def test_the_example_in_the_protocol_document_verifies(monkeypatch: pytest.MonkeyPatch) -> None:
    """docs/protocol.md §3.2 shows a notification from a real run; it must stay checkable
    (whatever today's date: its age and the clock skew are not what this checks)."""
    from pathlib import Path

    from vrm_agent.integrity import http_signatures
    from vrm_agent.integrity.http_signatures import verify_request

    monkeypatch.setattr(http_signatures, "CLOCK_SKEW", timedelta(days=365 * 100))

    text = Path(__file__).parent.parent.joinpath("docs", "protocol.md").read_text()
    example = text.split("POST /inbox HTTP/1.1\n", 1)[1].split("\n```", 1)[0]
    head, body = example.split("\n\n", 1)
    headers = dict(line.split(": ", 1) for line in head.splitlines())
    keyid = headers["Signature-Input"].split('keyid="', 1)[1].split('"', 1)[0]
    verified = verify_request("POST", "http://localhost:8799/inbox", headers, body.encode(),
                              trusted={keyid}, max_age=timedelta(days=365 * 100))
    assert verified.key == keyid


_URL_PIECES = st.sampled_from([
    "http://", "https://", "HTTP://", "localhost", "127.0.0.1", "[::1]", "pod.example", ".",
    ":", "8750", "443", "/", "alice", "vrm", "..", "%2e", "%2F", "%41", "%", "@", "?", "#",
    "\u00e9", " ", "\\", "0x7f", "[", "]", "%25", "inbox"])


@settings(max_examples=2000, deadline=None)
@given(st.lists(_URL_PIECES, max_size=14).map("".join) | st.text(max_size=60))
def test_any_string_is_accepted_in_one_canonical_form_or_refused_cleanly(url: str) -> None:
    try:
        accepted = allowed(url)
    except CallbackRejected:
        return
    assert allowed(accepted) == accepted  # canonical: checking again changes nothing
    assert not normalise(accepted).inside(normalise(STORAGE))

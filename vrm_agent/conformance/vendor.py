"""The kit acting as a person's agent against a vendor's callback inbox (docs/protocol.md §15.2).

What it checks is §3.2 and §9 from the vendor's side, and nothing more: that the inbox takes
notifications signed as the protocol says (2xx) and refuses (4xx) those that are unsigned,
signed with another key, over another body, URL or content type, too old, from the future,
replayed, with another tag, without a body digest, or about a negotiation of another agent.
It cannot see what the vendor does with a notification it takes.

The vendor under test must trust the kit's key for the kit's agent URL beforehand, as if it
had read that agent's discovery document (§3.2 step 1): ``vrm-agent conformance keygen``
makes the key and prints the ``did:key`` verification method to configure.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp

from vrm_agent.conformance.http import JSON_LD, Answer, raw
from vrm_agent.conformance.results import Check, Failed, clean
from vrm_agent.integrity.http_signatures import COVERED, sign_request
from vrm_agent.integrity.keys import SigningKey

PROTOCOL_CONTEXT = "https://w3id.org/vrm-agent/protocol/v1"


def notification(negotiation: str, event: str) -> bytes:
    """A ContractNegotiationTerminationMessage as an agent sends it (§9)."""
    return json.dumps({
        "@context": PROTOCOL_CONTEXT, "type": "ContractNegotiationTerminationMessage",
        "negotiation": negotiation, "state": "TERMINATED", "event": event,
        "reason": [f"conformance check: the agreement was {event}"]}).encode("utf-8")


@dataclass
class VendorRun:
    inbox: str  # the callback address, as the agent would have accepted it (canonical form)
    key: SigningKey  # the key the vendor trusts for ``agent``
    agent: str  # the agent URL the vendor trusts the key for
    negotiation: str  # a negotiation of that agent's, as the vendor knows it
    session: aiohttp.ClientSession
    stranger: SigningKey  # a key no vendor trusts

    def signed(self, body: bytes | None, **options: Any) -> dict[str, str]:
        key = options.pop("key", self.key)
        url = options.pop("url", self.inbox)
        return sign_request(key, "POST", url, body, content_type=JSON_LD, **options)

    async def post(self, body: bytes, headers: dict[str, str]) -> Answer:
        return await raw(self.session, "POST", self.inbox, body, headers)


def _taken(answer: Answer) -> str:
    if not 200 <= answer.status < 300:
        raise Failed(f"a valid notification was not taken (answer: {answer.describe()})")
    return f"{answer.status}"


def _refused(answer: Answer) -> str:
    if not 400 <= answer.status < 500:
        raise Failed(f"taken or not refused with a 4xx (answer: {answer.describe()})")
    note = "" if answer.status == 401 else " (§3.2 asks for 401)"
    return f"{answer.status}{note}"


async def check_valid(run: VendorRun, event: str = "revoked") -> str:
    body = notification(run.negotiation, event)
    return _taken(await run.post(body, run.signed(body)))


async def check_valid_expired(run: VendorRun) -> str:
    return await check_valid(run, "expired")


async def check_unsigned(run: VendorRun) -> str:
    body = notification(run.negotiation, "revoked")
    return _refused(await run.post(body, {"Content-Type": JSON_LD}))


async def check_unknown_key(run: VendorRun) -> str:
    body = notification(run.negotiation, "revoked")
    return _refused(await run.post(body, run.signed(body, key=run.stranger)))


async def check_body_changed(run: VendorRun) -> str:
    body = notification(run.negotiation, "revoked")
    headers = run.signed(body)
    return _refused(await run.post(notification(run.negotiation, "expired"), headers))


async def check_digest_replaced(run: VendorRun) -> str:
    body = notification(run.negotiation, "revoked")
    headers = run.signed(body)
    other = notification(run.negotiation, "expired")
    # The digest fits the new body; the signature still covers the old digest.
    headers["Content-Digest"] = run.signed(other)["Content-Digest"]
    return _refused(await run.post(other, headers))


async def check_other_target(run: VendorRun) -> str:
    body = notification(run.negotiation, "revoked")
    return _refused(await run.post(body, run.signed(body, url=run.inbox + "-elsewhere")))


async def check_other_content_type(run: VendorRun) -> str:
    body = notification(run.negotiation, "revoked")
    headers = run.signed(body)
    headers["Content-Type"] = "application/json"
    return _refused(await run.post(body, headers))


async def check_replay(run: VendorRun) -> str:
    body = notification(run.negotiation, "revoked")
    headers = run.signed(body)
    first = await run.post(body, headers)
    if not 200 <= first.status < 300:
        raise Failed(f"the first delivery was not taken (answer: {first.describe()})")
    return "first 2xx; again: " + _refused(await run.post(body, headers))


async def check_too_old(run: VendorRun) -> str:
    body = notification(run.negotiation, "revoked")
    created = datetime.now(UTC) - timedelta(seconds=120)
    return _refused(await run.post(body, run.signed(body, now=created)))


async def check_future(run: VendorRun) -> str:
    body = notification(run.negotiation, "revoked")
    created = datetime.now(UTC) + timedelta(seconds=60)
    return _refused(await run.post(body, run.signed(body, now=created)))


async def check_wrong_tag(run: VendorRun) -> str:
    body = notification(run.negotiation, "revoked")
    return _refused(await run.post(body, run.signed(body, tag="some-other-profile")))


async def check_no_digest(run: VendorRun) -> str:
    body = notification(run.negotiation, "revoked")
    headers = run.signed(None, covered=tuple(c for c in COVERED if c != "content-digest"))
    return _refused(await run.post(body, headers))


async def check_foreign_negotiation(run: VendorRun) -> str:
    body = notification(f"https://agent.conformance.invalid/negotiations/"
                        f"{secrets.token_hex(8)}", "revoked")
    return _refused(await run.post(body, run.signed(body)))


async def check_malformed(run: VendorRun) -> str:
    body = b'{"@context": "https://w3id.org/vrm-agent/protocol/v1", "type": '
    return _refused(await run.post(body, run.signed(body)))


def _check(id_: str, what: str, run: Callable[[VendorRun], Awaitable[str]]) -> Check[VendorRun]:
    return Check(id_, "3.2", what, run)


CHECKS: tuple[Check[VendorRun], ...] = (
    _check("inbox-valid", "a signed revocation notification is taken: 2xx", check_valid),
    _check("inbox-valid-expired", "a signed expiry notification is taken: 2xx",
           check_valid_expired),
    _check("inbox-unsigned", "an unsigned notification is refused: 4xx", check_unsigned),
    _check("inbox-unknown-key", "one signed with a key the vendor does not trust: 4xx",
           check_unknown_key),
    _check("inbox-body-changed", "a body other than the one signed: 4xx", check_body_changed),
    _check("inbox-digest-replaced", "a new body with its own Content-Digest, old signature: "
           "4xx", check_digest_replaced),
    _check("inbox-other-target", "signed for another URL: 4xx", check_other_target),
    _check("inbox-content-type", "sent with another Content-Type than signed: 4xx",
           check_other_content_type),
    _check("inbox-replay", "the same signed request twice: 2xx, then 4xx", check_replay),
    _check("inbox-too-old", "created 120 s ago: 4xx", check_too_old),
    _check("inbox-future", "created 60 s ahead: 4xx", check_future),
    _check("inbox-wrong-tag", "a signature with another tag: 4xx", check_wrong_tag),
    _check("inbox-no-digest", "a signature that does not cover the body: 4xx",
           check_no_digest),
    _check("inbox-foreign-negotiation", "about a negotiation of another agent: 4xx",
           check_foreign_negotiation),
    _check("inbox-malformed", "a signed body that is not JSON: 4xx", check_malformed),
)


def describe_key(key: SigningKey) -> str:
    return clean(key.verification_method, 200)


__all__ = ["CHECKS", "VendorRun", "notification"]

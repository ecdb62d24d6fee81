"""Malformed input, aimed where a parser recurses or trusts a shape: nesting deeper than the
recursion limit (arrays, objects, JSON-LD lists), contexts that are not contexts, values of the
wrong type, durations that overflow, proofs that are not proofs. Every one is answered with a
4xx problem document, on every endpoint, and the agent keeps answering; none is a 500.

(Random inputs over every endpoint are the fuzz tests' part, in test_fuzz.py; these are the
cases known to have broken the agent, and their neighbours.)
"""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from typing import Any

import pytest

from tests.security.conftest import (
    REFUSAL_TRACES,
    Answer,
    Attacker,
    Victim,
    allowed,
    raw_request,
    settle,
    snapshot,
    unexpected,
)
from vrm_agent.negotiation.wire import PROTOCOL_CONTEXT, message_json, policy_json
from vrm_agent.vendor import request_policy

pytestmark = pytest.mark.pod
DEPTH = 20_000  # far past Python's recursion limit, inside the 64 KiB body limit


def request_body(**replace: Any) -> dict[str, Any]:
    policy = policy_json(request_policy(["pd:EmailAddress"], purpose="dpv:DirectMarketing",
                                        duration=timedelta(days=1)))
    body = message_json("ContractRequestMessage")
    body["policy"] = policy
    body.update(replace)
    return body


def with_policy(**changes: Any) -> dict[str, Any]:
    body = request_body()
    body["policy"] = {**body["policy"], **changes}
    return body


def with_rule(**changes: Any) -> dict[str, Any]:
    body = request_body()
    rule = {**body["policy"]["permission"][0], **changes}
    body["policy"] = {**body["policy"], "permission": [rule]}
    return body


def with_duration(text: str) -> dict[str, Any]:
    rule = request_body()["policy"]["permission"][0]
    constraints = [c for c in rule["constraint"] if c["leftOperand"] != "elapsedTime"]
    constraints.append({"leftOperand": "elapsedTime", "operator": "eq",
                        "rightOperand": {"@value": text, "@type": "xsd:duration"}})
    return with_rule(constraint=constraints)


def nested_lists(depth: int) -> str:
    return '{"@list": [' * depth + '"pd:EmailAddress"' + "]}" * depth


def deep_in(body: dict[str, Any], key: str, nested: str) -> bytes:
    """The body with ``key`` holding the raw (already serialised) nested JSON."""
    marker = "__deep__"
    text = json.dumps({**body, key: marker})
    return text.replace(json.dumps(marker), nested).encode()


def bodies() -> dict[str, bytes]:
    """Every malformed body, by what is wrong with it."""
    request = request_body()
    cases: dict[str, bytes | dict[str, Any] | list[Any]] = {
        "arrays deeper than the recursion limit": b"[" * DEPTH + b"]" * DEPTH,
        "objects deeper than the recursion limit": b'{"a":' * (DEPTH // 2) + b"1"
                                                   + b"}" * (DEPTH // 2),
        "a policy nested deeply": deep_in(request, "policy", "[" * DEPTH + "]" * DEPTH),
        "JSON-LD lists nested deeply": deep_in(
            request, "policy", json.dumps(request["policy"])[:-1] + ', "permission": [{'
            '"action": "use", "target": ' + nested_lists(400) + "}]}"),
        "JSON-LD lists nested past the recursion limit": deep_in(
            request, "x", nested_lists(2_000)),
        "context x": {**request, "@context": "x"},
        "context empty": {**request, "@context": ""},
        "context null": {**request, "@context": None},
        "context a number": {**request, "@context": 5},
        "context an empty list": {**request, "@context": []},
        "context list of empty": {**request, "@context": [""]},
        "context with a bad @base": {**request, "@context": [PROTOCOL_CONTEXT, {"@base": 5}]},
        "context with a bad @vocab": {**request, "@context": [PROTOCOL_CONTEXT, {"@vocab": 5}]},
        "context with a bad @version": {**request,
                                        "@context": [PROTOCOL_CONTEXT, {"@version": 2}]},
        "context redefining @type": {**request, "@context": [PROTOCOL_CONTEXT,
                                                             {"type": {"@id": "@id"}}]},
        "context cycle": {**request, "@context": [PROTOCOL_CONTEXT, {"a": "b:x", "b": "a:y"}]},
        "not an object": [request],
        "null": b"null",
        "a string": b'"ContractRequestMessage"',
        "not UTF-8": b'{"@context": "\xff\xfe"}',
        "NaN": json.dumps(request)[:-1].encode() + b', "x": NaN}',
        "a huge number": json.dumps(request)[:-1].encode() + b', "x": 1e999999}',
        "type twice": {**request, "type": ["ContractRequestMessage", "ContractOfferMessage"]},
        "policy a string": {**request, "policy": "pd:EmailAddress"},
        "policy a list": {**request, "policy": [request["policy"], request["policy"]]},
        "uid a number": with_policy(uid=5),
        "uid an object": with_policy(uid={"@id": {"@id": "x"}}),
        "permission a string": with_policy(permission="x"),
        "permission of numbers": with_policy(permission=[1, 2]),
        "action a list": with_rule(action=["use", "read"]),
        "target an object": with_rule(target={"x": 1}),
        "target a number": with_rule(target=[5]),
        "constraint of numbers": with_rule(constraint=[1]),
        "rightOperand empty object": with_rule(constraint=[
            {"leftOperand": "purpose", "operator": "eq", "rightOperand": {}}]),
        "duration overflowing timedelta": with_duration("P99999999999D"),
        "duration overflowing the calendar": with_duration("P999999999D"),
        "duration of seconds overflowing": with_duration("PT99999999999999999999S"),
        "duration negative": with_duration("-P1D"),
        "callback an object": {**request, "callbackAddress": {"@id": {"x": 1}}},
        "callback a number": {**request, "callbackAddress": 5},
        "consideration an object": {**request, "consideration": {"@id": "x", "y": [1]}},
        "graph of two messages": {"@context": PROTOCOL_CONTEXT,
                                  "@graph": [{**request, "@context": None}] * 2},
    }
    return {name: body if isinstance(body, bytes) else json.dumps(body).encode()
            for name, body in cases.items()}


def verification_bodies(url: str, agreement: dict[str, Any]) -> dict[str, bytes]:
    def verification(document: Any) -> bytes:
        return json.dumps(message_json("ContractAgreementVerificationMessage", negotiation=url,
                                       agreement=document)).encode()

    proof = agreement.get("proof")
    cases = {
        "agreement context x": verification({**agreement, "@context": "x"}),
        "agreement context empty": verification({**agreement, "@context": ""}),
        "agreement nested deeply": deep_in(json.loads(verification({})), "agreement",
                                           "[" * DEPTH + "]" * DEPTH),
        "agreement with deep lists": verification({**agreement, "x": json.loads(
            nested_lists(300))}),
        "proof a string": verification({**agreement, "proof": "x"}),
        "proofs of numbers": verification({**agreement, "proof": [1, 2]}),
        "proof value not base58": verification({**agreement, "proof": [
            proof, {**(proof or {}), "proofValue": "z0OIl"}]}),
        "proof by an unresolvable key": verification({**agreement, "proof": [
            proof, {**(proof or {}), "verificationMethod": "did:key:zzz#zzz"}]}),
        "proof by a web key": verification({**agreement, "proof": [
            proof, {**(proof or {}), "verificationMethod": "did:web:localhost%3A9#key"}]}),
        "proof by a URL key": verification({**agreement, "proof": [
            proof, {**(proof or {}), "verificationMethod": "http://localhost:9/key"}]}),
    }
    return cases


AT_EVERY_ENDPOINT = {
    "arrays deeper than the recursion limit", "objects deeper than the recursion limit",
    "a policy nested deeply", "JSON-LD lists nested deeply",
    "JSON-LD lists nested past the recursion limit", "context x", "context empty",
    "context null", "context a number", "context with a bad @version", "not an object",
    "not UTF-8", "graph of two messages"}
# Not JSON by RFC 8259, or an odd but harmless value: refusing them is right, reading them
# leniently is no hole (the request is then answered by the terms like any other).
# (A duration on a request the terms refuse is never used; the next test uses one.)
LENIENT = {"NaN", "a huge number", "consideration an object", "callback a number",
           "duration overflowing the calendar"}


def bad(answer: Answer, name: str = "") -> bool:
    if name in LENIENT and answer.status < 400:
        return False
    return not (400 <= answer.status < 500 and answer.is_problem())


async def test_malformed_messages_get_problem_documents_on_every_endpoint(
        victim: Victim, attacker: Attacker) -> None:
    offered = await attacker.request(victim, request_policy(
        ["pd:EmailAddress"], purpose="dpv:ServiceProvision", duration=timedelta(days=180)))
    assert offered.status == 201, offered
    url = offered.json["id"]
    endpoints = [victim.negotiations, url + "/request", url + "/events",
                 url + "/agreement/verification", url + "/termination"]
    owner = await victim.owner()
    before = await snapshot(owner, victim.pod)
    wrong: dict[str, str] = {}
    for name, body in bodies().items():
        # Every case at the start of a negotiation; the parser's cases at every endpoint.
        for endpoint in endpoints if name in AT_EVERY_ENDPOINT else endpoints[:1]:
            answer = await attacker.send("POST", endpoint, body)
            if bad(answer, name):
                wrong[f"{name} -> {endpoint.removeprefix(victim.agent.url)}"] = str(answer)
    health = await raw_request("GET", victim.agent.url + "health", None, {})
    await settle()
    after = await snapshot(owner, victim.pod)
    await owner.close()
    assert health.status == 200
    by_case: dict[str, list[str]] = {}
    for key, answer_text in wrong.items():
        name, endpoint = key.split(" -> ", 1)
        by_case.setdefault(name, []).append(f"{answer_text[:3]} at {endpoint}")
    assert not wrong, f"{len(wrong)} answers that are not 4xx problems:\n" + "\n".join(
        f"{name}: {', '.join(places)}" for name, places in by_case.items())
    assert (await attacker.send("GET", url)).json["state"] == "OFFERED"
    assert not unexpected(before, after, allowed(victim, *REFUSAL_TRACES))


async def test_a_duration_past_the_calendar_breaks_neither_the_agent_nor_the_cli(
        victim: Victim, attacker: Attacker) -> None:
    """A request the person is asked about, for longer than the calendar reaches: refused at
    once, or approved without a crash (the end is then bounded)."""
    body = with_duration("P999999999D")
    body["policy"]["permission"][0]["constraint"][0]["rightOperand"] = {
        "id": "dpv:ResearchAndDevelopment"}
    body["policy"]["permission"][0]["target"] = ["pd:TelephoneNumber"]
    answer = await attacker.send("POST", victim.negotiations, body)
    assert answer.status < 500 and (answer.status < 400 or answer.is_problem()), answer
    if answer.status == 202:
        approved = await asyncio.to_thread(victim.cli, "requests", "approve",
                                           answer.json["id"].rsplit("/", 1)[-1])
        assert "Traceback" not in approved.stderr and approved.stderr.count("\n") <= 1, \
            approved.stderr
        status = await attacker.send("GET", answer.json["id"])
        assert status.status == 200, status
    health = await raw_request("GET", victim.agent.url + "health", None, {})
    assert health.status == 200


async def test_malformed_countersignatures_get_problem_documents(
        victim: Victim, attacker: Attacker) -> None:
    view = await attacker.vendor.request(victim.info, request_policy(
        ["pd:EmailAddress"], purpose="dpv:DeliveryOfGoods", duration=timedelta(days=1)))
    wrong = {}
    for name, body in verification_bodies(view.url, dict(view.agreement or {})).items():
        answer = await attacker.send("POST", view.url + "/agreement/verification", body)
        if bad(answer):
            wrong[name] = str(answer)
    assert not wrong, "\n".join(f"{k}: {v[:160]}" for k, v in wrong.items())
    assert (await attacker.send("GET", view.url)).json["state"] == "AGREED"


async def test_odd_paths_and_credentials_get_problem_documents(
        victim: Victim, attacker: Attacker) -> None:
    wrong = {}
    for path in ("negotiations/..%2f..%2fetc%2fpasswd", "negotiations/%00",
                 "negotiations/" + "a" * 5000, "negotiations/x/y/z", "negotiations/%C0%AE"):
        answer = await attacker.send("GET", victim.agent.url + path)
        # 401 where the client's encoding of the path differs from the agent's (htu).
        if answer.status not in (401, 404) or not answer.is_problem():
            wrong[path[:60]] = str(answer)
    body = json.dumps(request_body()).encode()
    for name, authorization in {
        "not base64": "DPoP a.b.c",
        "huge": "DPoP " + "x" * 8000,
        "JSON array parts": "DPoP W10.W10.W10",
        "webid a file": "DPoP " + ".".join(_b64(part) for part in (
            {"alg": "ES256"}, {"webid": "file:///etc/passwd", "iss": "file:///etc/"}, "sig")),
        "webid not a string": "DPoP " + ".".join(_b64(part) for part in (
            {"alg": "ES256"}, {"webid": ["a"], "iss": 5}, "sig")),
    }.items():
        answer = await raw_request("POST", victim.negotiations, body, {
            "Authorization": authorization, "DPoP": "x.y.z",
            "Content-Type": "application/ld+json"})
        if answer.status != 401 or not answer.is_problem(401) or "root:" in answer.text:
            wrong[name] = str(answer)
    assert not wrong, "\n".join(f"{k}: {v[:200]}" for k, v in wrong.items())


def _b64(part: Any) -> str:
    import base64

    raw = part.encode() if isinstance(part, str) else json.dumps(part).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

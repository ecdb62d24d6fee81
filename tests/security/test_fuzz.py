"""Fuzzing every endpoint of the real daemon (`vrm-agent run` on real CSS, WAC and ACP) as a
vendor with valid credentials, so every body reaches the parser and what lies behind it.

Bodies come from a grammar of valid-looking protocol messages, mutated with hostile JSON: deep
nesting, wrong types, odd ``@context`` values, long strings, unicode, lone surrogates, broken
bytes. Every answer must be below 500 (a refusal is a problem document), and the daemon must
still answer /health afterwards. Each body goes to every POST endpoint, so one example costs
several requests; the number of requests sent is counted and printed.

Callback addresses and IRIs in generated messages stay on loopback: the agent may try to reach
what a message names.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import PodEnv, RunningAgent, new_account, start_agent, stop_agent
from vrm_agent.pod.auth import DpopKey
from vrm_agent.pod.client import PodClient
from vrm_agent.podserver import PodAccount

pytestmark = pytest.mark.pod

PROTOCOL = "https://w3id.org/vrm-agent/protocol/v1"
DATA_INTEGRITY = "https://w3id.org/security/data-integrity/v2"
# Requests per suite run: 10,000 on the WAC pass, a fifth of that on the ACP pass (both at
# 10,000 would take about five minutes on a two-core machine). Four fifths go to the POST
# endpoints, where the parser is; each POST example goes to all five of them, each GET example
# sends two requests.
REQUESTS = {"wac": int(os.environ.get("VRM_FUZZ_REQUESTS", "10000"))}
REQUESTS["acp"] = int(os.environ.get("VRM_FUZZ_REQUESTS_ACP", str(REQUESTS["wac"] // 5)))
POST_ENDPOINTS = ("", "/request", "/events", "/agreement/verification", "/termination",
                  "/channels", "/reads")
PUBLIC_GETS = ("/health", "/.well-known/vrm-agent", "/protocol/v1",
               "/protocol/data-integrity/v2", "/vocab", "/vocab/context", "/vocab/vrm.ttl",
               "/vocab/vrm.jsonld", "/vocab/vrm.html", "/vocab/shapes", "/vocab/nothing")
LOOPBACK = "http://127.0.0.1:9/"  # the discard port: nothing answers there


@dataclass
class Target:
    """The running agent, and a vendor's credentials to reach it with."""

    agent: RunningAgent
    token: str
    key: DpopKey
    negotiation: str  # the id of a real negotiation of this vendor
    sent: int = 0
    waited: float = 0.0  # seconds spent waiting for answers
    statuses: Counter[int] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    connection: http.client.HTTPConnection | None = None

    @property
    def base(self) -> str:
        return self.agent.url.rstrip("/")

    def send(self, method: str, path: str, body: bytes | None = None,
             headers: dict[str, str] | None = None) -> tuple[int, str, bytes]:
        url = self.base + path
        all_headers = {"Authorization": f"DPoP {self.token}",
                       "DPoP": self.key.proof(method, url, self.token),
                       "Content-Type": "application/ld+json", **(headers or {})}
        started = time.monotonic()
        for attempt in (1, 2):
            if self.connection is None:
                parts = urlsplit(self.base)
                self.connection = http.client.HTTPConnection(parts.hostname or "localhost",
                                                             parts.port, timeout=60)
            try:
                self.connection.request(method, path, body=body, headers=all_headers)
                response = self.connection.getresponse()
                content = response.read()
                break
            except (http.client.HTTPException, ConnectionError):
                self.connection.close()
                self.connection = None
                if attempt == 2:
                    raise
                all_headers["DPoP"] = self.key.proof(method, url, self.token)
        self.sent += 1
        self.waited += time.monotonic() - started
        self.statuses[response.status] += 1
        kind = response.getheader("Content-Type") or ""
        if response.status >= 500:
            self.failures.append(f"{method} {path} -> {response.status}: {content[:300]!r} "
                                 f"for {(body or b'')[:300]!r}")
        return response.status, kind, content


async def _vendor_credentials(pod_env: PodEnv) -> tuple[str, DpopKey]:
    async with PodClient(pod_env.acme.credentials) as acme:
        return await acme.access_token(), acme.dpop_key


@dataclass(frozen=True)
class Fuzzed:
    person: PodAccount
    agent: RunningAgent


@pytest.fixture(scope="module")
def fuzzed(pod_env: PodEnv, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fuzzed]:
    """A person and an agent of their own: the negotiation records that thousands of fuzzed
    requests leave stay out of the pods the other tests read, export and restore."""
    person = asyncio.run(new_account(pod_env, "fuzzed"))
    agent = start_agent(pod_env, tmp_path_factory.mktemp(f"fuzzed-{pod_env.flavour.value}"),
                        account=person)
    yield Fuzzed(person, agent)
    stop_agent(agent)


@pytest.fixture
def target(fuzzed: Fuzzed, pod_env: PodEnv) -> Iterator[Target]:
    # A fresh token per test (tokens last minutes); the DPoP key is the one it is bound to.
    token, key = asyncio.run(_vendor_credentials(pod_env))
    found = Target(fuzzed.agent, token, key, "no-such-negotiation")
    status, _, content = found.send("POST", "/negotiations", json.dumps(
        request_message(f"{fuzzed.person.pod}profile/card")).encode())
    if status in (200, 201, 202):
        found.negotiation = str(json.loads(content)["id"]).rstrip("/").rsplit("/", 1)[-1]
    yield found
    if found.connection is not None:
        found.connection.close()


# -- the grammar of valid-looking messages ---------------------------------------------------

TARGETS = ("pd:EmailAddress", "pd:Telephone", "pd:Purchase", "pd:Name",
           "http://127.0.0.1:9/pod/vrm/", "http://127.0.0.1:9/pod/../bolt/")
PURPOSES = ("dpv:ServiceProvision", "dpv:DirectMarketing", "dpv:Personalisation", "x:y")
ACTIONS = ("use", "read", "write", "distribute", "delete", "odrl:use")


def request_message(target: str = "pd:EmailAddress", negotiation: str | None = None
                    ) -> dict[str, Any]:
    message: dict[str, Any] = {
        "@context": PROTOCOL, "type": "ContractRequestMessage",
        "callbackAddress": LOOPBACK + "inbox",
        "policy": {"uid": "urn:uuid:00000000-0000-4000-8000-000000000001", "type": "Request",
                   "permission": [{"action": "use", "target": [target], "constraint": [
                       {"leftOperand": "purpose", "operator": "eq",
                        "rightOperand": {"id": "dpv:ServiceProvision"}},
                       {"leftOperand": "elapsedTime", "operator": "eq",
                        "rightOperand": {"@value": "PT10S", "@type": "xsd:duration"}}]}]},
    }
    if negotiation:
        message["negotiation"] = negotiation
    return message


def constraint() -> st.SearchStrategy[dict[str, Any]]:
    return st.one_of(
        st.builds(lambda p: {"leftOperand": "purpose", "operator": "eq",
                             "rightOperand": {"id": p}}, st.sampled_from(PURPOSES)),
        st.builds(lambda d: {"leftOperand": "elapsedTime", "operator": "eq",
                             "rightOperand": {"@value": d, "@type": "xsd:duration"}},
                  st.sampled_from(["PT10S", "P1Y", "P99999999Y", "PT0S", "-PT1S", "x"])),
        st.builds(lambda d: {"leftOperand": "dateTime", "operator": "lt",
                             "rightOperand": {"@value": d, "@type": "xsd:dateTime"}},
                  st.sampled_from(["2036-01-01T00:00:00Z", "0000-00-00", "9999-12-31T23:59Z"])),
    )


def rule() -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {"action": st.sampled_from(ACTIONS)},
        optional={"target": st.lists(st.sampled_from(TARGETS), max_size=3),
                  "constraint": st.lists(constraint(), max_size=3),
                  "duty": st.lists(st.fixed_dictionaries({"action": st.sampled_from(ACTIONS)}),
                                   max_size=2)})


def policy() -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {"uid": st.sampled_from(["urn:uuid:00000000-0000-4000-8000-000000000002", "x",
                                 "urn:a"]),
         "type": st.sampled_from(["Request", "Offer", "Agreement", "Set", "Policy"]),
         "permission": st.lists(rule(), max_size=3)},
        optional={"prohibition": st.lists(rule(), max_size=2),
                  "assigner": st.sampled_from(["https://127.0.0.1:9/a#me", "x"]),
                  "consideration": st.text(max_size=20), "title": st.text(max_size=20),
                  "conflict": st.sampled_from(["perm", "prohibit", "invalid", "x"])})


def proof() -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({
        "type": st.just("DataIntegrityProof"),
        "cryptosuite": st.sampled_from(["eddsa-rdfc-2022", "ecdsa-rdfc-2019", ""]),
        "verificationMethod": st.sampled_from([
            "did:key:z6MkneRGD8ce9z3qyys9KeSdRbtwE7f151XGamD46373ZiZ9"
            "#z6MkneRGD8ce9z3qyys9KeSdRbtwE7f151XGamD46373ZiZ9", "did:key:x", "x", ""]),
        "proofPurpose": st.just("assertionMethod"),
        "proofValue": st.sampled_from(["z3FXQ", "z" + "1" * 88, "", "not-multibase"]),
    })


def agreement() -> st.SearchStrategy[dict[str, Any]]:
    return st.builds(
        lambda p, proofs, context: {**p, "@context": context, "proof": proofs},
        policy(), st.lists(proof(), max_size=3),
        st.sampled_from([[PROTOCOL, DATA_INTEGRITY], [PROTOCOL], PROTOCOL,
                         [PROTOCOL, DATA_INTEGRITY, {"permission": None,
                                                     "x": "odrl:permission"}]]))


def request_policy() -> st.SearchStrategy[dict[str, Any]]:
    """Mostly what the protocol asks of a request: targets and a purpose in every permission."""
    permission = st.builds(
        lambda action, targets, purpose, more: {"action": action, "target": targets,
                                                "constraint": [purpose, *more]},
        st.sampled_from(ACTIONS), st.lists(st.sampled_from(TARGETS), min_size=1, max_size=3),
        st.builds(lambda p: {"leftOperand": "purpose", "operator": "eq",
                             "rightOperand": {"id": p}}, st.sampled_from(PURPOSES)),
        st.lists(constraint(), max_size=2))
    return st.fixed_dictionaries(
        {"uid": st.uuids().map(lambda u: f"urn:uuid:{u}"), "type": st.just("Request"),
         "permission": st.lists(permission, min_size=1, max_size=3)},
        optional={"consideration": st.text(max_size=20), "title": st.text(max_size=20)})


def message(negotiation_url: str) -> st.SearchStrategy[dict[str, Any]]:
    negotiation = st.sampled_from([negotiation_url, negotiation_url + "/", "urn:x", ""])
    return st.one_of(
        st.fixed_dictionaries({"@context": st.just(PROTOCOL),
                               "type": st.just("ContractRequestMessage"),
                               "policy": st.one_of(request_policy(), policy())},
                              optional={"callbackAddress": st.just(LOOPBACK + "inbox"),
                                        "negotiation": negotiation}),
        st.fixed_dictionaries({"@context": st.just(PROTOCOL),
                               "type": st.just("ContractNegotiationEventMessage"),
                               "negotiation": negotiation,
                               "event": st.sampled_from(["ACCEPTED", "FINALIZED", "", "x"])}),
        st.fixed_dictionaries({"@context": st.just([PROTOCOL, DATA_INTEGRITY]),
                               "type": st.just("ContractAgreementVerificationMessage"),
                               "negotiation": negotiation, "agreement": agreement()}),
        st.fixed_dictionaries({"@context": st.just(PROTOCOL),
                               "type": st.just("ContractNegotiationTerminationMessage"),
                               "negotiation": negotiation},
                              optional={"reason": st.lists(st.text(max_size=30), max_size=3)}),
        st.builds(lambda t: {"@context": PROTOCOL, "type": t},
                  st.sampled_from(["ContractOfferMessage", "ContractAgreementMessage",
                                   "ContractNegotiation", "Nothing"])),
    )


# -- hostile JSON -----------------------------------------------------------------------------

ODD_CONTEXTS: list[Any] = [
    "x", "", 5, -1, 1.5, True, None, [], {}, [None], [[]], [{}], [PROTOCOL, None],
    "file:///etc/passwd", "file:///nonexistent/context.jsonld", "http://127.0.0.1:9/ctx",
    "https://w3id.org/security/v2", "/relative", "./", "#", "?", "urn:x",
    {"@base": "file:///etc/"}, [{"@base": "file:///etc/"}, "passwd"], {"@base": 5},
    {"@import": "file:///etc/passwd"}, {"@import": "http://127.0.0.1:9/"}, {"@import": 5},
    {"@vocab": ""}, {"@vocab": 5}, {"@vocab": "file:///"}, {"@version": 1.0}, {"@version": 2},
    {"@protected": True, "type": "@id"}, {"@propagate": "x"}, {"@language": 5},
    {"@direction": "sideways"}, {"type": None}, {"type": "@id", "@type": 5},
    {"policy": {"@id": "http://x/p", "@container": "@list"}},
    {"policy": {"@id": "http://x/p", "@context": {"@import": "file:///etc/passwd"}}},
    {"policy": {"@reverse": "http://x/p"}}, {"x": {"@id": "@context"}},
    [PROTOCOL, {"permission": None, "perm": "odrl:permission"}],
    [PROTOCOL, DATA_INTEGRITY, {"@vocab": "http://x/"}], [PROTOCOL] * 50,
]

LONG_TEXT = st.sampled_from(["a" * 70_000, "é" * 40_000, "\U0001F600" * 20_000,
                             "\\" * 5_000, '"' * 5_000, "\ud800" * 10])


def safe_text() -> st.SearchStrategy[str]:
    # Never a URL the agent could try to reach off this machine.
    return st.text(max_size=40).map(lambda s: s.replace("://", ":/").replace("//", "/"))


def nested(depth: int, kind: str) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = ([value] if kind == "array" else {"a": value} if kind == "object"
                 else {"@list": [value]} if kind == "list" else {"@set": value})
    return value


def hostile() -> st.SearchStrategy[Any]:
    leaves = st.one_of(
        st.none(), st.booleans(), st.integers(), st.integers(min_value=10 ** 300),
        st.floats(allow_nan=False, allow_infinity=False), safe_text(), LONG_TEXT,
        st.sampled_from(ODD_CONTEXTS), st.sampled_from(["@id", "@type", "@list", "@graph",
                                                        "@context", "_:b0", "@value"]),
    )
    small = st.recursive(leaves, lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.one_of(safe_text(), st.sampled_from(
            ["@id", "@type", "@list", "@set", "@value", "@graph", "@context", "@reverse",
             "@included", "@nest", "@index", "@language", "id", "type", "policy"])),
            inner, max_size=4)), max_leaves=12)
    deep = st.builds(nested, st.sampled_from([20, 33, 40, 100, 500]),
                     st.sampled_from(["array", "object", "list", "set"]))
    return st.one_of(small, deep)


HOSTILE = hostile()  # built once: building a recursive strategy costs more than drawing from it
SAFE_TEXT = safe_text()


def paths_of(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            found += paths_of(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += paths_of(item, (*prefix, index))
    return found


def replaced(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    head, rest = path[0], path[1:]
    if isinstance(value, dict):
        return {**value, head: replaced(value[head], rest, new)}
    copy = list(value)
    copy[head] = replaced(copy[head], rest, new)
    return copy


def mutated(negotiation_url: str) -> st.SearchStrategy[bytes]:
    return _mutated(message(negotiation_url))


@st.composite
def _mutated(draw: st.DrawFn, messages: st.SearchStrategy[dict[str, Any]]) -> bytes:
    """A message of the grammar, then zero or more mutations, then zero or one byte-level one."""
    document: Any = draw(messages)
    for _ in range(draw(st.sampled_from([0, 0, 1, 1, 1, 2, 3]))):
        how = draw(st.sampled_from(["replace", "replace", "context", "delete", "wrap", "add"]))
        paths = paths_of(document)
        if how == "replace":
            document = replaced(document, draw(st.sampled_from(paths)), draw(HOSTILE))
        elif how == "context" and isinstance(document, dict):
            document = {**document, "@context": draw(st.sampled_from(ODD_CONTEXTS))}
        elif how == "delete" and isinstance(document, dict) and document:
            key = draw(st.sampled_from(sorted(document, key=str)))
            document = {k: v for k, v in document.items() if k != key}
        elif how == "wrap":
            path = draw(st.sampled_from(paths))
            inner = document
            for step in path:
                inner = inner[step]
            document = replaced(document, path, draw(st.sampled_from(
                [[inner], [[inner]], {"@list": [inner]}, {"@set": [inner]},
                 {"@value": inner}, {"@graph": [inner]}])))
        elif how == "add" and isinstance(document, dict):
            document = {**document, draw(SAFE_TEXT): draw(HOSTILE)}
    try:
        body = json.dumps(document, ensure_ascii=draw(st.booleans())).encode(
            "utf-8", "surrogatepass")
    except (ValueError, RecursionError):
        body = b'{"@context": "x"}'
    cut = draw(st.sampled_from(["none"] * 6 + ["truncate", "latin1", "garbage", "bom", "deep"]))
    if cut == "truncate":
        body = body[: draw(st.integers(0, max(0, len(body) - 1)))]
    elif cut == "latin1":
        body = body.replace(b"e", b"\xe9", 3)
    elif cut == "garbage":
        body = body + draw(st.binary(max_size=20))
    elif cut == "bom":
        body = b"\xef\xbb\xbf" + body
    elif cut == "deep" and body.endswith(b"}"):  # deeper than json.dumps could write it
        depth = draw(st.sampled_from([1_000, 5_000, 30_000]))
        opener, closer = draw(st.sampled_from([(b"[", b"]"), (b'{"a":', b"}"),
                                               (b'{"@list":[', b"]}")]))
        body = body[:-1] + b', "x": ' + opener * depth + b"1" + closer * depth + b"}"
    return body


FUZZ = settings(max_examples=100, deadline=None, database=None, derandomize=False,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.function_scoped_fixture,
                                       HealthCheck.large_base_example])


def check_answers(target: Target, started: float, what: str) -> None:
    seconds = time.monotonic() - started
    print(f"\n{what}: {target.sent} requests in {seconds:.1f} s "
          f"({target.sent / max(seconds, 1e-9):.0f}/s, {target.waited:.1f} s of it waiting for "
          f"answers); statuses {dict(sorted(target.statuses.items()))}")
    assert not target.failures, "\n".join(target.failures[:10])
    status, _, body = target.send("GET", "/health")
    assert status == 200, body
    assert "unexpected error answering a request" not in target.agent.log.read_text()


def examples(pod_env: PodEnv, share: float, per_example: int) -> int:
    return max(1, round(REQUESTS[pod_env.flavour.value] * share / per_example))


def test_fuzzed_messages_to_every_post_endpoint(target: Target, pod_env: PodEnv) -> None:
    started = time.monotonic()
    negotiation_url = target.base + "/negotiations/" + target.negotiation

    @settings(FUZZ, max_examples=examples(pod_env, 0.8, len(POST_ENDPOINTS)))
    @given(body=mutated(negotiation_url), other_id=st.booleans())
    def one(body: bytes, other_id: bool) -> None:
        for endpoint in POST_ENDPOINTS:
            path = "/negotiations" + (f"/{'x' if other_id else target.negotiation}{endpoint}"
                                      if endpoint else "")
            status, kind, _ = target.send("POST", path, body)
            if 400 <= status < 500 and status != 404:
                assert kind.startswith("application/problem+json"), (path, status, kind)

    one()
    check_answers(target, started, "POST endpoints")


def test_fuzzed_paths_queries_and_headers_on_the_gets(target: Target, pod_env: PodEnv) -> None:
    started = time.monotonic()

    @settings(FUZZ, max_examples=examples(pod_env, 0.2, 2))
    @given(negotiation=st.one_of(st.just(target.negotiation), st.text(max_size=60)),
           public=st.sampled_from(PUBLIC_GETS),
           query=st.text(max_size=40), accept=st.one_of(
               st.sampled_from(["text/turtle", "application/ld+json;q=0.9, */*;q=0.1",
                                "text/html;q=x", ";;;", "*/*;q=1e99", "application/ld+json;"
                                'profile="http://www.w3.org/ns/json-ld#compacted, x";q=0.7']),
               st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126),
                       max_size=80)))
    def one(negotiation: str, public: str, query: str, accept: str) -> None:
        target.send("GET", "/negotiations/" + quote(negotiation, safe=""))
        target.send("GET", f"{public}?{quote(query, safe='=&')}", headers={"Accept": accept})

    one()
    check_answers(target, started, "GET endpoints")

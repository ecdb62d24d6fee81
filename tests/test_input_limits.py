"""Input from outside is bounded and contained: JSON limits, the bundled-only JSON-LD loader,
parse_graph that never fetches, messages that are refused (never a crash), and canonicalisation
with a budget and a deadline. Pure logic, except a local HTTP server that counts the fetches that
must not happen and a WebID profile a hostile server could serve."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from aiohttp import web
from pyld import jsonld
from rdflib import Graph

from vrm_agent.integrity import (
    IntegrityError,
    SigningKey,
    add_proof,
    canonical_async,
    verify_document_async,
    verify_proofs,
    verify_proofs_async,
)
from vrm_agent.integrity.proofs import _WORKERS, canonical
from vrm_agent.linkeddata.limits import (
    MESSAGE,
    InputRefused,
    TooComplex,
    load_json,
    nesting_depth,
)
from vrm_agent.linkeddata.loader import (
    DATA_INTEGRITY_CONTEXT,
    ODRL_CONTEXT,
    PROTOCOL_CONTEXT,
    ContextRefused,
    load_document,
    refusal_in,
)
from vrm_agent.negotiation.records import content_hash
from vrm_agent.negotiation.wire import MalformedMessage, parse_message
from vrm_agent.pod.client import PodClient
from vrm_agent.pod.rdf import parse_graph
from vrm_agent.pod.resource_server import SolidOidcVerifier, TokenRejected

# -- bounded JSON -------------------------------------------------------------------------------


@pytest.mark.parametrize("text", [
    "[" * 100_000 + "]" * 100_000,
    '{"a":' * 50_000 + "1" + "}" * 50_000,
    '{"@context": "x", "l": {"@list": ' + "[" * 5_000 + "]" * 5_000 + "}}",
    "[" * 50_000,  # not even closed
])
def test_deep_nesting_is_refused_before_parsing(text: str) -> None:
    with pytest.raises(InputRefused, match="nested"):
        load_json(text.encode(), replace(MESSAGE, max_bytes=10**7))


def test_nesting_depth_ignores_brackets_inside_strings() -> None:
    assert nesting_depth('[{"a": "[[[[\\"[{"}]') == 2
    assert nesting_depth('"\\"' * 20_000) == 0  # unclosed escapes: linear, no crash
    assert nesting_depth('[[ "open string [[[[') == 2


@pytest.mark.parametrize(("body", "why"), [
    (b'{"a": NaN}', "not JSON"),
    (b'{"a": Infinity}', "not JSON"),
    (b'{"a": 1e999}', "too large"),
    (b'{"a": ' + b"9" * 5000 + b"}", "too large"),
    (b'{"a": "\xff\xfe"}', "UTF-8"),
    (b'{"a": "\\ud800"}', "surrogate"),
    (b'{"\\udfff": 1}', "surrogate"),
    (b"x" * (MESSAGE.max_bytes + 1), "larger than"),
    (b"", "not JSON"),
])
def test_odd_json_is_refused_with_a_reason(body: bytes, why: str) -> None:
    with pytest.raises(InputRefused, match=why):
        load_json(body)


def test_too_many_nodes_or_items_are_refused() -> None:
    with pytest.raises(TooComplex, match="objects and arrays"):
        load_json(json.dumps({"a": [[] for _ in range(MESSAGE.max_array)],
                              "b": [[] for _ in range(MESSAGE.max_array)]}))
    with pytest.raises(TooComplex, match="items"):
        load_json(json.dumps({"a": list(range(MESSAGE.max_array + 1))}))


# -- the loader ---------------------------------------------------------------------------------


@pytest.mark.parametrize("url", [PROTOCOL_CONTEXT, ODRL_CONTEXT, DATA_INTEGRITY_CONTEXT])
def test_bundled_contexts_are_served(url: str) -> None:
    served = load_document(url)
    assert served["documentUrl"] == url and "@context" in served["document"]
    served["document"]["@context"] = "changed"  # a copy: the bundled one stays as it is
    assert load_document(url)["document"]["@context"] != "changed"


@pytest.mark.parametrize("url", ["file:///etc/passwd", "http://example.org/context",
                                 "https://w3id.org/security/v2", "context.jsonld", "", "/x"])
def test_every_other_context_is_refused(url: str) -> None:
    with pytest.raises(ContextRefused):
        load_document(url)


def test_pyld_without_a_loader_still_fetches_nothing() -> None:
    with pytest.raises(jsonld.JsonLdError) as caught:
        jsonld.expand({"@context": "https://example.org/remote", "p": 1})
    assert refusal_in(caught.value) is not None


# -- parse_graph never fetches --------------------------------------------------------------------


@pytest_asyncio.fixture(loop_scope="session")
async def counting_server() -> AsyncIterator[tuple[str, list[str]]]:
    """A local server that would serve any context, and counts every request it gets."""
    hits: list[str] = []

    async def serve(request: web.Request) -> web.Response:
        hits.append(request.path)
        return web.json_response({"@context": {"issuer": "http://www.w3.org/ns/solid/terms#"
                                                         "oidcIssuer"}},
                                 content_type="application/ld+json")

    app = web.Application()
    app.router.add_get("/{tail:.*}", serve)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield f"http://127.0.0.1:{port}/", hits
    await runner.cleanup()


def profile(context: Any) -> bytes:
    return json.dumps({"@context": context, "@id": "https://vendor.example/profile#me",
                       "issuer": {"@id": "https://rogue.example/"}}).encode()


async def test_a_remote_context_in_a_profile_is_refused_without_a_fetch(
        counting_server: tuple[str, list[str]]) -> None:
    base, hits = counting_server
    for context in (base + "context.jsonld", [base + "a"], {"@import": base + "b"},
                    "relative-context", ""):
        with pytest.raises(ValueError, match=r"not one the agent knows|not valid JSON-LD"):
            parse_graph(profile(context), "application/ld+json", base + "profile")
    assert hits == []  # nothing was fetched


def test_a_file_context_is_refused_and_no_path_or_text_comes_back(tmp_path: Path) -> None:
    existing = tmp_path / "context.jsonld"
    existing.write_text(json.dumps(
        {"@context": {"issuer": "http://www.w3.org/ns/solid/terms#oidcIssuer"}}))
    missing = tmp_path / "missing.jsonld"
    for context in (existing.as_uri(), missing.as_uri(), [{"@base": tmp_path.as_uri() + "/"},
                                                          "context.jsonld"]):
        with pytest.raises(ValueError) as caught:
            parse_graph(profile(context), "application/ld+json", "https://vendor.example/p")
        assert "No such file" not in str(caught.value)
        assert "oidcIssuer" not in str(caught.value)


@pytest.mark.parametrize("document", [
    {"@context": {"s": "http://www.w3.org/ns/solid/terms#"}, "@id": "#me",
     "s:oidcIssuer": {"@id": "https://idp.example/"}, "@graph": [{"@id": "#x", "s:p": 1}]},
    {"@context": {"s": "http://www.w3.org/ns/solid/terms#", "knows": {"@id": "s:knows",
                                                                    "@container": "@list"}},
     "@graph": [{"@id": "#me", "knows": ["#a", {"@id": "#b"}], "s:n": [1.5, True, "x"]},
                {"@id": "_:b1", "@reverse": {"s:r": {"@id": "#me"}}}]},
])
def test_jsonld_reads_as_rdflib_read_it(document: dict[str, Any]) -> None:
    """The same statements as rdflib's own parser found in a document it needed nothing for."""
    base = "https://vendor.example/profile"
    graph = parse_graph(json.dumps(document), "application/ld+json; charset=utf-8", base)
    assert len(graph) > 0
    assert graph.isomorphic(Graph().parse(data=json.dumps(document), format="json-ld",
                                          publicID=base))


def test_many_values_on_one_node_are_read() -> None:
    """pyld's own RDF conversion takes quadratic time here; the profile path does not use it."""
    document = {"@context": {"@vocab": "http://x/"}, "@id": "https://v.example/p#me",
                "knows": [{"@id": f"https://v.example/p#k{i}"} for i in range(20_000)]}
    assert len(parse_graph(json.dumps(document), "application/ld+json",
                           "https://v.example/p")) == 20_000


def test_turtle_still_reads() -> None:
    turtle = parse_graph(b"<#me> <http://x/p> 1 .", "text/turtle", "https://v.example/p")
    assert len(turtle) == 1


def test_parse_graph_errors_carry_no_parser_text() -> None:
    with pytest.raises(ValueError) as caught:
        parse_graph(b"<a> <b> secret-token-in-body", "text/turtle", "http://x/")
    assert "secret-token-in-body" not in str(caught.value)
    with pytest.raises(ValueError, match="nested"):
        parse_graph(b"[" * 10_000, "application/ld+json", "http://x/")


def _unsigned_token(claims: dict[str, Any]) -> str:
    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")

    return f"{part({'alg': 'ES256'})}.{part(claims)}.c2ln"


async def test_a_profile_with_a_file_context_gives_a_401_without_its_path(
        tmp_path: Path, counting_server: tuple[str, list[str]]) -> None:
    """The WebID names the profile on a server the vendor controls; its @context points to a
    local file (that exists) or a remote one: refused, no fetch, and no path in the reason."""
    base, hits = counting_server
    secret = tmp_path / "issuer-terms.jsonld"
    secret.write_text(json.dumps({"@context": {"issuer": "http://www.w3.org/ns/solid/terms#"
                                                         "oidcIssuer"}}))
    served: dict[str, bytes] = {"file": profile(secret.as_uri()),
                                "remote": profile(base + "ctx")}

    async def webid(request: web.Request) -> web.Response:
        return web.Response(body=served[request.match_info["kind"]],
                            content_type="application/ld+json")

    app = web.Application()
    app.router.add_get("/{kind}/profile", webid)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        async with PodClient() as anonymous:
            verifier = SolidOidcVerifier(anonymous)
            for kind in served:
                token = _unsigned_token({"iss": "https://rogue.example/",
                                         "webid": f"http://127.0.0.1:{port}/{kind}/profile#me"})
                with pytest.raises(TokenRejected) as caught:
                    await verifier.verify(method="POST", url="http://agent/negotiations",
                                          authorization=f"DPoP {token}", dpop="x")
                text = str(caught.value)
                assert "WebID profile cannot be read" in text
                assert str(tmp_path) not in text and "oidcIssuer" not in text
    finally:
        await runner.cleanup()
    assert hits == []


# -- negotiation messages -------------------------------------------------------------------

GOOD: dict[str, Any] = {
    "@context": PROTOCOL_CONTEXT, "type": "ContractRequestMessage",
    "callbackAddress": "https://vendor.example/inbox",
    "policy": {"uid": "urn:uuid:8d3c7c1e-2b1a-4a63-9a53-0a6e8ef3c001", "type": "Request",
               "permission": [{"action": "use", "target": ["pd:EmailAddress"],
                               "constraint": [{"leftOperand": "purpose", "operator": "eq",
                                               "rightOperand": {"id": "dpv:ServiceProvision"}}]}]},
}


def with_policy(**changes: Any) -> dict[str, Any]:
    return {**GOOD, "policy": {**GOOD["policy"], **changes}}


@pytest.mark.parametrize("message", [
    {**GOOD, "@context": "x"},
    {**GOOD, "@context": ""},
    {**GOOD, "@context": 5},
    {**GOOD, "@context": None},
    {**GOOD, "@context": [None, {}]},
    {**GOOD, "@context": {"@base": "file:///etc/"}},
    {**GOOD, "@context": [{"@base": "file:///etc/"}, "passwd"]},
    {**GOOD, "@context": {"@import": "file:///etc/passwd"}},
    {**GOOD, "@context": {"@version": 1.0}},
    {**GOOD, "@context": [PROTOCOL_CONTEXT, {"type": None}]},
    {**GOOD, "@context": [PROTOCOL_CONTEXT, {"@protected": True, "policy": 5}]},
    {**GOOD, "type": ["ContractRequestMessage", "ContractOfferMessage"]},
    {**GOOD, "type": {"@id": 5}},
    {**GOOD, "@graph": [1, "x", None]},
    {**GOOD, "policy": [[GOOD["policy"]]]},
    {**GOOD, "policy": {"@list": [[GOOD["policy"]]]}},
    with_policy(permission=[[{"action": "use"}]]),
    with_policy(permission={"@list": [{"@list": [1]}]}),
    with_policy(permission=[{"action": ["use", "read"], "target": [{"@list": ["a"]}]}]),
    with_policy(permission=[{**GOOD["policy"]["permission"][0],
                             "constraint": [{"leftOperand": [], "operator": {},
                                             "rightOperand": [[1]]}]}]),
    with_policy(uid=["a", "b"]),
    with_policy(uid={"@value": 10 ** 300}),
    with_policy(title={"@value": "x", "@language": 5}),
    {**GOOD, "reason": {"@list": [{"@list": []}]}},
    {**GOOD, "callbackAddress": {"@id": ""}},
    {**GOOD, "negotiation": [{"@id": "a"}, {"@id": "b"}]},
    {**GOOD, "policy": {**GOOD["policy"], "@context": {"@vocab": "file:///"}}},
])
def test_hostile_messages_are_malformed_not_crashes(message: dict[str, Any]) -> None:
    with contextlib.suppress(MalformedMessage):  # refused with a reason, or a real message
        parse_message(json.dumps(message))


@pytest.mark.parametrize("body", [
    b'{"@context": "https://w3id.org/vrm-agent/protocol/v1", "x": ' + b"[" * 3000
    + b"]" * 3000 + b"}",
    b'{"@context": "https://w3id.org/vrm-agent/protocol/v1", "x": {"@list": '
    + b'{"@list": ' * 500 + b"1" + b"}" * 501 + b"}",
    b"\xff\xfe{}", b"[]", b"null", b'"@context"', b"1e99999",
])
def test_hostile_bodies_are_malformed(body: bytes) -> None:
    with pytest.raises(MalformedMessage):
        parse_message(body)


def test_a_message_with_a_file_context_is_refused_without_reading_it(tmp_path: Path) -> None:
    terms = tmp_path / "terms.jsonld"
    terms.write_text(json.dumps({"@context": {"@vocab": "https://w3id.org/vrm-agent/protocol#"}}))
    with pytest.raises(MalformedMessage, match="not one the agent knows") as caught:
        parse_message(json.dumps({**GOOD, "@context": [terms.as_uri(), PROTOCOL_CONTEXT]}))
    assert "vrm-agent/protocol#" not in str(caught.value)


# -- canonicalisation: budget and deadline ---------------------------------------------------

AGREEMENT: dict[str, Any] = {
    "@context": [PROTOCOL_CONTEXT],
    "uid": "urn:uuid:5b0f8f4e-1f7c-4b53-a5d4-6f1c8f0b7e11", "type": "Agreement",
    "assigner": "https://pod.example/alice/profile/card#me",
    "assignee": "https://pod.example/acme/profile/card#me",
    "permission": [{"action": "use", "target": ["https://pod.example/alice/email"],
                    "constraint": [{"leftOperand": "purpose", "operator": "eq",
                                    "rightOperand": {"id": "dpv:ServiceProvision"}}]}],
}


def linked_blank_nodes(count: int) -> dict[str, Any]:
    """The attack: ``count`` blank nodes, each linked to all the others in the same way, so
    canonicalisation must try every permutation of them."""
    labels = [f"_:n{i}" for i in range(count)]
    return {**AGREEMENT, "permission": [
        {"@id": label, "action": "use", "duty": [{"@id": other} for other in labels
                                                 if other != label]} for label in labels]}


def test_blank_nodes_that_cannot_be_told_apart_are_refused_at_once() -> None:
    assert canonical(linked_blank_nodes(5))  # four alike neighbours each: still canonicalised
    for count in (6, 7, 12):
        with pytest.raises(IntegrityError, match="cannot be told apart"):
            canonical(linked_blank_nodes(count))


def test_the_blank_node_budget_is_checked_before_canonicalising() -> None:
    many = {**AGREEMENT, "permission": [{"action": "use", "duty": [{"action": "use"}]}
                                        for _ in range(MESSAGE.max_blank_nodes // 2 + 1)]}
    with pytest.raises(IntegrityError, match=r"too complex.*blank nodes"):
        canonical(many)
    values = {**AGREEMENT, "permission": [{"@id": "urn:p", "target": [f"urn:t{i}" for i in
                                                                      range(1_000)]}]}
    with pytest.raises(IntegrityError, match="too complex"):
        canonical(values)


async def test_verify_off_the_loop_gives_the_same_answers() -> None:
    person, vendor = SigningKey(), SigningKey()
    signed = add_proof(add_proof(AGREEMENT, person), vendor)
    assert await verify_proofs_async(signed) == verify_proofs(signed)
    verified = await verify_document_async(signed)
    assert verified.content_hash == content_hash(signed)
    assert await canonical_async(AGREEMENT) == canonical(AGREEMENT)
    tampered = {**signed, "assignee": "https://pod.example/bolt/profile/card#me"}
    with pytest.raises(IntegrityError, match="does not match"):
        await verify_proofs_async(tampered)
    with pytest.raises(IntegrityError, match="not one the agent knows"):
        await verify_proofs_async({**signed, "@context": ["file:///etc/passwd"]})


async def test_a_document_that_runs_over_the_deadline_is_stopped_and_its_worker_killed() -> None:
    # Five alike blank nodes pass the cheap checks and take about 0.1 s: over a 1 ms deadline.
    heavy = linked_blank_nodes(5)
    attack = {**heavy, "proof": add_proof(AGREEMENT, SigningKey())["proof"]}
    await canonical_async(AGREEMENT)  # a warm worker, so its process can be watched
    pids = {worker.process.pid for worker in _WORKERS._idle}
    with pytest.raises(IntegrityError, match="too complex"):
        await verify_proofs_async(attack, seconds=0.001)
    with pytest.raises(IntegrityError, match="too complex"):
        await canonical_async(heavy, seconds=0.001)
    for pid in pids:  # the busy worker was killed, not left burning a core
        await asyncio.sleep(0)
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    # and the next job gets a fresh worker
    assert await canonical_async(AGREEMENT) == canonical(AGREEMENT)


# -- the last resort ----------------------------------------------------------------------------


async def test_an_unforeseen_error_is_a_500_problem_without_its_text() -> None:
    from aiohttp.test_utils import make_mocked_request

    from vrm_agent.daemon.server import last_resort

    async def broken(request: web.Request) -> web.StreamResponse:
        raise RuntimeError("/home/person/.config/vrm-agent/secret.json: no such file")

    async def not_found(request: web.Request) -> web.StreamResponse:
        raise web.HTTPNotFound()

    response = await last_resort(make_mocked_request("POST", "/negotiations"), broken)
    assert response.status == 500
    assert response.content_type == "application/problem+json"
    body = json.loads(response.body)  # type: ignore[attr-defined]
    assert body["status"] == 500 and "secret" not in json.dumps(body)
    with pytest.raises(web.HTTPNotFound):  # aiohttp's own answers pass through
        await last_resort(make_mocked_request("GET", "/x"), not_found)


@pytest.mark.parametrize("context", ["http://localhost:1/ctx", "file:///etc/passwd", "ctx.jsonld"])
def test_an_imported_json_ld_file_cannot_make_the_agent_fetch(tmp_path: Path,
                                                               context: str) -> None:
    from vrm_agent.ledger.exchange import ExchangeError, read_export

    hostile = tmp_path / "ledger.jsonld"
    hostile.write_text(json.dumps({"@context": context, "@id": "http://x/a", "p": "v"}))
    with pytest.raises(ExchangeError, match="not a readable JSON-LD file"):
        read_export(hostile)
    fine = tmp_path / "fine.jsonld"
    fine.write_text(json.dumps({"@id": "http://x/a", "http://x/p": "v"}))
    assert len(read_export(fine)) == 1

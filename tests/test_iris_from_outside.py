"""IRIs from outside end up in access-control documents and Turtle records, so they are checked
where they come in: a WebID or issuer in a token before anything is fetched, and every IRI of a
vendor's message before it is decided on."""

from __future__ import annotations

import base64
import json

import pytest

from vrm_agent.negotiation.wire import MalformedMessage, parse_message
from vrm_agent.pod import PodClient
from vrm_agent.pod.resource_server import SolidOidcVerifier, TokenRejected


def unsigned_token(claims: dict[str, object]) -> str:
    def part(data: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'ES256'})}.{part(claims)}.c2ln"


@pytest.mark.parametrize(("webid", "issuer"), [
    ("http://localhost:1/me> , <http://www.w3.org/ns/auth/acl#Write", "http://localhost:1/"),
    ("http://localhost:1/a b", "http://localhost:1/"),
    ("http://user@localhost:1/me", "http://localhost:1/"),
    ("file:///etc/passwd", "http://localhost:1/"),
    ("urn:uuid:1", "http://localhost:1/"),
    ("http://localhost:1/me\x00", "http://localhost:1/"),
    ("http://localhost:1/me", "file:///etc/"),
    ("http://localhost:1/me", "http://localhost:1/\n"),
])
async def test_a_token_with_a_webid_or_issuer_rdf_cannot_hold_is_refused_unfetched(
        webid: str, issuer: str) -> None:
    async with PodClient() as anonymous:
        verifier = SolidOidcVerifier(anonymous)
        token = unsigned_token({"webid": webid, "iss": issuer})
        with pytest.raises(TokenRejected, match="http"):
            await verifier.verify(method="POST", url="http://localhost:1/negotiations",
                                  authorization=f"DPoP {token}", dpop="x")
        assert sum(anonymous.request_counts.values()) == 0  # nothing was fetched


def request(target: str = "pd:EmailAddress", purpose: str = "dpv:DeliveryOfGoods",
            uid: str = "urn:uuid:1") -> bytes:
    return json.dumps({
        "@context": "https://w3id.org/vrm-agent/protocol/v1", "type": "ContractRequestMessage",
        "policy": {"uid": uid, "type": "Request", "permission": [{
            "action": "use", "target": [target], "constraint": [{
                "leftOperand": "purpose", "operator": "eq", "rightOperand": {"id": purpose}}]}]},
    }).encode()


def test_a_well_formed_request_parses() -> None:
    message = parse_message(request())
    assert message.policy is not None and message.policy.permissions


@pytest.mark.parametrize("body", [
    request(target="http://localhost:3000/carol/a> <b"),
    request(target="http://localhost:3000/carol/a b"),
    request(purpose="https://w3id.org/dpv#Delivery> . <x"),
    request(purpose="https://w3id.org/dpv#Delivery Goods"),
    request(uid="urn:uuid:1> <x"),
    request(target="http://localhost/" + "a" * 3000),
])
def test_iris_rdf_cannot_hold_are_malformed(body: bytes) -> None:
    with pytest.raises(MalformedMessage, match="IRI"):
        parse_message(body)

"""Pure pieces of the pod room: Link headers, N3 Patch documents, DPoP proofs, the config files."""

from __future__ import annotations

import asyncio
import stat
from pathlib import Path

import pytest
from aiohttp import web
from joserfc import jwt
from joserfc.jwk import ECKey
from rdflib import Graph, Literal, URIRef

from vrm_agent.config import Config
from vrm_agent.errors import ConfigError, PodError
from vrm_agent.pod.auth import ClientCredentials, DpopKey, basic_authorization, htu, token_hash
from vrm_agent.pod.client import PodClient
from vrm_agent.pod.links import PIM_STORAGE, Links
from vrm_agent.pod.rdf import n3_patch, parse_graph
from vrm_agent.podserver.process import free_port


def test_links_with_quoted_commas_and_several_rels() -> None:
    links = Links.parse(
        ['<.acl>; rel="acl", <http://www.w3.org/ns/pim/space#Storage>; rel="type"',
         '<http://example.org/a,b>; rel="describedby type"; title="x, y; z"'],
        "http://localhost:3000/alice/",
    )
    assert links.acl == "http://localhost:3000/alice/.acl"
    assert links.is_storage and PIM_STORAGE in links.types
    assert links.first("describedby") == "http://example.org/a,b"
    assert "http://example.org/a,b" in links.types
    assert Links.parse([], "http://x/").acl is None


def test_n3_patch_parses_as_n3() -> None:
    inserts, deletes = Graph(), Graph()
    inserts.add((URIRef("http://x/#s"), URIRef("http://x/#p"), Literal("new \"quoted\"")))
    deletes.add((URIRef("http://x/#s"), URIRef("http://x/#p"), Literal("old")))
    body = n3_patch(inserts=inserts, deletes=deletes)
    parsed = Graph().parse(data=body, format="n3")
    assert len(parsed) == 3  # type, deletes, inserts
    assert "solid:InsertDeletePatch" in body
    with pytest.raises(ValueError):
        n3_patch()


def test_parse_graph_rejects_non_rdf() -> None:
    with pytest.raises(ValueError):
        parse_graph(b"<html/>", "text/html", "http://x/")
    with pytest.raises(ValueError):
        parse_graph(b"<a> <b> broken", "text/turtle", "http://x/")


def test_dpop_proof_claims() -> None:
    key = DpopKey()
    url = "http://localhost:3000/alice/x?query=1#fragment"
    proof = key.proof("put", url, access_token="token-value")
    decoded = jwt.decode(proof, ECKey.import_key(key.public_jwk))
    assert decoded.header["typ"] == "dpop+jwt" and decoded.header["alg"] == "ES256"
    assert decoded.header["jwk"] == key.public_jwk and "d" not in decoded.header["jwk"]
    claims = decoded.claims
    assert claims["htm"] == "PUT"
    assert claims["htu"] == "http://localhost:3000/alice/x" == htu(url)
    assert claims["ath"] == token_hash("token-value")
    other = jwt.decode(key.proof("PUT", url), ECKey.import_key(key.public_jwk)).claims
    assert other["jti"] != claims["jti"] and "ath" not in other


def test_basic_authorization_urlencodes_both_parts() -> None:
    assert basic_authorization("a:b", "c d") == "Basic YSUzQWI6YyUyMGQ="


def test_config_keeps_the_secret_private(tmp_path: Path) -> None:
    path = tmp_path / "conf" / "config.json"
    config = Config.load(path)
    with pytest.raises(ConfigError, match="not logged in"):
        config.credentials()
    config.set_credentials(ClientCredentials("http://x/card#me", "id", "s3cret"))
    config.save()
    assert stat.S_IMODE(config.secrets_path.stat().st_mode) == 0o600
    assert "s3cret" not in path.read_text()
    assert Config.load(path).credentials().client_secret == "s3cret"
    assert "s3cret" not in repr(Config.load(path).credentials())


def test_damaged_config_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text("{ not json")
    with pytest.raises(ConfigError, match=str(path)):
        Config.load(path)


def test_pod_error_says_what_where_and_why() -> None:
    error = PodError("access denied", method="GET", url="http://x/a", status=403,
                     server_message="ForbiddenHttpError")
    assert str(error) == "access denied (GET http://x/a -> 403): ForbiddenHttpError"
    assert str(PodError("no answer", method="GET", url="http://x/")) == "no answer (GET http://x/)"


async def test_requests_per_origin_stay_limited_and_leave_nothing_behind() -> None:
    """At most ``concurrency`` requests in flight per origin; an origin's gate is dropped once
    no request uses it, so reading profiles on many hosts does not pile gates up."""
    in_flight, most = 0, 0

    async def slow(_request: web.Request) -> web.Response:
        nonlocal in_flight, most
        in_flight += 1
        most = max(most, in_flight)
        await asyncio.sleep(0.05)
        in_flight -= 1
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/{name}", slow)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "localhost", port).start()
    try:
        async with PodClient(concurrency=2) as client:
            await asyncio.gather(*(client.get(f"http://localhost:{port}/r{i}",
                                              authenticated=False) for i in range(8)))
            assert most == 2
            assert not dict(client._limits)
    finally:
        await runner.cleanup()

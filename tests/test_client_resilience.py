"""How the client behaves when servers misbehave. These servers are plain HTTP servers on
localhost that answer badly on purpose; no pod behaviour is claimed here."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from aiohttp import web

from vrm_agent.errors import (
    NotASolidServer,
    PodError,
    PodUnreachable,
    RdfSyntaxError,
)
from vrm_agent.pod import PodClient
from vrm_agent.pod.auth import ClientCredentials
from vrm_agent.podserver.process import free_port

pytestmark = pytest.mark.asyncio(loop_scope="session")


class Recorder:
    def __init__(self) -> None:
        self.calls: list[str] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.failures_left = 0
        self.proofs: list[str] = []


@pytest_asyncio.fixture(loop_scope="session")
async def server() -> AsyncIterator[tuple[str, Recorder]]:
    recorder = Recorder()

    async def slow(request: web.Request) -> web.Response:
        recorder.in_flight += 1
        recorder.max_in_flight = max(recorder.max_in_flight, recorder.in_flight)
        await asyncio.sleep(0.05)
        recorder.in_flight -= 1
        return web.Response(text="ok")

    async def flaky(request: web.Request) -> web.Response:
        recorder.calls.append(request.method)
        recorder.proofs.append(request.headers.get("DPoP", ""))
        if recorder.failures_left > 0:
            recorder.failures_left -= 1
            return web.Response(status=503, text="busy")
        return web.Response(text="<#a> <#b> <#c>.", content_type="text/turtle")

    async def broken_turtle(request: web.Request) -> web.Response:
        return web.Response(text="<#a> <#b> this is not turtle", content_type="text/turtle")

    async def html_profile(request: web.Request) -> web.Response:
        return web.Response(text="<html><body>a blog</body></html>", content_type="text/html")

    async def profile_without_issuer(request: web.Request) -> web.Response:
        return web.Response(text="<#me> a <http://xmlns.com/foaf/0.1/Person>.",
                            content_type="text/turtle")

    async def endless(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()  # chunked: no Content-Length to refuse it by
        await response.prepare(request)
        for _ in range(64):
            await response.write(b"<#a> <#b> <#c>.\n" * 4096)
        return response

    app = web.Application()
    app.router.add_get("/endless", endless)
    app.router.add_get("/slow", slow)
    app.router.add_route("*", "/flaky", flaky)
    app.router.add_get("/broken", broken_turtle)
    app.router.add_get("/blog", html_profile)
    app.router.add_get("/card", profile_without_issuer)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    site = web.TCPSite(runner, "localhost", port)
    await site.start()
    yield f"http://localhost:{port}", recorder
    await runner.cleanup()


async def test_concurrency_is_bounded_per_pod(server: tuple[str, Recorder]) -> None:
    base, recorder = server
    async with PodClient(concurrency=4) as client:
        await asyncio.gather(*(client.get(base + "/slow") for _ in range(20)))
    assert recorder.max_in_flight == 4


async def test_idempotent_requests_are_retried_after_5xx(server: tuple[str, Recorder]) -> None:
    base, recorder = server
    recorder.failures_left = 2
    async with PodClient(retries=3, backoff=0.01) as client:
        graph = await client.get_graph(base + "/flaky")
    assert len(graph.graph) == 1
    assert recorder.calls == ["GET", "GET", "GET"]


async def test_each_retry_carries_a_fresh_dpop_proof(server: tuple[str, Recorder]) -> None:
    # A DPoP proof's jti is good for one request: a server that checks replays (a pod does)
    # would refuse a retry that sent the same proof again.
    base, recorder = server
    recorder.failures_left = 2
    async with PodClient(retries=3, backoff=0.01) as client:
        proofs = iter(f"proof-{n}" for n in range(10))
        await client._send("GET", base + "/flaky", {}, None, retry=True,
                           proof=lambda: next(proofs))
    assert recorder.proofs == ["proof-0", "proof-1", "proof-2"]


async def test_retries_end_with_the_server_error(server: tuple[str, Recorder]) -> None:
    base, recorder = server
    recorder.failures_left = 10
    async with PodClient(retries=2, backoff=0.01) as client:
        with pytest.raises(PodError) as caught:
            await client.get(base + "/flaky")
    assert caught.value.status == 503 and caught.value.server_message == "busy"
    assert len(recorder.calls) == 3


async def test_an_answer_larger_than_the_bound_is_refused(server: tuple[str, Recorder]) -> None:
    base, _ = server
    async with PodClient(max_body=1024 * 1024, retries=0) as client:
        with pytest.raises(PodError, match="larger than"):
            await client.get(base + "/endless")
        assert (await client.get(base + "/slow")).status == 200  # the client stays usable


async def test_post_is_not_retried(server: tuple[str, Recorder]) -> None:
    base, recorder = server
    recorder.failures_left = 1
    async with PodClient(retries=3, backoff=0.01) as client:
        with pytest.raises(PodError) as caught:
            await client.post(base + "/flaky", "x", content_type="text/plain")
    assert caught.value.status == 503
    assert recorder.calls == ["POST"]


async def test_unreachable_server() -> None:
    url = f"http://localhost:{free_port()}/alice/profile/card#me"
    async with PodClient(ClientCredentials(url, "id", "secret"), retries=1, backoff=0.01) as c:
        with pytest.raises(PodUnreachable) as caught:
            await c.login()
    assert caught.value.status is None and "no answer" in str(caught.value)


async def test_malformed_turtle_from_a_server(server: tuple[str, Recorder]) -> None:
    base, _ = server
    async with PodClient() as client:
        with pytest.raises(RdfSyntaxError) as caught:
            await client.get_graph(base + "/broken")
    assert caught.value.url == base + "/broken"


async def test_a_web_page_is_no_webid(server: tuple[str, Recorder]) -> None:
    base, _ = server
    async with PodClient(ClientCredentials(base + "/blog#me", "id", "secret")) as client:
        with pytest.raises(NotASolidServer, match="no WebID profile"):
            await client.login()
    async with PodClient(ClientCredentials(base + "/card#me", "id", "secret")) as client:
        with pytest.raises(NotASolidServer) as caught:
            await client.login()
    assert "oidcIssuer" in str(caught.value)

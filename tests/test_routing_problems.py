"""A wrong method or path under one of the agent's faces is a problem document, not aiohttp's
plain-text page; paths outside that face are left alone."""

from __future__ import annotations

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from vrm_agent.daemon.negotiation_routes import routing_problems_under


async def hello(_: web.Request) -> web.Response:
    return web.Response(text="hello")


@pytest.mark.parametrize("prefix", ["/negotiations", "/lws/", "/intents"])
async def test_wrong_routes_under_a_face_are_problem_documents(prefix: str) -> None:
    app = web.Application(middlewares=[routing_problems_under(prefix)])
    app.router.add_get(prefix.rstrip("/") + "/x", hello)
    app.router.add_get("/elsewhere", hello)
    async with TestClient(TestServer(app)) as client:
        wrong_method = await client.post(prefix.rstrip("/") + "/x")
        assert wrong_method.status == 405
        assert wrong_method.content_type == "application/problem+json"
        body = await wrong_method.json()
        assert body["type"].endswith("no-such-endpoint") and "GET" in body["detail"]
        missing = await client.get(prefix.rstrip("/") + "/x/y")
        assert missing.status == 404
        assert (await missing.json())["status"] == 404
        outside = await client.get("/nothing-here")
        assert outside.status == 404 and outside.content_type != "application/problem+json"

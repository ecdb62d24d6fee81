"""The pod client against real Community Solid Servers, WAC and ACP alike."""

from __future__ import annotations

import asyncio
import time

import pytest
from rdflib import Graph, Literal, Namespace, URIRef

from tests.conftest import PodEnv
from vrm_agent.errors import (
    AuthenticationError,
    Conflict,
    Forbidden,
    NotFound,
    PreconditionFailed,
    Unauthorized,
)
from vrm_agent.pod import PodClient, SyncPodClient
from vrm_agent.pod.auth import AccessToken, ClientCredentials
from vrm_agent.pod.client import LDP
from vrm_agent.pod.rdf import JSON_LD

SCHEMA = Namespace("http://schema.org/")
pytestmark = [pytest.mark.pod, pytest.mark.asyncio(loop_scope="session")]


def thing(url: str, name: str) -> Graph:
    graph = Graph()
    graph.add((URIRef(url + "#it"), SCHEMA.name, Literal(name)))
    return graph


async def test_login_discovers_issuer_and_storage(alice: PodClient, pod_env: PodEnv) -> None:
    await alice.login()
    assert alice.issuer == pod_env.server.base_url
    # CSS's profile has no pim:storage: the client walks up to the container typed pim:Storage.
    assert await alice.find_storage() == pod_env.alice.pod


async def test_turtle_and_json_ld_round_trip(alice: PodClient, scratch: str) -> None:
    turtle_url, jsonld_url = scratch + "a.ttl", scratch + "b.jsonld"
    await alice.put_graph(turtle_url, thing(turtle_url, "in turtle"))
    await alice.put_graph(jsonld_url, thing(jsonld_url, "in json-ld"), content_type=JSON_LD)
    read = await alice.get_graph(turtle_url)
    assert read.graph.isomorphic(thing(turtle_url, "in turtle"))
    read = await alice.get_graph(jsonld_url)
    assert read.graph.isomorphic(thing(jsonld_url, "in json-ld"))
    response = await alice.get(jsonld_url, accept=JSON_LD)
    assert response.content_type == JSON_LD


async def test_head_post_delete(alice: PodClient, scratch: str) -> None:
    await alice.create_container(scratch)
    location = await alice.post(scratch, "<#x> <http://schema.org/name> \"posted\".",
                                content_type="text/turtle", slug="posted")
    assert location.startswith(scratch)
    head = await alice.head(location)
    assert head.status == 200 and head.body == b""
    assert head.etag
    assert await alice.exists(location)
    await alice.delete(location)
    assert not await alice.exists(location)
    with pytest.raises(NotFound) as caught:
        await alice.get(location)
    assert caught.value.status == 404 and caught.value.method == "GET"


async def test_n3_patch_inserts_and_deletes(alice: PodClient, scratch: str) -> None:
    url = scratch + "patched"
    await alice.put_graph(url, thing(url, "old"))
    await alice.patch(url, deletes=thing(url, "old"), inserts=thing(url, "new"))
    assert (await alice.get_graph(url)).graph.isomorphic(thing(url, "new"))
    # Deleting a triple that is not there is refused by the server, and nothing changes.
    with pytest.raises(Conflict):
        await alice.patch(url, deletes=thing(url, "absent"), inserts=thing(url, "other"))
    assert (await alice.get_graph(url)).graph.isomorphic(thing(url, "new"))


async def test_patch_creates_missing_resource(alice: PodClient, scratch: str) -> None:
    url = scratch + "made-by-patch"
    await alice.patch(url, inserts=thing(url, "fresh"))
    assert (await alice.get_graph(url)).graph.isomorphic(thing(url, "fresh"))


async def test_containers_create_list_delete_recursively(alice: PodClient, scratch: str) -> None:
    assert await alice.create_container(scratch + "box/") is True
    assert await alice.create_container(scratch + "box/") is False
    for name in ("one", "two", "inner/three"):
        await alice.put_graph(scratch + "box/" + name, thing(scratch + name, name))
    members = await alice.list_container(scratch + "box/")
    assert members == sorted([scratch + "box/inner/", scratch + "box/one", scratch + "box/two"])
    container = await alice.get_graph(scratch + "box/")
    assert LDP.Container in {URIRef(t) for t in container.links.types}
    await alice.delete_recursive(scratch + "box/")
    assert not await alice.exists(scratch + "box/")
    assert not await alice.exists(scratch + "box/inner/three")


async def test_link_headers_name_the_access_control_resource(
    alice: PodClient, scratch: str, pod_env: PodEnv
) -> None:
    url = scratch + "linked"
    await alice.put_graph(url, thing(url, "x"))
    links = (await alice.head(url)).links
    acl = links.acl
    assert acl is not None and acl.startswith(url)
    # The kind of access-control resource is read from the server, not from the URL; CSS
    # sends the type link even while the resource has no access-control document of its own.
    acl_head = await alice.request("HEAD", acl, expect_ok=False)
    assert acl_head.status == 404
    is_acr = "http://www.w3.org/ns/solid/acp#AccessControlResource" in acl_head.links.types
    assert is_acr == (pod_env.flavour.value == "acp")
    storage_links = (await alice.head(pod_env.alice.pod)).links
    assert storage_links.is_storage


async def test_etags_make_writes_conditional(alice: PodClient, scratch: str) -> None:
    url = scratch + "conditional"
    await alice.put_graph(url, thing(url, "v1"), if_none_match="*")
    with pytest.raises(PreconditionFailed):  # it exists now
        await alice.put_graph(url, thing(url, "again"), if_none_match="*")
    first = await alice.get_graph(url)
    await asyncio.sleep(0.01)  # CSS's ETag carries the modification time in milliseconds
    await alice.put_graph(url, thing(url, "v2"), if_match=first.etag)
    with pytest.raises(PreconditionFailed) as caught:  # first.etag is stale now
        await alice.put_graph(url, thing(url, "lost update"), if_match=first.etag)
    assert caught.value.status == 412
    with pytest.raises(PreconditionFailed):
        await alice.delete(url, if_match=first.etag)
    assert (await alice.get_graph(url)).graph.isomorphic(thing(url, "v2"))


async def test_vendor_is_refused_on_owner_resource(
    alice: PodClient, acme: PodClient, scratch: str
) -> None:
    url = scratch + "private"
    await alice.put_graph(url, thing(url, "alice only"))
    # acme is a real second account with its own token: the pod itself says no.
    with pytest.raises(Forbidden) as caught:
        await acme.get(url)
    assert caught.value.status == 403 and caught.value.url == url
    with pytest.raises(Forbidden):
        await acme.put_graph(url, thing(url, "overwritten"))
    async with PodClient() as anonymous:
        with pytest.raises(Unauthorized):
            await anonymous.get(url)
    assert (await alice.get_graph(url)).graph.isomorphic(thing(url, "alice only"))


async def test_token_is_renewed_before_expiry(alice: PodClient, scratch: str) -> None:
    await alice.login()
    old = alice._token
    assert old is not None
    alice._token = AccessToken(old.value, time.monotonic() + 5)  # inside the renewal margin
    await alice.put_graph(scratch + "renewed", thing(scratch, "x"))
    assert alice._token is not None and alice._token.value != old.value


async def test_one_transparent_retry_after_401(alice: PodClient, scratch: str) -> None:
    await alice.login()
    # A token the server does not accept but that we believe valid: the 401 triggers one new login.
    alice._token = AccessToken("not-a-token", time.monotonic() + 3600)
    await alice.put_graph(scratch + "retried", thing(scratch, "x"))
    assert alice._token is not None and alice._token.value != "not-a-token"


async def test_wrong_secret_is_an_authentication_error(pod_env: PodEnv) -> None:
    wrong = ClientCredentials(pod_env.alice.webid, pod_env.alice.client_id, "wrong-secret")
    async with PodClient(wrong) as client:
        with pytest.raises(AuthenticationError) as caught:
            await client.login()
    assert "client id or secret" in str(caught.value)


async def test_concurrent_writes_respect_the_limit(pod_env: PodEnv, scratch: str) -> None:
    async with PodClient(pod_env.alice.credentials, concurrency=3) as client:
        urls = [f"{scratch}item-{i}" for i in range(30)]
        await asyncio.gather(*(client.put_graph(u, thing(u, u)) for u in urls))
        assert len(await client.list_container(scratch)) == 30


def test_sync_face(pod_env: PodEnv) -> None:
    url = pod_env.alice.pod + "tests/sync/resource"
    with SyncPodClient(pod_env.alice.credentials) as pod:
        pod.put_graph(url, thing(url, "sync"))
        assert pod.get_graph(url).graph.isomorphic(thing(url, "sync"))
        assert pod.find_storage() == pod_env.alice.pod
        pod.delete(url)
        with pytest.raises(NotFound):
            pod.get(url)

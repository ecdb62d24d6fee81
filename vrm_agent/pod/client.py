"""The asynchronous Solid pod client: one implementation of the protocol, over aiohttp.

Layers, from the top: resource operations (graphs, containers, patches) call
:meth:`PodClient.request`, which adds authentication (DPoP-bound Solid-OIDC tokens), limits
concurrency per pod, retries idempotent requests after connection errors and 5xx, and turns every
failure into a typed
:class:`~vrm_agent.errors.PodError`.
"""

from __future__ import annotations

import asyncio
import json
import random
import weakref
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar
from urllib.parse import urljoin, urlsplit

import aiohttp
from multidict import CIMultiDict, CIMultiDictProxy
from rdflib import RDF, Graph, Namespace, URIRef

from vrm_agent.errors import (
    AuthenticationError,
    Conflict,
    Forbidden,
    NotASolidServer,
    NotFound,
    PodError,
    PodUnreachable,
    PreconditionFailed,
    RdfSyntaxError,
    Unauthorized,
)
from vrm_agent.pod.auth import AccessToken, ClientCredentials, DpopKey, basic_authorization
from vrm_agent.pod.links import Links
from vrm_agent.pod.rdf import N3, TURTLE, media_type, n3_patch, parse_graph, serialize_graph

SOLID = Namespace("http://www.w3.org/ns/solid/terms#")
PIM = Namespace("http://www.w3.org/ns/pim/space#")
LDP = Namespace("http://www.w3.org/ns/ldp#")

IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
RDF_ACCEPT = "text/turtle, application/ld+json;q=0.9"

_STATUS_ERRORS: dict[int, type[PodError]] = {
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    412: PreconditionFailed,
}

T = TypeVar("T")


@dataclass(frozen=True)
class PodResponse:
    method: str
    url: str
    status: int
    headers: CIMultiDictProxy[str]
    body: bytes
    links: Links

    @property
    def etag(self) -> str | None:
        return self.headers.get("ETag")

    @property
    def content_type(self) -> str:
        return media_type(self.headers.get("Content-Type"))

    @property
    def location(self) -> str | None:
        loc = self.headers.get("Location")
        return urljoin(self.url, loc) if loc else None

    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except ValueError as exc:
            raise PodError(
                "the answer is not JSON", method=self.method, url=self.url, status=self.status
            ) from exc


@dataclass(frozen=True)
class GraphResource:
    """An RDF resource as read: its graph, and the ETag to make a later write conditional on."""

    url: str
    graph: Graph
    etag: str | None
    links: Links


def origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _server_message(body: bytes) -> str | None:
    text = body.decode("utf-8", errors="replace").strip()
    if not text:
        return None
    try:
        payload = json.loads(text)
    except ValueError:
        payload = None
    if isinstance(payload, dict):
        for key in ("message", "error_description", "error", "name"):
            if isinstance(payload.get(key), str) and payload[key]:
                return str(payload[key])
    first = text.splitlines()[0]
    return first[:300] + ("..." if len(first) > 300 else "")


DEFAULT_MAX_BODY = 64 * 1024 * 1024  # far above any one resource the agent writes
PUBLIC_MAX_BODY = 2 * 1024 * 1024  # WebID profiles, issuer configurations and keys

def _no_answer_why(exc: BaseException) -> str:
    """Why nothing answered, in words rather than the HTTP library's class names."""
    if isinstance(exc, TimeoutError):
        return "it did not answer in time"
    if isinstance(exc, getattr(aiohttp, "ClientConnectorDNSError", ())):  # aiohttp >= 3.11
        return "the name does not resolve"
    if isinstance(exc, aiohttp.ClientConnectorError):
        return "nothing accepts connections there"
    return "the connection broke off"


class PodClient:
    """Talks to Solid pods as one agent (or anonymously when no credentials are given).

    Use as ``async with PodClient(credentials) as pod: ...``. ``concurrency`` bounds the requests in
    flight to one pod (one origin); ``retries`` is how often an idempotent request is tried again
    after a connection error or a 5xx answer. ``max_body`` bounds what one answer may bring:
    a server the client is pointed at by a stranger (a WebID profile, an issuer) could send
    without end.
    """

    def __init__(
        self,
        credentials: ClientCredentials | None = None,
        *,
        concurrency: int = 8,
        retries: int = 3,
        backoff: float = 0.2,
        timeout: float = 30.0,
        dpop_key: DpopKey | None = None,
        max_body: int = DEFAULT_MAX_BODY,
    ) -> None:
        self.credentials = credentials
        self.max_body = max_body
        self.concurrency = concurrency
        self.retries = retries
        self.backoff = backoff
        self.timeout = aiohttp.ClientTimeout(total=timeout)
        self.dpop_key = dpop_key or DpopKey()
        self.issuer: str | None = None
        self._token_endpoint: str | None = None
        self._token: AccessToken | None = None
        self._token_lock = asyncio.Lock()
        # Per origin, held only while requests use it: the anonymous client reads the profiles
        # of vendors on any host, and an idle gate is no different from a new one.
        self._limits: weakref.WeakValueDictionary[str, asyncio.Semaphore] = \
            weakref.WeakValueDictionary()
        self._session: aiohttp.ClientSession | None = None
        # Requests sent, by method (retries included): benchmarks count pod round trips with it.
        self.request_counts: Counter[str] = Counter()

    # -- lifecycle ---------------------------------------------------------------------------

    async def __aenter__(self) -> PodClient:
        await self.open()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def open(self) -> None:
        if self._session is None:
            # No cookie jar: CSS answers 500 when a cookie and an account token meet, and a
            # resource client has no use for cookies.
            self._session = aiohttp.ClientSession(
                timeout=self.timeout, cookie_jar=aiohttp.DummyCookieJar()
            )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError("PodClient is not open: use 'async with PodClient(...)'")
        return self._session

    @property
    def webid(self) -> str | None:
        return self.credentials.webid if self.credentials else None

    # -- authentication ----------------------------------------------------------------------

    async def login(self) -> None:
        """Find the issuer from the WebID profile and get the first access token."""
        await self._fresh_token(force=True)

    async def discover_issuer(self, webid: str) -> str:
        """The identity provider a WebID trusts: ``solid:oidcIssuer`` in its profile."""
        try:
            profile = await self.get_graph(webid, authenticated=False)
        except (NotFound, RdfSyntaxError) as exc:
            raise NotASolidServer(
                f"no WebID profile there ({exc.args[0]})", method="GET", url=webid,
                status=exc.status,
            ) from exc
        issuers = sorted(str(o) for o in profile.graph.objects(URIRef(webid), SOLID.oidcIssuer))
        if not issuers:
            raise NotASolidServer(
                "the WebID profile names no solid:oidcIssuer", method="GET", url=webid
            )
        return issuers[0]

    async def _token_endpoint_of(self, issuer: str) -> str:
        url = urljoin(issuer if issuer.endswith("/") else issuer + "/",
                      ".well-known/openid-configuration")
        response = await self.request("GET", url, authenticated=False,
                                      headers={"Accept": "application/json"})
        try:
            endpoint = response.json()["token_endpoint"]
        except (PodError, KeyError, TypeError) as exc:
            raise NotASolidServer(
                "the issuer publishes no OpenID configuration with a token endpoint",
                method="GET", url=url, status=response.status,
            ) from exc
        return str(endpoint)

    async def _fresh_token(self, *, force: bool = False) -> str:
        if self.credentials is None:
            raise AuthenticationError("no credentials: run 'vrm-agent login' first")
        async with self._token_lock:
            if self._token is not None and not force and not self._token.needs_renewal():
                return self._token.value
            if self._token_endpoint is None:
                self.issuer = await self.discover_issuer(self.credentials.webid)
                self._token_endpoint = await self._token_endpoint_of(self.issuer)
            self._token = await self._request_token(self._token_endpoint)
            return self._token.value

    async def _request_token(self, endpoint: str) -> AccessToken:
        assert self.credentials is not None
        headers = {
            "Authorization": basic_authorization(
                self.credentials.client_id, self.credentials.client_secret
            ),
            "DPoP": self.dpop_key.proof("POST", endpoint),
            "Content-Type": "application/x-www-form-urlencoded",
            "Accept": "application/json",
        }
        body = b"grant_type=client_credentials&scope=webid"
        response = await self._send("POST", endpoint, headers, body, retry=False)
        if response.status in (400, 401, 403):
            raise AuthenticationError(
                "the identity provider refused the client id or secret",
                method="POST", url=endpoint, status=response.status,
                server_message=_server_message(response.body),
            )
        if response.status >= 400:
            raise self._error_for(response)
        try:
            return AccessToken.from_response(response.json())
        except (ValueError, TypeError, AttributeError) as exc:
            raise AuthenticationError(
                f"the identity provider's answer has no usable token ({exc})",
                method="POST", url=endpoint, status=response.status,
            ) from exc

    async def access_token(self) -> str:
        """A valid access token, renewed ahead of expiry (background renewal calls this too)."""
        return await self._fresh_token()

    # -- the request layer -------------------------------------------------------------------

    async def request(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        body: bytes | str | None = None,
        authenticated: bool = True,
        expect_ok: bool = True,
    ) -> PodResponse:
        """Send one request; raise the typed error for any 4xx/5xx unless ``expect_ok`` is False."""
        method = method.upper()
        data = body.encode("utf-8") if isinstance(body, str) else body
        send_auth = authenticated and self.credentials is not None
        for attempt in (1, 2):
            all_headers = CIMultiDict(headers or {})
            proof: Callable[[], str] | None = None
            if send_auth:
                token = await self._fresh_token(force=attempt == 2)
                all_headers["Authorization"] = f"DPoP {token}"
                proof = partial(self.dpop_key.proof, method, url, token)
            response = await self._send(method, url, all_headers, data,
                                        retry=method in IDEMPOTENT, proof=proof)
            # One transparent retry with a new token: it may have expired in flight.
            if response.status == 401 and send_auth and attempt == 1:
                continue
            break
        if expect_ok:
            self.raise_for_status(response)
        return response

    def raise_for_status(self, response: PodResponse) -> None:
        """Raise the typed error for a 4xx/5xx answer; return quietly otherwise."""
        if response.status >= 400:
            raise self._error_for(response)

    def _error_for(self, response: PodResponse) -> PodError:
        cls = _STATUS_ERRORS.get(response.status, PodError)
        reason = {
            401: "not authenticated", 403: "access denied", 404: "not found",
            409: "conflict", 412: "the resource changed since it was read",
        }.get(response.status, f"the server answered {response.status}")
        return cls(reason, method=response.method, url=response.url, status=response.status,
                   server_message=_server_message(response.body))

    def _limit(self, url: str) -> asyncio.Semaphore:
        key = origin(url)
        gate = self._limits.get(key)
        if gate is None:
            gate = self._limits[key] = asyncio.Semaphore(self.concurrency)
        return gate

    async def _send(
        self, method: str, url: str, headers: Mapping[str, str], data: bytes | None, *,
        retry: bool, proof: Callable[[], str] | None = None,
    ) -> PodResponse:
        attempts = 1 + (self.retries if retry else 0)
        for attempt in range(attempts):
            last = attempt == attempts - 1
            self.request_counts[method] += 1
            if proof is not None:  # a DPoP proof is good for one request: each try gets its own
                headers = {**headers, "DPoP": proof()}
            try:
                async with self._limit(url), self.session.request(
                    method, url, headers=headers, data=data, allow_redirects=False
                ) as raw:
                    body = await self._bounded_body(raw, method, url)
                    links = Links.parse(raw.headers.getall("Link", []), str(raw.url))
                    response = PodResponse(
                        method, str(raw.url), raw.status, raw.headers, body, links
                    )
            except (TimeoutError, aiohttp.ClientConnectionError) as exc:
                if last:
                    raise PodUnreachable(
                        f"no answer from {origin(url)} ({_no_answer_why(exc)})",
                        method=method, url=url,
                    ) from exc
            except aiohttp.ClientError as exc:  # invalid URL, bad answer framing
                raise PodError(f"the request failed: {exc}", method=method, url=url) from exc
            else:
                # 501 (CSS: no such representation) is an answer, not a passing failure.
                if response.status < 500 or response.status == 501 or last:
                    return response
            await asyncio.sleep(self.backoff * (2**attempt) * (0.5 + random.random()))
        raise AssertionError("unreachable")

    async def _bounded_body(self, raw: aiohttp.ClientResponse, method: str, url: str) -> bytes:
        if (raw.content_length or 0) > self.max_body:
            raise PodError(f"the answer is larger than {self.max_body} bytes", method=method,
                           url=url, status=raw.status)
        chunks, size = [], 0
        async for chunk in raw.content.iter_chunked(64 * 1024):
            size += len(chunk)
            if size > self.max_body:
                raise PodError(f"the answer is larger than {self.max_body} bytes",
                               method=method, url=url, status=raw.status)
            chunks.append(chunk)
        return b"".join(chunks)

    # -- resources ---------------------------------------------------------------------------

    async def get(
        self, url: str, *, accept: str = "*/*", authenticated: bool = True
    ) -> PodResponse:
        return await self.request("GET", url, headers={"Accept": accept},
                                  authenticated=authenticated)

    async def head(self, url: str, *, authenticated: bool = True) -> PodResponse:
        return await self.request("HEAD", url, authenticated=authenticated)

    async def exists(self, url: str) -> bool:
        try:
            await self.head(url)
        except NotFound:
            return False
        return True

    async def put(
        self,
        url: str,
        body: bytes | str,
        *,
        content_type: str,
        if_match: str | None = None,
        if_none_match: str | None = None,
    ) -> PodResponse:
        headers = {"Content-Type": content_type}
        if if_match is not None:
            headers["If-Match"] = if_match
        if if_none_match is not None:
            headers["If-None-Match"] = if_none_match
        return await self.request("PUT", url, headers=headers, body=body)

    async def post(
        self, container: str, body: bytes | str, *, content_type: str, slug: str | None = None
    ) -> str:
        """Create a member of a container; returns its URL (the server may not honour the slug)."""
        headers = {"Content-Type": content_type}
        if slug:
            headers["Slug"] = slug
        response = await self.request("POST", container, headers=headers, body=body)
        if response.location is None:
            raise PodError("the server created no member (no Location header)",
                           method="POST", url=container, status=response.status)
        return response.location

    async def delete(self, url: str, *, if_match: str | None = None) -> None:
        headers = {"If-Match": if_match} if if_match else None
        await self.request("DELETE", url, headers=headers)

    # -- RDF ---------------------------------------------------------------------------------

    async def get_graph(self, url: str, *, authenticated: bool = True) -> GraphResource:
        response = await self.get(url, accept=RDF_ACCEPT, authenticated=authenticated)
        try:
            graph = parse_graph(response.body, response.content_type, base=response.url)
        except ValueError as exc:
            raise RdfSyntaxError(f"the server sent RDF that cannot be read ({exc})",
                                 method="GET", url=url, status=response.status) from exc
        return GraphResource(response.url, graph, response.etag, response.links)

    async def put_graph(
        self,
        url: str,
        graph: Graph,
        *,
        content_type: str = TURTLE,
        if_match: str | None = None,
        if_none_match: str | None = None,
    ) -> PodResponse:
        return await self.put(url, serialize_graph(graph, content_type), content_type=content_type,
                              if_match=if_match, if_none_match=if_none_match)

    async def patch(
        self,
        url: str,
        *,
        inserts: Graph | None = None,
        deletes: Graph | None = None,
        where: Graph | None = None,
        if_match: str | None = None,
    ) -> PodResponse:
        """Apply an N3 Patch; creates the resource when it does not exist yet."""
        headers = {"Content-Type": N3}
        if if_match is not None:
            headers["If-Match"] = if_match
        body = n3_patch(inserts=inserts, deletes=deletes, where=where)
        return await self.request("PATCH", url, headers=headers, body=body)

    # -- containers --------------------------------------------------------------------------

    async def create_container(self, url: str) -> bool:
        """Create a container (and missing parents); False if it was already there."""
        if not url.endswith("/"):
            raise ValueError(f"a container URL ends with '/': {url}")
        try:
            await self.put(url, b"", content_type=TURTLE, if_none_match="*")
        except (PreconditionFailed, Conflict):
            # CSS answers 409 ("existing containers cannot be updated via PUT") before it
            # evaluates If-None-Match; either way the container is there.
            return False
        return True

    async def list_container(self, url: str) -> list[str]:
        resource = await self.get_graph(url)
        return sorted(str(o) for o in resource.graph.objects(URIRef(resource.url), LDP.contains))

    async def delete_recursive(self, url: str) -> None:
        """Delete a container with everything in it (or a single resource)."""
        if url.endswith("/"):
            members = await self.list_container(url)
            await gather_all(self.delete_recursive(member) for member in members)
        await self.delete(url)

    # -- discovery ---------------------------------------------------------------------------

    async def find_storage(self, webid: str | None = None) -> str:
        """The storage root of a WebID: ``pim:storage`` in the profile, else the nearest
        ancestor of the profile typed ``pim:Storage``."""
        webid = webid or self.webid
        if webid is None:
            raise ValueError("find_storage needs a WebID")
        profile = await self.get_graph(webid, authenticated=False)
        storages = sorted(str(o) for o in profile.graph.objects(URIRef(webid), PIM.storage))
        if storages:
            return storages[0]
        path = urlsplit(webid).path
        segments = [s for s in path.split("/")[:-1] if s]
        checked: list[str] = []
        description: str | None = None
        for depth in range(len(segments), -1, -1):
            candidate = origin(webid) + "/" + "".join(s + "/" for s in segments[:depth])
            response = await self.request("HEAD", candidate, expect_ok=False)
            if response.links.is_storage:
                return candidate
            description = description or response.links.storage_description
            checked.append(f"{candidate} {response.status}")
        # CSS has been seen to drop the pim:Storage type from a pod root's headers; its storage
        # description (Solid Protocol) still names the storage, so ask it.
        if description is not None:
            response = await self.request("GET", description, headers={"Accept": RDF_ACCEPT},
                                          expect_ok=False)
            if response.status == 200:
                try:
                    graph = parse_graph(response.body, response.content_type, description)
                except ValueError:
                    graph = Graph()
                storages = sorted(str(s) for s in graph.subjects(RDF.type, PIM.Storage))
                if storages:
                    return storages[0]
            checked.append(f"{description} {response.status}")
        raise NotASolidServer(f"no storage found above the WebID (checked {', '.join(checked)})",
                              method="HEAD", url=webid)


async def gather_all(awaitables: Any) -> list[Any]:
    """Run awaitables concurrently; if any fail, the first failure is raised after all end."""
    results = await asyncio.gather(*awaitables, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return list(results)


async def with_retry_on_conflict(
    operation: Callable[[], Awaitable[T]], *, attempts: int = 5
) -> T:
    """Run a read-modify-write operation again when its conditional write meets a 412."""
    for attempt in range(attempts):
        try:
            return await operation()
        except PreconditionFailed:
            if attempt == attempts - 1:
                raise
            await asyncio.sleep(0.01 * (2**attempt) * (0.5 + random.random()))
    raise AssertionError("unreachable")

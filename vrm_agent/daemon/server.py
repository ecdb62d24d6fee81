"""The agent daemon: an aiohttp server for vendors and the person, and the background work
(token renewal, grant expiry) on the same event loop.

Everything the handlers need travels in one :class:`AgentContext` stored on the application, so
the routes stay thin and the pieces they call stay testable alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import aiohttp
from aiohttp import web
from rdflib import RDF, Graph, URIRef

from vrm_agent import __version__
from vrm_agent.access.service import AccessControl
from vrm_agent.config import Config
from vrm_agent.daemon.change_routes import install as install_change_routes
from vrm_agent.daemon.context import CONTEXT_KEY, AgentContext, context_of
from vrm_agent.daemon.expiry import expiry_lock
from vrm_agent.daemon.intent_routes import install as install_intent_routes
from vrm_agent.daemon.lws_routes import install as install_lws_routes
from vrm_agent.daemon.negotiation_routes import install as install_negotiation_routes
from vrm_agent.daemon.negotiations import NegotiationService
from vrm_agent.daemon.notify import Notifier
from vrm_agent.daemon.relationship_routes import install as install_relationship_routes
from vrm_agent.dashboard import install as install_dashboard
from vrm_agent.errors import PodError, VrmAgentError
from vrm_agent.integrity import SigningKey
from vrm_agent.linkeddata.contexts import data_integrity_bytes
from vrm_agent.negotiation import lws
from vrm_agent.negotiation.quota import DEFAULT_BURST, DEFAULT_REFILL_SECONDS, NegotiationQuota
from vrm_agent.negotiation.wire import CONTEXT_DOCUMENT, PROTOCOL_CONTEXT
from vrm_agent.pod.client import PUBLIC_MAX_BODY, PodClient
from vrm_agent.pod.resource_server import SolidOidcVerifier
from vrm_agent.vocabulary.http import add_vocabulary_routes

log = logging.getLogger("vrm_agent.daemon")

DISCOVERY_PATH = "/.well-known/vrm-agent"
CONTEXT_PATH = "/protocol/v1"
INTEGRITY_CONTEXT_PATH = "/protocol/data-integrity/v2"
VRM = "https://w3id.org/vrm-agent/ns#"
RDFS_NS = "http://www.w3.org/2000/01/rdf-schema#"
SCHEMA = "http://schema.org/"
DCT = "http://purl.org/dc/terms/"
EXPIRY_LOCK_RETRY_SECONDS = 1.0  # while a keeper holds the expiry work, look again this often


async def health(request: web.Request) -> web.Response:
    ctx = context_of(request)
    pod_ok = True
    try:
        await ctx.pod.head(ctx.storage)
    except PodError:
        pod_ok = False
    body = {"status": "ok" if pod_ok else "degraded", "pod": "reachable" if pod_ok else
            "unreachable", "version": __version__}
    return web.json_response(body, status=200 if pod_ok else 503)


async def discovery(request: web.Request) -> web.Response:
    """What a vendor needs to start: who this agent acts for, where to send requests, which
    contexts the messages use, and the key its agreements are signed with."""
    ctx = context_of(request)
    document: dict[str, object] = {
        "@context": {"vrm": VRM, "rdfs": RDFS_NS, "schema": SCHEMA, "lws": lws.LWS,
                     "dct": DCT},
        "@id": ctx.public_url,
        "@type": "vrm:Agent",
        "vrm:actsFor": {"@id": ctx.owner},
        "vrm:negotiationEndpoint": {"@id": ctx.url("/negotiations")},
        "vrm:intentsEndpoint": {"@id": ctx.url("/intents")},
        "vrm:protocol": PROTOCOL_CONTEXT,
        "vrm:protocolContext": [{"@id": ctx.url(CONTEXT_PATH)},
                                {"@id": ctx.url(INTEGRITY_CONTEXT_PATH)}],
        "rdfs:seeAlso": {"@id": ctx.url("/vocab")},
        "schema:softwareVersion": __version__,
        # The W3C LWS access request and grant services, in the draft's own terms.
        "lws:service": [{"@id": e["id"], "@type": f"lws:{e['type']}",
                         "lws:serviceEndpoint": {"@id": e["serviceEndpoint"]},
                         "dct:conformsTo": [{"@id": p} for p in e["conformsTo"]]}
                        for e in lws.service_entries(ctx.public_url)],
    }
    document["vrm:relationshipEndpoint"] = {"@id": ctx.url("/relationship")}  # the r-button
    # Change of address (docs/protocol.md §16): templates, {id} the negotiation's id.
    document["vrm:channelRegistrationEndpoint"] = ctx.url("/negotiations/{id}/channels")
    document["vrm:readAcknowledgementEndpoint"] = ctx.url("/negotiations/{id}/reads")
    if ctx.signing_key is not None:
        document["vrm:signingKey"] = {"@id": ctx.signing_key.verification_method}
    return web.json_response(document, content_type="application/ld+json")


async def protocol_context(request: web.Request) -> web.Response:
    """The protocol's JSON-LD context, for vendors that want a copy of their own."""
    return web.json_response(CONTEXT_DOCUMENT, content_type="application/ld+json",
                             headers={"Cache-Control": "max-age=86400"})


async def integrity_context(request: web.Request) -> web.Response:
    """A copy of the W3C Data Integrity context that signed agreements use, so a vendor can
    canonicalize them without fetching it from elsewhere."""
    return web.Response(body=data_integrity_bytes(), content_type="application/ld+json",
                        headers={"Cache-Control": "max-age=86400"})


class AnotherAgentRuns(VrmAgentError):
    """The person's profile advertises another agent that is running for them."""


ADVERTISE_EVERY = 30.0  # seconds between checks of the advertisement (daemon.advertise_every)
_PEER_TIMEOUT = aiohttp.ClientTimeout(total=3)


async def agent_answers_for(url: str, owner: str) -> bool:
    """Whether an agent runs at ``url`` for ``owner``: its ``/health`` answers and its
    discovery document acts for ``owner``. Plain, short requests: no credentials, no
    redirects, a bounded read."""
    base = url if url.endswith("/") else url + "/"
    try:
        async with aiohttp.ClientSession(timeout=_PEER_TIMEOUT, trust_env=False,
                                         cookie_jar=aiohttp.DummyCookieJar()) as session:
            async with session.get(base + "health", allow_redirects=False) as response:
                if response.status not in (200, 503):  # 503: up, but its pod is not
                    return False
            async with session.get(base + DISCOVERY_PATH.lstrip("/"), allow_redirects=False,
                                   headers={"Accept": "application/ld+json"}) as response:
                if response.status != 200:
                    return False
                document = json.loads(await response.content.read(65536))
    except (aiohttp.ClientError, TimeoutError, ValueError, UnicodeDecodeError):
        return False
    acts_for = document.get("vrm:actsFor") if isinstance(document, dict) else None
    return isinstance(acts_for, dict) and acts_for.get("@id") == owner


async def advertise(ctx: AgentContext, *, at_start: bool = True) -> bool:
    """Point the owner's WebID profile to this agent, so vendors can find it from the WebID;
    True when the profile had to be changed.

    Only one agent advertises itself at a time: at start, when the profile names another agent
    that answers for the same person, this one refuses (:class:`AnotherAgentRuns`) and
    changes nothing. An advertisement that names no running agent is taken over. Later
    (``at_start=False``) the running agent puts its advertisement back whatever it finds."""
    owner = URIRef(ctx.owner)
    ours = URIRef(ctx.public_url)
    profile_doc = ctx.owner.split("#", 1)[0]
    current = await ctx.pod.get_graph(profile_doc)
    advertised = set(current.graph.objects(owner, URIRef(VRM + "agent")))
    services = lws_profile_graph(ctx.owner, ctx.public_url)
    missing = [t for t in services if t not in current.graph]
    stale_services = stale_lws_services(current.graph, ctx.owner, ctx.public_url)
    if advertised == {ours} and not missing and not len(stale_services):
        return False
    others = sorted(str(a) for a in advertised if a != ours)
    if at_start:
        running = await asyncio.gather(*(agent_answers_for(o, ctx.owner) for o in others))
        taken = [o for o, up in zip(others, running, strict=True) if up]
        if taken:
            raise AnotherAgentRuns(
                f"another agent for {ctx.owner} is running at {taken[0]} (the WebID profile "
                "names it); stop it first, or use that one")
    else:
        log.warning("advertisement changed; putting it back",
                    extra={"found": others, "url": ctx.public_url})
    triple = Graph()
    triple.add((owner, URIRef(VRM + "agent"), ours))
    triple += services
    stale = Graph()
    for old in advertised - {ours}:
        stale.add((owner, URIRef(VRM + "agent"), old))
    stale += stale_services
    await ctx.pod.patch(profile_doc, inserts=triple, deletes=stale or None)
    return True


LWS_SERVICE = URIRef(lws.LWS + "service")
LWS_SERVICE_TYPES = {URIRef(lws.LWS + kind) for kind, _, _ in lws.SERVICES}


def lws_profile_graph(owner: str, public_url: str) -> Graph:
    """The LWS access request and grant services, as the WebID profile names them beside
    ``vrm:agent``: the profile is where a client that starts from a WebID looks."""
    graph = Graph()
    for entry in lws.service_entries(public_url):
        node = URIRef(entry["id"])
        graph.add((URIRef(owner), LWS_SERVICE, node))
        graph.add((node, RDF.type, URIRef(lws.LWS + entry["type"])))
        graph.add((node, URIRef(lws.LWS + "serviceEndpoint"), URIRef(entry["serviceEndpoint"])))
        for profile in entry["conformsTo"]:
            graph.add((node, URIRef(DCT + "conformsTo"), URIRef(profile)))
    return graph


def stale_lws_services(profile: Graph, owner: str, public_url: str) -> Graph:
    """What the profile says of access services other than this agent's (an agent that moved):
    removed with the old ``vrm:agent``. Services of other kinds are left alone."""
    ours = {URIRef(e["id"]) for e in lws.service_entries(public_url)}
    stale = Graph()
    for node in set(profile.objects(URIRef(owner), LWS_SERVICE)):
        if node in ours or not set(profile.objects(node, RDF.type)) & LWS_SERVICE_TYPES:
            continue
        stale.add((URIRef(owner), LWS_SERVICE, node))
        for p, o in profile.predicate_objects(node):
            stale.add((node, p, o))
    return stale


async def keep_advertised(ctx: AgentContext) -> None:
    """Check the advertisement every ``daemon.advertise_every`` seconds (30 by default) and
    repair it when someone changed it while this agent runs."""
    every = float(ctx.config.settings.get("daemon", {}).get("advertise_every", ADVERTISE_EVERY))
    while True:
        await asyncio.sleep(every)
        try:
            if await advertise(ctx, at_start=False):
                log.info("advertisement repaired", extra={"url": ctx.public_url})
        except (PodError, VrmAgentError) as exc:
            log.warning("advertisement not checked", extra={"problem": str(exc)})


async def keep_token_fresh(pod: PodClient, every: float = 60.0) -> None:
    """Renew the pod token ahead of expiry, so no request waits for a login."""
    while True:
        with contextlib.suppress(PodError):
            await pod.access_token()
        await asyncio.sleep(every)


async def expire_grants(ctx: AgentContext) -> None:
    """Own the expiry work for this config (a detached keeper may hold it until it leaves).
    One loop ends grants and agreements alike, from the grant index: it wakes at the next end
    it knows and every second to notice grants made by another process (the CLI's share)."""
    while True:
        with expiry_lock(ctx.config.path) as owned:
            if owned:
                log.info("expiry loop started")
                service = ctx.extra.get("negotiations")
                if isinstance(service, NegotiationService):
                    await service.run_expiry()
                else:
                    await ctx.access.run_expiry()
        await asyncio.sleep(EXPIRY_LOCK_RETRY_SECONDS)


@web.middleware
async def last_resort(request: web.Request, handler: Callable[
        [web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
    """Whatever a handler did not foresee becomes a 500 problem document with a fixed text: the
    exception goes to the log, never to the caller (it could name local paths or pod details)."""
    try:
        return await handler(request)
    except web.HTTPException:
        raise
    except Exception:
        log.exception("unexpected error answering a request",
                      extra={"method": request.method, "path": request.path})
        body = {"type": "https://w3id.org/vrm-agent/problems/internal-error",
                "title": "Internal error", "status": 500,
                "detail": "the agent could not answer this request; it has been logged"}
        return web.json_response(body, status=500, content_type="application/problem+json")


RouteInstaller = Callable[[web.Application], None]
BackgroundJob = Callable[[AgentContext], Awaitable[None]]


def build_app(
    ctx: AgentContext,
    *,
    routes: list[RouteInstaller] | None = None,
    jobs: list[BackgroundJob] | None = None,
) -> web.Application:
    """The application: health and discovery, plus the rooms' routes and background jobs."""
    app = web.Application(client_max_size=1024 * 1024, middlewares=[last_resort])
    app[CONTEXT_KEY] = ctx
    app.router.add_get("/health", health)
    app.router.add_get(DISCOVERY_PATH, discovery)
    app.router.add_get(CONTEXT_PATH, protocol_context)
    app.router.add_get(INTEGRITY_CONTEXT_PATH, integrity_context)
    add_vocabulary_routes(app)
    for install in routes or []:
        install(app)

    async def background(app: web.Application) -> AsyncIterator[None]:
        tasks = [asyncio.create_task(keep_token_fresh(ctx.pod)),
                 asyncio.create_task(expire_grants(ctx))]
        tasks += [asyncio.create_task(job(ctx)) for job in jobs or []]
        yield
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    app.cleanup_ctx.append(background)
    return app


@asynccontextmanager
async def assembled(
    config: Config,
    pod: PodClient,
    anonymous: PodClient,
    *,
    public_url: str,
    routes: list[RouteInstaller] | None = None,
    jobs: list[BackgroundJob] | None = None,
) -> AsyncIterator[tuple[web.Application, NegotiationService]]:
    """The agent's application on a logged-in pod client, ready to serve: expired grants
    removed, the agent advertised, the terms read. On leaving, queued audit entries and
    notifications get ten seconds to go out."""
    quota = negotiation_quota(config)  # a bad setting stops the start before anything is done
    storage = config.settings.get("storage") or await pod.find_storage()
    signing_key = SigningKey.from_secret(config.signing_secret())
    owner = config.credentials().webid
    ctx = AgentContext(
        config=config, pod=pod, owner=owner, storage=str(storage), public_url=public_url,
        # The daemon reads the feed of others' changes and keeps the index in memory: its own
        # changes need no announcement.
        access=AccessControl(pod, owner_webid=owner, storage=str(storage), announce=False),
        verifier=SolidOidcVerifier(anonymous), anonymous=anonymous, signing_key=signing_key,
    )
    await advertise(ctx)  # first: a second agent for the person stops here, having done nothing
    notifier = Notifier(signing_key, storage=ctx.storage, agent_url=public_url,
                        issuer=pod.issuer)
    service = NegotiationService(
        pod, owner=ctx.owner, storage=ctx.storage, agent_url=public_url,
        signing_key=signing_key, access=ctx.access, notifier=notifier)
    # Read at once, before any request, so that the first one costs no more than any other:
    # the terms (the roster, for a new pod), the grant index, the storage's access-control
    # system and what its root passes on.
    await service.refresh()
    await ctx.access.prepare(service.shareable_resources())
    # Nothing expired survives a restart: due agreements end (their vendors are told).
    try:
        await service.expire_due()
    except (PodError, VrmAgentError) as exc:  # the expiry loop goes on within a second
        log.warning("start-up expiry pass failed", extra={"problem": str(exc)})
    ctx.extra["negotiations"] = service

    async def negotiation_upkeep(_: AgentContext) -> None:
        await service.keep_fresh()  # expiry runs in expire_grants, under the expiry lock

    async def reconcile(_: AgentContext) -> None:
        # Grants the index does not know (its entry lost) are found in the documents: one
        # read of each governed document, in the background.
        try:
            await ctx.access.reconcile()
        except (PodError, VrmAgentError) as exc:
            log.warning("reconciling the grant index failed", extra={"problem": str(exc)})

    app = build_app(ctx, routes=[install_negotiation_routes(service, quota),
                                 install_lws_routes(service), install_change_routes(service),
                                 install_relationship_routes(service),
                                 install_intent_routes(service), install_dashboard,
                                 *(routes or [])],
                    jobs=[negotiation_upkeep, keep_advertised, reconcile, *(jobs or [])])
    try:
        yield app, service
    finally:
        with contextlib.suppress(TimeoutError):  # a vendor that never answers: give up
            await asyncio.wait_for(asyncio.gather(service.flush(), ctx.access.flush(),
                                                  notifier.drain()), timeout=10)


def negotiation_quota(config: Config) -> NegotiationQuota:
    """How many new negotiations each vendor may open (``daemon.new_negotiations``: ``burst``
    at once, one more every ``refill_seconds``); a setting that is not a number is refused at
    start, never taken as no limit."""
    try:
        chosen = config.settings.get("daemon", {}).get("new_negotiations", {})
        return NegotiationQuota(int(chosen.get("burst", DEFAULT_BURST)),
                                float(chosen.get("refill_seconds", DEFAULT_REFILL_SECONDS)))
    except (AttributeError, TypeError, ValueError):
        raise VrmAgentError(
            "daemon.new_negotiations in the config needs a whole 'burst' of at least 1 and a "
            "'refill_seconds' above 0; fix the config file or remove the setting") from None


async def serve(
    config: Config,
    *,
    host: str,
    port: int,
    public_url: str | None = None,
    routes: list[RouteInstaller] | None = None,
    jobs: list[BackgroundJob] | None = None,
    ready: Callable[[str], None] | None = None,
) -> None:
    """Run until SIGINT or SIGTERM, then stop cleanly: background work cancelled, sockets closed."""
    public_url = public_url or f"http://{host}:{port}/"
    async with PodClient(config.credentials()) as pod, \
            PodClient(max_body=PUBLIC_MAX_BODY) as anonymous:
        await pod.login()
        async with assembled(config, pod, anonymous, public_url=public_url, routes=routes,
                             jobs=jobs) as (app, service):
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            site = web.TCPSite(runner, host, port)
            await site.start()
            log.info("agent listening", extra={"url": public_url, "owner": service.owner})
            if ready:
                ready(public_url)
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop.set)
            try:
                await stop.wait()
            finally:
                log.info("agent stopping")
                await runner.cleanup()
        log.info("agent stopped")

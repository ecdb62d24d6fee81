"""Serve the vocabulary over HTTP, with content negotiation.

Routes, under a prefix (default ``/vocab``):

==================================  ==============================================================
``{prefix}``, ``{prefix}/vrm``      the vocabulary: Turtle, JSON-LD or HTML, by the Accept header
``{prefix}/vrm.ttl|.jsonld|.html``  the vocabulary in one fixed format
``{prefix}/context``                the JSON-LD context (also ``{prefix}/vrm.context.jsonld``)
``{prefix}/shapes``                 the SHACL shapes, Turtle or JSON-LD (also ``vrm.shapes.ttl``)
``{prefix}/protocol``               the protocol's vocabulary (``vrmp:``), Turtle or JSON-LD (also
                                    ``vrmp.ttl``)
==================================  ==============================================================

Turtle is the default (no Accept header, ``*/*``, or a tie). Every negotiated answer carries
``Vary: Accept``; an Accept header that allows none of the formats gets 406. Everything is public
and read-only, so answers allow any origin (JSON-LD processors in browsers fetch contexts) and may
be cached.

The files are read when the server starts, so a broken installation fails then. The JSON-LD forms
are made on the first request for each (a few tens of milliseconds): parsing and serialising the
graphs at start would cost the daemon some 3 MB for pages most vendors never ask for.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from functools import cache, partial
from pathlib import Path

from aiohttp import web
from rdflib import Graph

from vrm_agent.errors import VrmAgentError
from vrm_agent.vocabulary import (
    CONTEXT_PATH,
    HTML_PATH,
    PROTOCOL_VOCABULARY_PATH,
    SHAPES_PATH,
    VOCABULARY_PATH,
    VocabularyError,
    bind_prefixes,
    context,
    shapes_graph,
    vocabulary_graph,
)

__all__ = [
    "HTML",
    "JSON_LD",
    "TURTLE",
    "Representation",
    "add_vocabulary_routes",
    "choose",
    "serve_vocabulary",
]

TURTLE = "text/turtle"
JSON_LD = "application/ld+json"
HTML = "text/html"
HandlerFunc = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class Representation:
    media_type: str
    body: bytes

    @property
    def etag(self) -> str:
        return '"' + hashlib.sha256(self.body).hexdigest()[:32] + '"'

    @property
    def content_type(self) -> str:
        # JSON is UTF-8 by definition and takes no charset parameter.
        if self.media_type == JSON_LD:
            return self.media_type
        return f"{self.media_type}; charset=utf-8"


# --- Accept header ------------------------------------------------------------------------------

# A parameter value is a token or a quoted string (which may hold commas and semicolons).
_VALUE = r"""(?:"(?:[^"\\]|\\.)*"|[^\s;,]*)"""
_PARAM = re.compile(rf""";\s*([^\s;,=]+)\s*=\s*({_VALUE})""")
_TOKEN = re.compile(rf"""\s*([^\s;,]+)\s*((?:;\s*[^\s;,=]+\s*=\s*{_VALUE}\s*)*)""")


def parse_accept(header: str) -> list[tuple[str, float]]:
    """``(media range, q)`` pairs of an Accept header, lower-cased. Malformed ranges are skipped;
    parameters other than q (such as a JSON-LD profile, which may hold commas in quotes) are
    parsed past and ignored."""
    ranges: list[tuple[str, float]] = []
    position = 0
    while position < len(header):
        match = _TOKEN.match(header, position)
        if match is None or not match.group(1):
            next_comma = header.find(",", position)
            if next_comma < 0:
                break
            position = next_comma + 1
            continue
        media_range = match.group(1).lower()
        q = 1.0
        for name, value in _PARAM.findall(match.group(2)):
            if name.lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = -1.0  # an unreadable weight: ignore this range
                if not 0.0 <= q <= 1.0:
                    q = -1.0
        if "/" in media_range and q >= 0:
            ranges.append((media_range, q))
        position = match.end()
        comma = header.find(",", position)
        if comma < 0:
            break
        position = comma + 1
    return ranges


def _specificity(media_range: str, media_type: str) -> int:
    """How specifically a range matches a type: 3 exact, 2 ``type/*``, 1 ``*/*``, 0 not at all."""
    if media_range == media_type:
        return 3
    kind, _, _ = media_type.partition("/")
    if media_range == f"{kind}/*":
        return 2
    return 1 if media_range == "*/*" else 0


def choose(accept: str | None, offered: Sequence[str]) -> str | None:
    """The offered type the client prefers, or None if it accepts none of them.

    Each offered type takes the q of the most specific range that matches it (so
    ``text/*, text/html;q=0`` rules HTML out); the highest q wins, and ties go to the earlier
    offered type, which puts Turtle first for ``*/*``.
    """
    if accept is None or not accept.strip():
        return offered[0] if offered else None
    ranges = parse_accept(accept)
    if not ranges:
        # Nothing readable in the header: answer as if there were none rather than refuse.
        return offered[0] if offered else None
    best: tuple[float, int] | None = None
    chosen: str | None = None
    for index, media_type in enumerate(offered):
        matches = [(_specificity(r, media_type), q) for r, q in ranges]
        matches = [m for m in matches if m[0] > 0]
        if not matches:
            continue
        q = max(matches)[1]  # the most specific range decides (max on specificity first)
        if q <= 0:
            continue
        rank = (q, -index)
        if best is None or rank > best:
            best, chosen = rank, media_type
    return chosen


# --- representations ----------------------------------------------------------------------------


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise VocabularyError(f"cannot read {path}: {exc}") from exc


def _as_json_ld(graph: Graph) -> bytes:
    """The graph as JSON-LD compacted with our own context, so it reads like the context's terms."""
    data = Graph()
    bind_prefixes(data)
    data += graph
    text = data.serialize(format="json-ld", context=context()["@context"], indent=2)
    return text.encode("utf-8")


@cache
def _file(media_type: str, path: Path) -> Representation:
    return Representation(media_type, _read_bytes(path))


@cache
def _vocabulary_json_ld() -> Representation:
    return Representation(JSON_LD, _as_json_ld(vocabulary_graph()))


@cache
def _shapes_json_ld() -> Representation:
    return Representation(JSON_LD, _as_json_ld(shapes_graph()))


Forms = dict[str, Callable[[], Representation]]  # media type -> its representation, made once


def _vocabulary() -> Forms:
    return {
        TURTLE: partial(_file, TURTLE, VOCABULARY_PATH),
        JSON_LD: _vocabulary_json_ld,
        HTML: partial(_file, HTML, HTML_PATH),
    }


def _shapes() -> Forms:
    return {TURTLE: partial(_file, TURTLE, SHAPES_PATH), JSON_LD: _shapes_json_ld}


@cache
def _protocol_json_ld() -> Representation:
    return Representation(JSON_LD, _as_json_ld(Graph().parse(PROTOCOL_VOCABULARY_PATH)))


def _protocol() -> Forms:
    return {TURTLE: partial(_file, TURTLE, PROTOCOL_VOCABULARY_PATH), JSON_LD: _protocol_json_ld}


@cache
def _context() -> Representation:
    body = _read_bytes(CONTEXT_PATH)
    try:
        json.loads(body)  # a broken file fails here, not in a client
    except ValueError as exc:
        raise VocabularyError(f"{CONTEXT_PATH.name} is not valid JSON: {exc}") from exc
    return Representation(JSON_LD, body)


# --- handlers -----------------------------------------------------------------------------------


def _answer(request: web.Request, representation: Representation, *, negotiated: bool,
            alternates: dict[str, str] | None = None) -> web.StreamResponse:
    headers = {
        "Content-Type": representation.content_type,
        "ETag": representation.etag,
        "Cache-Control": "public, max-age=3600",
        "Access-Control-Allow-Origin": "*",
    }
    if negotiated:
        headers["Vary"] = "Accept"
    if alternates:
        headers["Link"] = ", ".join(
            f'<{url}>; rel="alternate"; type="{media_type}"'
            for media_type, url in alternates.items()
            if media_type != representation.media_type
        )
    if_none_match = request.headers.get("If-None-Match", "")
    if representation.etag in (tag.strip() for tag in if_none_match.split(",")) \
            or if_none_match.strip() == "*":
        return web.Response(status=304, headers={k: v for k, v in headers.items()
                                                 if k != "Content-Type"})
    return web.Response(body=representation.body, headers=headers)


def _not_acceptable(offered: Sequence[str]) -> web.Response:
    return web.Response(
        status=406,
        text="Not Acceptable. Available: " + ", ".join(offered) + "\n",
        content_type="text/plain",
        headers={"Vary": "Accept", "Access-Control-Allow-Origin": "*"},
    )


def _negotiating(representations: Callable[[], Forms], alternates: dict[str, str]) -> HandlerFunc:
    async def handler(request: web.Request) -> web.StreamResponse:
        available = representations()
        offered = list(available)
        chosen = choose(request.headers.get("Accept"), offered)
        if chosen is None:
            return _not_acceptable(offered)
        return _answer(request, available[chosen](), negotiated=True, alternates=alternates)

    return handler


def _fixed(representation: Callable[[], Representation]) -> HandlerFunc:
    async def handler(request: web.Request) -> web.StreamResponse:
        return _answer(request, representation(), negotiated=False)

    return handler


def _warm() -> None:
    """Read every file served as it is, so that a broken installation fails at startup."""
    for forms in (_vocabulary(), _shapes()):
        for media_type, form in forms.items():
            if media_type != JSON_LD:
                form()
    _context()


async def _warm_on_startup(_app: web.Application) -> None:
    _warm()  # a few small files: no thread needed


def _one_of(representations: Callable[[], Forms], media_type: str) -> Callable[[], Representation]:
    return lambda: representations()[media_type]()


def add_vocabulary_routes(app: web.Application, prefix: str = "/vocab") -> None:
    """Add the vocabulary, context and shapes routes to ``app`` under ``prefix``."""
    base = "/" + prefix.strip("/") if prefix.strip("/") else ""
    vocab_alternates = {
        TURTLE: f"{base}/vrm.ttl",
        JSON_LD: f"{base}/vrm.jsonld",
        HTML: f"{base}/vrm.html",
    }
    vocabulary = _negotiating(_vocabulary, vocab_alternates)
    shapes = _negotiating(_shapes, {TURTLE: f"{base}/vrm.shapes.ttl"})
    # dict.fromkeys drops the duplicate "/" when the prefix is empty.
    for path in dict.fromkeys((base or "/", f"{base}/", f"{base}/vrm")):
        app.router.add_get(path, vocabulary)
    for media_type, path in vocab_alternates.items():
        app.router.add_get(path, _fixed(_one_of(_vocabulary, media_type)))
    app.router.add_get(f"{base}/context", _fixed(_context))
    app.router.add_get(f"{base}/vrm.context.jsonld", _fixed(_context))
    app.router.add_get(f"{base}/shapes", shapes)
    app.router.add_get(f"{base}/vrm.shapes.ttl", _fixed(_one_of(_shapes, TURTLE)))
    app.router.add_get(f"{base}/protocol",
                       _negotiating(_protocol, {TURTLE: f"{base}/vrmp.ttl"}))
    app.router.add_get(f"{base}/vrmp.ttl", _fixed(_one_of(_protocol, TURTLE)))
    if _warm_on_startup not in app.on_startup:  # once, however many prefixes share the app
        app.on_startup.append(_warm_on_startup)


def vocabulary_app(prefix: str = "/vocab") -> web.Application:
    """An application serving only the vocabulary; its root redirects to the vocabulary."""
    app = web.Application()
    add_vocabulary_routes(app, prefix)
    target = "/" + prefix.strip("/")
    if target != "/":

        async def root(_request: web.Request) -> web.StreamResponse:
            raise web.HTTPFound(target)

        app.router.add_get("/", root)
    return app


async def serve_vocabulary(host: str, port: int, prefix: str = "/vocab") -> None:
    """Serve the vocabulary on ``host:port`` until cancelled (``vrm-agent vocab serve``)."""
    # Read the files first, so that a broken installation fails before listening.
    _warm()
    runner = web.AppRunner(vocabulary_app(prefix), access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        try:
            await site.start()
        except OSError as exc:
            raise VrmAgentError(f"cannot serve the vocabulary on {host}:{port}: {exc}") from exc
        await asyncio.Event().wait()  # until the task is cancelled
    finally:
        await runner.cleanup()

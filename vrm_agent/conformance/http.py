"""Raw HTTP for the kit: requests exactly as a check builds them (bytes, headers, method), the
vendor's DPoP-bound token added when asked, no retries, no redirects, bounded answers. The
implementation under test is hostile like any other party, and a check must see its answer as
it came, not as a client library would mend it."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import aiohttp

from vrm_agent.conformance.results import Failed, clean

if TYPE_CHECKING:
    from vrm_agent.pod.client import PodClient

JSON_LD = "application/ld+json"
PROBLEM = "application/problem+json"
PROBLEM_TYPES = "https://w3id.org/vrm-agent/problems/"
MAX_ANSWER_BYTES = 1 << 20
TIMEOUT_SECONDS = 20.0


@dataclass(frozen=True)
class Answer:
    status: int
    headers: Mapping[str, str] = field(default_factory=dict)  # names in lower case
    body: bytes = b""

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "").split(";", 1)[0].strip().lower()

    def json(self) -> Any:
        """The body as JSON, or None when it is not JSON."""
        try:
            return json.loads(self.body)
        except (ValueError, UnicodeDecodeError):
            return None

    def document(self) -> dict[str, Any]:
        """The body as a JSON object, or an empty one."""
        found = self.json()
        return found if isinstance(found, dict) else {}

    def describe(self) -> str:
        return f"{self.status} {self.content_type or '(no type)'} {clean(self.body[:160])}"


def as_bytes(body: bytes | str | Mapping[str, Any] | list[Any] | None) -> bytes | None:
    if body is None or isinstance(body, bytes):
        return body
    if isinstance(body, str):
        return body.encode("utf-8")
    return json.dumps(body).encode("utf-8")


class Caller:
    """Sends requests as one vendor (its pod client gives the token and the DPoP key), or as
    nobody."""

    def __init__(self, session: aiohttp.ClientSession, pod: PodClient | None = None) -> None:
        self.session = session
        self.pod = pod

    async def auth_headers(self, method: str, url: str) -> dict[str, str]:
        if self.pod is None:
            return {}
        token = await self.pod.access_token()
        return {"Authorization": f"DPoP {token}",
                "DPoP": self.pod.dpop_key.proof(method, url, token)}

    async def send(self, method: str, url: str,
                   body: bytes | str | Mapping[str, Any] | list[Any] | None = None, *,
                   auth: bool = True, headers: Mapping[str, str] | None = None) -> Answer:
        data = as_bytes(body)
        all_headers = {"Accept": JSON_LD}
        if data is not None:
            all_headers["Content-Type"] = JSON_LD
        if auth:
            all_headers.update(await self.auth_headers(method, url))
        all_headers.update(headers or {})
        return await raw(self.session, method, url, data, all_headers)


async def raw(session: aiohttp.ClientSession, method: str, url: str, data: bytes | None,
              headers: Mapping[str, str]) -> Answer:
    """One request; a network failure or an oversized answer is the implementation's failure."""
    try:
        async with session.request(method, url, data=data, headers=dict(headers),
                                   allow_redirects=False,
                                   timeout=aiohttp.ClientTimeout(total=TIMEOUT_SECONDS)
                                   ) as response:
            body = await response.content.read(MAX_ANSWER_BYTES + 1)
            if len(body) > MAX_ANSWER_BYTES:
                raise Failed(f"{method} {url}: the answer is over {MAX_ANSWER_BYTES} bytes")
            return Answer(response.status,
                          {k.lower(): v for k, v in response.headers.items()}, body)
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise Failed(f"{method} {url}: no answer ({type(exc).__name__})") from None


def expect_problem(answer: Answer, status: int, slug: str | None) -> str:
    """Pass (with what was seen) when ``answer`` is the problem document §11 names; raise
    :class:`Failed` saying what differs otherwise."""
    body = answer.document()
    wrong = []
    if answer.status != status:
        wrong.append(f"status {answer.status}, not {status}")
    if answer.content_type != PROBLEM:
        wrong.append(f"Content-Type {answer.content_type or 'missing'}, not {PROBLEM}")
    if slug is not None and body.get("type") != PROBLEM_TYPES + slug:
        wrong.append(f"type {clean(body.get('type'), 100)!s}, not …/{slug}")
    if body.get("status") != answer.status:
        wrong.append("the problem's status is not the HTTP status")
    if not isinstance(body.get("detail"), str) or not body.get("detail"):
        wrong.append("no detail")
    if wrong:
        raise Failed("; ".join(wrong) + f" (answer: {answer.describe()})")
    return f"{answer.status} {slug or ''}: {clean(body.get('detail'), 160)}".strip()

"""Inrupt's ``@inrupt/solid-client`` 3.0.0 ``universalAccess`` and
``@inrupt/solid-client-authn-node`` 4.0.0 ``session.fetch``, driven from Python.

One ``node benchmarks/inrupt/driver.mjs`` process lives as long as the context manager and takes
one JSON command per line, so Node's start-up and the login stay out of the timed calls::

    async with InruptDriver() as driver:
        await driver.login(owner.credentials)
        granted = await driver.grant(resource, vendor.webid)
        revoked = await driver.revoke(resource, vendor.webid)

The packages are installed with ``npm ci`` from the committed lockfile, as the pod server's are
(:mod:`vrm_agent.podserver.install`): a stamp holding the lockfile's sha256 says whether
``node_modules`` matches it.
"""

from __future__ import annotations

import asyncio
import base64
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vrm_agent.pod import PodClient
from vrm_agent.pod.auth import ClientCredentials

NPM_DIR = Path(__file__).parent / "inrupt"
DRIVER_JS = NPM_DIR / "driver.mjs"
_INSTALLED = NPM_DIR / "node_modules/@inrupt/solid-client/package.json"
_STAMP = NPM_DIR / "node_modules/.vrm-agent-lock-sha256"
_QUIT_TIMEOUT = 5.0


class InruptDriverError(RuntimeError):
    """Node or npm is missing, the install failed, or the driver refused or died."""


@dataclass(frozen=True)
class InruptResult:
    """One ``setAgentAccess`` call: its wall time, the HTTP requests it sent, what it returned."""

    ok: bool
    ms: float | None = None
    requests: int = 0
    methods: dict[str, int] = field(default_factory=dict)
    result: Any = None  # the AccessModes the library returned, or None when it returned null
    error: str | None = None


@dataclass(frozen=True)
class FetchedResponse:
    """What ``session.fetch`` answered."""

    status: int
    url: str
    headers: list[tuple[str, str]]
    body: bytes


def available() -> bool:
    """Whether node and npm are on the PATH; without them the Inrupt column is left out."""
    return shutil.which("node") is not None and shutil.which("npm") is not None


def ensure_installed() -> None:
    """``npm ci`` into ``benchmarks/inrupt/node_modules`` unless it already matches the lock."""
    wanted = hashlib.sha256((NPM_DIR / "package-lock.json").read_bytes()).hexdigest()
    # Two benchmarks starting together must not run npm ci into one folder at once.
    with open(NPM_DIR / ".install.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _INSTALLED.exists() and _STAMP.exists() and _STAMP.read_text().strip() == wanted:
            return
        npm = shutil.which("npm")
        if npm is None or shutil.which("node") is None:
            raise InruptDriverError("Node.js 20 and npm are needed to drive Inrupt's client")
        result = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=NPM_DIR, capture_output=True, text=True, check=False,
        )
        if result.returncode != 0 or not _INSTALLED.exists():
            tail = (result.stderr or result.stdout).strip().splitlines()[-5:]
            raise InruptDriverError("npm ci of the pinned Inrupt packages failed: "
                                    + " | ".join(tail))
        _STAMP.write_text(wanted + "\n")


async def issuer_of(webid: str) -> str:
    """The identity provider the WebID's profile names, found as our own client finds it."""
    async with PodClient() as client:
        return await client.discover_issuer(webid)


class InruptDriver:
    def __init__(self, *, trace: bool = False) -> None:
        self.trace = trace  # each request the library sends, on stderr
        self.webid: str | None = None
        self._process: asyncio.subprocess.Process | None = None
        self._lock = asyncio.Lock()

    async def __aenter__(self) -> InruptDriver:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def start(self) -> None:
        if self._process is not None:
            return
        await asyncio.to_thread(ensure_installed)
        node = shutil.which("node")
        if node is None:
            raise InruptDriverError("Node.js 20 is needed to drive Inrupt's client")
        env = dict(os.environ)
        if self.trace:
            env["INRUPT_DRIVER_TRACE"] = "1"
        self._process = await asyncio.create_subprocess_exec(
            node, str(DRIVER_JS), cwd=NPM_DIR, env=env,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            limit=1 << 20,  # stderr is left to our own: the driver's diagnostics show there
        )

    async def stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        try:
            if process.returncode is None and process.stdin is not None:
                process.stdin.write(b'{"op":"quit"}\n')
                await process.stdin.drain()
            await asyncio.wait_for(process.wait(), _QUIT_TIMEOUT)
        except (TimeoutError, ConnectionError):
            if process.returncode is None:
                process.kill()  # our own child, by its handle
                await process.wait()

    async def _call(self, command: dict[str, Any]) -> dict[str, Any]:
        process = self._process
        if process is None or process.stdin is None or process.stdout is None:
            raise InruptDriverError("the driver is not running: use 'async with InruptDriver()'")
        async with self._lock:  # one command in flight: answers come back in order
            try:
                process.stdin.write(json.dumps(command).encode() + b"\n")
                await process.stdin.drain()
            except ConnectionError as exc:
                raise InruptDriverError("the driver has exited") from exc
            line = await process.stdout.readline()
        if not line:
            raise InruptDriverError(f"the driver exited (status {await process.wait()})")
        answer = json.loads(line)
        if not isinstance(answer, dict):
            raise InruptDriverError(f"the driver answered {line!r}")
        return answer

    async def login(self, credentials: ClientCredentials, issuer: str | None = None) -> str:
        """Log the driver's Session in with client credentials; returns the WebID it got.
        Without ``issuer``, the one the WebID's profile names is used."""
        if issuer is None:
            issuer = await issuer_of(credentials.webid)
        answer = await self._call({"op": "login", "id": credentials.client_id,
                                   "secret": credentials.client_secret, "issuer": issuer})
        if not answer.get("ok"):
            raise InruptDriverError(f"Inrupt's login failed: {answer.get('error')}")
        self.webid = str(answer["webid"])
        return self.webid

    async def _set_read(self, op: str, resource: str, agent: str) -> InruptResult:
        answer = await self._call({"op": op, "resource": resource, "agent": agent})
        if not answer.get("ok"):
            return InruptResult(ok=False, error=str(answer.get("error")))
        return InruptResult(ok=True, ms=float(answer["ms"]), requests=int(answer["requests"]),
                            methods={str(k): int(v) for k, v in answer["methods"].items()},
                            result=answer.get("result"))

    async def grant(self, resource: str, agent: str) -> InruptResult:
        """``universalAccess.setAgentAccess(resource, agent, {read: true})``."""
        return await self._set_read("grant", resource, agent)

    async def revoke(self, resource: str, agent: str) -> InruptResult:
        """``universalAccess.setAgentAccess(resource, agent, {read: false})``."""
        return await self._set_read("revoke", resource, agent)

    async def fetch(self, method: str, url: str, headers: Mapping[str, str] | None = None,
                    body: bytes | None = None) -> FetchedResponse:
        """One request through the logged-in ``session.fetch``, which authenticates it."""
        answer = await self._call({
            "op": "fetch", "method": method, "url": url, "headers": dict(headers or {}),
            "body": None if body is None else base64.b64encode(body).decode("ascii")})
        if not answer.get("ok"):
            raise InruptDriverError(f"session.fetch failed: {answer.get('error')}")
        return FetchedResponse(int(answer["status"]), str(answer["url"]),
                               [(str(k), str(v)) for k, v in answer["headers"]],
                               base64.b64decode(answer["body"]))

"""Work that may run long (RDF canonicalisation), done in worker processes with a deadline.

A thread cannot be stopped and holds the GIL while it computes, so a document built to make
canonicalisation explode would still freeze the event loop. Instead each job goes to a small pool
of child processes (``python -m <worker module>``, speaking one JSON line per job on stdin and
stdout); a job that misses its deadline gets its process killed, and the next job starts a fresh
one. Workers start on first use and are reused while they behave.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import sys
from typing import Any

from vrm_agent.linkeddata.limits import TooComplex

log = logging.getLogger("vrm_agent.linkeddata")
STARTUP_SECONDS = 60.0  # importing pyld and friends on a busy machine
LINE_LIMIT = 32 * 1024 * 1024


class WorkerFailed(RuntimeError):
    """A worker process died or answered nonsense (not the document's fault, as far as known)."""


class _Worker:
    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process

    @classmethod
    async def start(cls, module: str) -> _Worker:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", module, stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
            limit=LINE_LIMIT, env=env)
        worker = cls(process)
        try:
            ready = await asyncio.wait_for(worker._read(), STARTUP_SECONDS)
        except BaseException:
            await worker.kill()
            raise
        if ready != {"ready": True}:
            await worker.kill()
            raise WorkerFailed("the worker process did not start")
        return worker

    async def _read(self) -> Any:
        assert self.process.stdout is not None
        line = await self.process.stdout.readline()
        if not line:
            raise WorkerFailed("the worker process ended")
        return json.loads(line)

    async def call(self, job: dict[str, Any], seconds: float) -> Any:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(job).encode("utf-8") + b"\n")
        await self.process.stdin.drain()
        return await asyncio.wait_for(self._read(), seconds)

    async def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.process.kill()
        with contextlib.suppress(Exception):
            await self.process.wait()


class DeadlinePool:
    """At most ``size`` worker processes of one module, for one event loop at a time."""

    def __init__(self, module: str, *, size: int = 2) -> None:
        self.module = module
        self.size = size
        self._idle: list[_Worker] = []
        self._slots: asyncio.Semaphore | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def _bind(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        if self._loop is not loop or self._slots is None:
            # Processes of a loop that is gone cannot be awaited; kill them and start afresh.
            for worker in self._idle:
                with contextlib.suppress(Exception):
                    worker.process.kill()
            self._idle, self._loop, self._slots = [], loop, asyncio.Semaphore(self.size)
        return self._slots

    async def run(self, job: dict[str, Any], *, seconds: float) -> Any:
        """The worker's answer to one job; TooComplex when it misses the deadline."""
        async with self._bind():
            worker = self._idle.pop() if self._idle else await _Worker.start(self.module)
            try:
                answer = await worker.call(job, seconds)
            except TimeoutError:
                await worker.kill()
                log.warning("a job missed its deadline; its worker was killed",
                            extra={"seconds": seconds, "op": job.get("op")})
                raise TooComplex(f"the document is too complex to process within "
                                 f"{seconds:g} s") from None
            except BaseException:
                await worker.kill()
                raise
            self._idle.append(worker)
            return answer

    async def close(self) -> None:
        idle, self._idle = self._idle, []
        for worker in idle:
            await worker.kill()

"""A synchronous face over :class:`PodClient` for scripts. It owns an event loop and runs the
async methods on it: the protocol logic exists once, in the async client."""

from __future__ import annotations

import asyncio
import functools
import inspect
from typing import Any

from vrm_agent.pod.auth import ClientCredentials
from vrm_agent.pod.client import PodClient


class SyncPodClient:
    """``with SyncPodClient(credentials) as pod: pod.get_graph(url)`` — every coroutine method of
    PodClient is available here as a plain method with the same arguments."""

    def __init__(self, credentials: ClientCredentials | None = None, **options: Any) -> None:
        self._loop = asyncio.new_event_loop()
        self._client = PodClient(credentials, **options)
        self._loop.run_until_complete(self._client.open())

    def __enter__(self) -> SyncPodClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        if not self._loop.is_closed():
            self._loop.run_until_complete(self._client.close())
            self._loop.close()

    @property
    def client(self) -> PodClient:
        return self._client

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._client, name)
        if not inspect.iscoroutinefunction(attribute):
            return attribute

        @functools.wraps(attribute)
        def run(*args: Any, **kwargs: Any) -> Any:
            return self._loop.run_until_complete(attribute(*args, **kwargs))

        return run

    def __dir__(self) -> list[str]:
        return sorted(set(super().__dir__()) | set(dir(self._client)))



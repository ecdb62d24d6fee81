"""Telling vendors what happened: protocol messages POSTed to their callback address.

The agent authenticates as the person (the same Solid-OIDC DPoP token it uses on the pod), so a
vendor can check who is speaking exactly as the agent checks vendors. Delivery is tried again with
growing pauses; a vendor that never answers loses nothing it could not also learn by polling the
negotiation's status URL.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Mapping
from typing import Any

from vrm_agent.errors import PodError
from vrm_agent.pod.client import PodClient

log = logging.getLogger("vrm_agent.daemon.notify")


class Notifier:
    def __init__(self, pod: PodClient, *, attempts: int = 5, first_pause: float = 0.5) -> None:
        self.pod = pod
        self.attempts = attempts
        self.first_pause = first_pause
        self._pending: set[asyncio.Task[bool]] = set()
        self.delivered = 0
        self.failed = 0

    async def deliver(self, url: str, message: Mapping[str, Any]) -> bool:
        body = json.dumps(message)
        pause = self.first_pause
        for attempt in range(1, self.attempts + 1):
            try:
                response = await self.pod.request(
                    "POST", url, headers={"Content-Type": "application/ld+json"}, body=body,
                    expect_ok=False)
                if response.status < 300:
                    self.delivered += 1
                    return True
                problem = f"HTTP {response.status}"
                if 400 <= response.status < 500 and response.status not in (408, 429):
                    break  # the vendor refuses it: trying again changes nothing
            except PodError as exc:
                problem = str(exc)
            log.warning("notification not delivered", extra={
                "url": url, "attempt": attempt, "problem": problem})
            if attempt < self.attempts:
                await asyncio.sleep(pause)
                pause *= 2
        self.failed += 1
        log.error("notification given up", extra={"url": url, "type": message.get("type")})
        return False

    def send(self, url: str | None, message: Mapping[str, Any]) -> None:
        """Deliver in the background (the caller's answer does not wait for the vendor)."""
        if not url:
            return
        task = asyncio.create_task(self.deliver(url, message))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def drain(self) -> None:
        """Wait for every delivery under way (a command does this before it exits)."""
        while self._pending:
            await asyncio.gather(*list(self._pending), return_exceptions=True)

"""The next moment some work falls due, for loops that sleep until then."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime


class NextDeadline:
    """A loop sleeps until the next deadline. A new deadline can only bring it forward, so
    adding work wakes the loop without making it read again everything it already knows."""

    def __init__(self, clock: Callable[[], datetime] | None = None) -> None:
        self._clock = clock or (lambda: datetime.now(UTC))
        self._next: datetime | None = None
        self._sooner = asyncio.Event()

    def reset(self, upcoming: datetime | None) -> None:
        """What a full pass found to be the next deadline (None: nothing due)."""
        self._next = upcoming

    def add(self, moment: datetime) -> None:
        if self._next is None or moment < self._next:
            self._next = moment
            self._sooner.set()

    async def sleep(self, *, max_sleep: float) -> None:
        """Return when the next deadline has come, or after ``max_sleep`` seconds at most."""
        deadline = asyncio.get_running_loop().time() + max_sleep
        while True:
            left = deadline - asyncio.get_running_loop().time()
            if self._next is not None:
                left = min(left, (self._next - self._clock()).total_seconds())
            if left <= 0:
                return
            self._sooner.clear()
            try:
                await asyncio.wait_for(self._sooner.wait(), timeout=left + 0.05)
            except TimeoutError:
                return

"""How many new negotiations each vendor may open: every one is a record written in the
person's pod (a refused one too), so a vendor with valid credentials could otherwise fill the
pod and the person's list of requests as fast as the agent answers.

A bucket per vendor holds up to ``burst`` openings and gains one back every ``refill_seconds``.
Pure: the caller says what time it is, so it is tested without clocks or sockets.
"""

from __future__ import annotations

from dataclasses import dataclass, field

DEFAULT_BURST = 30  # openings a vendor may make at once (daemon.new_negotiations.burst)
DEFAULT_REFILL_SECONDS = 60.0  # one more each minute (daemon.new_negotiations.refill_seconds)
# Vendors whose bucket is remembered; past it the fullest are forgotten (a full bucket says
# nothing a new one would not).
MAX_REMEMBERED = 10_000


@dataclass
class NegotiationQuota:
    burst: int = DEFAULT_BURST
    refill_seconds: float = DEFAULT_REFILL_SECONDS
    _buckets: dict[str, tuple[float, float]] = field(default_factory=dict)  # tokens, at

    def __post_init__(self) -> None:
        if self.burst < 1 or not self.refill_seconds > 0:
            raise ValueError("a quota needs a burst of at least 1 and a refill time above 0")

    def take(self, vendor: str, now: float) -> float:
        """0.0 when ``vendor`` may open a negotiation now (and counts it); otherwise the seconds
        until it may, and nothing is counted."""
        tokens = self._tokens(vendor, now)
        if tokens < 1:
            self._buckets[vendor] = (tokens, now)
            return (1 - tokens) * self.refill_seconds
        self._buckets[vendor] = (tokens - 1, now)
        if len(self._buckets) > MAX_REMEMBERED:
            self._forget(now)
        return 0.0

    def _tokens(self, vendor: str, now: float) -> float:
        held = self._buckets.get(vendor)
        if held is None:
            return float(self.burst)
        tokens, at = held
        return min(float(self.burst), tokens + max(0.0, now - at) / self.refill_seconds)

    def _forget(self, now: float) -> None:
        """Down to nine tenths of the bound at once (so a crowd of new vendors costs one sort
        per tenth of it), the fullest buckets first: they hold the least back, and a vendor
        being held back is the last to be let go."""
        by_fullness = sorted(self._buckets, key=lambda v: self._tokens(v, now), reverse=True)
        for vendor in by_fullness[:len(self._buckets) - MAX_REMEMBERED * 9 // 10]:
            del self._buckets[vendor]

    def remembered(self) -> int:
        return len(self._buckets)

"""The quota of new negotiations per vendor, without clocks or sockets."""

from __future__ import annotations

import pytest

from vrm_agent.negotiation import quota as quota_module
from vrm_agent.negotiation.quota import NegotiationQuota

ACME, BOLT = "https://acme.example/#id", "https://bolt.example/#id"


def test_a_burst_then_one_per_refill_and_a_refusal_counts_nothing() -> None:
    quota = NegotiationQuota(burst=3, refill_seconds=60)
    assert [quota.take(ACME, 0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert quota.take(ACME, 0.0) == pytest.approx(60)
    assert quota.take(ACME, 15.0) == pytest.approx(45)  # asking again does not push it back
    assert quota.take(BOLT, 15.0) == 0.0  # each vendor has its own
    assert quota.take(ACME, 60.0) == 0.0
    assert quota.take(ACME, 60.0) == pytest.approx(60)
    # A long pause refills to the burst, never beyond it.
    assert [quota.take(ACME, 10_000.0) for _ in range(4)][-1] == pytest.approx(60)


@pytest.mark.parametrize(("burst", "refill"), [(0, 60.0), (-1, 60.0), (3, 0.0), (3, -1.0),
                                               (3, float("nan"))])
def test_a_quota_that_would_let_nothing_through_or_everything_is_refused(
        burst: int, refill: float) -> None:
    with pytest.raises(ValueError):
        NegotiationQuota(burst, refill)


def test_memory_is_bounded_full_buckets_going_first(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(quota_module, "MAX_REMEMBERED", 4)
    quota = NegotiationQuota(burst=2, refill_seconds=10)
    quota.take("busy", 0.0)
    quota.take("busy", 0.0)  # empty now
    for vendor in ("a", "b", "c", "d"):
        quota.take(vendor, 0.0)
    assert quota.remembered() <= 4
    assert quota.take("busy", 1.0) > 0  # still held back: its bucket was kept
    for n in range(100):  # a crowd of one-time vendors keeps the memory bounded
        quota.take(f"sybil-{n}", 100.0 + n)
    assert quota.remembered() <= 4

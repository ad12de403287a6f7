"""The latest-samples ring: bounded, counts every sample, hands a polling reader exactly the
new ones, and reports percentiles of what it holds now (a long run's current latency)."""

from __future__ import annotations

import pytest

from polylab.samples import LatestSamples


def test_the_ring_keeps_the_latest_and_counts_all() -> None:
    r = LatestSamples(4)
    for v in range(10):
        r.append(v)
    assert list(r) == [6, 7, 8, 9] and len(r) == 4 and r.total == 10 and r.maxlen == 4


def test_since_gives_a_polling_reader_only_the_new_samples() -> None:
    r = LatestSamples(5)
    for v in (1, 2, 3):
        r.append(v)
    assert r.since(0) == [1, 2, 3]
    seen = r.total
    r.append(4)
    r.append(5)
    assert r.since(seen) == [4, 5] and r.since(r.total) == []
    for v in range(6, 20):
        r.append(v)
    assert r.since(seen) == [15, 16, 17, 18, 19]  # what the ring still holds of the new ones
    assert r.since(10**9) == [15, 16, 17, 18, 19]  # a reader ahead of the count: start over


def test_percentiles_follow_the_latest_samples_not_the_first() -> None:
    r = LatestSamples(100)
    for _ in range(1_000):
        r.append(5_000_000)  # a slow start: 5 ms
    assert r.quantile(0.99) == 5_000_000
    for i in range(100):
        r.append(100_000 + i)  # now ~0.1 ms
    assert r.quantile(0.5) == 100_050 and r.quantile(0.99) == 100_099
    assert LatestSamples(3).quantile(0.99) == 0
    with pytest.raises(ValueError, match="quantile"):
        r.quantile(1.5)
    with pytest.raises(ValueError, match="maxlen"):
        LatestSamples(0)

"""A bounded ring of the latest latency samples, for percentiles that stay current.

A long run must report the latency it has now, not the one of its first minutes, and must
not grow with time: the ring keeps the latest ``maxlen`` samples and counts every sample ever
taken (``total``), so a reader that polls (``/metrics``) takes exactly the new ones with
``since``. Percentiles are computed on demand and cached until the next sample, so a reader
asking every 100 ms (``poly:state``) sorts only when something changed. Units: whatever the
producer appends (the engine: ns).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from itertools import islice

__all__ = ["LatestSamples"]


class LatestSamples:
    """The latest ``maxlen`` samples (ints) and the count of all of them (``total``)."""

    __slots__ = ("_cache", "_cached_at", "_ring", "total")

    def __init__(self, maxlen: int) -> None:
        if maxlen < 1:
            raise ValueError(f"maxlen must be ≥ 1, got {maxlen}")
        self._ring: deque[int] = deque(maxlen=maxlen)
        self.total = 0
        self._cached_at = -1
        self._cache: list[int] = []

    @property
    def maxlen(self) -> int:
        """Samples kept."""
        return self._ring.maxlen or 0

    def append(self, sample: int) -> None:
        """Take one sample (the oldest kept one goes when the ring is full)."""
        self._ring.append(sample)
        self.total += 1

    def __len__(self) -> int:
        return len(self._ring)

    def __iter__(self) -> Iterator[int]:
        return iter(self._ring)

    def since(self, seen: int) -> list[int]:
        """The samples taken after the first ``seen`` (oldest first), as far as the ring still
        holds them; ``seen`` above ``total`` (a reset reader) gives every kept sample."""
        new = self.total - seen if 0 <= seen <= self.total else len(self._ring)
        new = min(new, len(self._ring))
        return list(islice(self._ring, len(self._ring) - new, None))

    def quantile(self, q: float) -> int:
        """Quantile ``q`` (0..1, nearest rank below) of the kept samples; 0 when empty."""
        if not 0.0 <= q <= 1.0:
            raise ValueError(f"quantile q must be in [0, 1], got {q}")
        if self._cached_at != self.total:
            self._cache = sorted(self._ring)
            self._cached_at = self.total
        s = self._cache
        if not s:
            return 0
        return s[min(len(s) - 1, int(q * len(s)))]

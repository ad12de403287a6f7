"""A sorted, cumulated view of one book side, for exact depth walks in O(log levels).

Built from ``(tick, size micros)`` levels best-first. Cumulative sums make a VWAP for any size
one ``bisect`` plus a partial level:

* ``cum_size[i]``: shares (micros) available at levels ``0..i``;
* ``cum_notional[i]``: Σ price micros × size micros (units of 1e-12 $), exact;
* ``cum_pq[i]``: Σ price × (1 − price) × size in 1e-18 units, for the taker fee
  ``shares × rate × p × (1 − p)``, exact.
"""

from __future__ import annotations

from itertools import accumulate, repeat
from operator import mul, sub

from polylab.money import MICROS

__all__ = ["Ladder"]


class Ladder:
    """Immutable cumulated levels of one side; ``version`` ties it to the book state."""

    __slots__ = ("_cum_pq", "cum_notional", "cum_size", "prices", "sizes", "total", "version")

    def __init__(
        self,
        prices: list[int],
        sizes: list[int],
        cum_size: list[int],
        cum_notional: list[int],
        cum_pq: list[int] | None,
        version: int,
    ) -> None:
        self.prices = prices
        self.sizes = sizes
        self.cum_size = cum_size
        self.cum_notional = cum_notional
        self._cum_pq = cum_pq
        self.total = cum_size[-1] if cum_size else 0
        self.version = version

    @classmethod
    def build(cls, levels: list[tuple[int, int]], tick_micros: int, version: int) -> Ladder:
        """From best-first ``(tick, size micros)`` levels on a grid of ``tick_micros``."""
        ticks = [t for t, _ in levels]
        sizes = [s for _, s in levels]
        return cls.from_arrays(ticks, sizes, tick_micros, version)

    @classmethod
    def from_arrays(
        cls, ticks: list[int], sizes: list[int], tick_micros: int, version: int
    ) -> Ladder:
        """From parallel best-first tick and size lists (C-level accumulation, no Python loop
        per level: rebuilding after every book change stays cheap)."""
        prices = list(map(mul, ticks, repeat(tick_micros, len(ticks))))
        notional = list(accumulate(map(mul, prices, sizes)))
        return cls(prices, sizes, list(accumulate(sizes)), notional, None, version)

    @property
    def cum_pq(self) -> list[int]:
        """Σ p(1−p)·size per level (1e-18 units), built on first use: only fees need it."""
        pq = self._cum_pq
        if pq is None:
            prices = self.prices
            pq = list(
                accumulate(map(mul, map(mul, prices, map(sub, repeat(MICROS), prices)), self.sizes))
            )
            self._cum_pq = pq
        return pq

    @classmethod
    def from_price_levels(cls, levels: list[tuple[int, int]]) -> Ladder:
        """From best-first ``(price micros, size micros)`` levels (tests, analysis)."""
        return cls.build(levels, 1, 0)

    def __len__(self) -> int:
        return len(self.prices)

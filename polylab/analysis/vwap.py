"""Exact volume-weighted average prices over a book side, with shortfall and taker fees.

``vwap_buy(book_or_ladder, size)`` walks the asks, ``vwap_sell`` the bids. Sizes and prices are
micros; cost is exact in 1e-12 $ (``notional``) and rounded to micros against us (up when we
pay, down when we receive). When depth runs out the fill is partial and ``shortfall`` says by
how much. One ``bisect`` on the ladder's cumulative sizes finds the last level touched.
"""

from __future__ import annotations

from bisect import bisect_left
from decimal import Decimal

import msgspec

from polylab.book.l2 import L2Book
from polylab.book.ladder import Ladder
from polylab.fees import FeeModel, round_fee_up
from polylab.money import MICROS

__all__ = [
    "Vwap",
    "vwap_buy",
    "vwap_buy_with_fees",
    "vwap_sell",
    "vwap_sell_with_fees",
]


class Vwap(msgspec.Struct, frozen=True, gc=False):
    """The result of a depth walk. Amounts are micros; ``notional`` is 1e-12 $.

    ``requested``/``filled``: shares asked and obtained; ``cost``: cash paid (buy, rounded up)
    or received (sell, rounded down), fees excluded; ``levels``: levels touched;
    ``worst_price``: the last level's price (0 when nothing filled); ``fee``: taker fee (0
    unless fee-aware).
    """

    requested: int
    filled: int
    notional: int
    cost: int
    levels: int
    worst_price: int
    fee: int = 0

    @property
    def shortfall(self) -> int:
        """Shares the book could not supply (micros)."""
        return self.requested - self.filled

    @property
    def complete(self) -> bool:
        """True when the whole size was available."""
        return self.filled == self.requested

    @property
    def avg_price(self) -> Decimal:
        """Exact average price per share (Decimal; 0 when nothing filled)."""
        if not self.filled:
            return Decimal(0)
        return Decimal(self.notional) / Decimal(self.filled) / MICROS

    @property
    def total(self) -> int:
        """Cost plus fee: what a buy really costs, micros."""
        return self.cost + self.fee


def _walk(lad: Ladder, size: int) -> tuple[int, int, int, int, int]:
    """(filled, notional, pq, levels, worst price) for ``size`` micros over ``lad``."""
    cum = lad.cum_size
    if not cum or size <= 0:
        return 0, 0, 0, 0, 0
    i = bisect_left(cum, size)
    if i == len(cum):
        return cum[-1], lad.cum_notional[-1], lad.cum_pq[-1], i, lad.prices[-1]
    p = lad.prices[i]
    if i:
        rem = size - cum[i - 1]
        return (
            size,
            lad.cum_notional[i - 1] + p * rem,
            lad.cum_pq[i - 1] + p * (MICROS - p) * rem,
            i + 1,
            p,
        )
    return size, p * size, p * (MICROS - p) * size, 1, p


def _walk_np(lad: Ladder, size: int) -> tuple[int, int, int, int]:
    """``_walk`` without the fee term."""
    cum = lad.cum_size
    if not cum or size <= 0:
        return 0, 0, 0, 0
    i = bisect_left(cum, size)
    if i == len(cum):
        return cum[-1], lad.cum_notional[-1], i, lad.prices[-1]
    p = lad.prices[i]
    if i:
        return size, lad.cum_notional[i - 1] + p * (size - cum[i - 1]), i + 1, p
    return size, p * size, 1, p


def vwap_buy(src: L2Book | Ladder, size: int) -> Vwap:
    """Buy ``size`` share micros walking the asks (best first)."""
    if type(src) is L2Book:
        t = src.best_ask
        if size > 0 and t <= src.n and size <= src.asks[t]:  # one level: straight off the array
            p = t * src.tick.micros
            n = p * size
            return Vwap(size, size, n, -(-n // MICROS), 1, p)
        cached = src.cached_ask_ladder()
        if cached is None:  # first look at this state: walk the array; the next look builds
            v = _walk_array_up(src, size) if size > 0 else None
            if v is not None:
                return v
            cached = src.ask_ladder()
        lad: Ladder = cached
    else:
        lad = src  # type: ignore[assignment]
    filled, notional, levels, worst = _walk_np(lad, size)
    return Vwap(size, filled, notional, -(-notional // MICROS), levels, worst)


_DIRECT_TICKS = 64
"""How far past the best ask a direct array walk may go before the ladder is worth building."""


def _walk_array_up(b: L2Book, size: int) -> Vwap | None:
    """Buy ``size`` by walking the ask tick array (no ladder); None when the fill needs more
    than ``_DIRECT_TICKS`` ticks (then a cumulated ladder pays for itself)."""
    asks = b.asks
    t = b.best_ask
    end = min(b.n + 1, t + _DIRECT_TICKS)
    tm = b.tick.micros
    left = size
    notional = levels = 0
    while t < end:
        s = asks[t]
        if s:
            levels += 1
            p = t * tm
            if s >= left:
                notional += p * left
                return Vwap(size, size, notional, -(-notional // MICROS), levels, p)
            notional += p * s
            left -= s
        t += 1
    if end == b.n + 1:  # walked the whole side: a shortfall
        filled = size - left
        worst = max((k for k in range(b.best_ask, end) if asks[k]), default=-1)
        return Vwap(
            size, filled, notional, -(-notional // MICROS), levels, worst * tm if worst >= 0 else 0
        )
    return None


def vwap_sell(src: L2Book | Ladder, size: int) -> Vwap:
    """Sell ``size`` share micros walking the bids (best first)."""
    lad = src.bid_ladder() if type(src) is L2Book else src
    filled, notional, levels, worst = _walk_np(lad, size)  # type: ignore[arg-type]
    return Vwap(size, filled, notional, notional // MICROS, levels, worst)


def _with_fees(lad: Ladder, size: int, fees: FeeModel, buy: bool) -> Vwap:
    filled, notional, pq, levels, worst = _walk(lad, size)
    cost = -(-notional // MICROS) if buy else notional // MICROS
    if fees.flat_micros_per_share:
        fee = round_fee_up(filled * fees.flat_micros_per_share, MICROS)
    elif fees.exponent == 1:
        fee = round_fee_up(pq * fees.rate_micros, MICROS**3) if fees.rate_micros else 0
    else:
        fee = 0
        left = filled
        for p, s in zip(lad.prices, lad.sizes, strict=True):
            if left <= 0:
                break
            take = s if s < left else left
            fee += fees.fee(take, p)
            left -= take
    return Vwap(size, filled, notional, cost, levels, worst, fee)


def vwap_buy_with_fees(src: L2Book | Ladder, size: int, fees: FeeModel) -> Vwap:
    """``vwap_buy`` plus the taker fee of the fill (``Vwap.total`` = cost + fee)."""
    lad = src.ask_ladder() if isinstance(src, L2Book) else src
    return _with_fees(lad, size, fees, True)


def vwap_sell_with_fees(src: L2Book | Ladder, size: int, fees: FeeModel) -> Vwap:
    """``vwap_sell`` plus the taker fee (deducted from proceeds: net = cost − fee)."""
    lad = src.bid_ladder() if isinstance(src, L2Book) else src
    return _with_fees(lad, size, fees, False)

"""What one complete set of an outcome group costs (or fetches) through the depth, fees in.

The pricing core shared by the sum analyzer (``analysis.opportunities``) and the set
strategies (``strategy.sum_to_100``, ``strategy.clipper``):

* ``GroupLegs`` / ``GroupIndex``: a group's legs with their fee models, indexed by token and
  market, kept in step with the catalog;
* ``quote_set``: the exact cost (buy) or proceeds (sell) of ``size`` sets: every leg's VWAP and
  taker fee, read straight off the books' tick arrays (``analysis.vwap`` for deep walks);
* ``best_set``: the **largest** size whose edge per set stays ≥ a minimum. Within a stretch
  where no leg changes level the edge is linear in size, and every deeper level costs more
  (p + fee(p) rises with p), so the edge is concave: one merged walk over the legs' ladders
  finds the root in O(levels touched), and ``quote_set`` then checks it exactly (rounding of
  per-leg fees can only move it down by a step or so).

Fees: each leg uses its market's ``FeeModel``. Legs whose market publishes none share a flat
fallback of ``fallback_fee_micros`` per set (a fee per share of $1 payout, SUMTO100_FEE_RATE),
pro rata to the number of such legs: a binary pair without a schedule pays the whole fallback
once per set (the spec's worked example: Σ VWAP 0.935 + 0.01 = 0.945).

Units: sizes are share micros (a set = one share of every leg), prices price micros, cash
micros.
"""

from __future__ import annotations

from contextlib import suppress
from typing import Literal

import msgspec

from polylab.analysis.vwap import (
    Vwap,
    vwap_buy,
    vwap_buy_with_fees,
    vwap_sell,
    vwap_sell_with_fees,
)
from polylab.book.l2 import L2Book
from polylab.fees import FeeModel, round_fee_up
from polylab.market import MarketCatalog, OutcomeGroup
from polylab.money import MICROS, MoneyError, parse_micros

__all__ = [
    "DEFAULT_FALLBACK_FEE_MICROS",
    "DEFAULT_SIZES",
    "SIZE_STEP_MICROS",
    "GroupIndex",
    "GroupLegs",
    "SetQuote",
    "SetSide",
    "best_set",
    "fallback_fee",
    "no_edge_at_top",
    "quote_set",
    "top_sum",
]

SetSide = Literal["buy", "sell"]
DEFAULT_SIZES: tuple[int, ...] = tuple(n * MICROS for n in (10, 50, 100, 500, 1000))
"""Sizes the analyzer prices by default: 10 … 1,000 sets, share micros."""
SIZE_STEP_MICROS = 10_000
"""Order size granularity: the venue takes sizes in 0.01 share."""
DEFAULT_FALLBACK_FEE_MICROS = 10_000
"""Flat fee per set where no schedule is published: 1 % of the $1 payout, micros per set."""
_M2 = MICROS * MICROS
_M3 = _M2 * MICROS
_SCAN_BUDGET = 48
"""Most ticks a direct array walk visits before it hands over to the cached ladder."""


def _direct_rate(fm: FeeModel | None) -> int:
    """The rate the direct walk charges (0: no fee), or -1 when only ``analysis.vwap`` can."""
    if fm is None:
        return 0
    if fm.flat_micros_per_share or (fm.exponent != 1 and fm.rate_micros):
        return -1
    return fm.rate_micros


class GroupLegs:
    """One outcome group ready for pricing: legs, their fee models (None: fallback), the
    largest minimum order size among its markets (share micros)."""

    __slots__ = ("fees", "group", "label", "min_order", "n_fallback", "plan", "tokens")

    def __init__(self, group: OutcomeGroup, catalog: MarketCatalog) -> None:
        self.group = group
        self.tokens = group.token_ids
        self.fees: tuple[FeeModel | None, ...] = tuple(catalog.fee_for(t) for t in self.tokens)
        self.n_fallback = sum(f is None for f in self.fees)
        # (token, rate micros for the direct walk or -1 for the generic path, fee model)
        self.plan: tuple[tuple[str, int, FeeModel | None], ...] = tuple(
            (t, _direct_rate(f), f) for t, f in zip(self.tokens, self.fees, strict=True)
        )
        self.label: Literal["stale_leg", "structural"] = (
            "stale_leg" if group.kind == "binary" else "structural"
        )
        floor = 0
        for m in group.markets:
            mk = catalog.markets.get(m)
            if mk is not None:
                with suppress(MoneyError):
                    floor = max(floor, parse_micros(mk.min_order_size))
        self.min_order = floor


class GroupIndex:
    """Outcome groups of a catalog by token and by market, rebuilt when the catalog grows."""

    def __init__(self, catalog: MarketCatalog) -> None:
        self.catalog = catalog
        self.groups: list[GroupLegs] = []
        self.by_token: dict[str, list[GroupLegs]] = {}
        self.by_market: dict[str, list[GroupLegs]] = {}
        self._known = (-1, -1)
        self.sync()

    def refresh(self) -> None:
        """Rebuild from the catalog. ``sync`` notices added markets and tokens only: call this
        after replacing a market in place (a new fee schedule, say)."""
        cat = self.catalog
        self.groups = [GroupLegs(g, cat) for g in cat.groups()]
        self.by_token, self.by_market = {}, {}
        for gl in self.groups:
            for t in gl.tokens:
                self.by_token.setdefault(t, []).append(gl)
            for m in gl.group.markets:
                self.by_market.setdefault(m, []).append(gl)
        self._known = (len(cat.markets), len(cat.by_token))

    def sync(self) -> None:
        """Refresh if markets or tokens were added since the last build (cheap check)."""
        cat = self.catalog
        if (len(cat.markets), len(cat.by_token)) != self._known:
            self.refresh()


def fallback_fee(size: int, legs: GroupLegs, fallback_fee_micros: int) -> int:
    """The flat fee for ``size`` sets on the legs without a schedule (micros, rounded up)."""
    k = legs.n_fallback
    if not k or not fallback_fee_micros or size <= 0:
        return 0
    return round_fee_up(size * fallback_fee_micros * k, MICROS * len(legs.tokens))


class SetQuote(msgspec.Struct, frozen=True, gc=False):
    """``size`` complete sets priced through the depth. ``cost``: Σ legs' cash (buy: paid,
    rounded up; sell: received, rounded down), fees excluded; ``fees``: Σ taker fees."""

    side: SetSide
    size: int
    cost: int
    fees: int
    legs: tuple[Vwap, ...]

    @property
    def edge(self) -> int:
        """Profit of the whole trade against the $1 payout per set, fees included (micros)."""
        if self.side == "buy":
            return self.size - self.cost - self.fees
        return self.cost - self.fees - self.size

    @property
    def edge_per_set(self) -> int:
        """Edge per set, micros (floored)."""
        return self.edge * MICROS // self.size if self.size else 0


def quote_set(
    legs: GroupLegs,
    books: dict[str, L2Book],
    side: SetSide,
    size: int,
    fallback_fee_micros: int = DEFAULT_FALLBACK_FEE_MICROS,
) -> SetQuote | None:
    """Exact price of ``size`` sets, or None when a book is missing or cannot fill ``size``.

    Each leg is walked straight off its tick array, best first, for up to ``_SCAN_BUDGET``
    ticks: a check usually touches a few levels right after one of them changed, and
    rebuilding the book's ladder (a pass over the whole side) would cost more than the walk.
    Deeper or sparser walks, and fee models other than ``r·p(1−p)``, use ``analysis.vwap``.
    The arithmetic is the same: cash ⌈Σ p·take⌉ (buy) or ⌊…⌋ (sell), fee ⌈Σ r·p(1−p)·take⌉
    to 0.00001.
    """
    buy = side == "buy"
    out: list[Vwap] = []
    cost = fee = 0
    for tok, rate, fm in legs.plan:
        b = books.get(tok)
        if b is None:
            return None
        if rate >= 0:
            if buy:
                arr, t, step, end = b.asks, b.best_ask, 1, b.n + 1
            else:
                arr, t, step, end = b.bids, b.best_bid, -1, -1
            tm = b.tick.micros
            left, notional, pq, levels, worst, budget = size, 0, 0, 0, 0, _SCAN_BUDGET
            while t != end and budget:
                q = arr[t]
                if q:
                    worst = p = t * tm
                    levels += 1
                    take = q if q < left else left
                    notional += p * take
                    if rate:
                        pq += p * (MICROS - p) * take
                    left -= take
                    if not left:
                        break
                t += step
                budget -= 1
            if not left:
                c = -(-notional // MICROS) if buy else notional // MICROS
                f = round_fee_up(pq * rate, _M3) if rate else 0
                cost += c
                fee += f
                out.append(Vwap(size, size, notional, c, levels, worst, f))
                continue
            if budget:
                return None  # the side ran out: too thin
        if fm is None:
            v = vwap_buy(b, size) if buy else vwap_sell(b, size)
        else:
            v = vwap_buy_with_fees(b, size, fm) if buy else vwap_sell_with_fees(b, size, fm)
        if v.filled != size:
            return None
        cost += v.cost
        fee += v.fee
        out.append(v)
    if legs.n_fallback:
        fee += fallback_fee(size, legs, fallback_fee_micros)
    return SetQuote(side, size, cost, fee, tuple(out))


def _unit_fee(fm: FeeModel | None, p: int) -> int:
    """A level's fee per share, scaled by 1e12 (micros × 1e12), rounded up."""
    if fm is None:
        return 0
    if fm.flat_micros_per_share:
        return fm.flat_micros_per_share * _M2
    if not fm.rate_micros:
        return 0
    e = fm.exponent
    num: int = fm.rate_micros * pow(p * (MICROS - p), e)
    return num if e == 1 else -(-num // MICROS ** (2 * e - 2))


def _walk_limit(
    legs: GroupLegs,
    books: dict[str, L2Book],
    buy: bool,
    min_edge_micros: int,
    cap: int | None,
    fallback_fee_micros: int,
) -> int:
    """Largest size (share micros, unrounded) whose edge per set ≥ ``min_edge`` by the merged
    segment walk: within a segment every leg's price is fixed, so the edge is linear there."""
    lads = []
    for tok in legs.tokens:
        b = books.get(tok)
        if b is None:
            return 0
        lad = b.ask_ladder() if buy else b.bid_ladder()
        if not lad.total:
            return 0
        lads.append(lad)
    limit = min(lad.total for lad in lads)
    if cap is not None:
        limit = min(limit, cap)
    n = len(lads)
    fees = legs.fees
    extra = min_edge_micros * _M2
    if legs.n_fallback and fallback_fee_micros:
        extra += -(-fallback_fee_micros * legs.n_fallback * _M2 // n)
    sign = 1 if buy else -1
    idx = [0] * n
    units = [
        lad.prices[0] * _M2 + sign * _unit_fee(fm, lad.prices[0])
        for lad, fm in zip(lads, fees, strict=True)
    ]
    total = sum(units)
    x = g_acc = 0
    while x < limit:
        end = limit
        for k in range(n):
            c = lads[k].cum_size[idx[k]]
            if c < end:
                end = c
        g = (_M3 - total if buy else total - _M3) - extra
        if g < 0:
            reach = x + g_acc // -g
            if reach < end:
                return reach
        g_acc += g * (end - x)
        x = end
        if x >= limit:
            break
        for k in range(n):
            lad = lads[k]
            if lad.cum_size[idx[k]] == x:
                i = idx[k] = idx[k] + 1
                p = lad.prices[i]
                u = p * _M2 + sign * _unit_fee(fees[k], p)
                total += u - units[k]
                units[k] = u
    return x


def best_set(
    legs: GroupLegs,
    books: dict[str, L2Book],
    side: SetSide,
    *,
    min_edge_micros: int = 0,
    cap_micros: int | None = None,
    fallback_fee_micros: int = DEFAULT_FALLBACK_FEE_MICROS,
    step: int = SIZE_STEP_MICROS,
) -> SetQuote | None:
    """The largest size (a multiple of ``step``, ≤ ``cap_micros``) whose exact edge per set is
    ≥ ``min_edge_micros``, priced; None when no size qualifies (or the edge would be ≤ 0)."""
    buy = side == "buy"
    s = _walk_limit(legs, books, buy, min_edge_micros, cap_micros, fallback_fee_micros)
    s -= s % step
    if s <= 0:
        return None

    def ok(size: int) -> SetQuote | None:
        q = quote_set(legs, books, side, size, fallback_fee_micros)
        if q is None or q.edge <= 0 or q.edge * MICROS < min_edge_micros * size:
            return None
        return q

    q = ok(s)
    if q is not None:
        return q
    # per-leg rounding (≤ 0.00001 + 1 micro a leg) broke the last step: gallop down to a size
    # that passes, then bisect between it and the lowest failing one
    hi, d, lo, best = s, step, 0, None
    while s - d > 0:
        best = ok(s - d)
        if best is not None:
            lo = s - d
            break
        hi, d = s - d, d * 2
    while hi - lo > step:
        mid = (lo + hi) // 2
        mid -= mid % step
        r = ok(mid)
        if r is not None:
            lo, best = mid, r
        else:
            hi = mid
    return best


def top_sum(legs: GroupLegs, books: dict[str, L2Book], buy: bool) -> int | None:
    """Σ best ask (buy) or Σ best bid (sell), price micros; None when a book is missing."""
    s = 0
    for t in legs.tokens:
        b = books.get(t)
        if b is None:
            return None
        s += b.best_ask_micros() if buy else b.best_bid_micros()
    return s


def no_edge_at_top(legs: GroupLegs, books: dict[str, L2Book], buy: bool, min_edge: int) -> bool:
    """True when the top of book already rules out an edge above ``min_edge`` (fees ≥ 0 and
    deeper levels are worse, so nothing deeper can help)."""
    s = top_sum(legs, books, buy)
    return s is None or (s + min_edge >= MICROS if buy else s - min_edge <= MICROS)

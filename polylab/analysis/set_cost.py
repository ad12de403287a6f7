"""What one complete set of an outcome group costs (or fetches) through the depth, fees in.

The pricing core shared by the sum analyzer (``analysis.opportunities``) and the set
strategies (``strategy.sum_to_100``, ``strategy.clipper``):

* ``GroupLegs`` / ``GroupIndex``: a group's legs with their fee models, indexed by token and
  market, kept in step with the catalog;
* ``quote_set``: the exact cost (buy) or proceeds (sell) of ``size`` sets: every leg's VWAP and
  taker fee, read straight off the books' tick arrays (``analysis.vwap`` for deep walks);
* ``best_set``: the size that **earns the most** while every set clears a minimum edge:
  depth is added while the *marginal* set (one more share of every leg at its current level,
  fees at that level's price) still earns ≥ ``min_edge`` per set. Deeper levels only cost more
  (p + fee(p) rises with p), so profit peaks exactly there; the average edge then clears too.
  One walk over the legs' tick arrays in lockstep finds it, ``quote_set`` prices it;
* ``marginal_clears``: the same rule at given leg prices (Clipper, top of book).

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
    "limit_cost",
    "marginal_clears",
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


def _rule_bound(legs: GroupLegs, buy: bool, min_edge_micros: int, fallback_fee_micros: int) -> int:
    """The marginal rule as a bound on n·Σu, u = p ± fee per share at p (micros × 1e12).

    A marginal set (one more share of every leg at its current level) earns ``1 − Σu`` (buy)
    or ``Σu − 1`` (sell) less the fallback ``fb·k/n`` (k legs without a schedule); it clears
    when that is > 0 and ≥ ``min_edge``. Times n, in integers: buy clears iff n·Σu ≤ bound,
    sell iff n·Σu ≥ bound."""
    n = len(legs.tokens)
    fbk = fallback_fee_micros * legs.n_fallback * _M2 if legs.n_fallback else 0
    need = max(n * min_edge_micros * _M2, 1)
    return n * _M3 - fbk - need if buy else n * _M3 + fbk + need


def marginal_clears(
    legs: GroupLegs,
    prices: list[int],
    buy: bool,
    min_edge_micros: int,
    fallback_fee_micros: int = DEFAULT_FALLBACK_FEE_MICROS,
) -> bool:
    """True when one more set at these leg prices (price micros, in ``legs.tokens`` order)
    earns > 0 and ≥ ``min_edge_micros`` per set after each leg's fee at its price and the
    fallback: the sizing rule of ``best_set``, for a caller that reads the levels itself."""
    sign = 1 if buy else -1
    total = 0
    for p, fm in zip(prices, legs.fees, strict=True):
        total += p * _M2 + sign * _unit_fee(fm, p)
    bound = _rule_bound(legs, buy, min_edge_micros, fallback_fee_micros)
    n = len(prices)
    return n * total <= bound if buy else n * total >= bound


def _walk(
    legs: GroupLegs,
    books: dict[str, L2Book],
    buy: bool,
    bound: int,
    cap: int | None,
    budget: int | None,
) -> int:
    """Largest size (share micros, unrounded) reached by adding depth while the marginal set
    clears ``bound`` (``_rule_bound``), within ``cap`` and, buying, within ``budget`` cash
    micros at the legs' worst prices. The legs' tick arrays are walked in lockstep: a segment
    ends where any leg's level runs out (the breakpoints are the union of the legs' level
    boundaries). A leg's next level is searched only up to the price the others leave for it
    (Σ prices must stay under $1 buying, over $1 selling), so the scan stays short and no
    ladder is built."""
    if cap is not None and cap <= 0:
        return 0
    arrs, ticks, tms, rems, prices, units = [], [], [], [], [], []
    fees = legs.fees
    sign = 1 if buy else -1
    for tok, fm in zip(legs.tokens, fees, strict=True):
        b = books.get(tok)
        if b is None:
            return 0
        t = b.best_ask if buy else b.best_bid
        if t > b.n or t < 0:
            return 0
        arr = b.asks if buy else b.bids
        tm = b.tick.micros
        p = t * tm
        arrs.append(arr)
        ticks.append(t)
        tms.append(tm)
        rems.append(arr[t])
        prices.append(p)
        units.append(p * _M2 + sign * _unit_fee(fm, p))
    n = len(arrs)
    total, psum, x = sum(units), sum(prices), 0
    while True:
        if (n * total > bound) if buy else (n * total < bound):
            return x
        end = x + min(rems)
        if cap is not None and end > cap:
            end = cap
        if budget is not None and psum > 0:
            afford = budget * MICROS // psum
            if afford < end:
                return max(x, afford)
        if end == cap:
            return end
        d, x = end - x, end
        for k in range(n):
            r = rems[k] - d
            if r:
                rems[k] = r
                continue
            arr, tm, t = arrs[k], tms[k], ticks[k]
            stop = MICROS - (psum - prices[k])
            if buy:  # p < stop, else Σ prices ≥ $1
                t += 1
                while t * tm < stop and not arr[t]:
                    t += 1
                if t * tm >= stop:
                    return x
            else:  # p > stop, else Σ prices ≤ $1
                t -= 1
                while t >= 0 and t * tm > stop and not arr[t]:
                    t -= 1
                if t < 0 or t * tm <= stop:
                    return x
            p = t * tm
            u = p * _M2 + sign * _unit_fee(fees[k], p)
            total += u - units[k]
            psum += p - prices[k]
            ticks[k], rems[k], prices[k], units[k] = t, arr[t], p, u


def limit_cost(q: SetQuote) -> int:
    """Cash a BUY set commits at its legs' limit (worst) prices, micros: Σ ⌈worst × size⌉,
    what the risk gate counts (``Intent.cost``)."""
    s = q.size
    return sum(-(-v.worst_price * s // MICROS) for v in q.legs)


def best_set(
    legs: GroupLegs,
    books: dict[str, L2Book],
    side: SetSide,
    *,
    min_edge_micros: int = 0,
    cap_micros: int | None = None,
    budget_micros: int | None = None,
    fallback_fee_micros: int = DEFAULT_FALLBACK_FEE_MICROS,
    step: int = SIZE_STEP_MICROS,
) -> SetQuote | None:
    """The size that earns the most while every set in it clears ``min_edge_micros``, priced.

    Depth is added while the **marginal** set (every leg's next share at its level, plus that
    level's fee and the fallback) earns > 0 and ≥ the minimum per set: profit rises up to there
    and falls after, and the average clears too. Rounded down to a multiple of ``step`` (the
    size grid), ≤ ``cap_micros`` and, buying, ``limit_cost`` ≤ ``budget_micros`` (the risk
    headroom). None when no set clears or the exact quote (rounded against us) shows no profit.
    """
    buy = side == "buy"
    bound = _rule_bound(legs, buy, min_edge_micros, fallback_fee_micros)
    budget = budget_micros if buy else None
    s = _walk(legs, books, buy, bound, cap_micros, budget)
    s -= s % step
    while s > 0:
        q = quote_set(legs, books, side, s, fallback_fee_micros)
        if q is None or q.edge <= 0:
            return None
        if budget is None or limit_cost(q) <= budget:
            return q
        s -= step  # per-leg cash rounding at the limit prices: a step or so
    return None


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

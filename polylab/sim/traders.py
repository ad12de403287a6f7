"""The simulated market makers and takers that ``MarketGenerator`` drives.

Split out of ``generator`` (which lists markets, schedules events and steps the clock) to keep
both modules short. ``Traders`` holds the per-market maker logic: quoting a ladder around a fair
price, churn at depth, taker sweeps, grid changes and neg-risk shocks, all through
``Exchange.place/cancel``. It draws from the generator's own ``rng`` (the same
``random.Random``), so a seed still fixes the whole sequence of exchange calls.
"""

from __future__ import annotations

import logging
import random
from typing import Any

from polylab.market import Market
from polylab.money import MICROS, TickSize, parse_micros, tick_size
from polylab.sim.accounts import sim_address
from polylab.sim.sports import Game

__all__ = ["Traders"]

log = logging.getLogger(__name__)

_FINE = tick_size("0.001")
_COARSE = tick_size("0.01")
_LOT = 10_000
"""Sizes are whole cents of a share (0.01 share = 10_000 micros)."""


class _Mkt:
    """One listed market as its maker sees it. ``fair``: YES price micros the maker centres on;
    ``orders``: the maker's resting orders, id → (YES-book bid?, YES price micros)."""

    def __init__(self, m: Market, maker: str, fair: int) -> None:
        self.m = m
        self.maker = maker
        self.fair = fair
        self.tick = _COARSE
        """The market's grid, re-read from the exchange (which also re-ticks on trades)."""
        self.orders: dict[str, tuple[bool, int]] = {}
        self.closing = False
        self.group: list[_Mkt] = [self]
        self.game: Game | None = None
        self.outcome_side = ""
        """For sports markets: "home", "away" or "draw", the result that makes YES win."""


class Traders:
    """Every simulated maker and taker order: the generator's base class, sharing its ``ex``
    (the exchange) and ``rng``. ``levels``: book depth per side a maker keeps."""

    def __init__(self, ex: Any, rng: random.Random, levels: int) -> None:
        self.ex = ex
        self.rng = rng
        self.levels = levels
        self._funded: set[str] = set()
        self.takes_rejected = 0
        self.orders_placed = 0
        self.orders_cancelled = 0
        self.errors = 0
        """Rejected generator orders (each one logged up to 10): should stay 0."""

    # -- exchange calls ------------------------------------------------------------------------
    def _place(self, mk: _Mkt, yes_bid: bool, yes_price: int, size: int) -> None:
        """Maker quote: a YES bid is BUY YES at p, a YES ask is BUY NO at 1 − p."""
        if not 0 < yes_price < MICROS or yes_price % mk.tick.micros:
            return
        token = mk.m.token_ids[0] if yes_bid else mk.m.token_ids[1]
        own = yes_price if yes_bid else MICROS - yes_price
        res = self.ex.place(mk.maker, token, "BUY", own // mk.tick.micros, size)
        self.orders_placed += 1
        if res.success and res.status == "live":
            mk.orders[res.order_id] = (yes_bid, yes_price)
        elif res.success:  # another client's order was in the way: re-read what rests
            self._refresh(mk)
        else:
            self.errors += 1
            if self.errors <= 10:
                log.warning("generator order rejected: %s", res.error_msg)

    def _cancel(self, mk: _Mkt, oid: str) -> None:
        mk.orders.pop(oid, None)
        self.ex.cancel(mk.maker, oid)
        self.orders_cancelled += 1

    def _refresh(self, mk: _Mkt) -> None:
        """Re-read the maker's resting orders (after fills) and the market's grid."""
        yes = mk.m.token_ids[0]
        mk.orders.clear()
        for o in self.ex.open_orders(mk.maker):
            p = parse_micros(o["price"])
            is_yes = o["asset_id"] == yes
            mk.orders[o["id"]] = ((o["side"] == "BUY") == is_yes, p if is_yes else MICROS - p)
        mk.tick = self.ex.grid(yes)

    def _size(self) -> int:
        """A quote size: 5-2000 shares, heavy-tailed, in whole cents of a share."""
        r = self.rng
        shares = r.randint(5, 120) * r.choice((1, 1, 1, 2, 3, 5, 10))
        cents = r.choice((0, 0, r.randint(1, 99)))
        return (shares * 100 + cents) * _LOT

    # -- quoting -------------------------------------------------------------------------------
    def _band(self, mk: _Mkt) -> tuple[int, int]:
        """(top bid, top ask) around ``fair`` on the market's grid, 1-3 ticks apart."""
        t = mk.tick.micros
        half = self.rng.choice((1, 1, 1, 2)) * t
        bid = max(t, (mk.fair - half) // t * t)
        ask = min(MICROS - t, -(-(mk.fair + half) // t) * t)
        if ask <= bid:
            ask = bid + t
        return bid, ask

    def _requote(self, mk: _Mkt, fill: bool = True) -> None:
        """Cancel quotes inside the band, make sure the top levels and depth exist."""
        if mk.closing:
            return
        bid, ask = self._band(mk)
        for oid, (is_bid, p) in list(mk.orders.items()):
            if (is_bid and p > bid) or (not is_bid and p < ask):
                self._cancel(mk, oid)
        have_b = {p for b, p in mk.orders.values() if b}
        have_a = {p for b, p in mk.orders.values() if not b}
        t = mk.tick.micros
        r = self.rng
        for i in range(self.levels if fill else 2):
            if bid - i * t not in have_b and (i == 0 or r.random() < 0.92):
                self._place(mk, True, bid - i * t, self._size())
            if ask + i * t not in have_a and (i == 0 or r.random() < 0.92):
                self._place(mk, False, ask + i * t, self._size())

    def _churn(self, mk: _Mkt) -> None:
        """Refill a missing level of a thin side, else cancel a quote or add size to one."""
        r = self.rng
        is_bid = r.random() < 0.5
        bid, ask = self._band(mk)
        t = mk.tick.micros
        lv = self.levels
        have = {p for b, p in mk.orders.values() if b == is_bid}
        if is_bid:
            ladder = [bid - i * t for i in range(lv + 4) if bid - i * t > 0]
        else:
            ladder = [ask + i * t for i in range(lv + 4) if ask + i * t < MICROS]
        missing = [p for p in ladder if p not in have]
        if len(have) < min(lv, len(ladder)) and missing:
            self._place(mk, is_bid, r.choice(missing[:8]), self._size())
            return
        mine = sorted(o for o, (b, _) in mk.orders.items() if b == is_bid)
        if mine and r.random() < 0.5:
            self._cancel(mk, r.choice(mine))
        elif have:
            self._place(mk, is_bid, r.choice(sorted(have)), self._size())

    def _take(self, mk: _Mkt) -> None:
        """A taker sweeps 1-3 levels with a FAK BUY on YES or NO."""
        r = self.rng
        buy_yes = r.random() < 0.5
        book = self.ex.book_json(mk.m.token_ids[0 if buy_yes else 1])
        asks = book.get("asks") or []
        if not asks:
            return
        t = mk.tick.micros
        best = parse_micros(asks[-1]["price"])
        limit = min(MICROS - t, best + r.randint(0, 2) * t)
        size = self._size() * r.randint(1, 3)
        taker = sim_address(f"taker-{r.randint(1, 4)}")
        if taker not in self._funded:
            self._funded.add(taker)
            self.ex.fund(taker, 1_000_000_000 * MICROS)
            self.ex.approve(taker, update=True)
        res = self.ex.place(
            taker, mk.m.token_ids[0 if buy_yes else 1], "BUY", limit // t, size, "FAK"
        )
        self.orders_placed += 1
        self.takes_rejected += not res.success  # e.g. under the $1 marketable minimum
        self._refresh(mk)
        # informed flow: the price leans the way the taker traded
        self._set_fair(mk, mk.fair + (t if buy_yes else -t) * r.randint(0, 1))
        self._requote(mk, fill=False)

    def _set_fair(self, mk: _Mkt, fair: int) -> None:
        """Move the centre (clamped to (0.005, 0.995)) and switch grids at 0.04 / 0.96 (back
        to 0.01 inside [0.05, 0.95] once no resting order is off the coarse grid)."""
        mk.fair = max(5_000, min(MICROS - 5_000, fair))
        yes = mk.m.token_ids[0]
        mk.tick = self.ex.grid(yes)
        extreme = mk.fair < 40_000 or mk.fair > 960_000
        if extreme and mk.tick == _COARSE:
            self._set_tick(mk, _FINE)
        elif 50_000 <= mk.fair <= 950_000 and mk.tick == _FINE:
            for oid, (_, p) in list(mk.orders.items()):
                if p % _COARSE.micros:
                    self._cancel(mk, oid)
            book = self.ex.book_json(yes)
            if all(
                parse_micros(lv["price"]) % _COARSE.micros == 0
                for lv in (*book["bids"], *book["asks"])
            ):
                self._set_tick(mk, _COARSE)

    def _set_tick(self, mk: _Mkt, tick: TickSize) -> None:
        mk.tick = tick
        self.ex.set_tick_size(mk.m.token_ids[0], tick.text)

    # -- shocks --------------------------------------------------------------------------------
    def _dislocate(self, group: list[_Mkt]) -> None:
        """A shock to a neg-risk event, lasting until the next renorm: one outcome jumps, or
        the whole event sells off (YES asks may then sum below $1 for seconds)."""
        r = self.rng
        if r.random() < 0.5:
            mk = r.choice(group)
            self._set_fair(mk, mk.fair + r.choice((-1, 1)) * r.randint(3, 6) * mk.tick.micros)
            self._requote(mk, fill=False)
            return
        for mk in group:
            self._set_fair(mk, mk.fair - r.randint(1, 3) * mk.tick.micros)
            self._requote(mk, fill=False)

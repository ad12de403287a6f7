"""Top-of-book sum windows: when buying (or selling) one of every outcome beat the $1 payout.

For each outcome group the monitor tracks Σ best ask (buy-side set) and Σ best bid (sell-side
set) after every event that touches the group, and records each window during which
Σ asks < $1 or Σ bids > $1: start, end, duration, best sum. Binary windows are labelled
``stale_leg`` (the mirrored books disagree, so it cannot last); neg-risk windows ``structural``.

Times are the local receive times (ns) of the frames that opened and closed the window, so
durations compare directly with polylab's own reaction time.
"""

from __future__ import annotations

from typing import Literal

import msgspec

from polylab.book.l2 import L2Book
from polylab.market import MarketCatalog, OutcomeGroup
from polylab.money import MICROS

__all__ = ["SumMonitor", "SumPoint", "Window"]


class Window(msgspec.Struct, frozen=True, kw_only=True):
    """One span during which a complete set was mispriced at top of book.

    ``side``: "buy" (Σ asks < $1) or "sell" (Σ bids > $1). ``best_sum``: the most favourable sum
    seen, price micros. ``edge``: |$1 − best_sum| micros per set. ``end_ns`` is 0 while open.
    """

    group: str
    kind: Literal["binary", "negrisk"]
    label: Literal["stale_leg", "structural"]
    side: Literal["buy", "sell"]
    start_ns: int
    end_ns: int
    best_sum: int
    edge: int
    updates: int

    @property
    def duration_ns(self) -> int:
        """Window length in ns (0 while still open)."""
        return self.end_ns - self.start_ns if self.end_ns else 0


class SumPoint(msgspec.Struct, frozen=True, gc=False, array_like=True):
    """One observation of a group's sums (price micros), for time series."""

    recv_ns: int
    group: str
    ask_sum: int
    bid_sum: int


class _Open:
    __slots__ = ("best", "start", "updates")

    def __init__(self, start: int, best: int) -> None:
        self.start = start
        self.best = best
        self.updates = 1


class SumMonitor:
    """Watches outcome groups; call ``on_market(market_id, recv_ns)`` after each event."""

    def __init__(
        self, catalog: MarketCatalog, books: dict[str, L2Book], *, keep_series: bool = False
    ) -> None:
        self.books = books
        self.catalog = catalog
        self.keep_series = keep_series
        self.series: list[SumPoint] = []
        self.windows: list[Window] = []
        self.checks = 0
        self._open_buy: dict[str, _Open] = {}
        self._open_sell: dict[str, _Open] = {}
        self._markets = catalog.markets
        self._by_market: dict[str, list[OutcomeGroup]] = {}
        self._gbooks: dict[str, list[L2Book]] = {}  # a token's L2Book is never replaced
        self._known = -1
        self.refresh()

    def refresh(self) -> None:
        """Rebuild the market → groups map (after the catalog grew)."""
        self._by_market = {}
        self._gbooks = {}
        for g in self.catalog.groups():
            for m in g.markets:
                self._by_market.setdefault(m, []).append(g)
        self._known = len(self._markets)

    def on_market(self, market: str, recv_ns: int) -> None:
        """Re-check every group that contains ``market``."""
        if len(self._markets) != self._known:
            self.refresh()
        groups = self._by_market.get(market)
        if groups is None:
            return
        open_buy, open_sell = self._open_buy, self._open_sell
        gbooks = self._gbooks
        for g in groups:
            legs = gbooks.get(g.id)
            if legs is None:
                found = [b for t in g.token_ids if (b := self.books.get(t)) is not None]
                if len(found) != len(g.token_ids):
                    continue
                legs = gbooks[g.id] = found
            ask = bid = 0
            for b in legs:
                ask += b.ask_px
                bid += b.bid_px
            self.checks += 1
            if self.keep_series:
                self.series.append(SumPoint(recv_ns, g.id, ask, bid))
            gid = g.id
            if ask < MICROS or gid in open_buy:
                self._track(g, "buy", open_buy, ask < MICROS, ask, recv_ns)
            if bid > MICROS or gid in open_sell:
                self._track(g, "sell", open_sell, bid > MICROS, bid, recv_ns)

    def _track(
        self,
        g: OutcomeGroup,
        side: Literal["buy", "sell"],
        opened: dict[str, _Open],
        active: bool,
        value: int,
        now: int,
    ) -> None:
        w = opened.get(g.id)
        if active:
            if w is None:
                opened[g.id] = _Open(now, value)
            else:
                w.updates += 1
                w.best = min(w.best, value) if side == "buy" else max(w.best, value)
        elif w is not None:
            del opened[g.id]
            self._close(g, side, w, now)

    def _close(self, g: OutcomeGroup, side: Literal["buy", "sell"], w: _Open, end: int) -> None:
        self.windows.append(
            Window(
                group=g.id,
                kind=g.kind,
                label="stale_leg" if g.kind == "binary" else "structural",
                side=side,
                start_ns=w.start,
                end_ns=end,
                best_sum=w.best,
                edge=abs(MICROS - w.best),
                updates=w.updates,
            )
        )

    def finish(self, now_ns: int) -> list[Window]:
        """Close every open window at ``now_ns`` and return all windows, best edge first."""
        groups = {g.id: g for gs in self._by_market.values() for g in gs}
        for side, opened in (("buy", self._open_buy), ("sell", self._open_sell)):
            for gid, w in opened.items():
                self._close(groups[gid], side, w, now_ns)  # type: ignore[arg-type]
            opened.clear()
        self.windows.sort(key=lambda w: (-w.edge, w.start_ns))
        return self.windows

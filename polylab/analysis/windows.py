"""Top-of-book sum windows: when buying (or selling) one of every outcome beat the $1 payout.

For each outcome group the monitor tracks Σ best ask (buy-side set) and Σ best bid (sell-side
set) after every event that touches the group, and records each window during which
Σ asks < $1 or Σ bids > $1: start, end, duration, best sum.

Labels are measured, not read off the group type (``label_window``): a binary window is
``stale_leg`` when, at the moment it opens, the two mirrored books disagree (YES bid ≠ $1 − NO
ask or YES ask ≠ $1 − NO bid: one leg has not caught up, so it cannot last); any other window
is ``structural`` only when it outlives ``structural_multiple`` × polylab's own measured
reaction time (tick-to-order), else ``transient`` (gone before polylab could have acted on it
with margin).

Times are the local receive times (ns) of the frames that opened and closed the window, so
durations compare directly with polylab's own reaction time.
"""

from __future__ import annotations

from typing import Literal

import msgspec

from polylab.analysis.window_types import Label, SumPoint, Window, WindowConfig, label_window
from polylab.book.l2 import L2Book
from polylab.market import MarketCatalog, OutcomeGroup
from polylab.money import MICROS

__all__ = [
    "Label",
    "SumMonitor",
    "SumPoint",
    "Window",
    "WindowConfig",
    "label_window",
    "mirror_gap",
]


def mirror_gap(yes: L2Book, no: L2Book) -> int:
    """How far two mirrored books disagree (price micros; 0 when they agree): the larger of
    |YES bid − ($1 − NO ask)| and |YES ask − ($1 − NO bid)|. Empty sides mirror each other
    (no bid is a bid of 0, no ask an ask of $1)."""
    return max(abs(yes.bid_px - (MICROS - no.ask_px)), abs(yes.ask_px - (MICROS - no.bid_px)))


class _Open:
    __slots__ = ("best", "gap", "start", "updates")

    def __init__(self, start: int, best: int, gap: int) -> None:
        self.start = start
        self.best = best
        self.gap = gap
        self.updates = 1


class SumMonitor:
    """Watches outcome groups; call ``on_market(market_id, recv_ns)`` after each event.

    ``reaction_ns`` (ns) and ``config`` label windows as they close; ``finish`` relabels them
    with the reaction time the run finally measured."""

    def __init__(
        self,
        catalog: MarketCatalog,
        books: dict[str, L2Book],
        *,
        keep_series: bool = False,
        config: WindowConfig | None = None,
    ) -> None:
        self.books = books
        self.catalog = catalog
        self.keep_series = keep_series
        self.config = config or WindowConfig()
        self.reaction_ns = self.config.default_reaction_ns
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
                self._track(g, legs, "buy", open_buy, ask < MICROS, ask, recv_ns)
            if bid > MICROS or gid in open_sell:
                self._track(g, legs, "sell", open_sell, bid > MICROS, bid, recv_ns)

    def _track(
        self,
        g: OutcomeGroup,
        legs: list[L2Book],
        side: Literal["buy", "sell"],
        opened: dict[str, _Open],
        active: bool,
        value: int,
        now: int,
    ) -> None:
        w = opened.get(g.id)
        if active:
            if w is None:
                gap = mirror_gap(legs[0], legs[1]) if g.kind == "binary" else 0
                opened[g.id] = _Open(now, value, gap)
            else:
                w.updates += 1
                w.best = min(w.best, value) if side == "buy" else max(w.best, value)
        elif w is not None:
            del opened[g.id]
            self._close(g, side, w, now)

    def _label(self, gap: int, duration_ns: int) -> Label:
        return label_window(gap > 0, duration_ns, self.reaction_ns, self.config.structural_multiple)

    def _close(self, g: OutcomeGroup, side: Literal["buy", "sell"], w: _Open, end: int) -> None:
        self.windows.append(
            Window(
                group=g.id,
                kind=g.kind,
                label=self._label(w.gap, end - w.start),
                side=side,
                start_ns=w.start,
                end_ns=end,
                best_sum=w.best,
                edge=abs(MICROS - w.best),
                updates=w.updates,
                mirror_gap=w.gap,
            )
        )

    def finish(self, now_ns: int, *, reaction_ns: int | None = None) -> list[Window]:
        """Close every open window at ``now_ns`` and return all windows, best edge first,
        labelled with ``reaction_ns`` (the run's measured reaction time, ns) when given."""
        if reaction_ns:
            self.reaction_ns = reaction_ns
        groups = {g.id: g for gs in self._by_market.values() for g in gs}
        for side, opened in (("buy", self._open_buy), ("sell", self._open_sell)):
            for gid, w in opened.items():
                self._close(groups[gid], side, w, now_ns)  # type: ignore[arg-type]
            opened.clear()
        self.windows = [
            msgspec.structs.replace(w, label=lb)
            if (lb := self._label(w.mirror_gap, w.end_ns - w.start_ns)) != w.label
            else w
            for w in self.windows
        ]
        self.windows.sort(key=lambda w: (-w.edge, w.start_ns))
        return self.windows

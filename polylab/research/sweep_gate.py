"""The shared checks that let one replay drive many engines cheaply, exactly.

``TopOfBookGate`` tells, per event, which configs' strategies could act on it at all (their
``min_edge`` against the best asks); ``Fleet`` calls only the engines that have something to
do and lets the idle ones sleep through the rest. Neither changes what any engine decides:
``research.sweep``'s tests compare every config with its own backtest.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from polylab.analysis.set_cost import GroupIndex, GroupLegs, top_sum
from polylab.book.l2 import L2Book
from polylab.domain import Game, Intent
from polylab.engine import Engine
from polylab.feed.wire import Book, LeanPriceChange, MarketResolved, PriceChange
from polylab.market import MarketCatalog
from polylab.money import MICROS
from polylab.strategy.base import Context, Strategy
from polylab.strategy.clipper import Clipper
from polylab.strategy.sum_to_100 import SumTo100

__all__ = ["NO_BOOK", "Fleet", "TopOfBookGate"]


NO_BOOK = -(2**62)
"""``TopOfBookGate.need`` of an event ``Engine.on_applied`` takes no token from (trades,
best bid/ask hints, tick sizes, new markets): no strategy hears of it, every engine is quiet."""


class TopOfBookGate:
    """One check for all configs: which of them could act on this book change?

    SumTo100 and Clipper only buy sets, and both return nothing for a group whose best asks
    plus ``min_edge`` already reach $1 (``no_edge_at_top``; a missing book is nothing too).
    The books a strategy sees are the registry's net of its own claims, which only take
    liquidity away (best asks never improve), so when the registry's best asks rule a group
    out at a config's ``min_edge``, they rule it out for that config. Per event the gate finds
    ``need``, the least ``min_edge`` that rules out every group of the changed tokens
    ($1 − the lowest Σ best asks, micros); a config whose (smallest) ``min_edge`` reaches it
    only advances its clock, claims and timers (``Engine.on_quiet``), which changes nothing
    but the strategies' diagnostic ``checks``; the others run ``on_applied``. Timers are gated
    the same way over all groups. Any other strategy, or an engine with observers, turns the
    gate off (every engine runs ``on_applied``)."""

    def __init__(
        self, catalog: MarketCatalog, books: dict[str, L2Book], engines: Sequence[Engine]
    ) -> None:
        self.on = bool(engines) and all(
            e.strategies
            and all(type(s) in (SumTo100, Clipper) for s in e.strategies)
            and not e.observers
            for e in engines
        )
        self.edges = [
            min(getattr(getattr(s, "config", None), "min_edge_micros", 0) for s in e.strategies)
            if self.on
            else 0
            for e in engines
        ]
        self._index = GroupIndex(catalog)
        self._books = books
        self.version = 0
        self._cached = (-1, 0)

    def _need(self, groups: Iterable[GroupLegs]) -> int:
        low = 2 * MICROS  # above any sum: with no complete group, every min_edge ≥ 0 is quiet
        books = self._books
        for g in groups:
            s = top_sum(g, books, True)
            if s is not None and s < low:
                low = s
        return MICROS - low

    def timer_need(self) -> int:
        """``need`` over every group (a timer evaluates them all), once per registry state
        (``version``, bumped per event)."""
        if self._cached[0] != self.version:
            self._index.sync()
            self._cached = (self.version, self._need(self._index.groups))
        return self._cached[1]

    def gated(self, s: Strategy, edge: int) -> Strategy:
        """``s`` with its timer skipped while ``edge`` reaches ``timer_need``."""
        return _TimerGated(s, self, edge) if self.on else s

    def need(self, ev: Any) -> int | None:
        """The least ``min_edge`` that cannot act on ``ev`` (already applied; micros), or
        None when the gate cannot tell (off, a resolution, a price change of no token).
        ``NO_BOOK`` for an event no strategy hears of."""
        if not self.on:
            return None
        tev = type(ev)
        if tev is PriceChange or tev is LeanPriceChange:
            tokens: Any = {e.asset_id for e in ev.price_changes or ()}
        elif tev is Book:
            tokens = (ev.asset_id,)
        elif tev is MarketResolved:
            return None
        else:
            return NO_BOOK
        if not tokens:  # no token: on_applied syncs no claims; keep to its path
            return None
        idx = self._index
        idx.sync()
        by = idx.by_token
        return self._need(g for tok in tokens for g in by.get(tok, ()))


class _TimerGated:
    """A strategy whose ``on_timer`` is skipped while the gate rules every group out (its
    other hooks are the strategy's own bound methods: no extra call on the hot path)."""

    def __init__(self, inner: Strategy, gate: TopOfBookGate, edge: int) -> None:
        self.inner = inner
        self.name = inner.name
        self.on_book: Callable[[Context, str], list[Intent]] = inner.on_book
        self.on_games: Callable[[Context, list[Game]], list[Intent]] = inner.on_games
        self._gate = gate
        self._edge = edge

    def on_timer(self, ctx: Context) -> list[Intent]:
        if self._edge >= self._gate.timer_need():
            return []
        return self.inner.on_timer(ctx)


class Fleet:
    """The engines of one shared replay, by ``min_edge``, the idle ones asleep.

    For an engine with nothing in flight (``Engine.idle``) and no timer due, a quiet event
    (``Engine.on_quiet``) only moves its clock and its event counter. Such an engine is not
    called at all: it sleeps, and when something concerns it (an event its ``min_edge`` may
    act on, a timer, a scoreboard, the end) it is woken and told how many events it missed
    (``Engine.skip``). Every engine sees the same event times, so their timers fall due on the
    same events: a due timer wakes them all. Without the gate nobody sleeps."""

    def __init__(self, engines: list[Engine], edges: list[int], gate_on: bool) -> None:
        self.engines = engines
        self.edges = edges
        self.can_sleep = gate_on
        self.n = 0  # market events handed out so far
        self.prev = 0  # the time of the last one (ns)
        self.since = [0] * len(engines)  # event number each fell asleep after; -1: awake
        self.awake: list[int] = []
        if not gate_on:
            self.wake_all(0)

    def wake(self, p: int, through: int) -> None:
        """Wake engine ``p``, which missed every event after it fell asleep up to number
        ``through``."""
        missed = through - self.since[p]
        if missed > 0:
            self.engines[p].skip(missed, self.prev)
        self.since[p] = -1
        self.awake.append(p)

    def wake_all(self, through: int) -> None:
        """Wake every sleeping engine (see ``wake``)."""
        for p in range(len(self.engines)):
            if self.since[p] >= 0:
                self.wake(p, through)

    def before(self, now: int) -> None:
        """Orders due at ``now`` (only awake engines can have any), before the event applies."""
        engines = self.engines
        for p in self.awake:
            engines[p].poll_due(now)

    def after(self, ev: Any, now: int, need: int | None) -> None:
        """The event at ``now``, applied: ``on_applied`` for the engines that may act on it
        (``min_edge`` < ``need``; all when ``need`` is None), ``on_quiet`` for the others."""
        self.n += 1
        engines = self.engines
        if not engines:
            return
        if need is None or engines[0].timer_due(now):
            self.wake_all(self.n - 1)
        if need is None:
            k = len(engines)
        elif need == NO_BOOK:
            k = 0
        else:
            k = bisect_left(self.edges, need)
        since = self.since
        for p in range(k):
            if since[p] >= 0:
                self.wake(p, self.n - 1)
            engines[p].on_applied(ev, now)
        book = need != NO_BOOK
        for p in self.awake:
            if p >= k:
                engines[p].on_quiet(now, book=book)
        self.prev = now
        self.settle()

    def settle(self) -> None:
        """Put the engines that have nothing in flight to sleep."""
        if not self.can_sleep:
            return
        keep = []
        engines, n = self.engines, self.n
        for p in self.awake:
            if engines[p].idle():
                self.since[p] = n
            else:
                keep.append(p)
        self.awake = keep

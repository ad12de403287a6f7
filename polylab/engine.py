"""The one engine: source → books → analysis → strategies → risk → executor → results.

Backtest, paper and live run this same loop; only the clock, the source of events and the
executor differ. Handlers are synchronous and short: decoding and book updates happen inline,
strategies return intents, risk checks are atomic, and the executor's ``submit`` never blocks
(signing, sending, storage and publishing happen elsewhere). Results go to sinks (a run
recorder, later a bus and a store).

One view of liquidity: every approved intent claims the shares its legs will take
(``book.claims``), and strategies read the books net of those claims (``Engine.books``) until
the venue's book shows the fill or the intent ends, so two strategies never chase the same
shares. Executors and observers see the venue's books as they are.

Units: prices in price micros, sizes in share micros, cash in micros, times in ns.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from time import perf_counter_ns
from typing import TYPE_CHECKING, Any, Protocol

import msgspec

from polylab.book.claims import ClaimLedger
from polylab.book.registry import BookRegistry
from polylab.domain import Game, Intent
from polylab.execution.base import ResidualRecord
from polylab.feed.wire import Book, LeanPriceChange, MarketResolved, PriceChange
from polylab.risk.manager import Decision, Rejected
from polylab.samples import LatestSamples
from polylab.strategy.base import Strategy

if TYPE_CHECKING:
    from polylab.book.l2 import L2Book
    from polylab.domain import ExecutionResult
    from polylab.execution.base import Executor
    from polylab.market import MarketCatalog
    from polylab.risk.manager import RiskManager
    from polylab.risk.portfolio import Portfolio

__all__ = [
    "Engine",
    "EngineConfig",
    "EngineStats",
    "ErrorRecord",
    "IntentRecord",
    "RejectionRecord",
    "ResultSink",
    "StrategyError",
]

log = logging.getLogger(__name__)

REACTION_SAMPLES = 4_096
"""Reaction-time samples kept: the latest ones (a ring), so a long run reports its current
latency; 4,096 puts p99 on the 41st largest."""


class StrategyError(RuntimeError):
    """A strategy raised; the engine logs it, counts it and carries on without its intents."""


class ResultSink(Protocol):
    """Where the engine's results go (run recorder, bus, store). Must not block."""

    def record(self, kind: str, row: msgspec.Struct) -> None:
        """``kind``: opportunities | intents | rejections | orders | fills | merges |
        settlements | residuals | errors."""
        ...


class EngineConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Engine knobs.

    ``cooldown_ms``: after an intent for a (strategy, group) completes or is rejected, ignore
    that strategy's intents for the same group this long (the book it saw may not reflect our
    own fill yet; a limit that refused it will refuse it again).
    ``timer_hz``: strategy timer rate. ``merge_sets``: merge complete sets into collateral as
    soon as they are held.
    ``net_books``: show strategies the books net of what approved intents in flight have
    claimed (``book.claims``); False shows the venue's books as they are.
    ``claim_hold_ms``: after an intent's result, how long a filled leg's claim may wait for
    the book to show the fill (ms); ``claim_ttl_ms``: the most any claim lives (ms).
    """

    cooldown_ms: int = 250
    timer_hz: float = 10.0
    merge_sets: bool = True
    net_books: bool = True
    claim_hold_ms: int = 1_000
    claim_ttl_ms: int = 30_000


class EngineStats(msgspec.Struct):
    """Engine counters (exposed for metrics and summaries)."""

    events: int = 0
    intents: int = 0
    approved: int = 0
    rejected: int = 0
    suppressed: int = 0
    results: int = 0
    strategy_errors: int = 0
    timers: int = 0
    unfilled_legs: int = 0
    """Legs that found less than their size at their limit (status unfilled or partial)."""
    unwind_fills: int = 0
    """Orders the executor sent, and that filled, to undo a set's uneven legs."""
    unknown_legs: int = 0
    """Legs whose outcome the venue could not tell (status unknown): their intent's risk
    reservation stays held until ``resolve_unknown``, never released as if nothing filled."""


class IntentRecord(msgspec.Struct, frozen=True, kw_only=True):
    """An intent as the engine saw it (for the run's tables)."""

    intent_id: str
    strategy: str
    group_id: str
    kind: str
    legs: int
    edge: int
    created_ns: int
    reason: str


class RejectionRecord(msgspec.Struct, frozen=True, kw_only=True):
    """A risk rejection, recorded and published like a fill."""

    intent_id: str
    strategy: str
    group_id: str
    rule: str
    reason: str
    ts_ns: int


class ErrorRecord(msgspec.Struct, frozen=True, kw_only=True):
    """Something that went wrong without stopping the engine."""

    source: str
    error: str
    ts_ns: int


class Engine:
    """Wires books, strategies, risk and an executor; implements the strategies' ``Context``."""

    def __init__(
        self,
        *,
        registry: BookRegistry,
        strategies: Iterable[Strategy],
        risk: RiskManager,
        executor: Executor,
        portfolio: Portfolio,
        sinks: Iterable[ResultSink] = (),
        config: EngineConfig | None = None,
        observers: Iterable[Callable[[str, int], None]] = (),
    ) -> None:
        self.registry = registry
        self.strategies = list(strategies)
        self.risk = risk
        self.executor = executor
        self.portfolio = portfolio
        self.sinks = list(sinks)
        self.config = config or EngineConfig()
        self.observers = list(observers)
        self.unresolved: dict[str, ExecutionResult] = {}
        """Results with legs of unknown outcome, by intent id (see ``resolve_unknown``)."""
        self.decision_hooks: list[Callable[[str, Intent, Decision, int], None]] = []
        """Called with (intent id, intent, the risk gate's decision, ns) for every intent that
        reached the gate: the runner publishes these as signals. Must not block."""
        self.stats = EngineStats()
        self._now = 0
        self._seq = 0
        self._next_timer = 0
        self._timer_ns = int(1e9 / self.config.timer_hz)
        self._busy: dict[tuple[str, str], int] = {}
        self._cooldown_ns = self.config.cooldown_ms * 1_000_000
        self._handlers = registry.handlers
        self._open: dict[str, Intent] = {}
        if risk.catalog is None:  # the gate resolves tokens and tick grids through these
            risk.bind(registry.catalog, registry.books)
        self.claims: ClaimLedger | None = (
            ClaimLedger(
                hold_ns=self.config.claim_hold_ms * 1_000_000,
                ttl_ns=self.config.claim_ttl_ms * 1_000_000,
            )
            if self.config.net_books
            else None
        )
        bind = getattr(executor, "bind_books", None)
        if bind is not None:  # the executor sizes orders on the current books at submit
            bind(registry.books)
        self._t_in = 0
        self.reaction_ns = LatestSamples(REACTION_SAMPLES)
        """Reaction samples (ns, perf counter): from the engine taking a market event (after
        the book update) to an approved intent handed to the executor (scoreboards and bare
        timer ticks are not market reactions); the latest ``REACTION_SAMPLES``, with the
        count of all in ``reaction_ns.total``."""

    # -- Context ---------------------------------------------------------------------------------
    @property
    def books(self) -> dict[str, L2Book]:
        """Books by token id, net of what our own intents in flight have claimed."""
        cl = self.claims
        if cl is None:
            return self.registry.books
        return cl.books(self.registry.books)

    @property
    def catalog(self) -> MarketCatalog:
        """Markets and outcome groups."""
        return self.registry.catalog

    def now_ns(self) -> int:
        """The engine clock: the receive time of the event being handled (ns)."""
        return self._now

    def position(self, token_id: str) -> int:
        """Shares of ``token_id`` held (micros)."""
        return self.portfolio.position(token_id)

    def budget(self, group_id: str, token_ids: tuple[str, ...]) -> int:
        """What the risk gate would still approve on this group (cash micros)."""
        return self.risk.headroom(group_id, token_ids, now_ns=self._now)

    # -- inputs ----------------------------------------------------------------------------------
    def on_event(self, ev: Any, recv_ns: int) -> None:
        """One market event received at ``recv_ns``: books, observers, strategies, risk, exec.

        Orders due by ``recv_ns`` are filled first, against the books as they stood when the
        orders arrived, before this event changes them."""
        if self.executor.pending():
            for res in self.executor.poll(recv_ns, self.registry.books):
                self._finish(res, recv_ns)
        self._handlers[type(ev)](ev, recv_ns)
        self.on_applied(ev, recv_ns)

    def poll_due(self, recv_ns: int) -> None:
        """Book the orders due by ``recv_ns`` against the books as they stand, before an event
        stamped ``recv_ns`` changes them: what ``on_event`` does first, for a source that
        applies events itself (the live market feed) and then calls ``on_applied``."""
        if self.executor.pending():
            for res in self.executor.poll(recv_ns, self.registry.books):
                self._finish(res, recv_ns)

    def reaction_p50_ns(self) -> int:
        """Median of the latest reaction times measured this run (ns; 0 before the first
        intent)."""
        return self.reaction_ns.quantile(0.5)

    def on_applied(self, ev: Any, recv_ns: int) -> None:
        """``on_event`` for a source that already applied ``ev`` to the registry (the live
        market feed keeps the books itself)."""
        self._t_in = perf_counter_ns()
        self._now = recv_ns
        self.stats.events += 1
        tev = type(ev)
        if tev is PriceChange or tev is LeanPriceChange:
            tokens = {e.asset_id for e in ev.price_changes or ()}
        elif tev is Book:
            tokens = {ev.asset_id}
        else:
            tokens = set()
            if tev is MarketResolved:
                self._settle(ev, recv_ns)
        if tokens:
            for obs in self.observers:
                obs(ev.market, recv_ns)
            cl = self.claims
            if cl is not None and cl.active:
                cl.sync(self.registry.books, recv_ns)
            for tok in tokens:
                for s in self.strategies:
                    self._handle(s, self._guard(s, "on_book", s.on_book, tok))
        self._tick(recv_ns)

    def on_quiet(self, recv_ns: int, *, book: bool = True) -> None:
        """``on_applied`` for an event the caller knows no strategy would act on (a sweep's
        shared check), on an engine without observers: a book change of at least one token
        (``book``), or an event it takes no token from and that settles nothing
        (``book=False``: trades, hints, tick sizes, new markets).
        Clock, event counter, claims and timers advance exactly as ``on_applied`` would
        advance them; the strategies' ``on_book`` is skipped."""
        self._t_in = perf_counter_ns()
        self._now = recv_ns
        self.stats.events += 1
        cl = self.claims
        if book and cl is not None and cl.active:
            cl.sync(self.registry.books, recv_ns)
        if recv_ns >= self._next_timer or self.executor.pending():
            self._tick(recv_ns)

    def idle(self) -> bool:
        """Nothing in flight: no order at the executor, no claim outstanding. For an idle
        engine whose timer is not due, ``on_quiet`` only moves the clock and the event counter
        (what ``skip`` does for many events at once)."""
        cl = self.claims
        return not self.executor.pending() and not (cl is not None and cl.active)

    def in_flight(self) -> list[tuple[str, Intent]]:
        """Approved intents whose result has not come back yet, as (intent id, intent), oldest
        first: their legs are the orders in flight (the runner's ``poly:state`` lists them)."""
        return list(self._open.items())

    def timer_due(self, now_ns: int) -> bool:
        """The strategies' timer fires on an event at ``now_ns``."""
        return now_ns >= self._next_timer

    def skip(self, events: int, last_ns: int) -> None:
        """``events`` calls of ``on_quiet`` at once, the last at ``last_ns``, on an engine that
        was ``idle`` with no timer due throughout (a sweep skips such engines)."""
        self.stats.events += events
        self._now = last_ns

    def _settle(self, ev: MarketResolved, now: int) -> None:
        try:
            rec = self.portfolio.settle(ev.market, ev.winning_asset_id, now)
        except ValueError as exc:
            self._emit("errors", ErrorRecord(source="settle", error=str(exc), ts_ns=now))
            return
        if rec is not None:
            self._emit("settlements", rec)

    def on_games(self, games: list[Game], recv_ns: int) -> None:
        """A scoreboard snapshot received at ``recv_ns``."""
        self._t_in = 0  # reaction time is measured from market events only
        self._now = recv_ns
        cl = self.claims
        if cl is not None and cl.active:
            cl.sync(self.registry.books, recv_ns)
        for s in self.strategies:
            self._handle(s, self._guard(s, "on_games", s.on_games, games))
        self._tick(recv_ns)

    def on_time(self, now_ns: int) -> None:
        """Advance the clock without an event (timers, executor polls)."""
        self._t_in = 0
        self._now = max(self._now, now_ns)
        self._tick(self._now)

    def _tick(self, now: int) -> None:
        if now >= self._next_timer:
            if self._next_timer and now - self._next_timer < 10 * self._timer_ns:
                self._next_timer += self._timer_ns
            else:
                self._next_timer = now + self._timer_ns
            self.stats.timers += 1
            cl = self.claims
            if cl is not None and cl.active:
                cl.sync(self.registry.books, now)
            for s in self.strategies:
                self._handle(s, self._guard(s, "on_timer", s.on_timer))
        if self.executor.pending():
            for res in self.executor.poll(now, self.registry.books):
                self._finish(res, now)

    # -- strategy → risk → executor --------------------------------------------------------------
    def _guard(
        self, s: Strategy, hook: str, fn: Callable[..., list[Intent]], *args: Any
    ) -> list[Intent]:
        try:
            return fn(self, *args)
        except Exception as exc:  # a strategy bug must not stop the engine
            self.stats.strategy_errors += 1
            err = StrategyError(f"{s.name}.{hook}: {type(exc).__name__}: {exc}")
            if self.stats.strategy_errors <= 20:
                log.exception("%s", err)
            self._emit("errors", ErrorRecord(source=s.name, error=str(err), ts_ns=self._now))
            return []

    def _handle(self, s: Strategy, intents: list[Intent]) -> None:
        for intent in intents:
            self.submit(intent)

    def submit(self, intent: Intent) -> str | None:
        """Risk-check an intent and hand it to the executor; returns its id if approved."""
        now = self._now
        key = (intent.strategy, intent.group_id)
        busy = self._busy.get(key)
        if busy is not None and (busy < 0 or now < busy):
            self.stats.suppressed += 1
            return None
        self._seq += 1
        iid = f"{intent.strategy}-{self._seq}"
        self.stats.intents += 1
        self._emit(
            "intents",
            IntentRecord(
                intent_id=iid,
                strategy=intent.strategy,
                group_id=intent.group_id,
                kind=intent.kind,
                legs=len(intent.legs),
                edge=intent.edge,
                created_ns=intent.created_ns,
                reason=intent.reason,
            ),
        )
        decision = self.risk.check(iid, intent, now)
        for hook in self.decision_hooks:
            try:
                hook(iid, intent, decision, now)
            except Exception:  # an observer must never stop trading
                log.exception("decision hook %r failed", hook)
        if isinstance(decision, Rejected):
            self.stats.rejected += 1
            self._busy[key] = now + self._cooldown_ns  # do not re-ask before anything changed
            self._emit(
                "rejections",
                RejectionRecord(
                    intent_id=iid,
                    strategy=intent.strategy,
                    group_id=intent.group_id,
                    rule=decision.rule,
                    reason=decision.reason,
                    ts_ns=now,
                ),
            )
            return None
        self.stats.approved += 1
        self._busy[key] = -1
        self._open[iid] = intent
        self.executor.submit(iid, intent, now)
        if self._t_in:
            self.reaction_ns.append(perf_counter_ns() - self._t_in)
        if self.claims is not None:  # after the orders are on their way: off the tick-to-order path
            self.claims.claim(iid, intent.legs, self.registry.books, now)
        return iid

    def resolve_unknown(self, res: ExecutionResult) -> None:
        """Book what an unknown-outcome intent turned out to be (the venue answered later, or
        an operator reconciled it): ``res`` carries only what is newly known (its fills are
        booked), then the intent's reservation is released."""
        if self.unresolved.pop(res.intent_id, None) is None:
            raise KeyError(f"intent {res.intent_id} has no unknown outcome to resolve")
        for row in self.portfolio.apply(res, self.catalog):
            self._emit("fills", row)
        for rep in res.reports:
            self._emit("orders", rep)
        self.risk.release(res.intent_id)

    def _finish(self, res: ExecutionResult, now: int) -> None:
        self.stats.results += 1
        intent = self._open.pop(res.intent_id, res.intent)
        self._busy[(intent.strategy, intent.group_id)] = now + self._cooldown_ns
        if self.claims is not None:
            self.claims.end(res.intent_id, res.reports, self.registry.books, now)
        st = self.stats
        st.unfilled_legs += sum(1 for r in res.reports if r.status in ("unfilled", "partial"))
        st.unwind_fills += sum(1 for r in res.unwound if r.filled > 0)
        fills = self.portfolio.apply(res, self.catalog)
        unknown = sum(1 for r in res.reports if r.status == "unknown")
        if unknown:  # may have filled: keep its worst case against the limits
            st.unknown_legs += unknown
            self.unresolved[res.intent_id] = res
            log.error(
                "intent %s: %d legs with an unknown outcome; its risk reservation stays held "
                "until resolved (Engine.resolve_unknown)",
                res.intent_id,
                unknown,
            )
        else:
            self.risk.release(res.intent_id)
        for row in fills:
            self._emit("fills", row)
        for rep in (*res.reports, *res.unwound):
            self._emit("orders", rep)
        for token_id, shares in res.residual:  # uneven set legs kept as exposure
            self._emit(
                "residuals",
                ResidualRecord(
                    intent_id=res.intent_id,
                    strategy=intent.strategy,
                    group_id=intent.group_id,
                    token_id=token_id,
                    shares=shares,
                    executor=res.executor,
                    ts_ns=now,
                ),
            )
        if self.config.merge_sets and intent.kind == "set":
            for g in self.catalog.groups():
                if g.id == intent.group_id:
                    merged = self.portfolio.merge_sets(g, now)
                    if merged is not None:
                        self._emit("merges", merged)

    def flush(self, now_ns: int, *, timeout_ns: int = 5_000_000_000) -> None:
        """Advance time until every submitted intent has a result (end of a backtest)."""
        end = now_ns + timeout_ns
        t = now_ns
        while self.executor.pending() and t <= end:
            self.on_time(t)
            t += 10_000_000

    def _emit(self, kind: str, row: msgspec.Struct) -> None:
        for sink in self.sinks:
            sink.record(kind, row)

"""Sweeps that share the replay: one decode and one book build per recording feed many configs.

A backtest is decode → books → strategies → risk → paper executor → portfolio. Across the
configs of a sweep only the last four differ, so ``replay_many`` decodes each recording line
and applies each event to one ``BookRegistry`` once, and drives one ``Engine`` per config (its
own strategies, risk gate, paper executor and portfolio) from it: before the event every engine
fills the orders due (``Engine.poll_due``, against the books as they stood), then the event is
applied once, then every engine reacts (``Engine.on_applied``). Each engine sees exactly what it
would have seen alone, so a config's trades, PnL and fees equal those of ``run_backtest`` with
that config (tested); the opportunity observers of a backtest are left out (they do not trade).
Most engines have nothing to do on most events: ``sweep_gate`` finds, once per event, the configs
that cannot act on it (``Engine.on_quiet``) and lets the idle ones sleep (``Engine.skip``).

Per config and recording the result is a ``RunStats`` (raw counts, money in micros, and the
equity marks behind the drawdown); ``combine`` adds a config's recordings up, in order, into one
row. Equity (realized + unrealized, positions marked to the best bid; micros) is marked after
every event that brought a fill, merge or settlement, every ``mark_ms`` of replay time while
anything was traded, and at the end; the max drawdown is the largest fall from a running peak
(starting at 0) of those marks, the recordings chained one after the other.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import msgspec

from polylab.backtest import RecordLoop, load_meta_file, locked_value, sniper_teams
from polylab.book.registry import BookRegistry
from polylab.config import PolylabConfig, build_strategies
from polylab.domain import Game
from polylab.engine import Engine
from polylab.execution.paper import PaperTrader
from polylab.feed.sports import TeamDirectory
from polylab.money import MICROS, cost_micros
from polylab.research.sweep_gate import Fleet, TopOfBookGate
from polylab.risk.manager import RiskManager
from polylab.risk.portfolio import Portfolio

__all__ = [
    "STARTING_CASH_MICROS",
    "ConfigRun",
    "RunStats",
    "combine",
    "max_drawdown",
    "replay_many",
]

log = logging.getLogger(__name__)

STARTING_CASH_MICROS = 10_000 * MICROS
"""Cash each config starts a recording with ($10,000, as ``run_backtest``)."""

_MARK_KINDS = frozenset(("fills", "merges", "settlements"))


class RunStats(msgspec.Struct, kw_only=True):
    """One config over one recording. Money in micros; ``equity``: the marks' PnL (micros),
    in time order; ``sent``/``got``: shares requested / filled over all orders (micros)."""

    trades: int = 0
    intents: int = 0
    rejections: int = 0
    pnl: int = 0
    pnl_at_payout: int = 0
    realized: int = 0
    fees: int = 0
    merges: int = 0
    sent: int = 0
    got: int = 0
    wins: int = 0
    completed: int = 0
    unfilled_legs: int = 0
    unwind_fills: int = 0
    events: int = 0
    malformed: int = 0
    """Lines, frames, levels and records of the recording that were not usable (as a
    backtest counts them)."""
    truncated: bool = False
    """The recording ended early (cut or corrupt compressed data)."""
    equity: list[int] = msgspec.field(default_factory=list)


class ConfigRun:
    """One config's own engine, risk gate, paper executor and portfolio on a shared registry;
    also the engine's result sink (counts orders and notes when equity must be marked)."""

    def __init__(
        self,
        cfg: PolylabConfig,
        registry: BookRegistry,
        starting_cash_micros: int,
        dirty: list[ConfigRun],
    ) -> None:
        self.registry = registry
        self.portfolio = Portfolio(starting_cash_micros)
        self.stats = RunStats()
        self.traded = False
        self._dirty = dirty
        self._flagged = False
        self.engine = Engine(
            registry=registry,
            strategies=build_strategies(cfg),
            risk=RiskManager(cfg.risk, self.portfolio),
            executor=PaperTrader(cfg.paper, registry.catalog),
            portfolio=self.portfolio,
            sinks=[self],
            config=cfg.engine,
        )

    def record(self, kind: str, row: msgspec.Struct) -> None:
        """The engine's results: orders are counted, money moves flag a mark."""
        if kind == "orders":
            self.stats.sent += getattr(row, "requested", 0)
            self.stats.got += getattr(row, "filled", 0)
        elif kind in _MARK_KINDS:
            if kind == "merges":
                self.stats.merges += 1
            self.traded = True
            if not self._flagged:
                self._flagged = True
                self._dirty.append(self)

    def mark(self) -> None:
        """Append the PnL marked at the books as they stand now (micros): realized plus
        each position's value (longs at the best bid, rounded down; shorts at the best ask,
        rounded up: ``Portfolio.snapshot``'s marks) minus its basis."""
        self._flagged = False
        pf = self.portfolio
        pnl = pf.realized
        books = self.registry.books
        for pos in pf.positions().values():
            book = books.get(pos.token_id)
            if pos.shares > 0:
                bid = book.best_bid_micros() if book is not None else 0
                value = cost_micros(bid, pos.shares, round_up=False)
            else:
                ask = book.best_ask_micros() if book is not None else MICROS
                value = -cost_micros(ask, -pos.shares, round_up=True)
            pnl += value - pos.basis
        self.stats.equity.append(pnl)

    def holds(self) -> bool:
        """Any position open (its mark moves with the books)."""
        return bool(self.portfolio.positions())

    def finish(self, now_ns: int) -> RunStats:
        """Flush the orders still due, mark, and fill in the totals."""
        eng = self.engine
        eng.flush(now_ns)
        self.mark()
        snap = self.portfolio.snapshot(self.registry.books)
        st = self.stats
        st.trades = int(snap.trades)
        st.intents = eng.stats.intents
        st.rejections = eng.stats.rejected
        st.realized = int(snap.realized)
        st.pnl = st.realized + int(snap.unrealized)
        st.pnl_at_payout = st.pnl + locked_value(eng, snap, self.registry.catalog)
        st.fees = int(snap.fees)
        st.wins = int(snap.wins)
        st.completed = int(snap.completed)
        st.unfilled_legs = eng.stats.unfilled_legs
        st.unwind_fills = eng.stats.unwind_fills
        st.events = eng.stats.events
        return st


class _SweepLoop(RecordLoop):
    """The shared record loop (``backtest.RecordLoop``) driving every config's engine: before
    each event the engines fill the orders due, then the event is applied once, then they
    react (through the gate's ``Fleet``, which lets idle engines sleep); money moves and the
    replay clock mark equity."""

    def __init__(
        self, registry: BookRegistry, runs: list[ConfigRun], dirty: list[ConfigRun], mark_ms: int
    ) -> None:
        engines = [r.engine for r in runs]
        teams = [sniper_teams(e) for e in engines]
        keys: dict[int, int] = {}  # id(team directory) → index in the loop's distinct list
        distinct: list[TeamDirectory | None] = []
        for t in teams:
            if id(t) not in keys:
                keys[id(t)] = len(distinct)
                distinct.append(t)
        super().__init__(registry, distinct)
        self._by_key: list[list[Engine]] = [[] for _ in distinct]
        for e, t in zip(engines, teams, strict=True):
            self._by_key[keys[id(t)]].append(e)
        self.runs = runs
        self._dirty = dirty
        self._handlers = registry.handlers
        gate = self.gate = TopOfBookGate(registry.catalog, registry.books, engines)
        for e, edge in zip(engines, gate.edges, strict=True):
            e.strategies = [gate.gated(s, edge) for s in e.strategies]
        order = sorted(range(len(engines)), key=gate.edges.__getitem__)
        self.fleet = Fleet([engines[i] for i in order], [gate.edges[i] for i in order], gate.on)
        self._mark_ns = mark_ms * 1_000_000
        self._next_mark = 0

    def on_event(self, ev: Any, now_ns: int) -> None:
        fleet, gate = self.fleet, self.gate
        fleet.before(now_ns)
        self._handlers[type(ev)](ev, now_ns)
        gate.version += 1
        fleet.after(ev, now_ns, gate.need(ev))

    def on_catalog(self) -> None:
        self.gate.version += 1

    def before_games(self) -> None:
        self.gate.version += 1
        self.fleet.wake_all(self.fleet.n)

    def on_games(self, key: int, games: list[Game], now_ns: int) -> None:
        for e in self._by_key[key]:
            e.on_games(games, now_ns)

    def after_games(self) -> None:
        self.fleet.settle()

    def after_record(self, now_ns: int) -> None:
        dirty = self._dirty
        if dirty:
            for r in dirty:
                r.mark()
            dirty.clear()
        if now_ns >= self._next_mark:
            if self._next_mark:
                for r in self.runs:
                    if r.traded and r.holds():
                        r.mark()
            self._next_mark = now_ns + self._mark_ns


def replay_many(
    recording: str | Path,
    configs: Sequence[PolylabConfig],
    *,
    meta: str | Path | None = None,
    starting_cash_micros: int = STARTING_CASH_MICROS,
    mark_ms: int = 1_000,
) -> list[RunStats]:
    """Run every config over ``recording`` on one shared replay (``_SweepLoop``); one
    ``RunStats`` per config, in order. ``meta``: a metadata file for a recording that has no
    ``meta`` records."""
    reg = BookRegistry()
    if meta is not None:
        load_meta_file(meta, reg.catalog)
    dirty: list[ConfigRun] = []
    runs = [ConfigRun(c, reg, starting_cash_micros, dirty) for c in configs]
    loop = _SweepLoop(reg, runs, dirty, mark_ms)
    end_ns = loop.run(recording)
    loop.fleet.wake_all(loop.fleet.n)
    out = [r.finish(end_ns) for r in runs]
    reader = loop.reader
    for st in out:
        st.malformed = loop.malformed
        st.truncated = reader.truncated if reader is not None else False
    return out


def max_drawdown(equity: Sequence[int]) -> int:
    """Largest fall from a running peak (starting at 0) of PnL marks (micros)."""
    peak = 0
    worst = 0
    for v in equity:
        if v > peak:
            peak = v
        elif peak - v > worst:
            worst = peak - v
    return worst


def combine(parts: Sequence[RunStats]) -> dict[str, Any]:
    """One config's recordings added up, in order (money in micros; fill rate = shares filled /
    requested; win rate = winning / completed trades; drawdown over the chained equity)."""
    tot = RunStats()
    truncated = 0
    chained: list[int] = []
    offset = 0
    for p in parts:
        for f in ("trades", "intents", "rejections", "pnl", "pnl_at_payout", "realized", "fees"):
            setattr(tot, f, getattr(tot, f) + getattr(p, f))
        for f in ("merges", "sent", "got", "wins", "completed", "unfilled_legs", "unwind_fills"):
            setattr(tot, f, getattr(tot, f) + getattr(p, f))
        tot.events += p.events
        tot.malformed += p.malformed
        truncated += p.truncated
        chained.extend(offset + v for v in p.equity)
        offset += p.equity[-1] if p.equity else 0
    return {
        "trades": tot.trades,
        "intents": tot.intents,
        "rejections": tot.rejections,
        "pnl_micros": tot.pnl,
        "pnl_at_payout_micros": tot.pnl_at_payout,
        "realized_micros": tot.realized,
        "fees_micros": tot.fees,
        "max_drawdown_micros": max_drawdown(chained),
        "fill_rate": round(tot.got / tot.sent, 6) if tot.sent else 0.0,
        "win_rate": round(tot.wins / tot.completed, 6) if tot.completed else 0.0,
        "merges": tot.merges,
        "unfilled_legs": tot.unfilled_legs,
        "unwind_fills": tot.unwind_fills,
        "events": tot.events,
        "malformed": tot.malformed,
        "truncated_recordings": truncated,
    }

"""Backtest a recording on the one engine: replay clock, recorded source, paper executor.

Market frames drive the books and strategies, ``meta`` records feed the catalog (pairs,
neg-risk groups, fees, sports mappings), ``sports`` records are scoreboard snapshots for the
Sniper (parsed with the Sniper's team directory, as the paper session's poller does). A
separate metadata file (the same ``{"markets": [...]}`` JSON) can stand in for a recording that
has none. The result is a summary plus the run recorder's tables.

``feed`` records (written by paper and live sessions) mark a book the live feed stopped trusting
(``{"asset_id": …, "needs_snapshot": true}`` after a gap or a disconnect) until its next
snapshot, as the session's feed did.

Time is event time (``polylab.clock.ReplayClock``): each record's ``recv_ns``, never going back;
the run ends at the last one. A paper session runs on the same clock over the same stamps, so a
backtest of its ``feed.jsonl.zst`` replays it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import msgspec

from polylab.analysis.opportunities import OpportunityTracker
from polylab.analysis.windows import SumMonitor
from polylab.book.registry import BookRegistry
from polylab.clock import ReplayClock
from polylab.config import PolylabConfig, build_strategies, config_id
from polylab.domain import Game
from polylab.engine import Engine
from polylab.execution.base import Executor
from polylab.execution.paper import PaperTrader
from polylab.feed.decode import market_decoder
from polylab.feed.recording import RecordingReader, decode_meta
from polylab.feed.sports import ScoreboardError, TeamDirectory
from polylab.feed.sports_reconcile import Reconciler
from polylab.feed.sports_sources import sports_payload_games
from polylab.market import MarketCatalog
from polylab.money import MICROS, cash_to_str
from polylab.risk.manager import RiskManager
from polylab.risk.payout import pays_one
from polylab.risk.portfolio import Portfolio
from polylab.store.run_folder import Provenance, RunRecorder, code_version, file_sha256

__all__ = [
    "FEED_CHANNEL",
    "BacktestResult",
    "FeedNote",
    "RecordLoop",
    "RunParts",
    "StrategyStats",
    "depth_tracker",
    "load_meta_file",
    "locked_value",
    "run_backtest",
    "sniper_teams",
    "summarize",
]

log = logging.getLogger(__name__)


FEED_CHANNEL = "feed"
"""Recording channel of the live feed's own notes (a book it stopped trusting)."""


class FeedNote(msgspec.Struct, frozen=True):
    """A ``feed`` record: ``asset_id``'s book awaits a snapshot (``needs_snapshot``)."""

    asset_id: str
    reason: str = ""
    needs_snapshot: bool = False


class StrategyStats(msgspec.Struct, kw_only=True):
    """One strategy's share of a run: intents, risk rejections, trades (intents that opened
    shares), closed trades, realized PnL and fees (micros) of its trades."""

    intents: int = 0
    rejections: int = 0
    trades: int = 0
    closed: int = 0
    realized: int = 0
    fees: int = 0


class BacktestResult(msgspec.Struct, kw_only=True):
    """Headline numbers of a run (money as integer micros, plus decimal strings for people).

    ``trades``: intents executed with at least one fill; ``opportunities``: top-of-book sum
    windows seen; ``depth_opportunities``: windows with an edge after fees at SumTo100's
    ``min_liquidity`` size, walking depth;
    ``pnl``: realized + unrealized (positions marked to best bid), fees already paid, micros;
    ``pnl_at_payout``: the same with complete neg-risk sets valued at the $1 they pay at
    resolution; ``win_rate``: share of closed trades with positive realized PnL;
    ``reaction_p50_ns``: the engine's median reaction time measured in this run (0: no intent);
    ``reaction_ns``: the reaction time the windows were labelled with (ns);
    ``malformed``: recording lines, frames and levels that could not be used (skipped);
    ``truncated``: the recording ended early (cut or corrupt zstd stream), the run covers the
    ``bytes_read`` bytes (decompressed) before that point, ``stop_reason`` says why.
    """

    trades: int
    opportunities: int
    depth_opportunities: int
    intents: int
    rejections: int
    pnl: int
    pnl_at_payout: int
    realized: int
    unrealized: int
    fees: int
    merges: int
    win_rate: float
    fill_rate: float
    config_id: str
    pnl_usd: str
    fees_usd: str
    events: int
    seconds: float
    unfilled_legs: int = 0
    """Intent legs that found less than their size at their limit (unfilled or partial)."""
    unwind_fills: int = 0
    """Unwind orders that filled (undoing a set's uneven legs, usually at a loss)."""
    reaction_p50_ns: int = 0
    reaction_ns: int = 0
    malformed: int = 0
    truncated: bool = False
    bytes_read: int = 0
    stop_reason: str = ""
    by_strategy: dict[str, StrategyStats] = {}
    provenance: Provenance | None = None
    run_dir: str = ""


def depth_tracker(
    catalog: MarketCatalog, books: dict[str, Any], cfg: PolylabConfig
) -> OpportunityTracker:
    """Depth-aware complete-set windows at SumTo100's ``min_liquidity`` size, fees included."""
    return OpportunityTracker(
        catalog,
        books,
        size_micros=cfg.sum_to_100.min_liquidity_micros,
        fallback_fee_micros=cfg.sum_to_100.fee_rate_micros,
        window_config=cfg.analysis,
    )


class RunParts:
    """What every run assembles around the engine (a backtest, a paper or a live session):
    portfolio, risk gate, run recorder and both opportunity observers; ``finish`` closes the
    run into its tables and headline numbers, ``write`` makes the run folder."""

    def __init__(
        self,
        cfg: PolylabConfig,
        registry: BookRegistry,
        executor: Executor,
        starting_cash_micros: int,
    ) -> None:
        self.config = cfg
        self.registry = registry
        self.portfolio = Portfolio(starting_cash_micros)
        self.recorder = RunRecorder()
        self.monitor = SumMonitor(registry.catalog, registry.books, config=cfg.analysis)
        self.tracker = depth_tracker(registry.catalog, registry.books, cfg)
        self.engine = Engine(
            registry=registry,
            strategies=build_strategies(cfg),
            risk=RiskManager(cfg.risk, self.portfolio),
            executor=executor,
            portfolio=self.portfolio,
            sinks=[self.recorder],
            config=cfg.engine,
            observers=[self.monitor.on_market, self.tracker.on_market],
        )

    def finish(self, now_ns: int, seconds: float) -> BacktestResult:
        """Flush orders still due, record windows (labelled with the reaction time measured
        in this run, or the configured default) and positions, summarize."""
        self.engine.flush(now_ns)
        rec = self.recorder
        measured = self.engine.reaction_p50_ns()
        reaction = measured or self.config.analysis.default_reaction_ns
        windows = self.monitor.finish(now_ns, reaction_ns=reaction)
        for w in windows:
            rec.record("opportunities", w)
        for dw in self.tracker.finish(now_ns, reaction_ns=reaction):
            rec.record("depth_opportunities", dw)
        snap = self.portfolio.snapshot(self.registry.books)
        for p in snap.positions:
            rec.record("positions", p)
        res = summarize(
            self.engine,
            rec,
            snap,
            len(windows),
            config_id(self.config),
            seconds,
            self.registry.catalog,
        )
        res.reaction_p50_ns, res.reaction_ns = measured, reaction
        return res

    def write(
        self,
        result: BacktestResult,
        out_dir: str | Path,
        *,
        data_hash: str,
        data_path: str,
        started_ns: int,
        extra: dict[str, Any] | None = None,
    ) -> Path:
        """The run folder, with provenance (config id, code version, data hash)."""
        result.provenance = Provenance(
            config_id=result.config_id,
            code_version=code_version(),
            data_hash=data_hash,
            data_path=data_path,
            started_ns=started_ns,
            ended_ns=time.time_ns(),
        )
        result.run_dir = str(out_dir)
        summary: dict[str, Any] = msgspec.structs.asdict(result)
        summary["config"] = msgspec.to_builtins(self.config)
        summary.update(extra or {})
        return self.recorder.write(out_dir, summary)


def load_meta_file(path: str | Path, catalog: MarketCatalog) -> int:
    """Add the markets of a metadata file (``{"markets": [...]}``) to ``catalog``."""
    markets = decode_meta(Path(path).read_text())
    for m in markets:
        catalog.add(m)
    return len(markets)


class RecordLoop:
    """One pass over a recording for the engines of a run; ``run_backtest`` drives one engine
    with it, ``research.sweep.replay_many`` a fleet of engines (one per config), so a sweep's
    config sees exactly what its own backtest sees.

    Time is the replay clock (each record's ``recv_ns``, never going back). ``market`` frames
    are decoded once and each event goes to ``on_event`` (which applies it to the registry);
    a frame whose event breaks an invariant costs that frame only (counted, the first ones
    logged). ``meta`` records extend the catalog, ``feed`` notes flag books awaiting a snapshot,
    ``sports`` records are parsed once per team directory of ``teams`` (the Sniper's, or None),
    reconciled across sources per directory as the paper runner does, and handed to
    ``on_games`` with the directory's index. Subclasses say what events and games do; the other
    hooks are no-ops by default. ``malformed`` adds up what could not be used: recording lines,
    frames, levels and records.
    """

    def __init__(
        self, registry: BookRegistry, teams: Sequence[TeamDirectory | None] = (None,)
    ) -> None:
        self.registry = registry
        self.teams = list(teams)
        self.clock = ReplayClock()
        self.decoder = market_decoder()
        self.reader: RecordingReader | None = None
        self.bad_frames = 0
        self._sports = [Reconciler() for _ in self.teams]

    def on_event(self, ev: Any, now_ns: int) -> None:
        """Apply one market event received at ``now_ns`` (ns) and react to it."""
        raise NotImplementedError

    def on_games(self, key: int, games: list[Game], now_ns: int) -> None:
        """Reconciled games of one scoreboard, parsed with ``teams[key]``."""

    def on_catalog(self) -> None:
        """A ``meta`` record is about to extend the catalog."""

    def before_games(self) -> None:
        """A ``sports`` record is about to be parsed and handed out."""

    def after_games(self) -> None:
        """A ``sports`` record was handed out (or could not be read)."""

    def after_record(self, now_ns: int) -> None:
        """Every record was applied up to ``now_ns`` (ns)."""

    def run(self, recording: str | Path) -> int:
        """Read ``recording`` through; returns the replay clock at its end (ns)."""
        reg = self.registry
        dec = self.decoder
        clock = self.clock
        on_event = self.on_event
        after = self.after_record
        reader = self.reader = RecordingReader(recording)
        for rec in reader:
            last = clock.advance(rec.recv_ns)
            ch = rec.channel
            if ch == "market":
                try:
                    for ev in dec.decode(rec.payload):
                        on_event(ev, last)
                except Exception as exc:  # a value that breaks an invariant costs its frame
                    self.bad_frames += 1
                    if self.bad_frames <= 20:
                        log.warning("frame at %d not applied (%r): %.300s", last, exc, rec.payload)
            elif ch == "meta":
                self.on_catalog()
                try:
                    for m in decode_meta(rec.payload):
                        reg.catalog.add(m)
                except (msgspec.DecodeError, ValueError):
                    reg.stats.malformed += 1
            elif ch == FEED_CHANNEL:
                try:
                    note = msgspec.json.decode(rec.payload, type=FeedNote)
                except msgspec.DecodeError:
                    reg.stats.malformed += 1
                else:
                    book = reg.books.get(note.asset_id)
                    if book is not None and note.needs_snapshot:
                        book.needs_snapshot = True
            elif ch == "sports":
                self.before_games()
                self._games(rec.payload, rec.recv_ns, last)
                self.after_games()
            after(last)
        return clock.now_ns()

    def _games(self, payload: str, recv_ns: int, now_ns: int) -> None:
        """Parse once per team directory; a payload that one cannot read counts once."""
        bad = False
        for key, (teams, sports) in enumerate(zip(self.teams, self._sports, strict=True)):
            try:
                label, games = sports_payload_games(payload, teams=teams)
            except ScoreboardError:
                bad = True
                continue
            out = sports.feed(label, recv_ns, games)
            if out or not games:
                self.on_games(key, out, now_ns)
        if bad:
            self.registry.stats.malformed += 1

    @property
    def malformed(self) -> int:
        """Recording lines, frames, levels and records that could not be used."""
        r = self.reader
        return (
            (r.malformed if r is not None else 0)
            + self.decoder.stats.malformed
            + self.registry.stats.malformed
            + self.bad_frames
        )

    def finish_result(self, result: BacktestResult) -> None:
        """Copy what the recording's reading found into ``result``."""
        r = self.reader
        result.malformed = self.malformed
        if r is not None:
            result.truncated = r.truncated
            result.bytes_read = r.bytes_read
            result.stop_reason = r.stop_reason


def sniper_teams(engine: Engine) -> TeamDirectory | None:
    """The team directory of ``engine``'s Sniper (None without one): scoreboards are parsed
    with it."""
    return next(
        (getattr(st, "teams", None) for st in engine.strategies if st.name == "sniper"), None
    )


class _BacktestLoop(RecordLoop):
    """One engine: it applies each event itself (``Engine.on_event``)."""

    def __init__(self, registry: BookRegistry, engine: Engine) -> None:
        super().__init__(registry, [sniper_teams(engine)])
        self._engine = engine

    def on_event(self, ev: Any, now_ns: int) -> None:
        self._engine.on_event(ev, now_ns)

    def on_games(self, key: int, games: list[Game], now_ns: int) -> None:
        self._engine.on_games(games, now_ns)


def run_backtest(
    recording: str | Path,
    config: PolylabConfig | None = None,
    *,
    meta: str | Path | None = None,
    out_dir: str | Path | None = None,
    starting_cash_micros: int = 10_000 * MICROS,
) -> tuple[BacktestResult, RunRecorder, Engine]:
    """Run every strategy of ``config`` over ``recording``; write a run folder if ``out_dir``."""
    cfg = config or PolylabConfig()
    reg = BookRegistry()
    if meta is not None:
        load_meta_file(meta, reg.catalog)
    parts = RunParts(cfg, reg, PaperTrader(cfg.paper, reg.catalog), starting_cash_micros)
    loop = _BacktestLoop(reg, parts.engine)
    t0 = time.perf_counter()
    started = time.time_ns()
    end_ns = loop.run(recording)
    result = parts.finish(end_ns, time.perf_counter() - t0)
    loop.finish_result(result)
    if out_dir is not None:
        parts.write(
            result,
            out_dir,
            data_hash=file_sha256(recording),
            data_path=str(recording),
            started_ns=started,
        )
    return result, parts.recorder, parts.engine


def locked_value(engine: Engine, snap: Any, catalog: MarketCatalog) -> int:
    """What marking complete neg-risk sets at their best bids leaves out, micros.

    A set of every outcome's YES of a neg-risk event cannot be merged on-chain, but pays
    exactly $1 at resolution; ``pnl_at_payout`` values those sets at $1 instead of the bids,
    but only when the markets held are the whole event (``risk.payout``: no missing market,
    no placeholder / "Other" outcome); a partial set stays marked at the bids.
    """
    marks = {p.token_id: p.mark for p in getattr(snap, "positions", ())}
    extra = 0
    for g in catalog.groups():
        if g.kind != "negrisk" or not pays_one(g, catalog):
            continue
        n = engine.portfolio.complete_sets(g)
        if n > 0:
            extra += n - sum(n * marks.get(t, 0) // MICROS for t in g.token_ids)
    return extra


def summarize(
    engine: Engine,
    rec: RunRecorder,
    snap: Any,
    windows: int,
    cid: str,
    seconds: float,
    catalog: MarketCatalog,
) -> BacktestResult:
    """The headline numbers of a finished run."""
    orders = rec.rows.get("orders", [])
    sent = sum(getattr(o, "requested", 0) for o in orders)
    got = sum(getattr(o, "filled", 0) for o in orders)
    realized = int(snap.realized)
    unrealized = int(snap.unrealized)
    fees = int(snap.fees)
    pnl = realized + unrealized
    locked = locked_value(engine, snap, catalog)
    per: dict[str, StrategyStats] = {s.name: StrategyStats() for s in engine.strategies}
    for r in rec.rows.get("intents", []):
        per.setdefault(r.strategy, StrategyStats()).intents += 1  # type: ignore[attr-defined]
    for r in rec.rows.get("rejections", []):
        per.setdefault(r.strategy, StrategyStats()).rejections += 1  # type: ignore[attr-defined]
    for t in engine.portfolio.trades():
        st = per.setdefault(t.strategy, StrategyStats())
        st.trades += 1
        st.closed += t.closed
        st.realized += t.realized
        st.fees += t.fees
    return BacktestResult(
        trades=int(snap.trades),
        opportunities=windows,
        depth_opportunities=len(rec.rows.get("depth_opportunities", [])),
        intents=engine.stats.intents,
        rejections=engine.stats.rejected,
        pnl=pnl,
        realized=realized,
        unrealized=unrealized,
        fees=fees,
        merges=len(rec.rows.get("merges", [])),
        win_rate=float(snap.win_rate),
        fill_rate=round(got / sent, 6) if sent else 0.0,
        config_id=cid,
        pnl_at_payout=pnl + locked,
        pnl_usd=cash_to_str(pnl),
        fees_usd=cash_to_str(fees),
        events=engine.stats.events,
        seconds=round(seconds, 3),
        unfilled_legs=engine.stats.unfilled_legs,
        unwind_fills=engine.stats.unwind_fills,
        by_strategy=per,
    )

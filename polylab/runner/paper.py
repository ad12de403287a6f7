"""Paper trading against a venue URL or the built-in simulator, on the one engine.

Wall clock, the market WebSocket feed (books kept by ``MarketFeed``), Gamma discovery for the
catalog, scoreboard polling for the Sniper, and the paper executor filling against the live
books after its latency. With no URL the local simulator is started in-process on an ephemeral
port, so ``polylab paper`` needs nothing outside the machine. Ends after ``seconds`` (or Ctrl-C)
and writes a run folder like a backtest.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import msgspec

from polylab.analysis.windows import SumMonitor
from polylab.backtest import BacktestResult, depth_tracker, summarize
from polylab.book.registry import BookRegistry
from polylab.config import PolylabConfig, build_strategies, config_id
from polylab.engine import Engine
from polylab.execution.base import Executor
from polylab.execution.paper import PaperTrader
from polylab.feed.discovery import GammaClient
from polylab.feed.market_ws import MarketFeed, MarketFeedConfig
from polylab.feed.sports_sources import HttpScoreboardSource
from polylab.market import MarketCatalog
from polylab.money import MICROS
from polylab.risk.manager import RiskManager
from polylab.risk.portfolio import Portfolio
from polylab.store.run_folder import Provenance, RunRecorder, code_version

__all__ = ["PaperRun", "Venue", "run_paper", "venue"]


class Venue(msgspec.Struct, frozen=True):
    """Where to trade: REST/Gamma base URL, WebSocket base URL, scoreboards to poll."""

    url: str
    ws_url: str
    sports: tuple[tuple[str, str], ...] = ()
    simulated: bool = False


@contextlib.asynccontextmanager
async def venue(
    url: str | None,
    *,
    seed: int = 7,
    sim_overrides: dict[str, Any] | None = None,
    sports: tuple[tuple[str, str], ...] = (),
) -> AsyncIterator[Venue]:
    """``url`` as a venue, or (None) the built-in simulator started for the ``async with``."""
    if url is not None:
        ws = url.replace("https://", "wss://").replace("http://", "ws://")
        yield Venue(url=url.rstrip("/"), ws_url=ws.rstrip("/"), sports=sports)
        return
    from polylab.sim.config import SimConfig
    from polylab.sim.server import running_sim

    cfg = msgspec.convert({"seed": seed, **(sim_overrides or {})}, SimConfig)
    async with running_sim(cfg) as h:
        leagues = tuple(h.state.scoreboard.leagues()) or sports
        yield Venue(url=h.url, ws_url=h.ws_url, sports=leagues, simulated=True)


class PaperRun:
    """The live objects of a paper session (for the summary display and tests)."""

    def __init__(
        self,
        engine: Engine,
        feed: MarketFeed,
        recorder: RunRecorder,
        monitor: SumMonitor,
        portfolio: Portfolio,
        catalog: MarketCatalog,
    ) -> None:
        self.engine = engine
        self.feed = feed
        self.recorder = recorder
        self.monitor = monitor
        self.portfolio = portfolio
        self.catalog = catalog
        self.started = time.time_ns()


async def run_paper(
    config: PolylabConfig,
    v: Venue,
    *,
    seconds: float | None = 30.0,
    out_dir: str | Path | None = None,
    starting_cash_micros: int = 10_000 * MICROS,
    on_tick: Callable[[PaperRun], None] | None = None,
    executor: Callable[[MarketCatalog], Executor] | None = None,
) -> tuple[BacktestResult, PaperRun]:
    """Paper-trade every configured strategy at venue ``v`` for ``seconds`` (None: until
    cancelled). ``on_tick`` is called about once a second (the rich live summary).
    ``executor`` swaps the paper trader for another executor built from the catalog (the live
    executor): everything else, engine included, stays the same."""
    async with GammaClient(f"{v.url}/gamma") as gamma:
        found = await gamma.discover()
    catalog = found.catalog()
    reg = BookRegistry(catalog)
    portfolio = Portfolio(starting_cash_micros)
    recorder = RunRecorder()
    monitor = SumMonitor(catalog, reg.books)
    tracker = depth_tracker(catalog, reg.books, config)
    strategies = build_strategies(config)
    teams = next((getattr(st, "teams", None) for st in strategies if st.name == "sniper"), None)
    engine = Engine(
        registry=reg,
        strategies=strategies,
        risk=RiskManager(config.risk, portfolio),
        executor=PaperTrader(config.paper, catalog),
        portfolio=portfolio,
        sinks=[recorder],
        config=config.engine,
        observers=[monitor.on_market, tracker.on_market],
    )
    feed_cfg = MarketFeedConfig(url=f"{v.ws_url}/ws/market", stale_after_ms=30_000)
    sources = (
        [
            HttpScoreboardSource(v.url, sport, league, poll_ms=config.sniper.poll_ms, teams=teams)
            for sport, league in v.sports
        ]
        if "sniper" in config.strategies
        else []
    )
    feed = MarketFeed(feed_cfg, reg, on_event=lambda ns, ev: engine.on_applied(ev, ns))
    run = PaperRun(engine, feed, recorder, monitor, portfolio, catalog)
    tokens = [t for m in catalog.markets.values() for t in m.token_ids]

    async def timer() -> None:
        while True:
            await asyncio.sleep(0.1)
            engine.on_time(time.time_ns())

    async def sports_loop(src: HttpScoreboardSource) -> None:
        while True:
            games = await src.poll()
            if games:
                engine.on_games(games, time.time_ns())
            await asyncio.sleep(config.sniper.poll_ms / 1000)

    async def ticker() -> None:
        while on_tick is not None:
            on_tick(run)
            await asyncio.sleep(1.0)

    started = time.time_ns()
    async with feed:
        await feed.subscribe(tokens)
        tasks = [
            asyncio.create_task(timer()),
            asyncio.create_task(ticker()),
            *(asyncio.create_task(sports_loop(s)) for s in sources),
        ]
        try:
            if seconds is None:
                await asyncio.Event().wait()
            else:
                await asyncio.sleep(seconds)
        finally:
            for t in tasks:
                t.cancel()
            for t in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await t
            for s in sources:
                await s.aclose()
        deadline = time.monotonic() + 5.0  # let orders in flight come back (live: ≤ timeout)
        while engine.executor.pending() and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
            engine.on_time(time.time_ns())
    now = time.time_ns()
    engine.flush(now)
    windows = monitor.finish(now)
    for w in windows:
        recorder.record("opportunities", w)
    for dw in tracker.finish(now):
        recorder.record("depth_opportunities", dw)
    snap = portfolio.snapshot(reg.books)
    for p in snap.positions:
        recorder.record("positions", p)
    result = summarize(
        engine, recorder, snap, len(windows), config_id(config), (now - started) / 1e9, catalog
    )
    if out_dir is not None:
        result.provenance = Provenance(
            config_id=result.config_id,
            code_version=code_version(),
            data_hash="",
            data_path=v.url,
            started_ns=started,
            ended_ns=now,
        )
        result.run_dir = str(out_dir)
        summary: dict[str, Any] = msgspec.structs.asdict(result)
        summary["config"] = msgspec.to_builtins(config)
        summary["feed"] = msgspec.to_builtins(feed.counters)
        recorder.write(out_dir, summary)
    return result, run

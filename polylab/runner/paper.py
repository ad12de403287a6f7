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
from polylab.backtest import BacktestResult, RunParts
from polylab.book.registry import BookRegistry
from polylab.config import PolylabConfig
from polylab.engine import Engine
from polylab.execution.base import Executor
from polylab.execution.paper import PaperTrader
from polylab.feed.discovery import GammaClient
from polylab.feed.market_ws import MarketFeed, MarketFeedConfig
from polylab.feed.sports_sources import HttpScoreboardSource
from polylab.market import MarketCatalog
from polylab.money import MICROS
from polylab.risk.portfolio import Portfolio
from polylab.store.run_folder import RunRecorder

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
    parts = RunParts(
        config,
        reg,
        executor(catalog) if executor is not None else PaperTrader(config.paper, catalog),
        starting_cash_micros,
    )
    engine = parts.engine
    teams = next(
        (getattr(st, "teams", None) for st in engine.strategies if st.name == "sniper"), None
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
    run = PaperRun(engine, feed, parts.recorder, parts.monitor, parts.portfolio, catalog)
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
    result = parts.finish(now, (now - started) / 1e9)
    if out_dir is not None:
        parts.write(
            result,
            out_dir,
            data_hash="",
            data_path=v.url,
            started_ns=started,
            extra={"feed": msgspec.to_builtins(feed.counters)},
        )
    return result, run

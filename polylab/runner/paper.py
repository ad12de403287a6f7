"""Paper trading against a venue URL or the built-in simulator, on the one engine.

The market WebSocket feed (books kept by ``MarketFeed``), Gamma discovery for the catalog,
scoreboard polling for the Sniper, and the paper executor filling against the live books after
its latency. With no URL the local simulator is started in-process on an ephemeral port, so
``polylab paper`` needs nothing outside the machine. Ends after ``seconds`` or when ``stop`` is
set (the CLI sets it on SIGINT / SIGTERM) and writes a run folder like a backtest.

**Replayable.** The engine runs on event time (``polylab.clock``): every market frame and every
scoreboard snapshot is stamped once, by the connection that received it, and that stamp is both
the engine's time and the ``recv_ns`` written with the frame into the run folder's
``feed.jsonl.zst`` (the recording format, catalog first on the ``meta`` channel; its SHA-256 is
the summary's ``data_hash`` and ``feed_sha256``). When the feed stops trusting a book (a gap,
a disconnect) a ``feed`` record says so at that point, so the backtest distrusts it too. Orders
due by an event are booked against the books before the event changes them, as the backtest
does, and the session ends by flushing in event time, so ``polylab backtest
RUN/feed.jsonl.zst`` with the same config replays the session.
Only a live executor (``clock``: a ``WallClock``) adds a wall-clock timer, because its orders
come back whether or not the market moves.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import msgspec

from polylab.analysis.windows import SumMonitor
from polylab.backtest import FEED_CHANNEL, BacktestResult, RunParts
from polylab.book.market_feed import MarketFeed, MarketFeedConfig
from polylab.book.registry import BookRegistry
from polylab.clock import Clock, ReplayClock, WallClock
from polylab.config import PolylabConfig
from polylab.engine import Engine
from polylab.execution.base import Executor
from polylab.execution.paper import PaperTrader
from polylab.feed.discovery import Discovered, GammaClient
from polylab.feed.recording import RecordingWriter
from polylab.market import MarketCatalog
from polylab.money import MICROS
from polylab.risk.portfolio import Portfolio
from polylab.runner.sports_pollers import SportsPollers
from polylab.runner.startup import with_retries
from polylab.store.run_folder import RunRecorder, file_sha256
from polylab.venue import VenueError, VenueProfile
from polylab.venue import sim as sim_profile

__all__ = [
    "DEFAULT_LEAGUES",
    "FEED_FILE",
    "PaperRun",
    "Venue",
    "run_paper",
    "stop_on_signals",
    "venue",
]

log = logging.getLogger(__name__)

FEED_FILE = "feed.jsonl.zst"
"""The recording of the feed a session traded on, inside its run folder."""


DEFAULT_LEAGUES: tuple[tuple[str, str], ...] = (
    ("football", "nfl"),
    ("basketball", "nba"),
    ("hockey", "nhl"),
    ("soccer", "usa.1"),
)
"""ESPN scoreboards a session on a named venue polls for the Sniper (``sport``, ``league``)."""


class Venue(msgspec.Struct):
    """Where to trade: the venue ``profile`` (every endpoint), scoreboards to poll.

    ``Venue(url=…, ws_url=…)`` (a simulator's base URLs) builds the ``sim`` profile."""

    url: str = ""
    ws_url: str = ""
    sports: tuple[tuple[str, str], ...] = ()
    simulated: bool = False
    sports_ws: str = ""  # the venue's sports channel; "" = the profile's
    profile: VenueProfile | None = None

    def __post_init__(self) -> None:
        if self.profile is None:
            if not self.url:
                raise VenueError("a Venue needs a profile or the simulator's url")
            p = sim_profile(self.url)
            if self.ws_url:
                ws = self.ws_url.rstrip("/")
                p = msgspec.structs.replace(p, market_ws=f"{ws}/ws/market", user_ws=f"{ws}/ws/user")
            self.profile = p
        if not self.url:
            self.url = self.endpoints.clob

    @property
    def endpoints(self) -> VenueProfile:
        """The profile (always set once constructed)."""
        if self.profile is None:  # pragma: no cover - set by __post_init__
            raise VenueError("venue without a profile")
        return self.profile


@contextlib.asynccontextmanager
async def venue(
    url: str | None = None,
    *,
    seed: int = 7,
    sim_overrides: dict[str, Any] | None = None,
    sports: tuple[tuple[str, str], ...] = (),
    profile: VenueProfile | None = None,
) -> AsyncIterator[Venue]:
    """``profile`` (a named venue, e.g. ``polymarket``), or ``url`` (a running simulator's
    base URL: the ``sim`` profile), or neither: the built-in simulator started for the
    ``async with``. A named venue polls ``sports`` (default ``DEFAULT_LEAGUES``)."""
    if profile is not None:
        yield Venue(profile=profile, sports=sports or DEFAULT_LEAGUES)
        return
    if url is not None:
        yield Venue(profile=sim_profile(url), sports=sports)
        return
    from polylab.sim.config import SimConfig
    from polylab.sim.server import running_sim

    cfg = msgspec.convert({"seed": seed, **(sim_overrides or {})}, SimConfig)
    async with running_sim(cfg) as h:
        leagues = tuple(h.state.scoreboard.leagues()) or sports
        yield Venue(profile=sim_profile(h.url), sports=leagues, simulated=True)


def stop_on_signals() -> asyncio.Event:
    """An event set by the first SIGINT or SIGTERM (call on the running loop): the session
    then stops cleanly and writes its run folder. A second signal of the same kind gets the
    default behaviour back, so a third one stops the process at once. Outside the main thread
    (no signal handlers there) the event is never set by a signal."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()

    def handle(sig: signal.Signals) -> None:
        if stop.is_set():
            log.warning("%s again: one more stops at once, without a run folder", sig.name)
            loop.remove_signal_handler(sig)
            return
        log.warning("%s: stopping, writing the run folder", sig.name)
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, handle, sig)
        except (ValueError, RuntimeError, NotImplementedError):  # not the main thread
            log.debug("cannot handle %s here; the session stops on time only", sig.name)
    return stop


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
        self.started = WallClock().now_ns()
        self.feed_path: Path | None = None
        self.sports: SportsPollers | None = None  # the Sniper's scoreboards (hot reload)
        self.stopped_by = ""


class _PollFirst:
    """The feed registry's ``before_apply``: before an event is applied, the engine books the
    orders due by its receive time against the books as they stand (``Engine.poll_due``),
    exactly as ``Engine.on_event`` does in a backtest. ``clock`` turns the connection's stamps
    into event time as the backtest's ``ReplayClock`` does."""

    def __init__(self) -> None:
        self.engine: Engine | None = None
        self.clock = ReplayClock()

    def __call__(self, recv_ns: int) -> None:
        """Book the orders due by ``recv_ns`` (ns), the receive time of the next event."""
        if self.engine is not None:
            self.engine.poll_due(self.clock.advance(recv_ns))


class _FeedWriter(RecordingWriter):
    """The session's recording; remembers the last stamp written (ns), the end of the run."""

    last_ns = 0

    def write(self, channel: str, payload: str, recv_ns: int | None = None) -> None:
        """Write one frame as received at ``recv_ns`` (ns)."""
        super().write(channel, payload, recv_ns)
        if recv_ns is not None and recv_ns > self.last_ns:
            self.last_ns = recv_ns


async def run_paper(
    config: PolylabConfig,
    v: Venue,
    *,
    seconds: float | None = 30.0,
    out_dir: str | Path | None = None,
    starting_cash_micros: int = 10_000 * MICROS,
    on_tick: Callable[[PaperRun], None] | None = None,
    executor: Callable[[MarketCatalog], Executor] | None = None,
    stop: asyncio.Event | None = None,
    clock: Clock | None = None,
    on_stop: Callable[[], Awaitable[dict[str, Any]]] | None = None,
    on_start: Callable[[PaperRun], None] | None = None,
) -> tuple[BacktestResult, PaperRun]:
    """Paper-trade every configured strategy at venue ``v`` for ``seconds`` (None: until
    ``stop`` is set); ``stop`` ends the session early, cleanly. ``on_tick`` is called about once
    a second (the rich live summary). ``executor`` swaps the paper trader for another executor
    built from the catalog (the live executor), ``clock`` (a ``WallClock``) then drives a 10 Hz
    timer and the final wait for orders in flight, and ``on_stop`` runs after the last order
    came back, before the run folder is written (live: cancel open orders; its dict goes into
    the summary). With ``out_dir`` the feed is recorded into ``out_dir/feed.jsonl.zst``."""
    wall = WallClock()
    stop = stop if stop is not None else asyncio.Event()
    endpoints = v.endpoints

    async def discover() -> Discovered:
        async with GammaClient(endpoints.gamma) as gamma:
            return await gamma.discover()

    found = await with_retries(discover, f"market discovery at {endpoints.gamma}")
    catalog = found.catalog()
    reg = BookRegistry(catalog)
    reg.before_apply = poll_due = _PollFirst()
    parts = RunParts(
        config,
        reg,
        executor(catalog) if executor is not None else PaperTrader(config.paper, catalog),
        starting_cash_micros,
    )
    engine = poll_due.engine = parts.engine
    events = poll_due.clock  # event time, as in a backtest of the recording
    writer: _FeedWriter | None = None
    if out_dir is not None:
        writer = _FeedWriter(Path(out_dir) / FEED_FILE)
        writer.write_meta(list(catalog.markets.values()), wall.now_ns())
    feed_cfg = MarketFeedConfig(url=endpoints.market_ws, stale_after_ms=30_000)
    sports = SportsPollers(
        engine,
        config,
        espn=endpoints.espn,
        sports_ws=v.sports_ws or endpoints.sports_ws,
        leagues=v.sports,
        events=events,
        writer=writer,
    )

    def flagged(aid: str, reason: str) -> None:
        """The feed stopped trusting a book (gap, disconnect): the backtest must too."""
        b = reg.books.get(aid)
        if writer is not None and b is not None and b.needs_snapshot:
            note = {"asset_id": aid, "reason": reason, "needs_snapshot": True}
            writer.write(FEED_CHANNEL, msgspec.json.encode(note).decode(), writer.last_ns)

    feed = MarketFeed(
        feed_cfg,
        reg,
        on_event=lambda ns, ev: engine.on_applied(ev, events.advance(ns)),
        on_stale=flagged,
        recorder=writer,
    )
    run = PaperRun(engine, feed, parts.recorder, parts.monitor, parts.portfolio, catalog)
    run.sports = sports
    run.feed_path = writer.path if writer is not None else None
    if on_start is not None:  # the runner service attaches its ledger, bus and state here
        on_start(run)
    tokens = [t for m in catalog.markets.values() for t in m.token_ids]

    async def timer(c: Clock) -> None:
        while True:
            await asyncio.sleep(0.1)
            engine.on_time(c.now_ns())

    async def ticker() -> None:
        while on_tick is not None:
            on_tick(run)
            await asyncio.sleep(1.0)

    started = wall.now_ns()
    try:
        async with feed:
            await feed.subscribe(tokens)
            sports.start()  # the Sniper's scoreboards; a hot reload may change them later
            tasks = [asyncio.create_task(ticker())]
            if clock is not None:
                tasks.append(asyncio.create_task(timer(clock)))
            try:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), seconds)
            finally:
                for t in tasks:
                    t.cancel()
                for t in tasks:
                    with contextlib.suppress(asyncio.CancelledError):
                        await t
                await sports.aclose()
            run.stopped_by = "stop" if stop.is_set() else "time"
            if clock is not None:  # a live executor's orders come back in wall time
                deadline = time.monotonic() + 5.0
                while engine.executor.pending() and time.monotonic() < deadline:
                    await asyncio.sleep(0.02)
                    engine.on_time(clock.now_ns())
            extra = await on_stop() if on_stop is not None else {}
            # From here on nothing awaits until the run is closed: the engine and the
            # recording let go of the feed together, and the orders still due are booked (in
            # event time, from the last stamp recorded) against the books exactly as they
            # stand after the last recorded frame, as a backtest of the recording ends.
            feed.on_event, feed.on_stale, feed.recorder, poll_due.engine = None, None, None, None
            end_ns = max(events.now_ns(), writer.last_ns if writer is not None else 0)
            result = parts.finish(end_ns, (wall.now_ns() - started) / 1e9)
    finally:
        if writer is not None:
            writer.close()
    if out_dir is not None and writer is not None:
        digest = file_sha256(writer.path)
        parts.write(
            result,
            out_dir,
            data_hash=digest,
            data_path=str(writer.path),
            started_ns=started,
            extra={
                "feed": msgspec.to_builtins(feed.counters),
                "feed_file": FEED_FILE,
                "feed_sha256": digest,
                "venue": endpoints.clob,
                "venue_profile": endpoints.name,
                "stopped_by": run.stopped_by,
                **extra,
            },
        )
    return result, run

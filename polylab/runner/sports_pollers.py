"""The scoreboards a session polls for its Sniper, kept in step with the config it trades.

A session (``runner.paper``, live too) feeds the Sniper from the venue's ESPN scoreboards (one
HTTP poller per ``(sport, league)`` of the venue) and, with ``sniper.sports_channel``, from the
venue's sports channel, reconciled with ESPN (one id per game, the first final wins). Which of
those run depends on the config: none without a Sniper in ``strategies``. A hot reload
(``runner.reload``) can add the Sniper, remove it or change its ``poll_ms`` or
``sports_channel``, so ``SportsPollers.apply`` is called again with each new config, on the
session's loop, right after the strategies were swapped:

* Sniper added: the pollers start, filling the new Sniper's team directory;
* Sniper removed: every poller task is cancelled at once (no snapshot reaches the engine after
  the swap) and its HTTP client / WebSocket closed (``settle``: no task or connection leaks);
* ``poll_ms`` changed: each running ESPN poller takes the new period at its next poll (the
  same connection; ``HttpScoreboardSource.poll_ns``);
* ``sports_channel`` turned on / off: the channel source starts / stops alone, the ESPN
  pollers go on.

The leagues polled are the venue's (``Venue.sports``: the simulator's games or
``DEFAULT_LEAGUES``), not part of the config, so no reload changes them. Units: ns for times,
ms for ``poll_ms``.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import httpx

from polylab.clock import ReplayClock
from polylab.config import PolylabConfig
from polylab.domain import Game
from polylab.engine import Engine
from polylab.feed.recording import RecordingWriter
from polylab.feed.sports import TeamDirectory
from polylab.feed.sports_channel import PolymarketSportsSource
from polylab.feed.sports_reconcile import Reconciler
from polylab.feed.sports_sources import HttpScoreboardSource, ScoreboardSource

__all__ = ["SportsPollers"]

log = logging.getLogger(__name__)


class _Scoreboard:
    """An ESPN scoreboard source whose raw payloads are recorded (``writer``) with the games."""

    def __init__(
        self,
        espn: str,
        sport: str,
        league: str,
        poll_ms: int,
        teams: TeamDirectory | None,
        writer: RecordingWriter | None = None,
    ) -> None:
        self.payload = b""
        self.client = httpx.AsyncClient(timeout=5.0, event_hooks={"response": [self._keep]})
        self.src = HttpScoreboardSource(
            espn, sport, league, poll_ms=poll_ms, teams=teams, client=self.client
        )
        self.name = self.src.name
        self.last_recv_ns = 0
        self.writer = writer

    async def _keep(self, resp: httpx.Response) -> None:
        self.payload = await resp.aread()

    async def poll(self) -> list[Game]:
        """The next snapshot's games; its payload is recorded under the response's stamp."""
        games = await self.src.poll()
        if games:
            self.last_recv_ns = ns = self.src.last_recv_ns
            if self.writer is not None:
                self.writer.write("sports", self.payload.decode("utf-8", "replace"), ns)
        return games


def _sniper_teams(engine: Engine) -> TeamDirectory | None:
    """The team directory of the engine's Sniper (None: no Sniper trading)."""
    for st in engine.strategies:
        if st.name == "sniper":
            teams = getattr(st, "teams", None)
            return teams if isinstance(teams, TeamDirectory) else None
    return None


class SportsPollers:
    """The Sniper's scoreboard pollers of one session (see the module doc).

    ``espn`` / ``sports_ws``: the venue's ESPN base URL and sports channel URL; ``leagues``:
    the ``(sport, league)`` pairs polled while a Sniper trades; ``events``: the session's
    event-time clock (each snapshot advances it to its receive stamp); ``writer``: the
    session's recording (None: not recorded). Nothing runs before ``start``; after ``aclose``
    ``apply`` only remembers the config."""

    def __init__(
        self,
        engine: Engine,
        config: PolylabConfig,
        *,
        espn: str,
        sports_ws: str,
        leagues: tuple[tuple[str, str], ...],
        events: ReplayClock,
        writer: RecordingWriter | None = None,
    ) -> None:
        self.engine = engine
        self.config = config
        self.espn = espn
        self.sports_ws = sports_ws
        self.leagues = leagues
        self.events = events
        self.writer = writer
        self.boards: list[_Scoreboard] = []
        self.channel: PolymarketSportsSource | None = None
        self.reconciler: Reconciler | None = None
        self.starts = 0  # poller sets started (ESPN boards or the channel), for the record
        self.stops = 0
        self._tasks: dict[object, asyncio.Task[None]] = {}  # by source
        self._closing: set[asyncio.Task[None]] = set()
        self._running = False
        self._closed = False

    # -- what runs -------------------------------------------------------------------------------
    @property
    def tasks(self) -> list[asyncio.Task[None]]:
        """The poller tasks running now (one per source)."""
        return list(self._tasks.values())

    @property
    def running(self) -> bool:
        """``start`` was called and ``aclose`` not yet: configs take effect as applied."""
        return self._running

    @property
    def sources(self) -> list[ScoreboardSource]:
        """The sources polled now: the ESPN boards, then the channel if on."""
        out: list[ScoreboardSource] = list(self.boards)
        if self.channel is not None:
            out.append(self.channel)
        return out

    def start(self) -> None:
        """Start polling what the config asks for (on the session's loop, once the market feed
        is subscribed)."""
        if self._closed:
            return
        self._running = True
        self.apply(self.config)

    def apply(self, config: PolylabConfig) -> None:
        """Bring the pollers in line with ``config`` (synchronous, on the loop, between two
        events): start, stop or retune them as the module doc says. A stopped poller's task
        is cancelled here; its connection is closed by a task ``settle`` awaits."""
        self.config = config
        if not self._running or self._closed:
            return
        sniping = "sniper" in config.strategies
        teams = _sniper_teams(self.engine)
        poll_ms = config.sniper.poll_ms
        if not sniping:
            self._stop_boards()
            self._stop_channel()
            return
        if self.boards:
            for b in self.boards:  # live: the next poll waits the new period
                b.src.poll_ns = poll_ms * 1_000_000
                if teams is not None:
                    b.src.teams = teams
        else:
            self._start_boards(poll_ms, teams)
        if config.sniper.sports_channel:
            if self.channel is None:
                self._start_channel(teams)
            elif teams is not None:
                self.channel.teams = teams
        else:
            self._stop_channel()

    async def settle(self) -> None:
        """Wait until every stopped poller's task has ended and its connection is closed."""
        while self._closing:
            await asyncio.gather(*list(self._closing), return_exceptions=True)

    async def aclose(self) -> None:
        """Stop every poller and close its connection (the session's end); later ``apply``
        calls (a reload racing the stop) start nothing."""
        self._closed = True
        self._running = False
        self._stop_boards()
        self._stop_channel()
        await self.settle()

    # -- starting and stopping -------------------------------------------------------------------
    def _start_boards(self, poll_ms: int, teams: TeamDirectory | None) -> None:
        self.boards = [
            _Scoreboard(self.espn, sport, league, poll_ms, teams, self.writer)
            for sport, league in self.leagues
        ]
        for b in self.boards:
            self._spawn("espn", b)
        if self.boards:
            self.starts += 1
            log.info("sniper scoreboards: polling %s", ", ".join(b.name for b in self.boards))

    def _start_channel(self, teams: TeamDirectory | None) -> None:
        self.channel = PolymarketSportsSource(self.sports_ws, teams=teams, recorder=self.writer)
        self.reconciler = Reconciler()  # ESPN and the channel from here on: first final wins
        self._spawn("polymarket", self.channel)
        self.starts += 1
        log.info("sniper scoreboards: reading the sports channel %s", self.sports_ws)

    def _stop_boards(self) -> None:
        boards, self.boards = self.boards, []
        for b in boards:
            self._retire(self._tasks.pop(b, None), b.client.aclose())
        if boards:
            self.stops += 1
            log.info("sniper scoreboards: stopped polling %s", ", ".join(b.name for b in boards))

    def _stop_channel(self) -> None:
        ch, self.channel = self.channel, None
        self.reconciler = None
        if ch is not None:
            self._retire(self._tasks.pop(ch, None), ch.aclose())
            self.stops += 1
            log.info("sniper scoreboards: stopped reading the sports channel")

    def _spawn(self, label: str, src: ScoreboardSource) -> None:
        self._tasks[src] = asyncio.create_task(self._loop(label, src), name=f"sports:{src.name}")

    def _retire(self, task: asyncio.Task[None] | None, close: Any) -> None:
        """Cancel ``task`` now; await it, then the ``close`` coroutine, in a tracked task."""
        if task is not None:
            task.cancel()

        async def finish() -> None:
            if task is not None:
                try:
                    await task
                except asyncio.CancelledError:
                    pass
                except Exception as exc:  # a poller that had failed: its connection still closes
                    log.error("sniper scoreboards: %s had failed: %r", task.get_name(), exc)
            await close

        t = asyncio.create_task(finish())
        self._closing.add(t)
        t.add_done_callback(self._closing.discard)

    async def _loop(self, label: str, src: ScoreboardSource) -> None:
        engine, events = self.engine, self.events
        while True:
            games = await src.poll()  # recorded as it is handed out: a replay sees this order
            rec = self.reconciler
            if games and rec is not None:
                games = rec.feed(label, src.last_recv_ns, games)
            if games:  # stamped with the receive time of the payload they came in
                engine.on_games(games, events.advance(src.last_recv_ns))

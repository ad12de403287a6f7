"""The simulator's copy of the venue's sports channel: ``sport_result`` broadcasts.

Served at ``/ws/sports`` on the simulator's port (``register``); the production layout mounts
the same handler at ``/ws`` on a port of its own (``SportsChannel.handler``, or ``mount(app,
channel, "/ws")``). Like the venue (protocol doc §0.2): no subscribe message; on connect the
client gets every game on the scoreboard, then each change as it happens; the server sends the
text ``ping`` every ``sports_ws_ping_s`` and closes (code 1008, "pong timeout") a client that
has not answered with ``pong`` within ``sports_ws_pong_timeout_s`` of a ping.

Messages are built from ``SimState.scoreboard`` (the games ``polylab.sim.sports`` drives and
the ESPN routes serve): ``gameId`` (the ESPN event id as a number), ``leagueAbbreviation``,
``slug`` ``{league}-{away}-{home}-{YYYY-MM-DD}`` (the generator's market slugs),
``homeTeam``/``awayTeam`` (display names), ``status`` ("Scheduled", "InProgress", "finished",
"Postponed"), ``score`` ``"AWAY-HOME"``, ``period``, ``elapsed``, ``live``, ``ended`` and
``finishedTimestamp``. The channel has its own result lag: a game the scoreboard shows final is
reported final ``sports_ws_lag_s`` later (until then its last in-progress message stands).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any, Final

import msgspec
from aiohttp import WSCloseCode, WSMsgType, web

from polylab.sim.sports import LEAGUES, Game
from polylab.sim.state import SimState

__all__ = ["CHANNEL_KEY", "SportsChannel", "mount", "register", "sport_result", "standalone_app"]

log = logging.getLogger(__name__)

_POLICY = WSCloseCode.POLICY_VIOLATION


def _period(g: Game) -> str:
    lg = LEAGUES[(g.sport, g.league)]
    if g.postponed:
        return ""
    if g.halftime:
        return "HT"
    if g.state == "post":
        return "FT" if lg.soccer else "Final"
    if g.period <= 0:
        return ""
    if lg.soccer:
        return f"{g.period}H"
    return f"P{g.period}" if lg.slug == "nhl" else f"Q{g.period}"


def sport_result(g: Game, *, final: bool, finished_ms: int = 0) -> dict[str, Any]:
    """The ``sport_result`` message of ``g``; ``final`` False reports a finished game as still
    in progress (the channel's own lag); ``finished_ms``: when it was reported finished."""
    lg = LEAGUES[(g.sport, g.league)]
    abbr = lg.abbreviation.lower()
    day = time.strftime("%Y-%m-%d", time.gmtime(g.start_ms // 1000))
    ended = final and g.completed
    if g.postponed:
        status = "Postponed"
    elif ended:
        status = "finished"
    elif g.state in ("in", "post"):
        status = "InProgress"
    else:
        status = "Scheduled"
    msg: dict[str, Any] = {
        "gameId": int(g.id) if g.id.isdigit() else g.id,
        "leagueAbbreviation": abbr,
        "slug": f"{abbr}-{g.away.abbreviation.lower()}-{g.home.abbreviation.lower()}-{day}",
        "homeTeam": g.home.display_name,
        "awayTeam": g.away.display_name,
        "status": status,
        "score": f"{g.away_score}-{g.home_score}",
        "period": _period(g),
        "elapsed": f"{g.clock_s // 60:02d}:{g.clock_s % 60:02d}",
        "live": status == "InProgress",
        "ended": ended,
    }
    if ended:
        msg["finishedTimestamp"] = time.strftime(
            "%Y-%m-%dT%H:%M:%SZ", time.gmtime((finished_ms or int(time.time() * 1000)) // 1000)
        )
    return msg


_MAX_QUEUED = 10_000
"""Messages waiting for one client; a client further behind is closed as a slow consumer."""


class _Client:
    """One connection: its outbox (every message, pings included, goes out in queue order, so
    a snapshot is never overtaken by a broadcast) and its heartbeat state."""

    __slots__ = ("next_ping_ns", "out", "pings", "pongs", "unanswered_ns", "ws")

    def __init__(self, ws: web.WebSocketResponse) -> None:
        self.ws = ws
        self.out: asyncio.Queue[str] = asyncio.Queue()
        self.unanswered_ns = 0  # send time of the oldest ping not yet answered (0: none)
        self.pings = 0
        self.pongs = 0
        self.next_ping_ns = 0


class SportsChannel:
    """Connections and broadcasts of the sports channel (one per simulator application).

    Counters: ``connections`` (ever), ``closed_for_pong`` (clients closed by the heartbeat
    rule), ``slow_consumers`` (closed for falling ``_MAX_QUEUED`` messages behind), ``sent``
    (messages sent), ``bad_messages`` (client text other than ``pong``)."""

    def __init__(self, state: SimState) -> None:
        cfg = state.config
        self.state = state
        self.lag_ns = int(cfg.sports_ws_lag_s * 1e9)
        self.ping_s = cfg.sports_ws_ping_s
        self.timeout_ns = int(cfg.sports_ws_pong_timeout_s * 1e9)
        self.tick_s = cfg.sports_ws_tick_s
        self.clients: set[_Client] = set()
        self.connections = 0
        self.closed_for_pong = 0
        self.slow_consumers = 0
        self.sent = 0
        self.bad_messages = 0
        self._last: dict[str, bytes] = {}
        self._final_seen: dict[str, int] = {}
        self._lagging: set[str] = set()
        self._revision = -1
        self._task: asyncio.Task[None] | None = None

    # -- messages ------------------------------------------------------------------------------
    def _message(self, g: Game, now_ns: int) -> bytes | None:
        """The current message of ``g`` (None: nothing to report yet, its final is lagging and
        no earlier message exists)."""
        if g.completed:
            seen = self._final_seen.setdefault(g.id, now_ns)
            if now_ns - seen < self.lag_ns:
                self._lagging.add(g.id)
                return self._last.get(g.id)
            self._lagging.discard(g.id)
            finished_ms = (seen + self.lag_ns) // 1_000_000
            return msgspec.json.encode(sport_result(g, final=True, finished_ms=finished_ms))
        return msgspec.json.encode(sport_result(g, final=False))

    def changes(self, now_ns: int | None = None) -> list[bytes]:
        """Messages of the games that changed since the last call (and remembers them)."""
        now = time.time_ns() if now_ns is None else now_ns
        out: list[bytes] = []
        for g in list(self.state.scoreboard.games.values()):
            msg = self._message(g, now)
            if msg is not None and self._last.get(g.id) != msg:
                self._last[g.id] = msg
                out.append(msg)
        return out

    # -- tasks ---------------------------------------------------------------------------------
    async def _broadcast_loop(self) -> None:
        while True:
            await asyncio.sleep(self.tick_s)
            rev = self.state.scoreboard.revision
            if rev == self._revision and not self._lagging:
                continue
            self._revision = rev
            self._flush()

    def _flush(self) -> None:
        """Queue the messages of every game that changed to every client (no await)."""
        for msg in self.changes():
            text = msg.decode()
            for c in list(self.clients):
                if c.out.qsize() >= _MAX_QUEUED:
                    self.slow_consumers += 1
                    self.clients.discard(c)
                    while not c.out.empty():
                        c.out.get_nowait()
                    c.out.put_nowait("")  # tells its writer to close it
                    continue
                c.out.put_nowait(text)

    async def _writer(self, c: _Client) -> None:
        """Send ``c``'s outbox in order until the socket closes."""
        with contextlib.suppress(ConnectionError, RuntimeError):
            while not c.ws.closed:
                text = await c.out.get()
                if not text:
                    await c.ws.close(code=_POLICY, message=b"slow consumer")
                    return
                await c.ws.send_str(text)
                self.sent += 1

    async def _heartbeat(self, c: _Client) -> None:
        """Ping ``c`` every ``ping_s``; close it once a ping stays unanswered too long."""
        step = min(self.ping_s, self.timeout_ns / 4e9)
        ping_ns = int(self.ping_s * 1e9)
        while not c.ws.closed:
            now = time.time_ns()
            if c.unanswered_ns and now - c.unanswered_ns > self.timeout_ns:
                self.closed_for_pong += 1
                log.info("sports channel: closing a client that did not answer ping")
                await c.ws.close(code=_POLICY, message=b"pong timeout")
                return
            if now >= c.next_ping_ns:
                c.out.put_nowait("ping")
                c.pings += 1
                c.unanswered_ns = c.unanswered_ns or now
                c.next_ping_ns = now + ping_ns
            await asyncio.sleep(step)

    async def handler(self, request: web.Request) -> web.StreamResponse:
        """``GET /ws/sports`` (production layout: ``GET /ws``)."""
        ws = web.WebSocketResponse(autoping=True, max_msg_size=64 * 1024)
        await ws.prepare(request)
        c = _Client(ws)
        self.connections += 1
        self._flush()  # the others get what changed; then this client's snapshot, no await
        for msg in self._last.values():  # between: nothing can come in between
            c.out.put_nowait(msg.decode())
        self.clients.add(c)
        beat = asyncio.create_task(self._heartbeat(c))
        writer = asyncio.create_task(self._writer(c))
        try:
            async for m in ws:
                if m.type == WSMsgType.TEXT and m.data.strip() == "pong":
                    c.pongs += 1
                    c.unanswered_ns = 0
                elif m.type in (WSMsgType.TEXT, WSMsgType.BINARY):
                    self.bad_messages += 1
        finally:
            self.clients.discard(c)
            for t in (beat, writer):
                t.cancel()
            for t in (beat, writer):
                with contextlib.suppress(asyncio.CancelledError):
                    await t
        return ws

    def start(self) -> None:
        """Start broadcasting (the application's startup does it)."""
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._broadcast_loop(), name="sim-sports-channel")

    async def stop(self) -> None:
        """Stop broadcasting and close every client."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        for c in list(self.clients):
            with contextlib.suppress(Exception):
                await c.ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutdown")


CHANNEL_KEY: Final = web.AppKey("polylab_sim_sports_channel", SportsChannel)


def mount(app: web.Application, channel: SportsChannel, path: str) -> None:
    """Serve ``channel`` at ``path`` of ``app`` and run its broadcaster with the app."""
    app[CHANNEL_KEY] = channel
    app.router.add_get(path, channel.handler)

    async def on_startup(_: web.Application) -> None:
        channel.start()

    async def on_shutdown(_: web.Application) -> None:
        await channel.stop()

    app.on_startup.append(on_startup)
    app.on_shutdown.append(on_shutdown)


def standalone_app(state: SimState, path: str = "/ws") -> web.Application:
    """An application serving only the sports channel at ``path`` (production layout: the
    channel on its own port, at ``/ws``), over the same simulator ``state``."""
    app = web.Application()
    mount(app, SportsChannel(state), path)
    return app


def register(app: web.Application, state: SimState) -> SportsChannel:
    """Mount the sports channel at ``/ws/sports`` (the simulator's single-port layout)."""
    channel = SportsChannel(state)
    mount(app, channel, "/ws/sports")
    return channel

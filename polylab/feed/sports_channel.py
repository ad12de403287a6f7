"""``PolymarketSportsSource``: the venue's sports channel as a ``ScoreboardSource``.

One ``WsLink`` (the connection loop the market and user feeds share) to the channel's URL
(``VenueProfile.sports_ws``; the simulator serves it at ``/ws/sports``): no subscribe message,
the server's text ``ping`` is answered with ``pong`` at once, a socket silent for ``silence_s``
(the server pings every 5 s) is closed and reconnected with backoff. Every other frame is
stamped on receipt (ns since the epoch) and parsed (``polylab.feed.venue_sports``): a bad frame
is counted in ``stats.malformed`` and dropped, never fatal. ``poll()`` returns the games of the
next good frame and ``last_recv_ns`` its stamp, and records the frame as it came, under that
stamp, into the recording's ``sports`` channel (next to ESPN payloads; ``payload_source`` tells
them apart). Recording when the frame is handed out, as the ESPN payloads are, keeps a replay
of the recording in the order the strategy saw things.
"""

from __future__ import annotations

import asyncio
import logging
import random
from typing import Annotated

import msgspec
from websockets.asyncio.client import ClientConnection

from polylab.domain import Game
from polylab.feed.decode import DecodeStats, RateLimitedLog
from polylab.feed.recording import RecordingWriter
from polylab.feed.sports import TeamDirectory, TeamNames
from polylab.feed.sports_sources import SourceStats
from polylab.feed.venue_sports import SportsParseStats, parse_sport_results
from polylab.feed.ws_link import WsLink
from polylab.venue import VenueProfile

__all__ = ["PolymarketSportsSource", "SportsChannelConfig", "SportsCounters"]

log = logging.getLogger(__name__)

Pos = Annotated[float, msgspec.Meta(gt=0)]


class SportsChannelConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Sports-channel client settings (times in the unit of their name).

    ``url``: full ws(s):// URL of the channel. ``silence_s``: no frame at all (the server pings
    every 5 s) for this long ⇒ reconnect; ``ping_s``: how often that is checked (the client sends
    no pings of its own). ``backoff_*``: reconnect delay range (ms) and its random fraction.
    ``max_frame_bytes``: largest accepted frame. ``max_queued``: frames parsed but not yet
    polled; beyond it the oldest are dropped (counted in ``counters.dropped``).
    """

    url: str
    ping_s: Pos = 1.0
    silence_s: Pos = 15.0
    open_timeout_s: Pos = 10.0
    backoff_min_ms: Annotated[int, msgspec.Meta(ge=1)] = 100
    backoff_max_ms: Annotated[int, msgspec.Meta(ge=1)] = 10_000
    backoff_jitter: Annotated[float, msgspec.Meta(ge=0, le=1)] = 0.5
    max_frame_bytes: Annotated[int, msgspec.Meta(ge=1024)] = 4 * 1024 * 1024
    max_queued: Annotated[int, msgspec.Meta(ge=1)] = 10_000


class SportsCounters:
    """Connection counters (monotonic): ``pings`` received from the server, ``pongs`` sent."""

    def __init__(self) -> None:
        self.frames = 0
        self.malformed = 0
        self.pongs = 0
        self.pings = 0
        self.connects = 0
        self.reconnects = 0
        self.disconnects = 0
        self.restarts = 0
        self.recorder_errors = 0
        self.dropped = 0


class PolymarketSportsSource:
    """The sports channel behind ``ScoreboardSource`` (see the module docstring).

    ``teams`` learns each game's team names (by league and abbreviation) for market mapping.
    ``recorder``: where raw frames go (channel ``channel``); read per frame, so it can be let go
    of (set to None) at any time. Use ``async with`` or call ``aclose()``; the connection starts
    on the first ``poll()`` (or ``start()``).
    """

    def __init__(
        self,
        config: SportsChannelConfig | str,
        *,
        teams: TeamDirectory | None = None,
        recorder: RecordingWriter | None = None,
        channel: str = "sports",
        rng: random.Random | None = None,
    ) -> None:
        cfg = config if isinstance(config, SportsChannelConfig) else SportsChannelConfig(url=config)
        if not cfg.url.startswith(("ws://", "wss://")):
            raise ValueError(f"sports channel url must be ws:// or wss://, was {cfg.url!r}")
        self.config = cfg
        self.name = "polymarket:sports"
        self.teams = teams if teams is not None else TeamDirectory()
        self.recorder = recorder
        self.channel = channel
        self.stats = SourceStats()
        self.parse_stats = SportsParseStats()
        self.counters = SportsCounters()
        self.decode_stats = DecodeStats()
        self.last_recv_ns = 0
        self.connected = asyncio.Event()
        self._queue: asyncio.Queue[tuple[int, str, list[Game]]] = asyncio.Queue()
        self._link = WsLink(
            "sports-channel",
            cfg,
            channel=channel,
            counters=self.counters,
            stats=self.decode_stats,
            bad_log=RateLimitedLog(log),
            on_open=self._on_open,
            on_frame=self._on_frame,
            on_down=self._on_down,
            keep_running=lambda: True,
            rng=rng,
            server_ping="ping",
            server_pong="pong",
        )

    @classmethod
    def for_venue(
        cls,
        profile: VenueProfile,
        *,
        teams: TeamDirectory | None = None,
        recorder: RecordingWriter | None = None,
    ) -> PolymarketSportsSource:
        """The source on a venue profile's ``sports_ws`` (production: the venue's host;
        ``POLYMARKET_SPORTS_WS_URL`` overrides it)."""
        return cls(SportsChannelConfig(url=profile.sports_ws), teams=teams, recorder=recorder)

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self) -> None:
        """Open the connection (no-op while it runs)."""
        self._link.start()

    async def aclose(self) -> None:
        """Close the connection and stop reconnecting."""
        await self._link.stop()

    async def __aenter__(self) -> PolymarketSportsSource:
        self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # -- ScoreboardSource ----------------------------------------------------------------------
    async def poll(self) -> list[Game]:
        """The games of the next good frame (waits for it); ``last_recv_ns`` is its stamp."""
        self.start()
        self._link.revive()
        recv_ns, text, games = await self._queue.get()
        self.stats.polls += 1
        self.stats.ok += 1
        self.last_recv_ns = recv_ns
        rec = self.recorder
        if rec is not None:
            try:
                rec.write(self.channel, text, recv_ns)
            except (OSError, ValueError) as exc:  # a full disk must not cost the source
                self.counters.recorder_errors += 1
                if self.counters.recorder_errors == 1:
                    log.error("sports channel: recording failed: %r", exc)
        return games

    # -- link callbacks ------------------------------------------------------------------------
    async def _on_open(self, ws: ClientConnection) -> None:
        self.connected.set()  # nothing to send: the server broadcasts every active game

    def _on_down(self, code: int | None) -> None:
        self.connected.clear()
        log.info("sports channel down (close code %s)", code)

    def _on_frame(self, text: str, recv_ns: int) -> None:
        try:
            games = parse_sport_results(text, stats=self.parse_stats)
        except ValueError as exc:
            self.stats.malformed += 1
            self.stats.last_error = str(exc)[:200]
            raise  # WsLink counts it in decode_stats.malformed and logs it, rate-limited
        for g in games:
            for abbr, name in ((g.home, g.home_name), (g.away, g.away_name)):
                if abbr and name and name != abbr:
                    self.teams.add(g.league, TeamNames(abbreviation=abbr, display_name=name))
        if games:
            q = self._queue
            if q.qsize() >= self.config.max_queued:
                q.get_nowait()
                self.counters.dropped += 1
            q.put_nowait((recv_ns, text, games))

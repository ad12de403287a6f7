"""One reconnecting WebSocket connection: the loop the market and user feeds share.

A ``WsLink`` connects (open timeout, frame-size cap, no compression, no library pings), lets
its feed subscribe (``on_open(ws)``), then for every frame: takes the wall-clock receive time
(ns since the epoch), records it (``recorder``), counts a ``PONG``, and hands anything else to
the feed's ``on_frame(frame, recv_ns)``. A text ``PING`` goes out every ``ping_s``; a socket
silent (not even ``PONG``) for ``silence_s`` is closed. A channel whose *server* pings (the
sports channel: ``server_ping="ping"``) is answered instead: each such frame is counted in
``pings`` and answered at once with ``server_pong`` (counted in ``pongs``), and the link sends
no pings of its own (``ping_s`` then only paces the silence check). When the socket goes,
``on_down(code)`` runs (close code or None) and the link reconnects after ``backoff_delay_s``.

Nothing a frame holds can end the loop: an exception from ``on_frame`` counts the frame as
malformed (in the feed's ``DecodeStats``) and is logged, rate-limited; a text frame that is not
UTF-8 makes the library close the socket (1007), which is counted the same way and followed by
a reconnect; an unexpected error in the loop itself is logged and reconnected like a network
error. Should the task still end (cancelled from outside, a bug), ``revive()``, called by the
feed's watchdog, starts it again and counts ``restarts``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable
from typing import Protocol

import websockets
from websockets.asyncio.client import ClientConnection, connect

from polylab.feed.decode import DecodeStats, RateLimitedLog
from polylab.feed.recording import RecordingWriter

__all__ = ["LinkConfig", "LinkCounters", "WsLink", "backoff_delay_s"]

log = logging.getLogger(__name__)

_INVALID_DATA = 1007
"""Close code the library sends when a text frame is not valid UTF-8."""


def backoff_delay_s(
    attempt: int, min_ms: int, max_ms: int, jitter: float, rng: random.Random
) -> float:
    """Reconnect delay (s) before attempt ``attempt`` (0-based): ``min·2^attempt`` capped at
    ``max``, minus a random fraction up to ``jitter`` of it (spreads reconnect storms)."""
    base = min(max_ms, min_ms * (1 << min(attempt, 30)))
    return base * (1.0 - jitter * rng.random()) / 1000.0


class LinkConfig(Protocol):
    """The connection settings both feed configs carry (times in the unit of their name)."""

    @property
    def url(self) -> str: ...
    @property
    def ping_s(self) -> float: ...
    @property
    def silence_s(self) -> float: ...
    @property
    def open_timeout_s(self) -> float: ...
    @property
    def backoff_min_ms(self) -> int: ...
    @property
    def backoff_max_ms(self) -> int: ...
    @property
    def backoff_jitter(self) -> float: ...
    @property
    def max_frame_bytes(self) -> int: ...


class LinkCounters(Protocol):
    """The connection counters both feeds expose (monotonic)."""

    frames: int
    malformed: int
    pongs: int
    pings: int
    connects: int
    reconnects: int
    disconnects: int
    restarts: int
    recorder_errors: int


class WsLink:
    """One WebSocket kept open until ``stop`` (or until ``keep_running()`` turns False).

    ``name`` labels logs and the task; ``channel`` is the recording channel. ``stats`` is the
    feed decoder's: frames that raise are counted in its ``malformed`` (mirrored into
    ``counters.malformed``). ``attempt`` (backoff step) returns to 0 once a frame is handled.
    """

    def __init__(
        self,
        name: str,
        config: LinkConfig,
        *,
        channel: str,
        counters: LinkCounters,
        stats: DecodeStats,
        bad_log: RateLimitedLog,
        on_open: Callable[[ClientConnection], Awaitable[None]],
        on_frame: Callable[[str, int], None],
        on_down: Callable[[int | None], None],
        keep_running: Callable[[], bool],
        recorder: RecordingWriter | None = None,
        on_pong: Callable[[], None] | None = None,
        rng: random.Random | None = None,
        server_ping: str | None = None,
        server_pong: str = "pong",
    ) -> None:
        self.name = name
        self.config = config
        self.channel = channel
        self.counters = counters
        self.stats = stats
        self.recorder = recorder
        self.task: asyncio.Task[None] | None = None
        self.attempt = 0
        self.last_recv_ns = 0
        self.reconnects = 0
        """This link's reconnections (the feed-wide count is ``counters.reconnects``)."""
        self._bad_log = bad_log
        self._on_open = on_open
        self._on_frame = on_frame
        self._on_down = on_down
        self._on_pong = on_pong
        self._keep_running = keep_running
        self._rng = rng or random.Random()
        self._stopped = False
        self._server_ping = server_ping
        self._server_pong = server_pong

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self) -> None:
        """Start the connection task (no-op while it runs)."""
        if self.task is None or self.task.done():
            self._stopped = False
            self.task = asyncio.create_task(self._run(), name=self.name)

    def revive(self) -> bool:
        """Restart the task if it ended while it should still run; True when restarted."""
        t = self.task
        if self._stopped or t is None or not t.done() or not self._keep_running():
            return False
        why = "cancelled" if t.cancelled() else repr(t.exception())
        log.error("%s: connection task ended (%s); restarting it", self.name, why)
        self.counters.restarts += 1
        self.task = asyncio.create_task(self._run(), name=self.name)
        return True

    async def stop(self) -> None:
        """Cancel the task and wait for it (its socket closes)."""
        self._stopped = True
        t = self.task
        if t is not None:
            t.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t

    # -- connection ----------------------------------------------------------------------------
    async def _run(self) -> None:
        cfg, c = self.config, self.counters
        while not self._stopped and self._keep_running():
            up = False
            code: int | None = None
            try:
                async with connect(
                    cfg.url,
                    compression=None,
                    ping_interval=None,
                    proxy=None,
                    open_timeout=cfg.open_timeout_s,
                    close_timeout=1.0,
                    max_size=cfg.max_frame_bytes,
                    max_queue=None,
                ) as ws:
                    await self._on_open(ws)
                    up = True
                    c.connects += 1
                    await self._session(ws)
                code = ws.close_code
            except asyncio.CancelledError:
                raise
            except websockets.ConnectionClosed as exc:
                code = exc.rcvd.code if exc.rcvd is not None else None
                if exc.sent is not None and exc.sent.code == _INVALID_DATA:
                    self._bad("a text frame that is not UTF-8", exc)
                log.info("%s: connection closed: %s", self.name, exc)
            except (OSError, TimeoutError, websockets.WebSocketException) as exc:
                log.info("%s: connection lost: %r", self.name, exc)
            except Exception:  # a bug must cost a reconnect, not the feed
                log.exception("%s: connection loop failed; reconnecting", self.name)
            finally:
                if up:
                    c.disconnects += 1
                try:
                    self._on_down(code)
                except Exception:
                    log.exception("%s: on_down failed", self.name)
            if self._stopped or not self._keep_running():
                break
            c.reconnects += 1
            self.reconnects += 1
            delay = backoff_delay_s(
                self.attempt,
                cfg.backoff_min_ms,
                cfg.backoff_max_ms,
                cfg.backoff_jitter,
                self._rng,
            )
            self.attempt += 1
            await asyncio.sleep(delay)

    async def _session(self, ws: ClientConnection) -> None:
        self.last_recv_ns = time.time_ns()
        pinger = asyncio.create_task(self._ping(ws))
        c = self.counters
        channel = self.channel
        on_frame = self._on_frame
        try:
            async for frame in ws:
                recv_ns = time.time_ns()
                self.last_recv_ns = recv_ns
                c.frames += 1
                text = frame if isinstance(frame, str) else frame.decode("utf-8", "replace")
                rec = self.recorder  # read per frame: the feed may let go of it at any time
                if rec is not None:
                    try:
                        rec.write(channel, text, recv_ns)
                    except (OSError, ValueError) as exc:  # a full disk must not cost the feed
                        c.recorder_errors += 1
                        if c.recorder_errors == 1:
                            log.error("%s: recording failed, frames unrecorded: %r", self.name, exc)
                if text == self._server_ping:
                    c.pings += 1
                    await ws.send(self._server_pong)
                    c.pongs += 1
                    continue
                if text == "PONG":
                    c.pongs += 1
                    if self._on_pong is not None:
                        self._on_pong()
                    continue
                try:
                    on_frame(text, recv_ns)
                except Exception as exc:  # one frame must never end the connection
                    self._bad(text, exc)
                    continue
                if self.attempt:
                    self.attempt = 0
        finally:
            pinger.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pinger

    def _bad(self, text: str, exc: BaseException) -> None:
        st = self.stats
        st.malformed += 1
        self.counters.malformed = st.malformed
        self._bad_log.warning(
            "%s: frame dropped (%s: %.200s): %.300s", self.name, type(exc).__name__, exc, text
        )

    async def _ping(self, ws: ClientConnection) -> None:
        cfg = self.config
        silence_ns = int(cfg.silence_s * 1e9)
        with contextlib.suppress(websockets.ConnectionClosed):
            while True:
                await asyncio.sleep(cfg.ping_s)
                if time.time_ns() - self.last_recv_ns > silence_ns:
                    log.warning("%s: silent for %.1fs, reconnecting", self.name, cfg.silence_s)
                    await ws.close()
                    return
                if self._server_ping is not None:
                    continue
                await ws.send("PING")
                self.counters.pings += 1

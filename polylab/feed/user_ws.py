"""User WebSocket client: this API key's ``order`` and ``trade`` events (protocol doc §2).

One socket subscribes with ``{"auth": {"apiKey", "secret", "passphrase"}, "markets": [...],
"type": "user"}`` (``markets`` = condition ids, an optional filter), sends the text ``PING``
every ``ping_s`` and reconnects with exponential backoff and jitter (``polylab.feed.ws_link``,
shared with the market feed: a bad frame is counted, never fatal; a watchdog restarts the
connection task should it end). Frames are decoded by
``polylab.feed.decode.user_decoder()`` into ``UserOrder`` / ``UserTrade`` and handed to
``on_event(recv_ns, event)`` synchronously. A ``PING`` follows the subscription at once, so the
first ``PONG`` proves the server has processed it (``wait_ready``).

Events sent while disconnected are lost by the venue; after a reconnect, reconcile open orders
and trades over REST (``AsyncClobRest.get_open_orders`` / ``get_trades``). The credentials go
only into the subscription message: never logged, recorded or shown in a repr. An
authentication refusal (close code 1008) is counted (``auth_failures``) and retried at the
longest backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable, Iterable
from typing import Annotated

import msgspec
import websockets
from websockets.asyncio.client import ClientConnection

from polylab.errors import ConfigError
from polylab.feed.decode import RateLimitedLog, user_decoder
from polylab.feed.recording import RecordingWriter
from polylab.feed.wire import UserEvent, UserOrder, UserTrade
from polylab.feed.ws_link import WsLink
from polylab.secret import ApiCreds

__all__ = ["UserFeed", "UserFeedConfig", "UserFeedCounters"]

log = logging.getLogger(__name__)

_POLICY_VIOLATION = 1008
Pos = Annotated[float, msgspec.Meta(gt=0)]


class UserFeedConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """User-channel client settings.

    ``url``: the ``/ws/user`` endpoint. ``markets``: condition ids to receive (empty = all).
    ``ping_s``: text PING period; ``silence_s``: no frame at all (not even PONG) for this long ⇒
    reconnect. ``backoff_*``: reconnect delay range (ms) and its random fraction.
    ``max_frame_bytes``: largest accepted frame. ``check_every_ms``: watchdog period (a dead
    connection task is restarted).
    """

    url: str
    markets: tuple[str, ...] = ()
    ping_s: Pos = 10.0
    silence_s: Pos = 30.0
    open_timeout_s: Pos = 10.0
    backoff_min_ms: Annotated[int, msgspec.Meta(ge=1)] = 100
    backoff_max_ms: Annotated[int, msgspec.Meta(ge=1)] = 10_000
    backoff_jitter: Annotated[float, msgspec.Meta(ge=0, le=1)] = 0.5
    max_frame_bytes: Annotated[int, msgspec.Meta(ge=1024)] = 16 * 1024 * 1024
    check_every_ms: Annotated[int, msgspec.Meta(ge=1)] = 1_000


class UserFeedCounters(msgspec.Struct):
    """Counters for metrics."""

    frames: int = 0
    events: int = 0
    orders: int = 0
    trades: int = 0
    malformed: int = 0
    unknown: int = 0
    pongs: int = 0
    pings: int = 0
    connects: int = 0
    reconnects: int = 0
    disconnects: int = 0
    auth_failures: int = 0
    callback_errors: int = 0
    recorder_errors: int = 0
    restarts: int = 0


class UserFeed:
    """The user channel of one API key. ``async with UserFeed(cfg, creds, on_event=f) as feed``."""

    def __init__(
        self,
        config: UserFeedConfig,
        creds: ApiCreds,
        *,
        on_event: Callable[[int, UserEvent], None] | None = None,
        recorder: RecordingWriter | None = None,
        rng: random.Random | None = None,
    ) -> None:
        if not config.url.startswith(("ws://", "wss://")):
            raise ConfigError(f"url must be a ws:// or wss:// address, was {config.url!r}")
        self.config = config
        self._creds = creds
        self.on_event = on_event
        self.counters = UserFeedCounters()
        self.markets: dict[str, None] = dict.fromkeys(config.markets)
        self._decoder = user_decoder(max_frame_bytes=config.max_frame_bytes)
        self._ws: ClientConnection | None = None
        self._watchdog: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()
        self._closing = False
        self._link = WsLink(
            "user feed",
            config,
            channel="user",
            counters=self.counters,
            stats=self._decoder.stats,
            bad_log=RateLimitedLog(log),
            on_open=self._open,
            on_frame=self._on_frame,
            on_down=self._down,
            on_pong=self._pong,
            keep_running=lambda: not self._closing,
            recorder=recorder,
            rng=rng,
        )

    @property
    def recorder(self) -> RecordingWriter | None:
        """Where frames are recorded; set None to stop recording from the next frame on."""
        return self._link.recorder

    @recorder.setter
    def recorder(self, writer: RecordingWriter | None) -> None:
        self._link.recorder = writer

    def __repr__(self) -> str:
        return (
            f"UserFeed(url={self.config.url!r}, api_key={self._creds.api_key!r}, "
            f"markets={len(self.markets)}, connected={self._ws is not None})"
        )

    # -- lifecycle -----------------------------------------------------------------------------
    async def __aenter__(self) -> UserFeed:
        self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def start(self) -> None:
        """Connect (in the background) and keep connected until ``close``."""
        if self._watchdog is None:
            self._closing = False
            self._link.start()
            self._watchdog = asyncio.create_task(self._supervise(), name="user-feed-watchdog")

    async def close(self) -> None:
        """Stop and close the socket."""
        self._closing = True
        if self._watchdog is not None:
            self._watchdog.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._watchdog
            self._watchdog = None
        await self._link.stop()

    @property
    def connected(self) -> bool:
        """True while subscribed on an open socket."""
        return self._ws is not None

    async def wait_ready(self, timeout_s: float) -> bool:
        """Wait until the server has processed the subscription (first PONG after it)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._ready.wait(), timeout_s)
        return self._ready.is_set()

    async def subscribe_markets(self, condition_ids: Iterable[str]) -> None:
        """Add condition ids to the filter (sent on the open socket, kept for reconnects)."""
        new = [m for m in dict.fromkeys(condition_ids) if m not in self.markets]
        self.markets.update(dict.fromkeys(new))
        await self._send_op("subscribe", new)

    async def unsubscribe_markets(self, condition_ids: Iterable[str]) -> None:
        """Remove condition ids from the filter."""
        gone = [m for m in dict.fromkeys(condition_ids) if m in self.markets]
        for m in gone:
            del self.markets[m]
        await self._send_op("unsubscribe", gone)

    async def _send_op(self, op: str, markets: list[str]) -> None:
        if self._ws is not None and markets:
            with contextlib.suppress(websockets.ConnectionClosed):
                await self._ws.send(
                    msgspec.json.encode({"markets": markets, "operation": op}).decode()
                )

    # -- connection ----------------------------------------------------------------------------
    async def _open(self, ws: ClientConnection) -> None:
        """Subscribe with the credentials, then PING: the first PONG proves it was processed."""
        creds = self._creds
        sub = {
            "auth": {
                "apiKey": creds.api_key,
                "secret": creds.secret.reveal(),
                "passphrase": creds.passphrase.reveal(),
            },
            "markets": list(self.markets),
            "type": "user",
        }
        await ws.send(msgspec.json.encode(sub).decode())
        await ws.send("PING")
        self._ws = ws

    def _down(self, code: int | None) -> None:
        self._ws = None
        self._ready.clear()
        if code == _POLICY_VIOLATION and not self._closing:
            self.counters.auth_failures += 1
            log.error("user feed: the server refused the API credentials (1008)")
            self._link.attempt = 30

    def _pong(self) -> None:
        if not self._ready.is_set():
            self._ready.set()
            self._link.attempt = 0

    async def _supervise(self) -> None:
        """Watchdog: restart the connection task should it ever end while the feed runs."""
        while True:
            await asyncio.sleep(self.config.check_every_ms / 1000.0)
            self._link.revive()

    # -- hot path ------------------------------------------------------------------------------
    def _on_frame(self, frame: str, recv_ns: int) -> None:
        """One user frame (not ``PONG``; ``WsLink`` has counted and recorded it)."""
        c = self.counters
        dec = self._decoder
        events = dec.decode(frame)
        c.malformed, c.unknown = dec.stats.malformed, dec.stats.unknown
        cb = self.on_event
        for ev in events:
            c.events += 1
            if isinstance(ev, UserTrade):
                c.trades += 1
            elif isinstance(ev, UserOrder):
                c.orders += 1
            if cb is not None:
                try:
                    cb(recv_ns, ev)
                except Exception:
                    c.callback_errors += 1
                    log.exception("user feed: on_event callback failed")

"""Market WebSocket client: books kept right through disconnects, drops, stalls and reorders.

It lives in ``book/`` because it keeps books: the socket handling itself is the feed's
(``feed.ws_link``), frames are the feed's (``feed.wire``, ``feed.decode``); this layer applies
them to a ``BookRegistry`` and decides when a book must be rebuilt.

Shape (protocol doc §1): tokens are sharded over connections (``assets_per_connection``, the
venue sends no snapshots above 500 per socket); each shard subscribes with
``{"assets_ids": [...], "type": "market", "custom_feature_enabled": true}``, sends the text
``PING`` every ``ping_s`` and reconnects with exponential backoff and jitter (the connection
loop is ``polylab.feed.ws_link.WsLink``, shared with the user feed: a frame that cannot be
decoded or applied is counted in ``malformed`` and skipped, and the watchdog restarts a shard
task that ended). Frames go through
``polylab.feed.decode.market_decoder()`` into a ``BookRegistry`` and then to ``on_event(recv_ns,
event)``; that hot path is synchronous and short (no awaits, no allocation beyond decoding).

How a book is known to be wrong, and how it is healed (the heal is always a fresh snapshot, in
stream order, by unsubscribing and re-subscribing the token on its open socket):

* **disconnect**: every book of the shard gets ``needs_snapshot`` (and is flagged stale) until
  the reconnect's initial dump replaces it;
* **gap**: each current-schema ``price_change`` states the asset's best bid/ask *after* the
  change; if the rebuilt book disagrees an update was lost (dropped, garbled or reordered
  frame) → ``needs_snapshot`` and a resync of both tokens of the market;
* **quiet** (watchdog): no event for a token in ``stale_after_ms`` → flagged stale, ``on_stale``
  called, and (``stale_action``) the token re-subscribed or the shard reconnected;
* **silent level loss** (a dropped change below the top): optional REST reconciliation every
  ``reconcile_every_s`` compares local books with ``book_source`` (e.g.
  ``AsyncClobRest.get_books``) when both are at the same version (equal hash) or the local book
  has been quiet for ``reconcile_quiet_ms``; a difference triggers a resync;
* a requested snapshot that does not come within ``snapshot_timeout_ms`` is requested again; a
  socket silent (not even ``PONG``) for ``silence_s`` is closed and reconnected.

Times: ``recv_ns`` and the staleness clock are wall-clock ns (``time.time_ns``).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import random
import time
from collections.abc import Callable, Iterable
from typing import Annotated, Literal

import msgspec
from websockets.asyncio.client import ClientConnection

from polylab.book.feed_health import (
    BookSource,
    FeedCounters,
    FeedHealth,
    Shard,
    StaleReason,
    backoff_delay_s,
)
from polylab.book.registry import BookRegistry
from polylab.errors import ConfigError
from polylab.feed.decode import RateLimitedLog, market_decoder
from polylab.feed.recording import RecordingWriter
from polylab.feed.wire import Book, MarketEvent, PriceChange, TickSizeChange
from polylab.feed.ws_link import WsLink
from polylab.money import MoneyError, parse_micros

__all__ = [
    "BookSource",
    "FeedCounters",
    "MarketFeed",
    "MarketFeedConfig",
    "backoff_delay_s",
]

log = logging.getLogger(__name__)

Pos = Annotated[float, msgspec.Meta(gt=0)]
NonNeg = Annotated[float, msgspec.Meta(ge=0)]


class MarketFeedConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Market-channel client settings (times carry their unit in the name).

    ``url``: the ``/ws/market`` endpoint. ``assets_per_connection``: shard size (venue: no
    snapshots above 500). ``ping_s``: text PING period. ``silence_s``: no frame at all (not even
    PONG) for this long ⇒ reconnect. ``stale_after_ms``: no event for a token this long ⇒ stale
    (0 = watchdog off). ``stale_action``: what a quiet token triggers. ``check_every_ms``:
    watchdog period. ``snapshot_timeout_ms``: re-request a snapshot not received in time.
    ``resync_on_gap``: resync when a ``price_change`` contradicts the book.
    ``backoff_min_ms``/``backoff_max_ms``/``backoff_jitter``: reconnect delay range and the
    random fraction taken off it. ``reconcile_every_s``: REST check period (0 = off; needs a
    ``book_source``); ``reconcile_quiet_ms``: how long a book must be unchanged before a check
    that cannot rely on equal hashes. ``max_frame_bytes``: largest accepted frame.
    """

    url: str
    assets_per_connection: Annotated[int, msgspec.Meta(ge=1, le=500)] = 200
    custom_feature_enabled: bool = True
    ping_s: Pos = 10.0
    silence_s: Pos = 30.0
    open_timeout_s: Pos = 10.0
    stale_after_ms: Annotated[int, msgspec.Meta(ge=0)] = 60_000
    stale_action: Literal["none", "resubscribe", "reconnect"] = "resubscribe"
    check_every_ms: Annotated[int, msgspec.Meta(ge=1)] = 250
    snapshot_timeout_ms: Annotated[int, msgspec.Meta(ge=1)] = 5_000
    resync_on_gap: bool = True
    backoff_min_ms: Annotated[int, msgspec.Meta(ge=1)] = 100
    backoff_max_ms: Annotated[int, msgspec.Meta(ge=1)] = 10_000
    backoff_jitter: Annotated[float, msgspec.Meta(ge=0, le=1)] = 0.5
    reconcile_every_s: NonNeg = 0.0
    reconcile_quiet_ms: Annotated[int, msgspec.Meta(ge=0)] = 1_000
    max_frame_bytes: Annotated[int, msgspec.Meta(ge=1024)] = 16 * 1024 * 1024


class MarketFeed(FeedHealth):
    """The market channel over one or more sockets, feeding a ``BookRegistry``.

    Use ``async with MarketFeed(cfg, registry) as feed: await feed.subscribe(ids)``.
    ``on_event(recv_ns, event)`` and ``on_stale(token_id, reason)`` run synchronously on the loop;
    their exceptions are counted (``callback_errors``) and logged, never propagated.
    """

    def __init__(
        self,
        config: MarketFeedConfig,
        registry: BookRegistry | None = None,
        *,
        on_event: Callable[[int, MarketEvent], None] | None = None,
        on_stale: Callable[[str, StaleReason], None] | None = None,
        recorder: RecordingWriter | None = None,
        book_source: BookSource | None = None,
        rng: random.Random | None = None,
    ) -> None:
        if not config.url.startswith(("ws://", "wss://")):
            raise ConfigError(f"url must be a ws:// or wss:// address, was {config.url!r}")
        if config.backoff_min_ms > config.backoff_max_ms:
            raise ConfigError(
                f"backoff_min_ms {config.backoff_min_ms} > backoff_max_ms {config.backoff_max_ms}"
            )
        self.config = config
        self.registry = registry if registry is not None else BookRegistry()
        self.on_event = on_event
        self.on_stale = on_stale
        self._recorder = recorder
        self.book_source = book_source
        self.counters = FeedCounters()
        self.stale: set[str] = set()
        self.shards: list[Shard] = []
        self._decoder = market_decoder(max_frame_bytes=config.max_frame_bytes)
        self._bad_log = RateLimitedLog(log)
        self._rng = rng or random.Random()
        self._shard_of: dict[str, Shard] = {}
        self._last: dict[str, int] = {}
        self._resync_at: dict[str, int] = {}
        self._closing = False
        self._tasks: list[asyncio.Task[None]] = []
        self._shard_no = 0

    @property
    def recorder(self) -> RecordingWriter | None:
        """Where frames are recorded; set None to stop recording from the next frame on."""
        return self._recorder

    @recorder.setter
    def recorder(self, writer: RecordingWriter | None) -> None:
        self._recorder = writer
        for sh in self.shards:
            if sh.link is not None:
                sh.link.recorder = writer

    # -- lifecycle -----------------------------------------------------------------------------
    async def __aenter__(self) -> MarketFeed:
        self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def start(self) -> None:
        """Start the watchdog and reconciliation tasks (shards start on ``subscribe``)."""
        if self._tasks:
            return
        self._tasks.append(asyncio.create_task(self._watchdog(), name="market-feed-watchdog"))
        if self.config.reconcile_every_s > 0 and self.book_source is not None:
            self._tasks.append(asyncio.create_task(self._reconciler(), name="market-reconcile"))

    async def close(self) -> None:
        """Stop every task and close every socket."""
        self._closing = True
        tasks = list(self._tasks)
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        for sh in self.shards:
            if sh.link is not None:
                await sh.link.stop()
        self._tasks.clear()

    # -- subscriptions -------------------------------------------------------------------------
    @property
    def token_ids(self) -> list[str]:
        """Every subscribed token."""
        return list(self._shard_of)

    async def subscribe(self, token_ids: Iterable[str]) -> None:
        """Subscribe more tokens: fill shards that have room, then open new shards."""
        self.start()
        now = time.time_ns()
        new = [t for t in dict.fromkeys(token_ids) if t not in self._shard_of]
        cap = self.config.assets_per_connection
        i = 0
        while new:
            if i < len(self.shards):
                sh = self.shards[i]
                i += 1
            else:
                sh = self._new_shard()
                i = len(self.shards)
            room = cap - len(sh.tokens)
            if room <= 0:
                continue
            batch, new = new[:room], new[room:]
            for t in batch:
                sh.tokens[t] = None
                self._shard_of[t] = sh
                self._last[t] = now
            if sh.link is None:
                sh.link = self._link(sh)
                sh.link.start()
            elif sh.ws is not None:
                await self._send_op(sh, "subscribe", batch)

    def _new_shard(self) -> Shard:
        self._shard_no += 1
        sh = Shard(self._shard_no)
        self.shards.append(sh)
        return sh

    async def unsubscribe(self, token_ids: Iterable[str]) -> None:
        """Drop tokens: their books leave the registry; an emptied shard is closed."""
        by_shard: dict[int, tuple[Shard, list[str]]] = {}
        for t in dict.fromkeys(token_ids):
            sh = self._shard_of.pop(t, None)
            if sh is None:
                continue
            sh.tokens.pop(t, None)
            sh.pending.pop(t, None)
            self._last.pop(t, None)
            self._resync_at.pop(t, None)
            self.stale.discard(t)
            self.registry.books.pop(t, None)
            by_shard.setdefault(sh.no, (sh, []))[1].append(t)
        for sh, ids in by_shard.values():
            if not sh.tokens:
                self.shards.remove(sh)
                if sh.link is not None:
                    await sh.link.stop()
            elif sh.ws is not None:
                await self._send_op(sh, "unsubscribe", ids)

    def _link(self, sh: Shard) -> WsLink:
        return WsLink(
            f"market shard {sh.no}",
            self.config,
            channel="market",
            counters=self.counters,
            stats=self._decoder.stats,
            bad_log=self._bad_log,
            on_open=functools.partial(self._open, sh),
            on_frame=functools.partial(self._on_frame, sh),
            on_down=functools.partial(self._down, sh),
            keep_running=lambda: not self._closing and bool(sh.tokens),
            recorder=self._recorder,
            rng=self._rng,
        )

    async def _open(self, sh: Shard, ws: ClientConnection) -> None:
        """Subscribe the shard's tokens on a fresh socket (their snapshots are now owed)."""
        cfg = self.config
        sent = list(sh.tokens)
        deadline = time.time_ns() + cfg.snapshot_timeout_ms * 1_000_000
        sh.pending = dict.fromkeys(sent, deadline)
        await ws.send(
            msgspec.json.encode(
                {
                    "assets_ids": sent,
                    "type": "market",
                    "custom_feature_enabled": cfg.custom_feature_enabled,
                }
            ).decode()
        )
        sh.ws = ws
        late = [t for t in sh.tokens if t not in sh.pending]
        if late:
            await self._send_op(sh, "subscribe", late)

    def _down(self, sh: Shard, code: int | None) -> None:
        sh.ws = None
        self._lost(sh)

    def _lost(self, sh: Shard) -> None:
        """A shard's socket is gone: its books wait for the reconnect's snapshots."""
        books = self.registry.books
        sh.pending.clear()
        for t in sh.tokens:
            b = books.get(t)
            if b is not None:
                b.needs_snapshot = True
            self._flag(t, "disconnected")

    # -- hot path ------------------------------------------------------------------------------
    def _on_frame(self, sh: Shard, frame: str, recv_ns: int) -> None:
        """One market frame (not ``PONG``; ``WsLink`` has counted and recorded it)."""
        c = self.counters
        dec = self._decoder
        events = dec.decode(frame)
        st = dec.stats
        c.malformed = st.malformed
        c.unknown = st.unknown
        if not events:
            return
        c.events += len(events)
        reg, cb = self.registry, self.on_event
        for ev in events:
            try:
                reg.apply(ev, recv_ns)
            except Exception as exc:  # an event that breaks a book invariant must not stop the feed
                c.apply_errors += 1
                st.malformed += 1
                c.malformed = st.malformed
                self._bad_log.warning(
                    "market feed: applying %s failed (%r): %.300s", type(ev).__name__, exc, frame
                )
                aid = getattr(ev, "asset_id", None)
                if isinstance(aid, str) and aid in self._shard_of:
                    self._gap(sh, aid)
                continue
            if isinstance(ev, PriceChange):
                self._after_change(sh, ev, recv_ns)
            elif isinstance(ev, Book):
                self._after_book(sh, ev.asset_id, recv_ns)
            else:
                aid = getattr(ev, "asset_id", None)
                if aid is not None and aid in self._last:
                    self._last[aid] = recv_ns
                    if isinstance(ev, TickSizeChange):
                        b = reg.books.get(aid)
                        if b is not None and b.needs_snapshot:
                            self._gap(sh, aid)
                    self._fresh(aid)
            if cb is not None:
                try:
                    cb(recv_ns, ev)
                except Exception:
                    c.callback_errors += 1
                    log.exception("market feed: on_event callback failed")

    def _after_book(self, sh: Shard, aid: str, recv_ns: int) -> None:
        if aid in self._last:
            self._last[aid] = recv_ns
            sh.pending.pop(aid, None)
            self._fresh(aid)

    def _after_change(self, sh: Shard, ev: PriceChange, recv_ns: int) -> None:
        entries = ev.price_changes
        last = self._last
        if entries is None:
            aid = ev.asset_id
            if aid is not None and aid in last:
                last[aid] = recv_ns
                self._fresh(aid)
            return
        final = {e.asset_id: e for e in entries}
        books = self.registry.books
        check = self.config.resync_on_gap
        for aid, e in final.items():
            if aid not in last:
                continue
            last[aid] = recv_ns
            b = books.get(aid)
            if (
                check
                and b is not None
                and not b.needs_snapshot
                and aid not in sh.pending
                and e.best_bid is not None
                and e.best_ask is not None
            ):
                try:
                    bad = b.best_bid_micros() != parse_micros(
                        e.best_bid
                    ) or b.best_ask_micros() != parse_micros(e.best_ask)
                except MoneyError:
                    bad = False
                if bad:
                    self.counters.gaps += 1
                    self._gap(sh, aid)
                    continue
            self._fresh(aid)

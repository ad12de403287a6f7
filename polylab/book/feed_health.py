"""Self-healing of the market feed: staleness watchdog, gap resync, REST reconciliation.

``FeedHealth`` is the half of ``polylab.book.market_feed.MarketFeed`` that decides when a book can
no longer be trusted and asks for a fresh snapshot (unsubscribe + subscribe on the open socket:
the venue answers with a ``book`` in stream order). See the ``book.market_feed`` docstring for the
rules; this module holds the counters and the shard record too. Its watchdog also restarts a
shard's connection task that ended (``WsLink.revive``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from typing import TYPE_CHECKING, Any, Literal

import msgspec
import websockets
from websockets.asyncio.client import ClientConnection

from polylab.book.l2 import L2Book
from polylab.book.registry import BookRegistry
from polylab.feed.ws_link import WsLink, backoff_delay_s

if TYPE_CHECKING:
    from polylab.book.market_feed import MarketFeedConfig

__all__ = ["BookSource", "FeedCounters", "FeedHealth", "Shard", "StaleReason", "backoff_delay_s"]

log = logging.getLogger(__name__)

BookSource = Callable[[list[str]], Awaitable[list[L2Book]]]
"""Fetches reference books (e.g. ``AsyncClobRest.get_books``) for reconciliation."""
StaleReason = Literal["quiet", "disconnected", "gap", "reconcile"]
"""Why a token was flagged: no event for too long, its socket dropped, a ``price_change``
contradicted the book, or the REST reference differed."""


class FeedCounters(msgspec.Struct):
    """Counters for metrics (monotonic; ``malformed``/``unknown`` mirror the decoder's)."""

    frames: int = 0
    events: int = 0
    malformed: int = 0
    """Frames (or events in them) that could not be used: undecodable, or raised when applied."""
    unknown: int = 0
    pongs: int = 0
    pings: int = 0
    connects: int = 0
    reconnects: int = 0
    disconnects: int = 0
    gaps: int = 0
    stale_flags: int = 0
    resyncs: int = 0
    snapshot_timeouts: int = 0
    reconcile_checks: int = 0
    reconcile_mismatches: int = 0
    callback_errors: int = 0
    apply_errors: int = 0
    recorder_errors: int = 0
    restarts: int = 0
    """Connection tasks found dead by the watchdog and started again."""


class Shard:
    """One connection: its tokens, its link (``polylab.feed.ws_link.WsLink``), the socket while
    subscribed, and outstanding snapshot requests."""

    def __init__(self, no: int) -> None:
        self.no = no
        self.tokens: dict[str, None] = {}
        self.ws: ClientConnection | None = None
        self.link: WsLink | None = None
        self.pending: dict[str, int] = {}
        """token → deadline (ns) of a requested snapshot."""


class FeedHealth:
    """Staleness flags, resync requests, watchdog and reconciliation (mixin of ``MarketFeed``)."""

    config: MarketFeedConfig
    registry: BookRegistry
    counters: FeedCounters
    on_stale: Callable[[str, StaleReason], None] | None
    book_source: BookSource | None
    stale: set[str]
    shards: list[Shard]
    _shard_of: dict[str, Shard]
    _last: dict[str, int]
    _resync_at: dict[str, int]
    _tasks: list[asyncio.Task[None]]
    _closing: bool

    async def resync(self, token_ids: Iterable[str] | None = None) -> None:
        """Ask for fresh snapshots (all subscribed tokens by default)."""
        ids = list(self._shard_of) if token_ids is None else list(token_ids)
        for sh, batch in self._group(ids).items():
            await self._resubscribe(sh, batch, force=True)

    def _group(self, ids: Iterable[str]) -> dict[Shard, list[str]]:
        out: dict[Shard, list[str]] = {}
        for t in ids:
            sh = self._shard_of.get(t)
            if sh is not None:
                out.setdefault(sh, []).append(t)
        return out

    async def _send_op(self, sh: Shard, op: str, ids: list[str]) -> None:
        ws = sh.ws
        if ws is None or not ids:
            return
        msg = {
            "assets_ids": ids,
            "operation": op,
            "custom_feature_enabled": self.config.custom_feature_enabled,
        }
        if op == "subscribe":
            deadline = time.time_ns() + self.config.snapshot_timeout_ms * 1_000_000
            for t in ids:
                sh.pending[t] = deadline
        with contextlib.suppress(websockets.ConnectionClosed):
            await ws.send(msgspec.json.encode(msg).decode())

    async def _resubscribe(self, sh: Shard, ids: list[str], *, force: bool = False) -> None:
        """Unsubscribe + subscribe on the open socket: the venue then sends a fresh ``book``."""
        now = time.time_ns()
        gap_ns = self.config.snapshot_timeout_ms * 1_000_000
        ids = [t for t in ids if force or now - self._resync_at.get(t, 0) >= gap_ns]
        if not ids or sh.ws is None:
            return
        for t in ids:
            self._resync_at[t] = now
        self.counters.resyncs += len(ids)
        await self._send_op(sh, "unsubscribe", ids)
        await self._send_op(sh, "subscribe", ids)

    # -- state queries -------------------------------------------------------------------------
    def book(self, token_id: str) -> L2Book | None:
        """The token's book (None before its first snapshot)."""
        return self.registry.books.get(token_id)

    def is_stale(self, token_id: str) -> bool:
        """True when the token is flagged, has no book yet, or its book awaits a snapshot."""
        b = self.registry.books.get(token_id)
        return token_id in self.stale or b is None or b.needs_snapshot

    def all_fresh(self) -> bool:
        """Every subscribed token has a current book (none stale, none awaiting a snapshot)."""
        return not any(self.is_stale(t) for t in self._shard_of)

    async def wait_fresh(self, timeout_s: float) -> bool:
        """Wait until ``all_fresh()`` (polling each ``check_every_ms``); False on timeout."""
        end = time.monotonic() + timeout_s
        while not self.all_fresh():
            if time.monotonic() >= end:
                return False
            await asyncio.sleep(self.config.check_every_ms / 1000.0)
        return True

    # -- flags and resync requests -------------------------------------------------------------
    def _fresh(self, aid: str) -> None:
        if aid in self.stale:
            b = self.registry.books.get(aid)
            if b is not None and not b.needs_snapshot:
                self.stale.discard(aid)

    def _flag(self, aid: str, reason: StaleReason) -> None:
        if aid in self.stale:
            return
        self.stale.add(aid)
        self.counters.stale_flags += 1
        if self.on_stale is not None and not self._closing:
            try:
                self.on_stale(aid, reason)
            except Exception:
                self.counters.callback_errors += 1
                log.exception("market feed: on_stale callback failed")

    def _market_tokens(self, aid: str) -> list[str]:
        m = self.registry.catalog.by_token.get(aid)
        toks = m.token_ids if m is not None else (aid,)
        return [t for t in toks if t in self._shard_of]

    def _gap(self, sh: Shard, aid: str) -> None:
        """The book of ``aid`` cannot be trusted: mark its market and schedule a resync."""
        books = self.registry.books
        ids = self._market_tokens(aid) or [aid]
        for t in ids:
            b = books.get(t)
            if b is not None:
                b.needs_snapshot = True
            self._flag(t, "gap")
        if self.config.resync_on_gap:
            for s, batch in self._group(ids).items():
                self._spawn(self._resubscribe(s, batch))

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.append(task)
        task.add_done_callback(self._forget)

    def _forget(self, task: asyncio.Task[None]) -> None:
        with contextlib.suppress(ValueError):
            self._tasks.remove(task)

    # -- watchdog and reconciliation -----------------------------------------------------------
    async def _watchdog(self) -> None:
        cfg = self.config
        stale_ns = cfg.stale_after_ms * 1_000_000
        while True:
            await asyncio.sleep(cfg.check_every_ms / 1000.0)
            for sh in list(self.shards):
                if sh.link is not None:
                    sh.link.revive()
            try:
                await self._check(time.time_ns(), stale_ns)
            except Exception:
                log.exception("market feed: watchdog check failed")

    async def _check(self, now: int, stale_ns: int) -> None:
        """One watchdog pass: re-request late snapshots, request owed ones (a book flagged
        ``needs_snapshot`` or never received, with no request outstanding), flag quiet tokens
        and apply ``stale_action`` to them."""
        cfg, books = self.config, self.registry.books
        for sh in list(self.shards):
            if sh.ws is None:
                continue
            late = [t for t, d in sh.pending.items() if now > d]
            if late:
                self.counters.snapshot_timeouts += len(late)
                for t in late:
                    sh.pending.pop(t, None)
                await self._resubscribe(sh, late, force=True)
            todo = [
                t
                for t in sh.tokens
                if t not in sh.pending and ((b := books.get(t)) is None or b.needs_snapshot)
            ]
            if stale_ns:
                quiet = [t for t in sh.tokens if now - self._last.get(t, now) > stale_ns]
                for t in quiet:
                    self._flag(t, "quiet")
                if quiet and cfg.stale_action == "reconnect" and sh.ws is not None:
                    for t in quiet:
                        self._last[t] = now
                    await sh.ws.close()
                    continue
                if cfg.stale_action == "resubscribe":
                    todo.extend(t for t in quiet if t not in sh.pending)
            if todo:
                await self._resubscribe(sh, list(dict.fromkeys(todo)))

    async def _reconciler(self) -> None:
        while True:
            await asyncio.sleep(self.config.reconcile_every_s)
            try:
                await self.reconcile_once()
            except Exception as exc:  # REST trouble must not stop the feed
                log.warning("market feed: reconciliation failed: %r", exc)

    async def reconcile_once(self, batch: int = 50) -> int:
        """Compare local books with ``book_source``; resync those that differ. Returns how many
        differed. A book is only judged when the reference has the same hash or the local book
        has been quiet for ``reconcile_quiet_ms`` (otherwise in-flight updates would count)."""
        if self.book_source is None:
            return 0
        c = self.counters
        quiet_ns = self.config.reconcile_quiet_ms * 1_000_000
        books = self.registry.books
        ids = [
            t
            for t, sh in self._shard_of.items()
            if t not in sh.pending and (b := books.get(t)) is not None and not b.needs_snapshot
        ]
        bad: list[str] = []
        for i in range(0, len(ids), batch):
            for ref in await self.book_source(ids[i : i + batch]):
                b = books.get(ref.asset_id)
                sh = self._shard_of.get(ref.asset_id)
                if b is None or sh is None or b.needs_snapshot or ref.asset_id in sh.pending:
                    continue
                same = bool(ref.hash) and ref.hash == b.hash
                if not same and time.time_ns() - self._last.get(ref.asset_id, 0) < quiet_ns:
                    continue
                c.reconcile_checks += 1
                if _levels(b) != _levels(ref):
                    c.reconcile_mismatches += 1
                    bad.append(ref.asset_id)
        for t in bad:
            b = books.get(t)
            if b is not None:
                b.needs_snapshot = True
            self._flag(t, "reconcile")
        for sh, ids2 in self._group(bad).items():
            await self._resubscribe(sh, ids2, force=True)
        return len(bad)


def _levels(b: L2Book) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """Both sides as ``(price micros, size micros)``, best first (grid-free, comparable)."""
    m = b.tick.micros
    return ([(t * m, s) for t, s in b.bid_levels()], [(t * m, s) for t, s in b.ask_levels()])

"""The Redis bus: pub/sub on every channel, plus Redis Streams for the lossless ones.

The background task takes batches from the outbound queue, encodes them (JSON) and writes each
batch in one pipeline: ``PUBLISH`` per message and ``XADD <stream> MAXLEN ~ N <id> m <json>``
per signal, trade or error. Pub/sub is best effort (a message published while Redis is away
is dropped and counted as ``redis_down``); stream messages are kept in a bounded local backlog
until Redis acknowledges them, so the streams catch up after an outage with nothing lost up to
``backlog_max`` (beyond it, ``backlog_full`` counts the drops).

Exactly once: on every (re)connect the bus first reads each stream's last id; a stream
message gets its id ("<ms>-<seq>", above that id and increasing) just before its first write
attempt and keeps it through retries. If a pipeline landed but its reply was lost (Redis died
mid-write), the retry's ``XADD`` is refused as "equal or smaller than the top item"; that is
counted as a ``duplicate`` and skipped, so every message is in its stream once and in order.
Ids say when an entry was first sent (ms); ``ts_ns`` in the message says when it happened.
One bus writes a given stream (one runner per prefix).

While Redis is away nothing waits on it: ``publish`` only touches the queue, and the task keeps
moving the queue into the backlog between reconnect attempts (exponential backoff from
``backoff_min_s`` to ``backoff_max_s``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter, deque
from itertools import islice
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import (
    ClusterDownError,
    MasterDownError,
    OutOfMemoryError,
    ReadOnlyError,
    RedisError,
    ResponseError,
    TryAgainError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from polylab.bus.base import (
    BusHealth,
    Callback,
    QueuedBus,
    StreamEntry,
    StreamIds,
    Subscription,
    parse_stream_id,
    stream_channel,
)
from polylab.bus.messages import (
    STATE,
    STREAMS,
    Message,
    MessageError,
    check_channel,
    decode_message,
    encode_message,
)
from polylab.bus.pubsub_thread import PubSubThread

__all__ = ["BusUnavailable", "RedisBus", "redact_url"]

log = logging.getLogger(__name__)

_DOWN = (RedisConnectionError, RedisTimeoutError, OSError)
_FIELD = b"m"
_TRANSIENT = (OutOfMemoryError, ReadOnlyError, MasterDownError, TryAgainError, ClusterDownError)
_TRANSIENT_CODES = ("NOREPLICAS", "BUSY")
"""Error replies after which Redis may take the same write later: the entry is kept."""


class _Entry:
    """A stream message waiting for Redis: its stream, its id ("" until first sent), JSON."""

    __slots__ = ("data", "key", "sid")

    def __init__(self, key: str, data: bytes) -> None:
        self.key = key
        self.sid = ""
        self.data = data


class BusUnavailable(RuntimeError):
    """Redis did not answer a read (``read_stream``); writes never raise, they queue."""


def redact_url(url: str) -> str:
    """``redis://user:secret@host:6379/0`` → ``redis://user:***@host:6379/0``."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    netloc = f"{user}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


class RedisBus(QueuedBus):
    """A bus on the Redis at ``url``. ``prefix`` goes before every key and channel name (tests
    and side-by-side runs); ``stream_maxlen``: ``MAXLEN ~`` of each stream; ``backlog_max``:
    stream messages kept while Redis is away; ``socket_timeout_s``: a Redis that stops
    answering counts as down after this long (the trading path never waits for it);
    ``threaded``: pub/sub-only channels published from a thread of their own
    (``bus.pubsub_thread``: ``poly:state`` leaves on time even while the loop is busy)."""

    backend = "redis"

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "",
        queue_max: int = 100_000,
        batch_max: int = 1_000,
        backlog_max: int = 200_000,
        stream_maxlen: int = 1_000_000,
        backoff_min_s: float = 0.05,
        backoff_max_s: float = 2.0,
        socket_timeout_s: float = 2.0,
        threaded: tuple[str, ...] = (STATE,),
    ) -> None:
        super().__init__(queue_max=queue_max, batch_max=batch_max)
        streamed = [ch for ch in threaded if ch in STREAMS or ch not in self._subs]
        if streamed:
            raise ValueError(f"threaded channels must be pub/sub-only channels, got {streamed}")
        if backlog_max < 0 or stream_maxlen < 1 or not 0 < backoff_min_s <= backoff_max_s:
            raise ValueError(
                f"bad RedisBus limits: backlog_max={backlog_max}, stream_maxlen={stream_maxlen},"
                f" backoff {backoff_min_s}..{backoff_max_s} s"
            )
        self.target = redact_url(url)
        self.prefix = prefix
        self.backlog_max = backlog_max
        self.stream_maxlen = stream_maxlen
        self._backoff_min = backoff_min_s
        self._backoff_max = backoff_max_s
        self._backoff = backoff_min_s
        self._client: aioredis.Redis = aioredis.Redis.from_url(
            url,
            socket_timeout=socket_timeout_s,
            socket_connect_timeout=socket_timeout_s,
            retry=Retry(NoBackoff(), 0),
        )
        self._ids = StreamIds()
        self._backlog: deque[_Entry] = deque()
        self.connected = False
        self._ever_ok = False
        self._failed = False
        self._need_tops = True
        self._next_try = 0.0
        self._last_ok_ns = 0
        self.stream_written = 0
        self.duplicates = 0
        self.reconnects = 0
        self._reader: asyncio.Task[None] | None = None
        self._reader_wake = asyncio.Event()
        self._live: set[str] = set()  # channels the reader has subscribed in Redis
        self._confirmed: dict[str, asyncio.Event] = {}
        self._threaded = frozenset(threaded)
        self.heartbeat_s = 1.0
        """Idle this long (s), the writer pings Redis."""
        self._last_try = 0.0
        self._sender = (
            PubSubThread(
                url,
                socket_timeout_s=socket_timeout_s,
                backoff_min_s=backoff_min_s,
                backoff_max_s=backoff_max_s,
            )
            if threaded
            else None
        )

    def publish(self, channel: str, message: Message) -> bool:
        """As ``QueuedBus.publish``; a threaded channel goes to the sender thread instead of
        the loop's queue (never waits either)."""
        sender = self._sender
        if sender is None or channel not in self._threaded:
            return super().publish(channel, message)
        check_channel(channel, message)
        if self._closing:
            self.dropped["closed"] += 1
            return False
        self.published += 1
        sender.put(self.key(channel), message)
        return True

    async def _on_start(self) -> None:
        if self._sender is not None:
            self._sender.start()

    def key(self, channel: str) -> str:
        """The Redis name of a channel or stream."""
        return self.prefix + channel

    # -- reads --------------------------------------------------------------------------------
    async def subscribe(
        self,
        channel: str,
        *,
        maxsize: int = 65_536,
        callback: Callback | None = None,
        timeout_s: float = 5.0,
    ) -> Subscription:
        """Subscribe through Redis pub/sub (messages from any publisher, this one included).
        Waits up to ``timeout_s`` for Redis to confirm; if Redis is away it returns anyway and
        the subscription goes live when Redis is back."""
        sub = self._new_subscription(channel, maxsize, callback)
        if self._reader is None:
            self._reader = asyncio.create_task(self._read_pubsub(), name="redis-bus-reader")
        confirmed = self._confirmed.setdefault(channel, asyncio.Event())
        self._reader_wake.set()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(confirmed.wait(), timeout_s)
        return sub

    async def read_stream(
        self, channel: str, since_id: str = "0-0", count: int = 1_000
    ) -> list[StreamEntry]:
        """Up to ``count`` entries after ``since_id``, oldest first; pass the last id seen to
        read on. Entries that do not decode are skipped (counted as ``bad_message``).
        ``BusUnavailable`` if Redis does not answer."""
        key = self.key(STREAMS[stream_channel(channel)])
        parse_stream_id(since_id)
        try:
            rows: Any = await self._client.xrange(key, min=f"({since_id}", count=count)
        except _DOWN as exc:
            raise BusUnavailable(f"redis at {self.target}: {exc}") from None
        out: list[StreamEntry] = []
        for sid, fields in rows:
            try:
                msg = decode_message(fields[_FIELD])
            except (MessageError, KeyError):
                self.dropped["bad_message"] += 1
                continue
            out.append(StreamEntry(sid.decode() if isinstance(sid, bytes) else str(sid), msg))
        return out

    def health(self) -> BusHealth:
        sender = self._sender
        dropped = Counter(self.dropped)
        delivered = self.delivered
        queued = len(self._queue)
        if sender is not None:
            dropped.update(sender.dropped)
            delivered += sender.delivered
            queued += sender.pending()
        return BusHealth(
            backend=self.backend,
            target=self.target,
            connected=self.connected and self.alive(),
            last_ok_ns=self._last_ok_ns,
            queued=queued,
            queue_max=self.queue_max,
            backlog=len(self._backlog),
            backlog_max=self.backlog_max,
            published=self.published,
            delivered=delivered,
            stream_written=self.stream_written,
            duplicates=self.duplicates,
            reconnects=self.reconnects,
            dropped=dict(dropped),
        )

    # -- writer -------------------------------------------------------------------------------
    async def _run(self) -> None:
        while True:
            if not self._queue:
                if self._closing and not self._backlog:
                    return
                now = time.monotonic()
                due = self.connected or now >= self._next_try
                if not self._backlog and due and now - self._last_try >= self.heartbeat_s:
                    await self._heartbeat()
                    continue
                if not (self._backlog and due):
                    if self._backlog:
                        wait: float | None = self._next_try - now
                    else:
                        wait = max(self._last_try + self.heartbeat_s, self._next_try) - now
                    if self._closing:
                        await asyncio.sleep(max(wait or 0.0, 0.0))
                    else:
                        await self._wait(None if wait is None else max(wait, 0.0))
                    continue
            pubs = self._intake(self._take())
            if not self.connected and time.monotonic() < self._next_try:
                if pubs:
                    self.dropped["redis_down"] += len(pubs)
                continue
            await self._write(pubs)

    def _intake(self, batch: list[tuple[str, Any]]) -> list[tuple[str, bytes]]:
        """Encode a batch; stream messages get their id and join the backlog."""
        pubs: list[tuple[str, bytes]] = []
        for channel, message in batch:
            try:
                data = encode_message(message)
            except Exception:  # a Struct msgspec cannot encode: count it, never crash
                self.dropped["bad_message"] += 1
                continue
            pubs.append((self.key(channel), data))
            stream = STREAMS.get(channel)
            if stream is not None:
                if len(self._backlog) >= self.backlog_max:
                    self.dropped["backlog_full"] += 1
                    continue
                self._backlog.append(_Entry(self.key(stream), data))
        return pubs

    async def _heartbeat(self) -> None:
        """``PING`` while there is nothing to write: ``connected`` (readiness) and outages
        (``reconnects``) stay true to Redis even when only the threaded channels are busy."""
        self._last_try = time.monotonic()
        try:
            await self._client.ping()
        except (RedisError, OSError) as exc:
            self._down(exc)
            return
        self._up()

    async def _write(self, pubs: list[tuple[str, bytes]]) -> None:
        self._last_try = time.monotonic()
        chunk = list(islice(self._backlog, self.batch_max))
        try:
            if self._need_tops:
                await self._read_tops()
            self._assign_ids(chunk)
            pipe = self._client.pipeline(transaction=False)
            for key, data in pubs:
                pipe.publish(key, data)
            for e in chunk:
                pipe.xadd(e.key, {_FIELD: e.data}, id=e.sid, maxlen=self.stream_maxlen)
            results: list[Any] = await pipe.execute(raise_on_error=False) if pubs or chunk else []
            down = next((r for r in results if isinstance(r, _DOWN)), None)
            if down is not None:
                raise down
        except (RedisError, OSError) as exc:  # down, or refusing all (auth, read-only…)
            self._down(exc)
            self.dropped["redis_down"] += len(pubs)
            return
        self._up()
        for res in results[: len(pubs)]:
            if isinstance(res, Exception):
                self.dropped["redis_error"] += 1
            else:
                self.delivered += 1
        retry: list[_Entry] = []
        refused: BaseException | None = None
        for e, res in zip(chunk, results[len(pubs) :], strict=True):
            if not isinstance(res, Exception):
                self.stream_written += 1
            elif isinstance(res, ResponseError) and "equal or smaller" in str(res):
                self.duplicates += 1  # an earlier attempt landed; its reply was lost
            elif isinstance(res, _TRANSIENT) or str(res).startswith(_TRANSIENT_CODES):
                e.sid = ""  # refused, so surely not written: a fresh id when Redis takes it
                retry.append(e)
                refused = res
            else:
                self.dropped["redis_error"] += 1
                if self.dropped["redis_error"] <= 10:
                    log.error("XADD %s %s failed: %s", e.key, e.sid, res)
        for _ in chunk:
            self._backlog.popleft()
        self._backlog.extendleft(reversed(retry))
        if refused is not None:  # out of memory, read-only replica…: back off, keep them
            self._down(refused)

    def _assign_ids(self, entries: list[_Entry]) -> None:
        """Give entries that were never sent their stream id (above the floor just read)."""
        for e in entries:
            if not e.sid:
                e.sid = self._ids.next(e.key)

    async def _read_tops(self) -> None:
        """Raise each stream's id floor to its last id in Redis (after a restart or outage)."""
        pipe = self._client.pipeline(transaction=False)
        keys = [self.key(s) for s in STREAMS.values()]
        for k in keys:
            pipe.xinfo_stream(k)
        results: list[Any] = await pipe.execute(raise_on_error=False)
        for k, res in zip(keys, results, strict=True):
            if isinstance(res, _DOWN):
                raise res
            if isinstance(res, dict):
                top: Any = res.get("last-generated-id") or res.get(b"last-generated-id") or "0-0"
                self._ids.floor(k, parse_stream_id(top.decode() if isinstance(top, bytes) else top))
        self._need_tops = False

    def _down(self, exc: BaseException) -> None:
        if self.connected or not self._failed:
            log.warning("redis bus at %s is down: %s", self.target, exc)
        self.connected = False
        self._failed = True
        self._need_tops = True
        self._next_try = time.monotonic() + self._backoff
        self._backoff = min(self._backoff * 2, self._backoff_max)

    def _up(self) -> None:
        if not self.connected:
            if self._failed and self._ever_ok:
                self.reconnects += 1
                log.warning("redis bus at %s is back", self.target)
            self.connected = True
            self._ever_ok = True
            self._failed = False
        self._backoff = self._backoff_min
        self._last_ok_ns = time.time_ns()

    # -- pub/sub reader -----------------------------------------------------------------------
    async def _read_pubsub(self) -> None:
        """Deliver pub/sub messages of subscribed channels to local subscriptions; reconnects
        with backoff and re-subscribes after an outage."""
        backoff = self._backoff_min
        while not self._closing:
            ps = self._client.pubsub()
            self._live.clear()
            try:
                while not self._closing:
                    wanted = {ch for ch, subs in self._subs.items() if subs}
                    new = wanted - self._live
                    if new:
                        await ps.subscribe(*(self.key(ch) for ch in sorted(new)))
                        self._live |= new
                    if not self._live:
                        self._reader_wake.clear()
                        await self._reader_wake.wait()
                        continue
                    raw = await ps.get_message(timeout=0.05)
                    backoff = self._backoff_min
                    if raw is not None:
                        self._on_pubsub(raw)
            except (RedisError, OSError) as exc:
                log.warning("redis bus subscriber at %s: %s", self.target, exc)
                for ev in self._confirmed.values():
                    ev.clear()  # live again only once Redis confirms the new subscription
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self._backoff_max)
            finally:
                with contextlib.suppress(RedisError, OSError, RuntimeError):
                    await ps.aclose()  # type: ignore[no-untyped-call]

    def _on_pubsub(self, raw: dict[str, Any]) -> None:
        name = raw.get("channel", b"")
        name = name.decode() if isinstance(name, bytes) else str(name)
        channel = name[len(self.prefix) :] if name.startswith(self.prefix) else name
        if raw.get("type") == "subscribe":
            ev = self._confirmed.get(channel)
            if ev is not None:
                ev.set()
            return
        if raw.get("type") != "message":
            return
        try:
            msg = decode_message(raw["data"])
        except MessageError as exc:
            self.dropped["bad_message"] += 1
            log.warning("bad message on %s: %s", name, exc)
            return
        self._dispatch(channel, msg)

    async def _on_close(self) -> None:
        if self._sender is not None:
            await asyncio.to_thread(self._sender.close, 2.0)
        if self._backlog:  # Redis stayed away past close's timeout
            log.error("redis bus closed with %d stream messages unwritten", len(self._backlog))
            self.dropped["closed"] += len(self._backlog)
            self._backlog.clear()
        if self._reader is not None:
            self._reader_wake.set()
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        with contextlib.suppress(RedisError, OSError):
            await self._client.aclose()

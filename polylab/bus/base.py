"""The ``Bus`` protocol and what every bus shares: the bounded outbound queue, counters,
subscriptions and stream ids.

``publish`` runs on the event path, so it only appends to a bounded queue (a ``deque``) and
wakes the bus's background task; when the queue is full it counts a drop and returns False. It
never waits, never touches a socket, never encodes. The background task (``_run`` of each
implementation) drains the queue in batches. Call ``publish`` from the bus's event-loop thread
(another thread works too: the wake-up then goes through ``call_soon_threadsafe``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from typing import Protocol, runtime_checkable

import msgspec

from polylab.bus.messages import CHANNELS, STREAMS, Message, MessageError, check_channel

__all__ = [
    "Bus",
    "BusHealth",
    "QueuedBus",
    "StreamEntry",
    "StreamIds",
    "Subscription",
    "parse_stream_id",
    "stream_channel",
]

log = logging.getLogger(__name__)

Callback = Callable[[Message], None]


class StreamEntry(msgspec.Struct, frozen=True):
    """One stream entry: its id ("<ms>-<seq>", increasing) and the message."""

    id: str
    message: Message


class BusHealth(msgspec.Struct, frozen=True, kw_only=True):
    """What ``/health`` and ``/metrics`` read from a bus.

    ``backend``: "inprocess" | "redis"; ``target``: where it writes (no secret);
    ``connected``: the last write or ping worked; ``last_ok_ns``: when (ns since the epoch,
    0 = never); ``queued`` / ``queue_max``: messages waiting in the outbound queue;
    ``backlog`` / ``backlog_max``: stream messages kept while Redis is away; ``published``:
    messages ``publish`` accepted; ``delivered``: messages handed on (to Redis or to in-process
    subscribers); ``stream_written``: stream entries written; ``duplicates``: stream entries a
    retry found already written (skipped, not written twice); ``reconnects``: connections
    re-established after a failure; ``dropped``: messages lost, by reason (``queue_full``,
    ``redis_down``, ``backlog_full``, ``redis_error``, ``closed``, ``subscriber_full``,
    ``callback_error``, ``bad_message``, and ``superseded``: a periodic state that a newer one
    replaced before the Redis bus's sender thread could send it).
    """

    backend: str
    target: str
    connected: bool
    last_ok_ns: int
    queued: int
    queue_max: int
    backlog: int
    backlog_max: int
    published: int
    delivered: int
    stream_written: int
    duplicates: int
    reconnects: int
    dropped: dict[str, int]


def stream_channel(channel: str) -> str:
    """The lossless channel for ``channel`` given as "poly:trades" or "poly:stream:trades"."""
    if channel in STREAMS:
        return channel
    for ch, key in STREAMS.items():
        if channel == key:
            return ch
    raise MessageError(f"{channel!r} has no stream (streams: {', '.join(STREAMS)})")


def parse_stream_id(sid: str) -> tuple[int, int]:
    """``"<ms>-<seq>"`` (or ``"<ms>"``) → (ms, seq); ``MessageError`` on anything else."""
    ms, _, seq = sid.partition("-")
    try:
        out = (int(ms), int(seq or 0))
    except ValueError:
        raise MessageError(f"bad stream id {sid!r} (expected '<ms>-<seq>', e.g. '0-0')") from None
    if out[0] < 0 or out[1] < 0:
        raise MessageError(f"bad stream id {sid!r} (negative)")
    return out


class StreamIds:
    """Increasing stream ids per stream: "<ms>-<seq>" from the wall clock, never going back.

    The bus gives every stream message its id once, before the first write, and keeps it
    through retries: Redis refuses an id at or below a stream's top, so a retry of a write
    that did land is recognised and skipped instead of written twice.
    """

    def __init__(self) -> None:
        self._last: dict[str, tuple[int, int]] = {}

    def next(self, stream: str, now_ms: int | None = None) -> str:
        ms = time.time_ns() // 1_000_000 if now_ms is None else now_ms
        lms, lseq = self._last.get(stream, (0, -1))
        nxt = (ms, 0) if ms > lms else (lms, lseq + 1)
        self._last[stream] = nxt
        return f"{nxt[0]}-{nxt[1]}"

    def floor(self, stream: str, top: tuple[int, int]) -> None:
        """New ids of ``stream`` go above ``top`` (the stream's last id, read on connect)."""
        if top > self._last.get(stream, (0, -1)):
            self._last[stream] = top


class Subscription:
    """Messages of one channel for one in-process consumer.

    Either a callback (``callback(message)`` runs in the bus's task; its exceptions are
    logged and counted, never raised into the bus) or an async iterator over a bounded queue
    of ``maxsize`` messages: ``async for msg in sub``. A consumer that falls behind loses the
    newest messages, counted in ``dropped`` (and in the bus's ``subscriber_full``), so a slow
    dashboard never holds the bus up; consumers that must see everything read the streams.
    """

    def __init__(
        self,
        channel: str,
        *,
        maxsize: int,
        callback: Callback | None,
        on_close: Callable[[Subscription], None],
        on_drop: Callable[[str], None],
    ) -> None:
        if maxsize < 1:
            raise ValueError(f"subscription maxsize must be ≥ 1, got {maxsize}")
        self.channel = channel
        self.received = 0
        """Messages handed to the consumer's queue or callback."""
        self.dropped = 0
        """Messages lost because the queue was full or the callback raised."""
        self._queue: asyncio.Queue[Message | None] = asyncio.Queue(maxsize)
        self._callback = callback
        self._on_close = on_close
        self._on_drop = on_drop
        self.closed = False

    def offer(self, message: Message) -> None:
        """Hand one message over without waiting (the bus calls this)."""
        if self.closed:
            return
        if self._callback is not None:
            try:
                self._callback(message)
            except Exception:
                self.dropped += 1
                self._on_drop("callback_error")
                if self.dropped <= 10:
                    log.exception("bus subscriber callback on %s raised", self.channel)
                return
            self.received += 1
            return
        try:
            self._queue.put_nowait(message)
        except asyncio.QueueFull:
            self.dropped += 1
            self._on_drop("subscriber_full")
            return
        self.received += 1

    def pending(self) -> int:
        """Messages waiting in the queue."""
        return self._queue.qsize()

    def get_nowait(self) -> Message | None:
        """The next queued message, or None if none is waiting (or the subscription closed)."""
        try:
            item = self._queue.get_nowait()
        except asyncio.QueueEmpty:
            return None
        return item

    def close(self) -> None:
        """Stop receiving; an ``async for`` over it ends after the messages already queued."""
        if self.closed:
            return
        self.closed = True
        self._on_close(self)
        if self._queue.full():
            self._queue.get_nowait()
            self.dropped += 1
        self._queue.put_nowait(None)

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> Message:
        item = await self._queue.get()
        if item is None:
            raise StopAsyncIteration
        return item


@runtime_checkable
class Bus(Protocol):
    """Where the runner publishes and dashboards / controllers subscribe.

    ``publish`` never blocks (see the module docstring); ``start`` launches the background
    task; ``close`` flushes what it can within ``timeout_s`` (counting the rest as dropped)
    and stops it. ``subscribe`` returns once the subscription is live (messages published
    afterwards reach it). ``read_stream`` returns up to ``count`` entries of a lossless
    channel with ids after ``since_id`` (``"0-0"``: from the start), oldest first.
    """

    def publish(self, channel: str, message: Message) -> bool: ...

    async def start(self) -> None: ...

    async def close(self, timeout_s: float = 5.0) -> None: ...

    async def subscribe(
        self, channel: str, *, maxsize: int = 65_536, callback: Callback | None = None
    ) -> Subscription: ...

    async def read_stream(
        self, channel: str, since_id: str = "0-0", count: int = 1_000
    ) -> list[StreamEntry]: ...

    def health(self) -> BusHealth: ...


class QueuedBus:
    """The shared half of every bus: bounded queue, counters, lifecycle, subscriptions."""

    backend = ""

    def __init__(self, *, queue_max: int = 100_000, batch_max: int = 1_000) -> None:
        if queue_max < 1 or batch_max < 1:
            raise ValueError(f"queue_max and batch_max must be ≥ 1, got {queue_max}, {batch_max}")
        self.queue_max = queue_max
        self.batch_max = batch_max
        self._queue: deque[tuple[str, Message]] = deque()
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread = 0
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._subs: dict[str, list[Subscription]] = {ch: [] for ch in CHANNELS}
        self.published = 0
        self.delivered = 0
        self.dropped: Counter[str] = Counter()

    # -- event path -------------------------------------------------------------------------
    def publish(self, channel: str, message: Message) -> bool:
        """Queue ``message`` for ``channel``; False (and a counted drop) if the queue is full
        or the bus is closing. Raises ``MessageError`` for an unknown channel or a kind the
        channel does not carry (a bug in the caller, found by the first test that runs it)."""
        check_channel(channel, message)
        if self._closing:
            self.dropped["closed"] += 1
            return False
        if len(self._queue) >= self.queue_max:
            self.dropped["queue_full"] += 1
            return False
        self._queue.append((channel, message))
        self.published += 1
        wake = self._wake
        if wake is not None and not wake.is_set():
            if threading.get_ident() == self._loop_thread:
                wake.set()
            elif self._loop is not None:
                self._loop.call_soon_threadsafe(wake.set)
        return True

    def queued(self) -> int:
        """Messages in the outbound queue, not yet taken by the background task."""
        return len(self._queue)

    # -- lifecycle --------------------------------------------------------------------------
    async def start(self) -> None:
        if self._task is not None:
            return
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._wake = asyncio.Event()
        if self._queue:
            self._wake.set()
        await self._on_start()
        self._task = asyncio.create_task(self._run(), name=f"{self.backend}-bus")
        self._task.add_done_callback(self._task_done)

    def alive(self) -> bool:
        """The background task is running (False before ``start`` and after it ended)."""
        return self._task is not None and not self._task.done()

    def _task_done(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error(
                "%s bus task died; messages now queue and drop",
                self.backend,
                exc_info=task.exception(),
            )

    async def close(self, timeout_s: float = 5.0) -> None:
        self._closing = True
        if self._wake is not None:
            self._wake.set()
        if self._task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._task), timeout_s)
            except TimeoutError:
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._task
            except Exception:  # the task died: its error is logged, close anyway
                log.exception("bus task failed")
        self._count_unsent()
        for subs in self._subs.values():
            for sub in list(subs):
                sub.close()
        await self._on_close()

    async def __aenter__(self) -> QueuedBus:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- subscriptions ----------------------------------------------------------------------
    def _new_subscription(
        self, channel: str, maxsize: int, callback: Callback | None
    ) -> Subscription:
        if channel not in self._subs:
            raise MessageError(f"unknown bus channel {channel!r} (one of {', '.join(CHANNELS)})")
        sub = Subscription(
            channel,
            maxsize=maxsize,
            callback=callback,
            on_close=self._unsubscribe,
            on_drop=self._count_drop,
        )
        self._subs[channel].append(sub)
        return sub

    def _unsubscribe(self, sub: Subscription) -> None:
        with contextlib.suppress(ValueError):
            self._subs[sub.channel].remove(sub)

    def _count_drop(self, reason: str) -> None:
        self.dropped[reason] += 1

    def _dispatch(self, channel: str, message: Message) -> None:
        for sub in list(self._subs.get(channel, ())):
            sub.offer(message)

    # -- background task --------------------------------------------------------------------
    def _take(self) -> list[tuple[str, Message]]:
        q, n = self._queue, min(len(self._queue), self.batch_max)
        return [q.popleft() for _ in range(n)]

    async def _wait(self, timeout_s: float | None) -> None:
        """Sleep until ``publish`` wakes the task or ``timeout_s`` passes."""
        wake = self._wake
        assert wake is not None
        if self._queue or self._closing:
            return
        wake.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(wake.wait(), timeout_s)

    def _count_unsent(self) -> None:
        if self._queue:
            self.dropped["closed"] += len(self._queue)
            self._queue.clear()

    async def _on_start(self) -> None:
        return None

    async def _on_close(self) -> None:
        return None

    async def _run(self) -> None:
        raise NotImplementedError

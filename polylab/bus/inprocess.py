"""The default bus: everything stays in this process.

Subscribers are callbacks or async iterators in the same process (a dashboard served by the
runner itself). The lossless channels also keep their last ``stream_maxlen`` messages in memory
with stream ids, so an in-process dashboard catches up with ``read_stream`` exactly as it would
from Redis.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque

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
from polylab.bus.messages import STREAMS

__all__ = ["InProcessBus"]


class InProcessBus(QueuedBus):
    """A bus inside the process: ``queue_max`` messages may wait for the background task, which
    hands them to subscribers in batches of ``batch_max``; each lossless channel keeps its last
    ``stream_maxlen`` messages for ``read_stream``."""

    backend = "inprocess"

    def __init__(
        self, *, queue_max: int = 100_000, batch_max: int = 1_000, stream_maxlen: int = 10_000
    ) -> None:
        super().__init__(queue_max=queue_max, batch_max=batch_max)
        if stream_maxlen < 1:
            raise ValueError(f"stream_maxlen must be ≥ 1, got {stream_maxlen}")
        self.stream_maxlen = stream_maxlen
        self._ids = StreamIds()
        self._streams: dict[str, deque[tuple[tuple[int, int], StreamEntry]]] = {
            ch: deque(maxlen=stream_maxlen) for ch in STREAMS
        }
        self._last_ok_ns = 0
        self._written = 0

    async def subscribe(
        self, channel: str, *, maxsize: int = 65_536, callback: Callback | None = None
    ) -> Subscription:
        return self._new_subscription(channel, maxsize, callback)

    async def read_stream(
        self, channel: str, since_id: str = "0-0", count: int = 1_000
    ) -> list[StreamEntry]:
        ring = self._streams[stream_channel(channel)]
        since = parse_stream_id(since_id)
        out: list[StreamEntry] = []
        for key, entry in ring:
            if key > since:
                out.append(entry)
                if len(out) >= count:
                    break
        return out

    def health(self) -> BusHealth:
        return BusHealth(
            backend=self.backend,
            target="in-process",
            connected=self.alive(),
            last_ok_ns=self._last_ok_ns,
            queued=len(self._queue),
            queue_max=self.queue_max,
            backlog=0,
            backlog_max=0,
            published=self.published,
            delivered=self.delivered,
            stream_written=self._written,
            duplicates=0,
            reconnects=0,
            dropped=dict(self.dropped),
        )

    async def _run(self) -> None:
        while True:
            await self._wait(None)
            if not self._queue:
                if self._closing:
                    return
                continue
            for channel, message in self._take():
                ring = self._streams.get(channel)
                if ring is not None:
                    sid = self._ids.next(channel)
                    ring.append((parse_stream_id(sid), StreamEntry(sid, message)))
                    self._written += 1
                self._dispatch(channel, message)
                self.delivered += 1
            self._last_ok_ns = time.time_ns()
            await asyncio.sleep(0)  # let subscribers read between batches

"""``PUBLISH`` from a thread of its own, for the periodic channel (``poly:state``).

The Redis bus's writer is a task on the event loop; while the loop handles a run of buffered
market frames in one step (tens of ms under load), nothing it queued leaves the process, so a
state made on time would still reach subscribers late. This sender owns a second, blocking
Redis connection on a daemon thread: a message handed to ``put`` is encoded and published as
soon as the thread gets the interpreter (within ``sys.getswitchinterval()``, 5 ms by default),
whatever the loop is doing. It carries pub/sub only, nothing streamed, so the streams'
exactly-once ids stay with the bus's writer.

Only the latest few messages matter on such a channel: the queue keeps ``maxlen`` of them and
a new one pushes the oldest out (counted ``superseded``); while Redis is away messages are
dropped (``redis_down``) and the connection is retried with exponential backoff, never
blocking ``put``. Units: seconds for timeouts and backoff.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter, deque

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from polylab.bus.messages import Message, encode_message

__all__ = ["PubSubThread"]

log = logging.getLogger(__name__)


class PubSubThread:
    """Publishes ``(key, message)`` pairs given to ``put`` on the Redis at ``url``.

    Counters (read from any thread): ``delivered`` (Redis took the ``PUBLISH``) and
    ``dropped`` by reason (``superseded``, ``redis_down``, ``bad_message``, ``closed``)."""

    def __init__(
        self,
        url: str,
        *,
        name: str = "redis-bus-pubsub",
        maxlen: int = 16,
        socket_timeout_s: float = 2.0,
        backoff_min_s: float = 0.05,
        backoff_max_s: float = 2.0,
    ) -> None:
        if maxlen < 1:
            raise ValueError(f"maxlen must be ≥ 1, got {maxlen}")
        self.maxlen = maxlen
        self._client = redis.Redis.from_url(
            url,
            socket_timeout=socket_timeout_s,
            socket_connect_timeout=socket_timeout_s,
            retry=Retry(NoBackoff(), 0),
        )
        self._queue: deque[tuple[str, Message]] = deque()
        self._cv = threading.Condition()
        self._closing = False
        self._backoff_min = backoff_min_s
        self._backoff_max = backoff_max_s
        self._backoff = backoff_min_s
        self._next_try = 0.0
        self.delivered = 0
        self.dropped: Counter[str] = Counter()
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)

    def start(self) -> None:
        """Start the thread (once)."""
        if not self._thread.is_alive() and not self._closing:
            self._thread.start()

    def put(self, key: str, message: Message) -> None:
        """Queue one message for ``PUBLISH key``; never waits on Redis."""
        with self._cv:
            if self._closing:
                self.dropped["closed"] += 1
                return
            if len(self._queue) >= self.maxlen:
                self._queue.popleft()
                self.dropped["superseded"] += 1
            self._queue.append((key, message))
            self._cv.notify()

    def pending(self) -> int:
        """Messages waiting for the thread."""
        return len(self._queue)

    def close(self, timeout_s: float = 5.0) -> None:
        """Send what is queued (up to ``timeout_s``), stop the thread, close the connection;
        what is left is counted ``closed``."""
        with self._cv:
            self._closing = True
            self._cv.notify()
        if self._thread.is_alive():
            self._thread.join(timeout_s)
        with self._cv:
            if self._queue:
                self.dropped["closed"] += len(self._queue)
                self._queue.clear()
        if not self._thread.is_alive():
            self._client.close()

    def _loop(self) -> None:
        while True:
            with self._cv:
                while not self._queue and not self._closing:
                    self._cv.wait()
                if not self._queue:
                    return
                batch = list(self._queue)
                self._queue.clear()
            self._send(batch)

    def _send(self, batch: list[tuple[str, Message]]) -> None:
        if time.monotonic() < self._next_try:
            self.dropped["redis_down"] += len(batch)
            return
        pipe = self._client.pipeline(transaction=False)
        n = 0
        for key, message in batch:
            try:
                data = encode_message(message)
            except Exception:  # a Struct msgspec cannot encode: count it, never crash
                self.dropped["bad_message"] += 1
                continue
            pipe.publish(key, data)
            n += 1
        if not n:
            return
        try:
            pipe.execute()
        except (redis.RedisError, OSError) as exc:
            if self._backoff == self._backoff_min:
                log.info("redis bus pub/sub thread: %s", exc)
            self.dropped["redis_down"] += n
            self._next_try = time.monotonic() + self._backoff
            self._backoff = min(self._backoff * 2, self._backoff_max)
            return
        self._backoff = self._backoff_min
        self.delivered += n

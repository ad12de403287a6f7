"""Slack alerts through an incoming webhook: deduplicated, rate-limited, sanitised, off the path.

``AlertSender.alert(key, text)`` decides at once and never blocks (callable from the event loop
or from any thread, e.g. the ledger writer's):

1. **dedupe**: an alert whose ``key`` was accepted less than ``dedupe_s`` ago is dropped
   (counted in ``stats.deduped``) — a feed flapping every second gives one message;
2. **rate limit**: a token bucket (``burst`` tokens, refilled at ``per_minute`` a minute); an
   alert finding it empty is dropped (``stats.rate_limited``) and the next message sent says
   how many were suppressed. ``force=True`` (stop, recoveries that close an alert already sent)
   skips both, so an operator who saw "down" always sees "back";
3. **queue**: accepted alerts go to a bounded queue (``queue_max``; full: dropped and counted)
   drained by a background task that POSTs ``{"text": …}`` with httpx; a failed POST is
   counted and logged by status or error type only (the webhook URL is a secret and is never
   logged or shown).

Every text goes through ``Sanitizer.clean`` before it is queued, so no key, secret,
passphrase, JWT or sensitive env value can leave in an alert. With no webhook URL the sender
still counts and logs, and sends nothing (``enabled`` is False).

Times: seconds on a monotonic clock (injectable, for tests that must not sleep).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Literal

import httpx
import msgspec

from polylab.ops.sanitize import Sanitizer

__all__ = ["AlertConfig", "AlertSender", "AlertStats", "Severity"]

log = logging.getLogger(__name__)

Severity = Literal["info", "warning", "critical"]
_ICON: dict[str, str] = {
    "info": ":information_source:",
    "warning": ":warning:",
    "critical": ":rotating_light:",
}


class AlertConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Alert sending knobs. ``webhook_url``: Slack incoming webhook (empty: disabled);
    ``service``: prefix of every message (e.g. "polylab paper"); ``dedupe_s``: window in which
    one key alerts once; ``burst`` / ``per_minute``: token bucket; ``queue_max``: alerts waiting
    to be sent; ``timeout_s``: per POST."""

    webhook_url: str = ""
    service: str = "polylab"
    dedupe_s: float = 300.0
    burst: int = 5
    per_minute: float = 10.0
    queue_max: int = 100
    timeout_s: float = 5.0

    def __post_init__(self) -> None:
        if self.webhook_url and not self.webhook_url.startswith(("https://", "http://")):
            raise ValueError("SLACK_WEBHOOK_URL must be an http(s):// URL (value not shown)")
        if self.dedupe_s < 0 or self.burst < 1 or self.per_minute <= 0 or self.queue_max < 1:
            raise ValueError(
                "alerts: need dedupe_s >= 0, burst >= 1, per_minute > 0, queue_max >= 1; got "
                f"{self.dedupe_s}, {self.burst}, {self.per_minute}, {self.queue_max}"
            )

    def __repr__(self) -> str:
        return f"AlertConfig(service={self.service!r}, enabled={bool(self.webhook_url)})"


class AlertStats(msgspec.Struct):
    """Counters since start: ``accepted`` (queued), ``sent`` (2xx), ``failed`` (POST error or
    non-2xx), ``deduped``, ``rate_limited``, ``queue_full``."""

    accepted: int = 0
    sent: int = 0
    failed: int = 0
    deduped: int = 0
    rate_limited: int = 0
    queue_full: int = 0


class AlertSender:
    """Queues and sends alerts (see the module docstring). ``start()`` on the event loop that
    will send; ``close()`` sends what is queued (up to ``timeout_s``) and stops."""

    def __init__(
        self,
        config: AlertConfig,
        *,
        sanitizer: Sanitizer | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.sanitizer = sanitizer or Sanitizer(extra_secrets=[config.webhook_url])
        self.clock = clock
        self.stats = AlertStats()
        self._lock = threading.Lock()
        self._last_sent: dict[str, float] = {}
        self._tokens = float(config.burst)
        self._refill_at = clock()
        self._suppressed = 0
        self._queue: deque[str] = deque()
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread = 0
        self._task: asyncio.Task[None] | None = None
        self._client: httpx.AsyncClient | None = None

    @property
    def enabled(self) -> bool:
        """A webhook URL is configured."""
        return bool(self.config.webhook_url)

    # -- deciding (any thread) -------------------------------------------------------------------
    def _take_token(self, now: float) -> bool:
        cfg = self.config
        self._tokens = min(
            float(cfg.burst), self._tokens + (now - self._refill_at) * cfg.per_minute / 60.0
        )
        self._refill_at = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False

    def alert(
        self, key: str, text: str, severity: Severity = "warning", *, force: bool = False
    ) -> bool:
        """Queue one alert unless deduplicated, rate-limited or the queue is full; True when
        queued. Never blocks, never raises on a full queue."""
        now = self.clock()
        with self._lock:
            if not force:
                last = self._last_sent.get(key)
                if last is not None and now - last < self.config.dedupe_s:
                    self.stats.deduped += 1
                    return False
                if not self._take_token(now):
                    self.stats.rate_limited += 1
                    self._suppressed += 1
                    return False
            if not self.enabled:  # no webhook: logged below, nothing to send
                self._last_sent[key] = now
                self.stats.accepted += 1
            elif len(self._queue) >= self.config.queue_max:
                self.stats.queue_full += 1
                return False
            else:
                self._last_sent[key] = now
                line = f"{_ICON[severity]} [{self.config.service}] {text}"
                if self._suppressed:
                    line += f" (+{self._suppressed} alerts suppressed by the rate limit)"
                    self._suppressed = 0
                self._queue.append(self.sanitizer.clean(line))
                self.stats.accepted += 1
        level = logging.INFO if severity == "info" else logging.WARNING
        log.log(level, "alert %s: %s", key, self.sanitizer.clean(text))
        self._poke()
        return True

    def was_sent(self, key: str) -> bool:
        """Whether an alert with ``key`` was accepted (ever)."""
        with self._lock:
            return key in self._last_sent

    def _poke(self) -> None:
        wake, loop = self._wake, self._loop
        if wake is None or loop is None:
            return
        if threading.get_ident() == self._loop_thread:
            wake.set()
        else:
            with contextlib.suppress(RuntimeError):  # loop already closed
                loop.call_soon_threadsafe(wake.set)

    # -- sending (event loop) --------------------------------------------------------------------
    async def start(self) -> AlertSender:
        """Start the background sender on the running loop (idempotent)."""
        if self._task is None:
            self._loop = asyncio.get_running_loop()
            self._loop_thread = threading.get_ident()
            self._wake = asyncio.Event()
            self._client = httpx.AsyncClient(timeout=self.config.timeout_s)
            self._task = asyncio.create_task(self._run(), name="alert-sender")
            if self._queue:
                self._wake.set()
        return self

    def pending(self) -> int:
        """Alerts queued and not yet sent."""
        with self._lock:
            return len(self._queue)

    async def _run(self) -> None:
        assert self._wake is not None
        while True:
            await self._wake.wait()
            self._wake.clear()
            await self._drain()

    async def _drain(self) -> None:
        while True:
            with self._lock:
                if not self._queue:
                    return
                text = self._queue[0]
            await self._post(text)
            with self._lock:
                self._queue.popleft()

    async def _post(self, text: str) -> None:
        client = self._client
        if client is None or not self.enabled:
            return
        try:
            resp = await client.post(self.config.webhook_url, json={"text": text})
        except Exception as exc:  # any failure (network, bad URL): counted, never fatal
            self.stats.failed += 1
            log.warning("alert not delivered: %s", type(exc).__name__)
            return
        if 200 <= resp.status_code < 300:
            self.stats.sent += 1
        else:
            self.stats.failed += 1
            log.warning("alert not delivered: webhook answered %d", resp.status_code)

    async def flush(self, timeout_s: float = 5.0) -> bool:
        """Wait until the queue is empty (True) or ``timeout_s`` passed (False)."""
        if self._task is None:
            return not self._queue
        self._poke()
        end = time.monotonic() + timeout_s
        while self.pending():
            if time.monotonic() >= end or self._task.done():
                return False
            await asyncio.sleep(0.01)
        return True

    async def close(self, timeout_s: float = 5.0) -> int:
        """Send what is queued (up to ``timeout_s``), stop; returns alerts left unsent."""
        if self._task is not None:
            await self.flush(timeout_s)
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._client is not None:
            await self._client.aclose()
            self._client = None
        return self.pending()

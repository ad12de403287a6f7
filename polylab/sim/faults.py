"""Fault injection for the simulator: what a flaky venue does to a client, on purpose and seeded.

``FaultConfig`` (a field of ``SimConfig``) switches each fault on; everything defaults to off.
The WebSocket layer (``polylab.sim.ws``) runs every outgoing frame of a connection through a
``FrameFaults`` built for that connection with its own seeded RNG, so a given seed and the same
frame order give the same faults:

* **latency + jitter**: each frame leaves ``latency_ms + U(0, jitter_ms)`` after it was produced,
  order kept (a frame never overtakes an earlier one on the same lane);
* **per-token latency** (``token_latency_ms``): that token's frames go on their own lane, delayed
  by the extra ms, so a binary pair shows a transient stale leg (one token behind its mirror);
* **stall** (``stall_token_ids``): those tokens' frames are withheld for ``stall_s`` after the
  connection subscribes, then released in order (a silent stall a watchdog should notice);
* **drop** (``drop_prob``), **reorder** (``reorder_prob``: the frame is swapped with the next one
  of its lane), **malformed** (``malformed_prob``: garbage text or truncated JSON);
* **forced disconnect** every ``disconnect_every_s`` seconds of a connection's life.

Independently of faults, an ``Outbox`` bounds what one connection may have waiting: frames
queued here plus the socket's write buffer. A client that stops reading fills both; past
``max_buffered_bytes`` the connection is dropped as a slow consumer (the venue closes such
connections too), so one stuck client cannot grow the simulator's memory without bound.

For REST, ``http_fault(config, rng)`` draws a 429 / 5xx outcome and ``order_reject(config, rng)``
an order-placement ``errorMsg``; the REST layer calls them before handling a request / an order.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import logging
import random
from typing import Annotated

import msgspec
from aiohttp import WSCloseCode, web

__all__ = [
    "DEFAULT_MAX_BUFFERED_BYTES",
    "MAIN_LANE",
    "FaultConfig",
    "FaultDecision",
    "FrameFaults",
    "Outbox",
    "http_fault",
    "order_reject",
]

log = logging.getLogger(__name__)

Prob = Annotated[float, msgspec.Meta(ge=0.0, le=1.0)]
"""A probability in [0, 1]."""
NonNeg = Annotated[float, msgspec.Meta(ge=0.0)]
"""A non-negative duration."""


class FaultConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Which faults the simulator injects; all off by default.

    ``latency_ms``: added delay of every WS frame (ms). ``jitter_ms``: extra uniform delay
    ``U(0, jitter_ms)`` (ms), order kept. ``drop_prob``: chance a frame is dropped.
    ``reorder_prob``: chance a frame is swapped with the next one. ``malformed_prob``: chance a
    frame is replaced by garbage or truncated JSON. ``disconnect_every_s``: close each
    connection after this many seconds (0 = never). ``stall_token_ids``: tokens whose frames are
    withheld for ``stall_s`` seconds after subscribing. ``token_latency_ms``: extra delay (ms) per
    token id, for stale legs. ``http_429_prob`` / ``http_5xx_prob``: chance a REST request is
    answered 429 / 5xx. ``reject_prob``: chance an order is rejected with an ``errorMsg``.
    ``order_response_delay_ms``: an order is handled at once (matched or refused) but its
    answer leaves this late (ms): a client that stops waiting must ask what happened.
    """

    latency_ms: NonNeg = 0.0
    jitter_ms: NonNeg = 0.0
    drop_prob: Prob = 0.0
    reorder_prob: Prob = 0.0
    malformed_prob: Prob = 0.0
    disconnect_every_s: NonNeg = 0.0
    stall_token_ids: list[str] = []
    stall_s: NonNeg = 0.0
    token_latency_ms: dict[str, NonNeg] = {}
    http_429_prob: Prob = 0.0
    http_5xx_prob: Prob = 0.0
    reject_prob: Prob = 0.0
    order_response_delay_ms: NonNeg = 0.0

    @property
    def ws_active(self) -> bool:
        """True when any WebSocket fault is on (the WS layer skips the fault path otherwise)."""
        return bool(
            self.latency_ms
            or self.jitter_ms
            or self.drop_prob
            or self.reorder_prob
            or self.malformed_prob
            or (self.stall_token_ids and self.stall_s)
            or self.token_latency_ms
        )

    def http_fault(self, rng: random.Random) -> tuple[int, str] | None:
        """Same as the module-level ``http_fault(self, rng)``."""
        return http_fault(self, rng)


def http_fault(config: FaultConfig, rng: random.Random) -> tuple[int, str] | None:
    """Draw a REST fault: ``(429, "Too Many Requests")``, a 5xx with its message, or ``None``.

    The REST layer answers ``{"error": message}`` with that status instead of handling the
    request. One ``rng.random()`` is drawn per call when any HTTP fault is on, none otherwise.
    """
    p429, p5xx = config.http_429_prob, config.http_5xx_prob
    if not p429 and not p5xx:
        return None
    u = rng.random()
    if u < p429:
        return 429, "Too Many Requests"
    if u < p429 + p5xx:
        if rng.random() < 0.5:
            return 503, "Trading is currently disabled. Check back later."
        return 500, "Internal Server Error"
    return None


_REJECTS = (
    "EXECUTION_ERROR",
    "ORDER_DELAYED",
    "INVALID_ORDER_ERROR",
)


def order_reject(config: FaultConfig, rng: random.Random) -> str | None:
    """Draw an order-placement rejection: an ``errorMsg`` code, or ``None`` to accept."""
    if not config.reject_prob or rng.random() >= config.reject_prob:
        return None
    return rng.choice(_REJECTS)


class FaultDecision(msgspec.Struct, frozen=True):
    """What happens to one frame: dropped, or sent as ``text`` at ``send_at`` (loop time, s) on
    ``lane``. ``hold``: keep it back and send it right after the next frame of its lane."""

    dropped: bool = False
    text: str = ""
    send_at: float = 0.0
    lane: str = ""
    hold: bool = False


MAIN_LANE = ""
"""Lane of every frame not routed to a per-token lane."""


class FrameFaults:
    """One connection's fault state: its RNG, lanes, stall window and counters.

    ``special`` tokens (stalled or with their own latency) get their own lane; the WS layer
    splits frames so that a frame holds either one special token's events or none.
    """

    def __init__(self, config: FaultConfig, rng: random.Random) -> None:
        self.config = config
        self.rng = rng
        self.stall_until = 0.0
        self.stalled = frozenset(config.stall_token_ids) if config.stall_s else frozenset()
        self.special = self.stalled | frozenset(config.token_latency_ms)
        self._lane_last: dict[str, float] = {}
        self.dropped = 0
        self.malformed = 0
        self.stalled_frames = 0
        self.delayed_frames = 0

    def begin_stall(self, now: float) -> None:
        """Start the stall window (at the first subscription); later calls do nothing."""
        if self.stalled and not self.stall_until:
            self.stall_until = now + self.config.stall_s

    def lane_for(self, asset_ids: frozenset[str] | set[str]) -> str:
        """The lane of a frame about ``asset_ids`` (a special token's id, or the main lane)."""
        if self.special:
            for a in asset_ids:
                if a in self.special:
                    return a
        return MAIN_LANE

    def decide(self, text: str, lane: str, now: float) -> FaultDecision:
        """Run one frame through drop → malform → delay (latency, jitter, token lane, stall) →
        reorder. ``now`` is the event loop's time in seconds."""
        cfg, rng = self.config, self.rng
        if cfg.drop_prob and rng.random() < cfg.drop_prob:
            self.dropped += 1
            return FaultDecision(dropped=True)
        if cfg.malformed_prob and rng.random() < cfg.malformed_prob:
            self.malformed += 1
            text = self._garble(text)
        delay_ms = cfg.latency_ms
        if cfg.jitter_ms:
            delay_ms += rng.random() * cfg.jitter_ms
        if lane:
            extra = cfg.token_latency_ms.get(lane, 0.0)
            if extra:
                delay_ms += extra
                self.delayed_frames += 1
        send_at = now + delay_ms / 1000.0 if delay_ms else 0.0
        if lane and lane in self.stalled and now < self.stall_until:
            send_at = max(send_at, self.stall_until)
            self.stalled_frames += 1
        last = self._lane_last.get(lane, 0.0)
        send_at = max(send_at, last)
        self._lane_last[lane] = send_at
        hold = bool(cfg.reorder_prob) and rng.random() < cfg.reorder_prob
        return FaultDecision(text=text, send_at=send_at, lane=lane, hold=hold)

    def _garble(self, text: str) -> str:
        rng = self.rng
        if rng.random() < 0.5 and len(text) > 2:
            return text[: rng.randrange(1, len(text) - 1)]
        return "".join(rng.choice('{}[]:,"x#@!0') for _ in range(rng.randint(3, 40)))


_IDLE_FLUSH_S = 0.25
"""A frame held back for reordering is released after this long without a successor."""
DEFAULT_MAX_BUFFERED_BYTES = 8 * 1024 * 1024
"""Per-connection bound (bytes) on queued frames + socket write buffer; beyond it the
connection is dropped as a slow consumer."""


class Outbox:
    """One connection's outgoing frames: fault decisions, a send-time heap, and a sender task.

    Without faults every frame leaves in push order. ``push_now`` (PONG, INVALID OPERATION)
    skips drops, garbling and per-token lanes. ``disconnect_after_s`` > 0 closes
    the socket that many seconds after ``start`` (forced-disconnect fault).

    ``buffered_bytes`` = text waiting here (held frames included; characters, which equal bytes
    for the ASCII JSON the venue sends) + ``transport``'s write buffer. When a push takes it
    past ``max_buffered_bytes`` the queue is dropped, the transport aborted (a close frame could
    not get through a full socket anyway) and ``slow_consumer`` set.
    """

    def __init__(
        self,
        ws: web.WebSocketResponse,
        faults: FrameFaults | None,
        disconnect_after_s: float = 0.0,
        *,
        transport: asyncio.Transport | None = None,
        max_buffered_bytes: int = DEFAULT_MAX_BUFFERED_BYTES,
    ) -> None:
        self.ws = ws
        self.faults = faults
        self.disconnect_after_s = disconnect_after_s
        self.transport = transport
        self.max_buffered_bytes = max_buffered_bytes
        self._heap: list[tuple[float, int, str]] = []
        self._seq = itertools.count()
        self._held: dict[str, str] = {}
        self._queued_bytes = 0
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self.sent = 0
        self.reordered = 0
        self.closed = False
        self.slow_consumer = False
        self.peak_buffered_bytes = 0
        """Largest ``buffered_bytes`` seen after a push the connection survived."""

    @property
    def buffered_bytes(self) -> int:
        """Bytes waiting for this client: queued frames plus the socket's write buffer."""
        t = self.transport
        return self._queued_bytes + (t.get_write_buffer_size() if t is not None else 0)

    def start(self) -> None:
        """Start the sender (and the disconnect timer); call on the event loop."""
        self._loop = asyncio.get_running_loop()
        self._tasks.append(asyncio.create_task(self._sender()))
        if self.disconnect_after_s > 0:
            self._tasks.append(asyncio.create_task(self._disconnect_later()))

    def _now(self) -> float:
        return self._loop.time() if self._loop is not None else 0.0

    def push(self, text: str, lane: str = MAIN_LANE) -> None:
        """Queue one frame, through the faults when configured."""
        if self.closed:
            return
        f = self.faults
        if f is None:
            heapq.heappush(self._heap, (0.0, next(self._seq), text))
            self._queued_bytes += len(text)
        else:
            d = f.decide(text, lane, self._now())
            if d.dropped:
                return
            held = self._held.pop(lane, None)
            if d.hold and held is None:
                self._held[lane] = d.text
                self._queued_bytes += len(d.text)
                self._wake.set()
                self._check_bound()
                return
            heapq.heappush(self._heap, (d.send_at, next(self._seq), d.text))
            self._queued_bytes += len(d.text)
            if held is not None:
                self.reordered += 1
                heapq.heappush(self._heap, (d.send_at, next(self._seq), held))
        self._wake.set()
        self._check_bound()

    def push_now(self, text: str) -> None:
        """Queue a control reply (PONG, INVALID OPERATION): never dropped or garbled, delayed
        only by the configured base latency."""
        if not self.closed:
            lat = self.faults.config.latency_ms if self.faults is not None else 0.0
            at = self._now() + lat / 1000.0 if lat else 0.0
            heapq.heappush(self._heap, (at, next(self._seq), text))
            self._queued_bytes += len(text)
            self._wake.set()
            self._check_bound()

    def _check_bound(self) -> None:
        """Drop the connection when the client is too far behind (see the class docstring)."""
        buffered = self.buffered_bytes
        if buffered <= self.max_buffered_bytes:
            self.peak_buffered_bytes = max(self.peak_buffered_bytes, buffered)
            return
        log.warning(
            "closing a slow consumer: %d bytes buffered (limit %d)",
            buffered,
            self.max_buffered_bytes,
        )
        self.slow_consumer = True
        self.closed = True
        self._heap.clear()
        self._held.clear()
        self._queued_bytes = 0
        if self.transport is not None:
            self.transport.abort()
        else:
            self._tasks.append(
                asyncio.create_task(self._close(WSCloseCode.POLICY_VIOLATION, b"slow consumer"))
            )

    async def _sender(self) -> None:
        heap, wake, ws = self._heap, self._wake, self.ws
        try:
            while True:
                if not heap:
                    wake.clear()
                    if self._held:
                        with contextlib.suppress(TimeoutError):
                            await asyncio.wait_for(wake.wait(), _IDLE_FLUSH_S)
                        if not heap:
                            for held in self._held.values():
                                heapq.heappush(heap, (0.0, next(self._seq), held))
                            self._held.clear()
                    else:
                        await wake.wait()
                    continue
                at = heap[0][0]
                if at:
                    wait = at - self._now()
                    if wait > 0:
                        wake.clear()
                        with contextlib.suppress(TimeoutError):
                            await asyncio.wait_for(wake.wait(), wait)
                        continue
                text = heapq.heappop(heap)[2]
                self._queued_bytes -= len(text)
                if ws.closed:
                    return
                await ws.send_str(text)
                self.sent += 1
        except (ConnectionError, RuntimeError):
            return

    async def _disconnect_later(self) -> None:
        await asyncio.sleep(self.disconnect_after_s)
        await self._close(WSCloseCode.GOING_AWAY, b"forced disconnect (fault injection)")

    async def _close(self, code: int, message: bytes) -> None:
        self.closed = True
        with contextlib.suppress(Exception):
            await self.ws.close(code=code, message=message)

    async def stop(self) -> None:
        """Stop the sender and timers (not the task calling this)."""
        self.closed = True
        me = asyncio.current_task()
        for t in self._tasks:
            if t is not me:
                t.cancel()
        for t in self._tasks:
            if t is not me:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await t
        self._tasks.clear()

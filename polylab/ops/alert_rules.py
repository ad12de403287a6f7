"""When the runner alerts: the issue's events turned into ``AlertSender`` calls.

``OpsAlerts`` holds the little state each rule needs and is safe to call from any thread:

* ``started`` / ``stopped``: once each (stop is forced through dedupe and rate limit);
* ``kill_switch``: on each transition of the risk gate to killed (``watch_risk`` polls it);
* ``daily_loss``: once per UTC day, when the gate refuses an intent under rule ``daily_loss``
  (``record``, the engine sink) or the day's worst case reaches the limit (``watch_risk``);
* ``feed_age``: a feed whose newest frame is older than ``feed_stale_s`` (or that never had
  one) alerts once; the first fresh reading after that sends "fresh again" (forced);
* ``order_error``: ``order_errors`` errors within ``order_error_window_s`` alert once (then
  the count starts over); ``record`` counts orders whose status is ``rejected`` or ``unknown``;
* ``component(name, up)``: "ledger/bus down" on the transition to down; "back" on the
  transition to up, forced, and only if the matching "down" was sent: pairs stay pairs.

``record(kind, row)`` makes it an engine ``ResultSink`` (cheap: a comparison or two per row).
Times: seconds on a monotonic clock (injectable), ns since the epoch for the risk gate's day.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any, Protocol

import msgspec

from polylab.ops.alerts import AlertSender
from polylab.ops.health import BusLike, FeedLike, last_frame_ns

__all__ = ["AlertRules", "OpsAlerts", "RiskLike", "feed_age_s"]

_DAY_NS = 86_400 * 1_000_000_000
_ORDER_ERROR_STATUSES = frozenset({"rejected", "unknown"})


class AlertRules(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Thresholds: ``feed_stale_s`` (s without a frame), ``order_errors`` within
    ``order_error_window_s`` (s)."""

    feed_stale_s: float = 30.0
    order_errors: int = 5
    order_error_window_s: float = 60.0

    def __post_init__(self) -> None:
        if self.feed_stale_s <= 0 or self.order_errors < 1 or self.order_error_window_s <= 0:
            raise ValueError(
                "alert rules: need feed_stale_s > 0, order_errors >= 1, "
                f"order_error_window_s > 0; got {self.feed_stale_s}, {self.order_errors}, "
                f"{self.order_error_window_s}"
            )


class _RiskConfigLike(Protocol):
    @property
    def max_daily_loss_micros(self) -> int: ...


class RiskLike(Protocol):
    """What ``watch_risk`` reads (``polylab.risk.manager.RiskManager``)."""

    @property
    def config(self) -> _RiskConfigLike: ...
    @property
    def killed(self) -> bool: ...
    @property
    def kill_reason(self) -> str: ...
    def day_at_risk(self, now_ns: int) -> int: ...


def feed_age_s(feed: FeedLike, now_ns: int | None = None) -> float | None:
    """Seconds since the newest frame on any of ``feed``'s shards (None: none yet)."""
    last = last_frame_ns(feed)
    if not last:
        return None
    return ((now_ns if now_ns is not None else time.time_ns()) - last) / 1e9


def _usd(micros: int) -> str:
    sign = "-" if micros < 0 else ""
    whole, frac = divmod(abs(micros), 1_000_000)
    return f"{sign}${whole}.{frac // 10_000:02d}"


class OpsAlerts:
    """The alert rules over one ``AlertSender`` (see the module docstring)."""

    def __init__(
        self,
        sender: AlertSender,
        rules: AlertRules | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.sender = sender
        self.rules = rules or AlertRules()
        self.clock = clock
        self._lock = threading.Lock()
        self._killed = False
        self._loss_day = -1
        self._feed_alerted: set[str] = set()
        self._errors: deque[float] = deque()
        self._down: dict[str, float] = {}
        self._down_sent: set[str] = set()

    # -- lifecycle -------------------------------------------------------------------------------
    def started(self, detail: str = "") -> bool:
        """The service started (``detail``: mode, venue, strategies…)."""
        return self.sender.alert("start", f"started {detail}".strip(), "info")

    def stopped(self, detail: str = "") -> bool:
        """The service is stopping (forced: always sent)."""
        return self.sender.alert("stop", f"stopped {detail}".strip(), "info", force=True)

    # -- risk ------------------------------------------------------------------------------------
    def kill_switch(self, reason: str) -> bool:
        """The kill switch went on."""
        return self.sender.alert("kill_switch", f"KILL SWITCH on: {reason}", "critical")

    def daily_loss(self, detail: str, now_ns: int | None = None) -> bool:
        """The daily loss limit is reached (alerts once per UTC day)."""
        day = (now_ns if now_ns is not None else time.time_ns()) // _DAY_NS
        with self._lock:
            if day == self._loss_day:
                return False
            self._loss_day = day
        return self.sender.alert("daily_loss", f"daily loss limit reached: {detail}", "critical")

    def watch_risk(self, risk: RiskLike, now_ns: int | None = None) -> None:
        """Poll the risk gate: kill switch transitions and the day's worst case."""
        now = now_ns if now_ns is not None else time.time_ns()
        killed = risk.killed
        with self._lock:
            went_on = killed and not self._killed
            self._killed = killed
        if went_on:
            self.kill_switch(risk.kill_reason)
        limit = risk.config.max_daily_loss_micros
        at_risk = risk.day_at_risk(now)
        if at_risk <= -limit:
            self.daily_loss(f"day's worst case {_usd(at_risk)} <= -{_usd(limit)}", now)

    # -- feed ------------------------------------------------------------------------------------
    def feed_age(self, name: str, age_s: float | None) -> bool:
        """One reading of a feed's frame age (s; None: no frame yet). True if it alerted."""
        stale = age_s is None or age_s > self.rules.feed_stale_s
        with self._lock:
            alerted = name in self._feed_alerted
            if stale and not alerted:
                self._feed_alerted.add(name)
            elif not stale and alerted:
                self._feed_alerted.discard(name)
        if stale and not alerted:
            what = "no frame yet" if age_s is None else f"no frame for {age_s:.1f} s"
            limit = self.rules.feed_stale_s
            return self.sender.alert(
                f"feed_stale:{name}", f"feed {name} stale: {what} (> {limit} s)"
            )
        if not stale and alerted:
            return self.sender.alert(
                f"feed_fresh:{name}", f"feed {name} fresh again ({age_s:.1f} s)", "info", force=True
            )
        return False

    def watch_feed(self, feed: FeedLike, name: str = "market") -> bool:
        """``feed_age`` from a market feed's shards."""
        return self.feed_age(name, feed_age_s(feed))

    # -- orders ----------------------------------------------------------------------------------
    def order_error(self, detail: str) -> bool:
        """One order error; alerts when ``order_errors`` fell within the window."""
        now = self.clock()
        rules = self.rules
        with self._lock:
            q = self._errors
            q.append(now)
            while q and now - q[0] > rules.order_error_window_s:
                q.popleft()
            if len(q) < rules.order_errors:
                return False
            n = len(q)
            q.clear()
        return self.sender.alert(
            "order_errors",
            f"{n} order errors within {rules.order_error_window_s:.0f} s; last: {detail}",
            "critical",
        )

    # -- components ------------------------------------------------------------------------------
    def component(self, name: str, up: bool, reason: str = "") -> bool:
        """A dependency (``ledger``, ``bus``) went down or came back. True if it alerted."""
        now = self.clock()
        with self._lock:
            was_down = name in self._down
            if not up and not was_down:
                self._down[name] = now
            elif up and was_down:
                since = self._down.pop(name)
                paired = name in self._down_sent
                self._down_sent.discard(name)
            else:
                return False
        if not up:
            text = f"{name} DOWN" + (f": {reason}" if reason else "")
            sent = self.sender.alert(f"{name}:down", text, "critical")
            if sent:
                with self._lock:
                    self._down_sent.add(name)
            return sent
        if not paired:
            return False
        return self.sender.alert(
            f"{name}:back", f"{name} back after {now - since:.1f} s", "info", force=True
        )

    def watch_bus(self, bus: BusLike) -> bool:
        """``component("bus", …)`` from ``bus.health().connected``."""
        return self.component("bus", bus.health().connected, "backend unreachable")

    # -- engine sink -----------------------------------------------------------------------------
    def record(self, kind: str, row: Any) -> None:
        """``ResultSink.record``: daily-loss rejections and failed orders."""
        if kind == "rejections":
            if getattr(row, "rule", "") == "daily_loss":
                self.daily_loss(str(getattr(row, "reason", "")), getattr(row, "ts_ns", None))
        elif kind == "orders":
            status = getattr(row, "status", "")
            if status in _ORDER_ERROR_STATUSES:
                why = getattr(row, "reason", "") or status
                self.order_error(f"{status} {getattr(row, 'intent_id', '')}: {why}")

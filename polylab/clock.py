"""Where a run's time comes from: one ``Clock`` protocol, two clocks.

The trading path (engine, strategies, risk, paper executor) runs on **event time**: the receive
time of the event being handled, stamped once by the connection that received it (the market
WebSocket, a scoreboard poll) and written into the run's recording with the frame. A backtest
of that recording then sees exactly the same times, so cooldowns, order latency and timers
land on the same events as in the paper run. ``ReplayClock`` holds that time.

``WallClock`` is the machine's clock, for what is about the session and not about trading:
how long a session lasts, provenance stamps, and the live runner's timer (a live executor's
orders come back whether or not the market moves).

Units: ns since the epoch.
"""

from __future__ import annotations

import time
from typing import Protocol, runtime_checkable

__all__ = ["Clock", "ReplayClock", "WallClock"]


@runtime_checkable
class Clock(Protocol):
    """A source of time, ns since the epoch."""

    def now_ns(self) -> int:
        """The current time of this clock (ns)."""
        ...


class WallClock:
    """The machine's clock (``time.time_ns``)."""

    __slots__ = ()

    def now_ns(self) -> int:
        """Wall time now (ns since the epoch)."""
        return time.time_ns()


class ReplayClock:
    """Event time: the latest receive time handed to ``advance`` (ns), never going back.

    A stamp older than the current time (two connections, an NTP step) leaves the clock where
    it is, so a cooldown or a latency computed from it can only end later, never earlier.
    """

    __slots__ = ("_now",)

    def __init__(self, start_ns: int = 0) -> None:
        self._now = start_ns

    def advance(self, ns: int) -> int:
        """Move to ``ns`` if it is later; return the clock's time (ns)."""
        if ns > self._now:
            self._now = ns
        return self._now

    def now_ns(self) -> int:
        """The latest event time seen (ns; 0 before the first event)."""
        return self._now

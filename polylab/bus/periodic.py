"""Publish a snapshot on a fixed period (``poly:state`` every 100 ms) on the monotonic clock.

Deadlines sit on a grid (start + k × period), so the small lateness of every timer wake-up
(≤ 1 ms) is caught up and the period does not drift. A tick late by more than ``catch_up_ns``
(the loop was busy, a GC pause, the process waited for a CPU) does not pull the next one
closer: the grid restarts from that tick (``rebased``), so a late state is never followed by a
bunched one. Ticks missed by a whole period or more are counted in ``skipped``, never sent in a
burst.

Two things fire a due tick, whichever comes first, both on the event-loop thread (so the
snapshot is taken between events, consistent): the publisher's own timer task (``run``) when
the loop is idle, and ``poll`` — a clock read and a compare, ~0.1 µs — which the runner calls
after each market event, so a long run of buffered frames handled in one loop step does not
hold the state back. Units: ns on ``clock_ns`` (default ``time.monotonic_ns``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from polylab.bus.base import Bus
from polylab.bus.messages import Message

__all__ = ["PeriodicPublisher"]

log = logging.getLogger(__name__)


class PeriodicPublisher:
    """Calls ``make()`` every ``period_ns`` and publishes its message on ``channel`` (None:
    nothing this tick). ``make`` raising is logged and counted in ``errors``; the loop goes on.
    Counters: ``ticks`` (messages published or refused by a full queue), ``skipped`` (grid
    deadlines missed by a whole period or more), ``rebased`` (ticks late by more than
    ``catch_up_ns``, after which the grid restarted), ``errors``. ``catch_up_ns`` defaults to
    a twentieth of the period (5 ms at 100 ms)."""

    def __init__(
        self,
        bus: Bus,
        channel: str,
        make: Callable[[], Message | None],
        *,
        period_ns: int = 100_000_000,
        clock_ns: Callable[[], int] = time.monotonic_ns,
        catch_up_ns: int | None = None,
    ) -> None:
        if period_ns <= 0:
            raise ValueError(f"period_ns must be > 0, got {period_ns}")
        catch_up = period_ns // 20 if catch_up_ns is None else catch_up_ns
        if not 0 <= catch_up < period_ns:
            raise ValueError(f"catch_up_ns must be in [0, period_ns), got {catch_up}")
        self.bus = bus
        self.channel = channel
        self.make = make
        self.period_ns = period_ns
        self.catch_up_ns = catch_up
        self.clock_ns = clock_ns
        self.ticks = 0
        self.skipped = 0
        self.rebased = 0
        self.errors = 0
        self.fired = 0
        """Ticks attempted (published, nothing to publish, or ``make`` raised)."""
        self.due_ns = 0
        """The next deadline (``clock_ns``); 0 until ``run`` starts (``poll`` does nothing)."""
        self.last_ns = 0
        """Clock time of the last publish (``clock_ns``), 0 before the first."""

    def tick(self) -> None:
        """Make and publish one message now (off the schedule: the final state, a control
        confirmation)."""
        try:
            msg = self.make()
        except Exception:
            self.errors += 1
            if self.errors <= 10:
                log.exception("periodic %s message failed", self.channel)
            return
        if msg is not None:
            self.bus.publish(self.channel, msg)
            self.ticks += 1
            self.last_ns = self.clock_ns()

    def poll(self) -> bool:
        """Fire the tick if it is due (True when it fired). Cheap enough to call after every
        event on the event-loop thread."""
        due = self.due_ns
        if due:
            now = self.clock_ns()
            if now >= due:
                self._fire(now)
                return True
        return False

    def _fire(self, now: int) -> None:
        late = now - self.due_ns
        self.fired += 1
        self.tick()
        if late <= self.catch_up_ns:
            self.due_ns += self.period_ns
        else:  # restart the grid here: the next period is a whole one, not a burst
            self.skipped += late // self.period_ns
            self.rebased += 1
            self.due_ns = now + self.period_ns

    async def run(self, *, count: int | None = None) -> None:
        """Tick until cancelled (or until ``count`` more ticks have fired, from here or from
        ``poll``: tests and final states)."""
        self.due_ns = self.clock_ns()
        end = None if count is None else self.fired + count
        try:
            while end is None or self.fired < end:
                now = self.clock_ns()
                if now >= self.due_ns:
                    self._fire(now)
                    continue
                await asyncio.sleep((self.due_ns - now) / 1e9)
        finally:
            self.due_ns = 0

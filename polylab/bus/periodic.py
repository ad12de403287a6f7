"""Publish a snapshot on a fixed period (``poly:state`` every 100 ms) without drift.

Ticks are on absolute deadlines (start + k × period), so a slow tick does not push every later
one back; ticks missed while the loop was busy are skipped and counted, not bunched up.
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
    Counters: ``ticks`` (messages published or refused by a full queue), ``skipped`` (ticks
    missed because the loop was late by a whole period or more), ``errors``."""

    def __init__(
        self,
        bus: Bus,
        channel: str,
        make: Callable[[], Message | None],
        *,
        period_ns: int = 100_000_000,
        clock_ns: Callable[[], int] = time.monotonic_ns,
    ) -> None:
        if period_ns <= 0:
            raise ValueError(f"period_ns must be > 0, got {period_ns}")
        self.bus = bus
        self.channel = channel
        self.make = make
        self.period_ns = period_ns
        self.clock_ns = clock_ns
        self.ticks = 0
        self.skipped = 0
        self.errors = 0
        self.last_ns = 0
        """Clock time of the last publish (``clock_ns``), 0 before the first."""

    def tick(self) -> None:
        """Make and publish one message now."""
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

    async def run(self, *, count: int | None = None) -> None:
        """Tick until cancelled (or ``count`` ticks have run, for tests and final states)."""
        due = self.clock_ns()
        done = 0
        while count is None or done < count:
            self.tick()
            done += 1
            due += self.period_ns
            now = self.clock_ns()
            if now >= due + self.period_ns:  # a whole period late: skip, do not bunch up
                late = (now - due) // self.period_ns
                self.skipped += late
                due += late * self.period_ns
            await asyncio.sleep(max(due - now, 0) / 1e9)

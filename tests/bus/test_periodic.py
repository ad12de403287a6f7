"""The periodic publisher: ticks on absolute deadlines, skips (and counts) ticks it missed,
survives a snapshot function that raises."""

from __future__ import annotations

import asyncio

from bus.helpers import samples

from polylab.bus import STATE, InProcessBus, Message
from polylab.bus.periodic import PeriodicPublisher


def test_publishes_on_its_period_and_survives_errors() -> None:
    state = samples()[STATE][0]
    calls = 0

    def make() -> Message | None:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise RuntimeError("snapshot bug")
        return None if calls == 3 else state

    async def main() -> tuple[PeriodicPublisher, list[Message]]:
        bus = InProcessBus()
        await bus.start()
        got: list[Message] = []
        await bus.subscribe(STATE, callback=got.append)
        pub = PeriodicPublisher(bus, STATE, make, period_ns=1_000_000)
        await pub.run(count=6)
        await bus.close()
        return pub, got

    pub, got = asyncio.run(main())
    assert (pub.ticks, pub.errors, len(got)) == (4, 1, 4)


def test_missed_ticks_are_skipped_not_bunched() -> None:
    now = [0]

    def clock() -> int:
        return now[0]

    def make() -> Message:
        now[0] += 350  # each snapshot takes 3.5 periods on this fake clock
        return samples()[STATE][0]

    async def main() -> PeriodicPublisher:
        bus = InProcessBus()
        pub = PeriodicPublisher(bus, STATE, make, period_ns=100, clock_ns=clock)
        await pub.run(count=4)
        return pub

    pub = asyncio.run(main())
    assert pub.ticks == 4
    # 1,400 ns = the deadlines 0, 100, …, 1_300: 4 ran (0, 300, 700, 1_000), 10 skipped
    assert pub.skipped == 10
    assert pub.last_ns == 1_400

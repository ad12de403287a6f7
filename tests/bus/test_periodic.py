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

    starts: list[int] = []

    def make() -> Message:
        starts.append(now[0])
        now[0] += 350  # each snapshot takes 3.5 periods on this fake clock
        return samples()[STATE][0]

    async def main() -> PeriodicPublisher:
        bus = InProcessBus()
        pub = PeriodicPublisher(bus, STATE, make, period_ns=100, clock_ns=clock)
        await pub.run(count=4)
        return pub

    pub = asyncio.run(main())
    assert pub.ticks == 4
    # each tick after the first is 250 late: the grid restarts there (no catch-up burst)
    assert starts == [0, 350, 700, 1_050]
    assert (pub.rebased, pub.skipped) == (3, 6)
    assert pub.last_ns == 1_400


def test_small_lateness_is_caught_up_large_lateness_restarts_the_grid() -> None:
    """Late by ≤ catch_up_ns: the next deadline stays on the grid (no drift); later than
    that: the next one is a whole period after the late tick (no bunching)."""
    now = [0]
    bus = InProcessBus()
    state = samples()[STATE][0]
    pub = PeriodicPublisher(
        bus, STATE, lambda: state, period_ns=100, clock_ns=lambda: now[0], catch_up_ns=5
    )
    pub.due_ns = 100
    fired: list[tuple[int, int]] = []
    for t in (99, 103, 150, 199, 203, 240, 250, 302):
        now[0] = t
        if pub.poll():
            fired.append((t, pub.due_ns))
    # 103: 3 late → next at 200 (grid); 203: 3 late → 300; 302: 2 late → 400
    assert fired == [(103, 200), (203, 300), (302, 400)]
    now[0] = 420  # 20 late: the grid restarts at 420
    assert pub.poll() and pub.due_ns == 520 and pub.rebased == 1


def test_poll_does_nothing_until_the_publisher_runs() -> None:
    bus = InProcessBus()
    pub = PeriodicPublisher(bus, STATE, lambda: samples()[STATE][0], clock_ns=lambda: 10**12)
    assert not pub.poll() and pub.ticks == 0

"""The in-process bus: subscribers see every message in order, publish never waits, overflow
is counted, slow subscribers lose only their own messages, streams catch up by id."""

from __future__ import annotations

import asyncio

import pytest
from bus.helpers import fill, samples, wait_for

from polylab.bus import CHANNELS, SIGNALS, STATE, TRADES, InProcessBus, Message, MessageError


def test_every_channel_reaches_its_subscribers() -> None:
    async def main() -> None:
        bus = InProcessBus()
        await bus.start()
        subs = {ch: await bus.subscribe(ch) for ch in CHANNELS}
        called: list[Message] = []
        await bus.subscribe(TRADES, callback=called.append)
        sent = samples(3)
        for ch, msgs in sent.items():
            for m in msgs:
                assert bus.publish(ch, m)
        await bus.close()
        for ch, sub in subs.items():
            assert [m async for m in sub] == sent[ch]
        assert called == sent[TRADES]
        h = bus.health()
        assert h.published == h.delivered == sum(len(v) for v in sent.values())
        assert h.dropped == {}

    asyncio.run(main())


def test_subscribers_get_every_message_in_order() -> None:
    n = 20_000

    async def main() -> None:
        bus = InProcessBus()
        await bus.start()
        sub = await bus.subscribe(TRADES)
        got: list[int] = []

        async def consume() -> None:
            async for m in sub:
                got.append(m.ts_ns)

        task = asyncio.create_task(consume())
        for i in range(n):
            bus.publish(TRADES, fill(i))
            if i % 1000 == 0:
                await asyncio.sleep(0)
        await bus.close()
        await task
        assert got == list(range(n))
        assert sub.dropped == 0
        assert bus.health().dropped == {}

    asyncio.run(main())


def test_publish_never_waits_and_overflow_is_counted() -> None:
    async def main() -> None:
        bus = InProcessBus(queue_max=100)
        sub = await bus.subscribe(TRADES)
        accepted = [bus.publish(TRADES, fill(i)) for i in range(150)]
        assert accepted == [True] * 100 + [False] * 50
        assert bus.queued() == 100  # nothing ran: publish only appended
        assert bus.health().dropped == {"queue_full": 50}
        await bus.start()
        await wait_for(lambda: bus.queued() == 0 and sub.pending() == 100, "the queue to drain")
        await bus.close()
        assert [m.ts_ns async for m in sub] == list(range(100))
        assert bus.publish(TRADES, fill(0)) is False  # closed
        assert bus.health().dropped == {"queue_full": 50, "closed": 1}

    asyncio.run(main())


def test_a_slow_subscriber_loses_only_its_own_messages() -> None:
    async def main() -> None:
        bus = InProcessBus()
        await bus.start()
        slow = await bus.subscribe(SIGNALS, maxsize=10)
        fast: list[Message] = []
        await bus.subscribe(SIGNALS, callback=fast.append)

        def boom(m: Message) -> None:
            raise RuntimeError("subscriber bug")

        await bus.subscribe(SIGNALS, callback=boom)
        msg = samples()[SIGNALS][0]
        for _ in range(100):
            bus.publish(SIGNALS, msg)
        await wait_for(lambda: len(fast) == 100, "the callback subscriber")
        assert (slow.received, slow.dropped, slow.pending()) == (10, 90, 10)
        dropped = bus.health().dropped
        assert dropped == {"subscriber_full": 90, "callback_error": 100}
        slow.close()
        assert len([m async for m in slow]) == 9  # the close marker took the oldest's place
        await bus.close()

    asyncio.run(main())


def test_read_stream_catches_up_by_id() -> None:
    async def main() -> None:
        bus = InProcessBus(stream_maxlen=50)
        await bus.start()
        for i in range(80):
            bus.publish(TRADES, fill(i))
            bus.publish(STATE, samples()[STATE][0])  # no stream for state
        await wait_for(lambda: bus.queued() == 0, "the queue to drain")
        first = await bus.read_stream(TRADES, "0-0", count=20)
        assert [e.message.ts_ns for e in first] == list(range(30, 50))  # the last 50 are kept
        rest = await bus.read_stream("poly:stream:trades", first[-1].id)
        assert [e.message.ts_ns for e in rest] == list(range(50, 80))
        ids = [e.id for e in first + rest]
        keys = [tuple(int(x) for x in i.split("-")) for i in ids]
        assert keys == sorted(set(keys))
        assert await bus.read_stream(TRADES, ids[-1]) == []
        with pytest.raises(MessageError, match="has no stream"):
            await bus.read_stream(STATE)
        with pytest.raises(MessageError, match="bad stream id"):
            await bus.read_stream(TRADES, "yesterday")
        await bus.close()

    asyncio.run(main())


def test_publish_from_another_thread_wakes_the_bus() -> None:
    async def main() -> None:
        bus = InProcessBus()
        await bus.start()
        got: list[Message] = []
        await bus.subscribe(TRADES, callback=got.append)
        await asyncio.sleep(0)  # let the task park on its wake-up event
        await asyncio.to_thread(lambda: [bus.publish(TRADES, fill(i)) for i in range(500)])
        await wait_for(lambda: len(got) == 500, "messages published from a thread")
        assert [m.ts_ns for m in got] == list(range(500))
        await bus.close()

    asyncio.run(main())

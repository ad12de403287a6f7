"""The Redis bus on the machine's Redis: every channel round-trips through pub/sub, the
lossless ones also land in their streams, a burst survives a slow subscriber in the streams,
and publish only ever touches the queue, even with no Redis at all."""

from __future__ import annotations

import asyncio
import socket
import threading
import time

import pytest
import redis
from bus.helpers import fill, samples, wait_for

from polylab.bus import (
    CHANNELS,
    CONTROL,
    ERRORS,
    SIGNALS,
    STATE,
    STREAMS,
    TRADES,
    BusUnavailable,
    ControlMessage,
    Message,
    RedisBus,
    decode_message,
    encode_message,
    make_bus,
)


def _stream(url: str, key: str) -> list[tuple[str, Message]]:
    client = redis.Redis.from_url(url)
    try:
        rows = client.xrange(key)
    finally:
        client.close()
    return [(sid.decode(), decode_message(fields[b"m"])) for sid, fields in rows]


def test_every_channel_round_trips_and_lossless_ones_are_streamed(
    redis_url: str, prefix: str
) -> None:
    sent = samples(11)

    async def main() -> None:
        bus = make_bus(redis_url, prefix=prefix)
        assert isinstance(bus, RedisBus)
        await bus.start()
        subs = {ch: await bus.subscribe(ch) for ch in CHANNELS}
        for ch, msgs in sent.items():
            for m in msgs:
                assert bus.publish(ch, m)
        total = sum(len(v) for v in sent.values())
        await wait_for(lambda: sum(s.received for s in subs.values()) == total, "pub/sub")
        await wait_for(lambda: bus.health().stream_written == 5, "the streams")
        for ch, sub in subs.items():
            got = [sub.get_nowait() for _ in sent[ch]]
            assert got == sent[ch], ch
            for m in got:
                assert m is not None and m.schema == 1
        h = bus.health()
        assert h.connected and h.last_ok_ns > 0
        assert (h.published, h.delivered, h.stream_written, h.backlog) == (total, total, 5, 0)
        entries = await bus.read_stream(TRADES)
        assert [e.message for e in entries] == sent[TRADES]
        await bus.close()

    asyncio.run(main())
    for ch, key in STREAMS.items():
        assert [m for _, m in _stream(redis_url, prefix + key)] == sent[ch]
    for ch in (STATE, CONTROL):
        assert ch not in STREAMS


def test_burst_with_a_slow_subscriber_streams_keep_everything(redis_url: str, prefix: str) -> None:
    n = 10_000

    async def main() -> tuple[int, int]:
        bus = RedisBus(redis_url, prefix=prefix)
        await bus.start()
        slow = await bus.subscribe(TRADES, maxsize=500)  # reads nothing until the burst is over
        for i in range(n):
            assert bus.publish(TRADES, fill(i))
        await wait_for(lambda: bus.health().stream_written == n, "the stream", 120)
        await wait_for(lambda: slow.received + slow.dropped == n, "pub/sub to arrive", 120)
        got = [m.ts_ns for m in iter(slow.get_nowait, None)]
        assert got == sorted(got)
        h = bus.health()
        await bus.close()
        assert (h.delivered, h.stream_written, h.duplicates, h.backlog) == (n, n, 0, 0)
        assert h.dropped == {"subscriber_full": n - len(got)}
        return len(got), slow.dropped

    received, lost = asyncio.run(main())
    assert received + lost == n and lost > 0
    print(f"pub/sub with a slow subscriber: {received} received, {lost} lost ({lost / n:.0%})")
    ts = [m.ts_ns for _, m in _stream(redis_url, prefix + STREAMS[TRADES])]
    assert ts == list(range(n))


def _dead_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"redis://127.0.0.1:{port}/0"  # closed again: connections are refused


def test_publish_only_touches_the_queue_even_without_redis() -> None:
    async def main() -> None:
        bus = RedisBus(_dead_url(), queue_max=1_000, backlog_max=300, threaded=())
        await bus.start()
        state = samples()[STATE][0]
        accepted = []
        for i in range(600):  # no await: the background task cannot run in between
            accepted.append(bus.publish(TRADES, fill(i)))
            accepted.append(bus.publish(STATE, state))
        assert accepted == [True] * 1_000 + [False] * 200
        assert bus.queued() == 1_000
        await wait_for(lambda: bus.queued() == 0, "the queue to drain into the backlog")
        h = bus.health()
        assert not h.connected and h.last_ok_ns == 0
        assert h.backlog == 300  # fills 0..299 wait for Redis; the rest is counted
        assert h.dropped == {"queue_full": 200, "backlog_full": 200, "redis_down": 1_000}
        with pytest.raises(BusUnavailable, match="redis at redis://127"):
            await bus.read_stream(TRADES)
        await bus.close(timeout_s=0.2)
        assert bus.health().dropped["closed"] == 300

    asyncio.run(main())


def test_control_subscribers_skip_foreign_garbage(redis_url: str, prefix: str) -> None:
    async def main() -> None:
        bus = RedisBus(redis_url, prefix=prefix)
        await bus.start()
        heard: list[Message] = []
        await bus.subscribe(CONTROL, callback=heard.append)
        client = redis.asyncio.Redis.from_url(redis_url)
        cmd = ControlMessage(ts_ns=1, action="reload_config", config_path="p.toml", by="ops")
        await client.publish(prefix + CONTROL, b'{"type": "control", "action": "nuke"}')
        await client.publish(prefix + CONTROL, encode_message(cmd))
        await client.aclose()
        await wait_for(lambda: len(heard) == 1, "the control message")
        assert heard == [cmd]
        assert bus.health().dropped == {"bad_message": 1}
        await bus.close()

    asyncio.run(main())


def test_read_stream_pages_from_an_id(redis_url: str, prefix: str) -> None:
    async def main() -> None:
        bus = RedisBus(redis_url, prefix=prefix)
        await bus.start()
        for i in range(250):
            bus.publish(ERRORS, samples(i)[ERRORS][i % 2])
        await wait_for(lambda: bus.health().stream_written == 250, "the stream")
        seen: list[int] = []
        since = "0-0"
        while page := await bus.read_stream("poly:errors", since, count=100):
            seen += [e.message.ts_ns for e in page]
            since = page[-1].id
        assert seen == list(range(250))
        assert await bus.read_stream(SIGNALS) == []
        await bus.close()

    asyncio.run(main())


def test_a_retry_of_a_write_that_landed_is_skipped_not_duplicated(
    redis_url: str, prefix: str
) -> None:
    """Redis applied a pipeline but the reply was lost: the retry must not write twice."""
    n, landed = 50, 20

    async def main() -> tuple[int, int]:
        bus = RedisBus(redis_url, prefix=prefix)
        for i in range(n):
            bus.publish(TRADES, fill(i))
        bus._intake(bus._take())
        backlog = list(bus._backlog)
        bus._assign_ids(backlog)  # as at a first attempt, whose reply then got lost
        key = prefix + STREAMS[TRADES]
        client = redis.asyncio.Redis.from_url(redis_url)
        for e in backlog[:landed]:  # the part of that attempt that landed
            assert e.key == key
            await client.xadd(key, {b"m": e.data}, id=e.sid)
        await client.aclose()
        await bus.start()
        await wait_for(lambda: bus.health().backlog == 0, "the backlog")
        h = bus.health()
        await bus.close()
        return h.stream_written, h.duplicates

    written, dups = asyncio.run(main())
    assert (written, dups) == (n - landed, landed)
    assert [m.ts_ns for _, m in _stream(redis_url, prefix + STREAMS[TRADES])] == list(range(n))


def test_new_ids_go_above_what_the_stream_already_holds(redis_url: str, prefix: str) -> None:
    """A stream written by an earlier run whose ids are ahead of this clock (a restart on a
    host whose clock is behind): nothing of this run may be mistaken for a duplicate."""
    key = prefix + STREAMS[TRADES]
    client = redis.Redis.from_url(redis_url)
    try:
        client.xadd(key, {b"m": encode_message(fill(-1))}, id="99999999999999-7")
    finally:
        client.close()

    async def main() -> tuple[int, int]:
        bus = RedisBus(redis_url, prefix=prefix)
        for i in range(30):
            bus.publish(TRADES, fill(i))  # queued before the bus ever saw Redis
        await bus.start()
        await wait_for(lambda: bus.health().backlog == 0 and bus.queued() == 0, "the writes")
        h = bus.health()
        await bus.close()
        return h.stream_written, h.duplicates

    assert asyncio.run(main()) == (30, 0)
    entries = _stream(redis_url, key)
    assert [m.ts_ns for _, m in entries] == list(range(-1, 30))
    assert entries[1][0] == "99999999999999-8"


def test_states_leave_from_their_thread_while_the_event_loop_is_blocked(
    redis_url: str, prefix: str
) -> None:
    """``poly:state`` is published by the sender thread: a subscriber gets it while the
    event loop is stuck in a long step (which holds every queued message back)."""
    client = redis.Redis.from_url(redis_url)
    sub = client.pubsub(ignore_subscribe_messages=True)
    sub.subscribe(prefix + STATE, prefix + TRADES)
    got: list[tuple[str, bool]] = []
    blocked = threading.Event()

    def listen() -> None:
        deadline = time.monotonic() + 30
        while len(got) < 2 and time.monotonic() < deadline:
            m = sub.get_message(timeout=0.1)
            if m is not None:
                got.append((m["channel"].decode()[len(prefix) :], blocked.is_set()))

    listener = threading.Thread(target=listen)
    listener.start()

    async def main() -> None:
        bus = RedisBus(redis_url, prefix=prefix)
        await bus.start()
        await wait_for(lambda: bus.connected, "the connection")
        blocked.set()
        bus.publish(TRADES, fill(1))
        bus.publish(STATE, samples()[STATE][0])
        deadline = time.monotonic() + 20
        while not got and time.monotonic() < deadline:
            time.sleep(0.01)  # the loop is blocked: only the sender thread can deliver
        blocked.clear()
        await bus.close()

    try:
        asyncio.run(main())
        listener.join(35)
    finally:
        sub.close()
        client.close()
    assert got == [(STATE, True), (TRADES, False)]


def test_states_are_superseded_not_queued_while_redis_is_away() -> None:
    async def main() -> dict[str, int]:
        bus = RedisBus(_dead_url(), queue_max=10)
        await bus.start()
        state = samples()[STATE][0]
        accepted = [bus.publish(STATE, state) for _ in range(1_000)]
        assert all(accepted) and bus.queued() == 0  # never in the loop's queue
        await wait_for(lambda: bus.health().queued == 0, "the sender to give up on them")
        await bus.close(timeout_s=0.2)
        return bus.health().dropped

    dropped = asyncio.run(main())
    assert dropped.get("superseded", 0) + dropped.get("redis_down", 0) == 1_000
    assert dropped.get("queue_full", 0) == 0


def test_streams_are_capped_by_an_approximate_maxlen(redis_url: str, prefix: str) -> None:
    """``XADD … MAXLEN ~ N``: far more messages than ``stream_maxlen`` leave the stream near N
    (Redis trims whole nodes of at most 100 entries), never at the count published, and the
    entries kept are the newest, in order."""
    n, cap = 2_000, 150

    async def main() -> None:
        bus = RedisBus(redis_url, prefix=prefix, stream_maxlen=cap)
        await bus.start()
        for i in range(n):
            assert bus.publish(TRADES, fill(i))
        await wait_for(lambda: bus.health().stream_written == n, "the stream", 120)
        await bus.close()

    asyncio.run(main())
    kept = [m.ts_ns for _, m in _stream(redis_url, prefix + STREAMS[TRADES])]
    assert cap <= len(kept) <= cap + 100, len(kept)  # ~: at least N, at most a node more
    assert kept == list(range(n - len(kept), n))

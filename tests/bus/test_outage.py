"""Redis killed mid-burst and restarted (a test-owned ``redis-server``): publishing carries on
without waiting, pub/sub losses are counted, and once Redis is back the stream holds every
message exactly once and in order."""

from __future__ import annotations

import asyncio
import os
import signal
import time

import redis
from bus.helpers import fill, samples, wait_for
from owned_services import OwnedRedis

from polylab.bus import (
    CONTROL,
    STATE,
    STREAMS,
    TRADES,
    ControlMessage,
    Message,
    RedisBus,
    decode_message,
    encode_message,
)


def test_streams_catch_up_exactly_once_after_redis_is_killed(owned_redis: OwnedRedis) -> None:
    per_burst = 3_000
    state = samples()[STATE][0]

    async def main() -> dict[str, int]:
        bus = RedisBus(owned_redis.url, backoff_min_s=0.01, backoff_max_s=0.2)
        await bus.start()
        heard: list[Message] = []
        await bus.subscribe(CONTROL, callback=heard.append)
        for i in range(per_burst):
            bus.publish(TRADES, fill(i))
            bus.publish(STATE, state)
        await wait_for(lambda: bus.stream_written > 0, "the first writes")
        owned_redis.kill()  # mid-burst: most of it is still queued or in flight
        accepted = [bus.publish(TRADES, fill(i)) for i in range(per_burst, 2 * per_burst)]
        accepted += [bus.publish(STATE, state) for _ in range(100)]
        assert all(accepted)
        await wait_for(lambda: bus.queued() == 0 and not bus.connected, "the outage to show")
        during = bus.health()
        assert during.backlog > per_burst  # the second burst at least, kept for the stream
        assert during.dropped["redis_down"] >= 100  # state messages published meanwhile
        owned_redis.start()
        await wait_for(lambda: bus.health().backlog == 0 and bus.connected, "the catch-up", 120)
        after = bus.health()
        # the control subscription came back by itself: a kill switch sent now is heard
        client = redis.asyncio.Redis(port=owned_redis.port)
        await wait_for_subscriber(client, CONTROL)
        kill = ControlMessage(ts_ns=1, action="kill_switch", by="ops", reason="outage test")
        await client.publish(CONTROL, encode_message(kill))
        await client.aclose()
        await wait_for(lambda: heard == [kill], "the kill switch")
        await bus.close()
        assert after.reconnects >= 1
        assert after.stream_written + after.duplicates == 2 * per_burst
        assert "backlog_full" not in after.dropped and "queue_full" not in after.dropped
        return {"backlog_during": during.backlog, "duplicates": after.duplicates}

    figures = asyncio.run(main())
    client = owned_redis.client()
    try:
        rows = client.xrange(STREAMS[TRADES])
    finally:
        client.close()
    ids = [tuple(int(x) for x in sid.decode().split("-")) for sid, _ in rows]
    assert ids == sorted(set(ids))
    assert [decode_message(f[b"m"]).ts_ns for _, f in rows] == list(range(2 * per_burst))
    print(f"outage: {figures}")


async def wait_for_subscriber(client: redis.asyncio.Redis, channel: str) -> None:
    """Until Redis reports a subscriber on ``channel``; fails after 30 s (a hang guard)."""
    deadline = time.monotonic() + 30
    while True:
        rows = await client.pubsub_numsub(channel)
        if any(int(n) > 0 for _, n in rows):
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"no subscriber came back on {channel}")
        await asyncio.sleep(0.01)


def test_writes_refused_for_lack_of_memory_are_kept_until_redis_takes_them(
    owned_redis: OwnedRedis,
) -> None:
    n = 200
    admin = owned_redis.client()

    async def main() -> dict[str, int]:
        bus = RedisBus(owned_redis.url, backoff_min_s=0.01, backoff_max_s=0.05)
        await bus.start()
        bus.publish(TRADES, fill(0))
        await wait_for(lambda: bus.stream_written == 1, "the first write")
        admin.config_set("maxmemory", 1)  # every write is now refused with OOM
        for i in range(1, n):
            bus.publish(TRADES, fill(i))
        await wait_for(lambda: bus.queued() == 0 and not bus.connected, "the refusals")
        assert bus.health().backlog == n - 1
        admin.config_set("maxmemory", 0)
        await wait_for(lambda: bus.health().backlog == 0, "the backlog to go in")
        h = bus.health()
        await bus.close()
        return {"written": h.stream_written, "duplicates": h.duplicates, **h.dropped}

    try:
        assert asyncio.run(main()) == {"written": n, "duplicates": 0}
        rows = admin.xrange(STREAMS[TRADES])
    finally:
        admin.close()
    assert [decode_message(f[b"m"]).ts_ns for _, f in rows] == list(range(n))


def test_a_frozen_redis_times_out_and_the_retry_writes_nothing_twice(
    owned_redis: OwnedRedis,
) -> None:
    """SIGSTOP: the pipeline sits in Redis's socket buffer, the bus times out and keeps the
    messages; SIGCONT: Redis runs the buffered writes too, and the retry must skip them."""
    n = 100
    assert owned_redis.proc is not None
    pid = owned_redis.proc.pid

    async def main() -> dict[str, int]:
        bus = RedisBus(owned_redis.url, socket_timeout_s=0.3, backoff_min_s=0.05, backoff_max_s=0.1)
        await bus.start()
        bus.publish(TRADES, fill(0))
        await wait_for(lambda: bus.stream_written == 1, "the first write")
        os.kill(pid, signal.SIGSTOP)
        try:
            for i in range(1, n + 1):
                assert bus.publish(TRADES, fill(i))
            await wait_for(lambda: not bus.connected and bus.queued() == 0, "the timeout")
            assert bus.health().backlog == n
        finally:
            os.kill(pid, signal.SIGCONT)
        await wait_for(lambda: bus.health().backlog == 0, "the retry")
        h = bus.health()
        await bus.close()
        return {"written": h.stream_written, "duplicates": h.duplicates}

    got = asyncio.run(main())
    assert got["written"] + got["duplicates"] == n + 1
    assert got["duplicates"] > 0  # the buffered attempt did land: the dedupe was needed
    client = owned_redis.client()
    try:
        rows = client.xrange(STREAMS[TRADES])
    finally:
        client.close()
    assert [decode_message(f[b"m"]).ts_ns for _, f in rows] == list(range(n + 1))

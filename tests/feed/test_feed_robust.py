"""Nothing a venue sends can stop a feed: bad frames over a real socket, and dead tasks.

A scripted local WebSocket server (real sockets on an ephemeral port) plays the venue: per
connection it answers the subscription with a script of frames, then answers ``PING`` with
``PONG``. The market and user feeds must count the bad frames, keep their books / events
flowing after them, and get back a connection task that died.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from pathlib import Path
from typing import Any

import msgspec
from websockets.asyncio.server import ServerConnection, serve

from polylab.book.market_feed import MarketFeed, MarketFeedConfig
from polylab.execution.auth import ApiCreds
from polylab.feed.recording import RecordingReader, RecordingWriter
from polylab.feed.user_ws import UserFeed, UserFeedConfig
from polylab.feed.wire import UserEvent, UserOrder

Frame = str | bytes | tuple[str, bytes] | asyncio.Event
"""A frame to send: text, binary, or ("text", raw bytes) for a text frame of any bytes; an
event makes the server wait for it before sending on."""
Script = Callable[[int], list[Frame]]
"""Connection number (1-based) → frames sent after its subscription."""


def asynctest(fn: Callable[..., Coroutine[Any, Any, None]]) -> Callable[..., None]:
    """Run an async test on a fresh loop, bounded in time."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        asyncio.run(asyncio.wait_for(fn(*args, **kwargs), 25))

    return wrapper


class Venue:
    """The scripted server; ``subscriptions`` holds each connection's first message."""

    def __init__(self, script: Script) -> None:
        self.script = script
        self.subscriptions: list[dict[str, Any]] = []
        self.url = ""

    async def handler(self, ws: ServerConnection) -> None:
        self.subscriptions.append(json.loads(await ws.recv()))
        n = len(self.subscriptions)
        with contextlib.suppress(Exception):  # a frame may make the client hang up
            for f in self.script(n):
                if isinstance(f, asyncio.Event):
                    await f.wait()
                elif isinstance(f, tuple):
                    await ws.send(f[1], text=True)
                else:
                    await ws.send(f)
            async for msg in ws:
                if msg == "PING":
                    await ws.send("PONG")


@contextlib.asynccontextmanager
async def venue(script: Script) -> AsyncIterator[Venue]:
    v = Venue(script)
    async with serve(v.handler, "127.0.0.1", 0, compression=None) as server:
        port = server.sockets[0].getsockname()[1]
        v.url = f"ws://127.0.0.1:{port}"
        yield v


async def until(pred: Callable[[], bool], timeout_s: float = 8.0) -> bool:
    end = time.monotonic() + timeout_s
    while not pred():
        if time.monotonic() > end:
            return False
        await asyncio.sleep(0.02)
    return True


def book(bid: str, ts: str = "1") -> str:
    return json.dumps(
        {
            "market": "0xm",
            "asset_id": "A",
            "bids": [{"price": bid, "size": "10"}],
            "asks": [{"price": "0.60", "size": "10"}],
            "timestamp": ts,
            "hash": "h",
            "event_type": "book",
        }
    )


def change(price: str, size: str = "5") -> str:
    return json.dumps(
        {
            "market": "0xm",
            "price_changes": [{"asset_id": "A", "price": price, "size": size, "side": "BUY"}],
            "timestamp": "2",
            "event_type": "price_change",
        }
    )


BAD: list[Frame] = [
    "[" * 5000 + "]" * 5000,  # raised RecursionError out of the decoder
    '{"a":' * 5000 + "1" + "}" * 5000,
    '{"event_type":"book","asset_id":"A","bids":' + "[" * 3000 + "]" * 3000 + "}",
    b"\xff\xfe{\x00",  # binary, not UTF-8
    book("0.41", ts="0.0"),  # a timestamp that is not an integer
    "[" * 20 + "1",
]


def market_config(url: str) -> MarketFeedConfig:
    return msgspec.convert(
        {
            "url": url,
            "stale_after_ms": 0,
            "check_every_ms": 30,
            "snapshot_timeout_ms": 20_000,
            "backoff_min_ms": 10,
            "backoff_max_ms": 50,
            "max_frame_bytes": 1 << 20,
        },
        MarketFeedConfig,
    )


def bid(feed: MarketFeed) -> int | None:
    b = feed.book("A")
    return None if b is None else b.best_bid_micros()


@asynctest
async def test_market_books_keep_updating_after_bad_frames_on_the_same_socket() -> None:
    def script(n: int) -> list[Frame]:
        return [book("0.40"), *BAD, change("0.45"), "[" * 10_000, change("0.46")]

    async with venue(script) as v, MarketFeed(market_config(v.url)) as feed:
        await feed.subscribe(["A"])
        assert await until(lambda: bid(feed) == 460_000), (bid(feed), feed.counters)
        c = feed.counters
        # every bad frame is counted once; the 0.0-timestamp book is usable and applied
        assert c.malformed == 6
        assert c.connects == 1 and c.reconnects == 0 and c.restarts == 0
        assert not feed.is_stale("A")


@asynctest
async def test_a_text_frame_that_is_not_utf8_costs_a_reconnect_not_the_feed() -> None:
    def script(n: int) -> list[Frame]:
        if n == 1:
            return [book("0.40"), ("text", b"{\xff\xfe}")]
        return [book("0.42"), change("0.44")]

    async with venue(script) as v, MarketFeed(market_config(v.url)) as feed:
        await feed.subscribe(["A"])
        assert await until(lambda: bid(feed) == 440_000), (bid(feed), feed.counters)
        c = feed.counters
        assert c.malformed == 1 and c.reconnects == 1 and c.connects == 2
        assert len(v.subscriptions) == 2 and v.subscriptions[1]["assets_ids"] == ["A"]


@asynctest
async def test_watchdog_restarts_a_dead_market_connection_task() -> None:
    def script(n: int) -> list[Frame]:
        return [book("0.40" if n == 1 else "0.43")]

    async with venue(script) as v, MarketFeed(market_config(v.url)) as feed:
        await feed.subscribe(["A"])
        assert await until(lambda: bid(feed) == 400_000)
        link = feed.shards[0].link
        assert link is not None and link.task is not None
        link.task.cancel()  # the task ends as if it had died
        assert await until(lambda: bid(feed) == 430_000), (bid(feed), feed.counters)
        assert feed.counters.restarts == 1 and len(v.subscriptions) == 2
        assert not link.task.done()


@asynctest
async def test_letting_go_of_the_recorder_stops_recording_at_the_next_frame(
    tmp_path: Path,
) -> None:
    go = asyncio.Event()

    def script(n: int) -> list[Frame]:
        return [book("0.40"), go, change("0.45")]

    path = tmp_path / "rec.jsonl"
    writer = RecordingWriter(path)
    async with venue(script) as v, MarketFeed(market_config(v.url), recorder=writer) as feed:
        await feed.subscribe(["A"])
        assert await until(lambda: bid(feed) == 400_000)
        feed.recorder = None  # a session that stops lets go of its recording first
        go.set()
        assert await until(lambda: bid(feed) == 450_000)
    writer.close()
    assert [r.payload for r in RecordingReader(path)] == [book("0.40")]


def order(price: str) -> str:
    return json.dumps({"id": "o1", "market": "0xm", "price": price, "event_type": "order"})


def user_config(url: str) -> UserFeedConfig:
    return msgspec.convert(
        {
            "url": url,
            "check_every_ms": 30,
            "backoff_min_ms": 10,
            "backoff_max_ms": 50,
            "max_frame_bytes": 1 << 20,
        },
        UserFeedConfig,
    )


CREDS = ApiCreds(api_key="k", secret="c2VjcmV0", passphrase="p")


@asynctest
async def test_user_feed_keeps_delivering_after_bad_frames_and_a_dead_task() -> None:
    def script(n: int) -> list[Frame]:
        if n == 1:
            return [*BAD[:4], '{"event_type":"order","id":7}', order("0.41")]
        return [order("0.42")]

    got: list[UserEvent] = []
    async with (
        venue(script) as v,
        UserFeed(user_config(v.url), CREDS, on_event=lambda ns, ev: got.append(ev)) as feed,
    ):
        assert await until(lambda: len(got) == 1)
        c = feed.counters
        assert c.malformed == 5 and c.connects == 1 and feed.connected
        link = feed._link
        assert link.task is not None
        link.task.cancel()
        assert await until(lambda: len(got) == 2), feed.counters
        assert c.restarts == 1 and c.connects == 2
    assert [e.price for e in got if isinstance(e, UserOrder)] == ["0.41", "0.42"]
    assert v.subscriptions[0]["auth"]["apiKey"] == "k"

"""Market WebSocket client against the real simulator (ephemeral port), faults on and off.

The order flow is driven straight through the simulator's exchange (BUYs on both tokens, so
complementary orders also MINT-match and produce trades, plus cancels); after it stops, every
book the client holds must equal the exchange's own book level by level.
"""

from __future__ import annotations

import asyncio
import functools
import random
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import msgspec
import pytest
from websockets.asyncio.server import ServerConnection, serve

from polylab.analysis.replay import replay
from polylab.book.l2 import L2Book
from polylab.book.market_feed import MarketFeed, MarketFeedConfig, backoff_delay_s
from polylab.execution.rest import AsyncClobRest
from polylab.feed.recording import RecordingWriter
from polylab.feed.wire import MarketEvent
from polylab.market import Market
from polylab.money import MICROS, parse_micros
from polylab.sim.config import SimConfig
from polylab.sim.exchange import Exchange
from polylab.sim.faults import FaultConfig
from polylab.sim.server import running_sim

TRADERS = ["0x" + b * 20 for b in ("a1", "b2", "c3")]
Levels = tuple[list[tuple[int, int]], list[tuple[int, int]]]


def asynctest(fn: Callable[..., Coroutine[Any, Any, None]]) -> Callable[..., None]:
    """Run an async test on a fresh loop, bounded in time (no async pytest plugin needed)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        asyncio.run(asyncio.wait_for(fn(*args, **kwargs), 28))

    return wrapper


def sim_config(**faults: object) -> SimConfig:
    return SimConfig(generator=False, faults=msgspec.convert(faults, FaultConfig))


def feed_config(url: str, **kw: object) -> MarketFeedConfig:
    base: dict[str, object] = {
        "url": url + "/ws/market",
        "check_every_ms": 50,
        "backoff_min_ms": 20,
        "backoff_max_ms": 200,
        "stale_after_ms": 1500,
        "snapshot_timeout_ms": 800,
    }
    return msgspec.convert({**base, **kw}, MarketFeedConfig)


def markets(ex: Exchange) -> list[Market]:
    return list(ex.markets.markets.values())


def ref_levels(ex: Exchange, token: str) -> Levels:
    bj = ex.book_json(token)

    def side(lv: list[dict[str, str]]) -> list[tuple[int, int]]:
        return [(parse_micros(x["price"]), parse_micros(x["size"])) for x in reversed(lv)]

    return side(bj["bids"]), side(bj["asks"])


def local_levels(b: L2Book | None) -> Levels | None:
    if b is None:
        return None
    m = b.tick.micros
    return [(t * m, s) for t, s in b.bid_levels()], [(t * m, s) for t, s in b.ask_levels()]


async def drive(
    ex: Exchange, ms: list[Market], seconds: float, seed: int, *, cross: bool = True
) -> int:
    """Random BUYs on both tokens and cancels; returns actions done. With ``cross`` YES and NO
    bids can sum to ≥ $1 and MINT-match (trades, then fresh ``book`` snapshots); without, no
    trade ever resets a book, so only the client's own healing can repair a lost update."""
    rng = random.Random(seed)
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds
    live: list[tuple[str, str]] = []
    n = 0
    while loop.time() < end:
        n += 1
        if live and rng.random() < 0.35:
            owner, oid = live.pop(rng.randrange(len(live)))
            ex.cancel(owner, oid)
        else:
            m = rng.choice(ms)
            tok = rng.choice(m.token_ids)
            cents = rng.randint(38, 55) if cross else rng.randint(30, 49)
            ticks = ex.grid(tok).micros_to_ticks(cents * 10_000)
            owner = rng.choice(TRADERS)
            r = ex.place(owner, tok, "BUY", ticks, rng.randint(5, 30) * MICROS)
            if r.success and r.status == "live":
                live.append((owner, r.order_id))
        await asyncio.sleep(0.003)
    return n


async def until(pred: Callable[[], bool], timeout_s: float = 8.0) -> bool:
    end = time.monotonic() + timeout_s
    while not pred():
        if time.monotonic() > end:
            return False
        await asyncio.sleep(0.02)
    return True


async def settle(
    feed: MarketFeed, ex: Exchange, tokens: list[str], timeout_s: float = 12.0
) -> list[str]:
    """Wait until every token's book is fresh and equal to the exchange's; the tokens that are
    not, at the deadline."""
    end = time.monotonic() + timeout_s
    while True:
        bad = [
            t for t in tokens if feed.is_stale(t) or local_levels(feed.book(t)) != ref_levels(ex, t)
        ]
        if not bad or time.monotonic() > end:
            return bad
        await asyncio.sleep(0.05)


def test_config_is_strict_and_backoff_grows_with_jitter_inside_its_range() -> None:
    with pytest.raises(msgspec.ValidationError, match="assets_per_connection"):
        msgspec.convert({"url": "ws://x", "assets_per_connection": 501}, MarketFeedConfig)
    with pytest.raises(msgspec.ValidationError, match="stale_afer_ms"):
        msgspec.convert({"url": "ws://x", "stale_afer_ms": 5}, MarketFeedConfig)
    rng = random.Random(1)
    for attempt, cap in ((0, 0.1), (1, 0.2), (3, 0.8), (10, 5.0), (40, 5.0)):
        ds = [backoff_delay_s(attempt, 100, 5_000, 0.5, rng) for _ in range(200)]
        assert all(cap / 2 <= d <= cap for d in ds)
        assert max(ds) - min(ds) > cap / 10  # jittered, not constant


@asynctest
async def test_books_equal_the_exchange_and_the_recording_replays_to_them(tmp_path: Path) -> None:
    events: list[MarketEvent] = []

    def on_event(recv_ns: int, ev: MarketEvent) -> None:
        events.append(ev)
        if len(events) == 3:
            raise RuntimeError("a broken callback must not stop the feed")

    async with running_sim(sim_config()) as sim:
        ex = sim.state.exchange
        ms = markets(ex)
        tokens = [t for m in ms for t in m.token_ids]
        with RecordingWriter(tmp_path / "rec.jsonl") as rec:
            feed = MarketFeed(
                feed_config(sim.ws_url, ping_s=0.2, stale_after_ms=0),
                on_event=on_event,
                recorder=rec,
            )
            async with feed:
                await feed.subscribe(tokens)
                assert await feed.wait_fresh(5)
                await drive(ex, ms, 1.5, seed=1)
                assert await settle(feed, ex, tokens) == []
                c = feed.counters
                books = {t: local_levels(feed.book(t)) for t in tokens}
    assert c.gaps == 0 and c.resyncs == 0 and c.reconnects == 0 and c.malformed == 0
    assert c.callback_errors == 1 and c.events == len(events) > 100
    assert c.pings > 0 and c.pongs > 0
    assert ex.stats["orders"] > 100 and len(ex.trades(TRADERS[0])) + len(ex.trades(TRADERS[1])) > 0
    kinds = {type(e).__name__ for e in events}
    assert {"Book", "PriceChange", "LastTradePrice", "BestBidAsk"} <= kinds
    _, reg, _, _ = replay(tmp_path / "rec.jsonl", verify=False, monitor=False)
    assert {t: local_levels(reg.books.get(t)) for t in tokens} == books


@pytest.mark.parametrize("healer", ["gap-check+watchdog", "rest-reconcile"])
@asynctest
async def test_books_heal_after_drops_reorders_and_garbled_frames(healer: str) -> None:
    """Lost, swapped and garbled frames, and no trades to reset books. Either healer brings
    every book back: the stated best bid/ask check (at once, for damage at the top) with the
    quiet-token watchdog (a resync once the token goes quiet, for damage below the top), or
    the REST reconciliation alone."""
    cfg = sim_config(
        drop_prob=0.04, reorder_prob=0.05, malformed_prob=0.02, latency_ms=1, jitter_ms=3
    )
    async with running_sim(cfg) as sim, AsyncClobRest(sim.url) as rest:
        ex = sim.state.exchange
        ms = markets(ex)
        tokens = [t for m in ms for t in m.token_ids]
        if healer == "gap-check+watchdog":
            fcfg = feed_config(sim.ws_url, stale_after_ms=1000)
            source = None
        else:
            fcfg = feed_config(
                sim.ws_url,
                resync_on_gap=False,
                stale_after_ms=0,
                reconcile_every_s=0.3,
                reconcile_quiet_ms=200,
            )
            source = rest.get_books
        async with MarketFeed(fcfg, book_source=source) as feed:
            await feed.subscribe(tokens)
            await drive(ex, ms, 3.0, seed=2, cross=False)
            bad = await settle(feed, ex, tokens)
            c = feed.counters
    assert bad == []
    assert c.malformed > 0 and c.resyncs > 0
    if healer == "gap-check+watchdog":
        assert c.gaps > 0 and c.stale_flags > 0 and c.reconcile_checks == 0
    else:
        assert c.gaps == 0 and c.reconcile_mismatches > 0


@asynctest
async def test_forced_disconnects_reconnect_and_resync_every_book() -> None:
    stale: list[tuple[str, str, bool]] = []
    async with running_sim(sim_config(disconnect_every_s=1.0)) as sim:
        ex = sim.state.exchange
        ms = markets(ex)[:2]
        tokens = [t for m in ms for t in m.token_ids]

        def on_stale(token: str, reason: str) -> None:
            b = feed.book(token)
            stale.append((token, reason, b is not None and b.needs_snapshot))

        feed = MarketFeed(feed_config(sim.ws_url, stale_after_ms=0), on_stale=on_stale)
        async with feed:
            await feed.subscribe(tokens)
            await drive(ex, ms, 3.2, seed=3)
            bad = await settle(feed, ex, tokens)
            c = feed.counters
    assert bad == []
    assert c.reconnects >= 2 and c.connects >= 3 and c.disconnects >= 2
    dropped = [s for s in stale if s[1] == "disconnected"]
    assert {s[0] for s in dropped} == set(tokens)
    assert all(needs for _, _, needs in dropped)  # flagged until the reconnect's snapshot


@asynctest
async def test_a_stalled_token_is_flagged_while_stalled_then_heals() -> None:
    flags: list[tuple[str, str, bool, float]] = []
    async with running_sim(SimConfig(generator=False)) as probe:
        stalled = markets(probe.state.exchange)[0].token_ids[0]
    async with running_sim(sim_config(stall_token_ids=[stalled], stall_s=3.0)) as sim:
        ex = sim.state.exchange
        ms = markets(ex)[:2]
        tokens = [t for m in ms for t in m.token_ids]
        assert stalled in tokens

        def on_stale(token: str, reason: str) -> None:
            flags.append((token, reason, feed.book(token) is None, time.monotonic()))

        feed = MarketFeed(feed_config(sim.ws_url, stale_after_ms=500), on_stale=on_stale)
        async with feed:
            t0 = time.monotonic()
            await feed.subscribe(tokens)
            await drive(ex, ms, 1.5, seed=4)
            assert feed.is_stale(stalled) and feed.book(stalled) is None  # still stalled
            bad = await settle(feed, ex, tokens)
            c = feed.counters
    assert bad == []
    mine = [f for f in flags if f[0] == stalled]
    assert mine and mine[0][1] == "quiet"
    assert mine[0][2]  # flagged while its frames were withheld (no book had arrived)
    assert mine[0][3] - t0 >= 0.5  # never before stale_after_ms
    assert c.stale_flags >= 1 and c.resyncs >= 1


@asynctest
async def test_dynamic_subscribe_unsubscribe_and_sharding() -> None:
    async with running_sim(sim_config()) as sim:
        ex = sim.state.exchange
        ms = markets(ex)
        first = [t for m in ms[:2] for t in m.token_ids]
        rest = [t for m in ms[2:] for t in m.token_ids]
        async with MarketFeed(feed_config(sim.ws_url, assets_per_connection=2)) as feed:
            await feed.subscribe(first)
            assert await feed.wait_fresh(5)
            await feed.subscribe(rest)
            assert len(feed.shards) == 5 and all(len(s.tokens) <= 2 for s in feed.shards)
            await drive(ex, ms, 1.0, seed=5)
            assert await settle(feed, ex, first + rest) == []
            await feed.unsubscribe(rest)
            assert len(feed.shards) == 2 and feed.token_ids == first
            assert all(feed.book(t) is None for t in rest)
            await asyncio.sleep(0.3)
            seen = feed.counters.events
            await drive(ex, ms[2:], 0.5, seed=6)  # only the dropped markets move
            await asyncio.sleep(0.3)
            assert feed.counters.events == seen
            await drive(ex, ms[:2], 0.5, seed=7)
            assert await settle(feed, ex, first) == []
            await feed.subscribe(rest[:2])  # back again: a fresh snapshot, into a shard with room
            assert await settle(feed, ex, first + rest[:2]) == []
            assert len(feed.shards) == 3


@asynctest
async def test_quiet_tokens_can_reconnect_their_shard() -> None:
    async with running_sim(sim_config()) as sim:
        tokens = list(markets(sim.state.exchange)[0].token_ids)  # nothing ever trades here
        cfg = feed_config(sim.ws_url, stale_after_ms=300, stale_action="reconnect")
        async with MarketFeed(cfg) as feed:
            await feed.subscribe(tokens)
            assert await until(lambda: feed.counters.connects >= 3)
            assert await feed.wait_fresh(5)
            c = feed.counters
    assert c.stale_flags >= 2 and c.reconnects >= 2 and c.resyncs == 0


@asynctest
async def test_a_silent_server_is_dropped_and_reconnected() -> None:
    """A socket that swallows PINGs and sends nothing is closed after ``silence_s``."""
    seen: list[str] = []

    async def mute(ws: ServerConnection) -> None:
        seen.append(str(await ws.recv()))  # the subscription; PINGs are never read
        await ws.wait_closed()

    async with serve(mute, "127.0.0.1", 0) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        cfg = msgspec.convert(
            {
                "url": f"ws://127.0.0.1:{port}",
                "ping_s": 0.1,
                "silence_s": 0.3,
                "backoff_min_ms": 10,
                "stale_after_ms": 0,
            },
            MarketFeedConfig,
        )
        async with MarketFeed(cfg) as feed:
            await feed.subscribe(["123"])
            assert await until(lambda: feed.counters.reconnects >= 2)
            assert feed.is_stale("123") and feed.counters.pings >= 2
    assert all('"assets_ids":["123"]' in s and '"type":"market"' in s for s in seen)
    assert len(seen) >= 2

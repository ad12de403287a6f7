"""``poly:state``'s feed health per shard (issue 11 §2), read off a real ``MarketFeed`` on the
simulator: one entry per connection with its own frame age, reconnections and stale books;
the venue going away shows on every shard."""

from __future__ import annotations

import asyncio
import time

import msgspec
from ops_helpers import asynctest

from polylab.book.market_feed import MarketFeed, MarketFeedConfig
from polylab.runner.state_view import feed_health
from polylab.sim.config import SimConfig
from polylab.sim.server import running_sim


@asynctest
async def test_feed_health_has_one_entry_per_shard_and_follows_the_venue() -> None:
    sim_cm = running_sim(SimConfig(generator=False))
    sim = await sim_cm.__aenter__()
    sim_open = True
    try:
        tokens = [t for m in sim.state.exchange.markets.markets.values() for t in m.token_ids]
        assert len(tokens) >= 3
        per = (len(tokens) + 1) // 2  # two shards
        fcfg = msgspec.convert(
            {
                "url": sim.ws_url + "/ws/market",
                "backoff_min_ms": 20,
                "backoff_max_ms": 100,
                "assets_per_connection": per,
            },
            MarketFeedConfig,
        )
        async with MarketFeed(fcfg) as feed:
            assert feed_health(feed.shards, feed.registry.books, time.time_ns()) == ()
            await feed.subscribe(tokens)
            assert await feed.wait_fresh(10)
            up = feed_health(feed.shards, feed.registry.books, time.time_ns())
            assert [h.shard for h in up] == ["market-1", "market-2"]
            assert all(h.connected and h.stale_books == 0 and h.reconnects == 0 for h in up)
            assert all(h.last_msg_age_ms >= 0 for h in up)  # each has had a frame
            await sim_cm.__aexit__(None, None, None)  # the venue goes away
            sim_open = False
            for _ in range(200):
                down = feed_health(feed.shards, feed.registry.books, time.time_ns())
                if all(not h.connected and h.reconnects > 0 for h in down):
                    break
                await asyncio.sleep(0.05)
            assert all(not h.connected and h.reconnects > 0 for h in down), down
            # every book of a dropped connection waits for a snapshot, counted on its shard
            assert sum(h.stale_books for h in down) == len(tokens)
            assert [h.stale_books for h in down] == [len(sh.tokens) for sh in feed.shards]
    finally:
        if sim_open:
            await sim_cm.__aexit__(None, None, None)

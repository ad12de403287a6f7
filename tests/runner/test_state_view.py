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


def test_open_orders_are_the_legs_of_intents_in_flight_until_their_result() -> None:
    """A real engine and paper trader (50 ms latency on the engine's clock): an approved
    intent's legs are listed until the result comes back; a refused one never is."""
    from polylab.book.l2 import L2Book
    from polylab.book.registry import BookRegistry
    from polylab.domain import Intent, Leg
    from polylab.engine import Engine
    from polylab.execution.paper import PaperConfig, PaperTrader
    from polylab.market import Market, MarketCatalog
    from polylab.money import tick_size
    from polylab.risk.manager import RiskConfig, RiskManager
    from polylab.risk.portfolio import Portfolio
    from polylab.runner.state_view import open_orders

    m = 1_000_000
    cat = MarketCatalog([Market(condition_id="m1", token_ids=("1", "2"), min_order_size="5")])
    reg = BookRegistry(cat)
    for tok, ask in (("1", 30), ("2", 60)):
        b = reg.books[tok] = L2Book(tok, tick_size("0.01"), "m1")
        b.load([], [(ask, 1_000 * m)])
    pf = Portfolio(1_000 * m)
    risk = RiskManager(RiskConfig(), pf)
    engine = Engine(
        registry=reg,
        strategies=[],
        risk=risk,
        executor=PaperTrader(PaperConfig(latency_ms=50), cat),
        portfolio=pf,
    )
    legs = (
        Leg(token_id="1", side="BUY", price=300_000, size=10 * m),
        Leg(token_id="2", side="BUY", price=600_000, size=10 * m),
    )
    iid = engine.submit(
        Intent(strategy="s", group_id="m1", kind="set", legs=legs, edge=0, created_ns=0)
    )
    assert iid is not None
    got = open_orders(engine.in_flight())
    assert [(o.order_id, o.intent_id, o.token_id, o.side) for o in got] == [
        (f"{iid}/0", iid, "1", "BUY"),
        (f"{iid}/1", iid, "2", "BUY"),
    ]
    assert [(o.price_micros, o.size_micros, o.filled_micros) for o in got] == [
        (300_000, 10 * m, 0),
        (600_000, 10 * m, 0),
    ]
    # from the executor (what the runner publishes): the paper venue's order ids
    venue = open_orders(engine.in_flight(), engine.executor)
    assert [(o.order_id, o.intent_id, o.token_id) for o in venue] == [
        ("paper-1-0", iid, "1"),
        ("paper-1-1", iid, "2"),
    ]
    assert [(o.price_micros, o.size_micros) for o in venue] == [
        (300_000, 10 * m),
        (600_000, 10 * m),
    ]
    risk.kill("test")
    refused = Intent(strategy="t", group_id="m1", kind="set", legs=legs, edge=0, created_ns=0)
    assert engine.submit(refused) is None
    assert len(open_orders(engine.in_flight())) == 2  # the refused intent is not in flight
    engine.on_time(10 * 1_000_000)  # 10 ms: still on its way
    assert len(open_orders(engine.in_flight())) == 2
    engine.on_time(100 * 1_000_000)  # past the latency: filled, the result is back
    assert engine.stats.results == 1 and open_orders(engine.in_flight()) == ()
    assert open_orders(engine.in_flight(), engine.executor) == ()


def test_daily_pnl_and_loss_headroom_count_today_only_and_match_the_gate() -> None:
    """A restored loss of $50 realized today: the day's PnL and the daily-loss room count it
    today and not tomorrow; the room is what the gate enforces (an intent whose worst case is
    over it is refused by ``daily_loss``, one within it is approved); reaching the limit gives 0."""
    from polylab.book.l2 import L2Book
    from polylab.domain import Intent, Leg
    from polylab.market import Market, MarketCatalog
    from polylab.money import tick_size
    from polylab.risk.manager import Approved, RiskConfig, RiskManager
    from polylab.risk.portfolio import Portfolio
    from polylab.runner.state_view import day_figures

    m = 1_000_000
    day = 20_000 * 86_400 * 10**9  # a UTC midnight, ns
    now = day + 3_600 * 10**9
    cat = MarketCatalog([Market(condition_id="m1", token_ids=("1", "2"), min_order_size="5")])
    book = L2Book("1", tick_size("0.01"), "m1")
    book.load([(49, 1_000 * m)], [(50, 1_000 * m)])
    pf = Portfolio(1_000 * m)
    pf.restore(cash_micros=1_000 * m, positions={}, realized_today_micros=-50 * m, now_ns=now)
    risk = RiskManager(RiskConfig(max_daily_loss_micros=200 * m), pf, cat, {"1": book})
    assert day_figures(pf, risk, 7 * m, now) == (-43 * m, 150 * m)
    assert day_figures(pf, risk, 0, now + 86_400 * 10**9) == (0, 200 * m)  # the next day

    def buy(cost: int, n: int) -> Intent:  # a BUY at 0.50 whose worst case is its cost
        leg = Leg(token_id="1", side="BUY", price=500_000, size=2 * cost)
        return Intent(strategy="s", group_id="m1", kind="single", legs=(leg,), edge=0, created_ns=n)

    over = risk.check("over", buy(151 * m, now), now)
    assert not isinstance(over, Approved) and over.rule == "daily_loss"
    assert isinstance(risk.check("within", buy(100 * m, now), now), Approved)
    _, room = day_figures(pf, risk, 0, now)
    assert 0 < room < 50 * m  # the approved intent's worst case (cost and fees) is in flight
    risk.release("within")
    pf.restore(cash_micros=1_000 * m, positions={}, realized_today_micros=-250 * m, now_ns=now)
    assert day_figures(pf, risk, 0, now) == (-250 * m, 0)

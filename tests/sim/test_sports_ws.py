"""The simulator's sports channel (``/ws/sports``): broadcasts, its own result lag, the
ping/pong rule, and the Sniper trading on its results over real sockets."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import websockets

from polylab.book.market_feed import MarketFeed, MarketFeedConfig
from polylab.book.registry import BookRegistry
from polylab.domain import Intent
from polylab.feed.sports_channel import PolymarketSportsSource, SportsChannelConfig
from polylab.feed.venue_sports import parse_sport_results
from polylab.market import MarketCatalog
from polylab.sim.config import SimConfig
from polylab.sim.server import running_sim
from polylab.sim.sports import LEAGUES
from polylab.sim.sports_ws import SportsChannel
from polylab.sim.state import SimState
from polylab.strategy.sniper import Sniper

FAST = {"sports_ws_ping_s": 0.05, "sports_ws_pong_timeout_s": 0.25, "sports_ws_tick_s": 0.01}


def run(fn: Callable[[], Awaitable[None]], limit_s: float = 30) -> None:
    asyncio.run(asyncio.wait_for(fn(), limit_s))


def _nfl_game(state: SimState) -> str:
    lg = LEAGUES[("football", "nfl")]
    g = state.scoreboard.add_game("football", "nfl", lg.teams[1], lg.teams[0], 1_764_000_000_000)
    return g.id


def test_messages_follow_the_scoreboard_and_the_final_waits_for_the_channel_lag() -> None:
    """``changes(now)`` on an explicit clock: a game's messages parse back to the scoreboard's
    state, and its final is held back ``sports_ws_lag_s`` after the scoreboard shows it."""
    state = SimState(SimConfig(generator=False, sports_ws_lag_s=3.0))
    ch = SportsChannel(state)
    gid = _nfl_game(state)
    t = 1_000 * 10**9
    (pre,) = parse_sport_results(ch.changes(t)[0])
    assert (pre.id, pre.state, pre.home, pre.away) == (gid, "pre", "MIA", "NE")
    assert pre.slug.startswith("nfl-ne-mia-") and pre.home_name == "Miami Dolphins"
    assert ch.changes(t) == []  # nothing changed, nothing sent
    state.scoreboard.start(gid)
    state.scoreboard.update(gid, home_score=7, away_score=10, period=4)
    (live,) = parse_sport_results(ch.changes(t)[0])
    assert live.state == "in" and (live.home_score, live.away_score) == (7, 10)
    state.scoreboard.finish(gid)
    assert ch.changes(t + 10**9) == []  # the scoreboard is final, the channel not yet
    assert ch.changes(t + 3_999_000_000) == []
    (raw,) = ch.changes(t + 4 * 10**9)
    (fin,) = parse_sport_results(raw)
    assert fin.final and fin.winner == "NE" and b"finishedTimestamp" in raw


async def _ws_client(url: str, answer: bool) -> tuple[int | None, int, list[str]]:
    """Connect, answer ``ping`` or not; returns (close code, pings seen, results) once the
    server closed us, or after 12 pings when answering."""
    pings, results = 0, []
    async with websockets.connect(url, ping_interval=None) as ws:
        try:
            async for msg in ws:
                assert isinstance(msg, str)
                if msg == "ping":
                    pings += 1
                    if answer:
                        await ws.send("pong")
                        if pings >= 12:
                            return None, pings, results
                else:
                    results.append(msg)
        except websockets.ConnectionClosed:
            pass
        return ws.close_code, pings, results


def test_a_client_that_never_answers_pong_is_closed_one_that_does_stays() -> None:
    async def main() -> None:
        async with running_sim(SimConfig(generator=False, **FAST)) as sim:
            ch = sim.sports
            _nfl_game(sim.state)
            url = f"{sim.ws_url}/ws/sports"
            code, pings, results = await _ws_client(url, answer=False)
            assert code == 1008 and pings >= 1 and ch.closed_for_pong == 1
            assert [g.state for g in parse_sport_results(results[0])] == ["pre"]
            code, pings, _ = await _ws_client(url, answer=True)
            # 12 pings at 0.05 s span more than twice the 0.25 s timeout: still open
            assert code is None and pings == 12 and ch.closed_for_pong == 1

    run(main)


def test_polymarket_source_keeps_its_connection_by_answering_the_server() -> None:
    async def main() -> None:
        async with running_sim(SimConfig(generator=False, **FAST)) as sim:
            gid = _nfl_game(sim.state)
            src = PolymarketSportsSource(
                SportsChannelConfig(url=f"{sim.ws_url}/ws/sports", silence_s=2.0)
            )
            async with src:
                (g,) = await src.poll()
                assert g.id == gid and g.state == "pre"
                while src.counters.pings < 15:
                    await asyncio.sleep(0.02)
                sim.state.scoreboard.start(gid)
                sim.state.scoreboard.finish(gid)
                got = await src.poll()
                while not got[0].final:
                    got = await src.poll()
                assert src.counters.connects == 1 and src.counters.disconnects == 0
                assert src.counters.pongs == src.counters.pings >= 15
            assert got[0].winner == "MIA"  # level scores: overtime goes to the home team
            assert sim.sports.closed_for_pong == 0

    run(main)


class _Ctx:
    """A Sniper ``Context`` over live books and the simulator's listed markets (wall clock)."""

    def __init__(self, reg: BookRegistry) -> None:
        self.reg = reg
        self.books = reg.books
        self.catalog: MarketCatalog = reg.catalog

    def now_ns(self) -> int:
        return time.time_ns()

    def position(self, token_id: str) -> int:
        return 0


def test_sniper_buys_the_winner_on_a_sports_channel_result_before_the_market_reprices() -> None:
    """Only the venue channel tells the Sniper about results (no ESPN source): the simulator's
    markets reprice ``sports_lag_s`` after the final, the channel reports it at once, and the
    Sniper buys the token that later resolves to $1."""
    cfg = SimConfig(
        seed=5,
        binary_markets=0,
        negrisk_events=0,
        sports_games=3,
        steps_per_s=200.0,
        sports_lag_s=2.0,
        game_delay_s=(0.2, 0.5),
        game_length_s=(1.0, 2.0),
        **FAST,
    )
    intents: list[Intent] = []
    resolved: dict[str, str] = {}

    async def main() -> None:
        async with running_sim(cfg) as sim:
            ex = sim.state.exchange

            def on_events(events: list[dict[str, Any]]) -> None:
                for e in events:
                    if e.get("event_type") == "market_resolved":
                        resolved[str(e["market"])] = str(e["winning_asset_id"])

            ex.add_market_listener(on_events)
            reg = BookRegistry()
            ctx = _Ctx(reg)
            sn = Sniper()
            markets = list(ex.markets.markets.values())
            for m in markets:
                reg.catalog.add(m)

            def on_book(_: int, ev: Any) -> None:
                for tok in {getattr(ev, "asset_id", "")} | {
                    e.asset_id for e in getattr(ev, "price_changes", None) or ()
                }:
                    if tok:
                        intents.extend(sn.on_book(ctx, tok))

            feed = MarketFeed(
                MarketFeedConfig(url=f"{sim.ws_url}/ws/market"), reg, on_event=on_book
            )
            src = PolymarketSportsSource(f"{sim.ws_url}/ws/sports", teams=sn.teams)
            async with feed, src:
                await feed.subscribe([t for m in markets for t in m.token_ids])
                first = {m.condition_id for m in markets}
                while not (first <= set(resolved)):
                    games = await asyncio.wait_for(src.poll(), 10)
                    intents.extend(sn.on_games(ctx, games))
            assert src.stats.malformed == 0

    run(main, 40)
    assert intents, "the books between the channel's final and the reprice offered the winner"
    for it in intents:
        (leg,) = it.legs
        assert leg.price <= 970_000 and it.edge > 0
        assert resolved[it.group_id] == leg.token_id, it
    assert len({it.group_id for it in intents}) == len(intents)


def test_production_layout_serves_the_channel_at_ws_on_its_own_port() -> None:
    """The ``polymarket`` profile with only ``POLYMARKET_SPORTS_WS_URL`` overridden reaches the
    channel that ``standalone_app`` serves at ``/ws`` (the production path)."""
    from aiohttp import web

    from polylab.sim.sports_ws import standalone_app
    from polylab.venue import resolve

    async def main() -> None:
        state = SimState(SimConfig(generator=False, **FAST))
        gid = _nfl_game(state)
        runner = web.AppRunner(standalone_app(state))
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        port = runner.addresses[0][1]
        try:
            env = {"POLYMARKET_SPORTS_WS_URL": f"ws://127.0.0.1:{port}/ws"}
            profile = resolve("polymarket", overrides=env, use_env=False)
            async with PolymarketSportsSource.for_venue(profile) as src:
                (g,) = await src.poll()
                assert g.id == gid and src.config.url.endswith(f":{port}/ws")
        finally:
            await runner.cleanup()

    run(main)


def test_every_client_gets_every_change_whenever_it_connected() -> None:
    """A client connecting after a change (its snapshot) does not take that change from the
    clients already connected; both see the final."""

    async def finals(src: PolymarketSportsSource) -> list[str]:
        got = await src.poll()
        while not got[-1].final:
            got = await src.poll()
        return [g.state for g in got]

    async def main() -> None:
        async with running_sim(SimConfig(generator=False, **FAST)) as sim:
            gid = _nfl_game(sim.state)
            url = f"{sim.ws_url}/ws/sports"
            async with PolymarketSportsSource(url) as a:
                assert [g.state for g in await a.poll()] == ["pre"]
                sim.state.scoreboard.start(gid)  # changed, then b connects before any tick
                async with PolymarketSportsSource(url) as b:
                    assert [g.state for g in await b.poll()] == ["in"]
                    assert [g.state for g in await a.poll()] == ["in"]
                    sim.state.scoreboard.finish(gid)
                    assert await finals(a) == await finals(b) == ["post"]

    run(main)

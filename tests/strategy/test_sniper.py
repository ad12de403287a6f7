"""Sniper: intents at known book prices, the cap, no double fire, lag measurement, draws."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import msgspec
import pytest

from polylab.book.l2 import L2Book
from polylab.domain import Game, Intent
from polylab.fees import FeeModel
from polylab.market import Market, MarketCatalog
from polylab.money import MICROS, tick_size
from polylab.research.sniper_lag import lag_frame, plot_lags, replay_sniper, write_sniper_demo
from polylab.strategy.base import Strategy
from polylab.strategy.sniper import LagRecord, Sniper, SniperConfig

S = MICROS  # one share / one dollar in micros
T0 = 1_700_000_000_000_000_000


class Ctx:
    """A plain Context: books, catalog and a settable clock."""

    def __init__(self, markets: list[Market]) -> None:
        self.books: dict[str, L2Book] = {}
        self.catalog = MarketCatalog(markets)
        self.now = T0

    def now_ns(self) -> int:
        return self.now

    def position(self, token_id: str) -> int:
        return 0

    def book(
        self,
        token: str,
        *,
        bids: list[tuple[str, int]] | None = None,
        asks: list[tuple[str, int]] | None = None,
        at: int | None = None,
    ) -> L2Book:
        """Set ``token``'s book to these (price text, whole shares) levels, updated at ``at``."""
        tick = tick_size("0.01")
        b = self.books.get(token) or L2Book(token, tick)
        b.load(
            [(tick.to_ticks(p), n * S) for p, n in bids or []],
            [(tick.to_ticks(p), n * S) for p, n in asks or []],
        )
        b.updated_ns = self.now if at is None else at
        self.books[token] = b
        return b


def nfl(state: str, *, hs: int = 20, as_: int = 7, gid: str = "401437630") -> Game:
    final = state == "post"
    return Game(
        id=gid,
        league="nfl",
        state=state,
        completed=final,
        home="MIA",
        away="NE",
        home_score=hs,
        away_score=as_,
        winner=("MIA" if hs > as_ else "NE") if final else None,
        start="2022-09-11T17:00Z",
        status_name="STATUS_FINAL" if final else "",
        home_name="Miami Dolphins",
        away_name="New England Patriots",
    )


def mls(state: str) -> Game:
    final = state == "post"
    return Game(
        id="623599",
        league="usa.1",
        state=state,
        completed=final,
        home="ATL",
        away="PHI",
        home_score=0,
        away_score=0,
        winner=None,
        start="2022-09-17T19:30Z",
        home_name="Atlanta United FC",
        away_name="Philadelphia Union",
    )


MIA_NE = Market(
    condition_id="c-nfl",
    token_ids=("mia", "ne"),
    outcomes=("MIA", "NE"),
    question="Patriots vs. Dolphins",
    min_order_size="5",
)


def went_final(sn: Sniper, ctx: Ctx, live: Game, final: Game) -> list[Intent]:
    assert sn.on_games(ctx, [live]) == []
    return sn.on_games(ctx, [final])


def test_sniper_satisfies_the_strategy_protocol() -> None:
    assert isinstance(Sniper(), Strategy)


def test_buys_the_winner_for_the_depth_under_the_cap() -> None:
    ctx = Ctx([MIA_NE])
    ctx.book("mia", bids=[("0.88", 50)], asks=[("0.90", 100), ("0.95", 200), ("0.98", 500)])
    ctx.book("ne", bids=[("0.10", 100)], asks=[("0.12", 50)])
    sn = Sniper(SniperConfig(max_price_micros=970_000, size_micros=1_000 * S))
    (intent,) = went_final(sn, ctx, nfl("in"), nfl("post"))
    # independent: 100 @ 0.90 + 200 @ 0.95 are under 0.97; 0.98 is not
    cost = Fraction(100 * 90 + 200 * 95, 100)
    assert intent.kind == "single" and intent.group_id == "c-nfl" and intent.strategy == "sniper"
    (leg,) = intent.legs
    assert (leg.token_id, leg.side, leg.order_type) == ("mia", "BUY", "FOK")
    assert leg.size == 300 * S and leg.price == 950_000
    assert intent.edge == int((300 - cost) * S) == 20 * S
    assert intent.created_ns == T0
    assert sn.fired == {("401437630", "c-nfl"): T0}


def test_size_is_capped_and_fees_reduce_the_edge() -> None:
    fee = FeeModel.from_rate("0.03")
    m = msgspec.structs.replace(MIA_NE, fee=fee)
    ctx = Ctx([m])
    ctx.book("mia", asks=[("0.90", 100), ("0.95", 200)])
    sn = Sniper(SniperConfig(size_micros=150 * S))
    (intent,) = went_final(sn, ctx, nfl("in"), nfl("post"))
    (leg,) = intent.legs
    assert leg.size == 150 * S and leg.price == 950_000
    cost = Fraction(100 * 90 + 50 * 95, 100)  # 137.50
    fee_exact = Fraction(3, 100) * (
        100 * Fraction(90, 100) * Fraction(10, 100) + 50 * Fraction(95, 100) * Fraction(5, 100)
    )
    fee_micros = -(-fee_exact * S // 1)
    fee_micros = -(-fee_micros // 10) * 10  # the venue's 0.00001 unit, rounded up
    assert intent.edge == 150 * S - int(cost * S) - fee_micros
    assert fee_micros == 341_250


def test_no_intent_when_every_ask_is_above_the_cap_or_below_min_size_or_edge() -> None:
    ctx = Ctx([MIA_NE])
    ctx.book("mia", asks=[("0.98", 1_000)])
    sn = Sniper(SniperConfig(max_price_micros=970_000))
    assert went_final(sn, ctx, nfl("in"), nfl("post")) == []
    # 4 shares under the cap: below the market's 5-share minimum
    ctx.book("mia", asks=[("0.96", 4), ("0.98", 1_000)])
    assert sn.on_book(ctx, "mia") == []
    # 10 shares at 0.97: edge 0.30 $ < min_edge 0.50 $
    sn2 = Sniper(SniperConfig(min_edge_micros=500_000), name="strict")
    ctx.book("mia", asks=[("0.97", 10)])
    assert went_final(sn2, ctx, nfl("in"), nfl("post")) == []
    ctx.book("mia", asks=[("0.97", 10), ("0.96", 10)])
    (late,) = sn2.on_book(ctx, "mia")
    assert late.legs[0].size == 20 * S and late.edge == 700_000 and late.strategy == "strict"


def test_never_fires_twice_for_one_game_and_market() -> None:
    ctx = Ctx([MIA_NE])
    ctx.book("mia", asks=[("0.90", 100)])
    sn = Sniper()
    assert len(went_final(sn, ctx, nfl("in"), nfl("post"))) == 1
    ctx.book("mia", asks=[("0.80", 100)])
    assert sn.on_book(ctx, "mia") == []
    assert sn.on_timer(ctx) == []
    assert sn.on_games(ctx, [nfl("post")]) == []
    assert sn.on_games(ctx, [nfl("in")]) == [] and sn.on_games(ctx, [nfl("post")]) == []


def test_a_game_final_when_first_seen_is_ignored_unless_configured() -> None:
    ctx = Ctx([MIA_NE])
    ctx.book("mia", asks=[("0.90", 100)])
    assert Sniper().on_games(ctx, [nfl("post")]) == []
    eager = Sniper(SniperConfig(act_on_first_seen_final=True))
    assert len(eager.on_games(ctx, [nfl("post")])) == 1


def test_disabled_sniper_measures_lag_without_intents() -> None:
    ctx = Ctx([MIA_NE])
    ctx.book("mia", asks=[("0.90", 100)])
    sn = Sniper(SniperConfig(enabled=False))
    assert went_final(sn, ctx, nfl("in"), nfl("post")) == []
    ctx.now = T0 + 750_000_000
    ctx.book("mia", bids=[("0.97", 100)], asks=[("0.99", 10)])
    assert sn.on_book(ctx, "mia") == []
    (lag,) = sn.lags
    assert lag.lag_ms == 750.0 and not lag.fired


def test_lag_from_final_seen_to_winner_bid_at_the_cap() -> None:
    ctx = Ctx([MIA_NE])
    ctx.book("mia", bids=[("0.85", 10)], asks=[("0.90", 100)])
    ctx.book("ne", bids=[("0.10", 100)], asks=[("0.15", 10)])
    sn = Sniper()
    ctx.now = T0 + 5
    assert sn.on_games(ctx, [nfl("in")]) == []
    ctx.now = T0 + 1_000_000_000
    assert len(sn.on_games(ctx, [nfl("post")])) == 1
    # a bid of 0.96 is not yet repriced
    ctx.now = T0 + 1_200_000_000
    ctx.book("mia", bids=[("0.96", 10)], asks=[("0.99", 10)])
    assert sn.on_book(ctx, "mia") == [] and sn.lags == []
    ctx.now = T0 + 3_345_000_000
    ctx.book("mia", bids=[("0.97", 10)], asks=[("0.99", 10)])
    sn.on_book(ctx, "mia")
    assert sn.lags == [
        LagRecord(
            game_id="401437630",
            market="c-nfl",
            final_seen_ns=T0 + 1_000_000_000,
            repriced_ns=T0 + 3_345_000_000,
            lag_ms=2345.0,
            token_id="mia",
            league="nfl",
            result="home",
            fired=True,
        )
    ]
    ctx.now += 10**9
    ctx.book("mia", bids=[("0.99", 10)])
    sn.on_book(ctx, "mia")
    assert len(sn.lags) == 1


def test_lag_via_the_losers_ask_and_via_the_timer_uses_book_time() -> None:
    ctx = Ctx([MIA_NE])
    ctx.book("mia", asks=[("0.99", 100)])
    ctx.book("ne", bids=[("0.01", 100)], asks=[("0.05", 100)])
    sn = Sniper()
    went_final(sn, ctx, nfl("in"), nfl("post"))
    ctx.book("ne", bids=[("0.01", 100)], asks=[("0.03", 100)], at=T0 + 400_000_000)
    ctx.now = T0 + 500_000_000  # the timer runs a little after the book changed
    assert sn.on_timer(ctx) == []
    (lag,) = sn.lags
    assert lag.repriced_ns == T0 + 400_000_000 and lag.lag_ms == 400.0 and not lag.fired


def test_market_already_repriced_gives_a_negative_lag() -> None:
    ctx = Ctx([MIA_NE])
    ctx.book("mia", bids=[("0.98", 100)], asks=[("0.99", 100)], at=T0 - 2_000_000_000)
    sn = Sniper()
    assert went_final(sn, ctx, nfl("in"), nfl("post")) == []
    (lag,) = sn.lags
    assert lag.lag_ms == -2000.0


def test_away_win_on_a_yes_no_market_buys_no() -> None:
    m = Market(
        condition_id="c-yn",
        token_ids=("yes", "no"),
        question="Will Miami win?",
        slug="nfl-ne-mia-2022-09-11-mia",
    )
    ctx = Ctx([m])
    ctx.book("no", asks=[("0.40", 10)])
    sn = Sniper()
    (intent,) = went_final(sn, ctx, nfl("in", hs=3, as_=10), nfl("post", hs=3, as_=10))
    assert intent.legs[0].token_id == "no" and intent.legs[0].price == 400_000
    assert intent.edge == 6 * S


def test_draw_buys_the_draw_token_or_skips() -> None:
    three = Market(
        condition_id="c-3",
        token_ids=("atl", "draw", "phi"),
        outcomes=("Atlanta United FC", "Draw", "Philadelphia Union"),
    )
    two = Market(
        condition_id="c-2",
        token_ids=("atl2", "phi2"),
        outcomes=("ATL", "PHI"),
        question="Philadelphia Union vs. Atlanta United FC",
    )
    ctx = Ctx([three, two])
    for t in ("atl", "phi", "atl2", "phi2"):
        ctx.book(t, asks=[("0.30", 100)])
    ctx.book("draw", asks=[("0.50", 100)])
    sn = Sniper()
    (intent,) = went_final(sn, ctx, mls("in"), mls("post"))
    assert intent.legs[0].token_id == "draw" and intent.edge == 50 * S
    assert [(s.market, s.reason) for s in sn.skips] == [("c-2", "no token pays on draw")]
    # the losers of a three-way market: either one's ask at ≤ 0.03 marks the repricing
    ctx.now += 10**9
    ctx.book("phi", asks=[("0.02", 100)])
    sn.on_book(ctx, "phi")
    assert [(r.market, r.result, r.lag_ms) for r in sn.lags] == [("c-3", "draw", 1000.0)]

    skipper = Sniper(SniperConfig(draws="skip"))
    ctx2 = Ctx([three])
    ctx2.book("draw", asks=[("0.50", 100)])
    assert went_final(skipper, ctx2, mls("in"), mls("post")) == []
    ctx2.now += 10**8
    ctx2.book("draw", bids=[("0.97", 100)])
    skipper.on_book(ctx2, "draw")
    assert [r.lag_ms for r in skipper.lags] == [100.0]


def test_contradictory_result_is_skipped() -> None:
    ctx = Ctx([MIA_NE])
    ctx.book("mia", asks=[("0.90", 100)])
    ctx.book("ne", asks=[("0.10", 100)])
    sn = Sniper()
    bad = msgspec.structs.replace(nfl("post"), winner="NE")
    assert went_final(sn, ctx, nfl("in"), bad) == []
    assert sn.skips[0].reason == "winner disagrees with the score"


def test_market_listed_after_the_final_is_picked_up_on_the_next_snapshot() -> None:
    ctx = Ctx([])
    sn = Sniper()
    assert went_final(sn, ctx, nfl("in"), nfl("post")) == []
    ctx.catalog.add(MIA_NE)
    ctx.book("mia", asks=[("0.90", 100)])
    (intent,) = sn.on_games(ctx, [nfl("post")])
    assert intent.group_id == "c-nfl" and intent.created_ns == T0


def test_watches_expire_after_the_timeout() -> None:
    ctx = Ctx([MIA_NE])
    ctx.book("mia", asks=[("0.99", 100)])
    sn = Sniper(SniperConfig(watch_timeout_ms=1_000))
    went_final(sn, ctx, nfl("in"), nfl("post"))
    ctx.now += 1_000_000_001
    sn.on_timer(ctx)
    assert sn.expired == [("401437630", "c-nfl")]
    ctx.book("mia", asks=[("0.50", 100)])
    assert sn.on_book(ctx, "mia") == [] and sn.lags == []


def test_config_is_strict_and_names_the_bad_field() -> None:
    cfg = msgspec.json.decode(b'{"max_price_micros": 950000, "draws": "skip"}', type=SniperConfig)
    assert cfg.max_price_micros == 950_000 and cfg.order_type == "FOK"
    with pytest.raises(msgspec.ValidationError, match="max_price_micros"):
        msgspec.json.decode(b'{"max_price_micros": 1000000}', type=SniperConfig)
    with pytest.raises(msgspec.ValidationError, match="max_price"):
        msgspec.json.decode(b'{"max_price": 0.97}', type=SniperConfig)
    with pytest.raises(msgspec.ValidationError, match="order_type"):
        msgspec.json.decode(b'{"order_type": "GTC"}', type=SniperConfig)


def test_replay_of_the_demo_recording_measures_the_written_lags(tmp_path: Path) -> None:
    path = tmp_path / "demo.jsonl.zst"
    assert write_sniper_demo(path, games=4, lags_ms=(300, 1200), poll_ms=100) > 0
    sn, intents = replay_sniper(path)
    assert len(intents) == 4 and len({i.group_id for i in intents}) == 4
    assert all(i.legs[0].size == 800 * S and i.legs[0].price == 930_000 for i in intents)
    lags = {r.game_id: r.lag_ms for r in sn.lags}
    assert lags == {
        "401900000": 300.0,
        "401900001": 1200.0,
        "401900002": 300.0,
        "401900003": 1200.0,
    }
    assert {r.game_id: r.result for r in sn.lags}["401900002"] == "draw"
    frame = lag_frame(sn.lags)
    assert frame.height == 4 and frame["lag_ms"].to_list() == [1200.0, 1200.0, 300.0, 300.0]
    assert lag_frame([]).height == 0
    fig = plot_lags(sn.lags)
    assert sum(len(tr.y) for tr in fig.data) == 4


def test_sniper_against_the_simulator_generator_in_process() -> None:
    """The simulator's own generator and exchange, stepped synchronously on a simulated clock:
    its sports markets map, the Sniper buys the token that later resolves to $1, and the lag
    it measures is the generator's ``sports_lag_s`` (within one scoreboard poll)."""
    gen_mod = pytest.importorskip("polylab.sim.generator")
    state_mod = pytest.importorskip("polylab.sim.state")
    from polylab.book.registry import BookRegistry
    from polylab.feed.decode import market_decoder
    from polylab.feed.sports import parse_scoreboard
    from polylab.sim.config import SimConfig

    lag_s, steps_per_s, poll_every = 1.0, 50, 10  # scoreboard polled every 200 ms
    state = state_mod.SimState(SimConfig(seed=11, binary_markets=0, negrisk_events=0))
    gen = gen_mod.MarketGenerator(
        state,
        gen_mod.GeneratorConfig(
            seed=11,
            binary_markets=0,
            negrisk_events=0,
            sports_games=6,
            steps_per_s=steps_per_s,
            sports_lag_s=lag_s,
            resolve_after_s=1.0,
            game_delay_s=(0.2, 0.6),
            game_length_s=(1.0, 3.0),
            levels=8,
        ),
    )
    reg = BookRegistry()
    dec = market_decoder()
    ctx = Ctx([])
    ctx.books = reg.books
    ctx.catalog = reg.catalog
    sn = Sniper()
    intents: list[Intent] = []
    resolved: dict[str, str] = {}

    def on_events(events: list[dict[str, object]]) -> None:
        touched: dict[str, None] = {}
        for ev in dec.decode(msgspec.json.encode(events)):
            reg.apply(ev, ctx.now)
            aid = getattr(ev, "asset_id", None)
            if isinstance(aid, str):
                touched[aid] = None
            for e in getattr(ev, "price_changes", None) or ():
                touched[e.asset_id] = None
        for e in events:
            if e.get("event_type") == "market_resolved":
                resolved[str(e["market"])] = str(e["winning_asset_id"])
        for tok in touched:
            intents.extend(sn.on_book(ctx, tok))

    state.exchange.add_market_listener(on_events)
    gen.setup()
    for step in range(1, 12 * steps_per_s):
        ctx.now = T0 + step * (10**9 // steps_per_s)
        gen.step()
        if step % poll_every == 0:
            for m in state.exchange.markets.markets.values():
                reg.catalog.add(m)
            for sport, league in state.scoreboard.leagues():
                body = msgspec.json.encode(state.scoreboard.scoreboard(sport, league))
                intents.extend(sn.on_games(ctx, parse_scoreboard(body, teams=sn.teams)))
            intents.extend(sn.on_timer(ctx))

    sports = {cid for cid, m in state.exchange.markets.markets.items() if m.game_id}
    lagged = {r.market for r in sn.lags}
    assert len(lagged) >= 6 and lagged <= sports
    assert not sn.ambiguous and not [s for s in sn.skips if "disagrees" in s.reason]
    for r in sn.lags:
        assert lag_s * 1000 - 200 <= r.lag_ms <= lag_s * 1000 + 100, r
    assert intents, "the stale books between final and reprice should have offered the winner"
    for it in intents:
        (leg,) = it.legs
        assert leg.price <= 970_000 and it.edge > 0
        if it.group_id in resolved:
            assert resolved[it.group_id] == leg.token_id, it
    assert sum(it.group_id in resolved for it in intents) >= 6
    assert len({it.group_id for it in intents}) == len(intents)

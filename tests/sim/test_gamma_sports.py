"""Gamma and ESPN endpoints of the simulator: shapes compared with the real captures."""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from polylab.market import Market
from polylab.sim.config import SimConfig
from polylab.sim.gamma import market_from_gamma
from polylab.sim.server import running_sim
from polylab.sim.sports import LEAGUES, Scoreboard, win_prices

NT = "polymarket/nautilus_trader"
GAMMA_MARKETS = (
    f"{NT}/gamma_market_btc_updown_5m_2026-03.json",
    f"{NT}/gamma_market_sports_moneyline_closed_2026-04.json",
    "polymarket/polymarket-bot-v2/gamma_market_v1_btc15m_2026-10-05.json",
)
ESPN = (
    "espn/ha-teamtracker/scoreboard_nfl.json",
    "espn/ha-teamtracker/scoreboard_nhl.json",
    "espn/ha-teamtracker/scoreboard_mls.json",
)


def _load(shared: Path, name: str) -> Any:
    return json.loads((shared / name).read_text(), parse_float=Decimal)


def _fetch(
    cfg: SimConfig, paths: list[str], act: Callable[[Any], None] | None = None
) -> list[httpx.Response]:
    """GET ``paths`` from a fresh simulator (after ``act(state)``)."""
    out: list[httpx.Response] = []

    async def main() -> None:
        async with running_sim(cfg) as sim:
            if act is not None:
                act(sim.state)
            async with httpx.AsyncClient(base_url=sim.url, timeout=10) as http:
                for p in paths:
                    out.append(await http.get(p))

    asyncio.run(asyncio.wait_for(main(), 25))
    return out


def _json(r: httpx.Response) -> Any:
    assert r.status_code == 200, r.text
    return json.loads(r.text, parse_float=Decimal)


CFG = SimConfig(
    seed=13,
    binary_markets=4,
    negrisk_events=2,
    negrisk_outcomes=(3, 5),
    sports_games=2,
    v2_share=0.5,
)


# -- Gamma ---------------------------------------------------------------------------------------
def test_gamma_markets_match_the_real_shape(shared_fixtures: Path) -> None:
    real = [_load(shared_fixtures, n) for n in GAMMA_MARKETS]
    allowed = set().union(*(set(r) for r in real)) | {"positionIds", "negRiskMarketID"}
    [r] = _fetch(CFG, ["/gamma/markets?limit=1000"])
    markets = _json(r)
    assert len(markets) >= 4 + 6 + 2
    for d in markets:
        assert set(d) <= allowed, set(d) - allowed
        for k in (
            "id",
            "question",
            "conditionId",
            "slug",
            "outcomes",
            "outcomePrices",
            "negRisk",
            "active",
            "closed",
            "orderPriceMinTickSize",
            "orderMinSize",
            "feesEnabled",
            "version",
            "bestBid",
            "bestAsk",
        ):
            assert k in d
        outcomes, prices = json.loads(d["outcomes"]), json.loads(d["outcomePrices"])
        assert len(outcomes) == len(prices) == 2 and all(isinstance(p, str) for p in prices)
        assert isinstance(d["orderPriceMinTickSize"], Decimal)
        assert isinstance(d["orderMinSize"], int | Decimal)
        if d["version"] == "v1":
            assert isinstance(d["clobTokenIds"], str) and len(json.loads(d["clobTokenIds"])) == 2
            assert "positionIds" not in d
        else:
            assert d["clobTokenIds"] is None
            assert all(len(t) == 75 for t in d["positionIds"])
        if d["feesEnabled"]:
            sched = d["feeSchedule"]
            assert set(sched) == set(real[1]["feeSchedule"]) == set(real[2]["feeSchedule"])
            assert isinstance(sched["rate"], Decimal) and sched["exponent"] == 1
    assert {d["version"] for d in markets} == {"v1", "v2"}
    sports = [d for d in markets if "gameId" in d]
    assert sports and all(d["sportsMarketType"] == "moneyline" for d in sports)
    assert all(d["gameStartTime"].endswith("+00") for d in sports)


def test_gamma_events_embed_markets_and_flag_negrisk(shared_fixtures: Path) -> None:
    real_ev = _load(shared_fixtures, f"{NT}/gamma_events_dem_nominee_2028.json")[0]
    sports_ev = _load(shared_fixtures, GAMMA_MARKETS[1])["events"][0]
    allowed = set(real_ev) | set(sports_ev)
    [r] = _fetch(CFG, ["/gamma/events?limit=100"])
    events = _json(r)
    neg = [e for e in events if e["negRisk"]]
    assert len(neg) >= 2
    for e in events:
        assert set(e) <= allowed, set(e) - allowed
        assert e["markets"] and all(m["negRisk"] == e["negRisk"] for m in e["markets"])
        assert "events" not in e["markets"][0]
    assert any(3 <= len(e["markets"]) <= 5 for e in neg)
    # the neg-risk event id is the catalog's event_id (as new_market's event_message.id)
    for e in neg:
        assert all(
            market_from_gamma(m | {"events": [{"id": e["id"]}]}).event_id == e["id"]
            for m in e["markets"]
        )


def test_gamma_paging_and_filters() -> None:
    rs = _fetch(
        CFG,
        [
            "/gamma/markets?limit=1000",
            "/gamma/markets?limit=3&offset=2",
            "/gamma/markets?limit=x",
            "/gamma/events?limit=2&offset=1",
            "/gamma/events?limit=100",
        ],
    )
    everything = _json(rs[0])
    assert [d["id"] for d in _json(rs[1])] == [d["id"] for d in everything[2:5]]
    assert rs[2].status_code == 400 and "error" in rs[2].json()
    assert [e["id"] for e in _json(rs[3])] == [e["id"] for e in _json(rs[4])[1:3]]
    a, b = everything[0], everything[3]
    found = _fetch(
        CFG,
        [
            f"/gamma/markets?slug={a['slug']}",
            f"/gamma/markets?condition_ids={a['conditionId']},{b['conditionId']}",
            f"/gamma/markets/{b['id']}",
            "/gamma/markets/1",
            f"/gamma/events?slug={_json(rs[4])[0]['slug']}",
        ],
    )
    assert [d["conditionId"] for d in _json(found[0])] == [a["conditionId"]]
    assert {d["conditionId"] for d in _json(found[1])} == {a["conditionId"], b["conditionId"]}
    assert _json(found[2])["conditionId"] == b["conditionId"]
    assert found[3].status_code == 404
    assert len(_json(found[4])) == 1


def test_market_from_gamma_round_trips_the_catalog() -> None:
    catalog: list[Market] = []

    def grab(state: Any) -> None:
        catalog.extend(state.exchange.markets.markets.values())

    [r] = _fetch(CFG, ["/gamma/markets?limit=1000"], grab)
    by_cid = {m.condition_id: m for m in catalog}
    for d in _json(r):
        m, orig = market_from_gamma(d), by_cid[d["conditionId"]]
        for f in (
            "token_ids",
            "outcomes",
            "question",
            "slug",
            "neg_risk",
            "event_id",
            "version",
            "fee",
            "game_id",
            "home",
            "away",
            "min_order_size",
        ):
            assert getattr(m, f) == getattr(orig, f), f
        assert Decimal(m.tick_size) == Decimal(orig.tick_size)
    with pytest.raises(ValueError, match="version"):
        market_from_gamma({k: v for k, v in _json(r)[0].items() if k != "version"})


def test_resolved_market_shows_closed_with_winner_prices() -> None:
    def resolve(state: Any) -> None:
        m = next(iter(state.exchange.markets.markets.values()))
        state.exchange.resolve(m.condition_id, m.token_ids[1])

    cfg = SimConfig(seed=2, generator=False)
    [r, c] = _fetch(cfg, ["/gamma/markets?limit=10", "/gamma/markets?closed=true"], resolve)
    first = _json(r)[0]
    assert first["closed"] is True and json.loads(first["outcomePrices"]) == ["0", "1"]
    assert [d["id"] for d in _json(c)] == [first["id"]]
    assert market_from_gamma(first).active is False


# -- ESPN ----------------------------------------------------------------------------------------
def _finished_board() -> Scoreboard:
    sb = Scoreboard()
    nfl = LEAGUES[("football", "nfl")].teams
    mls = LEAGUES[("soccer", "usa.1")].teams
    g = sb.add_game("football", "nfl", nfl[1], nfl[0], 1_793_552_400_000)  # NE @ MIA
    sb.start(g.id)
    sb.update(g.id, home_score=20, away_score=7, period=4, clock_s=48)
    sb.finish(g.id)
    d = sb.add_game("soccer", "usa.1", mls[0], mls[1], 1_793_552_400_000)
    sb.start(d.id)
    sb.finish(d.id)  # 0-0
    sb.add_game("football", "nfl", nfl[2], nfl[3], 1_793_638_800_000)  # the next day
    live = sb.add_game("football", "nfl", nfl[4], nfl[5], 1_793_552_400_000)
    sb.start(live.id)
    sb.update(live.id, home_score=3, period=2, clock_s=125)
    return sb


def test_scoreboard_json_matches_espn_key_sets(shared_fixtures: Path) -> None:
    real = [_load(shared_fixtures, n) for n in ESPN]
    sb = _finished_board()
    for body in (sb.scoreboard("football", "nfl"), sb.scoreboard("soccer", "usa.1")):
        assert set(body) <= set().union(*(set(r) for r in real))
        assert {"leagues", "season", "events"} <= set(body)
        for ev in body["events"]:
            rev = real[0]["events"][0]
            assert set(ev) <= set(rev) and {"id", "date", "name", "shortName"} <= set(ev)
            comp = ev["competitions"][0]
            assert set(comp) <= set(rev["competitions"][0])
            rtype = real[1]["events"][0]["competitions"][0]["status"]["type"]
            assert set(comp["status"]["type"]) == set(rtype) - {"altDetail"}
            real_comp = next(
                c
                for r in real
                for e in r["events"]
                for c in e["competitions"][0]["competitors"]
                if "winner" in c
            )
            for c in comp["competitors"]:
                assert set(c) <= set(real_comp)
                assert set(c["team"]) <= set(real_comp["team"])
                assert {
                    "abbreviation",
                    "displayName",
                    "shortDisplayName",
                    "name",
                    "location",
                    "id",
                } <= set(c["team"])
                assert isinstance(c["score"], str)


def test_scoreboard_states_final_winner_and_soccer_draw() -> None:
    sb = _finished_board()
    nfl = {e["shortName"]: e for e in sb.scoreboard("football", "nfl")["events"]}
    final = nfl["NE @ MIA"]["competitions"][0]
    st = final["status"]["type"]
    assert (st["name"], st["state"], st["completed"], st["detail"]) == (
        "STATUS_FINAL",
        "post",
        True,
        "Final",
    )
    won = {c["team"]["abbreviation"]: (c["score"], c["winner"]) for c in final["competitors"]}
    assert won == {"MIA": ("20", True), "NE": ("7", False)}
    pre = nfl["NYJ @ BUF"]["competitions"][0]
    assert pre["status"]["type"]["state"] == "pre"
    assert all("winner" not in c for c in pre["competitors"])
    live = nfl["DEN @ KC"]["competitions"][0]["status"]
    assert live["type"]["name"] == "STATUS_IN_PROGRESS"
    assert live["type"]["shortDetail"] == "2:05 - 2nd" and live["displayClock"] == "2:05"
    (draw,) = sb.scoreboard("soccer", "usa.1")["events"]
    st = draw["competitions"][0]["status"]["type"]
    assert (st["name"], st["state"], st["completed"]) == ("STATUS_FULL_TIME", "post", True)
    assert [c["winner"] for c in draw["competitions"][0]["competitors"]] == [False, False]
    day = sb.scoreboard("football", "nfl", dates="20261101")["events"]
    assert {e["shortName"] for e in day} == {"NE @ MIA", "DEN @ KC"}
    with pytest.raises(KeyError, match="unknown league"):
        sb.add_game("curling", "wcf", *LEAGUES[("football", "nfl")].teams[:2], 0)


def test_only_soccer_ends_level_and_postponed_is_not_final() -> None:
    sb = Scoreboard()
    nhl = LEAGUES[("hockey", "nhl")].teams
    g = sb.add_game("hockey", "nhl", nhl[0], nhl[1], 0)
    sb.start(g.id)
    assert sb.finish(g.id, "away") == "away" and (g.home_score, g.away_score) == (0, 1)
    p = sb.add_game("hockey", "nhl", nhl[2], nhl[3], 0)
    sb.postpone(p.id)
    st = sb.event(p)["competitions"][0]["status"]["type"]
    assert (st["state"], st["completed"], st["name"]) == ("post", False, "STATUS_POSTPONED")
    rng = random.Random(1)
    q = sb.random_game(rng, 0)
    sb.start(q.id)
    for _ in range(5):
        sb.random_score(q.id, rng)
    assert q.home_score + q.away_score > 0
    for lead in range(-3, 4):
        for soccer in (True, False):
            prices = win_prices(lead, soccer)
            assert sum(prices.values()) == 1_000_000
            assert (prices["draw"] > 0) == soccer


def test_espn_endpoint_serves_the_simulated_games() -> None:
    def add(state: Any) -> None:
        nfl = LEAGUES[("football", "nfl")].teams
        state.scoreboard.add_game("football", "nfl", nfl[1], nfl[0], 1_793_552_400_000)

    rs = _fetch(
        SimConfig(seed=1, generator=False),
        [
            "/espn/football/nfl/scoreboard",
            "/espn/football/nfl/scoreboard?dates=20200101",
            "/espn/curling/wcf/scoreboard",
            "/espn/hockey/nhl/scoreboard",
        ],
        add,
    )
    body = _json(rs[0])
    assert [e["shortName"] for e in body["events"]] == ["NE @ MIA"]
    assert _json(rs[1])["events"] == []
    assert rs[2].status_code == 404 and "error" in rs[2].json()
    assert _json(rs[3])["events"] == []

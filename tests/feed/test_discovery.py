"""Gamma discovery: real Gamma captures and the simulator's /gamma endpoints."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import msgspec
import pytest

from polylab.errors import DiscoveryError, MarketVersionError
from polylab.feed.discovery import (
    GammaClient,
    decode_events,
    decode_markets,
    market_from_gamma,
    markets_from_event,
    markets_from_gamma,
)
from polylab.fees import FeeModel
from polylab.market import Market
from polylab.sim.config import SimConfig
from polylab.sim.server import running_sim

NT = "polymarket/nautilus_trader"
BTC15 = "polymarket/polymarket-bot-v2/gamma_market_v1_btc15m_2026-10-05.json"


def _raw(shared: Path, name: str) -> bytes:
    return (shared / name).read_bytes()


def test_v1_market_with_fee_schedule_from_a_2026_capture(shared_fixtures: Path) -> None:
    [gm] = decode_markets(_raw(shared_fixtures, BTC15))
    m = market_from_gamma(gm)
    assert m.version == "v1"
    assert m.condition_id == "0xcd5f9f505e0c0182746aa65963f72f01e7463259e5ea9f56672c0fe3a37f348a"
    assert m.token_ids == (
        "25070934348813416902477876984955073880416401960631253331845590271167412497744",
        "111614563957165270026378011809694313565736745512637881727398424401624030147043",
    )
    assert m.outcomes == ("Up", "Down")
    assert (m.tick_size, m.min_order_size, m.neg_risk, m.active) == ("0.01", "5", False, True)
    # 0.07 arrives as a JSON number and must land exactly, not through a float
    assert m.fee == FeeModel(rate_micros=70_000, exponent=1)
    assert m.slug == "btc-updown-15m-1791241200"
    assert m.game_id == "" and m.game_start == ""


def test_captures_before_the_version_field_are_refused_unless_a_version_is_assumed(
    shared_fixtures: Path,
) -> None:
    [gm] = decode_markets(_raw(shared_fixtures, f"{NT}/gamma_market_btc_updown_5m_2026-03.json"))
    with pytest.raises(MarketVersionError, match="1557558 has no version"):
        market_from_gamma(gm)
    m = market_from_gamma(gm, assume_version="v1")
    assert m.version == "v1" and len(m.token_ids) == 2 and m.outcomes == ("Up", "Down")
    # feesEnabled but no feeSchedule published: no fee model rather than a guessed one
    assert m.fee is None
    assert m.event_id == "260654"


def test_unknown_version_is_refused_even_when_one_is_assumed(shared_fixtures: Path) -> None:
    raw = json.loads(_raw(shared_fixtures, BTC15))
    raw["version"] = "v3"
    [gm] = decode_markets(json.dumps(raw))
    with pytest.raises(MarketVersionError, match="unknown version 'v3'"):
        market_from_gamma(gm, assume_version="v1")


def test_v2_market_reads_position_ids_and_ignores_null_clob_token_ids(
    shared_fixtures: Path,
) -> None:
    raw = json.loads(_raw(shared_fixtures, BTC15))
    pos = [
        "6635749270124768329756941789619573289100554987427402067619466963999000625152",
        "6635749270124768329756941789619573289100554987427402067619466963999000625153",
    ]
    raw.update(version="v2", clobTokenIds=None, positionIds=pos)
    m = market_from_gamma(decode_markets(json.dumps(raw))[0])
    assert m.version == "v2" and m.token_ids == tuple(pos)
    raw["positionIds"] = []
    with pytest.raises(DiscoveryError, match="no token ids yet"):
        market_from_gamma(decode_markets(json.dumps(raw))[0])


def test_closed_sports_market_keeps_game_fields_and_is_inactive(shared_fixtures: Path) -> None:
    name = f"{NT}/gamma_market_sports_moneyline_closed_2026-04.json"
    [gm] = decode_markets(_raw(shared_fixtures, name))
    m = market_from_gamma(gm, assume_version="v1")
    assert m.active is False  # closed
    assert m.tick_size == "0.001"
    assert m.fee == FeeModel(rate_micros=30_000, exponent=1)
    assert m.game_id == "1427074"
    assert m.game_start == "2026-04-05T15:10:00Z"
    assert (m.away, m.home) == ("FAZE", "ILL")
    assert m.outcomes == ("FaZe", "illwill")


def test_neg_risk_event_groups_its_markets(shared_fixtures: Path) -> None:
    events = decode_events(_raw(shared_fixtures, f"{NT}/gamma_events_dem_nominee_2028.json"))
    found = markets_from_event(events, assume_version="v1")
    assert found.rejected == []
    assert len(found.markets) == 2
    assert {m.event_id for m in found.markets} == {"30829"}
    assert all(m.neg_risk and m.tick_size == "0.001" and m.fee is None for m in found.markets)
    groups = found.catalog().groups()
    neg = [g for g in groups if g.kind == "negrisk"]
    assert len(neg) == 1 and neg[0].id == "30829"
    assert neg[0].token_ids == tuple(m.token_ids[0] for m in found.markets)
    assert sum(g.kind == "binary" for g in groups) == 2


def test_bad_markets_are_skipped_with_a_reason_and_raise_when_strict(
    shared_fixtures: Path,
) -> None:
    good = json.loads(_raw(shared_fixtures, BTC15))
    no_version = dict(good, id="1")
    no_version.pop("version")
    bad_ids = dict(good, id="2", clobTokenIds="not json")
    bad_outcomes = dict(good, id="3", outcomes='["Yes"]')
    bad_tick = dict(good, id="4", orderPriceMinTickSize=0.03)
    body = json.dumps([good, no_version, bad_ids, bad_outcomes, bad_tick])
    found = markets_from_gamma(decode_markets(body))
    assert [m.condition_id for m in found.markets] == [good["conditionId"]]
    reasons = dict(found.rejected)
    assert set(reasons) == {"1", "2", "3", "4"}
    assert "no version" in reasons["1"]
    assert "clobTokenIds is not a JSON list" in reasons["2"]
    assert "1 outcomes for 2 token ids" in reasons["3"]
    assert "tick size must divide 1" in reasons["4"]
    with pytest.raises(MarketVersionError):
        markets_from_gamma(decode_markets(body), strict=True)


# -- against the simulator's /gamma ----------------------------------------------------------
def _same_market(a: Market, b: Market) -> bool:
    """Equal in everything but ``event_id`` (Gamma's numeric event id vs the sim's own key) and
    the event facts known from ``/events`` only."""
    blank = {"event_id": "", "event_markets": 0, "neg_risk_augmented": False}
    return msgspec.structs.replace(a, **blank) == msgspec.structs.replace(b, **blank)


def _groups(markets: list[Market]) -> set[frozenset[str]]:
    by: dict[str, set[str]] = {}
    for m in markets:
        if m.neg_risk:
            by.setdefault(m.event_id, set()).add(m.condition_id)
    return {frozenset(v) for v in by.values()}


@pytest.mark.parametrize("generator", [False, True])
def test_discovery_from_the_simulator_reproduces_its_catalog(generator: bool) -> None:
    async def go() -> None:
        cfg = SimConfig(generator=generator, seed=11, v2_share=0.5, steps_per_s=5.0)
        async with running_sim(cfg) as sim:
            async with GammaClient(sim.url + "/gamma", page_size=3) as gamma:
                found = await gamma.discover()
                assert await gamma.fetch_markets(slug="no-such-market") == []
            truth = list(sim.state.exchange.markets.markets.values())
        assert found.rejected == []
        mine = {m.condition_id: m for m in found.markets}
        assert set(mine) == {m.condition_id for m in truth}
        bad = [m.condition_id for m in truth if not _same_market(mine[m.condition_id], m)]
        assert bad == []
        assert _groups(found.markets) == _groups(truth)
        assert {m.version for m in truth} == {"v1", "v2"}
        if generator:
            assert any(m.game_id and m.home and m.away for m in found.markets)
        cat = found.catalog()
        assert sum(g.kind == "negrisk" for g in cat.groups()) == len(_groups(truth))

    asyncio.run(asyncio.wait_for(go(), 25))


def test_gamma_http_errors_are_discovery_errors() -> None:
    async def go() -> None:
        async with running_sim(SimConfig(generator=False)) as sim:
            async with GammaClient(sim.url + "/no-gamma-here") as gamma:
                with pytest.raises(DiscoveryError, match="HTTP 404"):
                    await gamma.fetch_events()
            port = sim.port
        async with GammaClient(f"http://127.0.0.1:{port}/gamma") as gamma:  # server gone
            with pytest.raises(DiscoveryError, match="GET /markets offset=0: Connect"):
                await gamma.fetch_markets()

    asyncio.run(asyncio.wait_for(go(), 25))

"""The seeded market generator, stepped synchronously against the real Exchange (no sockets)."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest

from polylab.money import MICROS, parse_micros
from polylab.sim.exchange import Exchange
from polylab.sim.generator import GeneratorConfig, MarketGenerator, generator_of, start, stop
from polylab.sim.sports import Scoreboard


def _world(cfg: GeneratorConfig) -> tuple[MarketGenerator, list[dict[str, Any]]]:
    """A generator on a fresh exchange, and every market event it produced."""
    ex = Exchange(seed=cfg.seed)
    events: list[dict[str, Any]] = []
    ex.add_market_listener(events.extend)
    state = SimpleNamespace(exchange=ex, scoreboard=Scoreboard(), config=None)
    gen = MarketGenerator(state, cfg)
    gen.setup()
    return gen, events


def _books(gen: MarketGenerator) -> list[tuple[str, list[Any], list[Any]]]:
    out = []
    for tok in gen.ex.markets.by_token:
        b = gen.ex.book_json(tok)
        out.append((tok, b["bids"], b["asks"]))
    return out


def _levels(gen: MarketGenerator, tok: str) -> tuple[int, int]:
    b = gen.ex.book_json(tok)
    return len(b["bids"]), len(b["asks"])


FAST = GeneratorConfig(
    seed=11,
    binary_markets=3,
    negrisk_events=1,
    negrisk_outcomes=(4, 4),
    sports_games=2,
    steps_per_s=100,
    game_delay_s=(1.0, 2.0),
    game_length_s=(3.0, 5.0),
    sports_lag_s=1.5,
    resolve_after_s=1.0,
    market_life_s=(6.0, 8.0),
    renorm_every_s=(3.0, 4.0),
)


def test_same_seed_same_books_and_ids_different_seed_differs() -> None:
    a, _ = _world(FAST)
    b, _ = _world(FAST)
    c, _ = _world(GeneratorConfig(**{**_cfg_dict(FAST), "seed": 12}))
    for g in (a, b, c):
        for _ in range(1500):
            g.step()
    assert list(a.ex.markets.markets) == list(b.ex.markets.markets)
    assert _books(a) == _books(b)
    assert a.orders_placed == b.orders_placed
    assert list(a.ex.markets.markets) != list(c.ex.markets.markets)


def _cfg_dict(cfg: GeneratorConfig) -> dict[str, Any]:
    import msgspec

    return msgspec.structs.asdict(cfg)


def test_books_are_deep_and_sizes_are_whole_cents_of_shares() -> None:
    gen, _ = _world(GeneratorConfig(seed=3))
    for _ in range(300):
        gen.step()
    mid_books = 0
    for tok in gen.ex.markets.by_token:
        b = gen.ex.book_json(tok)
        for lv in (*b["bids"], *b["asks"]):
            assert parse_micros(lv["size"]) % 10_000 == 0
        mid = _mid(gen, tok)
        if mid is not None and 250_000 <= mid <= 750_000:  # room for 20+ levels both sides
            mid_books += 1
            assert len(b["bids"]) >= 20 and len(b["asks"]) >= 20, (tok, b)
    assert mid_books >= 4
    assert gen.errors == 0  # the makers' own orders are always valid
    # a CPU budget in orders, not seconds: at most a few exchange calls per step
    assert gen.orders_placed + gen.orders_cancelled < 3_000 + 300 * 4


def test_markets_cover_v1_v2_fees_and_negrisk_events_of_n_outcomes() -> None:
    cfg = GeneratorConfig(
        seed=5,
        binary_markets=12,
        negrisk_events=3,
        negrisk_outcomes=(3, 30),
        v2_share=0.5,
        sports_games=0,
    )
    gen, events = _world(cfg)
    ms = list(gen.ex.markets.markets.values())
    assert {m.version for m in ms} == {"v1", "v2"}
    assert any(m.fee is None for m in ms) and any(m.fee is not None for m in ms)
    for m in ms:
        digits = {len(t) for t in m.token_ids}
        assert digits <= ({75} if m.version == "v2" else {77, 78})
    sizes: dict[str, int] = {}
    for m in ms:
        if m.neg_risk:
            sizes[m.event_id] = sizes.get(m.event_id, 0) + 1
    assert len(sizes) == 3 and all(3 <= n <= 30 for n in sizes.values())
    assert sum(e["event_type"] == "new_market" for e in events) == len(ms)


def _mid(gen: MarketGenerator, tok: str) -> int | None:
    bid, ask = gen.ex.top(tok)
    return None if bid is None or ask is None else (bid + ask) // 2


def test_negrisk_sum_deviation_persists_for_seconds() -> None:
    cfg = GeneratorConfig(
        seed=9,
        binary_markets=0,
        negrisk_events=1,
        negrisk_outcomes=(5, 5),
        sports_games=0,
        steps_per_s=50,
        renorm_every_s=(4.0, 5.0),
        market_life_s=(600.0, 600.0),
    )
    gen, _ = _world(cfg)
    yes = [m.token_ids[0] for m in gen.ex.markets.markets.values()]
    run = best = 0
    for _ in range(50 * 30):
        gen.step()
        mids = [_mid(gen, t) for t in yes]
        dev = abs(sum(m for m in mids if m is not None) - MICROS) if None not in mids else 0
        run = run + 1 if dev >= 10_000 else 0
        best = max(best, run)
    assert best >= 50  # ≥ 1 s of steps with the event's mids a cent or more away from $1


def test_sports_game_final_reprices_only_after_lag_then_resolves() -> None:
    cfg = GeneratorConfig(
        seed=21,
        binary_markets=0,
        negrisk_events=0,
        sports_games=1,
        steps_per_s=100,
        game_delay_s=(0.5, 0.5),
        game_length_s=(2.0, 2.0),
        sports_lag_s=1.0,
        resolve_after_s=0.5,
    )
    gen, events = _world(cfg)
    sb = gen.state.scoreboard
    (game,) = sb.games.values()
    first = list(gen.ex.markets.markets.values())
    final_step = None
    while final_step is None and gen.step_no < 1000:
        gen.step()
        if game.completed:
            final_step = gen.step_no
    assert final_step is not None
    body = sb.scoreboard(game.sport, game.league)
    (ev,) = [e for e in body["events"] if e["id"] == game.id]
    status = ev["competitions"][0]["status"]["type"]
    assert status["state"] == "post" and status["completed"] is True
    resolved_before = sum(e["event_type"] == "market_resolved" for e in events)
    lag_steps = gen.steps(cfg.sports_lag_s)
    tops_at_final = {m.condition_id: gen.ex.top(m.token_ids[0]) for m in first}
    for _ in range(lag_steps - 2):
        gen.step()
    # the result is public but the market still trades where it did
    for m in first:
        bid, ask = gen.ex.top(m.token_ids[0])
        assert bid is None or bid < 990_000
        assert (bid, ask) != (None, None) or tops_at_final[m.condition_id] == (None, None)
    assert sum(e["event_type"] == "market_resolved" for e in events) == resolved_before
    for _ in range(gen.steps(cfg.resolve_after_s) + 10):
        gen.step()
    resolved = [e for e in events if e["event_type"] == "market_resolved"]
    assert {e["market"] for e in resolved} >= {m.condition_id for m in first}
    winners = {e["market"]: e["winning_asset_id"] for e in resolved}
    for m in first:
        won_yes = winners[m.condition_id] == m.token_ids[0]
        side = m.outcomes[0]  # away team name for a moneyline
        team_won = (game.winner == "away") if side == game.away.name else None
        if team_won is not None:
            assert won_yes == team_won
    # near the result the grid went to 0.001 (tick_size_change both tokens)
    ticks = [e for e in events if e["event_type"] == "tick_size_change"]
    assert any(e["new_tick_size"] == "0.001" for e in ticks)


def test_resolved_markets_are_replaced_by_new_listings() -> None:
    cfg = GeneratorConfig(
        seed=4,
        binary_markets=2,
        negrisk_events=0,
        sports_games=0,
        steps_per_s=100,
        market_life_s=(1.0, 2.0),
        resolve_after_s=0.5,
    )
    gen, events = _world(cfg)
    for _ in range(500):
        gen.step()
    kinds = [e["event_type"] for e in events]
    assert kinds.count("market_resolved") >= 2
    assert kinds.count("new_market") == 2 + kinds.count("market_resolved")
    assert len(gen.live) == 2


def test_start_steps_on_the_loop_and_stops_cleanly() -> None:
    async def main() -> int:
        ex = Exchange(seed=1)
        state = SimpleNamespace(
            exchange=ex, scoreboard=Scoreboard(), config=SimpleNamespace(seed=1, sports_lag_s=1.0)
        )
        task = start(state)
        gen = generator_of(task)
        assert gen is not None and gen.cfg.sports_lag_s == 1.0
        while gen.step_no < 20:
            await asyncio.sleep(0.02)
        await stop(task)
        assert task.cancelled()
        return gen.step_no

    assert asyncio.run(main()) >= 20


def test_config_rejects_unknown_fields_naming_them() -> None:
    import msgspec

    with pytest.raises(msgspec.ValidationError, match="levelz"):
        msgspec.convert({"levelz": 3}, GeneratorConfig)

"""A neg-risk set is valued at $1 only when the markets held are the whole event."""

from __future__ import annotations

import json
from pathlib import Path

from engine_recordings import write_negrisk_arb

from polylab.backtest import run_backtest
from polylab.config import load_config
from polylab.domain import ExecutionResult, Intent, Leg, OrderReport
from polylab.feed.discovery import decode_events, markets_from_event
from polylab.market import Market, MarketCatalog, OutcomeGroup
from polylab.money import MICROS
from polylab.risk.payout import pays_one, why_not_whole
from polylab.risk.portfolio import Portfolio


def event_markets(n: int, *, listed: int = 0, other: int = -1, closed: int = -1) -> list[Market]:
    return [
        Market(
            condition_id=f"0x{i:064x}",
            token_ids=(f"{100 + i}", f"{200 + i}"),
            neg_risk=True,
            event_id="ev",
            event_markets=listed,
            neg_risk_other=i == other,
            active=i != closed,
        )
        for i in range(n)
    ]


def negrisk(cat: MarketCatalog) -> OutcomeGroup:
    (g,) = [g for g in cat.groups() if g.kind == "negrisk"]
    return g


def test_the_whole_event_pays_one_and_a_binary_pair_always_does() -> None:
    cat = MarketCatalog(event_markets(3, listed=3))
    assert pays_one(negrisk(cat), cat)
    unknown = MarketCatalog(event_markets(3))  # no count from the source: the catalog's group
    assert pays_one(negrisk(unknown), unknown)
    pair = next(g for g in cat.groups() if g.kind == "binary")
    assert pays_one(pair, cat)


def test_a_partial_set_does_not_pay_one() -> None:
    cat = MarketCatalog(event_markets(3, listed=4))  # the event lists a 4th market
    assert "lists 4 markets, the set has 3" in why_not_whole(negrisk(cat), cat)
    other = MarketCatalog(event_markets(3, listed=3, other=2))
    assert "placeholder / 'Other'" in why_not_whole(negrisk(other), other)
    closed = MarketCatalog(event_markets(3, listed=3, closed=1))
    assert "not tradable" in why_not_whole(negrisk(closed), closed)


def bought(tokens: tuple[str, ...], shares: int, price: int) -> ExecutionResult:
    """A set intent whose every leg bought ``shares`` at ``price`` (no fees)."""
    reports = tuple(
        OrderReport(
            intent_id="a",
            leg=i,
            token_id=t,
            side="BUY",
            limit_price=price,
            requested=shares,
            filled=shares,
            cost=shares * price // MICROS,
            fee=0,
            avg_price=price,
            status="filled",
            sent_ns=1,
            done_ns=1,
        )
        for i, t in enumerate(tokens)
    )
    legs = tuple(Leg(token_id=t, side="BUY", price=price, size=shares) for t in tokens)
    intent = Intent(strategy="s", group_id="ev", kind="set", legs=legs, edge=0, created_ns=0)
    return ExecutionResult(intent_id="a", intent=intent, reports=reports, complete=True)


def test_a_research_merge_books_one_dollar_only_for_the_whole_event() -> None:
    def held(cat: MarketCatalog) -> Portfolio:
        p = Portfolio(100 * MICROS)
        p.apply(bought(negrisk(cat).token_ids, 10 * MICROS, 300_000), cat)
        return p

    whole = MarketCatalog(event_markets(3, listed=3))
    m = held(whole).merge_sets(negrisk(whole), 1, allow_negrisk=True, catalog=whole)
    assert m is not None and m.payout == 10 * MICROS
    partial = MarketCatalog(event_markets(3, listed=4))
    p = held(partial)
    assert p.merge_sets(negrisk(partial), 1, allow_negrisk=True, catalog=partial) is None
    assert p.cash == 100 * MICROS - 9 * MICROS  # still held, not paid


def _gamma_market(i: int, *, tokens: bool = True, other: bool = False) -> dict[str, object]:
    d: dict[str, object] = {
        "id": str(i),
        "question": f"Outcome {i}?",
        "conditionId": f"0x{i:064x}",
        "outcomes": '["Yes", "No"]',
        "negRisk": True,
        "negRiskOther": other,
        "active": True,
        "closed": False,
        "version": "v1",
        "clobTokenIds": json.dumps([f"{100 + i}", f"{200 + i}"]) if tokens else None,
    }
    return d


def test_discovery_counts_the_events_markets_including_skipped_placeholders() -> None:
    body = json.dumps(
        [
            {
                "id": "77",
                "negRisk": True,
                "markets": [_gamma_market(0), _gamma_market(1), _gamma_market(2, tokens=False)],
            }
        ]
    )
    found = markets_from_event(decode_events(body))
    assert [r[0] for r in found.rejected] == ["2"]  # a placeholder without token ids yet
    cat = found.catalog()
    g = negrisk(cat)
    assert len(g.markets) == 2 and not pays_one(g, cat)
    body = json.dumps([{"id": "78", "markets": [_gamma_market(0), _gamma_market(1, other=True)]}])
    cat = markets_from_event(decode_events(body)).catalog()
    assert "'Other'" in why_not_whole(negrisk(cat), cat)
    body = json.dumps(
        [{"id": "79", "negRiskAugmented": True, "markets": [_gamma_market(0), _gamma_market(1)]}]
    )
    cat = markets_from_event(decode_events(body)).catalog()
    assert "augmented" in why_not_whole(negrisk(cat), cat)


def test_pnl_at_payout_values_only_whole_events_at_one_dollar(tmp_path: Path) -> None:
    cfg = load_config(env={"RISK_MAX_POSITION": "1000"}).__replace__(strategies=("sum_to_100",))
    whole, partial = tmp_path / "whole.jsonl", tmp_path / "partial.jsonl"
    write_negrisk_arb(whole, resolve_winner=None, event_markets=3)
    write_negrisk_arb(partial, resolve_winner=None, event_markets=4)  # a 4th market exists
    res_whole, _, _ = run_backtest(whole, cfg)
    res_partial, _, _ = run_backtest(partial, cfg)
    assert res_whole.trades == res_partial.trades == 1
    assert res_whole.pnl == res_partial.pnl
    assert res_whole.pnl_at_payout > res_whole.pnl  # 100 sets locked at $1
    assert res_partial.pnl_at_payout == res_partial.pnl  # marked at the bids, not at $1


def test_a_real_augmented_event_is_not_a_one_dollar_set(shared_fixtures: Path) -> None:
    raw = shared_fixtures / "polymarket/nautilus_trader/gamma_events_dem_nominee_2028.json"
    cat = markets_from_event(decode_events(raw.read_bytes()), assume_version="v1").catalog()
    g = negrisk(cat)
    assert len(g.markets) == 2  # two named outcomes of an event that can still grow
    assert "augmented" in why_not_whole(g, cat)

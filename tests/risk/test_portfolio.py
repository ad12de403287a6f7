"""Portfolio accounting: cash, FIFO lots, realized/unrealized PnL, fees, merges, settlement,
win rate. Results are built by hand here; tests/execution/test_paper.py drives it with the
paper executor."""

from __future__ import annotations

from typing import Literal

import msgspec
import pytest

from polylab.book.l2 import L2Book
from polylab.domain import ExecutionResult, Intent, Leg, OrderReport
from polylab.market import Market, MarketCatalog, OutcomeGroup
from polylab.money import MICROS, tick_size
from polylab.risk.portfolio import DAY_NS, Portfolio, PortfolioError

YES, NO = "yes-token", "no-token"
CID = "0xcond"
CAT = MarketCatalog([Market(condition_id=CID, token_ids=(YES, NO))])
PAIR = OutcomeGroup(kind="binary", id=CID, token_ids=(YES, NO), markets=(CID,))
S = MICROS  # one share / one dollar


def rep(
    token: str,
    side: Literal["BUY", "SELL"],
    filled: int,
    price: int,
    fee: int = 0,
    *,
    leg: int = 0,
    ts: int = 1,
) -> OrderReport:
    cost = price * filled // MICROS
    return OrderReport(
        intent_id="x",
        leg=leg,
        token_id=token,
        side=side,
        limit_price=price,
        requested=filled,
        filled=filled,
        cost=cost,
        fee=fee,
        avg_price=price,
        status="filled",
        sent_ns=ts,
        done_ns=ts,
    )


def result(
    iid: str, *reports: OrderReport, unwound: tuple[OrderReport, ...] = ()
) -> ExecutionResult:
    intent = Intent(
        strategy="s",
        group_id=CID,
        kind="set" if len(reports) > 1 else "single",
        legs=tuple(
            Leg(token_id=r.token_id, side=r.side, price=r.limit_price, size=r.requested)
            for r in reports
        ),
        edge=0,
        created_ns=0,
    )
    return ExecutionResult(
        intent_id=iid, intent=intent, reports=reports, complete=True, unwound=unwound
    )


def invariant(p: Portfolio) -> None:
    basis = sum(pos.basis for pos in p.positions().values())
    assert p.cash + basis == p.starting_cash + p.realized


def book(bid: str, ask: str) -> L2Book:
    g = tick_size("0.01")
    b = L2Book("t", g)
    b.load([(g.to_ticks(bid), 100 * S)], [(g.to_ticks(ask), 100 * S)])
    return b


def test_buy_then_sell_realizes_proceeds_minus_cost_and_both_fees() -> None:
    p = Portfolio(1000 * S)
    fills = p.apply(result("a", rep(YES, "BUY", 10 * S, 400_000, fee=50_000)), CAT)
    assert fills[0].cash_delta == -(4 * S + 50_000) and fills[0].position_after == 10 * S
    assert p.cash == 1000 * S - 4_050_000 and p.basis(YES) == 4_050_000
    fills = p.apply(result("b", rep(YES, "SELL", 4 * S, 600_000, fee=30_000)), CAT)
    # 4 of 10 shares leave: basis 4.05 × 0.4 = 1.62; proceeds 2.40 − 0.03 fee
    assert fills[0].realized == 2_370_000 - 1_620_000
    assert p.realized == 750_000 and p.fees == 80_000 and p.position(YES) == 6 * S
    invariant(p)


def test_fifo_lots_close_oldest_first_and_credit_the_opening_trade() -> None:
    p = Portfolio(100 * S)
    p.apply(result("a", rep(YES, "BUY", 2 * S, 300_000)), CAT)
    p.apply(result("b", rep(YES, "BUY", 2 * S, 500_000)), CAT)
    p.apply(result("c", rep(YES, "SELL", 3 * S, 450_000)), CAT)
    trades = {t.intent_id: t for t in p.trades()}
    assert set(trades) == {"a", "b"}  # "c" only closed others' shares: not a trade
    assert trades["a"].closed and trades["a"].realized == 2 * 150_000
    assert not trades["b"].closed and trades["b"].realized == -50_000
    assert trades["b"].open_shares == S and p.basis(YES) == 500_000
    invariant(p)


def test_merge_pays_one_dollar_per_set_and_realizes_against_basis() -> None:
    p = Portfolio(100 * S)
    p.apply(
        result(
            "a", rep(YES, "BUY", 10 * S, 470_000, 10), rep(NO, "BUY", 7 * S, 500_000, 10, leg=1)
        ),
        CAT,
    )
    cash_before = p.cash
    m = p.merge_sets(PAIR, 5)
    assert m is not None and m.sets == 7 * S and m.payout == 7 * S
    assert p.cash == cash_before + 7 * S
    assert p.position(YES) == 3 * S and p.position(NO) == 0
    # basis of 7 YES (of 10 costing 4.70001) + all NO (3.50001)
    assert m.basis == 4_700_010 * 7 // 10 + 3_500_010 and m.realized == m.payout - m.basis
    assert p.merge_sets(PAIR, 6) is None  # nothing complete left
    invariant(p)


def test_negrisk_groups_are_not_merged_unless_asked() -> None:
    g = OutcomeGroup(kind="negrisk", id="ev", token_ids=(YES, NO), markets=(CID,))
    p = Portfolio(100 * S)
    p.apply(result("a", rep(YES, "BUY", S, 400_000), rep(NO, "BUY", S, 500_000, leg=1)), CAT)
    assert p.merge_sets(g, 1) is None
    m = p.merge_sets(g, 1, allow_negrisk=True)
    assert m is not None and m.realized == 100_000
    invariant(p)


def test_settlement_pays_winners_and_zeroes_losers() -> None:
    p = Portfolio(100 * S)
    p.apply(result("a", rep(YES, "BUY", 10 * S, 900_000)), CAT)
    p.apply(result("b", rep(NO, "BUY", 5 * S, 200_000)), CAT)
    s = p.settle(CID, YES, now_ns=9)
    assert s is not None and s.payout == 10 * S and s.realized == 10 * S - 9 * S - S
    assert p.positions() == {} and p.cash == 100 * S + s.realized
    snap = p.snapshot({})
    assert snap.completed == 2 and snap.wins == 1 and snap.win_rate == 0.5
    assert p.settle(CID, YES) is None  # nothing left of it
    p.apply(result("c", rep(YES, "BUY", S, 500_000)), CAT)
    with pytest.raises(PortfolioError, match="not an outcome"):
        p.settle(CID, "other-token")
    assert p.position(YES) == S  # a refused settlement changes nothing


def test_selling_more_than_held_opens_a_short_that_settles_consistently() -> None:
    p = Portfolio(100 * S)
    p.apply(result("a", rep(YES, "SELL", 4 * S, 300_000)), CAT)
    assert p.position(YES) == -4 * S and p.basis(YES) == -1_200_000
    assert p.exposure([YES]) == 4 * S - 1_200_000
    p.apply(result("b", rep(YES, "BUY", S, 100_000)), CAT)  # buy back one share cheaper
    assert p.realized == 200_000
    p.settle(CID, NO)  # the short token lost: the rest of the sale is profit
    assert p.realized == 200_000 + 900_000 and p.position(YES) == 0
    invariant(p)


def test_snapshot_marks_longs_to_the_best_bid() -> None:
    p = Portfolio(100 * S)
    p.apply(result("a", rep(YES, "BUY", 10 * S, 500_000, 1_000)), CAT)
    snap = p.snapshot({YES: book("0.45", "0.47")})
    (pos,) = snap.positions
    assert pos.mark == 450_000 and pos.value == 4_500_000
    assert snap.unrealized == 4_500_000 - 5_001_000
    assert snap.equity == p.cash + 4_500_000
    assert snap.realized + snap.unrealized == snap.equity - snap.starting_cash
    assert p.snapshot({}).positions[0].mark == 0  # no book: no bid to sell into
    assert snap.trades == 1 and snap.open_trades == 1 and snap.win_rate == 0.0


def test_daily_realized_is_bucketed_by_utc_day() -> None:
    p = Portfolio(100 * S)
    p.apply(result("a", rep(YES, "BUY", S, 500_000, ts=10)), CAT)
    p.apply(result("b", rep(YES, "SELL", S, 300_000, ts=DAY_NS + 5)), CAT)
    assert p.realized_on_day(10) == 0 and p.realized_on_day(DAY_NS + 99) == -200_000


def test_unwound_reports_are_booked_and_flagged() -> None:
    p = Portfolio(100 * S)
    res = result(
        "a",
        rep(YES, "BUY", 10 * S, 480_000),
        rep(NO, "BUY", 0, 500_000, leg=1),
        unwound=(rep(YES, "SELL", 10 * S, 450_000, 20),),
    )
    fills = p.apply(res, CAT)
    assert [f.unwind for f in fills] == [False, True]
    assert p.realized == -300_000 - 20 and p.position(YES) == 0
    (t,) = p.trades()
    assert t.closed and t.realized < 0 and t.fees == 20
    assert p.snapshot({}).win_rate == 0.0 and p.snapshot({}).completed == 1


def test_negative_starting_cash_is_refused() -> None:
    with pytest.raises(PortfolioError, match=">= 0"):
        Portfolio(-1)


def by(strategy: str, res: ExecutionResult) -> ExecutionResult:
    """``res`` as if ``strategy`` had sent it."""
    intent = msgspec.structs.replace(res.intent, strategy=strategy)
    return msgspec.structs.replace(res, intent=intent)


def realized_by_strategy(p: Portfolio) -> dict[str, int]:
    out: dict[str, int] = {}
    for t in p.trades():
        out[t.strategy] = out.get(t.strategy, 0) + t.realized
    return out


def test_an_unwind_closes_its_own_intents_lots_not_another_strategys() -> None:
    p = Portfolio(100 * S)
    p.apply(
        by(
            "sum_to_100",
            result("s-1", rep(YES, "BUY", 10 * S, 400_000), rep(NO, "BUY", 10 * S, 500_000, leg=1)),
        ),
        CAT,
    )
    clip = result(
        "c-2",
        rep(YES, "BUY", 5 * S, 420_000),
        rep(NO, "BUY", 0, 480_000, leg=1),
        unwound=(rep(YES, "SELL", 5 * S, 300_000, 7),),
    )
    p.apply(by("clipper", clip), CAT)
    trades = {t.intent_id: t for t in p.trades()}
    # SumTo100 never sold: nothing realized, its 20 shares still open
    assert trades["s-1"].realized == 0 and trades["s-1"].open_shares == 20 * S
    # the Clipper's unwind sold back its own 5 YES: 1.50 − 0.007 fee − 2.10
    assert trades["c-2"].closed and trades["c-2"].realized == 1_500_000 - 7 - 2_100_000
    assert realized_by_strategy(p) == {"sum_to_100": 0, "clipper": p.realized}
    assert p.basis(YES) == 4 * S and p.position(YES) == 10 * S
    invariant(p)


def test_a_sell_closes_its_strategys_lots_before_older_lots_of_others() -> None:
    p = Portfolio(100 * S)
    p.apply(by("a", result("a-1", rep(YES, "BUY", 10 * S, 400_000))), CAT)
    p.apply(by("b", result("b-2", rep(YES, "BUY", 10 * S, 500_000))), CAT)
    p.apply(by("b", result("b-3", rep(YES, "SELL", 4 * S, 600_000))), CAT)
    assert realized_by_strategy(p) == {"a": 0, "b": 400_000} and p.realized == 400_000
    # selling more than the strategy holds closes its own lot, then the oldest of the others
    p.apply(by("b", result("b-4", rep(YES, "SELL", 8 * S, 600_000))), CAT)
    assert realized_by_strategy(p) == {"a": 2 * 200_000, "b": 400_000 + 6 * 100_000}
    assert sum(realized_by_strategy(p).values()) == p.realized
    invariant(p)


def test_merges_pair_each_intents_own_sets_first() -> None:
    p = Portfolio(100 * S)
    p.apply(by("x", result("x-1", rep(YES, "BUY", 5 * S, 400_000))), CAT)
    p.apply(
        by(
            "y",
            result("y-2", rep(YES, "BUY", 10 * S, 450_000), rep(NO, "BUY", 10 * S, 500_000, leg=1)),
        ),
        CAT,
    )
    m = p.merge_sets(PAIR, 3)
    assert m is not None and m.sets == 10 * S and m.realized == 10 * S - 9_500_000
    trades = {t.intent_id: t for t in p.trades()}
    assert trades["y-2"].closed and trades["y-2"].realized == 500_000
    assert trades["x-1"].realized == 0 and trades["x-1"].open_shares == 5 * S
    assert p.basis(YES) == 2 * S and realized_by_strategy(p) == {"x": 0, "y": p.realized}
    invariant(p)

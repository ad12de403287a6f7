"""Every intent is validated before approval: one test per rule, each a rejection naming the
rule and the value (issue 8 §3). The tick grid is the token's *current* one: its live book's
after a ``tick_size_change``, else the catalog's."""

from __future__ import annotations

from typing import Any

import pytest

from polylab.book.registry import BookRegistry
from polylab.domain import Intent, Leg
from polylab.engine import Engine, RejectionRecord
from polylab.execution.paper import PaperConfig, PaperTrader
from polylab.feed.wire import Book, Level, TickSizeChange
from polylab.market import Market, MarketCatalog
from polylab.money import MICROS
from polylab.risk.manager import Approved, Rejected, RiskConfig, RiskManager
from polylab.risk.portfolio import Portfolio
from polylab.store.run_folder import RunRecorder

S = MICROS
YES, NO = "yes", "no"
FINE_YES, FINE_NO = "fine-yes", "fine-no"


def catalog() -> MarketCatalog:
    return MarketCatalog(
        [
            Market(condition_id="m", token_ids=(YES, NO), tick_size="0.01"),
            Market(condition_id="f", token_ids=(FINE_YES, FINE_NO), tick_size="0.001"),
        ]
    )


def leg(token: str = YES, side: Any = "BUY", price: Any = 500_000, size: Any = 10 * S) -> Leg:
    return Leg(token_id=token, side=side, price=price, size=size)


def intent(*legs: Leg) -> Intent:
    return Intent(strategy="s", group_id="m", kind="set", legs=legs, edge=0, created_ns=0)


def gate() -> tuple[RiskManager, BookRegistry]:
    reg = BookRegistry(catalog())
    return RiskManager(RiskConfig(), Portfolio(10_000 * S), reg.catalog, reg.books), reg


def rejected(it: Intent, rule: str) -> Rejected:
    r, _ = gate()
    d = r.check("i1", it, 0)
    assert isinstance(d, Rejected), d
    assert d.rule == rule and r.rejections[rule] == 1 and r.reserved() == 0 == r.open_orders
    return d


def test_a_well_formed_intent_passes_every_rule() -> None:
    r, _ = gate()
    assert isinstance(r.check("i1", intent(leg(YES), leg(NO, price=400_000)), 0), Approved)


def test_no_legs() -> None:
    d = rejected(intent(), "no_legs")
    assert "no legs" in d.reason


@pytest.mark.parametrize("side", ["HOLD", "buy", "", None])
def test_side_must_be_buy_or_sell(side: Any) -> None:
    d = rejected(intent(leg(side=side)), "invalid_side")
    assert repr(side) in d.reason and "leg 0" in d.reason


def test_order_type_must_be_one_the_venue_takes() -> None:
    it = intent(Leg(token_id=YES, side="BUY", price=500_000, size=S, order_type="IOC"))  # type: ignore[arg-type]
    assert "'IOC'" in rejected(it, "invalid_order_type").reason


@pytest.mark.parametrize("size", [0, -10_000, 1.5, "10"])
def test_size_must_be_a_positive_integer(size: Any) -> None:
    assert repr(size) in rejected(intent(leg(size=size)), "invalid_size").reason


def test_size_must_be_on_the_size_grid() -> None:
    d = rejected(intent(leg(NO, price=400_000), leg(size=10 * S + 5_000)), "off_size_grid")
    assert "leg 1" in d.reason and "10005000" in d.reason


@pytest.mark.parametrize("price", [0, MICROS, -500_000, 2 * MICROS, 0.5, None])
def test_price_must_be_strictly_inside_zero_one(price: Any) -> None:
    assert repr(price) in rejected(intent(leg(price=price)), "invalid_price").reason


def test_token_must_be_in_the_catalog() -> None:
    d = rejected(intent(leg("not-a-token")), "unknown_token")
    assert "not-a-token" in d.reason


def test_price_must_be_on_the_catalog_grid_without_a_book() -> None:
    d = rejected(intent(leg(price=505_000)), "off_tick_grid")
    assert "0.505" in d.reason and "0.01" in d.reason
    r, _ = gate()  # the same price on a 0.001 market is fine
    assert isinstance(r.check("i", intent(leg(FINE_YES, price=505_000)), 0), Approved)


def test_the_grid_is_the_books_current_one_after_a_tick_size_change() -> None:
    r, reg = gate()
    finer = intent(leg(YES, price=21_000))  # 0.021: off the catalog's 0.01 grid
    d = r.check("a", finer, 0)
    assert isinstance(d, Rejected) and d.rule == "off_tick_grid"
    book = Book(asset_id=YES, market="m", bids=[Level("0.02", "100")], asks=[Level("0.03", "9")])
    reg.handlers[Book](book, 1)
    reg.handlers[TickSizeChange](
        TickSizeChange(asset_id=YES, old_tick_size="0.01", new_tick_size="0.001", market="m"), 2
    )
    assert reg.books[YES].tick.text == "0.001"
    assert isinstance(r.check("b", finer, 3), Approved)
    # and back: the catalog of FINE_YES says 0.001, its book now says 0.01
    reg.handlers[TickSizeChange](
        TickSizeChange(asset_id=FINE_YES, old_tick_size="0.001", new_tick_size="0.01"), 4
    )
    d = r.check("c", intent(leg(FINE_YES, price=21_000)), 5)
    assert isinstance(d, Rejected) and d.rule == "off_tick_grid" and "0.01 tick" in d.reason


def test_no_duplicate_token_within_a_set() -> None:
    d = rejected(intent(leg(YES), leg(NO), leg(YES, price=400_000)), "duplicate_token")
    assert "leg 2" in d.reason and YES in d.reason


def test_a_malformed_leg_object_is_a_rejection_not_a_crash() -> None:
    it = Intent(strategy="s", group_id="m", kind="set", legs=("BUY",), edge=0, created_ns=0)  # type: ignore[arg-type]
    assert "leg 0 is not a Leg: 'BUY'" in rejected(it, "no_legs").reason
    it = Intent(strategy="s", group_id="m", kind="set", legs=None, edge=0, created_ns=0)  # type: ignore[arg-type]
    assert rejected(it, "no_legs").rule == "no_legs"


def test_the_engine_records_a_hold_leg_as_a_rejection_with_its_reason() -> None:
    # today a "HOLD" leg was approved at zero cost and sent to the executor
    reg = BookRegistry(catalog())
    p = Portfolio(1_000 * S)
    rec = RunRecorder()
    ex = PaperTrader(PaperConfig(), reg.catalog)
    eng = Engine(
        registry=reg,
        strategies=[],
        risk=RiskManager(RiskConfig(), p),  # the engine binds its catalog and books
        executor=ex,
        portfolio=p,
        sinks=[rec],
    )
    hold = Intent(
        strategy="s",
        group_id="m",
        kind="single",
        legs=(leg(side="HOLD"),),
        edge=0,
        created_ns=0,
    )
    assert eng.submit(hold) is None
    assert ex.submitted == 0 and eng.stats.rejected == 1 and eng.risk.reserved() == 0
    (row,) = rec.rows["rejections"]
    assert isinstance(row, RejectionRecord)
    assert row.rule == "invalid_side" and "'HOLD'" in row.reason and row.intent_id == "s-1"

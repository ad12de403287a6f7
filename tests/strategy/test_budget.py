"""Strategies size intents to the risk gate's headroom (``ctx.budget``) instead of sending
what the gate would refuse. Expected sizes are worked out here by hand."""

from __future__ import annotations

from polylab.book.l2 import L2Book
from polylab.market import Market, MarketCatalog
from polylab.money import MICROS, tick_size
from polylab.strategy.clipper import Clipper
from polylab.strategy.sum_to_100 import SumTo100

T0 = 1_700_000_000_000_000_000
BIN = Market(condition_id="0xbin", token_ids=("Y", "N"))


class BudgetCtx:
    def __init__(self, room_micros: int) -> None:
        self.books: dict[str, L2Book] = {}
        self.catalog = MarketCatalog([BIN])
        self.room = room_micros
        self.asked: list[tuple[str, tuple[str, ...]]] = []

    def now_ns(self) -> int:
        return T0

    def position(self, token_id: str) -> int:
        return 0

    def budget(self, group_id: str, token_ids: tuple[str, ...]) -> int:
        self.asked.append((group_id, token_ids))
        return self.room

    def book(self, token: str, ask: str, size: int) -> None:
        g = tick_size("0.01")
        b = L2Book(token, g)
        b.load([(g.to_ticks("0.01"), 10 * MICROS)], [(g.to_ticks(ask), size * MICROS)])
        b.updated_ns = T0
        self.books[token] = b


def ctx_with(room_dollars: int) -> BudgetCtx:
    ctx = BudgetCtx(room_dollars * MICROS)
    ctx.book("Y", "0.40", 1000)
    ctx.book("N", "0.50", 1000)  # a set costs 0.90 at the limit prices
    return ctx


def test_sum_to_100_fits_the_headroom() -> None:
    ctx = ctx_with(45)
    (intent,) = SumTo100().on_book(ctx, "Y")
    assert ctx.asked and ctx.asked[0][0] == "0xbin"
    assert all(leg.size == 50 * MICROS for leg in intent.legs)  # $45 / $0.90 = 50 sets
    assert intent.cost <= 45 * MICROS


def test_clipper_fits_the_headroom_and_stops_below_its_minimum() -> None:
    ctx = ctx_with(9)
    (intent,) = Clipper().on_book(ctx, "Y")
    assert all(leg.size == 10 * MICROS for leg in intent.legs)  # $9 / $0.90
    small = ctx_with(3)  # 3.33 sets < the 5-share minimum
    assert Clipper().on_book(small, "Y") == []


def test_without_a_budget_the_strategy_uses_its_own_cap() -> None:
    ctx = ctx_with(10**6)
    (intent,) = SumTo100().on_book(ctx, "Y")
    assert intent.legs[0].size == 1000 * MICROS  # all the depth, under max_size 1000

"""The venue's amount semantics shared by paper and live: a FOK/FAK BUY sized in collateral
receives its size (plus at most a cent's worth of dust) while the book stands."""

from __future__ import annotations

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from polylab.book.l2 import L2Book
from polylab.execution.amounts import (
    CENT,
    LOT,
    book_buy_budget,
    buy_budget,
    fok_budget_spent,
    lot_floor,
    walk_budget,
)
from polylab.money import MICROS, tick_size

lots = st.integers(min_value=1, max_value=20_000).map(lambda n: n * LOT)


@settings(max_examples=300, deadline=None)
@given(
    grid=st.sampled_from(["0.01", "0.001"]),
    levels=st.dictionaries(st.integers(1, 99), lots, min_size=1, max_size=8),
    size=st.integers(min_value=1, max_value=300 * MICROS),
    limit_pct=st.integers(1, 99),
)
def test_budget_buys_the_size_plus_at_most_a_cents_worth(
    grid: str, levels: dict[int, int], size: int, limit_pct: int
) -> None:
    # An order worth under two cents cannot round its budget down (the venue's minimum
    # marketable order is $1 anyway): the rule below is about real orders.
    assume(lot_floor(size) * limit_pct * 10_000 // MICROS >= 2 * CENT)
    tick = tick_size(grid)
    per_pct = tick.n // 100  # ticks per 0.01
    book = L2Book("t", tick)
    book.load([], [(p * per_pct, s) for p, s in sorted(levels.items())])
    limit = limit_pct * 10_000
    asks = [(p * 10_000, s) for p, s in sorted(levels.items())]
    budget = book_buy_budget(book, size, limit)
    assert budget == buy_budget(asks, size, limit) and budget % CENT == 0
    assert budget <= -(-lot_floor(size) * limit // MICROS // CENT) * CENT  # ≤ the nominal
    takes, unspent = walk_budget(asks, budget, limit)
    got = sum(n for _, n in takes)
    offered = sum(s for p, s in asks if p <= limit)
    spent = budget - unspent
    assert spent == sum(n * p // MICROS for p, n in takes) and unspent >= 0
    if offered >= lot_floor(size):  # the book holds the size: a FOK completes
        assert fok_budget_spent(unspent, limit)
        left, exact = lot_floor(size), 0  # the size's own cost, walked independently
        for p, s in asks:
            take = min(s, left)
            exact, left = exact + take * p, left - take
        assert abs(spent * MICROS - exact) < CENT * MICROS  # within a cent of the size's cost
        if spent * MICROS < exact:  # rounded down: the book was too thin for the change
            assert budget * MICROS < exact
        else:
            assert got >= lot_floor(size)
    else:  # thinner than the size: everything under the limit, a FOK would be killed
        assert got == offered and not fok_budget_spent(unspent, limit)

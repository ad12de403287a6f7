"""Invariants: deltas rebuild the snapshot; VWAP cost grows with size; mirrors agree."""

from hypothesis import given, settings
from hypothesis import strategies as st

from polylab.analysis.vwap import vwap_buy, vwap_sell
from polylab.book.l2 import L2Book
from polylab.book.registry import mirror_mismatches
from polylab.money import tick_size

CENT = tick_size("0.01")
updates = st.lists(
    st.tuples(
        st.booleans(), st.integers(1, 99), st.sampled_from([0, 0, 10_000, 5_000_000, 123_450_000])
    ),
    max_size=200,
)


@given(updates)
def test_any_delta_sequence_equals_the_final_snapshot(seq: list[tuple[bool, int, int]]) -> None:
    b = L2Book("t", CENT)
    final: dict[tuple[bool, int], int] = {}
    for is_bid, t, s in seq:
        (b.set_bid if is_bid else b.set_ask)(t, s)
        final[(is_bid, t)] = s
    snap = L2Book("t", CENT)
    snap.load(
        [(t, s) for (bid, t), s in final.items() if bid],
        [(t, s) for (bid, t), s in final.items() if not bid],
    )
    assert b.bid_levels() == snap.bid_levels() and b.ask_levels() == snap.ask_levels()
    assert (b.best_bid, b.best_ask, b.n_bids, b.n_asks) == (
        snap.best_bid,
        snap.best_ask,
        snap.n_bids,
        snap.n_asks,
    )
    assert b.best_bid == max((t for t, _ in snap.bid_levels()), default=-1)
    assert b.best_bid_micros() == (b.best_bid * 10_000 if b.best_bid >= 0 else 0)
    assert b.best_ask_micros() == (b.best_ask * 10_000 if b.best_ask <= 100 else 1_000_000)
    assert (b.bid_px, b.ask_px) == (snap.bid_px, snap.ask_px)


levels = st.dictionaries(st.integers(1, 99), st.integers(1, 10**9), min_size=1, max_size=30)


@given(levels, st.integers(0, 10**10), st.integers(0, 10**10))
def test_vwap_cost_is_monotone_in_size(asks: dict[int, int], a: int, b: int) -> None:
    book = L2Book("t", CENT)
    book.load([], list(asks.items()))
    lo, hi = sorted((a, b))
    va, vb = vwap_buy(book, lo), vwap_buy(book, hi)
    assert va.cost <= vb.cost and va.filled <= vb.filled
    assert vb.filled == min(hi, sum(asks.values())) and vb.shortfall == hi - vb.filled
    # average price never improves with size when buying
    if va.filled and vb.filled:
        assert va.avg_price <= vb.avg_price


@given(levels, levels)
@settings(max_examples=50)
def test_mirrored_books_agree(bids: dict[int, int], asks: dict[int, int]) -> None:
    yes = L2Book("y", CENT)
    yes.load(
        [(t, s) for t, s in bids.items() if t < 50], [(t, s) for t, s in asks.items() if t >= 50]
    )
    no = L2Book("n", CENT)
    no.load(
        [(100 - t, s) for t, s in yes.ask_levels()], [(100 - t, s) for t, s in yes.bid_levels()]
    )
    assert mirror_mismatches(yes, no) == 0
    size = sum(s for _, s in yes.bid_levels())
    if size:
        # YES bids at p are NO asks at 1−p: selling YES and buying NO there sum to size × $1
        sell_yes = vwap_sell(yes, size)
        buy_no = vwap_buy(no, size)
        assert sell_yes.notional + buy_no.notional == size * 1_000_000


@given(
    st.dictionaries(st.integers(1, 999), st.integers(1, 10**9), max_size=40),
    st.integers(0, 2 * 10**10),
    st.sampled_from(["0.01", "0.001"]),
)
@settings(max_examples=200)
def test_direct_walk_after_a_change_equals_the_ladder(
    asks: dict[int, int], size: int, tick: str
) -> None:
    g = tick_size(tick)
    book = L2Book("t", g)
    book.load([], [(t % g.n or 1, s) for t, s in asks.items()])
    fresh = vwap_buy(book, size)  # the side just changed: no ladder yet
    via_ladder = vwap_buy(book.ask_ladder(), size)
    assert fresh == via_ladder

from decimal import Decimal

from polylab.analysis.vwap import vwap_buy, vwap_buy_with_fees, vwap_sell, vwap_sell_with_fees
from polylab.book.l2 import L2Book
from polylab.fees import FeeModel, fee_micros
from polylab.money import parse_micros, tick_size


def book(asks: list[tuple[str, str]], bids: list[tuple[str, str]] = ()) -> L2Book:  # type: ignore[assignment]
    g = tick_size("0.01")
    b = L2Book("t", g)
    b.load(
        [(g.to_ticks(p), parse_micros(s)) for p, s in bids],
        [(g.to_ticks(p), parse_micros(s)) for p, s in asks],
    )
    return b


def test_spec_example_vwap_over_two_levels() -> None:
    yes = book([("0.45", "50"), ("0.46", "50")])
    v = vwap_buy(yes, parse_micros("100"))
    assert v.avg_price == Decimal("0.455") and v.cost == 45_500_000 and v.levels == 2
    assert v.complete and v.worst_price == 460_000


def test_partial_level_and_shortfall() -> None:
    b = book([("0.45", "50"), ("0.46", "50")])
    v = vwap_buy(b, parse_micros("60"))
    assert v.cost == 50 * 450_000 + 10 * 460_000 and v.levels == 2
    v = vwap_buy(b, parse_micros("130"))
    assert v.filled == 100_000_000 and v.shortfall == 30_000_000 and not v.complete
    assert vwap_buy(book([]), 10).filled == 0


def test_sell_walks_bids_best_first_and_rounds_down() -> None:
    b = book([], [("0.40", "10"), ("0.42", "5")])
    v = vwap_sell(b, parse_micros("7"))
    assert v.cost == 5 * 420_000 + 2 * 400_000 and v.worst_price == 400_000


def test_taker_fee_formula_matches_the_documented_examples() -> None:
    # 100 shares at 0.50 with rate 0.07: 100 × 0.07 × 0.25 = 1.75
    assert fee_micros(100_000_000, 500_000, 70_000) == 1_750_000
    # the Jan-2026 form C × 0.25 × (p(1−p))²: 100 @ 0.50 → 1.5625; @ 0.10 → 0.2025
    assert fee_micros(100_000_000, 500_000, 250_000, exponent=2) == 1_562_500
    assert fee_micros(100_000_000, 100_000, 250_000, exponent=2) == 202_500
    # the smallest fee is 0.00001 and fees round up to it
    assert fee_micros(1, 500_000, 70_000) == 10


def test_fee_aware_vwap_charges_every_level() -> None:
    b = book([("0.45", "50"), ("0.46", "50")])
    fm = FeeModel.from_rate("0.04")
    v = vwap_buy_with_fees(b, parse_micros("100"), fm)
    expect = 50 * 0.04 * 0.45 * 0.55 + 50 * 0.04 * 0.46 * 0.54  # independent float check
    assert abs(v.fee / 1e6 - expect) < 1e-5 and v.total == v.cost + v.fee
    flat = vwap_buy_with_fees(b, parse_micros("100"), FeeModel(flat_micros_per_share=10_000))
    assert flat.fee == 1_000_000
    s = vwap_sell_with_fees(
        book([], [("0.40", "10")]), parse_micros("10"), FeeModel.from_rate("0.04", 2)
    )
    assert s.fee == fee_micros(10_000_000, 400_000, 40_000, 2)

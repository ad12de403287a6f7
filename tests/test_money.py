from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from polylab.money import (
    MoneyError,
    cash_to_str,
    cost_micros,
    decimal_to_micros,
    micros_to_decimal,
    parse_micros,
    size_to_str,
    tick_size,
)


@pytest.mark.parametrize(
    ("text", "micros"),
    [
        ("0.46", 460_000),
        ("0.5", 500_000),
        (".48", 480_000),
        ("918.34", 918_340_000),
        ("5", 5_000_000),
        ("0.040", 40_000),
        ("0", 0),
        ("1", 1_000_000),
        ("0.1234560", 123_456),
    ],
)
def test_parse_micros_accepts_venue_strings(text: str, micros: int) -> None:
    assert parse_micros(text) == micros


@pytest.mark.parametrize(
    "bad", ["", ".", "-0.5", "+1", "1e-3", " 1", "1_0", "0.1234567", "abc", "NaN", "٣"]
)
def test_parse_micros_rejects_malformed_with_the_value_in_the_message(bad: str) -> None:
    with pytest.raises(MoneyError, match=r"decimal|6 decimals"):
        parse_micros(bad)


def test_ticks_on_both_grids() -> None:
    cent, mil = tick_size("0.01"), tick_size("0.001")
    assert cent.to_ticks("0.46") == 46 and mil.to_ticks("0.46") == 460
    assert mil.to_ticks("0.955") == 955 and cent.n == 100 and mil.n == 1000
    assert cent.to_str(46) == "0.46" and mil.to_str(955) == "0.955" and cent.to_str(50) == "0.5"
    with pytest.raises(MoneyError, match=r"not on the 0\.01 tick grid"):
        cent.to_ticks("0.955")
    with pytest.raises(MoneyError, match="above 1"):
        cent.to_ticks("1.01")
    assert cent.to_decimal(46) == Decimal("0.46")


def test_tick_size_rejects_grids_that_do_not_divide_one() -> None:
    with pytest.raises(MoneyError, match="divide 1"):
        tick_size("0.03")


@given(st.integers(min_value=0, max_value=10**15))
def test_size_string_round_trip(micros: int) -> None:
    assert parse_micros(size_to_str(micros)) == micros


@given(st.decimals(min_value=0, max_value=10**9, places=6, allow_nan=False))
def test_decimal_round_trip(d: Decimal) -> None:
    assert micros_to_decimal(decimal_to_micros(d)) == d


def test_decimal_to_micros_refuses_to_round() -> None:
    with pytest.raises(MoneyError, match="6 decimals"):
        decimal_to_micros(Decimal("0.0000001"))


def test_cost_rounds_against_us_only_when_inexact() -> None:
    assert cost_micros(455_000, 100_000_000, round_up=True) == 45_500_000
    assert cost_micros(333_333, 1, round_up=True) == 1
    assert cost_micros(333_333, 1, round_up=False) == 0
    assert cash_to_str(-1_500_000) == "-1.50"

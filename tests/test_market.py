"""Markets parse their grid and size floor once, where they enter, and refuse bad values."""

from __future__ import annotations

import msgspec
import pytest

from polylab.market import Market
from polylab.money import MoneyError


def test_tick_and_min_size_are_parsed_integers() -> None:
    m = Market(condition_id="c", token_ids=("y", "n"), tick_size="0.001", min_order_size="2.5")
    assert m.tick_micros == 1_000
    assert m.tick.n == 1_000
    assert m.min_size_micros == 2_500_000


@pytest.mark.parametrize(("field", "value"), [("tick_size", "0.03"), ("min_order_size", "-1")])
def test_bad_grid_or_floor_is_refused_naming_the_value(field: str, value: str) -> None:
    with pytest.raises(MoneyError, match=value):
        Market(condition_id="c", token_ids=("y", "n"), **{field: value})
    raw = msgspec.json.encode({"condition_id": "c", "token_ids": ["y", "n"], field: value})
    with pytest.raises(msgspec.ValidationError, match=value):
        msgspec.json.decode(raw, type=Market)

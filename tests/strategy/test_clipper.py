"""Clipper: best asks only: size is the thinnest top level, fees per leg or the flat fallback,
thresholds, freshness, config. Expected values are Decimal arithmetic written here."""

from __future__ import annotations

from decimal import ROUND_CEILING, Decimal

import pytest

from polylab.book.l2 import L2Book
from polylab.domain import Leg
from polylab.errors import ConfigError
from polylab.fees import FeeModel
from polylab.market import Market, MarketCatalog
from polylab.money import MICROS, tick_size
from polylab.strategy.base import Strategy
from polylab.strategy.clipper import Clipper, ClipperConfig
from polylab.strategy.params import sweep_ranges

D = Decimal
T0 = 1_700_000_000_000_000_000
MS = 1_000_000
Levels = list[tuple[str, str]]


def m(x: Decimal | str | int) -> int:
    v = D(x) * MICROS
    assert v == v.to_integral_value()
    return int(v)


class Ctx:
    """A plain Context: books, catalog and a settable clock."""

    def __init__(self, markets: list[Market]) -> None:
        self.books: dict[str, L2Book] = {}
        self.catalog = MarketCatalog(markets)
        self.now = T0

    def now_ns(self) -> int:
        return self.now

    def position(self, token_id: str) -> int:
        return 0

    def set(self, token: str, asks: Levels, bids: Levels = (), at: int | None = None) -> None:  # type: ignore[assignment]
        g = tick_size("0.01")
        b = L2Book(token, g)
        b.load([(g.to_ticks(p), m(s)) for p, s in bids], [(g.to_ticks(p), m(s)) for p, s in asks])
        b.updated_ns = self.now if at is None else at
        self.books[token] = b


BIN = Market(condition_id="0xbin", token_ids=("Y", "N"))


def example() -> Ctx:
    ctx = Ctx([BIN])
    ctx.set("Y", [("0.45", "50"), ("0.46", "50")], [("0.44", "100")])
    ctx.set("N", [("0.48", "100")], [("0.46", "100")])
    return ctx


def test_takes_the_thinnest_top_level_at_the_best_asks() -> None:
    (it,) = Clipper().on_book(example(), "Y")
    # 50 sets (YES's top level) at 0.45 + 0.48 + the 0.01 flat fallback per set
    edge = 50 * (1 - D("0.45") - D("0.48") - D("0.01"))
    assert it.edge == m(edge) == 3_000_000
    assert it.legs == (
        Leg(token_id="Y", side="BUY", price=m("0.45"), size=m(50), order_type="FOK"),
        Leg(token_id="N", side="BUY", price=m("0.48"), size=m(50), order_type="FOK"),
    )
    assert (it.kind, it.group_id, it.strategy) == ("set", "0xbin", "clipper")
    assert isinstance(Clipper(), Strategy)


def test_neg_risk_with_published_fee_schedules() -> None:
    fee = FeeModel.from_rate("0.07")
    markets = [
        Market(condition_id=f"0xm{i}", token_ids=(f"y{i}", f"n{i}"), neg_risk=True,
               event_id="ev", fee=fee)
        for i in range(3)
    ]  # fmt: skip
    ctx = Ctx(markets)
    tops = [("0.20", "80.5"), ("0.30", "40.25"), ("0.40", "300")]
    for i, (p, s) in enumerate(tops):
        ctx.set(f"y{i}", [(p, s), ("0.90", "1000")])
    (it,) = Clipper().on_timer(ctx)
    size = D("40.25")
    fees = sum(
        (size * D("0.07") * D(p) * (1 - D(p))).quantize(D("0.00001"), ROUND_CEILING)
        for p, _ in tops
    )
    assert it.edge == m(size - sum(size * D(p) for p, _ in tops) - fees)
    assert [leg.price for leg in it.legs] == [m(p) for p, _ in tops]
    assert {leg.size for leg in it.legs} == {m(size)}


def test_threshold_cap_and_minimum_size() -> None:
    per_set = 1 - D("0.45") - D("0.48") - D("0.01")
    assert len(Clipper(ClipperConfig(min_edge_micros=m(per_set))).on_book(example(), "Y")) == 1
    assert Clipper(ClipperConfig(min_edge_micros=m(per_set) + 1)).on_book(example(), "Y") == []
    (it,) = Clipper(ClipperConfig(max_size_micros=m(20))).on_book(example(), "Y")
    assert it.legs[0].size == m(20) and it.edge == m(20 * per_set)
    thin = Clipper(ClipperConfig(min_size_micros=m(60)))
    assert thin.on_book(example(), "Y") == [] and thin.rejected == {"thin": 1}


def test_top_of_book_size_follows_the_marginal_rule_with_fees() -> None:
    """Binary market with a 0.07 schedule, asks 0.45 × 33.33 and 0.48 × 1000. One more set at
    the top costs 0.93 + 0.07·(0.45·0.55 + 0.48·0.52) = 0.964797: it earns 0.035203 exactly, so
    a 0.035203 minimum is met and all 33.33 sets of the thinnest top level are bought. (The old
    check divided the rounded total by the size: fees rounded up to 1e-5 per leg put it 16
    micros short and nothing was bought.) One micro more and the set fails."""
    fee = FeeModel.from_rate("0.07")
    unit = 1 - D("0.93") - D("0.07") * (D("0.45") * D("0.55") + D("0.48") * D("0.52"))
    assert unit == D("0.035203")

    def ctx() -> Ctx:
        c = Ctx([Market(condition_id="0xf", token_ids=("Y", "N"), fee=fee)])
        c.set("Y", [("0.45", "33.33"), ("0.46", "500")])
        c.set("N", [("0.48", "1000")])
        return c

    (it,) = Clipper(ClipperConfig(min_edge_micros=m(unit))).on_book(ctx(), "Y")
    size = D("33.33")
    fees = sum(
        (size * D("0.07") * p * (1 - p)).quantize(D("0.00001"), ROUND_CEILING)
        for p in (D("0.45"), D("0.48"))
    )
    assert {leg.size for leg in it.legs} == {m(size)}
    assert it.edge == m(size - size * D("0.93") - fees) > 0
    assert it.edge < unit * size * MICROS  # the rounding the old average check tripped on
    assert [leg.price for leg in it.legs] == [m("0.45"), m("0.48")]
    c = Clipper(ClipperConfig(min_edge_micros=m(unit) + 1))
    assert c.on_book(ctx(), "Y") == [] and c.rejected == {"no_edge": 1}


def test_fair_books_stale_books_crossed_books_and_repeats() -> None:
    fair = Ctx([BIN])
    fair.set("Y", [("0.54", "100")], [("0.52", "100")])
    fair.set("N", [("0.48", "100")], [("0.46", "100")])
    assert Clipper().on_timer(fair) == []
    stale = example()
    stale.books["N"].updated_ns = T0 - 31_000 * MS
    c = Clipper()
    assert c.on_book(stale, "Y") == [] and c.rejected == {"stale": 1}
    crossed = example()
    crossed.set("N", [("0.48", "100")], [("0.49", "100")])
    assert Clipper().on_book(crossed, "N") == []
    c = Clipper()
    ctx = example()
    assert len(c.on_timer(ctx)) == 1 and c.on_timer(ctx) == []
    no_asks = example()
    no_asks.set("N", [], [("0.46", "100")])
    assert Clipper().on_timer(no_asks) == []


def test_config_from_env_and_errors() -> None:
    cfg = ClipperConfig.from_env(
        {"CLIPPER_MIN_EDGE": "0.002", "CLIPPER_MAX_SIZE": "75", "CLIPPER_ENABLED": "0"}
    )
    assert (cfg.min_edge_micros, cfg.max_size_micros, cfg.enabled) == (2_000, m(75), False)
    assert Clipper(cfg).on_timer(example()) == []
    with pytest.raises(ConfigError, match=r"CLIPPER_MAX_SIZE.*max_size_micros.*'-3'"):
        ClipperConfig.from_env({"CLIPPER_MAX_SIZE": "-3"})
    with pytest.raises(ConfigError, match="max_size_micros"):
        ClipperConfig.from_mapping({"max_size_micros": 0})
    assert "max_size_micros" in sweep_ranges(ClipperConfig)

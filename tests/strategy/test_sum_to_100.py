"""SumTo100: the spec's worked example, the most profitable size (marginal rule), the risk
budget, freshness, config loading, and a recorded stream replayed through the registry.
Expected values come from Decimal arithmetic written here."""

from __future__ import annotations

import json
from decimal import ROUND_CEILING, Decimal
from pathlib import Path

import pytest

from polylab.analysis.replay import iter_market_events
from polylab.book.l2 import L2Book
from polylab.book.registry import BookRegistry
from polylab.domain import Intent, Leg
from polylab.errors import ConfigError
from polylab.feed.recording import RecordingWriter
from polylab.feed.wire import Book, PriceChange
from polylab.fees import FeeModel
from polylab.market import Market, MarketCatalog
from polylab.money import MICROS, tick_size
from polylab.strategy.base import Strategy
from polylab.strategy.params import sweep_ranges
from polylab.strategy.sum_to_100 import SumTo100, SumTo100Config

D = Decimal
T0 = 1_700_000_000_000_000_000
MS = 1_000_000
Levels = list[tuple[str, str]]


def m(x: Decimal | str) -> int:
    """Exact dollars/shares → micros (fails on anything finer)."""
    v = D(x) * MICROS
    assert v == v.to_integral_value()
    return int(v)


class Ctx:
    """A plain Context: books, catalog and a settable clock."""

    def __init__(self, markets: list[Market], books: dict[str, L2Book] | None = None) -> None:
        self.books: dict[str, L2Book] = books if books is not None else {}
        self.catalog = MarketCatalog(markets)
        self.now = T0

    def now_ns(self) -> int:
        return self.now

    def position(self, token_id: str) -> int:
        return 0

    def set(self, token: str, asks: Levels, bids: Levels = (), at: int | None = None) -> L2Book:  # type: ignore[assignment]
        g = tick_size("0.01")
        b = self.books.get(token) or L2Book(token, g)
        b.load([(g.to_ticks(p), m(s)) for p, s in bids], [(g.to_ticks(p), m(s)) for p, s in asks])
        b.updated_ns = self.now if at is None else at
        self.books[token] = b
        return b


BIN = Market(condition_id="0xbin", token_ids=("Y", "N"))


def negrisk(fee: FeeModel | None, n: int = 3, min_order: str = "5") -> list[Market]:
    return [
        Market(
            condition_id=f"0xm{i}",
            token_ids=(f"y{i}", f"n{i}"),
            neg_risk=True,
            event_id="ev1",
            fee=fee,
            min_order_size=min_order,
        )
        for i in range(n)
    ]


def worked_example() -> Ctx:
    ctx = Ctx([BIN])
    ctx.set("Y", [("0.45", "50"), ("0.46", "50")], [("0.44", "100")])
    ctx.set("N", [("0.48", "100")], [("0.46", "100")])
    return ctx


def test_spec_worked_example_buys_100_sets_with_a_5_5_percent_edge() -> None:
    ctx = worked_example()
    s = SumTo100()
    (it,) = s.on_book(ctx, "Y")
    vwap_yes = (D("0.45") * 50 + D("0.46") * 50) / 100
    vwap_no = D("0.48")
    assert (vwap_yes, vwap_yes + vwap_no) == (D("0.455"), D("0.935"))
    per_set = vwap_yes + vwap_no + D("0.01")  # flat 1 % of the $1 payout
    assert per_set == D("0.945") and 1 - per_set == D("0.055")  # 5.5 %
    assert it.edge == m((1 - per_set) * 100)
    assert it.legs == (
        Leg(token_id="Y", side="BUY", price=m("0.46"), size=m(100), order_type="FOK"),
        Leg(token_id="N", side="BUY", price=m("0.48"), size=m(100), order_type="FOK"),
    )
    assert (it.kind, it.group_id, it.strategy, it.created_ns) == ("set", "0xbin", "sum_to_100", T0)
    assert "stale_leg" in it.reason
    assert it.cost == m(D("0.46") * 100 + D("0.48") * 100)  # worst-case limit cash


def test_it_is_a_strategy_and_ignores_scoreboards() -> None:
    s = SumTo100()
    assert isinstance(s, Strategy)
    assert s.on_games(worked_example(), []) == []


NR_LEGS: list[Levels] = [
    [("0.30", "500")],
    [("0.30", "100"), ("0.40", "400")],
    [("0.32", "500")],
]


def ref_edge(legs: list[Levels], size: Decimal, rate: Decimal) -> Decimal:
    """Profit of ``size`` sets: per leg, cash rounded up to 1e-6 and fee Σ r·p(1−p) up to 1e-5."""
    total = D(0)
    for levels in legs:
        left, c, f = size, D(0), D(0)
        for p_text, s_text in levels:
            p, take = D(p_text), min(left, D(s_text))
            c += take * p
            f += take * rate * p * (1 - p)
            left -= take
        assert left == 0
        total += c.quantize(D("0.000001"), ROUND_CEILING) + f.quantize(D("0.00001"), ROUND_CEILING)
    return size - total


def nr_ctx(**kw: object) -> Ctx:
    ctx = Ctx(negrisk(FeeModel.from_rate("0.04"), **kw))  # type: ignore[arg-type]
    for i, lv in enumerate(NR_LEGS):
        ctx.set(f"y{i}", lv)
    return ctx


def test_size_stops_where_the_next_set_would_lose_money() -> None:
    """Neg-risk, fee rate 0.04: the first 100 sets cost 0.92 + fees each; beyond that B's 0.40
    level makes every extra set lose (1.02 before fees), so SumTo100 buys exactly 100 sets. The
    average-edge rule went on to 203.60 sets and earned less."""
    ctx = nr_ctx()
    (it,) = SumTo100().on_book(ctx, "y1")
    e = ref_edge(NR_LEGS, D(100), D("0.04"))
    assert e > ref_edge(NR_LEGS, D("203.60"), D("0.04")) > 0
    assert all(leg.size == m("100") for leg in it.legs) and it.edge == m(e)
    assert [leg.price for leg in it.legs] == [m("0.30"), m("0.30"), m("0.32")]
    assert it.group_id == "ev1" and "structural" in it.reason


def test_issue_example_buys_the_50_profitable_sets_only() -> None:
    """YES asks 50 @ 0.40 and 50 @ 0.70, NO 100 @ 0.50, flat fee 0.01 per set: the first 50
    sets earn 0.09 each, every further one loses 0.21. The average rule bought 70.42 sets for a
    profit of 0.21; the marginal rule buys 50 for 4.50."""
    ctx = Ctx([BIN])
    ctx.set("Y", [("0.40", "50"), ("0.70", "50")])
    ctx.set("N", [("0.50", "100")])
    (it,) = SumTo100().on_book(ctx, "Y")
    assert 1 - D("0.40") - D("0.50") - D("0.01") == D("0.09")
    assert 1 - D("0.70") - D("0.50") - D("0.01") == D("-0.21")
    assert [leg.size for leg in it.legs] == [m("50"), m("50")]
    assert it.edge == m(50 * D("0.09")) == 4_500_000
    assert [leg.price for leg in it.legs] == [m("0.40"), m("0.50")]


def test_max_size_caps_and_min_liquidity_blocks() -> None:
    cfg = SumTo100Config(max_size_micros=m("60.5"))
    (it,) = SumTo100(cfg).on_book(nr_ctx(), "y0")
    assert it.legs[0].size == m("60.5") and it.edge == m(ref_edge(NR_LEGS, D("60.5"), D("0.04")))
    # the worked example has only 100 profitable sets: below a 150-share liquidity floor
    s = SumTo100(SumTo100Config(min_liquidity_micros=m(150)))
    assert s.on_book(worked_example(), "Y") == [] and s.rejected == {"thin": 1}
    # the venue's minimum order size of the markets applies too
    s = SumTo100(SumTo100Config(min_liquidity_micros=0, max_size_micros=m(3)))
    assert s.on_book(nr_ctx(), "y0") == []
    assert s.rejected == {"thin": 1, "missing_book": 1}  # y0's own pair has no NO book


def test_min_edge_above_the_best_per_set_edge_gives_nothing() -> None:
    per_set = D(1) - D("0.45") - D("0.48") - D("0.01")  # the best (first) set: 0.06
    ok = SumTo100(SumTo100Config(min_edge_micros=m(per_set)))
    (it,) = ok.on_book(worked_example(), "Y")
    assert it.legs[0].size == m(50)  # only YES's 0.45 level keeps 0.06 per set
    too_much = SumTo100(SumTo100Config(min_edge_micros=m(per_set) + 1))
    assert too_much.on_book(worked_example(), "Y") == []


class BudgetCtx(Ctx):
    """A Context whose risk gate has ``room`` cash micros of headroom (``budget_of``)."""

    def __init__(self, markets: list[Market], room: int) -> None:
        super().__init__(markets)
        self.room = room

    def budget(self, group_id: str, token_ids: tuple[str, ...]) -> int:
        return self.room


def test_budget_is_met_at_the_limit_prices_of_the_size_bought() -> None:
    """YES 100 @ 0.40 then 100 @ 0.45, NO 300 @ 0.50: all 200 sets clear 0.003 (0.09, then
    0.04). With $92 of headroom the first 100 sets fit (0.90 × 100 at their limits); the 101st
    would lift YES's limit to 0.45. SumTo100 buys 100, not the 96.84 that $92 buys at the
    deep limit prices of the unconstrained size. $100 buys 105.26 sets at 0.95."""

    def ctx(room: int) -> BudgetCtx:
        c = BudgetCtx([BIN], room)
        c.set("Y", [("0.40", "100"), ("0.45", "100")])
        c.set("N", [("0.50", "300")])
        return c

    (free,) = SumTo100().on_book(ctx(10**12), "Y")
    assert free.legs[0].size == m("200")
    (it,) = SumTo100().on_book(ctx(m("92")), "Y")
    assert [leg.size for leg in it.legs] == [m("100"), m("100")]
    assert [leg.price for leg in it.legs] == [m("0.40"), m("0.50")]
    assert it.cost == m("90") and it.edge == m(100 * D("0.09"))
    (deep,) = SumTo100().on_book(ctx(m("100")), "Y")
    assert deep.legs[0].size == m("105.26") and deep.cost <= m("100")
    s = SumTo100()
    assert s.on_book(ctx(m("0.0089")), "Y") == [] and s.rejected == {"budget": 1}


def test_stale_or_crossed_books_are_refused_and_fresh_ones_accepted() -> None:
    ctx = worked_example()
    ctx.books["N"].updated_ns = T0 - 2_001 * MS
    s = SumTo100(SumTo100Config(max_book_age_ms=2_000))
    assert s.on_book(ctx, "Y") == [] and s.rejected == {"stale": 1}
    ctx.books["N"].updated_ns = T0 - 2_000 * MS  # exactly at the limit is still fresh
    assert len(s.on_book(ctx, "Y")) == 1
    crossed = worked_example()
    crossed.set("Y", [("0.45", "50"), ("0.46", "50")], [("0.47", "10")])
    s2 = SumTo100()
    assert s2.on_book(crossed, "Y") == [] and s2.rejected == {"crossed": 1}
    flagged = worked_example()
    flagged.books["N"].needs_snapshot = True
    assert SumTo100().on_book(flagged, "N") == []


def test_one_intent_per_book_state_and_disabled_returns_nothing() -> None:
    ctx = worked_example()
    s = SumTo100()
    assert len(s.on_timer(ctx)) == 1
    assert s.on_timer(ctx) == [] and s.on_book(ctx, "N") == []
    ctx.now += MS
    ctx.set("N", [("0.48", "100")], [("0.46", "100")])  # a new book state
    assert len(s.on_book(ctx, "N")) == 1
    assert SumTo100(SumTo100Config(enabled=False)).on_timer(worked_example()) == []


def test_no_intent_when_a_leg_book_is_missing_or_the_set_costs_a_dollar() -> None:
    ctx = worked_example()
    del ctx.books["N"]
    assert SumTo100().on_book(ctx, "Y") == []
    fair = Ctx([BIN])
    fair.set("Y", [("0.54", "100")], [("0.52", "100")])
    fair.set("N", [("0.48", "100")], [("0.46", "100")])
    assert SumTo100().on_timer(fair) == []


# -- configuration -----------------------------------------------------------------------------
def test_env_speaks_dollars_and_shares_fields_hold_micros() -> None:
    cfg = SumTo100Config.from_env(
        {
            "SUMTO100_ENABLED": "true",
            "SUMTO100_MIN_EDGE": "0.003",
            "SUMTO100_MIN_LIQUIDITY": "50",
            "SUMTO100_FEE_RATE": "0.01",
            "SUMTO100_PAPER_TRADING": "false",
            "SUMTO100_MAX_BOOK_AGE_MS": "1500",
            "SUMTO100_MAX_SIZE": "250.5",
            "PATH": "/usr/bin",
        }
    )
    assert (cfg.min_edge_micros, cfg.min_liquidity_micros, cfg.fee_rate_micros) == (
        3_000,
        50 * MICROS,
        10_000,
    )
    assert (cfg.enabled, cfg.paper_trading, cfg.max_book_age_ms) == (True, False, 1_500)
    assert cfg.max_size_micros == 250_500_000
    assert SumTo100Config.from_env({}) == SumTo100Config()
    d = SumTo100Config()
    assert (d.min_edge_micros, d.min_liquidity_micros, d.fee_rate_micros, d.paper_trading) == (
        3_000,
        50 * MICROS,
        10_000,
        True,
    )
    assert SumTo100Config.from_mapping({"min_edge_micros": 5_000}).min_edge_micros == 5_000


@pytest.mark.parametrize(
    ("values", "names"),
    [
        ({"SUMTO100_MIN_EDGE": "-0.1"}, ["SUMTO100_MIN_EDGE", "min_edge_micros", "-0.1"]),
        ({"SUMTO100_MIN_EDGE": "abc"}, ["min_edge_micros", "abc"]),
        ({"SUMTO100_MIN_EDGE": "0.0000001"}, ["min_edge_micros", "0.0000001"]),
        ({"SUMTO100_PAPER_TRADING": "maybe"}, ["paper_trading", "maybe"]),
        ({"SUMTO100_MAX_BOOK_AGE_MS": "0"}, ["max_book_age_ms", "SUMTO100_MAX_BOOK_AGE_MS='0'"]),
        ({"SUMTO100_FEE_RATE": "1.5"}, ["fee_rate_micros", "1.5"]),
        ({"min_edge_micros": -5}, ["min_edge_micros", "-5"]),
        ({"SUMTO100_MIN_EDG": "0.1"}, ["SUMTO100_MIN_EDG", "unknown"]),
    ],
)
def test_bad_settings_fail_naming_the_field_and_the_value(
    values: dict[str, object], names: list[str]
) -> None:
    with pytest.raises(ConfigError) as info:
        SumTo100Config.from_mapping(values)
    for n in names:
        assert n in str(info.value)


def test_tunable_fields_carry_sweep_ranges_and_config_is_strict() -> None:
    ranges = sweep_ranges(SumTo100Config)
    assert ranges["min_edge_micros"] == (0, 50_000, 1_000)
    assert set(ranges) == {
        "min_edge_micros",
        "min_liquidity_micros",
        "max_book_age_ms",
        "max_size_micros",
    }
    for low, high, step in ranges.values():
        assert low < high and step > 0
    with pytest.raises(AttributeError):
        SumTo100Config().min_edge_micros = 1  # type: ignore[misc]


# -- a recorded stream, replayed through the registry ------------------------------------------
def frame_book(token: str, market: str, bids: Levels, asks: Levels) -> str:
    lv = lambda xs: [{"price": p, "size": s} for p, s in reversed(xs)]  # noqa: E731
    return json.dumps(
        {"event_type": "book", "asset_id": token, "market": market, "bids": lv(bids),
         "asks": lv(asks), "timestamp": "1", "hash": ""}
    )  # fmt: skip


def frame_change(market: str, entries: list[tuple[str, str, str, str]]) -> str:
    pcs = [{"asset_id": a, "price": p, "side": s, "size": z} for a, p, s, z in entries]
    return json.dumps(
        {"event_type": "price_change", "market": market, "timestamp": "2", "price_changes": pcs}
    )


def test_recorded_stale_leg_and_structural_event_yield_exactly_two_intents(
    tmp_path: Path,
) -> None:
    """Consistent binary books, a 3-outcome neg-risk event under $1 (fee 0.04), then a YES-only
    update whose mirrored NO update arrives 250 µs later."""
    path = tmp_path / "rec.jsonl"
    t_stale, t_heal = T0 + 10 * MS, T0 + 10 * MS + 250_000
    with RecordingWriter(path) as w:
        w.write_meta([BIN, *negrisk(FeeModel.from_rate("0.04"))], T0)
        w.write("market", frame_book("Y", "0xbin", [("0.52", "100")], [("0.54", "100")]), T0 + MS)
        w.write("market", frame_book("N", "0xbin", [("0.46", "100")], [("0.48", "100")]), T0 + MS)
        for i, lv in enumerate(NR_LEGS):
            w.write("market", frame_book(f"y{i}", f"0xm{i}", [], lv), T0 + 5 * MS + i)
        yes = [("Y", "0.52", "BUY", "0"), ("Y", "0.44", "BUY", "100")]
        yes += [("Y", "0.45", "SELL", "50"), ("Y", "0.46", "SELL", "50")]
        w.write("market", frame_change("0xbin", yes), t_stale)
        no = [("N", "0.48", "SELL", "0"), ("N", "0.56", "SELL", "100")]
        no += [("N", "0.55", "BUY", "50"), ("N", "0.54", "BUY", "50")]
        w.write("market", frame_change("0xbin", no), t_heal)
    ctx = Ctx([])
    reg = BookRegistry(ctx.catalog)
    ctx.books = reg.books
    strat = SumTo100()
    got: list[tuple[int, Intent]] = []
    for recv_ns, ev in iter_market_events(path, ctx.catalog):
        reg.apply(ev, recv_ns)
        ctx.now = recv_ns
        if isinstance(ev, Book):
            tokens = {ev.asset_id}
        else:
            assert isinstance(ev, PriceChange) and ev.price_changes is not None
            tokens = {e.asset_id for e in ev.price_changes}
        for tok in sorted(tokens):
            got.extend((recv_ns, it) for it in strat.on_book(ctx, tok))
        got.extend((recv_ns, it) for it in strat.on_timer(ctx))
    assert [(ns, it.group_id) for ns, it in got] == [(T0 + 5 * MS + 2, "ev1"), (t_stale, "0xbin")]
    nr, binary = got[0][1], got[1][1]
    assert nr.legs[0].size == m("100")
    assert nr.edge == m(ref_edge(NR_LEGS, D(100), D("0.04")))
    per_set = (D("0.45") * 50 + D("0.46") * 50) / 100 + D("0.48") + D("0.01")
    assert binary.edge == m((1 - per_set) * 100) and binary.legs[0].size == m(100)
    assert [(leg.token_id, leg.price) for leg in binary.legs] == [
        ("Y", m("0.46")),
        ("N", m("0.48")),
    ]

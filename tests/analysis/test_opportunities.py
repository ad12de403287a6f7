"""Sum deviation analyzer: exact set prices through the depth, sizes, windows, frames.

Expected answers are computed here in ``Decimal`` from the level lists, never by the code
under test.
"""

from __future__ import annotations

import json
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from pathlib import Path

import msgspec
import pytest
from fixture_data import write_capture

from polylab.analysis.opportunities import (
    DepthWindow,
    Opportunity,
    OpportunityTracker,
    SumAnalyzer,
    opportunities_frame,
    windows_frame,
)
from polylab.analysis.replay import iter_market_events
from polylab.analysis.set_cost import GroupIndex, best_set, quote_set
from polylab.book.l2 import L2Book
from polylab.book.registry import BookRegistry
from polylab.feed.recording import RecordingWriter
from polylab.fees import FeeModel
from polylab.market import Market, MarketCatalog
from polylab.money import MICROS, tick_size

D = Decimal
T0 = 1_700_000_000_000_000_000
MS = 1_000_000
Levels = list[tuple[str, str]]  # (price, shares) text, best first
FALLBACK = Decimal("0.01")  # SUMTO100_FEE_RATE default: 1 % of the $1 payout per set


# -- independent reference (Decimal) -----------------------------------------------------------
def up(x: Decimal, places: int) -> Decimal:
    return x.quantize(D(1).scaleb(-places), rounding=ROUND_CEILING)


def down(x: Decimal, places: int) -> Decimal:
    return x.quantize(D(1).scaleb(-places), rounding=ROUND_FLOOR)


def ref_quote(
    legs: list[Levels],
    size: Decimal,
    rates: list[Decimal | None],
    fallback: Decimal = FALLBACK,
    buy: bool = True,
    exponent: int = 1,
) -> tuple[Decimal, Decimal] | None:
    """(cash, fees) of ``size`` sets in dollars: each leg walked best first, its cash rounded
    to 1e-6 against us and its fee ``Σ take·r·(p(1−p))^e`` up to 1e-5; legs without a rate
    share ``fallback`` per set pro rata. None when a leg is too thin."""
    cash = fees = D(0)
    for levels, r in zip(legs, rates, strict=True):
        left, c, f = size, D(0), D(0)
        for p_text, s_text in levels:
            p, s = D(p_text), D(s_text)
            take = min(left, s)
            c += take * p
            if r is not None:
                lf = take * r * (p * (1 - p)) ** exponent
                # analysis.vwap rounds each level's fee when exponent ≠ 1, the leg's sum when 1
                f += lf if exponent == 1 else up(lf, 5)
            left -= take
            if left == 0:
                break
        if left > 0:
            return None
        cash += up(c, 6) if buy else down(c, 6)
        fees += up(f, 5)
    k = sum(r is None for r in rates)
    if k:
        fees += up(size * fallback * k / len(legs), 5)
    return cash, fees


def ref_edge(
    legs: list[Levels], size: Decimal, rates: list[Decimal | None], **kw: object
) -> Decimal:
    q = ref_quote(legs, size, rates, **kw)  # type: ignore[arg-type]
    assert q is not None
    buy = kw.get("buy", True)
    return size - q[0] - q[1] if buy else q[0] - q[1] - size


def micros(x: Decimal) -> int:
    v = x * MICROS
    assert v == v.to_integral_value()
    return int(v)


# -- fixtures ----------------------------------------------------------------------------------
def make_book(token: str, bids: Levels = (), asks: Levels = (), grid: str = "0.01") -> L2Book:  # type: ignore[assignment]
    g = tick_size(grid)
    b = L2Book(token, g)
    b.load(
        [(g.to_ticks(p), micros(D(s))) for p, s in bids],
        [(g.to_ticks(p), micros(D(s))) for p, s in asks],
    )
    return b


BIN = Market(condition_id="0xbin", token_ids=("Y", "N"), question="Will it?")
FEE4 = FeeModel.from_rate("0.04")


def negrisk(fee: FeeModel | None = FEE4, n: int = 3, min_order: str = "5") -> list[Market]:
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


EXAMPLE_YES: Levels = [("0.45", "50"), ("0.46", "50")]
EXAMPLE_NO: Levels = [("0.48", "100")]
NR_LEGS: list[Levels] = [
    [("0.30", "500")],
    [("0.30", "100"), ("0.40", "400")],
    [("0.32", "500")],
]


def example_books() -> dict[str, L2Book]:
    return {
        "Y": make_book("Y", [("0.44", "100")], EXAMPLE_YES),
        "N": make_book("N", [("0.46", "100")], EXAMPLE_NO),
    }


def nr_books() -> dict[str, L2Book]:
    return {f"y{i}": make_book(f"y{i}", [], lv) for i, lv in enumerate(NR_LEGS)}


# -- quote_set / best_set ----------------------------------------------------------------------
def test_spec_worked_example_costs_0_945_per_set_and_earns_5_5_percent() -> None:
    cat = MarketCatalog([BIN])
    (legs,) = GroupIndex(cat).groups
    q = quote_set(legs, example_books(), "buy", 100 * MICROS)
    assert q is not None
    vwap_yes = (D("0.45") * 50 + D("0.46") * 50) / 100
    assert vwap_yes == D("0.455")
    total = vwap_yes + D("0.48") + D("0.01")  # flat 1 % of the $1 payout, once per set
    assert total == D("0.945")
    assert q.cost == micros((vwap_yes + D("0.48")) * 100) and q.fees == micros(D("0.01") * 100)
    assert q.edge == micros((1 - total) * 100) and q.edge_per_set == micros(1 - total)
    assert [v.worst_price for v in q.legs] == [460_000, 480_000]


def test_quote_is_none_when_a_leg_is_too_thin_or_missing() -> None:
    cat = MarketCatalog([BIN])
    (legs,) = GroupIndex(cat).groups
    books = example_books()
    assert quote_set(legs, books, "buy", 100 * MICROS + 10_000) is None  # NO has 100 shares
    del books["N"]
    assert quote_set(legs, books, "buy", MICROS) is None


@pytest.mark.parametrize("shares", ["10", "100", "150.5", "203.6", "500"])
def test_negrisk_quote_matches_the_decimal_reference_with_fee_schedules(shares: str) -> None:
    (legs,) = [g for g in GroupIndex(MarketCatalog(negrisk())).groups if g.group.kind == "negrisk"]
    q = quote_set(legs, nr_books(), "buy", micros(D(shares)))
    ref = ref_quote(NR_LEGS, D(shares), [D("0.04")] * 3)
    assert q is not None and ref is not None
    assert (q.cost, q.fees) == (micros(ref[0]), micros(ref[1]))


@pytest.mark.parametrize(
    ("grid", "levels", "fee", "exponent"),
    [
        # sparse levels on a fine grid: the walk gives up on the tick array, the ladder finishes
        (
            "0.001",
            [("0.101", "300"), ("0.201", "300"), ("0.301", "300"), ("0.401", "300")],
            "0.07",
            1,
        ),
        ("0.0001", [("0.1234", "0.5"), ("0.2", "999.5"), ("0.9", "10")], "0.03", 1),
        # the 2026-01 fee form r·(p(1−p))²: only analysis.vwap charges it
        ("0.01", [("0.45", "50"), ("0.46", "50"), ("0.5", "1000")], "0.25", 2),
        ("0.01", [("0.45", "50"), ("0.46", "50"), ("0.5", "1000")], None, 1),
    ],
)
@pytest.mark.parametrize("buy", [True, False])
def test_every_walk_path_matches_the_reference(
    grid: str, levels: Levels, fee: str | None, exponent: int, buy: bool
) -> None:
    fm = FeeModel.from_rate(fee, exponent) if fee is not None else None
    markets = negrisk(fee=fm, n=2)
    (gl,) = [g for g in GroupIndex(MarketCatalog(markets)).groups if g.group.kind == "negrisk"]
    other: Levels = [("0.1", "2000")] if buy else [("0.9", "2000")]
    side_levels = levels if buy else levels[::-1]  # bids best (highest) first
    books = {
        "y0": make_book("y0", [] if buy else side_levels, side_levels if buy else [], grid),
        "y1": make_book("y1", [] if buy else other, other if buy else [], grid),
    }
    rate = D(fee) if fee is not None else None
    for shares in ("0.5", "250", "700", "1000"):
        q = quote_set(gl, books, "buy" if buy else "sell", micros(D(shares)))
        ref = ref_quote([side_levels, other], D(shares), [rate, rate], buy=buy, exponent=exponent)
        assert q is not None and ref is not None
        assert (q.cost, q.fees) == (micros(ref[0]), micros(ref[1])), shares
    too_many = sum(D(s) for _, s in levels) + D("0.01")
    assert quote_set(gl, books, "buy" if buy else "sell", micros(too_many)) is None


def test_best_set_stops_where_the_next_set_loses_money() -> None:
    """Neg-risk, fee rate 0.04: each of the first 100 sets costs 0.92 + 0.025504 in fees; past
    100, B's 0.40 level makes every extra set cost 1.02 + fees and lose money. The size is 100
    (the average-edge rule bought 203.60 sets and gave back part of the profit)."""
    (legs,) = [g for g in GroupIndex(MarketCatalog(negrisk())).groups if g.group.kind == "negrisk"]
    rates: list[Decimal | None] = [D("0.04")] * 3
    fee = sum(D("0.04") * p * (1 - p) for p in (D("0.30"), D("0.30"), D("0.32")))
    assert 1 - D("0.92") - fee == D("0.054496")  # the marginal set up to 100: clears 0.003
    assert 1 - D("1.02") < 0  # the marginal set after 100 loses even before fees
    q = best_set(legs, nr_books(), "buy", min_edge_micros=3_000)
    assert q is not None and q.size == 100 * MICROS
    assert q.edge == micros(ref_edge(NR_LEGS, D(100), rates))
    assert ref_edge(NR_LEGS, D(100), rates) > ref_edge(NR_LEGS, D("203.60"), rates)
    # min edge 0 changes nothing: the 101st set loses money whatever the minimum
    z = best_set(legs, nr_books(), "buy", min_edge_micros=0)
    assert z is not None and z.size == 100 * MICROS
    # a minimum above the first sets' marginal edge: nothing
    assert best_set(legs, nr_books(), "buy", min_edge_micros=54_497) is None
    assert best_set(legs, nr_books(), "buy", min_edge_micros=54_496) is not None
    # the cap wins when smaller
    c = best_set(legs, nr_books(), "buy", min_edge_micros=3_000, cap_micros=micros(D("60.5")))
    assert c is not None and c.size == micros(D("60.5"))


def test_best_set_is_depth_limited_in_the_worked_example() -> None:
    (legs,) = GroupIndex(MarketCatalog([BIN])).groups
    q = best_set(legs, example_books(), "buy", min_edge_micros=3_000)
    assert q is not None and q.size == 100 * MICROS and q.edge == 5_500_000


def test_sell_side_set_when_bids_sum_above_one() -> None:
    cat = MarketCatalog(negrisk(fee=None))
    books = {
        "y0": make_book("y0", [("0.40", "30"), ("0.38", "100")]),
        "y1": make_book("y1", [("0.35", "100")]),
        "y2": make_book("y2", [("0.30", "100")]),
    }
    (legs,) = [g for g in GroupIndex(cat).groups if g.group.kind == "negrisk"]
    bid_legs: list[Levels] = [
        [("0.40", "30"), ("0.38", "100")],
        [("0.35", "100")],
        [("0.30", "100")],
    ]
    q = quote_set(legs, books, "sell", 50 * MICROS)
    ref = ref_quote(bid_legs, D(50), [None] * 3, buy=False)
    assert q is not None and ref is not None
    assert (q.cost, q.fees) == (micros(ref[0]), micros(ref[1]))
    assert q.edge == micros(ref[0] - ref[1] - 50) > 0
    # 1.05 → 1.03 per set minus 0.01 fallback: positive all the way to the 100-share depth
    top = best_set(legs, books, "sell")
    assert top is not None and top.size == 100 * MICROS
    assert top.edge == micros(ref_edge(bid_legs, D(100), [None] * 3, buy=False))


# -- analyzer ----------------------------------------------------------------------------------
def test_scan_lists_every_profitable_size_best_edge_first() -> None:
    cat = MarketCatalog([BIN, *negrisk()])
    books = {**example_books(), **nr_books()}
    opps = SumAnalyzer(cat, books).scan(T0)
    got = [(o.group, o.kind, o.label, o.side, o.size // MICROS) for o in opps]
    # binary: 10, 50, 100 fill (NO has 100); neg-risk: 10, 50, 100 profitable, 500 fills but
    # loses (B's 0.40 level), 1000 cannot fill
    want_edges = {
        ("0xbin", 10): ref_edge([EXAMPLE_YES, EXAMPLE_NO], D(10), [None, None]),
        ("0xbin", 50): ref_edge([EXAMPLE_YES, EXAMPLE_NO], D(50), [None, None]),
        ("0xbin", 100): ref_edge([EXAMPLE_YES, EXAMPLE_NO], D(100), [None, None]),
        ("ev1", 10): ref_edge(NR_LEGS, D(10), [D("0.04")] * 3),
        ("ev1", 50): ref_edge(NR_LEGS, D(50), [D("0.04")] * 3),
        ("ev1", 100): ref_edge(NR_LEGS, D(100), [D("0.04")] * 3),
    }
    assert ref_edge(NR_LEGS, D(500), [D("0.04")] * 3) < 0
    assert sorted(got) == sorted(
        (
            g,
            "binary" if g == "0xbin" else "negrisk",
            "stale_leg" if g == "0xbin" else "structural",
            "buy",
            n,
        )
        for g, n in want_edges
    )
    assert [o.edge for o in opps] == sorted((micros(e) for e in want_edges.values()), reverse=True)
    for o in opps:
        assert o.edge == micros(want_edges[(o.group, o.size // MICROS)])
        assert o.detected_ns == T0
        assert o.edge_per_set == o.edge * MICROS // o.size
    bin100 = next(o for o in opps if o.group == "0xbin" and o.size == 100 * MICROS)
    assert bin100.vwaps == (455_000, 480_000) and bin100.worst_prices == (460_000, 480_000)
    assert bin100.tokens == ("Y", "N") and bin100.max_size == 100 * MICROS
    assert (bin100.cost, bin100.fees, bin100.edge) == (93_500_000, 1_000_000, 5_500_000)


def test_scan_with_no_minimum_shows_losing_sizes_and_threshold_filters() -> None:
    cat = MarketCatalog(negrisk())
    an = SumAnalyzer(cat, nr_books(), sides=("buy",))
    everything = an.scan(T0, min_edge_micros=None)
    assert sorted(o.size // MICROS for o in everything) == [10, 50, 100, 500]
    assert min(o.edge for o in everything) < 0
    per_set_10 = ref_edge(NR_LEGS, D(10), [D("0.04")] * 3) / 10
    above = an.scan(T0, min_edge_micros=micros(per_set_10) + 1)
    assert above == []  # no size earns more per set than the first 10
    assert len(an.scan(T0, min_edge_micros=micros(per_set_10))) >= 1


def test_consistent_mirrored_books_show_no_opportunity() -> None:
    books = {
        "Y": make_book("Y", [("0.52", "100")], [("0.54", "100")]),
        "N": make_book("N", [("0.46", "100")], [("0.48", "100")]),
    }
    assert SumAnalyzer(MarketCatalog([BIN]), books).scan(T0) == []


def test_frames_have_one_row_per_item_and_int_money_columns() -> None:
    opps = SumAnalyzer(MarketCatalog([BIN]), example_books()).scan(T0)
    df = opportunities_frame(opps)
    assert df.height == 3 and df["edge"].to_list() == [o.edge for o in opps]
    assert df["vwaps"].to_list()[0] == list(opps[0].vwaps)
    assert opportunities_frame([]).height == 0
    w = DepthWindow(
        group="g",
        kind="binary",
        label="stale_leg",
        side="buy",
        size=MICROS,
        start_ns=T0,
        end_ns=T0 + 250_000,
        best_edge=5,
        best_edge_per_set=5,
        updates=2,
    )
    wf = windows_frame([w])
    assert wf["duration_ns"].to_list() == [250_000] and wf["duration_ms"].to_list() == [0.25]
    assert windows_frame([]).height == 0


# -- recording → registry → analyzer / tracker -------------------------------------------------
def book_frame(token: str, market: str, bids: Levels, asks: Levels, ts: int) -> str:
    lv = lambda xs: [{"price": p, "size": s} for p, s in xs]  # noqa: E731
    return json.dumps(
        {
            "event_type": "book",
            "asset_id": token,
            "market": market,
            "bids": lv(bids[::-1]),  # best-last, as the venue sends
            "asks": lv(asks[::-1]),
            "timestamp": str(ts),
            "hash": "",
        }
    )


def change_frame(market: str, entries: list[tuple[str, str, str, str]], ts: int) -> str:
    return json.dumps(
        {
            "event_type": "price_change",
            "market": market,
            "timestamp": str(ts),
            "price_changes": [
                {"asset_id": a, "price": p, "size": s, "side": side} for a, p, side, s in entries
            ],
        }
    )


def write_scenario(path: Path) -> dict[str, int]:
    """A binary pair that goes stale-leg for 250 µs and a 3-outcome neg-risk event priced
    under $1 throughout. Returns the receive times of the key frames."""
    t = {
        "books": T0 + 1 * MS,
        "nr": T0 + 5 * MS,
        "stale": T0 + 10 * MS,
        "heal": T0 + 10 * MS + 250_000,
        "end": T0 + 20 * MS,
    }
    with RecordingWriter(path) as w:
        w.write_meta([BIN, *negrisk()], T0)
        w.write(
            "market", book_frame("Y", "0xbin", [("0.52", "100")], [("0.54", "100")], 1), t["books"]
        )
        w.write(
            "market", book_frame("N", "0xbin", [("0.46", "100")], [("0.48", "100")], 1), t["books"]
        )
        for i, lv in enumerate(NR_LEGS):
            w.write("market", book_frame(f"y{i}", f"0xm{i}", [("0.2", "10")], lv, 2), t["nr"] + i)
        # YES moves; the mirrored NO entries arrive 250 µs later (the stale-leg window)
        yes = [("Y", "0.52", "BUY", "0"), ("Y", "0.44", "BUY", "100")]
        yes += [("Y", "0.45", "SELL", "50"), ("Y", "0.46", "SELL", "50")]
        w.write("market", change_frame("0xbin", yes, 3), t["stale"])
        no = [("N", "0.48", "SELL", "0"), ("N", "0.56", "SELL", "100")]
        no += [("N", "0.55", "BUY", "50"), ("N", "0.54", "BUY", "50")]
        w.write("market", change_frame("0xbin", no, 3), t["heal"])
    return t


def test_recording_drives_analyzer_and_tracker_to_the_known_windows(tmp_path: Path) -> None:
    path = tmp_path / "scenario.jsonl"
    t = write_scenario(path)
    cat = MarketCatalog()
    reg = BookRegistry(cat)
    tracker = OpportunityTracker(cat, reg.books, size_micros=100 * MICROS)
    analyzer = SumAnalyzer(cat, reg.books)
    seen: dict[int, list[Opportunity]] = {}
    for recv_ns, ev in iter_market_events(path, cat):
        reg.apply(ev, recv_ns)
        tracker.on_market(ev.market, recv_ns)  # type: ignore[union-attr]
        seen[recv_ns] = analyzer.scan(recv_ns)
    windows = tracker.finish(t["end"])
    # during the stale leg: exactly the worked example (binary) plus the neg-risk rows
    during = seen[t["stale"]]
    binary = [(o.size // MICROS, o.edge) for o in during if o.kind == "binary"]
    assert sorted(binary) == [
        (n, micros(ref_edge([EXAMPLE_YES, EXAMPLE_NO], D(n), [None, None]))) for n in (10, 50, 100)
    ]
    structural = sorted((o.size // MICROS, o.edge) for o in during if o.kind == "negrisk")
    assert structural == [
        (n, micros(ref_edge(NR_LEGS, D(n), [D("0.04")] * 3))) for n in (10, 50, 100)
    ]
    # once the NO side caught up, the pair is consistent again (Σ asks 0.45 + 0.56)
    assert [o.kind for o in seen[t["heal"]]] == ["negrisk"] * 3
    # windows at 100 sets: the binary one lasted exactly the 250 µs of staleness
    by_kind = {w.kind: w for w in windows}
    assert set(by_kind) == {"binary", "negrisk"}
    b = by_kind["binary"]
    assert (b.label, b.side, b.start_ns, b.end_ns, b.duration_ns) == (
        "stale_leg",
        "buy",
        t["stale"],
        t["heal"],
        250_000,
    )
    assert b.best_edge == 5_500_000 and b.best_edge_per_set == 55_000 and b.updates == 1
    n = by_kind["negrisk"]
    assert (n.label, n.start_ns, n.end_ns) == ("structural", t["nr"] + 2, t["end"])
    assert n.best_edge == micros(ref_edge(NR_LEGS, D(100), [D("0.04")] * 3))


def test_real_capture_has_no_depth_aware_window(shared_fixtures: Path, tmp_path: Path) -> None:
    """The 2026-09-24 capture's binary books stay mirrored: buying both sides always costs
    ≥ $1.01 per set, at any size, even fee-free."""
    rec = write_capture(shared_fixtures, tmp_path / "cap.jsonl")
    cat = MarketCatalog()
    reg = BookRegistry(cat)
    tracker = OpportunityTracker(cat, reg.books, size_micros=10 * MICROS, fallback_fee_micros=0)
    last = 0
    for recv_ns, ev in iter_market_events(rec, cat):
        reg.apply(ev, recv_ns)
        tracker.on_market(ev.market, recv_ns)  # type: ignore[union-attr]
        last = recv_ns
    assert tracker.checks > 100
    assert tracker.finish(last) == []
    rows = SumAnalyzer(cat, reg.books, sizes=(MICROS, 10 * MICROS), fallback_fee_micros=0).scan(
        last, min_edge_micros=None
    )
    buys = [o for o in rows if o.side == "buy"]
    assert len({o.group for o in buys}) >= 10
    assert all(o.edge_per_set <= -10_000 for o in buys)


def test_opportunity_round_trips_through_msgspec_json() -> None:
    (o, *_) = SumAnalyzer(MarketCatalog([BIN]), example_books()).scan(T0)
    assert msgspec.json.decode(msgspec.json.encode(o), type=Opportunity) == o

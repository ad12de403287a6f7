"""How many sets ``best_set`` buys (or sells): the size that earns the most while every set in
it clears the minimum edge, found by the marginal rule. Expected sizes and profits are worked
out here, by hand or by an independent reference that walks the books 0.01 share at a time.
"""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

from hypothesis import given, settings
from hypothesis import strategies as st

from polylab.analysis.set_cost import (
    GroupIndex,
    GroupLegs,
    best_set,
    limit_cost,
    marginal_clears,
)
from polylab.book.l2 import L2Book
from polylab.fees import FeeModel
from polylab.market import Market, MarketCatalog
from polylab.money import MICROS, tick_size

D = Decimal
STEP = 10_000  # 0.01 share, share micros
FB = 10_000  # fallback fee: 0.01 per set where no schedule is published


def m(x: Decimal | str | int) -> int:
    v = D(x) * MICROS
    assert v == v.to_integral_value()
    return int(v)


def book(token: str, grid: str, levels: list[tuple[int, int]], buy: bool) -> L2Book:
    """A book with ``(price micros, size micros)`` levels on the ask side (buy) or bid side."""
    g = tick_size(grid)
    b = L2Book(token, g)
    lv = [(p // g.micros, s) for p, s in levels]
    b.load([] if buy else lv, lv if buy else [])
    return b


def event(rates: list[int | None]) -> tuple[GroupLegs, list[str]]:
    """A neg-risk event of one market per leg; ``None``: no published schedule (fallback)."""
    markets = [
        Market(condition_id=f"0xm{i}", token_ids=(f"y{i}", f"n{i}"), neg_risk=True,
               event_id="ev", fee=None if r is None else FeeModel(rate_micros=r))
        for i, r in enumerate(rates)
    ]  # fmt: skip
    (gl,) = [g for g in GroupIndex(MarketCatalog(markets)).groups if g.group.kind == "negrisk"]
    return gl, [f"y{i}" for i in range(len(rates))]


# -- the issue's example ----------------------------------------------------------------------
def test_issue_example_buys_exactly_the_50_sets_that_earn() -> None:
    """YES asks 50 @ 0.40 and 50 @ 0.70, NO ask 100 @ 0.50, flat fee 0.01 per set: each of the
    first 50 sets earns 0.09, each further one loses 0.21. The average rule bought 70.42 sets
    (profit 0.21); the marginal rule buys 50 for a profit of exactly 4.50."""
    (gl,) = GroupIndex(MarketCatalog([Market(condition_id="0xb", token_ids=("Y", "N"))])).groups
    books = {
        "Y": book("Y", "0.01", [(m("0.40"), m(50)), (m("0.70"), m(50))], buy=True),
        "N": book("N", "0.01", [(m("0.50"), m(100))], buy=True),
    }
    q = best_set(gl, books, "buy", min_edge_micros=3_000)
    assert q is not None and q.size == 50 * MICROS
    assert q.edge == m(50 * (1 - D("0.40") - D("0.50") - D("0.01"))) == 4_500_000
    assert [v.worst_price for v in q.legs] == [m("0.40"), m("0.50")]
    # the 70.42 sets of the average rule: positive on average, less profit
    worse = 50 * D("0.09") - (D("70.42") - 50) * D("0.21")
    assert 0 < worse < D("4.50")
    # whatever the minimum (≤ 0.09), the 51st set is never bought
    for me in (0, 1_000, 90_000):
        r = best_set(gl, books, "buy", min_edge_micros=me)
        assert r is not None and r.size == 50 * MICROS
    assert best_set(gl, books, "buy", min_edge_micros=90_001) is None


# -- sell side and N outcomes -----------------------------------------------------------------
def test_sell_side_stops_where_the_next_set_fetches_too_little() -> None:
    """Three outcomes, no schedules (0.01 per set pro rata): bids 50 @ 0.50 then 100 @ 0.20 on
    the first leg, 100 @ 0.30 on the others. The first 50 sets fetch 1.10 − 0.01 = 0.09 over
    the $1 they cost; every further set fetches 0.80 and loses 0.21. Sell 50, earn 4.50."""
    gl, toks = event([None, None, None])
    books = {
        toks[0]: book(toks[0], "0.01", [(m("0.50"), m(50)), (m("0.20"), m(100))], buy=False),
        toks[1]: book(toks[1], "0.01", [(m("0.30"), m(100))], buy=False),
        toks[2]: book(toks[2], "0.01", [(m("0.30"), m(100))], buy=False),
    }
    q = best_set(gl, books, "sell", min_edge_micros=3_000)
    assert q is not None and q.size == 50 * MICROS
    assert q.edge == m(50 * (D("1.10") - 1 - D("0.01"))) == 4_500_000
    assert best_set(gl, books, "buy") is None  # no asks at all


def test_three_outcomes_with_mixed_fees_stop_at_the_losing_level() -> None:
    """Legs 1 and 2 publish 0.07, leg 3 none (its third of 0.01 per set). Asks: 0.30 × 40 then
    0.36 × 100; 0.25 × 100; 0.33 × 100. First 40 sets: 0.88 + fees 0.07·(0.21 + 0.1875) + 0.01/3
    = 0.9112… per set, earns; from 40 on: 0.94 + 0.07·(0.2304 + 0.1875) + 0.01/3 > 0.97, so
    the marginal set clears a 0.02 minimum but not 0.03."""
    gl, toks = event([70_000, 70_000, None])
    asks = [
        [(m("0.30"), m(40)), (m("0.36"), m(100))],
        [(m("0.25"), m(100))],
        [(m("0.33"), m(100))],
    ]
    books = {t: book(t, "0.01", lv, buy=True) for t, lv in zip(toks, asks, strict=True)}
    deep = 1 - D("0.94") - D("0.07") * (D("0.2304") + D("0.1875"))  # before the fallback
    assert Fraction(deep) - Fraction(1, 300) > Fraction(2, 100)  # clears 0.02
    assert Fraction(deep) - Fraction(1, 300) < Fraction(3, 100)  # not 0.03
    q2 = best_set(gl, books, "buy", min_edge_micros=20_000)
    q3 = best_set(gl, books, "buy", min_edge_micros=30_000)
    assert q2 is not None and q2.size == 100 * MICROS  # depth of legs 2 and 3
    assert q3 is not None and q3.size == 40 * MICROS
    assert q2.edge > q3.edge
    assert [v.worst_price for v in q3.legs] == [m("0.30"), m("0.25"), m("0.33")]
    # the same rule at given prices, as Clipper reads it
    assert marginal_clears(gl, [m("0.36"), m("0.25"), m("0.33")], True, 20_000, FB)
    assert not marginal_clears(gl, [m("0.36"), m("0.25"), m("0.33")], True, 30_000, FB)


def test_budget_binds_at_the_cheaper_level_and_fits_exactly() -> None:
    """YES 100 @ 0.40 then 100 @ 0.45, NO 300 @ 0.50, budget $92 at limit prices. The first 100
    sets cost 0.90 each at their limits ($90 ≤ $92); a 101st would raise YES's limit to 0.45 and
    the limit cash to 0.95 × 100.01 > $92. So 100 sets (the old cap, $92 / 0.95 = 96.84 sets
    at the deep limit, left 3.16 profitable sets unbought)."""
    (gl,) = GroupIndex(MarketCatalog([Market(condition_id="0xb", token_ids=("Y", "N"))])).groups
    books = {
        "Y": book("Y", "0.01", [(m("0.40"), m(100)), (m("0.45"), m(100))], buy=True),
        "N": book("N", "0.01", [(m("0.50"), m(300))], buy=True),
    }
    free = best_set(gl, books, "buy", min_edge_micros=3_000)
    assert free is not None and free.size == 200 * MICROS  # 0.04 per deep set still clears
    q = best_set(gl, books, "buy", min_edge_micros=3_000, budget_micros=92 * MICROS)
    assert q is not None and q.size == 100 * MICROS and q.edge == m(100 * D("0.09"))
    # inside the deep level the budget is met to the 0.01 share: $100 → 105.26 sets
    r = best_set(gl, books, "buy", min_edge_micros=3_000, budget_micros=100 * MICROS)
    assert r is not None and r.size == m("105.26")
    assert m("105.26") * 95 // 100 <= 100 * MICROS < m("105.27") * 95 // 100
    # the budget is cash at the limit prices: $0.0089 is less than 0.01 set at 0.90
    assert best_set(gl, books, "buy", budget_micros=m("0.0089")) is None


# -- property: no other size on the 0.01 grid earns more -------------------------------------
Level = tuple[int, int]  # (price micros, size micros)


def ceil_div(a: int, b: int) -> int:
    return (a + b - 1) // b


def reference(
    legs: list[list[Level]],
    rates: list[int | None],
    buy: bool,
    min_edge: int,
    cap: int | None,
) -> tuple[list[bool], list[Fraction], list[int], list[int]]:
    """Walk 0.01 share at a time. For step j (size (j+1)·0.01): does the marginal set, i.e.
    this step, earn > 0 and ≥ ``min_edge`` per set; the fair profit (no rounding) of the size,
    dollars; the exact quote's edge, micros (cash rounded to 1e-6 against us, each leg's fee
    Σ r·p(1−p)·take rounded up to 1e-5, the fallback likewise); the cash at the legs' limit
    (worst) prices, Σ ⌈p·size⌉ micros, as the risk gate counts it."""
    n = len(legs)
    k = sum(r is None for r in rates)
    depth = min(sum(s for _, s in lv) for lv in legs)
    if cap is not None:
        depth = min(depth, cap)
    idx, left = [0] * n, [lv[0][1] for lv in legs]
    cash, fee = [0] * n, [0] * n  # price micros × share micros; rate × p(1-p) × share micros
    ok: list[bool] = []
    fair: list[Fraction] = []
    exact: list[int] = []
    limit: list[int] = []
    profit = Fraction(0)
    size = 0
    while size + STEP <= depth:
        per_set = Fraction(0)
        worst = []
        for i, lv in enumerate(legs):
            if not left[i]:
                idx[i] += 1
                left[i] = lv[idx[i]][1]
            p = lv[idx[i]][0]
            worst.append(p)
            take = min(STEP, left[i])  # sizes are whole 0.01 shares here
            left[i] -= take
            cash[i] += p * take
            r = rates[i] or 0
            fee[i] += r * p * (MICROS - p) * take
            price = Fraction(p, MICROS)
            unit_fee = Fraction(r, MICROS) * price * (1 - price)
            per_set += price + unit_fee if buy else price - unit_fee
        margin = (1 - per_set if buy else per_set - 1) - Fraction(FB * k, MICROS * n)
        size += STEP
        ok.append(margin > 0 and margin >= Fraction(min_edge, MICROS))
        profit += margin * Fraction(STEP, MICROS)
        fair.append(profit)
        c = sum(ceil_div(x, MICROS) if buy else x // MICROS for x in cash)
        f = sum(ceil_div(ceil_div(x, MICROS**3), 10) * 10 for x in fee)
        if k:
            f += ceil_div(ceil_div(size * FB * k, MICROS * n), 10) * 10
        exact.append(size - c - f if buy else c - f - size)
        limit.append(sum(ceil_div(p * size, MICROS) for p in worst))
    return ok, fair, exact, limit


@st.composite
def books_st(draw: st.DrawFn) -> tuple[str, list[list[Level]]]:
    grid = draw(st.sampled_from(["0.01", "0.001"]))
    n_ticks = 100 if grid == "0.01" else 1000
    tm = MICROS // n_ticks
    n = draw(st.integers(2, 4))
    legs = []
    for _ in range(n):
        raw = draw(
            st.dictionaries(
                st.integers(1, n_ticks - 1), st.integers(1, 1500), min_size=1, max_size=4
            )
        )
        legs.append([(t * tm, s * STEP) for t, s in raw.items()])
    return grid, legs


@settings(max_examples=120, deadline=None)
@given(
    drawn=books_st(),
    buy=st.booleans(),
    fee_choice=st.lists(st.sampled_from([None, 0, 30_000, 70_000]), min_size=4, max_size=4),
    min_edge=st.sampled_from([0, 1_000, 3_000, 20_000]),
    cap=st.none() | st.integers(1, 4000).map(lambda h: h * STEP),
    budget=st.none() | st.integers(1, 20_000).map(lambda c: c * STEP),
)
def test_chosen_size_earns_at_least_as_much_as_every_size_the_rule_allows(
    drawn: tuple[str, list[list[Level]]],
    buy: bool,
    fee_choice: list[int | None],
    min_edge: int,
    cap: int | None,
    budget: int | None,
) -> None:
    """Random books of 2–4 legs on 0.01 or 0.001 grids, fee schedules or the fallback, either
    side: every size the rule allows (each of its sets clears the minimum) earns no more than
    the chosen one, which is the largest such size (profit still rising up to it); the chosen
    size's own last set clears the minimum; its average clears it too; and its quote is the
    exact reference. Buying with a budget, the sizes allowed are also those whose cash at their
    limit prices fits it. The exact quote rounds each leg's fee up to 1e-5, so against other sizes
    it may differ from the fair profit by that rounding (≤ 10 micros a leg)."""
    grid, raw = drawn
    n = len(raw)
    rates = fee_choice[:n]
    legs = [sorted(lv, reverse=not buy) for lv in raw]  # best first
    gl, toks = event(rates)
    books = {t: book(t, grid, lv, buy) for t, lv in zip(toks, legs, strict=True)}
    side = "buy" if buy else "sell"
    q = best_set(gl, books, side, min_edge_micros=min_edge, cap_micros=cap, budget_micros=budget)
    ok, fair, exact, limit = reference(legs, rates, buy, min_edge, cap)
    fits = [not buy or budget is None or c <= budget for c in limit]
    allowed = 0  # steps allowed: every set up to there clears the rule, and the cash fits
    while allowed < len(ok) and ok[allowed] and fits[allowed]:
        allowed += 1
    if q is None:
        assert allowed == 0 or exact[allowed - 1] <= 0
        return
    j = q.size // STEP - 1
    assert q.size % STEP == 0 and 0 <= j < len(ok)
    assert ok[j], "the chosen size's last set fails the rule"
    assert fits[j] and limit_cost(q) == limit[j]
    assert j == allowed - 1, "stopped while the next set still cleared the rule"
    assert q.edge == exact[j] > 0
    assert fair[j] >= Fraction(min_edge, MICROS) * Fraction(q.size, MICROS)  # the average
    tol = 10 * sum(1 for r in rates if r) + (10 if None in rates else 0)
    for i in range(allowed):
        assert fair[j] >= fair[i], f"{(i + 1) * STEP} earns more than {q.size}"
        assert exact[j] >= exact[i] - tol

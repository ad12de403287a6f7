"""Paper execution: latency, depth walk, FOK/FAK, fees, shadow liquidity, leg risk, and the
portfolio that books its results (nothing lost, nothing double-counted)."""

from __future__ import annotations

from fractions import Fraction
from typing import Literal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from polylab.book.l2 import L2Book
from polylab.domain import ExecutionResult, Intent, Leg
from polylab.execution.base import Executor
from polylab.execution.paper import PaperConfig, PaperTrader
from polylab.fees import FeeModel
from polylab.market import Market, MarketCatalog, OutcomeGroup
from polylab.money import MICROS, parse_micros, tick_size
from polylab.risk.portfolio import Portfolio

S = MICROS
MS = 1_000_000
Y, N = "y1", "n1"  # market m1: fee 0.07
Y2, N2 = "y2", "n2"  # market m2: no published schedule
FEE = FeeModel.from_rate("0.07")
CAT = MarketCatalog(
    [
        Market(condition_id="m1", token_ids=(Y, N), fee=FEE, min_order_size="5"),
        Market(condition_id="m2", token_ids=(Y2, N2), min_order_size="5"),
    ]
)
G1 = OutcomeGroup(kind="binary", id="m1", token_ids=(Y, N), markets=("m1",))
G2 = OutcomeGroup(kind="binary", id="m2", token_ids=(Y2, N2), markets=("m2",))
NO_FEE = PaperConfig()

Lv = list[tuple[str, str]]


def load(b: L2Book, bids: Lv = (), asks: Lv = ()) -> L2Book:  # type: ignore[assignment]
    g = b.tick
    b.load(
        [(g.to_ticks(p), parse_micros(s)) for p, s in bids],
        [(g.to_ticks(p), parse_micros(s)) for p, s in asks],
    )
    return b


def mk(token: str, bids: Lv = (), asks: Lv = (), tick: str = "0.01") -> L2Book:  # type: ignore[assignment]
    return load(L2Book(token, tick_size(tick)), bids, asks)


def leg(
    token: str,
    side: Literal["BUY", "SELL"],
    price: str,
    size: str,
    ot: Literal["FOK", "FAK", "GTC", "GTD"] = "FAK",
) -> Leg:
    return Leg(
        token_id=token, side=side, price=parse_micros(price), size=parse_micros(size), order_type=ot
    )


def intent(*legs: Leg, kind: Literal["set", "single"] = "single", group: str = "m1") -> Intent:
    return Intent(strategy="s", group_id=group, kind=kind, legs=legs, edge=0, created_ns=0)


def one(paper: PaperTrader, now: int, books: dict[str, L2Book]) -> ExecutionResult:
    (res,) = paper.poll(now, books)
    return res


def fee_exact(fills: list[tuple[str, str]], rate: str, exponent: int = 1) -> int:
    """Independent fee: per fill, shares × rate × (p(1−p))^e in exact fractions, rounded up to
    10 micros (the venue settles each match), summed."""
    out = 0
    for p, s in fills:
        fee = Fraction(s) * Fraction(rate) * (Fraction(p) * (1 - Fraction(p))) ** exponent
        micros = -(-fee * MICROS // 1)
        out += int(-(-micros // 10) * 10)
    return out


def test_paper_trader_is_an_executor() -> None:
    ex: Executor = PaperTrader(NO_FEE, CAT)
    assert ex.name == "paper" and ex.pending() == 0


def test_order_fills_against_the_book_at_arrival_not_at_submit() -> None:
    books = {Y: mk(Y, asks=[("0.50", "100")])}
    paper = PaperTrader(PaperConfig(latency_ms=50), CAT)
    paper.submit("a", intent(leg(Y, "BUY", "0.55", "10")), 0)
    assert paper.poll(49 * MS, books) == [] and paper.pending() == 1  # still in flight
    load(books[Y], asks=[("0.53", "100")])  # the market moves while the order travels
    res = one(paper, 50 * MS, books)
    (r,) = res.reports
    assert r.status == "filled" and r.avg_price == 530_000 and r.cost == 5_300_000
    assert r.sent_ns == 0 and r.done_ns == 50 * MS and res.complete
    # moved beyond the limit while in flight: nothing
    paper.submit("b", intent(leg(Y, "BUY", "0.55", "10")), 100 * MS)
    load(books[Y], asks=[("0.60", "100")])
    assert one(paper, 150 * MS, books).reports[0].status == "unfilled"


def test_fok_is_all_or_nothing_and_fak_takes_what_is_there() -> None:
    books = {Y: mk(Y, asks=[("0.50", "10"), ("0.60", "10")])}
    paper = PaperTrader(PaperConfig(latency_ms=0, consume_liquidity=False), CAT)
    for iid, lg in [
        ("fok", leg(Y, "BUY", "0.55", "15", "FOK")),
        ("fak", leg(Y, "BUY", "0.55", "15", "FAK")),
        ("gtc", leg(Y, "BUY", "0.55", "15", "GTC")),
        ("fok2", leg(Y, "BUY", "0.60", "15", "FOK")),
    ]:
        paper.submit(iid, intent(lg), 0)
    got = {r.intent_id: r.reports[0] for r in paper.poll(0, books)}
    assert got["fok"].status == "unfilled" and got["fok"].filled == 0 and got["fok"].cost == 0
    assert got["fak"].status == "partial" and got["fak"].filled == 10 * S
    assert got["fak"].cost == 5 * S and got["fak"].avg_price == 500_000
    assert got["gtc"].status == "partial" and "cancelled" in got["gtc"].reason
    assert got["fok2"].status == "filled" and got["fok2"].cost == 5 * S + 3 * S


def test_sell_walks_the_bids_down_to_its_limit() -> None:
    books = {Y: mk(Y, bids=[("0.40", "5"), ("0.42", "5"), ("0.30", "50")])}
    paper = PaperTrader(PaperConfig(latency_ms=0), CAT)
    paper.submit("a", intent(leg(Y, "SELL", "0.40", "20")), 0)
    (r,) = one(paper, 0, books).reports
    assert r.filled == 10 * S and r.cost == 5 * 420_000 + 5 * 400_000 and r.status == "partial"
    assert r.fee == fee_exact([("0.42", "5"), ("0.40", "5")], "0.07")


@pytest.mark.parametrize("side", ["BUY", "SELL"])
def test_fees_are_exact_against_an_independent_computation(side: Literal["BUY", "SELL"]) -> None:
    lv = [("0.453", "33.33"), ("0.457", "17.17"), ("0.461", "100")]
    bids = [(p, s) for p, s in reversed(lv)] if side == "SELL" else []
    asks = lv if side == "BUY" else []
    books = {Y: mk(Y, bids=bids, asks=asks, tick="0.001")}
    paper = PaperTrader(PaperConfig(latency_ms=0), CAT)
    limit = "0.461" if side == "BUY" else "0.453"
    paper.submit("a", intent(leg(Y, side, limit, "70")), 0)
    res = one(paper, 0, books)
    (r,) = res.reports
    # a FAK BUY spends the cost of 70 shares rounded up to the cent (31.93468 → 31.94 $): the
    # 0.00532 $ left buys one more 0.01-share lot at 0.461 (the venue's dust)
    took = (
        [("0.453", "33.33"), ("0.457", "17.17"), ("0.461", "19.51")]
        if side == "BUY"
        else [("0.461", "70")]
    )
    assert r.filled == sum(parse_micros(s) for _, s in took) and r.status == "filled"
    assert r.fee == fee_exact(took, "0.07")
    notional = sum(Fraction(p) * Fraction(s) for p, s in took) * MICROS
    assert r.cost == (-(-notional // 1) if side == "BUY" else notional // 1)
    p = Portfolio(1000 * S)
    (f,) = p.apply(res, CAT)
    assert f.cash_delta == (-(r.cost + r.fee) if side == "BUY" else r.cost - r.fee)


def test_markets_without_a_schedule_use_the_strategy_fallback() -> None:
    books = {Y2: mk(Y2, asks=[("0.50", "100")]), Y: mk(Y, asks=[("0.50", "100")])}
    cfg = PaperConfig(latency_ms=0, strategy_fees={"s": FeeModel(flat_micros_per_share=10_000)})
    paper = PaperTrader(cfg, CAT)
    paper.submit("a", intent(leg(Y2, "BUY", "0.50", "10"), group="m2"), 0)
    paper.submit("b", intent(leg(Y, "BUY", "0.50", "10")), 0)
    got = {r.intent_id: r.reports[0] for r in paper.poll(0, books)}
    assert got["a"].fee == 100_000  # $0.01 a share
    assert got["b"].fee == fee_exact([("0.50", "10")], "0.07")  # the market's own schedule
    plain = PaperTrader(PaperConfig(latency_ms=0), CAT)
    plain.submit("c", intent(leg(Y2, "BUY", "0.50", "10"), group="m2"), 0)
    assert one(plain, 0, books).reports[0].fee == 0


def test_two_intents_at_the_same_instant_do_not_take_the_same_shares() -> None:
    books = {Y: mk(Y, asks=[("0.50", "100")])}
    paper = PaperTrader(PaperConfig(latency_ms=10), CAT)
    paper.submit("a", intent(leg(Y, "BUY", "0.50", "60")), 0)
    paper.submit("b", intent(leg(Y, "BUY", "0.50", "60")), 0)
    got = {r.intent_id: r.reports[0].filled for r in paper.poll(10 * MS, books)}
    assert got == {"a": 60 * S, "b": 40 * S}
    paper.submit("c", intent(leg(Y, "BUY", "0.50", "60")), 10 * MS)
    assert one(paper, 20 * MS, books).reports[0].status == "unfilled"  # book unchanged: gone
    load(books[Y], asks=[("0.50", "100")])  # the next book change restores the view
    paper.submit("d", intent(leg(Y, "BUY", "0.50", "60")), 20 * MS)
    assert one(paper, 30 * MS, books).reports[0].filled == 60 * S


def test_depth_share_and_max_levels_limit_what_can_be_taken() -> None:
    books = {Y: mk(Y, asks=[("0.50", "100"), ("0.51", "100")])}
    paper = PaperTrader(PaperConfig(latency_ms=0, depth_share_ppm=250_000, max_levels=1), CAT)
    paper.submit("a", intent(leg(Y, "BUY", "0.51", "100")), 0)
    assert one(paper, 0, books).reports[0].filled == 25 * S


def test_venue_checks_reject_off_grid_prices_and_small_sizes() -> None:
    books = {Y: mk(Y, asks=[("0.50", "100")])}
    paper = PaperTrader(PaperConfig(latency_ms=0), CAT)
    paper.submit("grid", intent(leg(Y, "BUY", "0.505", "10")), 0)
    paper.submit("small", intent(leg(Y, "BUY", "0.50", "4.99")), 0)
    got = {r.intent_id: r.reports[0] for r in paper.poll(0, books)}
    assert got["grid"].status == "rejected" and "grid" in got["grid"].reason
    assert got["small"].status == "rejected" and "minimum" in got["small"].reason
    zero = Leg(token_id=Y, side="BUY", price=0, size=10 * S)  # 0 is not "any price"
    paper.submit("zero", intent(zero), 0)
    assert one(paper, 0, books).reports[0].status == "rejected"
    lax = PaperTrader(PaperConfig(latency_ms=0, enforce_min_size=False), CAT)
    lax.submit("small", intent(leg(Y, "BUY", "0.50", "4.99")), 0)
    assert one(lax, 0, books).reports[0].status == "filled"


def test_missing_book_waits_then_times_out() -> None:
    paper = PaperTrader(PaperConfig(latency_ms=50, order_timeout_ms=500), CAT)
    paper.submit("a", intent(leg(Y, "BUY", "0.50", "10")), 0)
    paper.submit("b", intent(leg(Y, "BUY", "0.50", "10")), 0)
    assert paper.poll(100 * MS, {}) == []
    (a, b) = paper.poll(549 * MS, {Y: mk(Y, asks=[("0.50", "5")])})  # the book shows up in time
    assert a.reports[0].filled == 5 * S and b.reports[0].status == "unfilled"
    paper.submit("c", intent(leg(Y, "BUY", "0.50", "10")), 0)
    assert paper.poll(549 * MS, {}) == []
    (r,) = one(paper, 550 * MS, {}).reports
    assert r.status == "timeout" and r.done_ns == 550 * MS


def _set(size: str = "10") -> Intent:
    return intent(
        leg(Y, "BUY", "0.50", size, "FOK"), leg(N, "BUY", "0.48", size, "FOK"), kind="set"
    )


def test_leg_risk_unwind_sells_back_at_the_later_book_and_books_the_loss() -> None:
    books = {
        Y: mk(Y, bids=[("0.47", "100")], asks=[("0.50", "100")]),
        N: mk(N, asks=[("0.49", "100")]),  # above the NO limit: that leg fails
    }
    paper = PaperTrader(PaperConfig(latency_ms=50), CAT)
    paper.submit("a", _set(), 0)
    assert paper.poll(50 * MS, books) == [] and paper.pending() == 1  # the unwind is in flight
    load(books[Y], bids=[("0.45", "100")], asks=[("0.50", "100")])  # YES drops meanwhile
    res = one(paper, 100 * MS, books)
    y, n = res.reports
    assert y.filled == 10 * S and n.filled == 0 and not res.complete
    (u,) = res.unwound
    assert u.side == "SELL" and u.token_id == Y and u.filled == 10 * S
    assert u.avg_price == 450_000 and u.sent_ns == 50 * MS and u.done_ns == 100 * MS
    assert u.fee == fee_exact([("0.45", "10")], "0.07")
    p = Portfolio(100 * S)
    p.apply(res, CAT)
    assert p.position(Y) == 0 and p.cash == 100 * S + p.realized
    assert p.realized == (4_500_000 - u.fee) - (5_000_000 + y.fee) < 0
    (t,) = p.trades()
    assert t.closed and t.realized == p.realized


def test_leg_risk_hold_keeps_the_filled_leg() -> None:
    books = {Y: mk(Y, bids=[("0.47", "100")], asks=[("0.50", "100")]), N: mk(N)}
    paper = PaperTrader(PaperConfig(latency_ms=50, leg_policy="hold"), CAT)
    paper.submit("a", _set(), 0)
    res = one(paper, 50 * MS, books)
    assert res.unwound == () and res.reports[0].filled == 10 * S
    p = Portfolio(100 * S)
    p.apply(res, CAT)
    assert p.position(Y) == 10 * S and p.realized == 0


def test_filled_set_merges_into_one_dollar_per_set() -> None:
    books = {Y: mk(Y, asks=[("0.50", "100")]), N: mk(N, asks=[("0.40", "100")])}
    paper = PaperTrader(PaperConfig(latency_ms=0), CAT)
    paper.submit("a", _set("20"), 0)
    res = one(paper, 0, books)
    assert res.complete and res.unwound == ()
    p = Portfolio(100 * S)
    p.apply(res, CAT)
    spent = sum(r.cost + r.fee for r in res.reports)
    m = p.merge_sets(G1, 1)
    assert m is not None and m.sets == 20 * S and m.payout == 20 * S
    assert p.cash == 100 * S - spent + 20 * S and p.positions() == {}
    assert p.realized == 20 * S - spent
    assert p.snapshot(books).win_rate == 1.0


# -- property: whatever happens, the money adds up -----------------------------------------------

TOKENS = (Y, N, Y2, N2)
PAIRS = {Y: G1, N: G1, Y2: G2, N2: G2}

price_ticks = st.integers(min_value=1, max_value=99)
shares = st.integers(min_value=1, max_value=4000).map(lambda c: c * 10_000)  # 0.01 … 40 shares


@st.composite
def book_state(draw: st.DrawFn) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    bb = draw(st.integers(min_value=1, max_value=97))
    ba = draw(st.integers(min_value=bb + 1, max_value=99))
    bids = [(t, draw(shares)) for t in sorted(set(draw(st.lists(st.integers(1, bb), max_size=3))))]
    asks = [(t, draw(shares)) for t in sorted(set(draw(st.lists(st.integers(ba, 99), max_size=3))))]
    return bids, asks


order_types = st.sampled_from(["FOK", "FAK", "GTC"])


@st.composite
def an_intent(draw: st.DrawFn) -> Intent:
    if draw(st.booleans()):  # a complete set of one market
        g = draw(st.sampled_from([G1, G2]))
        legs = tuple(
            Leg(
                token_id=t,
                side="BUY",
                price=draw(price_ticks) * 10_000,
                size=draw(shares),
                order_type=draw(order_types),
            )
            for t in g.token_ids
        )
        return Intent(strategy="s", group_id=g.id, kind="set", legs=legs, edge=0, created_ns=0)
    tok = draw(st.sampled_from(TOKENS))
    lg = Leg(
        token_id=tok,
        side=draw(st.sampled_from(["BUY", "SELL"])),
        price=draw(price_ticks) * 10_000,
        size=draw(shares),
        order_type=draw(order_types),
    )
    return Intent(
        strategy="s", group_id=PAIRS[tok].id, kind="single", legs=(lg,), edge=0, created_ns=0
    )


step = st.tuples(
    st.dictionaries(st.sampled_from(TOKENS), book_state(), max_size=4),  # book changes
    st.lists(an_intent(), max_size=3),  # intents submitted now
    st.integers(min_value=0, max_value=120),  # ms until the next step
    st.booleans(),  # merge complete sets afterwards
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    steps=st.lists(step, min_size=1, max_size=12),
    policy=st.sampled_from(["unwind", "hold"]),
    winners=st.tuples(st.sampled_from([Y, N]), st.sampled_from([Y2, N2])),
)
def test_money_is_conserved_through_any_sequence(
    steps: list[
        tuple[
            dict[str, tuple[list[tuple[int, int]], list[tuple[int, int]]]], list[Intent], int, bool
        ]
    ],
    policy: Literal["unwind", "hold"],
    winners: tuple[str, str],
) -> None:
    g = tick_size("0.01")
    books = {t: L2Book(t, g) for t in TOKENS}
    cfg = PaperConfig(
        latency_ms=30,
        leg_policy=policy,
        enforce_min_size=False,
        strategy_fees={"s": FeeModel.from_rate("0.05")},
    )
    paper = PaperTrader(cfg, CAT)
    start = 1_000_000 * S
    port = Portfolio(start)
    results: list[ExecutionResult] = []
    merged: dict[str, int] = {}
    now, seq = 0, 0

    def settle_results(rs: list[ExecutionResult]) -> None:
        for res in rs:
            results.append(res)
            port.apply(res, CAT)

    for changes, intents, dt_ms, do_merge in steps:
        settle_results(paper.poll(now, books))  # orders arriving now see the books before
        for tok, (bids, asks) in changes.items():  # the changes stamped now
            books[tok].load(bids, asks)
        for it in intents:
            seq += 1
            paper.submit(f"i{seq}", it, now)
        now += dt_ms * MS
        settle_results(paper.poll(now, books))
        if do_merge:
            for grp in (G1, G2):
                m = port.merge_sets(grp, now)
                if m is not None:
                    merged[grp.id] = merged.get(grp.id, 0) + m.sets
    for _ in range(3):  # legs, then their unwinds (one latency later)
        now += 1_000 * MS
        settle_results(paper.poll(now, books))
    assert paper.pending() == 0

    # every order respects its limit, size and order type
    flows, fees = 0, 0
    held = dict.fromkeys(TOKENS, 0)
    for res in results:
        for r in (*res.reports, *res.unwound):
            assert r.filled >= 0
            if r.side == "BUY":  # a FOK/FAK BUY targets collateral: never more than nominal
                assert r.cost <= -(-r.requested * r.limit_price // MICROS // 10_000) * 10_000
            else:
                assert r.filled <= r.requested
            if r.filled:
                assert (
                    r.avg_price <= r.limit_price
                    if r.side == "BUY"
                    else r.avg_price >= r.limit_price
                )
            flows += -(r.cost + r.fee) if r.side == "BUY" else r.cost - r.fee
            fees += r.fee
            held[r.token_id] += r.filled if r.side == "BUY" else -r.filled
        for r, lg in zip(res.reports, res.intent.legs, strict=True):
            if lg.order_type == "FOK" and lg.side == "SELL":
                assert r.filled in (0, lg.size)
        if res.intent.kind == "set" and policy == "unwind":
            net = [r.filled for r in res.reports]
            for u in res.unwound:
                net[u.leg] -= u.filled
            for tok, kept in res.residual:  # dust too small to sell stays, recorded
                net[[lg.token_id for lg in res.intent.legs].index(tok)] -= kept
            if all(u.status == "filled" for u in res.unwound):
                assert len(set(net)) == 1  # leg risk removed: equal legs
    for grp in (G1, G2):
        for t in grp.token_ids:
            held[t] -= merged.get(grp.id, 0)
    payouts = sum(merged.values())

    # the portfolio agrees with an independent tally of the reports
    assert port.fees == fees
    assert port.cash == start + flows + payouts
    assert {t: port.position(t) for t in TOKENS} == held
    basis = sum(port.basis(t) for t in TOKENS)
    assert port.cash + basis == start + port.realized
    assert sum(t.realized for t in port.trades()) == port.realized

    # complete sets are worth exactly $1 each when merged
    sets = {grp.id: port.complete_sets(grp) for grp in (G1, G2)}
    cash_before = port.cash
    for grp in (G1, G2):
        port.merge_sets(grp, now)
    assert port.cash == cash_before + sum(sets.values())

    # resolution closes everything: what is left is exactly starting cash + realized PnL
    held_after = {t: port.position(t) for t in TOKENS}
    for cid, win in zip(("m1", "m2"), winners, strict=True):
        port.settle(cid, win, now)
    assert port.positions() == {}
    paid = sum(held_after[w] for w in winners)
    assert port.cash == start + flows + payouts + sum(sets.values()) + paid
    assert port.cash == start + port.realized
    snap = port.snapshot(books)
    assert snap.open_trades == 0 and snap.completed == snap.trades
    assert snap.equity == port.cash and snap.unrealized == 0


def test_an_error_while_filling_still_gives_the_intent_its_one_result() -> None:
    class Broken:  # a book whose ladder fails (L2Book is compiled: no Python subclasses)
        def __init__(self, book: L2Book) -> None:
            self.book = book

        def __getattr__(self, name: str) -> object:
            return getattr(self.book, name)

        def ask_ladder(self) -> object:
            raise RuntimeError("corrupt book")

    real = load(L2Book(Y, tick_size("0.01")), asks=[("0.50", "100")])
    books: dict[str, L2Book] = {Y: Broken(real)}  # type: ignore[dict-item]
    paper = PaperTrader(PaperConfig(latency_ms=0), CAT)
    paper.submit("a", intent(leg(Y, "BUY", "0.55", "10")), 0)
    (r,) = one(paper, 0, books).reports
    assert r.status == "rejected" and "corrupt book" in r.reason and paper.pending() == 0

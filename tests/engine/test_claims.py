"""One view of liquidity: what approved intents in flight have claimed is gone from the books
the strategies see, until the venue's book shows it or the intent ends.

Static books, the real engine, risk gate, portfolio and paper trader; two strategies that see
the same complete-set edge (SumTo100 walks depth, Clipper reads the top of book)."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from polylab.book.registry import BookRegistry
from polylab.domain import ExecutionResult, Intent, Leg, OrderReport
from polylab.engine import Engine, EngineConfig
from polylab.execution.paper import PaperConfig, PaperTrader
from polylab.feed.wire import Book, Level, PriceChange, PriceChangeEntry
from polylab.market import Market, MarketCatalog
from polylab.money import MICROS
from polylab.risk.manager import RiskConfig, RiskManager
from polylab.risk.portfolio import Portfolio
from polylab.strategy.clipper import Clipper, ClipperConfig
from polylab.strategy.sum_to_100 import SumTo100, SumTo100Config

T0 = 1_800_000_000_000_000_000
MS = 1_000_000
YES, NO, CID = "101", "102", "0x" + "ab" * 32


class Recorder:
    def __init__(self) -> None:
        self.rows: dict[str, list[object]] = {}

    def record(self, kind: str, row: object) -> None:
        self.rows.setdefault(kind, []).append(row)


def make_engine(
    *, net_books: bool = True, sum_cap: int = 1_000, latency_ms: int = 50, twins: bool = False
) -> tuple[Engine, Recorder]:
    cat = MarketCatalog([Market(condition_id=CID, token_ids=(YES, NO), min_order_size="5")])
    reg = BookRegistry(cat)
    pf = Portfolio(10_000 * MICROS)
    rec = Recorder()
    strategies = [
        SumTo100(SumTo100Config(min_liquidity_micros=5 * MICROS, max_size_micros=sum_cap * MICROS)),
        Clipper(ClipperConfig(max_size_micros=1_000 * MICROS)),
    ]
    if twins:  # a second depth walker with a smaller appetite
        cfg = SumTo100Config(min_liquidity_micros=5 * MICROS, max_size_micros=25 * MICROS)
        strategies.insert(1, SumTo100(cfg, name="sum_to_100_b"))
    eng = Engine(
        registry=reg,
        strategies=strategies,
        risk=RiskManager(RiskConfig(max_position_micros=5_000 * MICROS), pf),
        executor=PaperTrader(PaperConfig(latency_ms=latency_ms), cat),
        portfolio=pf,
        sinks=[rec],
        config=EngineConfig(net_books=net_books),
    )
    return eng, rec


def snapshot(token: str, asks: list[tuple[str, str]], bids: list[tuple[str, str]]) -> Book:
    return Book(
        asset_id=token,
        market=CID,
        bids=[Level(p, s) for p, s in bids],
        asks=[Level(p, s) for p, s in reversed(asks)],
        timestamp="1",
        tick_size="0.01",
    )


def load(eng: Engine, yes_asks: list[tuple[str, str]], no_asks: list[tuple[str, str]]) -> None:
    """YES and NO books whose asks sum below $1 (both strategies see the edge at once)."""
    eng.on_event(snapshot(YES, yes_asks, [("0.05", "500")]), T0)
    eng.on_event(snapshot(NO, no_asks, [("0.05", "500")]), T0 + 1)


def leg_sizes_by_level(rec: Recorder, eng: Engine) -> Counter[tuple[str, int]]:
    """Share micros every approved intent asked for at each (token, limit) level."""
    out: Counter[tuple[str, int]] = Counter()
    for row in rec.rows.get("orders", []):
        assert isinstance(row, OrderReport)
        if not row.order_id.endswith("u"):
            out[(row.token_id, row.limit_price)] += row.requested
    return out


def test_two_strategies_seeing_one_edge_never_claim_the_same_shares() -> None:
    # 100 shares at the top of each leg; SumTo100 may take 60 sets, the Clipper sees the rest
    eng, rec = make_engine(sum_cap=60)
    load(eng, [("0.40", "100")], [("0.50", "100")])
    eng.flush(T0 + 2)
    intents = rec.rows["intents"]
    assert [getattr(i, "strategy", "") for i in intents] == ["sum_to_100", "clipper"]
    asked = leg_sizes_by_level(rec, eng)
    assert asked == {(YES, 400_000): 100 * MICROS, (NO, 500_000): 100 * MICROS}
    assert eng.stats.unfilled_legs == 0 and eng.stats.unwind_fills == 0
    fills = rec.rows["fills"]
    assert sum(getattr(f, "size", 0) for f in fills) == 200 * MICROS  # 100 sets, all filled
    # each strategy's sets merge for $1 on its own account: 0.10 a set (no fees here)
    realized = {t.strategy: t.realized for t in eng.portfolio.trades()}
    assert realized == {"sum_to_100": 60 * 100_000, "clipper": 40 * 100_000}
    assert sum(realized.values()) == eng.portfolio.realized
    # the same run with the venue's books shown as they are: the Clipper asks for shares
    # SumTo100 already took, and its legs find nothing
    eng2, rec2 = make_engine(sum_cap=60, net_books=False)
    load(eng2, [("0.40", "100")], [("0.50", "100")])
    eng2.flush(T0 + 2)
    assert eng2.stats.unfilled_legs == 2
    assert leg_sizes_by_level(rec2, eng2)[(YES, 400_000)] == 160 * MICROS


def test_a_strategy_sees_the_book_net_of_claims_while_the_intent_is_in_flight() -> None:
    eng, _ = make_engine(latency_ms=1_000)  # nothing comes back before the checks below
    load(eng, [("0.40", "30"), ("0.42", "20")], [("0.50", "100")])
    assert eng.executor.pending() == 1  # SumTo100 took both YES levels: no edge left
    raw, net = eng.registry.books[YES], eng.books[YES]
    assert raw.asks[40] == 30 * MICROS and raw.asks[42] == 20 * MICROS
    assert net.best_ask > net.n  # every YES share at the limit is claimed
    assert eng.books[NO].asks[50] == 50 * MICROS
    assert eng.claims is not None
    assert eng.claims.claimed(YES, True, 400_000) == 30 * MICROS


def test_claims_follow_the_venue_and_the_result() -> None:
    eng, _ = make_engine(latency_ms=1_000)
    load(eng, [("0.40", "100")], [("0.50", "100")])
    cl = eng.claims
    assert cl is not None and cl.claimed(YES, True, 400_000) == 100 * MICROS
    assert eng.books[YES].asks[40] == 0
    # someone else takes 30 of the 100: our 100 are still claimed (the level is now 70)
    change = PriceChange(
        market=CID,
        timestamp="2",
        price_changes=[PriceChangeEntry(YES, "0.40", "70", "SELL")],
    )
    eng.on_event(change, T0 + 10 * MS)
    assert cl.claimed(YES, True, 400_000) == 100 * MICROS and eng.books[YES].asks[40] == 0
    # the venue shows the level reduced by the claimed size: released, the view is the venue's
    gone = PriceChange(
        market=CID, timestamp="3", price_changes=[PriceChangeEntry(YES, "0.40", "0", "SELL")]
    )
    eng.on_event(gone, T0 + 20 * MS)
    assert cl.claimed(YES, True, 400_000) == 0 and eng.books[YES] is eng.registry.books[YES]
    assert cl.claimed(NO, True, 500_000) == 100 * MICROS  # the other leg waits for its news


def _report(iid: str, leg: int, token: str, filled: int, requested: int) -> OrderReport:
    return OrderReport(
        intent_id=iid,
        leg=leg,
        token_id=token,
        side="BUY",
        limit_price=400_000,
        requested=requested,
        filled=filled,
        cost=filled * 4 // 10,
        fee=0,
        avg_price=400_000 if filled else 0,
        status="filled" if filled == requested else "unfilled",
        sent_ns=T0,
        done_ns=T0,
    )


def test_a_result_releases_unfilled_legs_and_holds_filled_ones_until_the_book_moves() -> None:
    eng, _ = make_engine()
    eng.on_event(snapshot(YES, [("0.40", "100")], [("0.30", "500")]), T0)
    eng.on_event(snapshot(NO, [("0.70", "100")], [("0.20", "500")]), T0)  # no edge
    cl = eng.claims
    assert cl is not None and not cl.active
    legs = (
        Leg(token_id=YES, side="BUY", price=400_000, size=40 * MICROS),
        Leg(token_id=NO, side="BUY", price=700_000, size=40 * MICROS),
    )
    intent = Intent(strategy="t", group_id="g", kind="set", legs=legs, edge=1, created_ns=T0)
    assert cl.claim("t-1", legs, eng.registry.books, T0) == 80 * MICROS
    res = ExecutionResult(
        intent_id="t-1",
        intent=intent,
        reports=(_report("t-1", 0, YES, 40 * MICROS, 40 * MICROS), _report("t-1", 1, NO, 0, 1)),
        complete=False,
    )
    cl.end("t-1", res.reports, eng.registry.books, T0 + MS)
    assert cl.claimed(NO, True, 700_000) == 0  # took nothing: nothing held
    assert cl.claimed(YES, True, 400_000) == 40 * MICROS  # filled: held for the venue's update
    cl.sync(eng.registry.books, T0 + 2 * MS)  # nothing changed yet
    assert cl.claimed(YES, True, 400_000) == 40 * MICROS
    far = PriceChange(
        market=CID, timestamp="4", price_changes=[PriceChangeEntry(YES, "0.90", "5", "SELL")]
    )
    eng.on_event(far, T0 + 3 * MS)  # the ask side changed after the result: released
    assert not cl.active and eng.books is eng.registry.books


@pytest.mark.parametrize("side", ["BUY", "SELL"])
def test_claims_walk_only_levels_inside_the_limit(side: str) -> None:
    eng, _ = make_engine()
    eng.on_event(
        snapshot(YES, [("0.40", "10"), ("0.45", "10")], [("0.30", "10"), ("0.25", "10")]), T0
    )
    cl = eng.claims
    assert cl is not None
    price = 420_000 if side == "BUY" else 280_000
    leg = Leg(token_id=YES, side=side, price=price, size=50 * MICROS)  # type: ignore[arg-type]
    assert cl.claim("x-1", (leg,), eng.registry.books, T0) == 10 * MICROS
    v = eng.books[YES]
    if side == "BUY":
        assert v.best_ask == 45 and v.asks[45] == 10 * MICROS and v.bids[30] == 10 * MICROS
    else:
        assert v.best_bid == 25 and v.bids[25] == 10 * MICROS and v.asks[40] == 10 * MICROS


@pytest.mark.parametrize("seed", range(12))
def test_on_random_static_books_every_leg_finds_what_it_claimed(seed: int) -> None:
    rng = random.Random(seed)

    def ladder(lo: int) -> list[tuple[str, str]]:
        ticks = [lo, *sorted(rng.sample(range(lo + 1, lo + 12), rng.randint(0, 3)))]
        return [(f"0.{t:02d}", str(rng.choice((5, 10, 20, 40, 80)))) for t in ticks]

    y = rng.randint(30, 50)  # the tops sum to at most 0.92: an edge after the 0.01 fee
    eng, rec = make_engine(twins=True)
    load(eng, ladder(y), ladder(92 - y - rng.randint(0, 12)))
    eng.flush(T0 + 2)
    assert eng.stats.approved >= 1
    assert eng.stats.unfilled_legs == 0 and eng.stats.unwind_fills == 0
    bought: Counter[str] = Counter()
    for f in rec.rows["fills"]:
        bought[getattr(f, "token_id", "")] += getattr(f, "size", 0)
    assert bought[YES] == bought[NO] > 0  # every set complete
    for tok in (YES, NO):
        assert bought[tok] <= sum(size for _, size in eng.registry.books[tok].ask_levels())

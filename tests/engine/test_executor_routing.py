"""The engine and its executors: every approved intent comes back exactly once (a failing
signer included), so the risk reservation and the (strategy, group) cooldown are released; and
per-strategy routing sends a paper-trading strategy to the paper trader inside a live session,
the run folder saying which executor filled what."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import polars as pl

from polylab.book.registry import BookRegistry
from polylab.config import load_config
from polylab.domain import ExecutionResult, Intent, Leg, OrderReport
from polylab.engine import Engine, EngineConfig
from polylab.execution.live import Credentials, LiveConfig, LiveExecutor
from polylab.execution.routing import RoutingExecutor
from polylab.market import Market, MarketCatalog
from polylab.risk.manager import RiskConfig, RiskManager
from polylab.risk.portfolio import Portfolio
from polylab.runner.live import paper_routed, run_live
from polylab.runner.paper import venue

KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
M = 1_000_000


class FailingSigner:
    """A signer whose key store fails."""

    def limit_order_v2(self, *args: Any, **kwargs: Any) -> Any:
        raise OSError("signing device unavailable")


def test_signing_failure_releases_the_reservation_and_the_cooldown() -> None:
    cat = MarketCatalog([Market(condition_id="m1", token_ids=("1", "2"), min_order_size="5")])
    pf = Portfolio(1_000 * M)
    risk = RiskManager(RiskConfig(), pf)
    ex = LiveExecutor(LiveConfig(), cat, FailingSigner(), None)  # type: ignore[arg-type]
    engine = Engine(
        registry=BookRegistry(cat),
        strategies=[],
        risk=risk,
        executor=ex,
        portfolio=pf,
        config=EngineConfig(cooldown_ms=0),
    )
    legs = tuple(Leg(token_id=t, side="BUY", price=400_000, size=10 * M) for t in ("1", "2"))
    intent = Intent(strategy="s", group_id="m1", kind="set", legs=legs, edge=0, created_ns=0)

    async def main() -> None:
        assert engine.submit(intent) is not None
        assert risk.reserved() > 0 and risk.open_orders == 2
        for _ in range(500):
            await asyncio.sleep(0.01)
            engine.on_time(10**9)
            if engine.stats.results:
                break
        assert engine.stats.results == 1 and ex.pending() == 0
        assert risk.reserved() == 0 and risk.open_orders == 0  # nothing leaked
        assert engine.submit(intent) is not None  # the (strategy, group) is free again

    asyncio.run(main())


def test_live_session_routes_a_paper_trading_strategy_to_the_paper_trader(tmp_path: Path) -> None:
    env = {
        "RISK_MAX_POSITION": "300",
        "SUMTO100_PAPER_TRADING": "true",  # filled by the paper trader
        "CLIPPER_PAPER_TRADING": "false",  # signed by the live executor (DRY_RUN)
    }
    cfg = load_config(env=env)
    assert paper_routed(cfg) == {"sum_to_100"}

    async def main():  # type: ignore[no-untyped-def]
        async with venue(None, seed=11) as v:
            return await run_live(
                cfg, v, Credentials(KEY, None), seconds=8.0, out_dir=tmp_path / "run"
            )

    res, run, ex = asyncio.run(main())
    router = run.engine.executor
    assert isinstance(router, RoutingExecutor) and router.default is ex and ex.config.dry_run
    orders = run.recorder.rows.get("orders", [])
    by_strategy: dict[str, set[str]] = {}
    for o in orders:
        by_strategy.setdefault(o.intent_id.rsplit("-", 1)[0], set()).add(o.executor)
    assert by_strategy.get("sum_to_100") == {"paper"}, by_strategy
    assert by_strategy.get("clipper") == {"live"}, by_strategy
    assert {o.status for o in orders if o.executor == "live"} == {"dry_run"}
    assert ex.signed == sum(1 for o in orders if o.executor == "live")
    paper_fills = [o for o in orders if o.executor == "paper" and o.filled]
    assert paper_fills and res.trades >= 1  # paper really filled inside the live session
    table = pl.read_parquet(tmp_path / "run" / "orders.parquet")
    assert set(table["executor"].unique()) == {"paper", "live"}


def test_dust_of_a_collateral_sized_leg_is_recorded_as_residual_exposure() -> None:
    from polylab.book.l2 import L2Book
    from polylab.execution.paper import PaperConfig, PaperTrader
    from polylab.money import tick_size
    from polylab.store.run_folder import RunRecorder

    cat = MarketCatalog([Market(condition_id="m1", token_ids=("1", "2"), min_order_size="5")])
    reg = BookRegistry(cat)
    for tok, ask in (("1", 30), ("2", 60)):  # YES 0.30, NO 0.60, 1000 shares each
        b = reg.books[tok] = L2Book(tok, tick_size("0.01"), "m1")
        b.load([], [(ask, 1_000 * M)])
    pf = Portfolio(1_000 * M)
    rec = RunRecorder()
    engine = Engine(
        registry=reg,
        strategies=[],
        risk=RiskManager(RiskConfig(), pf),
        executor=PaperTrader(PaperConfig(latency_ms=0), cat),
        portfolio=pf,
        sinks=[rec],
    )
    size = 55_550_000  # 55.55 × 0.30 = 16.665 $ → 16.67 $ buys 55.56 YES; 33.33 $ buys 55.55 NO
    legs = (
        Leg(token_id="1", side="BUY", price=300_000, size=size),
        Leg(token_id="2", side="BUY", price=600_000, size=size),
    )
    iid = engine.submit(
        Intent(strategy="s", group_id="m1", kind="set", legs=legs, edge=0, created_ns=0)
    )
    assert iid is not None
    engine.on_time(1)
    (row,) = rec.rows["residuals"]
    assert (row.intent_id, row.token_id, row.shares, row.executor) == (iid, "1", 10_000, "paper")
    assert pf.position("1") == 10_000 and pf.position("2") == 0  # 55.55 sets merged


class UnknownOutcome:
    """An executor whose venue never answered: every leg comes back ``unknown``."""

    name = "live"

    def __init__(self) -> None:
        self.queue: list[tuple[str, Intent, int]] = []

    def submit(self, intent_id: str, intent: Intent, now_ns: int) -> None:
        self.queue.append((intent_id, intent, now_ns))

    def poll(self, now_ns: int, books: Any) -> list[ExecutionResult]:
        out = [
            ExecutionResult(
                intent_id=iid,
                intent=it,
                reports=tuple(
                    _report(iid, i, leg, "unknown", 0, t) for i, leg in enumerate(it.legs)
                ),
                complete=False,
            )
            for iid, it, t in self.queue
        ]
        self.queue.clear()
        return out

    def pending(self) -> int:
        return len(self.queue)


def _report(iid: str, i: int, leg: Leg, status: Any, filled: int, t: int) -> OrderReport:
    cost = filled * leg.price // M
    return OrderReport(
        intent_id=iid,
        leg=i,
        token_id=leg.token_id,
        side=leg.side,
        limit_price=leg.price,
        requested=leg.size,
        filled=filled,
        cost=cost,
        fee=0,
        avg_price=leg.price if filled else 0,
        status=status,
        sent_ns=t,
        done_ns=t,
        order_id=f"o-{iid}-{i}",
    )


def test_an_unknown_outcome_keeps_its_reservation_until_resolved() -> None:
    cat = MarketCatalog([Market(condition_id="m1", token_ids=("1", "2"), min_order_size="5")])
    pf = Portfolio(1_000 * M)
    risk = RiskManager(RiskConfig(), pf)
    ex = UnknownOutcome()
    engine = Engine(
        registry=BookRegistry(cat),
        strategies=[],
        risk=risk,
        executor=ex,  # type: ignore[arg-type]
        portfolio=pf,
        config=EngineConfig(cooldown_ms=0),
    )
    legs = tuple(Leg(token_id=t, side="BUY", price=400_000, size=10 * M) for t in ("1", "2"))
    intent = Intent(strategy="s", group_id="m1", kind="set", legs=legs, edge=0, created_ns=0)
    iid = engine.submit(intent)
    assert iid is not None
    held = risk.reserved()
    engine.on_time(10**9)
    assert engine.stats.results == 1 and engine.stats.unknown_legs == 2
    assert risk.reserved() == held > 0  # may have filled: still counted against the limits
    assert engine.submit(intent) is not None  # but the (strategy, group) is not blocked
    engine.on_time(2 * 10**9)
    # The venue answers later: one leg filled, one did not.
    res = engine.unresolved[iid]
    answer = ExecutionResult(
        intent_id=iid,
        intent=res.intent,
        reports=(
            _report(iid, 0, legs[0], "filled", 10 * M, 3),
            _report(iid, 1, legs[1], "unfilled", 0, 3),
        ),
        complete=False,
    )
    engine.resolve_unknown(answer)
    assert pf.position("1") == 10 * M and pf.position("2") == 0
    # Only the second intent (also unknown) still holds its reservation.
    assert iid not in engine.unresolved and len(engine.unresolved) == 1
    assert risk.reserved() == held

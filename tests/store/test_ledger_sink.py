"""LedgerSink: the engine's records of a real backtest land in the ledger once each, orders
carry their strategy, and a full queue never raises into the engine."""

from __future__ import annotations

from pathlib import Path

from engine_recordings import write_negrisk_arb
from store.ledger_data import fill

from polylab.backtest import run_backtest
from polylab.config import load_config
from polylab.engine import ErrorRecord
from polylab.risk.records import Fill, PortfolioSnapshot, PositionMark
from polylab.store.ledger import Ledger
from polylab.store.ledger_rows import fill_key_for
from polylab.store.ledger_sink import LedgerSink
from polylab.store.ledger_writer import LedgerWriter, Row


def test_a_backtests_records_land_in_the_ledger(ledger: Ledger, tmp_path: Path) -> None:
    rec = tmp_path / "rec.jsonl"
    write_negrisk_arb(rec)
    cfg = load_config(env={"RISK_MAX_POSITION": "1000"}).__replace__(strategies=("sum_to_100",))
    res, recorder, _ = run_backtest(rec, cfg)
    rid = ledger.start_run(mode="backtest", venue="recording", config_id="c", code_version="v")
    committed: list[Row] = []
    published: list[tuple[Fill, bool]] = []

    def publish(fill: Fill) -> None:  # the runner's bus publish: the fill is already stored
        stored = {r["fill_key"] for r in ledger.rows("fills")}
        published.append((fill, fill_key_for(rid, fill) in stored))

    w = LedgerWriter(ledger).start()
    sink = LedgerSink(
        w, rid, executor="paper", on_commit=lambda r, exc: committed.append(r), on_fill=publish
    )
    try:
        for kind, rows in recorder.rows.items():  # in the order the engine first emitted each
            for r in rows:
                sink.record(kind, r)
        for r in recorder.rows["fills"]:  # the same fills again: stored once
            sink.record("fills", r)
        assert w.flush(timeout=60)
    finally:
        w.close(timeout=30)
    want = recorder.rows["fills"]
    assert len(want) == 3
    fills = ledger.rows("fills", run_id=rid)
    assert sorted(
        (f["token_id"], f["size_micros"], f["price_micros"], f["cost_micros"], f["fee_micros"])
        for f in fills
    ) == sorted((f.token_id, f.size, f.price, f.cost, f.fee) for f in want)  # type: ignore[attr-defined]
    assert sum(f["fee_micros"] for f in fills) == res.fees
    assert {f["strategy"] for f in fills} == {"sum_to_100"} and {f["executor"] for f in fills} == {
        "paper"
    }
    orders = ledger.rows("orders", run_id=rid)
    assert len(orders) == len(recorder.rows["orders"]) == 3
    assert {o["strategy"] for o in orders} == {"sum_to_100"}
    assert len(committed) == 3 + 3 + 3 and sink.lost == 0
    assert [f for f, _ in published[:3]] == want and all(ok for _, ok in published)


def test_a_full_queue_is_counted_not_raised(ledger: Ledger) -> None:
    rid = ledger.start_run(mode="paper", venue="sim", config_id="c", code_version="v")
    w = LedgerWriter(ledger, halt_depth=2, max_depth=2)  # not started: nothing drains
    sink = LedgerSink(w, rid, executor="paper")
    for n in range(5):
        sink.record("errors", ErrorRecord(source="feed", error=f"gap {n}", ts_ns=n))
    assert (w.depth, sink.lost, w.halt) == (2, 3, True)
    w.close(timeout=0)


def _snap(cash: int, held: dict[str, int]) -> PortfolioSnapshot:
    marks = tuple(
        PositionMark(
            token_id=t,
            condition_id="c",
            shares=n,
            basis=n * 4 // 10,
            mark=0,
            value=0,
            unrealized=0,
        )
        for t, n in held.items()
    )
    return PortfolioSnapshot(
        cash=cash,
        starting_cash=100_000_000,
        equity=cash,
        realized=0,
        unrealized=0,
        fees=0,
        merges=0,
        merged_sets=0,
        merge_payout=0,
        trades=0,
        open_trades=0,
        completed=0,
        wins=0,
        win_rate=0.0,
        fills=0,
        positions=marks,
    )


def test_snapshots_then_fills_recover(ledger: Ledger) -> None:
    rid = ledger.start_run(mode="paper", venue="sim", config_id="c", code_version="v")
    w = LedgerWriter(ledger).start()
    sink = LedgerSink(w, rid, executor="paper")
    try:
        sink.snapshot(_snap(90_000_000, {"tok-a": 2_000_000, "tok-b": 5_000_000}), ts_ns=100)
        sink.snapshot(_snap(91_000_000, {"tok-a": 2_000_000}), ts_ns=200)  # tok-b sold off
        w.submit(fill(rid, 1, token_id="tok-a", ts_ns=300, cash_delta_micros=-400_000))
        assert w.flush(timeout=60)
    finally:
        w.close(timeout=30)
    pos = {r["token_id"]: r for r in ledger.rows("positions", run_id=rid)}
    assert pos["tok-b"]["shares_micros"] == 0 and pos["tok-a"]["avg_price_micros"] == 400_000
    st = ledger.load_state(rid)
    assert st.positions == {"tok-a": 3_000_000}
    assert st.cash_micros == 91_000_000 - 400_000
    assert [r["ts_ns"] for r in ledger.rows("pnl_snapshots", run_id=rid)] == [100, 200]

"""The ledger on SQLite and on the real PostgreSQL: schema, idempotent writes, recovery reads."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from store.ledger_data import fill, order

from polylab.domain import OrderReport, Side
from polylab.engine import ErrorRecord, RejectionRecord
from polylab.risk.records import Fill
from polylab.store import ledger_schema
from polylab.store.ledger import MIGRATIONS, Ledger, LedgerError, resolve_url
from polylab.store.ledger_rows import (
    ConfigRow,
    PnlSnapshotRow,
    PositionRow,
    error_row,
    fill_row,
    order_row,
    rejection_row,
)

DAY_NS = 86_400 * 10**9


def _run(ledger: Ledger, **kw: object) -> str:
    args: dict[str, object] = {
        "mode": "paper",
        "venue": "sim",
        "config_id": "cfg-1",
        "code_version": "polylab test",
        "start_cash_micros": 100_000_000,
    }
    args.update(kw)
    return ledger.start_run(**args)  # type: ignore[arg-type]


def test_open_migrates_to_head_and_matches_the_tables(ledger: Ledger) -> None:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    head = ScriptDirectory.from_config(cfg).get_current_head()
    assert head is not None
    assert ledger.revision() == head
    with ledger.engine.connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn), ledger_schema.metadata)
    assert diffs == []


def test_open_again_keeps_the_data(ledger_url: str, ledger: Ledger) -> None:
    rid = _run(ledger)
    ledger.write([fill(rid, 1)])
    again = Ledger.open(ledger_url)
    try:
        assert again.revision() == ledger.revision()
        assert [r["fill_key"] for r in again.rows("fills")] == [f"{rid}/f1"]
    finally:
        again.close()


def test_the_same_fill_twice_is_stored_once(ledger: Ledger) -> None:
    rid = _run(ledger)
    first = fill(rid, 1)
    ledger.write([first, first, fill(rid, 2)])
    ledger.write([first])  # a retried batch
    ledger.write([fill(rid, 1, size_micros=9)])  # same key: the first record stands
    rows = ledger.rows("fills", run_id=rid)
    assert [r["fill_key"] for r in rows] == [f"{rid}/f1", f"{rid}/f2"]
    assert rows[0]["size_micros"] == 1_000_000


def test_money_is_exact_integer_micros(ledger: Ledger) -> None:
    rid = _run(ledger, start_cash_micros=2**53 + 1)
    big = 2**62 + 3  # beyond a double's exact integers: a float column would round it
    ledger.write([fill(rid, 1, cost_micros=big, cash_delta_micros=-big - 7)])
    (row,) = ledger.rows("fills")
    assert row["cost_micros"] == big and isinstance(row["cost_micros"], int)
    assert row["cash_delta_micros"] == -big - 7
    assert ledger.rows("runs")[0]["start_cash_micros"] == 2**53 + 1


def test_order_status_updates_in_place(ledger: Ledger) -> None:
    rid = _run(ledger)
    ledger.write([order(rid, "A", "live")])
    ledger.write([order(rid, "A", "partial", filled_micros=2_000_000, updated_ns=20)])
    ledger.write([order(rid, "B", "live"), order(rid, "B", "cancelled", updated_ns=30)])
    rows = {r["order_id"]: r for r in ledger.rows("orders", run_id=rid)}
    assert rows["A"]["status"] == "partial" and rows["A"]["filled_micros"] == 2_000_000
    assert rows["B"]["status"] == "cancelled" and rows["B"]["updated_ns"] == 30


def test_rows_for_an_unknown_run_are_refused(ledger: Ledger) -> None:
    with pytest.raises(Exception, match=r"(?i)foreign key"):
        ledger.write([fill("no-such-run", 1)])
    assert ledger.rows("fills") == []


def test_run_mode_is_checked(ledger: Ledger) -> None:
    with pytest.raises(LedgerError, match="'replay'"):
        _run(ledger, mode="replay")
    with pytest.raises(LedgerError, match="no run 'x'"):
        ledger.stop_run("x")


def test_runs_start_and_stop(ledger: Ledger) -> None:
    a = _run(ledger, started_ns=1_000)
    b = _run(ledger, started_ns=2_000, mode="live")
    assert ledger.latest_run() == b
    assert ledger.latest_run(mode="paper") == a
    ledger.stop_run(a, status="crashed", stopped_ns=1_500)
    runs = {r["id"]: r for r in ledger.rows("runs")}
    assert (runs[a]["status"], runs[a]["stopped_ns"]) == ("crashed", 1_500)
    assert runs[b]["status"] == "running" and runs[b]["stopped_ns"] is None


def test_load_state_rebuilds_positions_cash_orders_and_todays_pnl(ledger: Ledger) -> None:
    now = 50 * DAY_NS + 3_600 * 10**9  # 01:00 UTC on day 50
    day0 = 50 * DAY_NS
    old = _run(ledger, started_ns=day0 - 10**9)
    other_venue = _run(ledger, started_ns=day0 - 10**9, venue="polymarket")
    rid = _run(ledger, started_ns=day0 + 10)
    ledger.write(
        [
            fill(old, 1, ts_ns=day0 - 5, realized_micros=-999),  # yesterday: not today's PnL
            fill(old, 2, ts_ns=day0 + 5, realized_micros=-300),  # today, same mode and venue
            fill(other_venue, 3, ts_ns=day0 + 6, realized_micros=-77_000),  # other venue
            # this run: 2 shares of tok-a, snapshot at day0+100, then one more BUY and a SELL
            fill(rid, 10, token_id="tok-a", ts_ns=day0 + 50, cash_delta_micros=-400_000),
            fill(rid, 11, token_id="tok-a", ts_ns=day0 + 60, cash_delta_micros=-400_000),
            PositionRow(
                run_id=rid,
                token_id="tok-a",
                shares_micros=2_000_000,
                cost_micros=800_000,
                avg_price_micros=400_000,
                realized_micros=0,
                ts_ns=day0 + 100,
            ),
            PnlSnapshotRow(
                run_id=rid,
                ts_ns=day0 + 100,
                cash_micros=99_200_000,
                equity_micros=100_000_000,
                realized_micros=0,
                unrealized_micros=0,
                fees_micros=0,
            ),
            fill(rid, 12, token_id="tok-a", ts_ns=day0 + 200, cash_delta_micros=-410_000),
            fill(
                rid,
                13,
                token_id="tok-b",
                side="SELL",
                size_micros=500_000,
                ts_ns=day0 + 300,
                cash_delta_micros=250_000,
                realized_micros=40_000,
            ),
            order(rid, "open-1", "live", created_ns=1),
            order(rid, "done-1", "filled"),
            order(rid, "open-2", "open", created_ns=2),
        ]
    )
    st = ledger.load_state(now_ns=now)
    assert st.run_id == rid and (st.mode, st.venue, st.config_id) == ("paper", "sim", "cfg-1")
    assert st.positions == {"tok-a": 3_000_000, "tok-b": -500_000}
    assert st.cash_micros == 99_200_000 - 410_000 + 250_000
    assert [o.order_id for o in st.open_orders] == ["open-1", "open-2"]
    assert st.realized_today_micros == 40_000 - 300
    assert (st.last_fill_ns, st.fills) == (day0 + 300, 4)
    # without snapshots: starting cash plus every fill
    early = ledger.load_state(old, now_ns=now)
    assert early.cash_micros == 100_000_000 + sum(fill(old, n).cash_delta_micros for n in (1, 2))
    assert early.positions == {"tok-1": 1_000_000, "tok-2": 1_000_000}


def test_load_state_needs_a_run(ledger: Ledger) -> None:
    with pytest.raises(LedgerError, match="no run to recover"):
        ledger.load_state()
    with pytest.raises(LedgerError, match="no run 'gone'"):
        ledger.load_state("gone")


def test_engine_records_map_to_rows(ledger: Ledger) -> None:
    rid = _run(ledger)
    f = Fill(
        intent_id="i7",
        strategy="clipper",
        group_id="g7",
        leg=1,
        token_id="tok",
        side=Side.SELL,
        size=3_000_000,
        price=610_000,
        cost=1_830_000,
        fee=12_345,
        cash_delta=1_817_655,
        realized=91_000,
        position_after=0,
        ts_ns=77,
        order_id="0xabc",
    )
    rep = OrderReport(
        intent_id="i7",
        leg=1,
        token_id="tok",
        side=Side.SELL,
        limit_price=600_000,
        requested=3_000_000,
        filled=3_000_000,
        cost=1_830_000,
        fee=12_345,
        avg_price=610_000,
        status="filled",
        sent_ns=70,
        done_ns=77,
    )
    rej = RejectionRecord(
        intent_id="i8", strategy="s", group_id="g", rule="max_notional", reason="too big", ts_ns=5
    )
    ledger.write(
        [
            fill_row(rid, f, executor="paper"),
            fill_row(rid, f, executor="paper"),
            order_row(rid, rep, strategy="clipper"),
            rejection_row(rid, rej),
            error_row(rid, ErrorRecord(source="feed", error="stale", ts_ns=6)),
        ]
    )
    (fr,) = ledger.rows("fills")
    assert fr["fill_key"] == f"{rid}/0xabc/i7/1/77"
    assert (fr["side"], fr["size_micros"], fr["fee_micros"]) == ("SELL", 3_000_000, 12_345)
    assert (fr["cash_delta_micros"], fr["realized_micros"]) == (1_817_655, 91_000)
    (orow,) = ledger.rows("orders")
    assert orow["order_id"] == "i7/1"  # the report had no venue id
    assert (orow["status"], orow["filled_micros"], orow["created_ns"]) == ("filled", 3_000_000, 70)
    assert [(r["rule"], r["reason"]) for r in ledger.rows("rejections")] == [
        ("max_notional", "too big")
    ]
    assert [(r["source"], r["error"]) for r in ledger.rows("errors")] == [("feed", "stale")]


def test_configs_promote_one_at_a_time(ledger: Ledger) -> None:
    def cfg(cid: str) -> ConfigRow:
        return ConfigRow(
            id=cid,
            body={"strategies": [{"name": "sum_to_100", "min_edge": 5}]},
            git_sha="abc123",
            data_hashes={"rec.jsonl.zst": "ff00"},
            metrics={"pnl_micros": 1_234_567},
            gates={"max_drawdown": "ok"},
            created_ns=1,
        )

    ledger.put_config(cfg("a"))
    ledger.put_config(cfg("b"))
    assert ledger.promoted_config() is None
    ledger.promote_config("a", promoted_ns=10)
    ledger.promote_config("b", promoted_ns=20)
    got = ledger.promoted_config()
    assert got is not None and (got.id, got.promoted_ns) == ("b", 20)
    assert got.body == cfg("b").body and got.metrics == {"pnl_micros": 1_234_567}
    a = ledger.get_config("a")
    assert a is not None and a.status == "retired"
    with pytest.raises(LedgerError, match="no config 'zz'"):
        ledger.promote_config("zz")


def _cfg(cid: str, created_ns: int = 1) -> ConfigRow:
    return ConfigRow(
        id=cid,
        body={"strategies": ["sum_to_100"]},
        git_sha="abc123",
        data_hashes={},
        metrics={},
        gates={},
        created_ns=created_ns,
    )


def test_promotion_history_and_rollback_walk_a_stack(ledger: Ledger) -> None:
    for i, cid in enumerate(["a1b2c3d4", "b1b2c3d4", "c1b2c3d4"]):
        ledger.put_config(_cfg(cid, created_ns=i))
    with pytest.raises(LedgerError, match="was ever promoted"):
        ledger.rollback_config()
    first = ledger.promote_config("a1b2c3d4", by="ops", reason="first", promoted_ns=100)
    assert first.previous_id is None
    with pytest.raises(LedgerError, match="one promotion only"):
        ledger.rollback_config()
    ledger.promote_config("b1b2c3d4", by="ops", promoted_ns=200)
    ledger.promote_config("c1b2c3d4", by="ops", promoted_ns=200)  # same ns: kept in order
    back = ledger.rollback_config(by="alice", reason="bad fills", ts_ns=150)
    assert (back.config_id, back.previous_id, back.action) == ("b1b2c3d4", "c1b2c3d4", "rollback")
    again = ledger.rollback_config(by="alice")
    assert again.config_id == "a1b2c3d4"
    promoted = ledger.promoted_config()
    assert promoted is not None and promoted.id == "a1b2c3d4"
    with pytest.raises(LedgerError, match="one promotion only"):
        ledger.rollback_config()
    hist = ledger.promotion_history()
    assert [(h.action, h.config_id) for h in hist] == [
        ("rollback", "a1b2c3d4"),
        ("rollback", "b1b2c3d4"),
        ("promote", "c1b2c3d4"),
        ("promote", "b1b2c3d4"),
        ("promote", "a1b2c3d4"),
    ]
    assert [h.ts_ns for h in hist] == sorted((h.ts_ns for h in hist), reverse=True)
    assert [c.status for c in ledger.configs()] == ["promoted", "retired", "retired"]
    assert ledger.find_config("b1b2c3").id == "b1b2c3d4"
    ledger.put_config(_cfg("b1b2c3ee", created_ns=9))
    with pytest.raises(LedgerError, match="ambiguous"):
        ledger.find_config("b1b2c3")
    assert ledger.find_config("b1b2c3d").id == "b1b2c3d4"
    with pytest.raises(LedgerError, match="at least 6"):
        ledger.find_config("b1b2c")
    with pytest.raises(LedgerError, match="no config"):
        ledger.find_config("ffffff")


def test_pipeline_runs_are_recorded_start_to_finish(ledger: Ledger) -> None:
    from polylab.store.ledger_configs import PipelineRunRow

    row = PipelineRunRow(
        id="20261128T200000Z-sweep",
        name="sweep",
        status="running",
        started_ns=5,
        folder="runs/pipelines/20261128T200000Z-sweep",
        git_sha="abc",
        params={"strategy": "sum_to_100"},
    )
    ledger.start_pipeline_run(row)
    assert ledger.pipeline_runs()[0].status == "running"
    ledger.finish_pipeline_run(
        row.id, status="failed", error="cell 3 raised", metrics={"configs": 4}, finished_ns=9
    )
    got = ledger.pipeline_runs(name="sweep")
    assert [(g.status, g.error, g.metrics, g.finished_ns) for g in got] == [
        ("failed", "cell 3 raised", {"configs": 4}, 9)
    ]
    assert ledger.pipeline_runs(name="other") == []
    with pytest.raises(LedgerError, match="no pipeline run"):
        ledger.finish_pipeline_run("nope", status="ok")


def test_urls_are_normalised(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    assert resolve_url() == "sqlite:///runs/polylab.db"
    monkeypatch.setenv("DATABASE_URL", "postgres://u:p@h:5432/db")
    assert resolve_url() == "postgresql+psycopg://u:p@h:5432/db"
    assert resolve_url("postgresql://h/db") == "postgresql+psycopg://h/db"
    assert resolve_url("sqlite:///x.db") == "sqlite:///x.db"
    with pytest.raises(LedgerError, match="'mysql'"):
        resolve_url("mysql://h/db")
    with pytest.raises(LedgerError, match="no scheme"):
        resolve_url("just-a-path")


def test_open_unreachable_names_the_url_without_password() -> None:
    with pytest.raises(LedgerError) as info:
        Ledger.open("postgresql://u:hunter2@127.0.0.1:1/db")
    assert "127.0.0.1:1" in str(info.value) and "hunter2" not in str(info.value)

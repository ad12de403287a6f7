"""LedgerWriter on SQLite and PostgreSQL: batches off the caller's thread, futures resolve only
after the commit (ledger first, then bus), refused rows fail alone, flush and close."""

from __future__ import annotations

import threading
from concurrent.futures import wait

import pytest
from sqlalchemy import create_engine, func, select
from store.ledger_data import fill

from polylab.store import ledger_schema
from polylab.store.ledger import Ledger, LedgerError
from polylab.store.ledger_rows import ErrorRow, FillRow
from polylab.store.ledger_writer import LedgerWriter, Row


def _run(ledger: Ledger) -> str:
    return ledger.start_run(mode="paper", venue="sim", config_id="c", code_version="v")


def test_rows_commit_in_batches_and_futures_resolve(ledger: Ledger) -> None:
    rid = _run(ledger)
    latencies: list[int] = []
    w = LedgerWriter(ledger, batch_rows=100, interval_s=0.05, on_latency=latencies.append).start()
    try:
        futs = [w.submit_future(fill(rid, n)) for n in range(1_000)]
        assert w.flush(timeout=60)
        assert all(f.done() and f.exception() is None for f in futs)
        keys = [r["fill_key"] for r in ledger.rows("fills", run_id=rid)]
        assert sorted(keys) == sorted(f"{rid}/f{n}" for n in range(1_000))
        assert w.stats.committed == 1_000 and w.stats.failed == 0
        assert 10 <= w.stats.batches < 1_000  # rows went in groups, at most 100 each
        assert len(latencies) == 1_000 and min(latencies) > 0
        assert 0 < w.latency_ns(0.5) <= w.latency_ns(0.99)
        assert w.depth == 0 and not w.halt and w.up
    finally:
        assert w.close(timeout=30) == 0


def test_a_fill_is_committed_before_its_future_says_so(ledger: Ledger) -> None:
    """The "ledger first, then bus" contract: when the callback runs (where the runner
    publishes), another connection already sees the fill."""
    rid = _run(ledger)
    seen: list[bool] = []
    other = create_engine(ledger.engine.url)
    done = threading.Event()
    w = LedgerWriter(ledger, interval_s=0.0).start()
    try:

        def publish(row: Row, exc: BaseException | None) -> None:
            assert exc is None and isinstance(row, FillRow)
            with other.connect() as conn:
                q = select(func.count()).where(ledger_schema.fills.c.fill_key == row.fill_key)
                seen.append(conn.execute(q).scalar_one() == 1)
            if len(seen) == 20:
                done.set()

        for n in range(20):
            w.submit(fill(rid, n), publish)
        assert done.wait(60)
        assert seen == [True] * 20
    finally:
        w.close(timeout=30)
        other.dispose()


def test_a_refused_row_fails_alone(ledger: Ledger) -> None:
    rid = _run(ledger)
    w = LedgerWriter(ledger, batch_rows=50, interval_s=0.2).start()
    try:
        good = [w.submit_future(fill(rid, n)) for n in range(10)]
        bad = w.submit_future(fill("no-such-run", 99))  # foreign key: the database refuses it
        good += [w.submit_future(fill(rid, n)) for n in range(10, 20)]
        assert w.flush(timeout=60)
        wait([*good, bad], timeout=10)
        assert all(f.exception() is None for f in good)
        assert bad.exception() is not None
        assert w.stats.failed == 1 and w.stats.committed == 20
        assert len(ledger.rows("fills")) == 20
        assert w.up  # a refused row is not an outage
    finally:
        w.close(timeout=30)


def test_the_same_fill_submitted_twice_is_stored_once(ledger: Ledger) -> None:
    rid = _run(ledger)
    w = LedgerWriter(ledger, batch_rows=7).start()
    try:
        for n in list(range(30)) + list(range(0, 30, 2)):
            w.submit(fill(rid, n))
        assert w.flush(timeout=60)
    finally:
        w.close(timeout=30)
    assert len(ledger.rows("fills")) == 30
    assert w.stats.committed == 45  # every submission resolved; the repeats were no-ops


def test_close_flushes_then_refuses(ledger: Ledger) -> None:
    rid = _run(ledger)
    w = LedgerWriter(ledger, interval_s=10.0).start()  # a long interval: close must not wait it
    w.submit(ErrorRow(row_key="e1", run_id=rid, source="feed", error="gap", ts_ns=1))
    assert w.close(timeout=30) == 0
    assert [r["row_key"] for r in ledger.rows("errors")] == ["e1"]
    with pytest.raises(LedgerError, match="closed"):
        w.submit(fill(rid, 1))


def test_bad_limits_are_refused(ledger: Ledger) -> None:
    with pytest.raises(ValueError, match="halt_depth"):
        LedgerWriter(ledger, halt_depth=10, max_depth=5)

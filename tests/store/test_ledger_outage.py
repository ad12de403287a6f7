"""The outage policy on the real PostgreSQL (backends killed mid-commit, a server that refuses
connections) and on SQLite (a file locked by another process). Rows stay queued, the writer
reconnects, every fill lands exactly once; a deep queue raises ``halt`` and a full one refuses
with ``LedgerFull``."""

from __future__ import annotations

import sqlite3
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select
from store.ledger_data import fill, pg_admin, pg_url
from store.tcp_proxy import TcpProxy

from polylab.store import ledger_schema
from polylab.store.ledger import Ledger
from polylab.store.ledger_writer import LedgerFull, LedgerWriter


def _wait(cond: object, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(cond) and cond():
            return True
        time.sleep(0.01)
    return False


def _exactly_once(ledger: Ledger, rid: str, n: int) -> None:
    c = ledger_schema.fills.c
    with ledger.engine.connect() as conn:
        total = conn.execute(select(func.count()).where(c.run_id == rid)).scalar_one()
        keys = conn.execute(select(func.count(func.distinct(c.fill_key)))).scalar_one()
    assert (total, keys) == (n, n)
    got = {r["fill_key"] for r in ledger.rows("fills", run_id=rid)}
    assert got == {f"{rid}/f{i}" for i in range(n)}


@pytest.fixture
def pg_ledger(pg_base: str, pg_schema: str) -> Iterator[tuple[Ledger, str]]:
    app = f"polylab-outage-{uuid.uuid4().hex[:10]}"
    led = Ledger.open(pg_url(pg_base, pg_schema), application_name=app)
    yield led, app
    led.close()


def test_fills_land_once_when_backends_are_killed_mid_commit(
    pg_ledger: tuple[Ledger, str], pg_schema: str
) -> None:
    ledger, app = pg_ledger
    rid = ledger.start_run(mode="paper", venue="sim", config_id="c", code_version="v")
    events: list[bool] = []
    w = LedgerWriter(
        ledger, batch_rows=200, interval_s=0.01, on_status=lambda up, _: events.append(up)
    )
    w.start()
    n = 0
    try:
        for round_ in range(3):
            # hold the fills table so the writer's next INSERT waits inside its transaction,
            # then kill the writer's backends while that commit is in flight
            # (a second connection watches: pg_stat_activity is frozen inside a transaction)
            with pg_admin() as admin, pg_admin() as watch:
                admin.execute(f'SET search_path TO "{pg_schema}"')
                with admin.transaction():
                    admin.execute("LOCK TABLE fills IN EXCLUSIVE MODE")
                    for _ in range(300):
                        w.submit(fill(rid, n))
                        n += 1
                    assert _wait(
                        lambda: (
                            watch.execute(
                                "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s"
                                " AND wait_event_type = 'Lock'",
                                (app,),
                            ).fetchone()
                            == (1,)
                        )
                    ), "the writer never blocked on the lock"
                    killed = watch.execute(
                        "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM"
                        " pg_stat_activity WHERE application_name = %s) k",
                        (app,),
                    ).fetchone()
                    assert killed is not None and killed[0] >= 1
                # lock released: the writer reconnects and commits the queue
            for _ in range(100):  # trading goes on meanwhile
                w.submit(fill(rid, n))
                n += 1
            assert w.flush(timeout=60)  # reconnected, the queue committed in order
            assert w.stats.outages == round_ + 1
        assert w.flush(timeout=60)
        _exactly_once(ledger, rid, n)
        assert w.stats.committed == n and w.stats.failed == 0
        assert events == [False, True] * 3
        assert w.up and not w.halt
    finally:
        w.close(timeout=30)


def test_a_refusing_server_queues_halts_then_catches_up(pg_base: str, pg_schema: str) -> None:
    proxy = TcpProxy(("127.0.0.1", 5432))
    proxy.start()
    ledger = Ledger.open(pg_url(pg_base, pg_schema, host_port=f"127.0.0.1:{proxy.port}"))
    rid = ledger.start_run(mode="paper", venue="sim", config_id="c", code_version="v")
    events: list[bool] = []
    w = LedgerWriter(
        ledger,
        batch_rows=50,
        interval_s=0.01,
        halt_depth=200,
        max_depth=400,
        backoff_s=(0.02, 0.2),
        on_status=lambda up, _: events.append(up),
    ).start()
    n = 0
    try:
        for _ in range(100):
            w.submit(fill(rid, n))
            n += 1
        assert w.flush(timeout=60)
        proxy.stop()  # connections cut, new ones refused
        for _ in range(150):
            w.submit(fill(rid, n))
            n += 1
        assert _wait(lambda: not w.up), "the writer never noticed the outage"
        assert not w.halt and w.down_since_ns > 0
        for _ in range(100):
            w.submit(fill(rid, n))
            n += 1
        assert w.halt  # 250 queued ≥ halt_depth: the runner stops new intents
        for _ in range(150):  # fills of orders already in flight are still taken
            w.submit(fill(rid, n))
            n += 1
        with pytest.raises(LedgerFull, match="400 rows"):
            w.submit(fill(rid, 10_000))
        assert w.depth == 400 and not w.flush(timeout=0.2)
        proxy.start()
        assert w.flush(timeout=60)
        _exactly_once(ledger, rid, n)
        assert w.up and not w.halt and w.down_since_ns == 0
        assert events == [False, True]
        assert w.stats.max_depth_seen == 400 and w.stats.retries >= 1
    finally:
        w.close(timeout=10)
        ledger.close()
        proxy.stop()


def test_a_locked_sqlite_file_queues_then_catches_up(tmp_path: Path) -> None:
    """SQLite's outage: another process holds the file's write lock past the busy timeout."""
    path = tmp_path / "ledger.db"
    ledger = Ledger.open(f"sqlite:///{path}?timeout=0.2")
    rid = ledger.start_run(mode="paper", venue="sim", config_id="c", code_version="v")
    events: list[bool] = []
    w = LedgerWriter(
        ledger,
        batch_rows=20,
        interval_s=0.01,
        backoff_s=(0.02, 0.1),
        on_status=lambda up, _: events.append(up),
    ).start()
    blocker = sqlite3.connect(path, timeout=5, isolation_level=None)
    n = 0
    try:
        for _ in range(50):
            w.submit(fill(rid, n))
            n += 1
        assert w.flush(timeout=60)
        blocker.execute("BEGIN EXCLUSIVE")
        for _ in range(100):
            w.submit(fill(rid, n))
            n += 1
        assert _wait(lambda: not w.up), "the writer never noticed the locked file"
        assert w.depth > 0
        blocker.execute("COMMIT")
        assert w.flush(timeout=60)
        _exactly_once(ledger, rid, n)
        assert events == [False, True] and w.stats.failed == 0
    finally:
        blocker.close()
        w.close(timeout=10)
        ledger.close()

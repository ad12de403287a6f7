"""``/api/history``: the run and its PnL over time from the ledger (a SQLite file here)."""

from __future__ import annotations

from pathlib import Path

import redis.asyncio as aioredis
from dashboard.helpers import Dash, Served, free_port

from polylab.bus import InProcessBus
from polylab.dashboard.app import create_app
from polylab.dashboard.auth import AuthSettings, AuthStore
from polylab.store.ledger import Ledger
from polylab.store.ledger_rows import PnlSnapshotRow


def _served(redis_url: str, prefix: str, secret: str, ledger: Ledger | None) -> tuple[Served, Dash]:
    settings = AuthSettings(secret=secret.encode(), prefix=prefix)
    store = AuthStore(aioredis.Redis.from_url(redis_url), settings)
    served = Served(create_app(InProcessBus(), store, ledger=ledger), free_port())
    return served, Dash(served.url, settings, prefix, redis_url, None)  # type: ignore[arg-type]


def test_history_gives_the_latest_run_and_its_pnl_oldest_first(
    tmp_path: Path, redis_url: str, prefix: str, secret: str
) -> None:
    ledger = Ledger.open(f"sqlite:///{tmp_path / 'ledger.db'}")
    old = ledger.start_run(
        mode="paper", venue="sim", config_id="c0", code_version="v", started_ns=1
    )
    rid = ledger.start_run(mode="paper", venue="sim", config_id="c1", code_version="v")
    snaps = [
        PnlSnapshotRow(
            run_id=r,
            ts_ns=ts,
            cash_micros=10_000_000_000,
            equity_micros=10_000_000_000 + ts,
            realized_micros=ts * 10,
            unrealized_micros=-ts,
            fees_micros=0,
        )
        for r, ts in [(rid, 3_000), (rid, 1_000), (old, 5_000), (rid, 2_000)]
    ]
    ledger.write(snaps)
    served, dash = _served(redis_url, prefix, secret, ledger)
    try:
        with dash.client() as anonymous:
            assert anonymous.get("/api/history").status_code == 401
        c = dash.login()
        h = c.get("/api/history").json()
        assert h["run"]["id"] == rid and h["run"]["config_id"] == "c1"
        assert [p[:3] for p in h["pnl"]] == [
            [1_000, 10_000, -1_000],
            [2_000, 20_000, -2_000],
            [3_000, 30_000, -3_000],
        ]
        c.close()
    finally:
        served.close()
        ledger.close()


def test_without_a_ledger_history_is_a_clear_404(redis_url: str, prefix: str, secret: str) -> None:
    served, dash = _served(redis_url, prefix, secret, None)
    try:
        c = dash.login()
        r = c.get("/api/history")
        assert r.status_code == 404 and r.json() == {"error": "no ledger configured"}
        c.close()
    finally:
        served.close()

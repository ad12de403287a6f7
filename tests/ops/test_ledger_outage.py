"""The ledger goes down and comes back (its SQLite file locked by another connection past the
busy timeout) under a runner's ``Ops``: /health turns 503 naming the ledger then 200 again,
Slack gets "ledger DOWN" then "ledger back" (the writer's thread calls in), and /metrics holds
one ledger write latency sample per committed row."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
from ops_helpers import asynctest, webhook_receiver
from store.ledger_data import fill

from polylab.ops.alerts import AlertConfig
from polylab.ops.service import Ops, OpsConfig
from polylab.store.ledger import Ledger
from polylab.store.ledger_writer import LedgerWriter


async def until(cond: Callable[[], Awaitable[bool]], what: str, limit_s: float = 30.0) -> None:
    end = time.monotonic() + limit_s
    while not await cond():
        assert time.monotonic() < end, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


@asynctest
async def test_ledger_down_and_back_through_health_alerts_and_metrics(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    ledger = Ledger.open(f"sqlite:///{path}?timeout=0.2")
    rid = ledger.start_run(mode="paper", venue="sim", config_id="c", code_version="v")
    async with webhook_receiver() as rx:
        ops = Ops(
            OpsConfig(http_port=0, alerts=AlertConfig(webhook_url=rx.url)), service="polylab t"
        )
        writer = LedgerWriter(
            ledger,
            batch_rows=20,
            interval_s=0.01,
            backoff_s=(0.02, 0.1),
            on_status=ops.ledger_status,
            on_latency=ops.metrics.observe_ledger_write_ns,
        ).start()
        ops.attach(ledger=writer)
        await ops.start("ledger outage test")
        blocker = sqlite3.connect(path, timeout=5, isolation_level=None)
        n = 0
        try:
            async with httpx.AsyncClient(base_url=ops.server.url) as c:

                async def status(code: int) -> bool:
                    return (await c.get("/health")).status_code == code

                for _ in range(30):
                    writer.submit(fill(rid, n))
                    n += 1
                assert await asyncio.to_thread(writer.flush, 30)
                assert await status(200)
                blocker.execute("BEGIN EXCLUSIVE")
                for _ in range(30):
                    writer.submit(fill(rid, n))
                    n += 1
                await until(lambda: status(503), "/health 503 with the ledger locked")
                body = (await c.get("/health")).json()
                assert body["checks"]["ledger"]["problem"] == "database unreachable"
                assert body["checks"]["ledger"]["queued_rows"] > 0
                await rx.wait_for(2)
                blocker.execute("COMMIT")
                assert await asyncio.to_thread(writer.flush, 30)
                await until(lambda: status(200), "/health 200 once the lock is gone")
                await rx.wait_for(3)
                metrics = (await c.get("/metrics")).text
        finally:
            blocker.close()
            await asyncio.to_thread(writer.close, 10)
            await ops.close("end of test")
            ledger.close()
        texts = rx.texts
    assert "started ledger outage test" in texts[0]
    assert "ledger DOWN" in texts[1] and ":rotating_light:" in texts[1]
    assert "ledger back after" in texts[2]
    assert sum("ledger DOWN" in t for t in texts) == 1
    assert sum("ledger back" in t for t in texts) == 1
    assert writer.stats.committed == n == 60
    assert f"polylab_ledger_write_seconds_count {float(n)}" in metrics

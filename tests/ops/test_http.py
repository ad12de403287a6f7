"""The ops HTTP server over loopback (httpx): /health readiness and detail, /metrics, the feed
check on a real market feed against the simulator, and the ``Ops`` bundle end to end."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import msgspec
import pytest
from engine_recordings import write_negrisk_arb
from ops_helpers import asynctest, webhook_receiver
from prometheus_client.parser import text_string_to_metric_families

from polylab.backtest import run_backtest
from polylab.book.market_feed import MarketFeed, MarketFeedConfig
from polylab.bus import InProcessBus
from polylab.config import load_config
from polylab.ops.health import CheckResult, Health, age_check, bus_check, feed_check, ledger_check
from polylab.ops.http import OpsServer
from polylab.ops.metrics import Metrics
from polylab.ops.service import Ops, OpsConfig
from polylab.ops.settings import http_settings
from polylab.sim.config import SimConfig
from polylab.sim.server import running_sim


async def serve(health: Health, metrics: Metrics | None = None) -> OpsServer:
    return await OpsServer(health, metrics or Metrics(), port=0).start()


@asynctest
async def test_health_is_200_when_every_check_passes_and_503_with_detail_otherwise() -> None:
    health = Health(timeout_s=0.5)
    srv = await serve(health)
    state = {"ok": True}

    async def slow() -> CheckResult:
        await asyncio.sleep(30)
        return CheckResult(ok=True)

    def broken() -> CheckResult:
        raise RuntimeError("cannot reach postgresql://u:Hunter2pw@db/x\nsecond line")

    try:
        async with httpx.AsyncClient(base_url=srv.url) as c:
            r = await c.get("/health")
            assert r.status_code == 200 and r.json()["ready"] is True  # no checks: ready
            health.register("toggle", lambda: CheckResult(ok=state["ok"], detail={"n": 1}))
            r = await c.get("/health")
            body = r.json()
            assert r.status_code == 200 and body["live"] is True
            assert body["checks"] == {"toggle": {"ok": True, "n": 1}}
            state["ok"] = False
            r = await c.get("/health")
            assert r.status_code == 503
            assert r.json()["ready"] is False and r.json()["live"] is True
            assert r.json()["checks"]["toggle"]["ok"] is False
            state["ok"] = True
            health.register("slow", slow)
            health.register("broken", broken)
            r = await c.get("/health")
            checks = r.json()["checks"]
            assert r.status_code == 503
            assert checks["toggle"]["ok"] is True
            assert checks["slow"] == {"ok": False, "error": "timed out after 0.5 s"}
            assert checks["broken"] == {
                "ok": False,
                "error": "RuntimeError: cannot reach postgresql://u:<redacted>@db/x",
            }
            live = await c.get("/health/live")  # liveness does not depend on readiness
            assert live.status_code == 200 and live.json()["live"] is True
            health.unregister("slow")
            health.unregister("broken")
            assert (await c.get("/health")).status_code == 200
            assert (await c.get("/nope")).status_code == 404
    finally:
        await srv.close()


@asynctest
async def test_metrics_endpoint_serves_the_private_registry() -> None:
    m = Metrics()
    m.bus_dropped("queue_full", 3)
    m.observe_tick_to_order_ns(250_000)
    m.set_open_orders(4)
    srv = await serve(Health(), m)
    try:
        async with httpx.AsyncClient(base_url=srv.url) as c:
            r = await c.get("/metrics")
    finally:
        await srv.close()
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for fam in text_string_to_metric_families(r.text)
        for s in fam.samples
    }
    assert samples[("polylab_bus_dropped_total", (("reason", "queue_full"),))] == 3
    assert samples[("polylab_open_orders", ())] == 4
    assert samples[("polylab_tick_to_order_seconds_count", ())] == 1
    assert samples[("polylab_tick_to_order_seconds_bucket", (("le", "0.0003"),))] == 1
    assert samples[("polylab_tick_to_order_seconds_bucket", (("le", "0.0002"),))] == 0
    assert "python_gc_objects_collected_total" not in r.text  # not the global registry


@asynctest
async def test_feed_check_follows_a_real_feed_up_and_down() -> None:
    cfg = SimConfig(generator=False)
    sim_cm = running_sim(cfg)
    sim = await sim_cm.__aenter__()
    sim_open = True
    try:
        tokens = [t for m in sim.state.exchange.markets.markets.values() for t in m.token_ids]
        fcfg = msgspec.convert(
            {"url": sim.ws_url + "/ws/market", "backoff_min_ms": 20, "backoff_max_ms": 100},
            MarketFeedConfig,
        )
        async with MarketFeed(fcfg) as feed:
            health = Health()
            health.register("feed", feed_check(feed, max_quiet_s=5.0, max_stale_books=0))
            before, detail0 = await health.readiness()
            assert not before and "no shard connected" in detail0["feed"].detail["problem"]
            await feed.subscribe(tokens)
            assert await feed.wait_fresh(10)
            ready, detail = await health.readiness()
            assert ready, detail
            assert detail["feed"].detail["connected"] == 1
            assert detail["feed"].detail["stale_books"] == 0
            await sim_cm.__aexit__(None, None, None)  # the venue goes away
            sim_open = False
            for _ in range(200):
                ready, detail = await health.readiness()
                if not ready:
                    break
                await asyncio.sleep(0.05)
            assert not ready
            assert "problem" in detail["feed"].detail
    finally:
        if sim_open:
            await sim_cm.__aexit__(None, None, None)


@dataclass
class WriterState:
    """The part of a ledger writer ``ledger_check`` reads (values, not a database)."""

    up: bool = True
    depth: int = 0
    halt: bool = False


@asynctest
async def test_ready_made_checks_report_their_problem() -> None:
    w = WriterState()
    bus = InProcessBus(queue_max=2)
    last = {"ns": 0}
    health = Health()
    health.register("ledger", ledger_check(w))
    health.register("bus", bus_check(bus))
    health.register("state", age_check(lambda: last["ns"], max_age_s=1.0, what="last poly:state"))
    ready, d = await health.readiness()
    assert not ready and d["state"].detail["problem"] == "no last poly:state yet"
    assert d["bus"].detail["problem"] == "backend unreachable"  # not started
    await bus.start()
    last["ns"] = time.time_ns()
    assert (await health.readiness())[0]
    last["ns"] = time.time_ns() - 5_000_000_000
    ready, d = await health.readiness()
    assert not ready and d["state"].detail["problem"].startswith("last poly:state 5.")
    last["ns"] = time.time_ns()
    w.up = False
    ready, d = await health.readiness()
    assert not ready and d["bus"].ok
    assert d["ledger"].detail == {
        "up": False,
        "queued_rows": 0,
        "halt": False,
        "problem": "database unreachable",
    }
    w.up, w.halt = True, True
    assert (await health.readiness())[1]["ledger"].detail["problem"].startswith("write queue")
    await bus.close()
    ready, d = await health.readiness()
    assert d["bus"].detail == {
        "backend": "inprocess",
        "connected": False,
        "queued": 0,
        "dropped": 0,
        "problem": "backend unreachable",
    }


def test_http_settings_from_the_environment() -> None:
    assert http_settings({}) == ("127.0.0.1", 8080)
    assert http_settings({"PORT": "7000"}) == ("127.0.0.1", 7000)
    env = {"POLYLAB_HTTP_HOST": "0.0.0.0", "POLYLAB_HTTP_PORT": "9100", "PORT": "7000"}
    assert http_settings(env) == ("0.0.0.0", 9100)
    with pytest.raises(ValueError, match=r"POLYLAB_HTTP_PORT must be a port number .*'80a'"):
        http_settings({"POLYLAB_HTTP_PORT": "80a"})


@asynctest
async def test_port_in_use_is_a_clear_error() -> None:
    a = await serve(Health())
    try:
        with pytest.raises(OSError, match=f"cannot serve /health on 127.0.0.1:{a.port}"):
            await OpsServer(Health(), Metrics(), port=a.port).start()
    finally:
        await a.close()


@asynctest
async def test_ops_bundle_end_to_end(tmp_path: Path) -> None:
    rec = tmp_path / "arb.jsonl"
    write_negrisk_arb(rec)
    cfg = load_config(env={"RISK_MAX_POSITION": "1000"}).__replace__(strategies=("sum_to_100",))
    _, _, engine = run_backtest(rec, cfg)
    async with webhook_receiver() as rx:
        ops_cfg = OpsConfig.from_env(
            {"SLACK_WEBHOOK_URL": rx.url, "ALERT_FEED_STALE_S": "12"}, http_port=0
        )
        assert ops_cfg.rules.feed_stale_s == 12.0 and ops_cfg.alerts.webhook_url == rx.url
        ops = Ops(ops_cfg, service="polylab paper")
        stamp = {"ns": time.time_ns()}
        await ops.start("paper, sum_to_100")
        try:
            async with httpx.AsyncClient(base_url=ops.server.url) as c:
                r = await c.get("/health")  # the port is open before the session is plugged in
                assert r.status_code == 503
                assert r.json()["checks"]["runner"]["problem"] == "session not started yet"
                ops.attach(engine=engine, state_last_ns=lambda: stamp["ns"])
                r = await c.get("/health")
                assert r.status_code == 200 and set(r.json()["checks"]) == {"runner", "state"}
                ops.tick()
                text = (await c.get("/metrics")).text
            assert f"polylab_intents_approved_total {float(engine.stats.approved)}" in text
            assert f"polylab_fills_total {float(len(engine.portfolio.history))}" in text
        finally:
            await ops.close("end of test")
        texts = rx.texts
    assert len(texts) == 2
    assert "[polylab paper] started paper, sum_to_100" in texts[0]
    assert "[polylab paper] stopped end of test" in texts[1]
    assert ops.watch_errors == 0


def test_ops_config_names_a_bad_variable() -> None:
    with pytest.raises(ValueError, match="ALERT_FEED_STALE_S must be a number, got 'soon'"):
        OpsConfig.from_env({"ALERT_FEED_STALE_S": "soon"})
    with pytest.raises(ValueError, match="ALERT_ORDER_ERRORS must be a whole number"):
        OpsConfig.from_env({"ALERT_ORDER_ERRORS": "-1"})

"""The bus goes down and comes back (a test-owned redis-server, SIGKILLed and restarted) under
a runner's ``Ops``: /health turns 503 naming the bus then 200 again, Slack gets "bus DOWN"
then "bus back" (one each), and /metrics counts the messages the outage cost."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
from ops_helpers import asynctest, webhook_receiver

from polylab.bus import ERRORS, STATE, ErrorMessage, PeriodicPublisher, StateMessage
from polylab.bus.redis_bus import RedisBus
from polylab.ops.alerts import AlertConfig
from polylab.ops.service import Ops, OpsConfig


async def until(cond: Callable[[], Awaitable[bool]], what: str, limit_s: float = 20.0) -> None:
    end = time.monotonic() + limit_s
    while not await cond():
        assert time.monotonic() < end, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


def test_bus_down_and_back_through_health_alerts_and_metrics(owned_redis: Any) -> None:
    asynctest(_scenario)(owned_redis)


async def _scenario(server: Any) -> None:
    bus = RedisBus(server.url, prefix="ops-test:", backoff_max_s=0.2, socket_timeout_s=0.5)
    await bus.start()
    t0 = time.time_ns()
    pub = PeriodicPublisher(
        bus,
        STATE,
        lambda: StateMessage(
            ts_ns=time.time_ns(), mode="paper", uptime_ms=(time.time_ns() - t0) // 1_000_000
        ),
    )
    pub_task = asyncio.create_task(pub.run())

    async def errors() -> None:  # stream traffic too, so the backlog path is exercised
        i = 0
        while True:
            i += 1
            bus.publish(ERRORS, ErrorMessage(ts_ns=i, source="t", error="E", message=str(i)))
            await asyncio.sleep(0.02)

    err_task = asyncio.create_task(errors())
    async with webhook_receiver() as rx:
        cfg = OpsConfig(
            http_port=0,
            watch_every_s=0.05,
            state_max_age_s=5.0,
            alerts=AlertConfig(webhook_url=rx.url, dedupe_s=300.0),
        )
        ops = Ops(cfg, service="polylab outage-test")
        ops.attach(bus=bus, state=pub)
        await ops.start("outage test")
        try:
            async with httpx.AsyncClient(base_url=ops.server.url) as c:

                async def status(code: int) -> bool:
                    return (await c.get("/health")).status_code == code

                await until(lambda: status(200), "bus connected")
                server.kill()
                await until(lambda: status(503), "/health 503 with Redis down")
                body = (await c.get("/health")).json()
                assert body["live"] is True and body["ready"] is False
                assert body["checks"]["bus"]["ok"] is False
                assert body["checks"]["bus"]["problem"] == "backend unreachable"
                assert body["checks"]["state"]["ok"] is True  # publishing never stopped
                await rx.wait_for(2)
                assert "bus DOWN" in rx.texts[1]
                server.start()
                await until(lambda: status(200), "/health 200 after Redis is back")
                await rx.wait_for(3)
                ops.tick()
                at_tick = bus.health().dropped  # no await in between: the same counts
                metrics = (await c.get("/metrics")).text
        finally:
            err_task.cancel()
            pub_task.cancel()
            for t in (err_task, pub_task):
                with contextlib.suppress(asyncio.CancelledError):
                    await t
            await ops.close("end of test")
            await bus.close(timeout_s=5)
        texts = rx.texts
    assert "started outage test" in texts[0]
    assert [t for t in texts if "bus DOWN" in t] == [texts[1]]
    assert "bus back after" in texts[2]
    assert sum("bus back" in t for t in texts) == 1
    assert "stopped end of test" in texts[-1]
    down = at_tick.get("redis_down", 0)
    assert down > 0  # pub/sub messages published while Redis was away
    assert f'polylab_bus_dropped_total{{reason="redis_down"}} {float(down)}' in metrics

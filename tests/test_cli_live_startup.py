"""Live start-up rides out a briefly failing venue (issue 9 §2): market discovery and API-key
creation retry 5xx answers and dropped connections with the REST policy, and give up on the
rest. A tiny aiohttp proxy in front of the real simulator fails the first calls of each path."""

from __future__ import annotations

import asyncio
import collections
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
import httpx
import pytest
from aiohttp import web

from polylab.config import load_config
from polylab.errors import DiscoveryError, NotFound, ServerError
from polylab.execution.live import Credentials
from polylab.runner.live import run_live
from polylab.runner.paper import Venue
from polylab.runner.startup import is_transient
from polylab.sim.config import SimConfig
from polylab.sim.server import running_sim

KEY = "0x" + "4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318"


class Flaky:
    """Per path: how many first calls fail, and how (``503`` answer or a dropped connection)."""

    def __init__(self, plan: dict[str, tuple[int, str]]) -> None:
        self.plan = plan
        self.calls: collections.Counter[str] = collections.Counter()
        self.failed: collections.Counter[str] = collections.Counter()
        self.passed: collections.Counter[str] = collections.Counter()


@asynccontextmanager
async def flaky_proxy(target: str, flaky: Flaky) -> AsyncIterator[str]:
    session = aiohttp.ClientSession()

    async def handle(request: web.Request) -> web.StreamResponse:
        path = request.path
        flaky.calls[path] += 1
        n, how = flaky.plan.get(path, (0, ""))
        if flaky.calls[path] <= n:
            flaky.failed[path] += 1
            if how == "drop":
                assert request.transport is not None
                request.transport.abort()  # the client sees the connection die mid-request
                return web.Response(status=500)
            return web.json_response({"error": "service unavailable"}, status=int(how))
        headers = {
            k: v for k, v in request.headers.items() if k.lower() not in ("host", "content-length")
        }
        async with session.request(
            request.method, target + request.path_qs, data=await request.read(), headers=headers
        ) as r:
            body = await r.read()
            if r.status < 300:
                flaky.passed[path] += 1
            return web.Response(body=body, status=r.status, content_type=r.content_type)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = next(a[1] for a in runner.addresses if isinstance(a, tuple))
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()
        await session.close()


def test_live_start_up_retries_5xx_and_dropped_connections() -> None:
    flaky = Flaky(
        {
            "/gamma/markets": (2, "503"),
            "/gamma/events": (1, "drop"),
            "/auth/api-key": (1, "503"),
        }
    )

    async def main() -> tuple[int, bool]:
        async with running_sim(SimConfig(seed=3)) as sim, flaky_proxy(sim.url, flaky) as url:
            v = Venue(url=url, ws_url=sim.ws_url, simulated=True)
            cfg = load_config(env={"DRY_RUN": "false"})
            _, run, ex = await run_live(cfg, v, Credentials(KEY, None), live=True, seconds=1.0)
            return len(run.catalog.markets), ex.config.dry_run

    markets, dry_run = asyncio.run(main())
    assert markets > 0 and dry_run is False
    assert flaky.failed == {"/gamma/markets": 2, "/gamma/events": 1, "/auth/api-key": 1}
    assert flaky.passed["/gamma/markets"] >= 1 and flaky.passed["/gamma/events"] >= 1
    assert flaky.passed["/auth/api-key"] == 1  # the key was created after the 503


def test_discovery_gives_up_after_the_policy_s_attempts_and_never_retries_a_4xx() -> None:
    async def attempt(plan: dict[str, tuple[int, str]]) -> tuple[Flaky, BaseException]:
        flaky = Flaky(plan)
        async with running_sim(SimConfig(seed=3)) as sim, flaky_proxy(sim.url, flaky) as url:
            v = Venue(url=url, ws_url=sim.ws_url, simulated=True)
            with pytest.raises(DiscoveryError) as info:
                await run_live(load_config(env={}), v, Credentials(KEY, None), seconds=0.5)
        return flaky, info.value

    flaky, err = asyncio.run(attempt({"/gamma/markets": (99, "503")}))
    assert flaky.calls["/gamma/markets"] == 4 and "503" in str(err)  # RestConfig.max_attempts
    flaky, err = asyncio.run(attempt({"/gamma/markets": (99, "404")}))
    assert flaky.calls["/gamma/markets"] == 1 and "404" in str(err)


def test_what_counts_as_transient() -> None:
    assert is_transient(ServerError(503, "down"))
    assert not is_transient(NotFound(404, "no"))
    assert is_transient(ConnectionResetError())
    assert is_transient(DiscoveryError("GET /markets offset=0: HTTP 502: bad gateway"))
    assert is_transient(DiscoveryError("GET /markets offset=0: HTTP 429: slow down"))
    assert not is_transient(DiscoveryError("GET /markets offset=0: HTTP 400: bad"))
    assert not is_transient(DiscoveryError("market 7: version missing"))
    dropped = DiscoveryError("GET /events offset=0: RemoteProtocolError()")
    dropped.__cause__ = httpx.RemoteProtocolError("server disconnected")
    assert is_transient(dropped)

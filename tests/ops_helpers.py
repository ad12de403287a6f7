"""Helpers for tests/ops: an async test runner and a local webhook receiver (a real HTTP
server on loopback that records what it is sent, standing in for Slack)."""

from __future__ import annotations

import asyncio
import functools
import json
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Any

from aiohttp import web


def asynctest(fn: Callable[..., Coroutine[Any, Any, None]]) -> Callable[..., None]:
    """Run an async test on a fresh loop, bounded in time (no async pytest plugin needed)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        asyncio.run(asyncio.wait_for(fn(*args, **kwargs), 25))

    return wrapper


class Receiver:
    """What the webhook received: each POST's JSON body, and the status to answer with."""

    def __init__(self) -> None:
        self.payloads: list[dict[str, Any]] = []
        self.raw: list[bytes] = []
        self.status = 200
        self.url = ""
        self.arrived = asyncio.Event()

    @property
    def texts(self) -> list[str]:
        return [str(p.get("text", "")) for p in self.payloads]

    async def wait_for(self, n: int, timeout_s: float = 10.0) -> list[str]:
        """Wait until ``n`` payloads arrived; returns their texts."""
        async with asyncio.timeout(timeout_s):
            while len(self.payloads) < n:
                self.arrived.clear()
                await self.arrived.wait()
        return self.texts


@asynccontextmanager
async def webhook_receiver(
    path: str = "/services/T000/B000/hooksecretXyz123",
) -> AsyncIterator[Receiver]:
    """A Slack-like incoming webhook on an ephemeral loopback port."""
    rec = Receiver()

    async def hook(request: web.Request) -> web.Response:
        body = await request.read()
        rec.raw.append(body)
        rec.payloads.append(json.loads(body))
        rec.arrived.set()
        return web.Response(text="ok", status=rec.status)

    app = web.Application()
    app.router.add_post(path, hook)
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    rec.url = f"http://127.0.0.1:{port}{path}"
    try:
        yield rec
    finally:
        await runner.cleanup()

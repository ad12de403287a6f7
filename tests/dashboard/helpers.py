"""Dashboard test helpers: a served dashboard, a runner's bus on its own loop, waiting."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx
import redis.asyncio as aioredis
import uvicorn

from polylab.bus import CONTROL, RedisBus, StateMessage, Subscription
from polylab.bus.messages import Message
from polylab.dashboard.auth import AuthSettings, AuthStore

T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(pred: Callable[[], T], what: str, timeout_s: float = 10.0) -> T:
    """Poll ``pred`` until it returns something truthy (a hang guard, not a timing check)."""
    deadline = time.monotonic() + timeout_s
    while True:
        got = pred()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.02)


class LoopThread:
    """An asyncio loop in a daemon thread; ``run(coro)`` waits for the result."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Any, timeout_s: float = 10.0) -> Any:
        fut: Future[Any] = asyncio.run_coroutine_threadsafe(coro, self.loop)
        return fut.result(timeout_s)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


class Runner:
    """What a runner puts on the bus (a real ``RedisBus`` with the test's prefix), and what
    it hears on ``poly:control``."""

    def __init__(self, url: str, prefix: str) -> None:
        self.lt = LoopThread()
        self.bus = RedisBus(url, prefix=prefix)
        self.lt.run(self.bus.start())
        self.control: Subscription = self.lt.run(self.bus.subscribe(CONTROL))

    def publish(self, channel: str, message: Message) -> None:
        assert self.bus.publish(channel, message)

    def controls(self) -> list[Message]:
        async def drain() -> list[Message]:
            out = []
            while (m := self.control.get_nowait()) is not None:
                out.append(m)
            return out

        got: list[Message] = self.lt.run(drain())
        return got

    def close(self) -> None:
        self.lt.run(self.bus.close())
        self.lt.stop()


def state(n: int, **kw: Any) -> StateMessage:
    """A ``poly:state`` snapshot; ``n`` goes into ``uptime_ms`` and a counter."""
    return StateMessage(ts_ns=time.time_ns(), mode="paper", uptime_ms=n, counters={"n": n}, **kw)


@dataclass
class Dash:
    """A served dashboard: ``url``, its auth ``settings`` and the test's Redis ``prefix``."""

    url: str
    settings: AuthSettings
    prefix: str
    redis_url: str
    runner: Runner

    def code(self) -> str:
        """A one-time code, as ``polylab dashboard otp`` makes it."""

        async def issue() -> str:
            client = aioredis.Redis.from_url(self.redis_url)
            try:
                return await AuthStore(client, self.settings).issue_code()
            finally:
                await client.aclose()

        return asyncio.run(issue())

    def client(self, **kw: Any) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=10.0, **kw)

    def login(self, client: httpx.Client | None = None) -> httpx.Client:
        c = client or self.client()
        r = c.post("/login", data={"code": self.code()})
        assert r.status_code == 303, r.text
        return c


class Served:
    """A uvicorn server in a thread, stopped by ``close``."""

    def __init__(self, app: Any, port: int) -> None:
        config = uvicorn.Config(
            app, host="127.0.0.1", port=port, log_level="warning", timeout_graceful_shutdown=3
        )
        self.url = f"http://127.0.0.1:{port}"
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        wait_for(lambda: self.server.started, "the dashboard to start")

    def close(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)

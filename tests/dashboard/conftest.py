"""Dashboard fixtures: the machine's Redis (a unique key/channel prefix per test, removed
afterwards), a dashboard served by uvicorn on a free loopback port in a thread, and a
"runner" bus (a real ``RedisBus`` on its own event loop) that publishes what a runner would."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import pytest
import redis.asyncio as aioredis
from dashboard.helpers import Dash, Runner, Served, free_port

from polylab.bus import RedisBus
from polylab.dashboard.app import create_app
from polylab.dashboard.auth import AuthSettings, AuthStore


@pytest.fixture
def secret() -> str:
    return secrets.token_urlsafe(32)


@pytest.fixture
def make_dash(redis_url: str, prefix: str, secret: str) -> Iterator[Callable[..., Dash]]:
    """Start a dashboard (``AuthSettings`` overrides as keywords) and a runner bus."""
    started: list[tuple[Served, Runner]] = []

    def make(keep: int = 500, ledger: Any = None, **overrides: Any) -> Dash:
        settings = replace(AuthSettings(secret=secret.encode(), prefix=prefix), **overrides)
        runner = Runner(redis_url, prefix)
        store = AuthStore(aioredis.Redis.from_url(redis_url), settings)
        bus = RedisBus(redis_url, prefix=prefix)
        app = create_app(bus, store, keep=keep, ledger=ledger)
        port = free_port()
        served = Served(app, port)
        started.append((served, runner))
        return Dash(f"http://127.0.0.1:{port}", settings, prefix, redis_url, runner)

    yield make
    for served, runner in started:
        served.close()
        runner.close()


@pytest.fixture
def dash(make_dash: Callable[..., Dash]) -> Dash:
    return make_dash()

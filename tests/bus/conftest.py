"""Bus test fixtures: the machine's Redis (unique prefix per test, keys removed afterwards) and
a test-owned ``redis-server`` on its own loopback port that a test may kill and restart."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from owned_services import OwnedRedis

REDIS_URL = os.environ.get("POLYLAB_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def _unavailable(msg: str) -> None:
    if os.environ.get("POLYLAB_REQUIRE_SERVICES") == "1":
        pytest.fail(msg)
    pytest.skip(msg)


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The machine's Redis; skips (fails under ``POLYLAB_REQUIRE_SERVICES=1``) if absent."""
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        _unavailable(f"no Redis at {REDIS_URL}: {exc}")
    finally:
        client.close()
    return REDIS_URL


@pytest.fixture
def prefix(redis_url: str) -> Iterator[str]:
    """A key/channel prefix of this test alone; its keys are deleted afterwards."""
    pre = f"test-bus:{uuid.uuid4().hex[:12]}:"
    yield pre
    client = redis.Redis.from_url(redis_url)
    try:
        keys = list(client.scan_iter(match=pre + "*"))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


@pytest.fixture
def owned_redis(tmp_path: Path) -> Iterator[OwnedRedis]:
    """A started test-owned Redis, killed at the end whatever happened."""
    exe = shutil.which("redis-server")
    if exe is None:
        _unavailable("redis-server is not installed")
        raise AssertionError  # unreachable: _unavailable raises
    server = OwnedRedis(exe, tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.kill()

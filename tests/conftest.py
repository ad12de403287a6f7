"""Shared test fixtures: where ../shared lives, and whether its absence is a failure."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from owned_services import REDIS_URL, unavailable

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "fixtures"


def pytest_report_header() -> str:
    """Which build of the hot path the session tests (compiled, or Python and why)."""
    from polylab import native

    return f"polylab hot path: {native.status().line()}"


@pytest.fixture(scope="session")
def shared_fixtures() -> Path:
    """``../shared/fixtures`` beside the clone; skips with a reason when absent, fails in CI
    (``POLYLAB_REQUIRE_FIXTURES=1``, set by ``.ci/run``)."""
    if not SHARED.is_dir():
        msg = f"recorded venue fixtures not found at {SHARED} (clone polylab next to ../shared)"
        if os.environ.get("POLYLAB_REQUIRE_FIXTURES") == "1":
            pytest.fail(msg)
        pytest.skip(msg)
    return SHARED


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The machine's Redis; skips (fails under ``POLYLAB_REQUIRE_SERVICES=1``) if absent."""
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        unavailable(f"no Redis at {REDIS_URL}: {exc}")
    finally:
        client.close()
    return REDIS_URL


@pytest.fixture
def prefix(redis_url: str) -> Iterator[str]:
    """A Redis key/channel prefix of this test alone; its keys are deleted afterwards."""
    pre = f"test:{uuid.uuid4().hex[:12]}:"
    yield pre
    client = redis.Redis.from_url(redis_url)
    try:
        keys = list(client.scan_iter(match=pre + "*"))
        if keys:
            client.delete(*keys)
    finally:
        client.close()

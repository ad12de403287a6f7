"""tests/ops fixtures: a test-owned ``redis-server`` on its own loopback port, to kill and
restart (the machine's Redis is never touched)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from owned_services import OwnedRedis


@pytest.fixture
def owned_redis(tmp_path: Path) -> Iterator[OwnedRedis]:
    """A started test-owned Redis, killed at the end whatever happened; skips (fails under
    ``POLYLAB_REQUIRE_SERVICES=1``) when ``redis-server`` is not installed."""
    exe = shutil.which("redis-server")
    if exe is None:
        msg = "redis-server is not installed"
        if os.environ.get("POLYLAB_REQUIRE_SERVICES") == "1":
            pytest.fail(msg)
        pytest.skip(msg)
    server = OwnedRedis(exe, tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.kill()

"""Bus test fixtures: the machine's Redis (unique prefix per test, keys removed afterwards) and
a test-owned ``redis-server`` on its own loopback port that a test may kill and restart."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from owned_services import OwnedRedis, unavailable


@pytest.fixture
def owned_redis(tmp_path: Path) -> Iterator[OwnedRedis]:
    """A started test-owned Redis, killed at the end whatever happened."""
    exe = shutil.which("redis-server")
    if exe is None:
        unavailable("redis-server is not installed")
        raise AssertionError  # unreachable: unavailable raises
    server = OwnedRedis(exe, tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.kill()

"""Bus test fixtures: the machine's Redis (unique prefix per test, keys removed afterwards) and
a test-owned ``redis-server`` on its own loopback port that a test may kill and restart."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

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


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class OwnedRedis:
    """A ``redis-server`` this test starts, kills (SIGKILL) and restarts on the same port.

    It keeps an append-only file fsynced on every write in the test's own directory, so what
    it acknowledged before a kill is still there after the restart, as in production."""

    def __init__(self, exe: str, workdir: Path) -> None:
        self.port = _free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._exe = exe
        self._dir = workdir
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        args = [self._exe, "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""]
        args += ["--appendonly", "yes", "--appendfsync", "always", "--dir", str(self._dir)]
        self.proc = subprocess.Popen(
            args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=self._dir
        )
        client = redis.Redis(port=self.port, socket_connect_timeout=1)
        deadline = time.monotonic() + 20
        try:
            while True:
                try:
                    client.ping()
                    return
                except redis.RedisError:
                    if time.monotonic() > deadline or self.proc.poll() is not None:
                        raise RuntimeError(
                            f"redis-server on port {self.port} did not start"
                        ) from None
                    time.sleep(0.02)
        finally:
            client.close()

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self.proc = None

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, socket_connect_timeout=2)


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

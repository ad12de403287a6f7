"""Services the tests use: the machine's Redis (``REDIS_URL``, ``unavailable``) and a
``redis-server`` a test owns and can kill and restart (bus and runner outage tests)."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from pathlib import Path

import pytest
import redis

__all__ = ["REDIS_URL", "OwnedRedis", "unavailable"]

REDIS_URL = os.environ.get("POLYLAB_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
"""The machine's Redis (every machine of this kind runs one)."""


def unavailable(msg: str) -> None:
    """Skip for a missing service, or fail where services are required (CI)."""
    if os.environ.get("POLYLAB_REQUIRE_SERVICES") == "1" or os.environ.get("CI") == "true":
        pytest.fail(msg)
    pytest.skip(msg)


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

"""tests/ops fixtures: a test-owned ``redis-server`` on its own loopback port, to kill and
restart (the machine's Redis is never touched)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis


class OwnedRedis:
    """A ``redis-server`` this test starts, kills (SIGKILL) and restarts on the same port."""

    def __init__(self, exe: str, workdir: Path) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = int(s.getsockname()[1])
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._exe = exe
        self._dir = workdir
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        args = [self._exe, "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""]
        args += ["--appendonly", "no", "--dir", str(self._dir)]
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

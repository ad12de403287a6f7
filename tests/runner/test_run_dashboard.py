"""``polylab run --dashboard``: the dashboard served by the runner's own process on the
in-process bus, with sessions in memory; ``polylab dashboard otp --dashboard-url`` gets a
code from it; a login over HTTP reads ``/api/state`` as it updates; SIGTERM stops both."""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from polylab.dashboard.app import COOKIE

POLYLAB = [sys.executable, "-m", "polylab.cli"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _env(secret: str) -> dict[str, str]:
    drop = ("REDIS_URL", "DATABASE_URL", "SLACK_WEBHOOK_URL", "PORT")
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env["POLYLAB_HTTP_PORT"] = "0"
    env["DASHBOARD_JWT_SECRET"] = secret
    return env


def _otp(url: str, secret: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*POLYLAB, "dashboard", "otp", "--dashboard-url", url],
        cwd=cwd,
        env=_env(secret),
        capture_output=True,
        text=True,
        timeout=60,
    )


def _state(client: httpx.Client, after_ns: int, deadline: float) -> dict[str, object]:
    """The first ``/api/state`` newer than ``after_ns``."""
    while time.monotonic() < deadline:
        r = client.get("/api/state")
        if r.status_code == 200 and r.json()["ts_ns"] > after_ns:
            return dict(r.json())
        assert r.status_code in (200, 404), r.text  # 404: no state published yet
        time.sleep(0.2)
    raise AssertionError(f"no poly:state newer than {after_ns}")


def test_run_serves_the_dashboard_in_process_with_codes_from_the_cli(tmp_path: Path) -> None:
    secret = secrets.token_urlsafe(32)
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [
            *POLYLAB,
            "run",
            "--seconds",
            "120",
            "--json",
            "--dashboard",
            "--dashboard-port",
            str(port),
        ],
        cwd=tmp_path,
        env=_env(secret),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    code = ""
    try:
        deadline = time.monotonic() + 90
        while True:
            assert proc.poll() is None, "the runner exited before serving"
            assert time.monotonic() < deadline, "the dashboard never listened"
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.2)

        foreign = _otp(base, secrets.token_urlsafe(32), tmp_path)  # not this runner's secret
        assert foreign.returncode == 2 and "403" in foreign.stderr and foreign.stdout == ""
        got = _otp(base, secret, tmp_path)
        assert got.returncode == 0, got.stderr
        code = got.stdout.strip()
        assert len(code) == 6 and code.isdigit()

        with httpx.Client(base_url=base, timeout=10) as anon:
            assert anon.get("/api/state").status_code == 401
        with httpx.Client(base_url=base, timeout=10) as client:
            r = client.post("/login", data={"code": code})
            assert r.status_code == 303 and COOKIE in client.cookies
            first = _state(client, 0, time.monotonic() + 60)
            later = _state(client, int(str(first["ts_ns"])), time.monotonic() + 30)
            assert first["mode"] == later["mode"] == "paper"
            assert int(str(later["uptime_ms"])) > int(str(first["uptime_ms"]))
        with httpx.Client(base_url=base, timeout=10) as again:
            assert again.post("/login", data={"code": code}).status_code == 401  # used once
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            out, err = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
    assert proc.returncode == 0, err[-2000:]
    assert json.loads(out)["mode"] == "paper"
    assert f"dashboard on {base}/" in err
    assert code not in err  # a captured stderr (not a terminal) never gets a code

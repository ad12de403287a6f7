"""``polylab dashboard otp`` and ``serve`` as the operator runs them (subprocesses)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

from dashboard.helpers import Dash

POLYLAB = str(Path(sys.executable).parent / "polylab")  # the venv's console script


def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k not in ("SLACK_WEBHOOK_URL", "REDIS_URL")}
    return subprocess.run(
        [POLYLAB, "dashboard", *args],
        env=base | env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_otp_prints_a_code_that_logs_in_once(dash: Dash) -> None:
    env = {"DASHBOARD_JWT_SECRET": dash.settings.secret.decode(), "REDIS_URL": dash.redis_url}
    out = run(["otp", "--prefix", dash.prefix], env)
    assert out.returncode == 0, out.stderr
    code = out.stdout.strip()
    assert re.fullmatch(r"[0-9]{6}", code)
    with dash.client() as c:
        assert c.post("/login", data={"code": code}).status_code == 303
    with dash.client() as c:
        assert c.post("/login", data={"code": code}).status_code == 401


def test_otp_and_serve_refuse_a_missing_or_short_secret(dash: Dash) -> None:
    for cmd in (["otp"], ["serve", "--port", "1"]):
        out = run(cmd, {"DASHBOARD_JWT_SECRET": "", "REDIS_URL": dash.redis_url})
        assert out.returncode == 2
        assert out.stderr.strip().splitlines() == [
            "polylab: error: DASHBOARD_JWT_SECRET is not set (use 32+ random characters)"
        ]
    short = "s3cr3t-but-short"
    out = run(["otp"], {"DASHBOARD_JWT_SECRET": short, "REDIS_URL": dash.redis_url})
    assert out.returncode == 2
    assert "16 characters; at least 32" in out.stderr and short not in out.stderr


def test_otp_refuses_a_bad_redis_url(dash: Dash) -> None:
    env = {"DASHBOARD_JWT_SECRET": dash.settings.secret.decode()}
    out = run(["otp", "--redis-url", "http://user:pw@127.0.0.1:1"], env)
    assert out.returncode == 2 and "redis://" in out.stderr and "pw" not in out.stderr
    for cmd in (["otp"], ["serve", "--port", "18052"]):
        out = run([*cmd, "--redis-url", "redis://:pw@127.0.0.1:1/0"], env)
        assert out.returncode == 2 and "cannot reach Redis at 127.0.0.1:1/0" in out.stderr
        assert "Traceback" not in out.stderr and "pw" not in out.stderr


def test_otp_goes_to_slack_when_a_webhook_is_set(dash: Dash) -> None:
    got: list[dict[str, str]] = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            got.append(json.loads(self.rfile.read(int(self.headers["content-length"]))))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            return

    server = HTTPServer(("127.0.0.1", 0), Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        env = {
            "DASHBOARD_JWT_SECRET": dash.settings.secret.decode(),
            "REDIS_URL": dash.redis_url,
            "SLACK_WEBHOOK_URL": f"http://127.0.0.1:{server.server_address[1]}/hook",
        }
        out = run(["otp", "--prefix", dash.prefix], env)
    finally:
        server.shutdown()
        server.server_close()
    assert out.returncode == 0, out.stderr
    code = out.stdout.strip()
    assert len(got) == 1 and code in got[0]["text"]
    assert "sent to Slack" in out.stderr

"""Container and deploy files: what can be checked without a Docker daemon.

The Dockerfile and docker-compose.yml are parsed and checked (multi-stage slim build, non-root
user, health check, entrypoint, services and environment); ``docker compose config`` validates
the compose file where the CLI and its compose plugin exist; the image's HEALTHCHECK command
runs as a process, with the image's environment, against a real ops server; and the image's
entrypoint runs as a process once ``polylab run`` exists.
"""

from __future__ import annotations

import asyncio
import http.server
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import ClassVar

import pytest
import yaml
from ops_helpers import asynctest

from polylab.ops.health import CheckResult, Health
from polylab.ops.http import OpsServer
from polylab.ops.metrics import Metrics

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
COMPOSE = ROOT / "docker-compose.yml"
SECRET_VARS = ("POLY_PRIVATE_KEY", "POLY_API_KEY", "POLY_API_SECRET", "POLY_API_PASSPHRASE")
SERVICE_VARS = ("REDIS_URL", "DATABASE_URL", "SLACK_WEBHOOK_URL", *SECRET_VARS, "DRY_RUN")


def dockerfile_stages(text: str) -> list[list[tuple[str, str]]]:
    """Instructions ``(KEYWORD, rest)`` per build stage (continuations joined, comments cut)."""
    joined = re.sub(r"\\\n", " ", text)
    stages: list[list[tuple[str, str]]] = []
    for line in joined.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        word, _, rest = line.partition(" ")
        if word.upper() == "FROM":
            stages.append([])
        assert stages, f"instruction before FROM: {line}"
        stages[-1].append((word.upper(), " ".join(rest.split())))
    return stages


def image_env(stage: list[tuple[str, str]]) -> dict[str, str]:
    env: dict[str, str] = {}
    for word, rest in stage:
        if word == "ENV":
            env.update(dict(re.findall(r"(\w+)=(\S+)", rest)))
    return env


def final_stage() -> list[tuple[str, str]]:
    return dockerfile_stages(DOCKERFILE.read_text())[-1]


def healthcheck_cmd() -> list[str]:
    (rest,) = [r for w, r in final_stage() if w == "HEALTHCHECK"]
    cmd = json.loads(rest.split("CMD", 1)[1])
    assert isinstance(cmd, list)
    return cmd


def test_dockerfile_is_multi_stage_slim_non_root_with_health_check_and_entrypoint() -> None:
    stages = dockerfile_stages(DOCKERFILE.read_text())
    assert len(stages) >= 2
    froms = [s[0][1] for s in stages]
    assert all(f.startswith("python:3.11-slim") for f in froms), froms
    final = stages[-1]
    words = [w for w, _ in final]
    # the runtime installs the builder's wheels, not the source tree
    assert any(w == "COPY" and r.startswith("--from=builder") for w, r in final)
    assert not any(w == "COPY" and "polylab" in r.split()[0] for w, r in final)
    users = [r for w, r in final if w == "USER"]
    assert users, "no USER in the final stage: it would run as root"
    assert users[-1].split(":")[0] not in ("root", "0")
    assert words.index("USER") < words.index("ENTRYPOINT")
    (entry,) = [r for w, r in final if w == "ENTRYPOINT"]
    assert json.loads(entry) == ["polylab", "run"]
    assert healthcheck_cmd()[:3] == ["python", "-m", "polylab.ops.probe"]
    assert "curl" not in DOCKERFILE.read_text().split("HEALTHCHECK", 1)[1]
    env = image_env(final)
    assert env["POLYLAB_HTTP_HOST"] == "0.0.0.0" and env["DRY_RUN"] == "true"
    assert any(w == "EXPOSE" and r == env["POLYLAB_HTTP_PORT"] for w, r in final)


def test_dockerignore_keeps_secrets_and_the_venv_out() -> None:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    for pattern in (".env", ".venv", ".git", "runs"):
        assert pattern in lines


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def run_probe(env: dict[str, str]) -> tuple[int, str]:
    cmd = healthcheck_cmd()
    assert cmd[0] == "python"
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        *cmd[1:],
        env={**os.environ, **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode().strip()


@asynctest
async def test_the_images_healthcheck_command_as_a_process() -> None:
    env = image_env(final_stage())
    health = Health()
    srv = await OpsServer(health, Metrics(), port=0).start()
    env["POLYLAB_HTTP_PORT"] = str(srv.port)  # the image's env, on this test's port
    try:
        code, out = await run_probe(env)
        assert code == 0 and out == f"healthy: http://127.0.0.1:{srv.port}/health 200"
        health.register("feed", lambda: CheckResult(ok=False, detail={"problem": "x"}))
        code, out = await run_probe(env)
        assert code == 1 and out.endswith(" 503")
    finally:
        await srv.close()
    code, out = await run_probe(env)  # nothing listens any more
    assert code == 1 and out.startswith("unhealthy:") and "URLError" in out


def compose() -> dict[str, object]:
    data = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(data, dict)
    return data


def test_compose_services_environment_and_health() -> None:
    services = compose()["services"]
    assert isinstance(services, dict)
    assert {"runner", "redis", "postgres", "dashboard"} <= set(services)
    runner, pg = services["runner"], services["postgres"]
    env = runner["environment"]
    for name in SERVICE_VARS:
        assert name in env, name
    assert env["REDIS_URL"].startswith("redis://redis:6379")
    assert "@postgres:5432/" in env["DATABASE_URL"]
    assert env["DATABASE_URL"].startswith("postgresql://")
    # secrets are substituted from the operator's environment, never written here
    for name in (*SECRET_VARS, "SLACK_WEBHOOK_URL"):
        assert env[name] == f"${{{name}:-}}", name
    assert env["DRY_RUN"] == "${DRY_RUN:-true}"
    # the runner's health check is the image's, on the port it publishes
    assert runner["healthcheck"]["test"] == ["CMD", *healthcheck_cmd()]
    assert runner["ports"] == [f"${{POLYLAB_HTTP_PORT:-8080}}:{env['POLYLAB_HTTP_PORT']}"]
    assert env["POLYLAB_HTTP_HOST"] == "0.0.0.0"
    for dep in ("redis", "postgres"):
        assert runner["depends_on"][dep] == {"condition": "service_healthy"}
        assert "healthcheck" in services[dep]
    assert pg["environment"]["POSTGRES_DB"] == env["DATABASE_URL"].rsplit("/", 1)[1]
    assert services["dashboard"]["profiles"] == ["dashboard"]  # off unless asked for


def _compose_cli() -> list[str] | None:
    docker = shutil.which("docker")
    if docker is not None:
        probe = subprocess.run(
            [docker, "compose", "version"], capture_output=True, text=True, check=False
        )
        if probe.returncode == 0:
            return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    return [legacy] if legacy else None


def test_docker_compose_config_validates_the_file(tmp_path: Path) -> None:
    cli = _compose_cli()
    if cli is None:
        pytest.skip("neither the docker CLI's compose plugin nor docker-compose is installed")
    empty = tmp_path / "empty.env"
    empty.write_text("")
    env = {k: v for k, v in os.environ.items() if k not in (*SERVICE_VARS, "POSTGRES_PASSWORD")}
    env["SLACK_WEBHOOK_URL"] = "https://hooks.invalid/T0/B0/x"
    out = subprocess.run(
        [*cli, "-f", str(COMPOSE), "--env-file", str(empty), "--profile", "dashboard", "config"],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
        env=env,
    )
    assert out.returncode == 0, out.stderr
    resolved = yaml.safe_load(out.stdout)["services"]
    assert {"runner", "redis", "postgres", "dashboard"} <= set(resolved)
    renv = resolved["runner"]["environment"]
    assert renv["SLACK_WEBHOOK_URL"] == "https://hooks.invalid/T0/B0/x"
    assert renv["DRY_RUN"] == "true" and renv["POLY_API_SECRET"] == ""
    assert renv["DATABASE_URL"] == "postgresql://polylab:polylab@postgres:5432/polylab"


def test_readme_deploy_section_names_every_variable() -> None:
    text = (ROOT / "README.md").read_text()
    assert "## Deploy" in text
    deploy = text.split("## Deploy", 1)[1].split("\n## ", 1)[0]
    assert "Railway" in deploy
    for name in (*SERVICE_VARS, "POLYLAB_HTTP_PORT", "PORT"):
        assert f"`{name}`" in deploy, name


def _run_serves_health() -> bool:
    """``polylab run`` exists and has the ops port wired (``--http-port``)."""
    polylab = Path(sys.executable).with_name("polylab")
    out = subprocess.run(
        [str(polylab), "run", "--help"],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "COLUMNS": "200", "NO_COLOR": "1"},
    )
    return out.returncode == 0 and "--http-port" in out.stdout


class _Hook(http.server.BaseHTTPRequestHandler):
    """A Slack-like webhook on loopback (stdlib, in a thread) for the process test."""

    received: ClassVar[list[str]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        type(self).received.append(json.loads(body)["text"])
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.mark.slow
def test_the_images_entrypoint_and_environment_as_a_process(tmp_path: Path) -> None:
    """``polylab run`` as the image starts it (entrypoint, the image's environment, nothing
    else configured): the HEALTHCHECK command passes once the session is up, /metrics shows
    the feed's frames, and SIGTERM stops it cleanly (exit 0)."""
    if not _run_serves_health():
        pytest.skip(
            "`polylab run` does not serve /health yet (no --http-port: polylab.ops unwired)"
        )
    env = {k: v for k, v in os.environ.items() if k not in (*SERVICE_VARS, "PORT")}
    env.update(image_env(final_stage()))
    port = free_port()
    env["POLYLAB_HTTP_PORT"] = str(port)
    hook = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Hook)
    _Hook.received = []
    threading.Thread(target=hook.serve_forever, daemon=True).start()
    env["SLACK_WEBHOOK_URL"] = f"http://127.0.0.1:{hook.server_port}/services/T0/B0/s3cr3tHook"
    env["POLY_API_SECRET"] = "c2VjcmV0LXZhbHVlLW9mLXRoZS10ZXN0LW5vdC1yZWFs"
    (entry,) = [r for w, r in final_stage() if w == "ENTRYPOINT"]
    argv = json.loads(entry)
    exe = Path(sys.executable).with_name(argv[0])
    proc = subprocess.Popen(
        [str(exe), *argv[1:], "--seconds", "120"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        healthy = False
        for _ in range(600):
            probe = subprocess.run(
                [sys.executable, *healthcheck_cmd()[1:]],
                env=env,
                capture_output=True,
                text=True,
                check=False,
            )
            if probe.returncode == 0:
                healthy = True
                break
            if proc.poll() is not None:
                break
            time.sleep(0.1)
        assert healthy, f"the container's HEALTHCHECK never passed: {probe.stdout}"
        base = f"http://127.0.0.1:{port}"
        with urllib.request.urlopen(base + "/health", timeout=5) as r:
            checks = json.loads(r.read())["checks"]
        assert {"runner", "feed", "ledger", "bus", "state"} <= set(checks), checks
        assert all(c["ok"] for c in checks.values()), checks
        frames = 0.0
        for _ in range(100):  # the watchers mirror the feed's counters about once a second
            with urllib.request.urlopen(base + "/metrics", timeout=5) as r:
                text = r.read().decode()
            m = re.search(r"^polylab_feed_frames_total (\S+)$", text, re.M)
            frames = float(m.group(1)) if m else 0.0
            if frames > 0:
                break
            time.sleep(0.1)
        assert frames > 0
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err[-2000:]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        hook.shutdown()
        hook.server_close()
    texts = _Hook.received
    assert any("] started " in t for t in texts), texts
    assert "] stopped" in texts[-1], texts
    assert not any("s3cr3tHook" in t or env["POLY_API_SECRET"] in t for t in texts)

"""Probes of ``bench_runner_load``: the ``poly:state`` subscriber, process samplers (RSS, CPU,
run-queue wait from ``/proc``), and readers of the ledger and the Redis streams.

Units: ns for wall times, seconds for CPU and run-queue time, bytes for RSS."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis
import sqlalchemy as sa

from polylab.bus.messages import StateMessage, decode_message


class SetupError(Exception):
    """Something the bench needs is missing (one line, exit 2)."""


def with_owned_redis(name: str, session: Callable[[Any, Path], int]) -> int:
    """``session(server, tmp)`` on a ``redis-server`` of its own (``tests/owned_services``,
    started, killed afterwards) in a temporary folder named after the bench ``name``."""
    exe = shutil.which("redis-server")
    if exe is None:
        raise SetupError("redis-server is not installed (apt-get install redis-server)")
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    from owned_services import OwnedRedis

    with tempfile.TemporaryDirectory(prefix=f"{name}-") as tmp_s:
        tmp = Path(tmp_s)
        server = OwnedRedis(exe, tmp)
        server.start()
        try:
            return session(server, tmp)
        finally:
            server.kill()


@dataclass
class Observed:
    """What the bench saw: states (receive ns, message), RSS samples (wall ns, bytes)."""

    states: list[tuple[int, StateMessage]] = field(default_factory=list)
    rss: list[tuple[int, int]] = field(default_factory=list)
    cpu: list[tuple[int, float, float, float]] = field(default_factory=list)
    """(wall ns, runner CPU s, simulator CPU s, runner main thread's run-queue wait s)."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, proc: subprocess.Popen[bytes], timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SetupError(f"simulator exited with code {proc.returncode} before listening")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise SetupError(f"simulator not listening on port {port} after {timeout_s:.0f} s")


def rss_bytes(pid: int) -> int:
    """Resident set size of ``pid`` (bytes; 0 once it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def subscribe_states(
    client: redis.Redis, channel: str, obs: Observed, stop: threading.Event
) -> None:
    """Receive ``poly:state``, stamping each message with ``time.time_ns()`` on receipt."""
    sub = client.pubsub(ignore_subscribe_messages=True)
    sub.subscribe(channel)
    try:
        while not stop.is_set():
            m = sub.get_message(timeout=0.05)
            if m is None:
                continue
            now = time.time_ns()
            msg = decode_message(m["data"])
            if isinstance(msg, StateMessage):
                obs.states.append((now, msg))
    finally:
        sub.close()


def cpu_s(pid: int) -> float:
    """User + system CPU time of ``pid`` so far (s; NaN once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def runq_wait_s(pid: int) -> float:
    """Time the main thread of ``pid`` (the runner's event loop) spent runnable but waiting
    for a CPU so far (s; ``/proc/PID/schedstat``; NaN when not available)."""
    try:
        return int(Path(f"/proc/{pid}/schedstat").read_text().split()[1]) / 1e9
    except (OSError, IndexError, ValueError):
        return float("nan")


def sample_proc(pid: int, sim_pid: int, obs: Observed, stop: threading.Event) -> None:
    """Every second: the runner's RSS, and the runner's and the simulator's CPU time."""
    while not stop.is_set():
        r = rss_bytes(pid)
        if r:
            now = time.time_ns()
            obs.rss.append((now, r))
            obs.cpu.append((now, cpu_s(pid), cpu_s(sim_pid), runq_wait_s(pid)))
        stop.wait(1.0)


def pct(xs: list[float], q: float) -> float:
    """Quantile ``q`` (0..1) by rank; NaN when empty."""
    if not xs:
        return float("nan")
    s = sorted(xs)
    return s[min(len(s) - 1, int(q * len(s)))]


def ledger_fills(url: str, run_id: str) -> list[tuple[str, int]]:
    """(fill id as the bus names it, fill ``ts_ns``) of every fill of the run in the ledger."""
    eng = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    try:
        with eng.connect() as c:
            rows = c.execute(
                sa.text(
                    "SELECT intent_id, leg, unwind, order_id, ts_ns FROM fills WHERE run_id = :r"
                ),
                {"r": run_id},
            ).all()
    finally:
        eng.dispose()
    return [(f"{i}/{leg}/{'u' if u else 'o'}/{o}", int(ts)) for i, leg, u, o, ts in rows]


def stream_messages(client: redis.Redis, key: str) -> list[Any]:
    out: list[Any] = []
    last = "-"
    while True:
        batch = client.xrange(key, min=last, count=10_000)
        if last != "-":
            batch = batch[1:]
        if not batch:
            return out
        out.extend(decode_message(f[b"m"]) for _, f in batch)
        last = batch[-1][0].decode()


def redact(url: str) -> str:
    """``url`` without a password (the ledger URL is printed)."""
    head, sep, tail = url.partition("@")
    if not sep or "://" not in head:
        return url
    scheme, _, cred = head.partition("://")
    return f"{scheme}://{cred.split(':', 1)[0]}@{tail}"

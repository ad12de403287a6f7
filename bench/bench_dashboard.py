"""Dashboard load: twenty SSE clients follow ``poly:state`` at 10 Hz.

``polylab dashboard serve`` runs as its own process on the machine's Redis (a unique prefix);
this process publishes ``poly:state`` every 100 ms through a real ``RedisBus`` (``ts_ns`` =
publish time) and opens twenty sessions (one one-time code each), each following ``/events``.
Measured: the dashboard process's CPU (utime + stime from /proc over the wall time, % of one
core) and, per state received, publish → client lag (client receive time − ``ts_ns``, same
clock), p50 / p99 / max over all clients, plus how many states each client saw.

Target (issue 13 §5): lag p99 ≤ 250 ms. ``BENCH_SECONDS`` (default 300) sets the duration.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import redis

from polylab.bus import STATE, PeriodicPublisher, RedisBus, StateMessage

SECONDS = float(os.environ.get("BENCH_SECONDS", "300"))
CLIENTS = int(os.environ.get("BENCH_CLIENTS", "20"))
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
POLYLAB = str(Path(sys.executable).parent / "polylab")
TARGET_P99_MS = 250.0


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _client(url: str, code: str, lags: list[float], stop: asyncio.Event) -> int:
    got = 0
    async with httpx.AsyncClient(base_url=url, timeout=30.0) as c:
        r = await c.post("/login", data={"code": code})
        assert r.status_code == 303, r.text
        async with c.stream("GET", "/events") as resp:
            event = ""
            async for line in resp.aiter_lines():
                if stop.is_set():
                    break
                if line.startswith("event: "):
                    event = line[7:]
                elif line.startswith("data: ") and event == "state":
                    ts_ns = json.loads(line[6:])["ts_ns"]
                    lags.append((time.time_ns() - ts_ns) / 1e6)
                    got += 1
    return got


async def main() -> None:
    prefix = f"bench-dash:{uuid.uuid4().hex[:8]}:"
    env = os.environ | {
        "DASHBOARD_JWT_SECRET": secrets.token_urlsafe(32),
        "REDIS_URL": REDIS_URL,
    }
    env.pop("SLACK_WEBHOOK_URL", None)
    port = _port()
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [POLYLAB, "dashboard", "serve", "--port", str(port), "--prefix", prefix],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    bus = RedisBus(REDIS_URL, prefix=prefix)
    await bus.start()
    try:
        for _ in range(200):
            try:
                httpx.get(url + "/")
                break
            except httpx.HTTPError:
                await asyncio.sleep(0.05)
        codes = [
            subprocess.run(
                [POLYLAB, "dashboard", "otp", "--prefix", prefix],
                env=env,
                capture_output=True,
                text=True,
                check=True,
            ).stdout.strip()
            for _ in range(CLIENTS)
        ]
        n = 0

        def make() -> StateMessage:
            nonlocal n
            n += 1
            return StateMessage(ts_ns=time.time_ns(), mode="paper", uptime_ms=n * 100)

        pub = PeriodicPublisher(bus, STATE, make)
        pub_task = asyncio.create_task(pub.run())
        lags: list[float] = []
        stop = asyncio.Event()
        clients = [asyncio.create_task(_client(url, c, lags, stop)) for c in codes]
        await asyncio.sleep(2.0)  # sessions open
        lags.clear()
        cpu0, t0, n0 = _cpu_s(server.pid), time.monotonic(), n
        await asyncio.sleep(SECONDS)
        cpu1, t1, n1 = _cpu_s(server.pid), time.monotonic(), n
        measured = sorted(lags)
        stop.set()
        pub_task.cancel()
        for t in clients:
            t.cancel()
        await asyncio.gather(pub_task, *clients, return_exceptions=True)
    finally:
        server.terminate()
        server.wait(10)
        await bus.close()
        r = redis.Redis.from_url(REDIS_URL)
        keys = list(r.scan_iter(match=prefix + "*"))
        if keys:
            r.delete(*keys)
        r.close()
    cpu_pct = 100 * (cpu1 - cpu0) / (t1 - t0)
    published = n1 - n0
    p = lambda q: measured[min(len(measured) - 1, int(q * len(measured)))]  # noqa: E731
    print(f"{CLIENTS} SSE clients, {SECONDS:.0f} s, {published} states published at 10 Hz")
    print(f"dashboard CPU: {cpu_pct:.1f} % of one core")
    print(f"states received: {len(measured)} (expected ≈ {published * CLIENTS})")
    print(f"publish → client lag ms: p50 {p(0.5):.1f}  p99 {p(0.99):.1f}  max {measured[-1]:.1f}")
    verdict = "PASS" if p(0.99) <= TARGET_P99_MS else "FAIL"
    print(f"{verdict}: lag p99 {p(0.99):.1f} ms (target ≤ {TARGET_P99_MS:.0f} ms)")
    if verdict == "FAIL":
        raise SystemExit(1)


if __name__ == "__main__":
    asyncio.run(main())

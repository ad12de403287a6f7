"""``bench/bench_runner_load.py`` (issue 11 §7) on a very short run: it prints every figure
and one verdict per target, and leaves no bus stream and no PostgreSQL schema behind.

Whether the targets pass depends on the machine's load, so only the presence of the figures
and the verdict lines is checked, not PASS or FAIL."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
import redis

from polylab.bus.messages import STREAMS

BENCH = Path(__file__).resolve().parents[2] / "bench" / "bench_runner_load.py"
REDIS_URL = os.environ.get("POLYLAB_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
PG_BASE = os.environ.get("POLYLAB_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
NUM = r"(-?[0-9.]+|nan)"

FIGURES = {
    "market message rate": rf"market messages: \d+ in {NUM} s = {NUM} msg/s",
    "state period": rf"poly:state period \(receive side\): p50 {NUM} ms, p99 {NUM} ms",
    "state period on ts_ns": rf"poly:state period \(publisher ts_ns\): p50 {NUM} ms, p99 {NUM}",
    "bus drops": r"bus drops on streams: \d+ \(ledger fills \d+, stream fills \d+",
    "ledger lag": rf"ledger lag \(fill ts -> committed, published\): p50 {NUM} ms, p99 {NUM} ms",
    "writer latency": rf"writer enqueue->commit p99 {NUM} ms",
    "rss": rf"runner RSS: start {NUM} MiB, end {NUM} MiB, growth [+-]?{NUM} %",
    "cpu": rf"CPU \(% of one core\): runner {NUM} %, simulator {NUM} %",
    "tick-to-order": r"tick-to-order: p50 \d+ µs, p99 \d+ µs",
}
VERDICTS = [
    "poly:state period |p - 100 ms| p99",
    "bus drops on streams",
    "runner RSS growth",
    "tick-to-order p99",
    "market message rate",
]


def _services_or_skip() -> redis.Redis:
    why = ""
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        client.ping()
        with psycopg.connect(PG_BASE, connect_timeout=3) as c:
            c.execute("SELECT 1")
    except (redis.RedisError, psycopg.Error) as exc:
        why = f"Redis or PostgreSQL not reachable: {str(exc).strip()[:200]}"
    if why:
        client.close()
        if os.environ.get("POLYLAB_REQUIRE_SERVICES") == "1":
            pytest.fail(why)
        pytest.skip(why)
    return client


@pytest.mark.slow
def test_short_load_bench_prints_every_figure_and_cleans_up(tmp_path: Path) -> None:
    client = _services_or_skip()
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL")}
    args = ["--seconds", "2", "--warmup", "1", "--redis-url", REDIS_URL, "--pg-base", PG_BASE]
    out = subprocess.run(
        [sys.executable, str(BENCH), *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert out.returncode in (0, 1), out.stderr[-2000:]  # 2 would be a set-up failure
    text = out.stdout
    for name, pattern in FIGURES.items():
        assert re.search(pattern, text), f"{name} missing from:\n{text}"
    for what in VERDICTS:
        assert re.search(rf"^(PASS|FAIL)  {re.escape(what)}", text, re.M), f"{what}:\n{text}"
    assert re.search(r"^bench_runner_load: \d/5 targets met", text, re.M), text
    # The run's own bus prefix and schema are printed, and gone afterwards.
    m = re.search(r"run: bus prefix (\S+), ledger \S+search_path%3D(\w+)", text)
    assert m is not None, text
    prefix, schema = m.groups()
    try:
        assert client.exists(*[prefix + s for s in STREAMS.values()]) == 0
    finally:
        client.close()
    with psycopg.connect(PG_BASE, connect_timeout=3) as c:
        row = c.execute(
            "SELECT count(*) FROM information_schema.schemata WHERE schema_name = %s", (schema,)
        ).fetchone()
    assert row == (0,)

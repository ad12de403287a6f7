"""``polylab run``: the headless runner on embedded defaults, and on this machine's Redis and
PostgreSQL; fills reach the ledger and then the bus exactly once; the kill switch and SIGTERM."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import redis
import sqlalchemy as sa
from owned_services import OwnedRedis
from store.ledger_data import PG_BASE, pg_admin, pg_url

from polylab.bus.messages import (
    CONTROL,
    STATE,
    STREAMS,
    TRADES,
    ControlMessage,
    FillMessage,
    SignalMessage,
    StateMessage,
    decode_message,
    encode_message,
)

REDIS_URL = os.environ.get("POLYLAB_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
POLYLAB = [sys.executable, "-m", "polylab.cli"]


def _need(service: str, ok: bool) -> None:
    if not ok:
        msg = f"{service} is not reachable on this machine"
        if os.environ.get("POLYLAB_REQUIRE_SERVICES") == "1":
            pytest.fail(msg)
        pytest.skip(msg)


@pytest.fixture
def redis_client() -> Iterator[redis.Redis]:
    c = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        c.ping()
    except redis.RedisError:
        _need("Redis", False)
    yield c
    c.close()


@pytest.fixture
def pg_schema() -> Iterator[str]:
    try:
        with pg_admin() as c:
            name = f"t_runner_{uuid.uuid4().hex[:12]}"
            c.execute(f'CREATE SCHEMA "{name}"')
    except Exception:
        _need("PostgreSQL", False)
        raise
    yield name
    with pg_admin() as c:
        c.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


def _env(**extra: str) -> dict[str, str]:
    drop = ("REDIS_URL", "DATABASE_URL", "SLACK_WEBHOOK_URL", "PORT")
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env["POLYLAB_HTTP_PORT"] = "0"  # /health on a free port: runs side by side never collide
    env.update(extra)
    return env


def _ledger_rows(url: str, sql: str) -> list[tuple[object, ...]]:
    eng = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    try:
        with eng.connect() as c:
            return [tuple(r) for r in c.execute(sa.text(sql))]
    finally:
        eng.dispose()


def _started(url: str) -> bool:
    try:
        return bool(_ledger_rows(url, "SELECT id FROM runs"))
    except sa.exc.SQLAlchemyError:
        return False


def _runner_on_redis(
    cwd: Path, redis_client: redis.Redis, prefix: str
) -> tuple[subprocess.Popen[str], Any]:
    """``polylab run --json`` on the machine's Redis under ``prefix`` (until stopped), and a
    subscription to its ``poly:state`` made before it starts."""
    sub = redis_client.pubsub()
    sub.subscribe(prefix + STATE)
    proc = subprocess.Popen(
        [*POLYLAB, "run", "--json", "--bus-prefix", prefix],
        cwd=cwd,
        env=_env(REDIS_URL=REDIS_URL),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    return proc, sub


def test_run_on_embedded_defaults_stores_every_fill_once_then_publishes_it(
    tmp_path: Path,
) -> None:
    out = subprocess.run(
        [*POLYLAB, "run", "--seconds", "6", "--json"],
        cwd=tmp_path,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    summary = json.loads(out.stdout)
    db = f"sqlite:///{tmp_path / 'runs' / 'polylab.db'}"
    runs = _ledger_rows(db, "SELECT id, status, mode FROM runs")
    assert runs == [(summary["run_id"], "stopped", "paper")]
    fills = _ledger_rows(db, "SELECT fill_key FROM fills")
    assert len(fills) == len({f[0] for f in fills})  # stored once each
    # Every fill of the session (the run folder's table), and only those, went through the
    # ledger to the bus.
    folder = pl.read_parquet(tmp_path / summary["out_dir"] / "fills.parquet")
    assert summary["fills_published"] == len(fills) == folder.height
    assert summary["signals"] == summary["result"]["intents"]
    assert len(fills) > 0, "the demo simulator trades within seconds"


def test_run_on_redis_and_postgres_streams_what_the_ledger_holds(
    tmp_path: Path, redis_client: redis.Redis, pg_schema: str
) -> None:
    prefix = f"test-run-{uuid.uuid4().hex[:8]}:"
    url = pg_url(PG_BASE, pg_schema)
    sub = redis_client.pubsub()
    sub.subscribe(prefix + STATE)
    try:
        out = subprocess.run(
            [*POLYLAB, "run", "--seconds", "6", "--json", "--bus-prefix", prefix],
            cwd=tmp_path,
            env=_env(REDIS_URL=REDIS_URL, DATABASE_URL=url),
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        assert out.returncode == 0, out.stderr[-2000:]
        summary = json.loads(out.stdout)
        states = []
        while (m := sub.get_message(timeout=0.5)) is not None or not states:
            if m is None:
                break
            if m["type"] == "message":
                states.append(decode_message(m["data"]))
    finally:
        sub.close()
    assert states and all(isinstance(s, StateMessage) for s in states)
    assert states[-1].counters["fills"] == summary["fills_published"]
    assert len(states) >= 10  # a state every 100 ms over a 6 s session (loosely)
    keys = [k for (k,) in _ledger_rows(url, "SELECT fill_key FROM fills")]
    trades = [decode_message(f[b"m"]) for _, f in redis_client.xrange(prefix + STREAMS[TRADES])]
    fill_msgs = [t for t in trades if isinstance(t, FillMessage)]
    assert len(fill_msgs) == len(keys) == summary["fills_published"] > 0
    assert len({(f.intent_id, f.fill_id) for f in fill_msgs}) == len(fill_msgs)  # once each
    signals = [
        decode_message(f[b"m"]) for _, f in redis_client.xrange(prefix + STREAMS["poly:signals"])
    ]
    assert len(signals) == summary["signals"] and all(isinstance(s, SignalMessage) for s in signals)
    redis_client.delete(*[prefix + s for s in STREAMS.values()])


def test_kill_switch_over_the_bus_halts_and_sigterm_stops_cleanly(
    tmp_path: Path, redis_client: redis.Redis
) -> None:
    prefix = f"test-kill-{uuid.uuid4().hex[:8]}:"
    proc, sub = _runner_on_redis(tmp_path, redis_client, prefix)
    try:

        def next_state(deadline_s: float = 60.0) -> StateMessage:
            end = time.monotonic() + deadline_s
            while time.monotonic() < end:
                m = sub.get_message(timeout=1.0)
                if m is not None and m["type"] == "message":
                    s = decode_message(m["data"])
                    assert isinstance(s, StateMessage)
                    if s.uptime_ms > 0:
                        return s
                assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            raise AssertionError("no poly:state from the runner")

        def signals() -> list[SignalMessage]:
            rows = redis_client.xrange(prefix + STREAMS["poly:signals"])
            got = [decode_message(f[b"m"]) for _, f in rows]
            return [g for g in got if isinstance(g, SignalMessage)]

        def wait_signal(ok: Callable[[SignalMessage], bool], what: str) -> None:
            end = time.monotonic() + 60
            while not any(ok(g) for g in signals()):
                assert time.monotonic() < end, f"no {what} on the signals stream"
                assert next_state().uptime_ms > 0  # keeps the state subscription drained
            while sub.get_message(timeout=0.01) is not None:  # states up to now: seen
                pass

        assert next_state().kill_switch is False
        wait_signal(lambda g: g.decision == "approved", "approved intent")  # it is trading
        cmd = ControlMessage(ts_ns=time.time_ns(), action="kill_switch", by="tester", reason="t")
        redis_client.publish(prefix + CONTROL, encode_message(cmd))
        for _ in range(600):
            if (halted := next_state()).kill_switch:
                break
        else:
            raise AssertionError("the runner never confirmed the kill switch")
        # The session goes on, halted, for a while before it is stopped.
        end = time.monotonic() + 3.0
        while time.monotonic() < end:
            assert next_state().kill_switch
        proc.send_signal(signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=30)
        sub.close()
    assert proc.returncode == 0, stderr[-2000:]
    summary = json.loads(stdout)
    db = f"sqlite:///{tmp_path / 'runs' / 'polylab.db'}"
    assert _ledger_rows(db, "SELECT status FROM runs") == [("stopped",)]
    errors = [e for (e,) in _ledger_rows(db, "SELECT error FROM errors")]
    assert any(e.startswith("kill_switch by tester") for e in errors), errors
    # It traded before the switch; from the confirming state on, no intent was approved (the
    # strategies see no budget left; any intent still made is refused by rule kill_switch).
    seen = signals()
    assert any(g.decision == "approved" and g.created_ns < halted.ts_ns for g in seen)
    after = [g for g in seen if g.created_ns > halted.ts_ns]
    assert all(g.decision == "rejected" and g.rule == "kill_switch" for g in after), after
    assert Path(summary["out_dir"]).is_absolute() or (tmp_path / summary["out_dir"]).is_dir()
    redis_client.delete(*[prefix + s for s in STREAMS.values()])


def test_trading_goes_on_while_redis_is_down_and_the_streams_catch_up(
    tmp_path: Path, redis_client: redis.Redis
) -> None:
    """Redis killed right after the runner's first state and restarted 4 s later: the session
    goes on, and afterwards the trades stream holds every fill of the ledger exactly once."""
    exe = shutil.which("redis-server")
    _need("redis-server", exe is not None)
    assert exe is not None
    server = OwnedRedis(exe, tmp_path)
    server.start()
    client = server.client()
    sub = client.pubsub()
    sub.subscribe(STATE)
    proc = subprocess.Popen(
        [*POLYLAB, "run", "--seconds", "14", "--json"],
        cwd=tmp_path,
        env=_env(REDIS_URL=server.url),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while (m := sub.get_message(timeout=1.0)) is None or m["type"] != "message":
            assert time.monotonic() < deadline and proc.poll() is None, "no state from the runner"
        sub.close()
        client.close()
        server.kill()  # the bus is down from here on
        time.sleep(4.0)
        server.start()
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
        server.kill()
    assert proc.returncode == 0, stderr[-2000:]
    summary = json.loads(stdout)
    health = summary["bus"]
    assert health["reconnects"] >= 1 and health["dropped"].get("redis_down", 0) > 0
    db = f"sqlite:///{tmp_path / 'runs' / 'polylab.db'}"
    keys = {k for (k,) in _ledger_rows(db, "SELECT fill_key FROM fills")}
    server.start()
    try:
        c = server.client()
        fills = [decode_message(f[b"m"]) for _, f in c.xrange(STREAMS[TRADES])]
        c.close()
    finally:
        server.kill()
    fill_msgs = [f for f in fills if isinstance(f, FillMessage)]
    assert len(keys) == summary["fills_published"] == len(fill_msgs) > 0
    assert len({f.fill_id for f in fill_msgs}) == len(fill_msgs)


def test_ledger_connections_killed_mid_session_lose_no_fill(tmp_path: Path, pg_schema: str) -> None:
    """PostgreSQL terminates the runner's connections three times during the session: every
    fill of the run folder is in the ledger exactly once, and each was published once."""
    name = f"polylab-runner-{uuid.uuid4().hex[:8]}"  # only this runner's connections
    url = pg_url(PG_BASE, pg_schema) + f"&application_name={name}"
    proc = subprocess.Popen(
        [*POLYLAB, "run", "--json"],
        cwd=tmp_path,
        env=_env(DATABASE_URL=url),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    sql = (
        f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = '{name}'"
    )
    killed = 0
    try:
        deadline = time.monotonic() + 90
        while not _started(url):  # the run is recorded: the session is starting
            assert proc.poll() is None and time.monotonic() < deadline, "runner gone"
            time.sleep(0.2)
        while killed < 3:  # three rounds, each once the runner holds a connection again
            if proc.poll() is not None:
                raise AssertionError(proc.stderr.read()[-3000:] if proc.stderr else "runner gone")
            assert time.monotonic() < deadline, "the runner never connected to the ledger"
            with pg_admin() as c:
                n = len(c.execute(sql).fetchall())
            killed += 1 if n else 0
            time.sleep(2.0 if n else 0.2)
        proc.send_signal(signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, stderr[-2000:]
    summary = json.loads(stdout)
    keys = [k for (k,) in _ledger_rows(url, "SELECT fill_key FROM fills")]
    folder = pl.read_parquet(tmp_path / summary["out_dir"] / "fills.parquet")
    assert len(keys) == len(set(keys)) == folder.height == summary["fills_published"] > 0
    assert _ledger_rows(url, "SELECT status FROM runs") == [("stopped",)]


def test_sigint_stops_the_runner_with_a_final_state_and_everything_flushed(
    tmp_path: Path, redis_client: redis.Redis
) -> None:
    """Ctrl-C (SIGINT) as SIGTERM: exit 0, the run marked ``stopped``, a last ``poly:state``
    made after the signal whose fill count is the summary's, and every fill of the ledger in
    the trades stream (the bus flushed after the ledger)."""
    prefix = f"test-int-{uuid.uuid4().hex[:8]}:"
    proc, sub = _runner_on_redis(tmp_path, redis_client, prefix)
    states: list[StateMessage] = []
    try:
        deadline = time.monotonic() + 90
        while not any(s.counters.get("fills", 0) > 0 for s in states):  # it trades
            assert proc.poll() is None and time.monotonic() < deadline, "no fill in 90 s"
            m = sub.get_message(timeout=1.0)
            if m is not None and m["type"] == "message":
                s = decode_message(m["data"])
                assert isinstance(s, StateMessage)
                states.append(s)
        sent_ns = time.time_ns()
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=90)
        while (m := sub.get_message(timeout=1.0)) is not None:
            if m["type"] == "message":
                s = decode_message(m["data"])
                assert isinstance(s, StateMessage)
                states.append(s)
    finally:
        if proc.poll() is None:
            proc.kill()
        sub.close()
    assert proc.returncode == 0, stderr[-2000:]
    summary = json.loads(stdout)
    final = states[-1]
    assert final.ts_ns > sent_ns
    assert final.counters["fills"] == summary["fills_published"] > 0
    db = f"sqlite:///{tmp_path / 'runs' / 'polylab.db'}"
    assert _ledger_rows(db, "SELECT status FROM runs") == [("stopped",)]
    keys = [k for (k,) in _ledger_rows(db, "SELECT fill_key FROM fills")]
    trades = [decode_message(f[b"m"]) for _, f in redis_client.xrange(prefix + STREAMS[TRADES])]
    assert len([t for t in trades if isinstance(t, FillMessage)]) == len(keys) == len(set(keys))
    redis_client.delete(*[prefix + s for s in STREAMS.values()])

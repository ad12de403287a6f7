"""Hot reload in a running ``polylab run``: a promotion changes what the session trades
between two events, without dropping the feed, and a rollback restores it.

Real processes: a simulator (``polylab sim serve``, neg-risk events only, so complete-set
opportunities come every second or so), the runner started from the promoted config, and
promotions made through ``pipeline.promote`` on the same ledger. Config A trades every set
with any edge (``min_edge`` 0); config B asks an edge no set can have ($1000 per set), so
under B the strategies make no intent at all. Both notice paths: the in-process bus (the
runner polls a SQLite ledger) and Redis (``reload_config`` on ``poly:control``; PostgreSQL
ledger), where a config promoted behind the gates' back is also refused.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import polars as pl
import redis
from pipeline.promote_data import GATES, metrics, trading_config
from store.conftest import pg_base, pg_schema
from store.ledger_data import pg_url

from polylab.bus.messages import (
    ERRORS,
    SIGNALS,
    STATE,
    STREAMS,
    ConfigMessage,
    ErrorMessage,
    SignalMessage,
    StateMessage,
    decode_message,
)
from polylab.pipeline.promote import (
    evaluate_candidate,
    notify_runner,
    promote,
    register_candidate,
    rollback,
)
from polylab.store.ledger import Ledger

__all__ = ["pg_base", "pg_schema"]  # fixtures used below

POLYLAB = [sys.executable, "-m", "polylab.cli"]
SIM = "binary_markets = 0\nnegrisk_events = 6\nsports_games = 0\nsteps_per_s = 300.0\n"
UNREACHABLE_EDGE = 1_000_000_000  # $1000 per set: no complete set pays that
B_SECONDS = 5.0  # how long B trades before the rollback (A makes intents every second or so)


def _env(**extra: str) -> dict[str, str]:
    drop = ("REDIS_URL", "DATABASE_URL", "SLACK_WEBHOOK_URL", "PORT")
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env["POLYLAB_HTTP_PORT"] = "0"
    env.update(extra)
    return env


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(
    what: str, ok: Callable[[], bool], proc: subprocess.Popen[str], limit_s: float = 120
) -> None:
    """Wait for ``ok()``; fails if the runner exits or ``limit_s`` passes (a hang guard)."""
    end = time.monotonic() + limit_s
    while not ok():
        assert proc.poll() is None, f"the runner exited while waiting for {what}"
        assert time.monotonic() < end, f"no {what} within {limit_s} s"
        time.sleep(0.1)


def _seq(intent_id: str) -> int:
    return int(intent_id.rsplit("-", 1)[1])


class Session:
    """A simulator and a runner started from the promoted config A, on ``ledger_url``."""

    def __init__(self, tmp: Path, ledger_url: str, env: dict[str, str]) -> None:
        self.tmp, self.url, self.env = tmp, ledger_url, env
        self.ledger = Ledger.open(ledger_url)
        led = self.ledger
        self.a = register_candidate(led, trading_config(0), metrics=metrics(), data_hashes={}).id
        self.b = register_candidate(
            led, trading_config(UNREACHABLE_EDGE), metrics=metrics(), data_hashes={}
        ).id
        for cid in (self.a, self.b):
            evaluate_candidate(led, cid, GATES)
        promote(led, self.a, by="tester", reason="A", json_dir=tmp / "configs")
        self.run_id = ""
        self.proc: subprocess.Popen[str] | None = None

    def run_rows(self, table: str) -> list[dict[str, Any]]:
        if not self.run_id:
            runs = self.ledger.rows("runs")
            if not runs:
                return []
            self.run_id = runs[0]["id"]
        return self.ledger.rows(table, run_id=self.run_id)

    def swaps(self) -> list[str]:
        return [e["error"] for e in self.run_rows("errors") if e["source"] == "config"]

    def intents_seen(self) -> int:
        """The highest intent number among the run's orders in the ledger."""
        return max((_seq(o["intent_id"]) for o in self.run_rows("orders")), default=0)


@contextmanager
def session(
    tmp: Path, ledger_url: str, **env: str
) -> Iterator[tuple[Session, subprocess.Popen[str]]]:
    (tmp / "sim.toml").write_text(SIM)
    port = _free_port()
    sim = subprocess.Popen(
        [*POLYLAB, "sim", "serve", "--port", str(port), "--config", "sim.toml"],
        cwd=tmp,
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    s = Session(tmp, ledger_url, _env(**env))
    try:
        proc = subprocess.Popen(
            [
                *POLYLAB,
                "run",
                "--url",
                f"http://127.0.0.1:{port}",
                "--promoted",
                "--database-url",
                ledger_url,
                "--seconds",
                "300",
                "--json",
                *(["--bus-prefix", env["BUS_PREFIX"]] if "BUS_PREFIX" in env else []),
            ],
            cwd=tmp,
            env=s.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        s.proc = proc
        try:
            yield s, proc
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=30)
    finally:
        s.ledger.close()
        sim.send_signal(signal.SIGTERM)
        try:
            sim.wait(timeout=30)
        except subprocess.TimeoutExpired:
            sim.kill()


def _stop(proc: subprocess.Popen[str]) -> dict[str, Any]:
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err[-3000:]
    summary: dict[str, Any] = json.loads(out)
    return summary


def _promote_b_then_roll_back(
    s: Session, proc: subprocess.Popen[str], redis_url: str, bus_prefix: str = ""
) -> list[int]:
    """A trades; promote B; B holds for ``B_SECONDS``; roll back; A trades again. Returns
    the notice latencies (promotion call → swap recorded by the runner, s)."""
    _wait("intent under A", lambda: s.intents_seen() > 0, proc)
    notice = {"redis_url": redis_url, "bus_prefix": bus_prefix, "json_dir": s.tmp / "configs"}
    asked = [time.time_ns()]
    promote(s.ledger, s.b, by="tester", reason="B", **notice)  # type: ignore[arg-type]
    _wait("swap to B", lambda: len(s.swaps()) == 1, proc)
    time.sleep(B_SECONDS)
    asked.append(time.time_ns())
    rollback(s.ledger, by="tester", reason="back", **notice)  # type: ignore[arg-type]
    _wait("swap back to A", lambda: len(s.swaps()) == 2, proc)
    found = re.search(r"after intent (\d+)", s.swaps()[1])
    assert found is not None
    back_after = int(found.group(1))
    _wait("intent under A again", lambda: s.intents_seen() > back_after, proc)
    return asked


def _check_trading_changed(s: Session, summary: dict[str, Any], asked_ns: list[int]) -> None:
    to_b, to_a = summary["config_swaps"]
    assert (to_b["old_id"], to_b["new_id"], to_b["by"]) == (s.a, s.b, "tester")
    assert (to_a["old_id"], to_a["new_id"], to_a["reason"]) == (s.b, s.a, "back")
    assert set(to_b["changed"]) == {"clipper.min_edge_micros", "sum_to_100.min_edge_micros"}
    assert to_b["restart_needed"] == [] and summary["config_id"] == s.a
    # Trading behaviour, from the run folder: intents before B, none while B traded, more after.
    folder = s.tmp / summary["out_dir"]
    seqs = sorted(_seq(i) for i in pl.read_parquet(folder / "intents.parquet")["intent_id"])
    assert to_b["intents_before"] > 0
    assert [q for q in seqs if to_b["intents_before"] < q <= to_a["intents_before"]] == []
    assert to_a["intents_before"] == to_b["intents_before"]
    assert seqs[-1] > to_a["intents_before"]
    # The same engine and feed throughout: one connection, no reconnect, books never resynced.
    feed = json.loads((folder / "summary.json").read_text())["feed"]
    assert feed["reconnects"] == 0 and feed["resyncs"] == 0
    lat = [(sw["ts_ns"] - t) / 1e6 for sw, t in zip((to_b, to_a), asked_ns, strict=True)]
    print(f"promotion → swap: {lat[0]:.0f} ms, rollback → swap: {lat[1]:.0f} ms")


def test_in_process_bus_follows_promotions_by_polling_the_ledger(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'runs' / 'polylab.db'}"
    (tmp_path / "runs").mkdir()
    with session(tmp_path, db) as (s, proc):
        asked = _promote_b_then_roll_back(s, proc, redis_url="")  # no Redis: the poll
        summary = _stop(proc)
    _check_trading_changed(s, summary, asked)
    assert summary["bus"]["backend"] == "inprocess"
    assert all(sw["origin"] == "ledger" for sw in summary["config_swaps"])


def test_redis_notice_swaps_and_a_config_without_passed_gates_is_refused(
    tmp_path: Path, redis_url: str, prefix: str, pg_base: str, pg_schema: str
) -> None:
    url = pg_url(pg_base, pg_schema)
    client = redis.Redis.from_url(redis_url)
    states = client.pubsub()
    states.subscribe(prefix + STATE)
    try:
        with session(tmp_path, url, REDIS_URL=redis_url, BUS_PREFIX=prefix) as (s, proc):
            asked = _promote_b_then_roll_back(s, proc, redis_url, prefix)
            # A config promoted behind the gates' back (straight into the ledger) is refused.
            c = register_candidate(s.ledger, trading_config(5), metrics={}, data_hashes={}).id
            s.ledger.promote_config(c, by="intruder", reason="no gates")
            notify_runner(by="intruder", reason="no gates", redis_url=redis_url, bus_prefix=prefix)
            _wait("refusal", lambda: any("refused" in e for e in s.swaps()), proc)
            summary = _stop(proc)
        seen = []
        while (m := states.get_message(timeout=1.0)) is not None:
            if m["type"] == "message":
                seen.append(decode_message(m["data"]))
    finally:
        states.close()
    _check_trading_changed(s, summary, asked)
    assert summary["bus"]["backend"] == "redis"
    assert [sw["origin"] for sw in summary["config_swaps"]] == ["promoted", "promoted"]
    assert summary["config_id"] == s.a  # the refused config never traded
    (refusal,) = summary["config_refusals"]
    assert f"config {c[:12]} has no gate results" in refusal and "intruder" in refusal

    # poly:signals in order: A's signals, the swap to B, nothing, the swap back, A's signals.
    stream = [decode_message(f[b"m"]) for _, f in client.xrange(prefix + STREAMS[SIGNALS])]
    kinds = [
        "A" if isinstance(m, SignalMessage) else m.new_id
        for m in stream
        if isinstance(m, SignalMessage | ConfigMessage)
    ]
    i_b, i_a = kinds.index(s.b), len(kinds) - 1 - kinds[::-1].index(s.a)
    assert "A" in kinds[:i_b] and i_a == i_b + 1 and "A" in kinds[i_a + 1 :]
    errors = [decode_message(f[b"m"]) for _, f in client.xrange(prefix + STREAMS[ERRORS])]
    refused = [e for e in errors if isinstance(e, ErrorMessage) and e.source == "config"]
    assert len(refused) == 1 and refused[0].error == "PromotionError"
    # poly:state named each config as it traded.
    ids = [m.config_id for m in seen if isinstance(m, StateMessage)]
    assert ids[0] == s.a and s.b in ids and ids[-1] == s.a
    client.delete(*[prefix + k for k in STREAMS.values()])
    client.close()

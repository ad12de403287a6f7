"""The research loop end to end, one command per step, as the README shows it: recordings →
``polylab pipeline run sweep`` → ``run validate`` → ``run promote`` → a running
``polylab run --promoted`` picking the next promotion up, on small data.

Every step is the real command in its own process, on one SQLite ledger (``DATABASE_URL``);
the runner has no Redis, so it notices the promotion by polling the ledger. The gates are the
shipped file's form with bounds small data can meet (its out-of-sample trade floor is for real
recordings): the gate logic has its own tests (``test_gates.py``); here the loop is under test.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import pytest
from pipeline_helpers import PIPELINES, POLYLAB, Project

from polylab.store.ledger import Ledger

GRID_A = 'grid={min_edge: "0.001:0.004:0.003", min_liquidity: "10,200"}'
GRID_B = 'grid={min_edge: "0.002", min_liquidity: "50"}'  # one point, not in A: another config


def _validate(project: Project, grid: str) -> str:
    """``pipeline run validate`` (train rec-1, test rec-2, rec-3 held out, 3 s of paper);
    returns the candidate's id."""
    res = project.polylab(
        "pipeline", "run", "validate", "--pipelines", str(PIPELINES),
        "-p", "recordings=[data/rec-1.jsonl.zst, data/rec-2.jsonl.zst]",
        "-p", "held_out=[data/rec-3.jsonl.zst]",
        "-p", "strategy=sum_to_100", "-p", grid,
        "-p", "folds=1", "-p", "workers=1", "-p", "paper_seconds=3", "-p", "seed=1",
        "--json",
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    (candidate,) = json.loads(res.stdout)["config_ids"]
    return str(candidate)


def _promote(project: Project, gates: Path, reason: str) -> list[str]:
    res = project.polylab(
        "pipeline", "run", "promote", "--pipelines", str(PIPELINES),
        "-p", "config_id=latest", "-p", f"gates={gates}",
        "-p", "by=loop-test", "-p", f"reason={reason}", "--json",
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    return list(json.loads(res.stdout)["config_ids"])


@pytest.mark.slow
def test_recordings_to_a_running_runner_picking_up_the_promotion(project: Project) -> None:
    gates = project.root / "gates.yaml"
    gates.write_text(
        "gates:\n"
        "  - {name: oos_trades, metric: out_of_sample.trades, min: 0}\n"
        "  - {name: held_out_seen, metric: held_out.events, min: 1}\n"
        "  - {name: paper_vs_backtest, metric: paper.diff_pct, max: 10}\n"
    )
    db = project.root / "ledger.db"

    # 1. sweep (rec-3 held out) ...
    sweep = project.polylab(
        "pipeline", "run", "sweep", "--pipelines", str(PIPELINES), "-f", str(project.params)
    )
    assert sweep.returncode == 0, sweep.stderr
    # 2. ... validate → candidate A, 3. promote A
    a = _validate(project, GRID_A)
    assert _promote(project, gates, "first") == [a]

    # 4. the runner trades the promoted config (built-in simulator, no Redis: ledger poll)
    runner = subprocess.Popen(
        [str(POLYLAB), "run", "--promoted", "--seconds", "600", "--json", "--http-port", "0"],
        cwd=project.root,
        env=project.env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        led = Ledger.open(f"sqlite:///{db}")
        try:
            _wait_for(lambda: any(r["config_id"] == a for r in led.rows("runs")), runner)
            # the next loop: validate B, promote it; the running runner swaps to it
            b = _validate(project, GRID_B)
            assert b != a
            assert _promote(project, gates, "second") == [b]
            promoted = led.promoted_config()
            assert promoted is not None and promoted.id == b and promoted.gates
            _wait_for(lambda: any(e["source"] == "config" for e in led.rows("errors")), runner)
        finally:
            led.close()
        runner.send_signal(signal.SIGTERM)
        out, err = runner.communicate(timeout=120)
    finally:
        if runner.poll() is None:
            runner.kill()
            runner.wait(timeout=30)
    assert runner.returncode == 0, err[-3000:]
    summary = json.loads(out)
    (swap,) = summary["config_swaps"]
    assert (swap["old_id"], swap["new_id"], swap["by"], swap["reason"]) == (
        a, b, "loop-test", "second",
    )  # fmt: skip
    assert swap["origin"] == "ledger"
    assert "sum_to_100.min_edge_micros" in swap["changed"]

    # every step is a pipeline run in the ledger, each with its folder and provenance
    led = Ledger.open(f"sqlite:///{db}")
    try:
        runs = led.pipeline_runs()
    finally:
        led.close()
    assert sorted(r.name for r in runs) == ["promote", "promote", "sweep", "validate", "validate"]
    assert all(r.status == "ok" for r in runs)
    for r in runs:
        assert (Path(r.folder) / "provenance.json").is_file()


def _wait_for(cond: object, proc: subprocess.Popen[str], timeout_s: float = 180) -> None:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise AssertionError(f"the runner exited ({proc.returncode})")
        if callable(cond) and cond():
            return
        time.sleep(0.25)
    raise AssertionError("timed out")

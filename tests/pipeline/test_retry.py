"""A cell over its time limit is taken for a stalled kernel: the pipeline runs once more on a
fresh kernel, and only then (and only for a timeout) does the run fail; ``provenance.json``
lists the attempts. Real papermill runs of a small notebook that counts its executions in a
file, so "exactly one retry" is read from what the kernel did, not from the runner's word."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from pipeline_helpers import POLYLAB, Webhook, tries_pipeline

from polylab.ops.alerts import AlertConfig
from polylab.pipeline.execute import DEFAULT_CELL_TIMEOUT_S, cell_limit
from polylab.pipeline.provenance import read_provenance
from polylab.pipeline.run import PipelineError, run_pipeline
from polylab.store.ledger import Ledger

TINY_LIMIT_S = 10.0
"""Seconds per cell: far above the stdlib-only cell's real work, far below its stall."""


def _run(tmp_path: Path, webhook: Webhook, **params: object) -> tuple[Path, object]:
    pipes = tmp_path / "pipelines"
    tries_pipeline(pipes)
    marker = tmp_path / "tries.txt"
    res = run_pipeline(
        "tries",
        pipelines=pipes,
        root=tmp_path / "runs",
        database_url=f"sqlite:///{tmp_path / 'ledger.db'}",
        overrides={"marker": str(marker), **params},
        cell_timeout_s=TINY_LIMIT_S,
        alerts=AlertConfig(webhook_url=webhook.url),
    )
    return marker, res


@pytest.mark.slow
def test_a_stalled_cell_is_retried_once_on_a_fresh_kernel(tmp_path: Path, webhook: Webhook) -> None:
    marker, res = _run(tmp_path, webhook, stall_s=600.0)
    assert res.ok, res.error
    assert marker.read_text().splitlines() == ["ran", "ran"]  # exactly one retry
    assert res.outputs.metrics == {"tries": 2}
    prov = read_provenance(res.folder)
    assert prov == res.provenance and prov.status == "ok" and prov.error is None
    assert prov.retried is True and prov.cell_timeout_s == TINY_LIMIT_S
    assert [(a.number, a.outcome) for a in prov.attempts] == [(1, "timeout"), (2, "ok")]
    assert "CellTimeoutError" in prov.attempts[0].error and prov.attempts[1].error == ""
    assert prov.attempts[0].started_ns < prov.attempts[1].started_ns
    assert webhook.texts == []  # the run ended ok: nothing to alert
    led = Ledger.open(f"sqlite:///{tmp_path / 'ledger.db'}")
    try:
        (row,) = led.pipeline_runs()
    finally:
        led.close()
    assert row.status == "ok" and row.metrics == {"tries": 2}


@pytest.mark.slow
def test_a_cell_that_raises_is_not_retried(tmp_path: Path, webhook: Webhook) -> None:
    marker, res = _run(tmp_path, webhook, fail=True)
    assert res.status == "failed"
    assert marker.read_text().splitlines() == ["ran"]  # one execution only
    prov = res.provenance
    assert prov.retried is False
    assert [(a.number, a.outcome) for a in prov.attempts] == [(1, "error")]
    assert prov.attempts[0].error.startswith("PapermillExecutionError")
    assert prov.error is not None and prov.error.ename == "RuntimeError"
    assert "RuntimeError: boom on try 1" in res.error and "attempts" not in res.error
    assert len(webhook.texts) == 1


def test_cell_limits_are_checked_and_zero_means_none() -> None:
    assert cell_limit(None) is None and cell_limit(0) is None and cell_limit(0.0) is None
    assert cell_limit(900) == 900.0 and cell_limit(2.5) == 2.5
    assert DEFAULT_CELL_TIMEOUT_S == 900.0
    for bad in (-1, -0.5, float("nan"), float("inf"), True, "10"):
        with pytest.raises(ValueError, match="--cell-timeout"):
            cell_limit(bad)  # type: ignore[arg-type]


def test_run_pipeline_refuses_a_bad_limit_before_anything_runs(tmp_path: Path) -> None:
    pipes = tmp_path / "pipelines"
    tries_pipeline(pipes)
    with pytest.raises(PipelineError, match=r"cell_timeout_s -3\.0"):
        run_pipeline(
            "tries",
            pipelines=pipes,
            root=tmp_path / "runs",
            database_url=f"sqlite:///{tmp_path / 'l.db'}",
            cell_timeout_s=-3.0,
        )
    assert not (tmp_path / "runs").exists() and not (tmp_path / "l.db").exists()


@pytest.mark.parametrize("command", ["run", "serve"])
@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("-5", "--cell-timeout -5.0: expected a finite number of seconds ≥ 0 (0: no limit)"),
        ("nan", "--cell-timeout nan"),
        ("inf", "--cell-timeout inf"),
        ("soon", "Invalid value for '--cell-timeout'"),
    ],
)
def test_a_bad_cell_timeout_is_one_line_and_exit_2(
    tmp_path: Path, command: str, value: str, words: str
) -> None:
    pipes = tmp_path / "pipelines"
    tries_pipeline(pipes)
    (pipes / "schedule.yaml").write_text("pipelines:\n  tries: {cron: '* * * * * *'}\n")
    db = tmp_path / "l.db"
    args = ["tries"] if command == "run" else []
    limit = ["--cell-timeout", value]
    res = subprocess.run(
        [str(POLYLAB), "pipeline", command, *args, "--pipelines", str(pipes), *limit],
        cwd=tmp_path,
        env={**os.environ, "DATABASE_URL": f"sqlite:///{db}"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert res.returncode == 2
    (line,) = res.stderr.strip().splitlines()
    assert line.startswith("polylab: error: ") and words in line
    assert not db.exists() and not (tmp_path / "runs").exists()  # nothing ran, nothing recorded


@pytest.mark.slow
def test_serve_takes_a_schedule_entrys_own_cell_timeout(tmp_path: Path) -> None:
    """``serve`` with the default 900 s limit, but the entry's ``cell_timeout: 10``: the first
    run's stall is cut at the entry's limit and retried, and the run ends ok."""
    pipes = tmp_path / "pipelines"
    tries_pipeline(pipes)
    marker = tmp_path / "tries.txt"
    (pipes / "schedule.yaml").write_text(
        "pipelines:\n"
        "  tries:\n"
        "    cron: '* * * * * *'\n"
        f"    cell_timeout: {TINY_LIMIT_S}\n"
        f"    params: {{marker: {str(marker)!r}, stall_s: 600}}\n"
    )
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    env = {k: v for k, v in os.environ.items() if k != "SLACK_WEBHOOK_URL"}
    env["DATABASE_URL"] = url
    log = tmp_path / "serve.err"
    with log.open("w") as err:
        proc = subprocess.Popen(
            [str(POLYLAB), "pipeline", "serve", "--pipelines", str(pipes)],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=err,
            start_new_session=True,
        )
        try:
            deadline = time.monotonic() + 240
            while "tries: ok in" not in log.read_text() and time.monotonic() < deadline:
                assert proc.poll() is None, log.read_text()
                time.sleep(0.5)
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=120) == 0, log.read_text()
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    text = log.read_text()
    assert "(retried once after a cell timeout)" in text, text
    first = min((tmp_path / "runs" / "pipelines").glob("*-tries"))
    prov = read_provenance(first)
    assert prov.status == "ok" and prov.cell_timeout_s == TINY_LIMIT_S and prov.retried
    assert [a.outcome for a in prov.attempts] == ["timeout", "ok"]

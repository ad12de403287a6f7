"""Schedules: due and missed runs on an injected clock; schedule files; and a real
``polylab pipeline serve`` on an every-second schedule: no two runs of one pipeline overlap,
missed runs are logged, SIGTERM stops it between runs."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import time
from calendar import timegm
from collections.abc import Callable
from pathlib import Path

import pytest
from pipeline_helpers import POLYLAB, nap_pipeline
from sqlalchemy.exc import SQLAlchemyError

from polylab.pipeline.run import PipelineError
from polylab.pipeline.schedule import (
    MAX_COUNTED,
    ScheduleEntry,
    Scheduler,
    load_schedule,
    next_due,
)
from polylab.store.ledger import Ledger

T0 = float(timegm((2026, 3, 1, 12, 0, 0)))  # a Sunday, 12:00:00 UTC


def _every_second(name: str = "tick") -> ScheduleEntry:
    return ScheduleEntry(pipeline=name, cron="* * * * * *")


def test_cron_fields_are_utc_and_six_fields_put_seconds_first() -> None:
    assert next_due("0 2 * * *", T0) == T0 + 14 * 3600  # next 02:00 UTC
    assert next_due("*/10 * * * * *", T0) == T0 + 10
    assert next_due("30 0 12 * * *", T0) == T0 + 30  # sec 30, min 0, hour 12
    assert next_due("0 3 * * 1-5", T0) == T0 + 15 * 3600  # Monday 03:00


def test_due_runs_start_once_and_a_running_pipeline_misses_its_turns() -> None:
    sched = Scheduler([_every_second(), ScheduleEntry(pipeline="slow", cron="*/5 * * * * *")], T0)
    assert sched.next_wake() == T0 + 1
    start, missed = sched.tick(T0 + 0.5, lambda _: False)
    assert start == [] and missed == []
    start, missed = sched.tick(T0 + 1.01, lambda _: False)
    assert [e.pipeline for e in start] == ["tick"] and missed == []
    # tick still running at the next two due times: both missed, nothing started
    for t in (T0 + 2.0, T0 + 3.0):
        start, missed = sched.tick(t, lambda name: name == "tick")
        assert start == []
        (m,) = missed
        assert (m.pipeline, m.count, m.reason, m.first_due) == ("tick", 1, "still running", t)
        assert "previous run was still going" in m.describe()
    # free again: it starts; "slow" (every 5 s) comes due at :05 in the same tick
    start, missed = sched.tick(T0 + 5.0, lambda _: False)
    assert sorted(e.pipeline for e in start) == ["slow", "tick"]
    # tick's due at :04 passed between ticks (the loop was late): reported, not run
    (m,) = missed
    assert (m.count, m.reason, m.first_due, m.last_due) == (1, "late", T0 + 4, T0 + 4)


def test_a_pause_starts_only_the_latest_due_run_and_reports_the_others() -> None:
    sched = Scheduler([_every_second()], T0)
    start, missed = sched.tick(T0 + 30.2, lambda _: False)  # asleep for half a minute
    assert len(start) == 1
    (m,) = missed
    assert (m.count, m.reason, m.first_due, m.last_due) == (29, "late", T0 + 1, T0 + 29)
    assert "missed 29 runs of tick" in m.describe() and "paused" in m.describe()
    assert sched.next_wake() == T0 + 31
    # a gap too long to count one by one says "at least"
    start, missed = sched.tick(T0 + 31 + MAX_COUNTED + 50, lambda _: False)
    assert len(start) == 1 and missed[0].at_least and missed[0].describe().startswith("missed ≥")


def test_schedule_files_are_checked(tmp_path: Path) -> None:
    p = tmp_path / "schedule.yaml"
    p.write_text(
        "pipelines:\n"
        "  sweep: {cron: '0 2 * * *', params: {workers: 4}}\n"
        "  validate: {cron: '*/10 * * * * *', params_file: p.yaml, cell_timeout: 3600}\n"
        "  promote: {cron: '0 3 * * 1-5', cell_timeout: 0}\n"
    )
    got = load_schedule(p, {"sweep", "validate", "promote"})
    assert got == [
        ScheduleEntry(pipeline="sweep", cron="0 2 * * *", params={"workers": 4}),
        ScheduleEntry(
            pipeline="validate", cron="*/10 * * * * *", params_file="p.yaml", cell_timeout=3600.0
        ),
        ScheduleEntry(pipeline="promote", cron="0 3 * * 1-5", cell_timeout=0.0),  # no limit
    ]
    assert got[0].cell_timeout is None  # serve's --cell-timeout
    for body, words in [
        ("pipelines:\n  sweep: {cron: '61 * * * *'}\n", "not a cron expression"),
        ("pipelines:\n  sweep: {cron: '* * *'}\n", "not a cron expression"),
        ("pipelines:\n  nope: {cron: '0 2 * * *'}\n", "no pipeline 'nope'"),
        ("pipelines:\n  sweep: {cron: '0 2 * * *', every: 3}\n", "every"),
        ("pipelines: {}\n", "non-empty 'pipelines:'"),
        ("sweep: 1\n", "non-empty 'pipelines:'"),
        ("pipelines:\n  sweep: {cron: '0 2 * * *', cell_timeout: -5}\n", "sweep.cell_timeout -5"),
        ("pipelines:\n  sweep: {cron: '0 2 * * *', cell_timeout: .nan}\n", "sweep.cell_timeout"),
        ("pipelines:\n  sweep: {cron: '0 2 * * *', cell_timeout: soon}\n", "cell_timeout"),
    ]:
        p.write_text(body)
        with pytest.raises(PipelineError, match=words):
            load_schedule(p, {"sweep"})
    with pytest.raises(PipelineError, match="no schedule file"):
        load_schedule(tmp_path / "missing.yaml")


def _wait(what: str, cond: Callable[[], bool], timeout_s: float, log: Path) -> None:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if cond():
            return
        if "failed" in log.read_text():
            raise AssertionError(f"a run failed:\n{log.read_text()}")
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}:\n{log.read_text()}")


@pytest.mark.slow
def test_serve_runs_on_schedule_without_overlap_and_stops_cleanly_on_sigterm(
    tmp_path: Path,
) -> None:
    pipes = tmp_path / "pipelines"
    nap_pipeline(pipes)
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    env = {k: v for k, v in os.environ.items() if k != "SLACK_WEBHOOK_URL"}
    env["DATABASE_URL"] = url
    err = (tmp_path / "serve.err").open("w")
    proc = subprocess.Popen(
        [str(POLYLAB), "pipeline", "serve", "--pipelines", str(pipes)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=err,
        start_new_session=True,
    )

    def runs() -> list[tuple[str, int, int | None]]:
        """The ledger's runs as serve wrote them (none yet while serve creates the ledger)."""
        led = Ledger.open(url, migrate=False)  # serve migrates it, not this reader
        try:
            return [(r.status, r.started_ns, r.finished_ns) for r in led.pipeline_runs()]
        except SQLAlchemyError:
            return []
        finally:
            led.close()

    try:
        # two finished runs, and a third going
        log = tmp_path / "serve.err"
        _wait("two runs", lambda: sum(s == "ok" for s, _, _ in runs()) >= 2, 240, log)
        _wait("a running run", lambda: any(s == "running" for s, _, _ in runs()), 120, log)
        sigterm_ns = time.time_ns()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=120) == 0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        err.close()
    log = (tmp_path / "serve.err").read_text()
    final = sorted(runs(), key=lambda r: r[1])
    assert len(final) >= 3
    # every run finished ok, the one running at SIGTERM included; none started after it
    assert all(s == "ok" and f is not None for s, _, f in final), final
    assert final[-1][1] < sigterm_ns < (final[-1][2] or 0)
    # no two runs of the pipeline overlapped
    for (_, _, end), (_, start, _) in itertools.pairwise(final):
        assert end is not None and end <= start
    # each run takes > 1 s: due times passed while a run was going, logged as missed
    assert "missed" in log and "previous run was still going" in log
    assert "SIGTERM: stopping after the running pipelines" in log
    assert "stopping: waiting for nap to finish" in log
    assert f"stopped: {len(final)} started, {len(final)} ok, 0 failed" in log
    for d in (tmp_path / "runs" / "pipelines").glob("*-nap"):
        assert (d / "provenance.json").is_file() and (d / "nap.ipynb").is_file()


def test_serve_with_a_bad_schedule_is_one_line(tmp_path: Path) -> None:
    pipes = tmp_path / "pipelines"
    nap_pipeline(pipes)
    (pipes / "schedule.yaml").write_text("pipelines:\n  nap: {cron: 'every second'}\n")
    res = subprocess.run(
        [str(POLYLAB), "pipeline", "serve", "--pipelines", str(pipes)],
        cwd=tmp_path,
        env={**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'l.db'}"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert res.returncode == 2
    (line,) = res.stderr.strip().splitlines()
    assert "nap.cron 'every second' is not a cron expression" in line

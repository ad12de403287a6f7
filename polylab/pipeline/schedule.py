"""Pipelines on cron schedules (``polylab pipeline serve``, ``pipelines/schedule.yaml``).

The schedule file maps pipeline names to when they run and with what::

    pipelines:
      sweep:
        cron: "0 2 * * *"                  # min hour day month weekday, in UTC
        params_file: pipelines/params/sweep.yaml   # optional (default: the pipeline's own)
        params: {workers: 4}               # optional overrides, as -p would give them
        cell_timeout: 3600                 # optional seconds per cell (0: no limit); default
                                           # serve's --cell-timeout (pipeline.execute)
      validate:
        cron: "*/10 * * * * *"             # six fields: seconds first (every 10 s)

``Scheduler`` is the bookkeeping, on any clock (seconds since the epoch, UTC; tests inject
one): at each tick it says which pipelines to start and which due runs were **missed** — due
while that pipeline's previous run was still going (no two runs of one pipeline ever
overlap), or due while the scheduler itself was not running (a pause, a suspended machine, a
busy loop): after a gap only the latest due run starts, the earlier ones are reported.

``serve`` drives it: each started pipeline runs on a thread of its own (different pipelines may
run at the same time; ``pipeline.run`` also holds a per-pipeline lock file, so a manual
``polylab pipeline run`` or a second ``serve`` never overlaps either), every start, end and
miss is reported, and a stop request (SIGTERM or Ctrl-C in the CLI) is honoured **between
runs**: nothing new starts, the pipelines already running finish and are recorded, then
``serve`` returns. (A second signal in the CLI ends the process at once.)
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import msgspec

from polylab.errors import InputError
from polylab.pipeline.execute import cell_limit
from polylab.pipeline.run import PipelineError, read_yaml_file

__all__ = [
    "MAX_COUNTED",
    "Missed",
    "ScheduleEntry",
    "Scheduler",
    "ServeStats",
    "load_schedule",
    "next_due",
    "serve",
]

log = logging.getLogger(__name__)

MAX_COUNTED = 10_000
"""Missed runs counted one by one after a gap; beyond that the count says "at least"."""


class ScheduleEntry(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One scheduled pipeline: its ``cron`` expression (5 fields, or 6 with seconds first;
    UTC), an optional params file and overrides, and an optional ``cell_timeout`` in seconds
    per cell (0: no limit; None: ``serve``'s own, from ``--cell-timeout``)."""

    pipeline: str
    cron: str
    params_file: str | None = None
    params: dict[str, Any] = {}
    cell_timeout: float | None = None


class Missed(msgspec.Struct, frozen=True, kw_only=True):
    """Due runs of one pipeline that did not start: how many (``at_least`` past
    ``MAX_COUNTED``), the first and last due times (s since the epoch) and why."""

    pipeline: str
    count: int
    first_due: float
    last_due: float
    reason: Literal["still running", "late"]
    at_least: bool = False

    def describe(self) -> str:
        """One line for people."""
        n = f"≥{self.count}" if self.at_least else str(self.count)
        span = _iso(self.first_due) + ("" if self.count == 1 else f" … {_iso(self.last_due)}")
        why = (
            "its previous run was still going"
            if self.reason == "still running"
            else "the scheduler was not running then (paused, asleep or busy)"
        )
        runs = "run" if self.count == 1 and not self.at_least else "runs"
        return f"missed {n} {runs} of {self.pipeline} due {span}: {why}"


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _croniter(expr: str, start: float) -> Any:
    from croniter import croniter

    six = len(expr.split()) == 6
    return croniter(expr, datetime.fromtimestamp(start, tz=UTC), second_at_beginning=six)


def _check_cron(pipeline: str, expr: str) -> None:
    from croniter import croniter

    n = len(expr.split())
    if n not in (5, 6) or not croniter.is_valid(expr, second_at_beginning=n == 6):
        raise PipelineError(
            f"schedule: {pipeline}.cron {expr!r} is not a cron expression (5 fields: minute "
            "hour day month weekday, or 6 with seconds first)"
        )


def next_due(expr: str, after: float) -> float:
    """The first time (s since the epoch) strictly after ``after`` that ``expr`` fires (UTC)."""
    return float(_croniter(expr, after).get_next(float))


def load_schedule(path: str | Path, pipelines: set[str] | None = None) -> list[ScheduleEntry]:
    """Read a schedule file (see the module docstring); each cron expression is checked and,
    given ``pipelines`` (the names that exist), each pipeline name too. ``PipelineError``
    names what is wrong."""
    p = Path(path)
    data = read_yaml_file(p, "schedule file")
    body = data.get("pipelines") if isinstance(data, dict) else None
    if not isinstance(body, dict) or not body:
        raise PipelineError(f"schedule {str(p)!r}: expected a non-empty 'pipelines:' mapping")
    out: list[ScheduleEntry] = []
    for name, spec in body.items():
        if not isinstance(spec, dict):
            raise PipelineError(f"schedule {str(p)!r}: {name}: expected a mapping with cron:")
        try:
            entry = msgspec.convert({"pipeline": str(name), **spec}, ScheduleEntry)
        except msgspec.ValidationError as exc:
            raise PipelineError(f"schedule {str(p)!r}: {name}: {exc}") from None
        if pipelines is not None and entry.pipeline not in pipelines:
            raise PipelineError(
                f"schedule {str(p)!r}: no pipeline {entry.pipeline!r} (pipelines: "
                f"{sorted(pipelines)})"
            )
        _check_cron(entry.pipeline, entry.cron)
        if "cell_timeout" in spec:  # 0 → no limit; checked here, not at 2 a.m.
            try:
                limit = cell_limit(spec["cell_timeout"], f"{entry.pipeline}.cell_timeout")
            except InputError as exc:
                raise PipelineError(f"schedule {str(p)!r}: {exc}") from None
            entry = msgspec.structs.replace(entry, cell_timeout=limit or 0.0)
        out.append(entry)
    return out


class Scheduler:
    """Which scheduled runs are due, started or missed (see the module docstring). No threads,
    no sleeping: ``tick(now, running)`` is called by a loop, on any clock."""

    def __init__(self, entries: list[ScheduleEntry], start: float) -> None:
        self.entries = list(entries)
        self._next = {e.pipeline: next_due(e.cron, start) for e in self.entries}

    def next_due_of(self, pipeline: str) -> float:
        """When ``pipeline`` is next due (s since the epoch)."""
        return self._next[pipeline]

    def next_wake(self) -> float:
        """The earliest due time of any pipeline."""
        return min(self._next.values(), default=float("inf"))

    def tick(
        self, now: float, running: Callable[[str], bool]
    ) -> tuple[list[ScheduleEntry], list[Missed]]:
        """Due runs at ``now``: the entries to start, and the runs missed since the last
        tick. ``running(name)``: whether that pipeline's previous run is still going."""
        start: list[ScheduleEntry] = []
        missed: list[Missed] = []
        for e in self.entries:
            due = self._next[e.pipeline]
            if now < due:
                continue
            it = _croniter(e.cron, due)
            times = [due]
            nxt = float(it.get_next(float))
            while nxt <= now and len(times) < MAX_COUNTED:
                times.append(nxt)
                nxt = float(it.get_next(float))
            capped = nxt <= now
            if capped:
                nxt = next_due(e.cron, now)
            self._next[e.pipeline] = nxt
            if running(e.pipeline):
                missed.append(
                    Missed(
                        pipeline=e.pipeline,
                        count=len(times),
                        first_due=times[0],
                        last_due=times[-1],
                        reason="still running",
                        at_least=capped,
                    )
                )
                continue
            start.append(e)
            if len(times) > 1:
                missed.append(
                    Missed(
                        pipeline=e.pipeline,
                        count=len(times) - 1,
                        first_due=times[0],
                        last_due=times[-2],
                        reason="late",
                        at_least=capped,
                    )
                )
        return start, missed


class ServeStats(msgspec.Struct):
    """What one ``serve`` did: runs started, ok, failed (or not started: busy, error), and
    due runs missed."""

    started: int = 0
    ok: int = 0
    failed: int = 0
    missed: int = 0


def serve(
    entries: list[ScheduleEntry],
    run: Callable[[ScheduleEntry], bool],
    *,
    stop: threading.Event,
    report: Callable[[str], None] = log.info,
    clock: Callable[[], float] = time.time,
    max_sleep_s: float = 1.0,
) -> ServeStats:
    """Run ``entries`` on their schedules until ``stop`` is set, then wait for the running
    pipelines and return. ``run(entry)`` runs one pipeline and returns True when it ended ok
    (it is called on a thread per run; an exception counts as failed and is reported).
    ``max_sleep_s`` bounds each wait, so a gap in the clock (a suspended machine) is noticed."""
    stats = ServeStats()
    lock = threading.Lock()
    threads: dict[str, threading.Thread] = {}
    sched = Scheduler(entries, clock())

    def running(name: str) -> bool:
        t = threads.get(name)
        return t is not None and t.is_alive()

    def one(entry: ScheduleEntry) -> None:
        try:
            ok = run(entry)
        except Exception as exc:  # a bug or an unusable run: reported, serve goes on
            report(f"{entry.pipeline}: not run: {type(exc).__name__}: {exc}")
            ok = False
        with lock:
            if ok:
                stats.ok += 1
            else:
                stats.failed += 1

    for e in entries:
        report(f"{e.pipeline}: cron {e.cron!r}, next run {_iso(sched.next_due_of(e.pipeline))}")
    while not stop.is_set():
        now = clock()
        due, missed = sched.tick(now, running)
        for m in missed:
            stats.missed += m.count
            report(m.describe())
        for e in due:
            t = threading.Thread(target=one, args=(e,), name=f"pipeline-{e.pipeline}")
            threads[e.pipeline] = t
            stats.started += 1
            t.start()
        stop.wait(max(0.0, min(sched.next_wake() - clock(), max_sleep_s)))
    alive = [n for n, t in threads.items() if t.is_alive()]
    if alive:
        report(f"stopping: waiting for {', '.join(sorted(alive))} to finish")
    for t in threads.values():
        t.join()
    report(
        f"stopped: {stats.started} started, {stats.ok} ok, {stats.failed} failed, "
        f"{stats.missed} missed"
    )
    return stats

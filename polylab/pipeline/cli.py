"""``polylab pipeline run|list|serve``: research pipelines (papermill notebooks) by hand or on
cron schedules.

``run NAME [-f params.yaml] [-p key=value]...`` runs ``pipelines/NN-NAME.ipynb`` once into
``runs/pipelines/<UTC time>-NAME/`` (``pipeline.run``); a failed run prints one line naming the
failing cell and exception and exits 2 (it is recorded in the ledger and alerted first).
``list`` shows the pipelines of the folder and the latest runs in the ledger. ``serve`` runs
them on ``pipelines/schedule.yaml`` (``pipeline.schedule``) until SIGTERM or Ctrl-C, which stop
it between runs.
"""

from __future__ import annotations

import contextlib
import json
import logging
import signal
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from polylab.cli_support import PolylabGroup
from polylab.pipeline.execute import DEFAULT_CELL_TIMEOUT_S, cell_limit

if TYPE_CHECKING:
    from polylab.pipeline.run import PipelineResult
    from polylab.store.ledger import Ledger

__all__ = ["app"]

app = typer.Typer(
    help="Research pipelines: papermill notebooks with provenance, by hand or on a schedule.",
    no_args_is_help=True,
    cls=PolylabGroup,
)
console = Console(stderr=True)

PipelinesOpt = Annotated[
    Path | None,
    typer.Option("--pipelines", help="the pipelines folder [default: ./pipelines]"),
]
RootOpt = Annotated[
    Path, typer.Option("--root", help="where run folders go [default: runs/pipelines]")
]
DbOpt = Annotated[
    str | None,
    typer.Option(
        "--database-url", help="ledger [default: $DATABASE_URL, else sqlite:///runs/polylab.db]"
    ),
]
TimeoutOpt = Annotated[
    float,
    typer.Option(
        "--cell-timeout",
        help="seconds one cell may take; over it the notebook is retried once on a fresh "
        "kernel, then fails (0: no limit)",
    ),
]


def _ts(ns: int | None) -> str:
    if ns is None:
        return "-"
    return datetime.fromtimestamp(ns / 1e9, tz=UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _summary(res: PipelineResult) -> Table:
    p = res.provenance
    t = Table(title=f"pipeline {res.name}: {res.status}", show_header=False)
    t.add_row("run id", res.run_id)
    t.add_row("folder", str(res.folder))
    t.add_row("duration", f"{p.timings.duration_s:.1f} s")
    if p.retried:
        t.add_row("attempts", "\n".join(f"{a.number}: {a.outcome} {a.error}" for a in p.attempts))
    t.add_row("git sha", p.git_sha)
    t.add_row("config ids", "\n".join(p.config_ids) or "-")
    t.add_row("data", "\n".join(f"{k}  {v[:16]}…" for k, v in p.data_hashes.items()) or "-")
    slow = sorted(
        (c for c in p.timings.cells if c.duration_s is not None),
        key=lambda c: -(c.duration_s or 0.0),
    )[:3]
    t.add_row("slowest cells", "\n".join(f"{c.duration_s:.1f} s  {c.source}" for c in slow))
    if res.error:
        t.add_row("error", res.error)
    return t


@app.command("run")
def run_cmd(
    name: Annotated[str, typer.Argument(help="pipeline name (sweep, validate, promote, …)")],
    params_file: Annotated[
        Path | None,
        typer.Option("-f", "--params-file", help="params YAML [default: pipelines/params/NAME]"),
    ] = None,
    param: Annotated[
        list[str] | None,
        typer.Option("-p", "--param", help="key=value override (value read as YAML)"),
    ] = None,
    pipelines: PipelinesOpt = None,
    root: RootOpt = Path("runs/pipelines"),
    database_url: DbOpt = None,
    cell_timeout: TimeoutOpt = DEFAULT_CELL_TIMEOUT_S,
    as_json: Annotated[bool, typer.Option("--json", help="print the provenance as JSON")] = False,
) -> None:
    """Run one pipeline notebook with papermill; exit 2 with one line when it fails."""
    import msgspec

    from polylab.pipeline.run import PipelineFailed, parse_overrides, run_pipeline

    limit = cell_limit(cell_timeout)
    overrides = parse_overrides(param or [])
    with console.status(f"running pipeline {name} …"), _quiet_root_log():
        res = run_pipeline(
            name,
            params_file=params_file,
            overrides=overrides,
            root=root,
            pipelines=pipelines,
            database_url=database_url,
            cell_timeout_s=limit,
        )
    if as_json:
        typer.echo(msgspec.json.encode(res.provenance).decode())
    if not res.ok:  # the one line (the alert went out, the ledger has the run)
        raise PipelineFailed(res.error)
    if not as_json:
        console.print(_summary(res))


@contextlib.contextmanager
def _quiet_root_log() -> Iterator[None]:
    """Without a log handler (no ``--debug``/``--log-file``), Python prints warnings to stderr
    on its own (``logging.lastResort``): the alert's log line would precede the error line.
    A null handler for the command keeps stderr to the one line; the alert itself still goes."""
    root = logging.getLogger()
    if root.handlers:
        yield
        return
    h = logging.NullHandler()
    root.addHandler(h)
    try:
        yield
    finally:
        root.removeHandler(h)


def _existing_ledger(database_url: str | None) -> Ledger | None:
    """The ledger, or None when the default SQLite file does not exist yet (nothing ran)."""
    from sqlalchemy.engine import make_url

    from polylab.store.ledger import Ledger, resolve_url

    url = resolve_url(database_url)
    u = make_url(url)
    if u.get_backend_name() == "sqlite" and not Path(u.database or "").is_file():
        return None
    return Ledger.open(url)


@app.command("list")
def list_cmd(
    pipelines: PipelinesOpt = None,
    database_url: DbOpt = None,
    limit: Annotated[int, typer.Option(help="runs shown", min=1)] = 20,
    name: Annotated[str | None, typer.Option("--name", help="runs of this pipeline only")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object")] = False,
) -> None:
    """The pipelines of the folder and the latest runs recorded in the ledger."""
    import msgspec

    from polylab.pipeline.run import available_pipelines, find_pipelines

    pipes = find_pipelines(pipelines)
    found = available_pipelines(pipes)
    ledger = _existing_ledger(database_url)
    try:
        runs = [] if ledger is None else ledger.pipeline_runs(name=name, limit=limit)
    finally:
        if ledger is not None:
            ledger.close()
    if as_json:
        doc = {
            "pipelines": {
                n: {
                    "notebook": str(p),
                    "params": str(pipes / "params" / f"{n}.yaml")
                    if (pipes / "params" / f"{n}.yaml").is_file()
                    else None,
                }
                for n, p in found.items()
            },
            "runs": [msgspec.to_builtins(r) for r in runs],
        }
        typer.echo(json.dumps(doc))
        return
    t = Table(title=f"pipelines in {pipes}")
    for c in ("name", "notebook", "params"):
        t.add_column(c)
    for n, p in found.items():
        params = pipes / "params" / f"{n}.yaml"
        t.add_row(n, p.name, str(params) if params.is_file() else "-")
    console.print(t)
    r = Table(title="latest runs" if runs else "no pipeline runs in the ledger yet")
    widths = {"started": 20, "name": 8, "status": 6, "duration": 8, "config ids": 12}
    for c, w in widths.items():
        r.add_column(c, no_wrap=True, min_width=w)
    r.add_column("folder", no_wrap=True, overflow="ellipsis")
    r.add_column("error", overflow="ellipsis", max_width=48, no_wrap=True)
    for row in runs:
        dur = (
            f"{(row.finished_ns - row.started_ns) / 1e9:.1f} s"
            if row.finished_ns is not None
            else "-"
        )
        r.add_row(
            _ts(row.started_ns),
            row.name,
            row.status,
            dur,
            "\n".join(c[:12] for c in row.config_ids) or "-",
            Path(row.folder).name,
            row.error.removeprefix(f"pipeline {row.name} failed").lstrip(": "),
        )
    console.print(r)


@app.command("serve")
def serve_cmd(
    schedule: Annotated[
        Path | None,
        typer.Option("--schedule", help="cron schedules [default: pipelines/schedule.yaml]"),
    ] = None,
    pipelines: PipelinesOpt = None,
    root: RootOpt = Path("runs/pipelines"),
    database_url: DbOpt = None,
    cell_timeout: TimeoutOpt = DEFAULT_CELL_TIMEOUT_S,
) -> None:
    """Run pipelines on their cron schedules until SIGTERM or Ctrl-C (which stop it between
    runs: running pipelines finish first; a second signal ends it at once). A schedule entry's
    own ``cell_timeout`` replaces ``--cell-timeout`` for that pipeline."""
    from polylab.pipeline import schedule as sch
    from polylab.pipeline.run import (
        PipelineBusy,
        available_pipelines,
        find_pipelines,
        run_pipeline,
    )
    from polylab.store.ledger import Ledger

    default_limit = cell_limit(cell_timeout)
    pipes = find_pipelines(pipelines)
    entries = sch.load_schedule(
        schedule or pipes / "schedule.yaml", set(available_pipelines(pipes))
    )
    ledger = Ledger.open(database_url)
    stop = threading.Event()

    def report(line: str) -> None:
        console.print(
            f"{time.strftime('%H:%M:%S')} {line}", markup=False, highlight=False, soft_wrap=True
        )
        sch.log.info("%s", line)

    def run_one(e: sch.ScheduleEntry) -> bool:
        report(f"{e.pipeline}: starting")
        try:
            res = run_pipeline(
                e.pipeline,
                params_file=e.params_file,
                overrides=e.params,
                root=root,
                ledger=ledger,
                pipelines=pipes,
                cell_timeout_s=default_limit if e.cell_timeout is None else e.cell_timeout,
            )
        except PipelineBusy as exc:
            report(f"missed 1 run of {e.pipeline}: {exc}")
            return False
        if res.ok:
            again = " (retried once after a cell timeout)" if res.provenance.retried else ""
            report(
                f"{e.pipeline}: ok in {res.provenance.timings.duration_s:.1f} s{again} → "
                f"{res.folder}"
            )
        else:
            report(res.error)
        return res.ok

    def on_signal(signum: int, _frame: Any) -> None:
        report(f"{signal.Signals(signum).name}: stopping after the running pipelines")
        stop.set()
        signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a second signal ends it at once
        signal.signal(signal.SIGINT, signal.default_int_handler)

    old = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        with _quiet_root_log():  # each event is reported once, by `report`
            sch.serve(entries, run_one, stop=stop, report=report)
    finally:
        for s, h in old.items():
            signal.signal(s, h)
        ledger.close()

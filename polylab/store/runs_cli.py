"""``polylab runs list|show|compare``: the run folders under ``runs/`` from the shell.

``list`` gives one line per run folder (newest first), ``show RUN`` its summary and every
table with its row count and first rows, ``compare A B`` where two runs differ (the same
comparison as ``polylab compare``, ``polylab.compare``). ``RUN`` is a folder path, an id
under ``--root`` or a unique prefix of one. ``--json`` prints one JSON object: ids in full,
money and sizes named with their unit (``*_micros``, integers), times in ns.
"""

from __future__ import annotations

import sys
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any

import msgspec
import typer
from rich.console import Console
from rich.table import Table

from polylab.cli_support import PolylabGroup
from polylab.money import MICROS
from polylab.store.run_index import (
    TableInfo,
    find_runs,
    read_record,
    resolve_run,
    run_id,
    run_kind,
    summary_with_units,
    table_info,
    with_units,
)
from polylab.store.run_tables import ROW_TYPES, micros_columns, micros_name, row_schema

__all__ = ["app", "comparison_with_units"]

app = typer.Typer(
    help="Run folders (backtest, paper, live, run): list, show, compare.",
    no_args_is_help=True,
    cls=PolylabGroup,
)

_ROOT_HELP = "folder holding the run folders"
_JSON_HELP = "print one JSON object (ids in full, money as *_micros integers)"
_COMPARE_MICROS = ("filled", "fees", "realized", "unrealized", "pnl")
"""``RunComparison`` totals / per-strategy keys in micros (shares for ``filled``)."""


def _out(obj: Any) -> None:
    sys.stdout.write(msgspec.json.encode(obj).decode() + "\n")


def _when(ns: int) -> str:
    if not ns:
        return "-"
    import datetime as dt

    return dt.datetime.fromtimestamp(ns / 1e9, dt.UTC).strftime("%m-%d %H:%M:%S")


def _usd(micros: int) -> str:
    """Cash micros as dollars to the cent (exact decimal, rounded half even)."""
    return f"{Decimal(micros) / MICROS:.2f}"


@app.callback()
def _group() -> None:
    """Run folders (backtest, paper, live, run): list, show, compare."""


@app.command("list")
def list_cmd(
    root: Annotated[Path, typer.Argument(help=_ROOT_HELP)] = Path("runs"),
    as_json: Annotated[bool, typer.Option("--json", help=_JSON_HELP)] = False,
    limit: Annotated[int, typer.Option(min=1, help="newest N runs")] = 50,
) -> None:
    """The run folders under ROOT, newest first: kind, start, config, trades, PnL, fees."""
    entries = find_runs(root)[:limit]
    if as_json:
        _out({"root": str(root), "runs": entries})
        return
    t = Table(title=f"{len(entries)} run(s) under {root}/")
    # ids are what `show` and `compare` take: never cut, never folded
    t.add_column("id", no_wrap=True, min_width=max((len(e.id) for e in entries), default=2))
    for col in ("kind", "started (UTC)", "config"):
        t.add_column(col, no_wrap=True)
    t.add_column("trades", justify="right")
    t.add_column("PnL $", justify="right", no_wrap=True)
    t.add_column("fees $", justify="right", no_wrap=True)
    for e in entries:
        t.add_row(
            e.id,
            f"{e.kind} {e.status}" if e.kind == "pipeline" else e.kind,
            _when(e.started_ns),
            e.config_id[:12],
            str(e.trades),
            _usd(e.pnl_micros),
            _usd(e.fees_micros),
        )
    Console().print(t)


def _tables(folder: Path, top: int) -> dict[str, TableInfo]:
    return {p.stem: table_info(p, top) for p in sorted(folder.glob("*.parquet"))}


@app.command("show")
def show_cmd(
    run: Annotated[str, typer.Argument(help="run folder, id under --root, or id prefix")],
    root: Annotated[Path, typer.Option(help=_ROOT_HELP)] = Path("runs"),
    as_json: Annotated[bool, typer.Option("--json", help=_JSON_HELP)] = False,
    top: Annotated[int, typer.Option(min=0, help="first rows shown per table")] = 5,
) -> None:
    """One run: its summary and provenance (a pipeline run: its provenance.json), every table
    with its row count and first rows, and (--json) its files."""
    folder = resolve_run(run, root)
    what, record = read_record(folder)
    tables = _tables(folder, top)
    rid = run_id(folder, root)
    if what == "summary":
        kind, shown = run_kind(rid, record), summary_with_units(record)
    else:  # a pipeline run: its provenance (metrics already name their units)
        kind, shown = "pipeline", record
    if as_json:
        files = sorted(p.name for p in folder.iterdir() if p.is_file())
        _out(
            {
                "id": rid,
                "path": str(folder),
                "kind": kind,
                what: shown,
                "tables": tables,
                "files": files,
            }
        )
        return
    con = Console()
    head = Table(title=f"{rid} ({kind})", show_header=False)
    for k, v in shown.items():
        if k in ("config", "by_strategy", "feed", "parameters"):
            continue
        if isinstance(v, dict):
            for kk, vv in v.items():
                if kk != "cells":  # a pipeline's per-cell timings: in --json
                    head.add_row(f"{k}.{kk}", str(vv))
        else:
            head.add_row(k, str(v))
    con.print(head)
    counts = Table(title="tables")
    counts.add_column("table")
    counts.add_column("rows", justify="right")
    counts.add_column("columns", overflow="fold")
    for name, info in tables.items():
        counts.add_row(name, str(info.rows), ", ".join(info.columns))
    con.print(counts)
    for name, info in tables.items():
        if not info.top:
            continue
        t = Table(title=f"{name}: first {len(info.top)} of {info.rows}")
        for col in info.columns:
            t.add_column(col, overflow="fold")
        for row in info.top:
            t.add_row(*(str(row.get(c, "")) for c in info.columns))
        con.print(t)


def _renamed(d: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    return with_units(d, [k for k in keys if k in d])


def comparison_with_units(c: Any) -> dict[str, Any]:
    """A ``RunComparison`` as JSON-ready builtins with its micros named ``*_micros``: totals
    and per-strategy numbers, the divergent rows' columns and the differing fields' names."""
    d: dict[str, Any] = msgspec.to_builtins(c)
    d["totals"] = _renamed(d["totals"], _COMPARE_MICROS)
    d["by_strategy"] = {k: _renamed(v, _COMPARE_MICROS) for k, v in d["by_strategy"].items()}
    for key, table in (("first_intent_divergence", "intents"), ("first_fill_divergence", "fills")):
        dv = d.get(key)
        if not isinstance(dv, dict):
            continue
        micros = micros_columns(row_schema(ROW_TYPES[table]))
        for side in ("a", "b"):
            if isinstance(dv.get(side), dict):
                dv[side] = with_units(dv[side], micros)
        dv["fields"] = [micros_name(f) if f in micros else f for f in dv["fields"]]
    return d


@app.command("compare")
def compare_cmd(
    run_a: Annotated[str, typer.Argument(help="run A: folder, id under --root, or id prefix")],
    run_b: Annotated[str, typer.Argument(help="run B: folder, id under --root, or id prefix")],
    root: Annotated[Path, typer.Option(help=_ROOT_HELP)] = Path("runs"),
    as_json: Annotated[bool, typer.Option("--json", help=_JSON_HELP)] = False,
) -> None:
    """Where two runs differ (``polylab compare`` on runs named by id)."""
    from polylab.compare import CompareError, compare_runs, render

    a, b = resolve_run(run_a, root), resolve_run(run_b, root)
    try:
        c = compare_runs(a, b)
    except CompareError as exc:
        from polylab.errors import InputError

        raise InputError(str(exc)) from None
    if as_json:
        _out(comparison_with_units(c))
        return
    for t in render(c):
        Console().print(t)

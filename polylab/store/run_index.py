"""The run folders under a root (``runs/`` by default): find them, name them, describe them.

A run folder is a directory holding ``summary.json`` (``RunRecorder.write``: backtests, paper
and live sessions, ``polylab run``, the demo) or ``provenance.json`` (a pipeline run,
``runs/pipelines/<time>-<name>/``: kind ``pipeline``, its status, git sha and config ids).
Its id is its path relative to the root, in full (``backtest-20261128-101500``,
``pipelines/20261128T101500Z-sweep``), never shortened.

Everything here is for people and scripts reading results, so every money or size number is
named with its unit: summary keys (``pnl`` → ``pnl_micros``) and table columns (``fee`` →
``fee_micros``, see ``run_tables``). The Parquet files themselves keep the engine's names.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import msgspec
import polars as pl

from polylab.errors import InputError
from polylab.store.run_tables import micros_columns, micros_name

__all__ = [
    "SUMMARY_MICROS",
    "RunEntry",
    "TableInfo",
    "find_runs",
    "read_record",
    "read_summary",
    "resolve_run",
    "run_id",
    "run_kind",
    "summary_with_units",
    "table_info",
    "with_units",
]

SUMMARY_MICROS = ("pnl", "pnl_at_payout", "realized", "unrealized", "fees")
"""Summary keys (and ``by_strategy`` keys) that are cash micros."""

_KINDS = ("run-paper", "run-live", "backtest", "paper", "live", "demo")
"""Folder-name prefixes the commands use (``runs/<kind>-<time>``)."""

_MAX_DEPTH = 4  # how deep below the root run folders are looked for


class RunEntry(msgspec.Struct, frozen=True, kw_only=True):
    """One run folder's headline: ids in full, money in cash micros, times in ns."""

    id: str
    path: str
    kind: str
    started_ns: int
    ended_ns: int
    config_id: str
    data_hash: str
    code_version: str
    events: int
    intents: int
    trades: int
    rejections: int
    pnl_micros: int
    realized_micros: int
    unrealized_micros: int
    fees_micros: int
    win_rate: float
    fill_rate: float
    seconds: float
    status: str = ""
    """A pipeline run's status (ok, failed, running); how a session stopped otherwise."""
    config_ids: list[str] = []
    """A pipeline run's config ids (the first is ``config_id``)."""


class TableInfo(msgspec.Struct, frozen=True, kw_only=True):
    """One ``<table>.parquet``: its row count, its columns (unit-named → polars dtype) and
    its first rows (unit-named columns)."""

    rows: int
    columns: dict[str, str]
    top: list[dict[str, Any]]


_RECORDS = ("summary.json", "provenance.json")
"""What makes a folder a run folder: a run's summary, or a pipeline run's provenance."""


def _is_run(folder: Path) -> bool:
    return any((folder / name).is_file() for name in _RECORDS)


def _read_json(path: Path, what: str) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(f"{str(path)!r}: unreadable {what} ({exc})") from None
    if not isinstance(data, dict):
        raise InputError(f"{str(path)!r}: a {what} is a JSON object")
    return data


def read_summary(folder: Path) -> dict[str, Any]:
    """``folder/summary.json`` as a dict; ``InputError`` naming the file when unusable."""
    s = folder / "summary.json"
    if not s.is_file():
        raise InputError(f"{str(folder)!r} is not a run folder (no summary.json)")
    return _read_json(s, "run summary")


def read_record(folder: Path) -> tuple[str, dict[str, Any]]:
    """(``summary`` or ``provenance``, its content): what the run folder says of itself."""
    if (folder / "summary.json").is_file():
        return "summary", read_summary(folder)
    p = folder / "provenance.json"
    if p.is_file():
        return "provenance", _read_json(p, "pipeline provenance")
    raise InputError(f"{str(folder)!r} is not a run folder (no summary.json nor provenance.json)")


def run_id(folder: Path, root: str | Path = "runs") -> str:
    """A run folder's id: its path relative to ``root`` when it lies under it, else the path
    as given."""
    try:
        rel = folder.resolve().relative_to(Path(root).resolve())
    except ValueError:
        return str(folder)
    return rel.as_posix() if rel.parts else folder.name


def run_kind(name: str, summary: dict[str, Any]) -> str:
    """backtest, paper, live, run-paper, run-live, demo (from the folder name), else
    ``session`` for a folder with a recorded feed, ``backtest`` otherwise."""
    base = name.rsplit("/", 1)[-1]
    for k in _KINDS:
        if base == k or base.startswith(k + "-"):
            return k
    return "session" if summary.get("feed_file") else "backtest"


def _int(v: Any) -> int:
    return v if isinstance(v, int) and not isinstance(v, bool) else 0


def _float(v: Any) -> float:
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else 0.0


def _pipeline_entry(rid: str, folder: Path, prov: dict[str, Any]) -> RunEntry:
    timings = prov.get("timings")
    timings = timings if isinstance(timings, dict) else {}
    ids = prov.get("config_ids")
    ids = [str(i) for i in ids] if isinstance(ids, list) else []
    return RunEntry(
        id=rid,
        path=str(folder),
        kind="pipeline",
        started_ns=_int(timings.get("started_ns")),
        ended_ns=_int(timings.get("finished_ns")),
        config_id=ids[0] if ids else "",
        data_hash="",
        code_version=str(prov.get("git_sha") or ""),
        events=0,
        intents=0,
        trades=0,
        rejections=0,
        pnl_micros=0,
        realized_micros=0,
        unrealized_micros=0,
        fees_micros=0,
        win_rate=0.0,
        fill_rate=0.0,
        seconds=_float(timings.get("duration_s")),
        status=str(prov.get("status") or ""),
        config_ids=ids,
    )


def _entry(root: Path, folder: Path, summary: dict[str, Any]) -> RunEntry:
    prov = summary.get("provenance")
    prov = prov if isinstance(prov, dict) else {}
    rid = run_id(folder, root)
    return RunEntry(
        id=rid,
        path=str(folder),
        kind=run_kind(rid, summary),
        started_ns=_int(prov.get("started_ns")),
        ended_ns=_int(prov.get("ended_ns")),
        config_id=str(summary.get("config_id") or prov.get("config_id") or ""),
        data_hash=str(prov.get("data_hash") or ""),
        code_version=str(prov.get("code_version") or ""),
        events=_int(summary.get("events")),
        intents=_int(summary.get("intents")),
        trades=_int(summary.get("trades")),
        rejections=_int(summary.get("rejections")),
        pnl_micros=_int(summary.get("pnl")),
        realized_micros=_int(summary.get("realized")),
        unrealized_micros=_int(summary.get("unrealized")),
        fees_micros=_int(summary.get("fees")),
        win_rate=_float(summary.get("win_rate")),
        fill_rate=_float(summary.get("fill_rate")),
        seconds=_float(summary.get("seconds")),
        status=str(summary.get("stopped_by") or ""),
    )


def _folders(root: Path) -> list[Path]:
    out: list[Path] = []
    stack = [(root, 0)]
    while stack:
        d, depth = stack.pop()
        if _is_run(d):
            out.append(d)
            continue  # a run folder holds tables, not runs
        if depth >= _MAX_DEPTH:
            continue
        try:
            subs = [p for p in d.iterdir() if p.is_dir() and not p.is_symlink()]
        except OSError:
            continue
        stack.extend((p, depth + 1) for p in subs)
    return out


def find_runs(root: str | Path = "runs") -> list[RunEntry]:
    """Every run folder under ``root`` (up to 4 levels down), newest first (by start time,
    then id). Folders whose summary cannot be read are skipped; a missing root lists none,
    a root that is a file is an ``InputError``."""
    r = Path(root)
    if r.exists() and not r.is_dir():
        raise InputError(f"runs root {str(r)!r} is not a directory")
    entries: list[RunEntry] = []
    for folder in _folders(r) if r.is_dir() else []:
        try:
            what, record = read_record(folder)
        except InputError:
            continue
        if what == "summary":
            entries.append(_entry(r, folder, record))
        else:
            entries.append(_pipeline_entry(run_id(folder, r), folder, record))
    entries.sort(key=lambda e: (e.started_ns, e.id), reverse=True)
    return entries


def resolve_run(ref: str | Path, root: str | Path = "runs") -> Path:
    """The run folder ``ref`` names: a path to one, an id under ``root``, or a unique prefix
    of an id there (as listed by ``find_runs``); ``InputError`` naming ``ref`` otherwise."""
    p = Path(ref)
    if _is_run(p):
        return p
    r = Path(root)
    if _is_run(r / p):
        return r / p
    text = str(ref)
    hits = [e for e in find_runs(r) if e.id.startswith(text)]
    if len(hits) == 1:
        return Path(hits[0].path)
    if len(hits) > 1:
        shown = ", ".join(e.id for e in hits[:5])
        raise InputError(f"run {text!r} is ambiguous under {str(r)!r}: {shown}")
    raise InputError(
        f"no run folder {text!r} (no summary.json or provenance.json there, nor under {r}/)"
    )


def with_units(row: dict[str, Any], micros: list[str]) -> dict[str, Any]:
    """``row`` with the ``micros`` columns renamed ``<name>_micros`` (order kept)."""
    keep = set(micros)
    return {(micros_name(k) if k in keep else k): v for k, v in row.items()}


def summary_with_units(summary: dict[str, Any]) -> dict[str, Any]:
    """A run summary with its cash-micros keys renamed ``*_micros`` (``by_strategy`` too)."""
    out = with_units(summary, [k for k in SUMMARY_MICROS if k in summary])
    by = summary.get("by_strategy")
    if isinstance(by, dict):
        out["by_strategy"] = {
            name: with_units(st, [k for k in SUMMARY_MICROS if k in st])
            if isinstance(st, dict)
            else st
            for name, st in by.items()
        }
    return out


def table_info(path: Path, top: int = 5) -> TableInfo:
    """Row count, unit-named columns and dtypes, and the first ``top`` rows of one Parquet
    table; ``InputError`` naming the file when it cannot be read."""
    try:
        lf = pl.scan_parquet(path)
        schema = dict(lf.collect_schema())
        rows = int(lf.select(pl.len()).collect().item())
        head = lf.head(max(top, 0)).collect().to_dicts()
    except (OSError, pl.exceptions.PolarsError) as exc:
        raise InputError(f"{str(path)!r}: not a readable Parquet table ({exc})") from None
    micros = micros_columns(schema)
    return TableInfo(
        rows=rows,
        columns={(micros_name(k) if k in micros else k): str(dt) for k, dt in schema.items()},
        top=[with_units(r, micros) for r in head],
    )

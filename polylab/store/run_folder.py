"""A run folder: the Parquet tables and the JSON summary a backtest or paper run leaves behind.

``RunRecorder`` is a ``ResultSink``: it keeps every row the engine emits, by kind, in memory
(appending to a list never blocks the event path), and ``write`` turns them into
``<kind>.parquet`` tables plus ``summary.json`` with provenance (config id, code version, data
hash). Money columns stay integer micros; ``*_usd`` companions in the summary are exact decimal
strings. Every table's schema comes from its row struct (``run_tables``), so a kind with no
rows is still written with its columns and dtypes.
"""

from __future__ import annotations

import hashlib
import subprocess
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import msgspec
import polars as pl

import polylab
from polylab.store.run_tables import ROW_TYPES, table_schema

__all__ = ["Provenance", "RunRecorder", "code_version", "file_sha256", "git_head"]

TABLES = tuple(ROW_TYPES)
"""The tables every run folder has (empty ones keep their schema)."""


class Provenance(msgspec.Struct, frozen=True, kw_only=True):
    """Where a run's numbers come from: the exact config, code and data."""

    config_id: str
    code_version: str
    data_hash: str
    data_path: str
    started_ns: int
    ended_ns: int


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file's bytes (hex), read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def git_head(*, short: bool = False) -> tuple[str, bool] | None:
    """The git commit of polylab's source tree (12 hex digits when ``short``) and whether
    tracked files have local changes; ``None`` outside a git checkout (an installed package)."""
    here = Path(polylab.__file__).parent

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], capture_output=True, text=True, timeout=5, check=True, cwd=here
        ).stdout.strip()

    try:
        sha = git("rev-parse", *(["--short=12"] if short else []), "HEAD")
        dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.SubprocessError):
        return None
    return sha, dirty


def code_version() -> str:
    """``polylab <version>`` plus the git commit of the source tree when there is one."""
    v = f"polylab {polylab.__version__}"
    head = git_head(short=True)
    if head is None:
        return v
    sha, dirty = head
    return f"{v} ({sha}{'-dirty' if dirty else ''})"


class RunRecorder:
    """Collects engine rows by kind; writes them as a run folder."""

    def __init__(self) -> None:
        self.rows: dict[str, list[msgspec.Struct]] = defaultdict(list)
        self.started_ns = time.time_ns()

    def record(self, kind: str, row: msgspec.Struct) -> None:
        """Keep one row (the ``ResultSink`` protocol)."""
        self.rows[kind].append(row)

    def frame(self, kind: str) -> pl.DataFrame:
        """One kind's rows as a polars frame (nested fields flattened to JSON text), with the
        schema of the kind's row struct, rows or not."""
        rows = self.rows.get(kind, [])
        schema = table_schema(kind, rows)
        recs = [_flat(msgspec.structs.asdict(r)) for r in rows]
        if schema is None:  # rows that are not structs: as the rows say
            return pl.DataFrame(recs, infer_schema_length=None)
        return pl.DataFrame(recs, schema=schema, orient="row")

    def write(self, folder: str | Path, summary: dict[str, Any]) -> Path:
        """Write ``<kind>.parquet`` for every table and ``summary.json``; returns the folder."""
        out = Path(folder)
        out.mkdir(parents=True, exist_ok=True)
        for kind in sorted(set(TABLES) | set(self.rows)):
            self.frame(kind).write_parquet(out / f"{kind}.parquet")
        (out / "summary.json").write_bytes(msgspec.json.format(msgspec.json.encode(summary)))
        return out


def _flat(d: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, msgspec.Struct | list | tuple | dict):
            out[k] = msgspec.json.encode(v).decode()
        else:
            out[k] = v
    return out

"""``provenance.json``: what one pipeline run was, next to its executed notebook.

Written by the pipeline runner (``pipeline.run``) at the end of every run, ok or failed, into
the run folder ``runs/pipelines/<UTC time>-<name>/``. It answers "where does this config come
from": the code (``git_sha``, ``versions``), the data (``data_hashes``: path → SHA-256 hex, as
the notebook reported them in ``outputs.json``), the inputs (``parameters``, the runner's own
``out_dir`` and ``database_url`` included, a password never), the results (``config_ids``,
``metrics``, ``artifacts``), the time it took (``timings``: the run's wall time and each
cell's duration, read from the executed notebook's papermill metadata) and how it was executed
(``cell_timeout_s``, the limit per cell, and ``attempts``: one, or two when the first timed out
and the run was retried on a fresh kernel, ``retried``; ``pipeline.execute``).

Times: ``*_ns`` integer ns since the epoch (UTC), ``*_s`` seconds as floats (durations are
measurements, not money).
"""

from __future__ import annotations

import platform
from pathlib import Path
from typing import Any, Literal

import msgspec

import polylab

__all__ = [
    "PROVENANCE_FILE",
    "Attempt",
    "CellTiming",
    "Provenance",
    "RunFailure",
    "Timings",
    "Versions",
    "cell_timings",
    "first_statement",
    "read_provenance",
    "versions",
    "write_provenance",
]

PROVENANCE_FILE = "provenance.json"
_ERROR_TAG = "papermill-error-cell-tag"


class CellTiming(msgspec.Struct, frozen=True, kw_only=True):
    """One code cell of the executed notebook: its index among all cells (papermill's own
    injected-parameters cell counted, its error markers not), papermill's
    ``status`` (completed, failed, pending) and ``duration_s`` (None when it never ran), and
    the first line of its first statement that is not an import, to tell cells apart."""

    index: int
    status: str
    duration_s: float | None
    source: str


class Timings(msgspec.Struct, frozen=True, kw_only=True):
    """The run's start and end (ns since the epoch, UTC), its wall time and its cells."""

    started_ns: int
    finished_ns: int
    duration_s: float
    cells: list[CellTiming] = []


class Attempt(msgspec.Struct, frozen=True, kw_only=True):
    """One try at executing the notebook (``pipeline.execute``): its ``number`` (1, or 2 for
    the retry), ``outcome`` (``ok``; ``timeout``: a cell went over its limit, the one outcome
    that is retried; ``error``: anything else), when it started (ns since the epoch, UTC), its
    wall time in seconds and, when it did not end ok, the exception in one line."""

    number: int
    outcome: Literal["ok", "timeout", "error"]
    started_ns: int
    duration_s: float
    error: str = ""


class Versions(msgspec.Struct, frozen=True, kw_only=True):
    """What ran the notebook."""

    polylab: str
    python: str
    papermill: str


class RunFailure(msgspec.Struct, frozen=True, kw_only=True):
    """Why a run failed: the failing cell (index among all cells, None when no cell was to
    blame: a bad parameter, a kernel that died), the exception's name and value, and the one
    line the command prints."""

    cell: int | None
    ename: str
    evalue: str
    line: str


class Provenance(msgspec.Struct, frozen=True, kw_only=True):
    """The content of ``provenance.json`` (see the module docstring). ``notebook``: the
    source notebook (as found); ``executed``: the executed copy's file name in the folder;
    ``cell_timeout_s``: the limit per cell in seconds (None: none); ``attempts``: each try
    (none when the run failed before papermill started); ``retried``: a second try ran."""

    pipeline: str
    run_id: str
    status: str
    folder: str
    notebook: str
    executed: str
    git_sha: str
    parameters: dict[str, Any]
    config_ids: list[str]
    data_hashes: dict[str, str]
    metrics: dict[str, Any]
    artifacts: dict[str, str]
    timings: Timings
    versions: Versions
    error: RunFailure | None = None
    cell_timeout_s: float | None = None
    attempts: list[Attempt] = []
    retried: bool = False


def versions() -> Versions:
    """polylab's, Python's and papermill's versions, as this process has them."""
    import papermill

    return Versions(
        polylab=polylab.__version__,
        python=platform.python_version(),
        papermill=str(papermill.__version__),
    )


def cell_timings(executed: Path) -> list[CellTiming]:
    """Each code cell's status and duration from an executed notebook's papermill metadata
    (an unreadable or missing notebook has none)."""
    try:
        nb = msgspec.json.decode(executed.read_bytes())
    except (OSError, msgspec.DecodeError):
        return []
    out: list[CellTiming] = []
    # papermill marks a failure with markdown cells of its own; indexes skip them, as the
    # cell index of papermill's error does
    cells = [
        c for c in nb.get("cells", []) if _ERROR_TAG not in c.get("metadata", {}).get("tags", [])
    ]
    for i, cell in enumerate(cells):
        if cell.get("cell_type") != "code":
            continue
        meta = cell.get("metadata", {}).get("papermill", {})
        src = cell.get("source", "")
        text = "".join(src) if isinstance(src, list) else str(src)
        dur = meta.get("duration")
        out.append(
            CellTiming(
                index=i,
                status=str(meta.get("status", "pending")),
                duration_s=float(dur) if isinstance(dur, int | float) else None,
                source=first_statement(text),
            )
        )
    return out


def first_statement(source: str) -> str:
    """The first line of a cell's first statement that is not an import (to name the cell)."""
    import ast

    lines = source.splitlines()
    try:
        body = ast.parse(source).body
    except SyntaxError:
        body = []
    for node in body:
        if not isinstance(node, ast.Import | ast.ImportFrom):
            return lines[node.lineno - 1].strip()[:80]
    return next((ln.strip()[:80] for ln in lines if ln.strip()), "")


def write_provenance(folder: Path, prov: Provenance) -> Path:
    """Write ``folder/provenance.json`` (indented); returns its path."""
    path = folder / PROVENANCE_FILE
    path.write_bytes(msgspec.json.format(msgspec.json.encode(prov)))
    return path


def read_provenance(folder: str | Path) -> Provenance:
    """Read a run folder's ``provenance.json``."""
    return msgspec.json.decode((Path(folder) / PROVENANCE_FILE).read_bytes(), type=Provenance)

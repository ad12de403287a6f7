"""The validate pipeline's steps (``pipelines/20-validate.ipynb`` calls them in order).

1. ``prepare_windows``: the walk-forward windows: the recordings as given, or the time slices of
   one recording (``folds + 1`` slices), or, with no recording at all, of a seeded synthetic
   session (a demo that needs no data).
2. ``search_for``: the pipeline's ``grid`` parameter (field → ``"lo:hi:step"`` in the spec's
   units) as grid points, or as an Optuna space.
3. ``walkforward.walk_forward`` (folds, candidate tuned on every window, held-out evaluation),
   then optionally ``paper_check.paper_check`` of the candidate.
4. ``write_validation``: ``validation.json``; the notebook then stores the candidate with
   ``pipeline.promote.register_candidate`` (status ``candidate``, the validation metrics in
   ``pipeline.outputs`` conventions, data hashes, git sha; gate results kept only while the
   metrics they judged are unchanged).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import msgspec

from polylab.book.synthetic import SyntheticConfig, write_synthetic
from polylab.pipeline.outputs import data_hashes
from polylab.research.paper_check import PaperCheck
from polylab.research.sweep_space import grid_points, parse_grid
from polylab.research.walkforward import WalkForwardError, WalkForwardReport, slice_recording

__all__ = [
    "VALIDATION_FILE",
    "prepare_windows",
    "search_for",
    "validation_metrics",
    "write_validation",
]

VALIDATION_FILE = "validation.json"


def prepare_windows(
    recordings: Sequence[str | Path],
    folds: int,
    work_dir: str | Path,
    *,
    synthetic_s: float = 20.0,
    seed: int = 7,
) -> list[Path]:
    """The windows walk-forward runs over (module doc); slices and the synthetic session are
    written under ``work_dir``. ``synthetic_s``: seconds of synthetic feed."""
    recs = [Path(r) for r in recordings]
    for r in recs:
        if not r.is_file():
            raise WalkForwardError(f"recordings: no such file {str(r)!r}")
    work = Path(work_dir)
    if not recs:
        if not synthetic_s > 0:
            raise WalkForwardError(f"synthetic_s must be > 0 (got {synthetic_s!r})")
        syn = work / f"synthetic-{seed}.jsonl.zst"
        write_synthetic(syn, SyntheticConfig(seed=seed, duration_s=synthetic_s, rate_hz=150.0))
        recs = [syn]
    if len(recs) == 1:
        return slice_recording(recs[0], folds + 1, work / "windows")
    return recs


def search_for(
    strategy: str, grid: Mapping[str, str], search: str = "grid"
) -> list[dict[str, int]] | dict[str, list[int]]:
    """``grid`` (field → ``"lo:hi:step"``, ``"v1,v2"`` or ``""`` for the declared range) as
    grid points (``search="grid"``) or an Optuna space (``"optuna"``)."""
    specs = [f"{k}={v}" if str(v).strip() else k for k, v in grid.items()]
    if search == "grid":
        return grid_points(strategy, specs)
    if search == "optuna":
        if not specs:
            raise WalkForwardError("search 'optuna' needs a grid (field → range)")
        return dict(parse_grid(strategy, s) for s in specs)
    raise WalkForwardError(f"search {search!r}: expected 'grid' or 'optuna'")


def validation_metrics(
    report: WalkForwardReport, paper: PaperCheck | None = None
) -> dict[str, Any]:
    """The candidate's validation metrics (``pipeline.outputs`` conventions)."""
    return report.metrics(paper.block() if paper is not None else None)


def write_validation(
    out_dir: str | Path,
    report: WalkForwardReport,
    paper: PaperCheck | None,
    params: Mapping[str, Any],
    extra_hashes: Sequence[str | Path] = (),
) -> tuple[Path, dict[str, str]]:
    """``validation.json`` in ``out_dir``: the parameters, the walk-forward report, the paper
    check and every data hash (the windows', the held-out files' and ``extra_hashes``: the
    recordings the windows were sliced from). Returns its path and the data hashes."""
    hashes = {**data_hashes(extra_hashes), **report.data_hashes}
    doc = {
        "params": dict(params),
        "candidate_id": report.candidate_id,
        "metrics": validation_metrics(report, paper),
        "report": msgspec.to_builtins(report),
        "paper": msgspec.to_builtins(paper) if paper is not None else None,
        "data_hashes": hashes,
    }
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / VALIDATION_FILE
    path.write_bytes(msgspec.json.format(msgspec.json.encode(doc)))
    return path, hashes

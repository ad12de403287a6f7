"""What a pipeline notebook hands back to the pipeline runner, and the provenance helpers.

Every pipeline notebook (``pipelines/NN-name.ipynb``) receives ``out_dir`` as a parameter and
ends by writing ``outputs.json`` there with ``write_outputs``. The runner
(``polylab pipeline run``) reads it into ``provenance.json`` and the ledger's
``pipeline_runs`` row; the next pipeline reads the previous one's outputs (through the
ledger's ``pipeline_runs``) to find its input, e.g. the candidate a validation produced.

Metric conventions (money in micros, as ``research.sweep.combine`` gives them): a block of
performance is a dict with at least ``trades``, ``pnl_micros``, ``fees_micros``,
``max_drawdown_micros``, ``fill_rate``, ``win_rate``. A validation's metrics are
``{"in_sample": block, "out_of_sample": block, "held_out": block, "paper": {...},
"folds": [...], "degradation": float | None}``; gates (``pipeline.gates``) address them by
dotted path, e.g. ``out_of_sample.pnl_micros``.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import msgspec

from polylab.store.run_folder import file_sha256, git_head

__all__ = [
    "OUTPUTS_FILE",
    "PipelineOutputs",
    "data_hashes",
    "git_sha",
    "read_outputs",
    "write_outputs",
]

OUTPUTS_FILE = "outputs.json"


class PipelineOutputs(msgspec.Struct, kw_only=True):
    """A pipeline notebook's results: headline ``metrics`` (JSON values), the ``config_ids`` it
    made or promoted, the SHA-256 of every data file it read (``data_hashes``: path → hex)
    and its ``artifacts`` (name → file name inside ``out_dir``)."""

    metrics: dict[str, Any] = {}
    config_ids: list[str] = []
    data_hashes: dict[str, str] = {}
    artifacts: dict[str, str] = {}


def write_outputs(out_dir: str | Path, outputs: PipelineOutputs) -> Path:
    """Write ``outputs.json`` into ``out_dir`` (created if needed); returns its path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / OUTPUTS_FILE
    path.write_bytes(msgspec.json.format(msgspec.json.encode(outputs)))
    return path


def read_outputs(out_dir: str | Path) -> PipelineOutputs:
    """Read ``out_dir/outputs.json``; a missing file reads as empty outputs."""
    path = Path(out_dir) / OUTPUTS_FILE
    if not path.exists():
        return PipelineOutputs()
    return msgspec.json.decode(path.read_bytes(), type=PipelineOutputs)


def data_hashes(paths: Iterable[str | Path]) -> dict[str, str]:
    """SHA-256 (hex) of each file's bytes, keyed by the path as given."""
    return {str(p): file_sha256(p) for p in paths}


def git_sha() -> str:
    """The full git commit of polylab's source tree (``-dirty`` with local changes), or
    ``unknown`` when it is not a git checkout (an installed package)."""
    head = git_head()
    if head is None:
        return "unknown"
    sha, dirty = head
    return f"{sha}-dirty" if dirty else sha

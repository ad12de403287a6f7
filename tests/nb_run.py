"""Run a notebook under papermill with a time limit per cell, once more if the kernel stalls.

The product's own runner does it (``polylab.pipeline.execute.execute_with_retry``: a lost
execute reply becomes a timeout, and one fresh kernel retries it; a real error in a cell is
never retried); the tests use it with a shorter limit than a pipeline run's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from polylab.pipeline.execute import execute_with_retry

CELL_TIMEOUT_S = 150


def run_notebook(src: Path, out: Path, parameters: dict[str, Any], cwd: Path) -> None:
    """``papermill.execute_notebook`` with a per-cell limit and one retry on a stalled kernel."""
    execute_with_retry(src, out, parameters=parameters, cwd=cwd, cell_timeout_s=CELL_TIMEOUT_S)

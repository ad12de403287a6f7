"""Run a notebook under papermill with a time limit per cell, once more if the kernel stalls.

A Jupyter kernel talks to papermill over ZeroMQ; on a loaded machine an execute reply has been
seen never to arrive (the kernel idle, papermill waiting forever). A per-cell limit turns that
into a timeout, and one fresh kernel retries it; a real error in a cell is never retried.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import papermill as pm

CELL_TIMEOUT_S = 150


def run_notebook(src: Path, out: Path, parameters: dict[str, Any], cwd: Path) -> None:
    """``papermill.execute_notebook`` with a per-cell limit and one retry on a stalled kernel."""
    for attempt in (1, 2):
        try:
            pm.execute_notebook(
                src,
                out,
                kernel_name="python3",
                parameters=parameters,
                cwd=str(cwd),
                progress_bar=False,
                execution_timeout=CELL_TIMEOUT_S,
            )
            return
        except Exception as exc:  # nbclient's CellTimeoutError / TimeoutError
            if attempt == 2 or "timeout" not in type(exc).__name__.lower():
                raise

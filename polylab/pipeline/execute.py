"""Execute a notebook under papermill with a time limit per cell, and once more if it stalls.

A Jupyter kernel talks to papermill over ZeroMQ; on a loaded machine an execute reply has been
seen never to arrive (the kernel idle, papermill waiting forever: a known nbclient issue). A
per-cell limit turns that wait into a timeout (nbclient's ``CellTimeoutError``, a
``TimeoutError``), and ``execute_with_retry`` then runs the whole notebook once more on a fresh
kernel. Only a timeout is retried: a cell that raises fails at once, since running it again
would raise again (and a pipeline step is not meant to run twice for nothing).

Each try is an ``Attempt`` (``provenance.json`` keeps them, so a run that needed its retry
says so). The limit is seconds per cell (``DEFAULT_CELL_TIMEOUT_S``, 900 s: a stall is noticed
within a quarter of an hour; a pipeline whose cells really take longer, a large sweep, is given
its own limit: ``--cell-timeout`` or its schedule entry's ``cell_timeout``); 0 or None means no
limit, and then nothing is retried because nothing can time out.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from polylab.errors import InputError
from polylab.pipeline.provenance import Attempt

__all__ = [
    "DEFAULT_CELL_TIMEOUT_S",
    "MAX_ATTEMPTS",
    "cell_limit",
    "execute_with_retry",
    "is_timeout",
]

DEFAULT_CELL_TIMEOUT_S = 900.0
"""Seconds one cell of a pipeline may take before its run is retried (then failed)."""

MAX_ATTEMPTS = 2
"""The first try and one retry on a fresh kernel."""

_MAX_ERROR = 160


def cell_limit(seconds: float | int | None, what: str = "--cell-timeout") -> float | None:
    """A per-cell limit in seconds as papermill takes it: None for no limit (given as None or
    0), else the positive number of seconds. ``InputError`` (one line naming ``what`` and the
    value) for a negative, NaN, infinite or non-numeric value, or a boolean."""
    if seconds is None:
        return None
    if isinstance(seconds, bool) or not isinstance(seconds, int | float):
        raise InputError(f"{what} {seconds!r}: expected seconds per cell (0: no limit)")
    if math.isnan(seconds) or math.isinf(seconds) or seconds < 0:
        raise InputError(
            f"{what} {seconds!r}: expected a finite number of seconds ≥ 0 (0: no limit)"
        )
    return float(seconds) if seconds > 0 else None


def is_timeout(exc: BaseException) -> bool:
    """Whether a papermill failure is a time limit (nbclient's ``CellTimeoutError`` or a bare
    ``TimeoutError``), the one kind ``execute_with_retry`` retries."""
    return isinstance(exc, TimeoutError)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    if len(text) > _MAX_ERROR:  # nbclient's timeout quotes the whole cell
        text = text[: _MAX_ERROR - 1] + "…"
    return f"{type(exc).__name__}: {text}"


def execute_with_retry(
    src: str | Path,
    out: str | Path,
    *,
    parameters: dict[str, Any],
    cwd: str | Path,
    cell_timeout_s: float | None,
    kernel_name: str = "python3",
    attempts: list[Attempt] | None = None,
    before_retry: Callable[[], None] | None = None,
    **papermill_kw: Any,
) -> list[Attempt]:
    """``papermill.execute_notebook(src → out)`` with ``cell_timeout_s`` seconds per cell
    (None: no limit) and, when a try times out, one more try on a fresh kernel (see the module
    docstring). Returns the attempts; each is also appended to ``attempts`` as it ends, so a
    caller keeps them when the last one raises (its exception is re-raised as papermill gave
    it). ``before_retry`` runs between a timed-out try and the retry (e.g. to drop what the
    first try wrote). Other keywords go to papermill."""
    import papermill as pm

    done: list[Attempt] = [] if attempts is None else attempts
    start = len(done)
    for number in range(1, MAX_ATTEMPTS + 1):
        started = time.time_ns()
        t0 = time.perf_counter()
        try:
            pm.execute_notebook(
                str(src),
                str(out),
                parameters=parameters,
                kernel_name=kernel_name,
                cwd=str(cwd),
                progress_bar=False,
                execution_timeout=cell_timeout_s,
                **papermill_kw,
            )
        except Exception as exc:  # a cell error, a time limit, a dead kernel
            retry = is_timeout(exc) and number < MAX_ATTEMPTS
            done.append(
                Attempt(
                    number=number,
                    outcome="timeout" if is_timeout(exc) else "error",
                    started_ns=started,
                    duration_s=round(time.perf_counter() - t0, 3),
                    error=_one_line(exc),
                )
            )
            if not retry:
                raise
            if before_retry is not None:
                before_retry()
            continue
        done.append(
            Attempt(
                number=number,
                outcome="ok",
                started_ns=started,
                duration_s=round(time.perf_counter() - t0, 3),
            )
        )
        break
    return done[start:]

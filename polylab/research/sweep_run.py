"""Sweeps on Dask: grids and Optuna searches, split by config chunks and by recording.

Each task replays one recording for one chunk of configs (``sweep.replay_many``: one decode
and one book build for the whole chunk) and returns one ``RunStats`` per config; the driver
adds each config's recordings up in recording order (``sweep.combine``), so the result does
not depend on which worker ran what or when: one row per config, in config order,
deterministic for a seed. A ``LocalCluster`` (worker processes) runs by default; a running
cluster is reached by its scheduler's address. Recordings are read by the workers, so they
must be at the same path on every worker (paths are made absolute).

Optuna's TPE sampler (seeded) asks ``batch`` trials at a time; a batch runs as one grid (so a
batch shares its replays too) and is told back in trial order, so a seeded search gives the
same trials whatever the cluster.

Rows: ``config_index`` (grid position or trial number), ``config_id`` (SHA-256 of the whole
config), the swept fields in their own units (micros, ms), then ``sweep.combine``'s columns
(money in micros).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import msgspec
import polars as pl

from polylab.config import PolylabConfig, config_id
from polylab.research.sweep import STARTING_CASH_MICROS, RunStats, combine, replay_many
from polylab.research.sweep_space import SweepError, make_config

__all__ = [
    "OBJECTIVES",
    "Progress",
    "grid_sweep",
    "open_client",
    "optuna_sweep",
    "run_chunk",
    "run_configs",
    "run_stats",
]

OBJECTIVES = ("pnl_micros", "pnl_at_payout_micros", "realized_micros")
"""Columns an Optuna search may maximize."""

Progress = Callable[[int, int, int], None]
"""``(configs done, configs in all, workers)``, called as chunks finish."""

_CFG = msgspec.json.Decoder(PolylabConfig)
_STATS = msgspec.msgpack.Decoder(list[RunStats])


def run_chunk(
    recording: str,
    configs: list[bytes],
    meta: str | None,
    starting_cash_micros: int,
) -> bytes:
    """One task: ``configs`` (JSON) over ``recording`` on one shared replay → msgpack
    ``list[RunStats]`` (plain bytes travel between processes without surprises)."""
    cfgs = [_CFG.decode(c) for c in configs]
    stats = replay_many(recording, cfgs, meta=meta, starting_cash_micros=starting_cash_micros)
    return msgspec.msgpack.encode(stats)


@contextmanager
def open_client(
    scheduler: str | None = None, n_workers: int = 2, *, timeout_s: float = 10.0
) -> Iterator[Any]:
    """A ``distributed.Client``: on the cluster at ``scheduler`` (``tcp://HOST:PORT``), or on a
    fresh ``LocalCluster`` of ``n_workers`` single-threaded worker processes (closed after)."""
    import logging

    dist = _distributed()
    Client, LocalCluster = dist.Client, dist.LocalCluster
    if scheduler:
        try:
            client = Client(scheduler, timeout=f"{timeout_s}s")
        except (OSError, TimeoutError) as exc:
            raise SweepError(f"cannot reach the Dask scheduler {scheduler!r}: {exc}") from None
        try:
            yield client
        finally:
            client.close()
        return
    if n_workers < 1:
        raise SweepError(f"--workers must be ≥ 1 (got {n_workers})")
    cluster = LocalCluster(
        n_workers=n_workers,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
        # no dashboard; its HTTP server (health, metrics) still listens: any free port
        scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
        silence_logs=logging.ERROR,
    )
    client = Client(cluster)
    try:
        yield client
    finally:
        client.close()
        cluster.close()


def _distributed() -> Any:
    """``distributed``, imported when a sweep runs (typed loosely: its API is untyped)."""
    import distributed

    return distributed


def _workers(client: Any) -> int:
    info = client.scheduler_info(n_workers=-1)
    return int(info.get("n_workers", len(info.get("workers", {}))))


def run_configs(
    client: Any,
    recordings: Sequence[str | Path],
    configs: Sequence[PolylabConfig],
    **kw: Any,
) -> list[dict[str, Any]]:
    """``combine``d results of every config over every recording, in config order
    (``run_stats``' keywords)."""
    return [combine(row) for row in run_stats(client, recordings, configs, **kw)]


def run_stats(
    client: Any,
    recordings: Sequence[str | Path],
    configs: Sequence[PolylabConfig],
    *,
    chunk_size: int | None = None,
    meta: str | Path | None = None,
    starting_cash_micros: int = STARTING_CASH_MICROS,
    progress: Progress | None = None,
) -> list[list[RunStats]]:
    """Every config's ``RunStats`` per recording (config order, then recording order), for
    callers that add recordings up their own way (walk-forward folds).

    ``chunk_size``: configs per task (default: enough chunks for two tasks per worker)."""
    as_completed = _distributed().as_completed
    recs = [str(Path(r).resolve()) for r in recordings]
    if not recs:
        raise SweepError("no recordings")
    n = len(configs)
    if n == 0:
        return []
    workers = max(1, _workers(client))
    size = chunk_size or max(1, math.ceil(n / (2 * workers)))
    if size < 1:
        raise SweepError(f"--chunk-size must be ≥ 1 (got {size})")
    enc = [msgspec.json.encode(c) for c in configs]
    chunks = [list(range(i, min(i + size, n))) for i in range(0, n, size)]
    meta_s = str(Path(meta).resolve()) if meta is not None else None
    futures: dict[Any, tuple[int, int]] = {}
    for ci, idx in enumerate(chunks):
        payload = [enc[i] for i in idx]
        for ri, rec in enumerate(recs):
            fut = client.submit(run_chunk, rec, payload, meta_s, starting_cash_micros, pure=False)
            futures[fut] = (ci, ri)
    parts: list[list[RunStats | None]] = [[None] * len(recs) for _ in range(n)]
    left = [len(recs)] * len(chunks)
    done = 0
    if progress is not None:
        progress(0, n, workers)
    for fut in as_completed(list(futures)):
        ci, ri = futures[fut]
        try:
            stats = _STATS.decode(fut.result())
        except Exception as exc:  # a worker's error (an unreadable recording, say): stop
            client.cancel(list(futures))
            raise SweepError(
                f"sweep task failed on {recs[ri]} (workers read the recordings at this path): "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        for i, st in zip(chunks[ci], stats, strict=True):
            parts[i][ri] = st
        left[ci] -= 1
        if left[ci] == 0:
            done += len(chunks[ci])
        if progress is not None:
            progress(done, n, _workers(client))
    return [[p for p in row if p is not None] for row in parts]


def _rows(
    configs: Sequence[PolylabConfig],
    params: Sequence[Mapping[str, int]],
    results: Sequence[dict[str, Any]],
    strategy: str,
    start: int = 0,
) -> list[dict[str, Any]]:
    return [
        {
            "config_index": start + i,
            "config_id": config_id(c),
            "strategy": strategy,
            **p,
            **r,
        }
        for i, (c, p, r) in enumerate(zip(configs, params, results, strict=True))
    ]


def grid_sweep(
    client: Any,
    recordings: Sequence[str | Path],
    base: PolylabConfig,
    strategy: str,
    points: Sequence[Mapping[str, int]],
    **kw: Any,
) -> pl.DataFrame:
    """One row per grid point (``sweep_space.grid_points``), in grid order."""
    configs = [make_config(base, strategy, p) for p in points]
    results = run_configs(client, recordings, configs, **kw)
    return pl.DataFrame(_rows(configs, points, results, strategy))


def optuna_sweep(
    client: Any,
    recordings: Sequence[str | Path],
    base: PolylabConfig,
    strategy: str,
    space: Mapping[str, Sequence[int]],
    *,
    trials: int,
    seed: int = 0,
    batch: int = 16,
    objective: str = "pnl_micros",
    **kw: Any,
) -> pl.DataFrame:
    """A seeded TPE search over ``space`` (field → allowed values, in field units) maximizing
    ``objective``; one row per trial, in trial order."""
    import optuna

    if objective not in OBJECTIVES:
        raise SweepError(f"--objective {objective!r}: expected one of {list(OBJECTIVES)}")
    if trials < 1 or batch < 1:
        raise SweepError(f"--trials and --batch must be ≥ 1 (got {trials}, {batch})")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed))
    rows: list[dict[str, Any]] = []
    user_progress = kw.pop("progress", None)
    while len(rows) < trials:
        k = min(batch, trials - len(rows))
        asked = [study.ask() for _ in range(k)]
        points = [{f: _suggest(t, f, vals) for f, vals in space.items()} for t in asked]
        configs = [make_config(base, strategy, p) for p in points]
        offset = len(rows)

        def prog(d: int, _n: int, w: int, offset: int = offset) -> None:
            if user_progress is not None:
                user_progress(offset + d, trials, w)

        results = run_configs(client, recordings, configs, progress=prog, **kw)
        for t, r in zip(asked, results, strict=True):
            study.tell(t, float(r[objective]))
        rows.extend(_rows(configs, points, results, strategy, start=offset))
    return pl.DataFrame(rows)


def _suggest(trial: Any, field: str, vals: Sequence[int]) -> int:
    """An evenly spaced value list is an integer range with a step, anything else a choice."""
    if len(vals) == 1:
        return int(vals[0])
    step = vals[1] - vals[0]
    if step > 0 and all(b - a == step for a, b in itertools.pairwise(vals)):
        return int(trial.suggest_int(field, vals[0], vals[-1], step=step))
    return int(trial.suggest_categorical(field, list(vals)))

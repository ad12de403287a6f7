"""The sweep pipeline's work (``pipelines/10-sweep.ipynb`` only calls this and shows it).

``sweep_recordings`` runs the research sweep API (``research.sweep_run``: a grid or a seeded
Optuna search on Dask) over the pipeline's recordings **minus the held-out ones**, which the
sweep never replays (``SweepOutcome.recordings`` lists what it read, ``held_out`` what it left
alone; only their SHA-256 is taken, to refuse a copy of one among the inputs, as the validate
pipeline does). ``grid`` is the params file's mapping ``field → range`` written in the spec's units
(``"0.001:0.01:0.001"``, a list of values, one value, or empty for the field's declared range).

``sweep_outputs`` turns the outcome into the pipeline's ``outputs.json``: the best configs' ids
(``best_rows``: by ``pnl_at_payout_micros``, the PnL the validate step and the shipped gates
judge; ties by the marked ``pnl_micros``, then grid order), the SHA-256 of every recording
read, and headline metrics (money in micros, as ``research.sweep.combine`` gives them). A
complete neg-risk set cannot be merged but pays exactly $1 at resolution: marked to the
outcomes' bids (``pnl_micros``) it is a fire-sale value, so ranking by it would hand the
validate step the configs that hold the fewest sets, not the ones that earn the most. An
Optuna search maximizes the same column.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from polylab.pipeline.outputs import PipelineOutputs, data_hashes
from polylab.research.sweep_space import SweepError, tunables
from polylab.research.walkforward import check_held_out

if TYPE_CHECKING:
    import plotly.graph_objects as go

__all__ = [
    "BLOCK",
    "RANK_METRIC",
    "SWEEP_FILE",
    "SweepOutcome",
    "best_rows",
    "grid_specs",
    "save_sweep",
    "split_held_out",
    "sweep_heatmap",
    "sweep_outputs",
    "sweep_recordings",
    "swept_fields",
]

BLOCK = (
    "trades",
    "pnl_at_payout_micros",
    "pnl_micros",
    "fees_micros",
    "max_drawdown_micros",
    "fill_rate",
    "win_rate",
)
"""A performance block's keys (``pipeline.outputs`` conventions)."""

RANK_METRIC = "pnl_at_payout_micros"
"""What the sweep ranks its configs by (micros; see the module docstring)."""

SWEEP_FILE = "sweep.parquet"


@dataclass(frozen=True)
class SweepOutcome:
    """One sweep: its rows (one per config, ``research.sweep_run`` columns), the strategy,
    the recordings it read and the held-out ones it did not."""

    frame: pl.DataFrame
    strategy: str
    recordings: list[str]
    held_out: list[str]


def grid_specs(grid: Mapping[str, Any] | None) -> list[str]:
    """A params ``grid`` mapping → ``--grid`` specs: ``"lo:hi:step"`` and ``"v1,v2"`` as
    written, a list joined with commas, a number as one value, empty/None as the bare field."""
    specs: list[str] = []
    for field, rng in (grid or {}).items():
        if rng is None or rng == "":
            specs.append(str(field))
        elif isinstance(rng, list | tuple):
            specs.append(f"{field}={','.join(str(v) for v in rng)}")
        elif isinstance(rng, str | int | float) and not isinstance(rng, bool):
            specs.append(f"{field}={rng}")
        else:
            raise SweepError(f"grid.{field}: want 'low:high:step', a list or one value: {rng!r}")
    return specs


def split_held_out(
    recordings: Sequence[str | Path], held_out: Sequence[str | Path]
) -> tuple[list[str], list[str]]:
    """(recordings to sweep, held-out recordings): a recording named in ``held_out`` (paths
    compared resolved) is left out; one with the same content as a held-out file under
    another name is refused (``walkforward.check_held_out``: ``HeldOutError``, an input
    error). Every recording must exist, and at least one must be left to sweep."""
    if isinstance(recordings, str | Path) or isinstance(held_out, str | Path):
        raise SweepError("recordings and held_out must be lists of paths")
    if not recordings:
        raise SweepError("recordings: give at least one recording")
    for r in [*recordings, *held_out]:
        if not Path(r).is_file():
            raise SweepError(f"no such recording: {r}")
    held = {Path(h).resolve() for h in held_out}
    used = [str(r) for r in recordings if Path(r).resolve() not in held]
    kept = [str(h) for h in held_out]
    if not used:
        raise SweepError(f"every recording is held out ({kept}): nothing left to sweep")
    check_held_out(used, kept)  # a copy of a held-out file under another name: refused
    return used, kept


def sweep_recordings(
    recordings: Sequence[str | Path],
    *,
    held_out: Sequence[str | Path] = (),
    strategy: str = "sum_to_100",
    grid: Mapping[str, Any] | None = None,
    search: str = "grid",
    trials: int = 50,
    seed: int = 0,
    workers: int = 2,
    scheduler: str = "",
    config: str | Path | None = None,
    meta: str | Path | None = None,
) -> SweepOutcome:
    """Sweep ``strategy`` over the non-held-out recordings (see the module docstring).
    ``scheduler``: a running Dask scheduler (``tcp://HOST:PORT``), empty for a LocalCluster
    of ``workers`` processes. Bad input raises ``SweepError`` naming it."""
    from polylab.config import load_config
    from polylab.feed.recording import RecordingError, RecordingReader
    from polylab.research.sweep_run import grid_sweep, open_client, optuna_sweep
    from polylab.research.sweep_space import grid_points, parse_grid

    used, kept = split_held_out(recordings, held_out)
    for r in used:
        try:  # before any worker starts: a file that is no recording at all
            next(iter(RecordingReader(r)), None)
        except RecordingError as exc:
            raise SweepError(str(exc)) from None
    if search not in ("grid", "optuna"):
        raise SweepError(f"search {search!r}: expected grid or optuna")
    specs = grid_specs(grid)
    base = load_config(config, env={})
    tunables(strategy)  # an unknown strategy fails here, naming the sweepable ones
    with open_client(scheduler or None, workers) as client:
        if search == "grid":
            df = grid_sweep(client, used, base, strategy, grid_points(strategy, specs), meta=meta)
        else:
            space = dict(parse_grid(strategy, s) for s in specs) or {
                f: t.values() for f, t in tunables(strategy).items()
            }
            df = optuna_sweep(
                client, used, base, strategy, space, trials=trials, seed=seed, meta=meta,
                objective=RANK_METRIC,
            )  # fmt: skip
    return SweepOutcome(frame=df, strategy=strategy, recordings=used, held_out=kept)


def save_sweep(outcome: SweepOutcome, out_dir: str | Path) -> Path:
    """Write the sweep's rows to ``out_dir/sweep.parquet`` (folder made if needed)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / SWEEP_FILE
    outcome.frame.write_parquet(path)
    return path


def swept_fields(df: pl.DataFrame) -> list[str]:
    """The swept parameter columns of a sweep frame (between ``strategy`` and ``trades``)."""
    cols = df.columns
    return cols[cols.index("strategy") + 1 : cols.index("trades")]


def best_rows(df: pl.DataFrame, top: int = 3, metric: str = RANK_METRIC) -> pl.DataFrame:
    """The ``top`` rows by ``metric`` (highest first; ties by the marked ``pnl_micros``,
    highest first, then grid/trial order ``config_index``: the same frame always ranks the
    same way). Every column is kept; ``metric`` and both PnLs come first, then the swept
    fields, so a table shown truncated still shows what the rows were ranked by."""
    for col in (metric, "pnl_micros", "config_index"):
        if col not in df.columns:
            raise SweepError(f"metric {col!r} is not a sweep column")
    keys = [metric] + [c for c in ("pnl_micros",) if c != metric] + ["config_index"]
    ranked = df.sort(keys, descending=[True] * (len(keys) - 1) + [False]).head(max(0, top))
    first = [*dict.fromkeys([metric, RANK_METRIC, "pnl_micros", *swept_fields(df)])]
    return ranked.select(first + [c for c in ranked.columns if c not in first])


def sweep_outputs(outcome: SweepOutcome, *, top: int = 3) -> PipelineOutputs:
    """``outputs.json`` of the sweep pipeline: the ``top`` best config ids, the recordings'
    hashes, and metrics ``{configs, recordings, held_out, strategy, best: block,
    best_params: {field: value in field units}}``; ``sweep.parquet`` as an artifact."""
    df = outcome.frame
    best = best_rows(df, top)
    metrics: dict[str, Any] = {
        "strategy": outcome.strategy,
        "configs": df.height,
        "recordings": len(outcome.recordings),
        "held_out": len(outcome.held_out),
    }
    if best.height:
        row = best.row(0, named=True)
        metrics["best"] = {k: row[k] for k in BLOCK}
        metrics["best_params"] = {f: row[f] for f in swept_fields(df)}
    return PipelineOutputs(
        metrics=metrics,
        config_ids=[str(c) for c in best["config_id"].to_list()],
        data_hashes=data_hashes(outcome.recordings),
        artifacts={"sweep": SWEEP_FILE},
    )


def sweep_heatmap(df: pl.DataFrame, strategy: str, metric: str = RANK_METRIC) -> go.Figure:
    """``metric`` over the first two swept fields (the best value over any other field), axes
    in the spec's units; one swept field gives a one-row heatmap."""
    import plotly.graph_objects as go

    fields = swept_fields(df)
    if not fields:
        raise SweepError("the sweep frame has no swept field")
    tun = tunables(strategy)
    x = fields[0]
    y = fields[1] if len(fields) > 1 else None
    keys = [x] if y is None else [x, y]
    agg = df.group_by(keys).agg(pl.col(metric).max())
    xs = sorted(agg[x].unique().to_list())
    ys: list[Any] = sorted(agg[y].unique().to_list()) if y is not None else [None]
    look = {(r[x], r[y] if y is not None else None): r[metric] for r in agg.to_dicts()}
    z = [[look.get((a, b)) for a in xs] for b in ys]

    def show(field: str, v: int) -> str:
        return tun[field].show(v) if field in tun else str(v)

    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=[show(x, v) for v in xs],
            y=[show(y, v) for v in ys] if y is not None else [metric],
            colorscale="RdYlGn",
            colorbar={"title": metric},
        )
    )
    unit = {f: tun[f].unit for f in keys if f in tun}
    fig.update_layout(
        title=f"{strategy}: {metric} by {' × '.join(keys)}",
        xaxis_title=f"{x.removesuffix('_micros')} ({unit.get(x, '')})",
        yaxis_title=f"{y.removesuffix('_micros')} ({unit.get(y, '')})" if y else "",
        height=450,
    )
    return fig

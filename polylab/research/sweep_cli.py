"""``polylab sweep RECORDING... --strategy S [--grid F=LOW:HIGH:STEP]... | --search optuna``.

Grid values are written in the spec's units ($ per set for ``min_edge``, shares for
``min_liquidity``/``min_size``/``max_size``, ms for ``max_book_age``); a bare ``--grid F`` or
no ``--grid`` at all takes the strategy's declared ``tunable`` ranges. Results: a rich table of
the best configs and a Parquet file (one row per config). Exit 2 on bad input, naming it.
"""

from __future__ import annotations

import time
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from polylab.cli_support import PolylabGroup
from polylab.money import MICROS

__all__ = ["app"]


class _OneCommand(PolylabGroup):
    """A sub-app that is one command (usage without ``COMMAND [ARGS]``), failing like every
    polylab command (``cli_support.PolylabGroup``: one line, exit 2)."""

    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        pieces: list[str] = super().collect_usage_pieces(ctx)
        return [p for p in pieces if p != self.subcommand_metavar]


app = typer.Typer(
    help="Parameter sweeps sharing one replay per recording, on Dask.",
    cls=_OneCommand,
    context_settings={"allow_interspersed_args": True},
)
console = Console(stderr=True)


@app.callback(invoke_without_command=True)
def sweep_cmd(
    recordings: Annotated[list[Path], typer.Argument(help="recordings (.jsonl or .jsonl.zst)")],
    strategy: Annotated[str, typer.Option(help="sum_to_100 or clipper")] = "sum_to_100",
    grid: Annotated[
        list[str] | None,
        typer.Option(help="FIELD=LOW:HIGH:STEP, FIELD=V1,V2 or FIELD (its tunable range)"),
    ] = None,
    search: Annotated[str, typer.Option(help="grid or optuna (seeded TPE)")] = "grid",
    trials: Annotated[int, typer.Option(help="optuna: trials")] = 50,
    batch: Annotated[int, typer.Option(help="optuna: trials asked at a time")] = 16,
    objective: Annotated[str, typer.Option(help="optuna: column to maximize")] = "pnl_micros",
    seed: Annotated[int, typer.Option(help="optuna sampler seed")] = 0,
    config: Annotated[Path | None, typer.Option(help="base config file (TOML or JSON)")] = None,
    meta: Annotated[Path | None, typer.Option(help='market metadata {"markets": [...]}')] = None,
    scheduler: Annotated[
        str | None, typer.Option(help="a running Dask scheduler tcp://HOST:PORT")
    ] = None,
    workers: Annotated[int, typer.Option(help="LocalCluster worker processes")] = 2,
    chunk_size: Annotated[int | None, typer.Option(help="configs per task")] = None,
    out: Annotated[
        Path | None, typer.Option(help="Parquet file (default runs/sweep-….parquet)")
    ] = None,
    top: Annotated[int, typer.Option(help="rows shown")] = 10,
) -> None:
    """Sweep a strategy's parameters over recordings; one replay per recording and chunk.
    Bad input (``SweepError``, ``ConfigError``) is one ``polylab: error:`` line, exit 2
    (``polylab --debug sweep …`` shows the traceback)."""
    df = _run(
        recordings, strategy, grid or [], search, trials, batch, objective, seed, config,
        meta, scheduler, workers, chunk_size,
    )  # fmt: skip
    path = out or Path("runs") / f"sweep-{time.strftime('%Y%m%d-%H%M%S')}.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    df.write_parquet(path)
    console.print(_table(df, strategy, top, f"{strategy}: {df.height} configs → {path}"))


def _run(
    recordings: list[Path],
    strategy: str,
    grid: list[str],
    search: str,
    trials: int,
    batch: int,
    objective: str,
    seed: int,
    config: Path | None,
    meta: Path | None,
    scheduler: str | None,
    workers: int,
    chunk_size: int | None,
) -> Any:
    from polylab.config import load_config
    from polylab.feed.recording import RecordingError, RecordingReader
    from polylab.research.sweep_run import OBJECTIVES, grid_sweep, open_client, optuna_sweep
    from polylab.research.sweep_space import SweepError, grid_points, parse_grid, tunables

    for r in recordings:
        if not r.is_file():
            raise SweepError(f"no such recording: {r}")
        try:  # here, before any worker starts: a file that is no recording at all
            next(iter(RecordingReader(r)), None)
        except RecordingError as exc:
            raise SweepError(str(exc)) from None
    if meta is not None and not meta.is_file():
        raise SweepError(f"no such metadata file: {meta}")
    if search not in ("grid", "optuna"):
        raise SweepError(f"--search {search!r}: expected grid or optuna")
    if search == "optuna" and objective not in OBJECTIVES:
        raise SweepError(f"--objective {objective!r}: expected one of {list(OBJECTIVES)}")
    if chunk_size is not None and chunk_size < 1:
        raise SweepError(f"--chunk-size must be ≥ 1 (got {chunk_size})")
    base = load_config(config)
    if search == "grid":
        points = grid_points(strategy, grid)
    else:
        space = dict(parse_grid(strategy, g) for g in grid) or {
            f: t.values() for f, t in tunables(strategy).items()
        }
    with open_client(scheduler, workers) as client, _progress() as bar:
        kw: dict[str, Any] = {"chunk_size": chunk_size, "meta": meta, "progress": bar}
        if search == "grid":
            return grid_sweep(client, recordings, base, strategy, points, **kw)
        return optuna_sweep(
            client, recordings, base, strategy, space, trials=trials, seed=seed, batch=batch,
            objective=objective, **kw,
        )  # fmt: skip


class _progress:
    """A rich bar: configs done, elapsed, ETA and workers; called as ``(done, total, workers)``."""

    def __enter__(self) -> _progress:
        self._p = Progress(
            TextColumn("[bold]sweep"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("configs"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            TextColumn("{task.fields[workers]} workers"),
            console=console,
            transient=False,
        )
        self._p.__enter__()
        self._task = self._p.add_task("sweep", total=None, workers=0)
        return self

    def __call__(self, done: int, total: int, workers: int) -> None:
        self._p.update(self._task, completed=done, total=total, workers=workers)

    def __exit__(self, *exc: object) -> None:
        self._p.__exit__(None, None, None)


def _usd(micros: int) -> str:
    """Micros as dollars to the cent, for a table (exact: Decimal, rounded half even)."""
    return str((Decimal(micros) / MICROS).quantize(Decimal("0.01")))


_UNIT = {"dollars": "$", "shares": "sh", "fraction": "", "micros": "", "ms": "ms", "count": ""}


def _table(df: Any, strategy: str, top: int, title: str) -> Table:
    """The best ``top`` rows by PnL, for people: swept fields in the spec's units, money in
    dollars (the Parquet file keeps exact micros)."""
    from polylab.research.sweep_space import tunables

    tun = tunables(strategy)
    t = Table(title=title)
    best = df.sort(["pnl_micros", "config_index"], descending=[True, False]).head(top)
    params = best.columns[3 : best.columns.index("trades")]
    money = ["pnl_micros", "fees_micros", "max_drawdown_micros"]
    t.add_column("#")
    for c in params:
        short = c.removesuffix("_micros").removesuffix("_ms")
        t.add_column(f"{short} {_UNIT.get(tun[c].unit, '')}".strip() if c in tun else c)
    for c in ("trades", "pnl $", "fees $", "max dd $", "fill", "win", "config_id"):
        t.add_column(c)
    for row in best.iter_rows(named=True):
        t.add_row(
            str(row["config_index"]),
            *(tun[c].show(row[c]) if c in tun else str(row[c]) for c in params),
            str(row["trades"]),
            *(_usd(row[c]) for c in money),
            f"{row['fill_rate']:.3f}",
            f"{row['win_rate']:.3f}",
            str(row["config_id"])[:10],
        )
    return t

"""Threshold tuning for notebooks: re-run a backtest for SumTo100's ``min_edge`` and
``min_liquidity``, one point or a grid, and draw the results; or sweep the walk-forward folds'
train windows (``fold_sweeps``, the sweep API on Dask) and pick fold and strategy with widgets.

Every point is a full backtest on the one engine (the same code as ``polylab backtest``), so a
threshold that looks good here is exactly what the runner would trade. plotly and ipywidgets are
imported inside the functions that draw.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec
import polars as pl

from polylab.backtest import run_backtest
from polylab.config import PolylabConfig, load_config
from polylab.money import MICROS
from polylab.research.sweep_run import grid_sweep
from polylab.research.sweep_space import grid_points, resolve
from polylab.research.walkforward import make_folds

if TYPE_CHECKING:
    import plotly.graph_objects as go

__all__ = [
    "LIQUIDITY_FIELD",
    "fold_heatmap_widget",
    "fold_sweeps",
    "grid",
    "heatmap_figure",
    "point",
    "point_figure",
    "sweep_heatmap",
    "tuning_widget",
]

LIQUIDITY_FIELD = {"sum_to_100": "min_liquidity", "clipper": "min_size"}
"""Each strategy's liquidity threshold (shares on every leg / shares at the edge), the heatmap's
second axis next to ``min_edge``."""


def _config(
    base: PolylabConfig | None, min_edge_micros: int, min_liquidity_micros: int
) -> PolylabConfig:
    cfg = base or load_config(env={})
    s = msgspec.structs.replace(
        cfg.sum_to_100, min_edge_micros=min_edge_micros, min_liquidity_micros=min_liquidity_micros
    )
    return msgspec.structs.replace(cfg, sum_to_100=s, strategies=("sum_to_100",))


def point(
    recording: str | Path, min_edge: float, min_liquidity: float, base: PolylabConfig | None = None
) -> dict[str, Any]:
    """One backtest: ``min_edge`` in dollars per set, ``min_liquidity`` in shares.

    Returns pnl (dollars, at payout for held neg-risk sets), trades, fill rate, fees, and the
    intents and rejections behind them.
    """
    cfg = _config(base, round(min_edge * MICROS), round(min_liquidity * MICROS))
    res, _, _ = run_backtest(recording, cfg)
    return {
        "min_edge": min_edge,
        "min_liquidity": min_liquidity,
        "pnl": res.pnl_at_payout / MICROS,
        "pnl_marked": res.pnl / MICROS,
        "trades": res.trades,
        "fill_rate": res.fill_rate,
        "fees": res.fees / MICROS,
        "intents": res.intents,
        "rejections": res.rejections,
        "win_rate": res.win_rate,
    }


def grid(
    recording: str | Path,
    min_edges: Iterable[float],
    min_liquidities: Iterable[float],
    base: PolylabConfig | None = None,
) -> pl.DataFrame:
    """Backtests over every (min_edge, min_liquidity) pair, one row each."""
    liqs = list(min_liquidities)
    rows = [point(recording, e, q, base) for e in min_edges for q in liqs]
    return pl.DataFrame(rows)


def heatmap_figure(df: pl.DataFrame, metric: str = "pnl") -> go.Figure:
    """``metric`` over the grid: min_edge across, min_liquidity down."""
    return _heatmap(df, metric, 1, metric, f"SumTo100 {metric} by threshold", "min_liquidity")


def _heatmap(
    df: pl.DataFrame, metric: str, scale: int, label: str, title: str, y_name: str
) -> go.Figure:
    """``metric`` / ``scale`` over (``min_edge``, ``min_liquidity``) columns of ``df``."""
    import plotly.graph_objects as go

    edges = sorted(df["min_edge"].unique().to_list())
    liqs = sorted(df["min_liquidity"].unique().to_list())
    look = {(r["min_edge"], r["min_liquidity"]): r[metric] for r in df.to_dicts()}
    z = [
        [
            (v / scale if v is not None and scale != 1 else v)
            for v in (look.get((e, q)) for e in edges)
        ]
        for q in liqs
    ]
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=[f"{e:g}" for e in edges],
            y=[f"{q:g}" for q in liqs],
            colorscale="RdYlGn",
            colorbar={"title": label},
        )
    )
    fig.update_layout(
        title=title,
        xaxis_title="min_edge ($/set)",
        yaxis_title=f"{y_name} (shares)",
        height=450,
    )
    return fig


def point_figure(row: dict[str, Any]) -> go.Figure:
    """PnL, trade count and fill rate of one backtest as three bars."""
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=1, cols=3, subplot_titles=("PnL ($)", "trades", "fill rate"))
    fig.add_bar(x=["pnl"], y=[row["pnl"]], row=1, col=1, showlegend=False)
    fig.add_bar(x=["trades"], y=[row["trades"]], row=1, col=2, showlegend=False)
    fig.add_bar(x=["fill rate"], y=[row["fill_rate"]], row=1, col=3, showlegend=False)
    fig.update_yaxes(range=[0, 1], row=1, col=3)
    fig.update_layout(
        height=320,
        title=f"min_edge {row['min_edge']:g} $, min_liquidity {row['min_liquidity']:g} shares",
    )
    return fig


def tuning_widget(
    recording: str | Path,
    base: PolylabConfig | None = None,
    min_edge: float = 0.003,
    min_liquidity: float = 50.0,
) -> Any:
    """Two sliders that re-run the backtest and redraw PnL, trades and fill rate."""
    import ipywidgets as w

    edge = w.FloatSlider(
        value=min_edge,
        min=0.0,
        max=0.05,
        step=0.001,
        readout_format=".3f",
        description="min_edge $",
        continuous_update=False,
    )
    liq = w.FloatSlider(
        value=min_liquidity,
        min=5.0,
        max=500.0,
        step=5.0,
        description="min_liq sh",
        continuous_update=False,
    )
    out = w.Output()

    def redraw(_: Any = None) -> None:
        out.clear_output(wait=True)
        with out:
            point_figure(point(recording, edge.value, liq.value, base)).show()

    edge.observe(redraw, names="value")
    liq.observe(redraw, names="value")
    redraw()
    return w.VBox([w.HBox([edge, liq]), out])


def fold_sweeps(
    client: Any,
    windows: Sequence[str | Path],
    base: PolylabConfig,
    strategies: Sequence[str],
    min_edges: Iterable[float],
    min_liquidities: Iterable[float],
    *,
    folds: int,
    mode: str = "anchored",
) -> pl.DataFrame:
    """The sweep API over every walk-forward fold's train windows (``walkforward.make_folds``)
    and every strategy: ``min_edges`` ($ per set) × ``min_liquidities`` (shares; the strategy's
    ``LIQUIDITY_FIELD``). One ``grid_sweep`` row per (strategy, fold, point) with ``strategy``,
    ``fold``, ``min_edge`` and ``min_liquidity`` (spec units, for axes) added."""
    edges = ",".join(str(e) for e in min_edges)
    liqs = ",".join(str(q) for q in min_liquidities)
    frames = []
    for strategy in strategies:
        if strategy not in LIQUIDITY_FIELD:
            raise ValueError(f"strategy {strategy!r}: expected one of {sorted(LIQUIDITY_FIELD)}")
        liq = LIQUIDITY_FIELD[strategy]
        points = grid_points(strategy, [f"min_edge={edges}", f"{liq}={liqs}"])
        e_field, q_field = resolve(strategy, "min_edge").field, resolve(strategy, liq).field
        for fold in make_folds(windows, folds, mode):
            df = grid_sweep(client, fold.train, base, strategy, points)
            frames.append(
                df.select(
                    pl.lit(fold.index).alias("fold"),
                    (pl.col(e_field) / MICROS).alias("min_edge"),
                    (pl.col(q_field) / MICROS).alias("min_liquidity"),
                    pl.col("strategy", "config_id", "trades", "pnl_micros", "fees_micros"),
                    pl.col("max_drawdown_micros", "fill_rate", "win_rate"),
                )
            )
    return pl.concat(frames)


def sweep_heatmap(
    df: pl.DataFrame, strategy: str, fold: int, metric: str = "pnl_micros"
) -> go.Figure:
    """``metric`` of one strategy's sweep on one fold's train windows (``fold_sweeps`` rows):
    min_edge across, the liquidity threshold down; money columns drawn in dollars."""
    part = df.filter((pl.col("strategy") == strategy) & (pl.col("fold") == fold))
    money = metric.endswith("_micros")
    label = metric.removesuffix("_micros") + (" ($)" if money else "")
    return _heatmap(
        part,
        metric,
        MICROS if money else 1,
        label,
        f"{strategy}, fold {fold} train windows: {label} by threshold",
        LIQUIDITY_FIELD.get(strategy, "min_liquidity"),
    )


def fold_heatmap_widget(df: pl.DataFrame, metric: str = "pnl_micros") -> Any:
    """Two dropdowns (strategy, fold) over ``fold_sweeps`` rows that redraw the heatmap."""
    import ipywidgets as w

    strategies = list(dict.fromkeys(df["strategy"].to_list()))
    folds = sorted(set(df["fold"].to_list()))
    strat = w.Dropdown(options=strategies, value=strategies[0], description="strategy")
    fold = w.Dropdown(options=folds, value=folds[0], description="fold")
    out = w.Output()

    def redraw(_: Any = None) -> None:
        out.clear_output(wait=True)
        with out:
            sweep_heatmap(df, strat.value, fold.value, metric).show()

    strat.observe(redraw, names="value")
    fold.observe(redraw, names="value")
    redraw()
    return w.VBox([w.HBox([strat, fold]), out])

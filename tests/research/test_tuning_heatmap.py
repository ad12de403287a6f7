"""Heatmaps of sweep rows: one strategy and fold picked, money drawn in dollars, the axes in
the spec's units; the widget offers every strategy and fold of the rows."""

from __future__ import annotations

import polars as pl

from polylab.research.tuning import fold_heatmap_widget, heatmap_figure, sweep_heatmap


def _rows() -> pl.DataFrame:
    rows = []
    for strategy in ("sum_to_100", "clipper"):
        for fold in (0, 1):
            for e in (0.001, 0.01):
                for q in (10.0, 200.0):
                    pnl = int(e * 1e6) * (fold + 1) + int(q) + (7 if strategy == "clipper" else 0)
                    rows.append(
                        {
                            "strategy": strategy,
                            "fold": fold,
                            "min_edge": e,
                            "min_liquidity": q,
                            "pnl_micros": pnl,
                            "trades": fold,
                        }
                    )
    return pl.DataFrame(rows)


def test_sweep_heatmap_picks_one_strategy_and_fold_in_dollars() -> None:
    fig = sweep_heatmap(_rows(), "clipper", 1, "pnl_micros")
    hm = fig.data[0]
    assert list(hm.x) == ["0.001", "0.01"] and list(hm.y) == ["10", "200"]
    # rows: liquidity; columns: edge; pnl = edge micros × (fold + 1) + liquidity + 7, in $
    assert [list(r) for r in hm.z] == [
        [(2_000 + 10 + 7) / 1e6, (20_000 + 10 + 7) / 1e6],
        [(2_000 + 200 + 7) / 1e6, (20_000 + 200 + 7) / 1e6],
    ]
    assert fig.layout.yaxis.title.text == "min_size (shares)"
    counts = sweep_heatmap(_rows(), "sum_to_100", 0, "trades").data[0]
    assert [list(r) for r in counts.z] == [[0, 0], [0, 0]]


def test_backtest_grid_heatmap_and_widget() -> None:
    df = _rows().filter((pl.col("strategy") == "sum_to_100") & (pl.col("fold") == 0))
    hm = heatmap_figure(df, "pnl_micros").data[0]
    assert [list(r) for r in hm.z] == [[1_010, 10_010], [1_200, 10_200]]
    box = fold_heatmap_widget(_rows())
    strat, fold = box.children[0].children
    assert list(strat.options) == ["sum_to_100", "clipper"] and list(fold.options) == [0, 1]

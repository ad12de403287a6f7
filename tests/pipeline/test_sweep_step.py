"""The sweep pipeline's step: held-out recordings are never opened, grids from params, outputs
(best ids by PnL at payout, hashes of what was read)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import polars as pl
import pytest
from pipeline_helpers import Project

from polylab.pipeline.sweep_step import (
    best_rows,
    grid_specs,
    save_sweep,
    split_held_out,
    sweep_heatmap,
    sweep_outputs,
    sweep_recordings,
)
from polylab.research.sweep_space import SweepError, grid_points
from polylab.research.walkforward import HeldOutError


def test_grid_params_become_sweep_specs() -> None:
    assert grid_specs(
        {"min_edge": "0.001:0.01:0.001", "min_liquidity": [10, 200], "max_size": 50, "x": None}
    ) == ["min_edge=0.001:0.01:0.001", "min_liquidity=10,200", "max_size=50", "x"]
    pts = grid_points("sum_to_100", grid_specs({"min_edge": [0.001, 0.002]}))
    assert [p["min_edge_micros"] for p in pts] == [1_000, 2_000]
    with pytest.raises(SweepError, match=r"grid\.min_edge"):
        grid_specs({"min_edge": {"lo": 1}})


def test_held_out_recordings_are_split_off_by_file(project: Project, tmp_path: Path) -> None:
    r1, r2, r3 = project.recordings
    # the same file named two ways is still held out
    other_name = str(r3.parent / ".." / "data" / r3.name)
    used, held = split_held_out([str(r1), str(r2), str(r3)], [other_name])
    assert used == [str(r1), str(r2)] and held == [other_name]
    copy = tmp_path / "copy-of-rec-3.jsonl.zst"
    copy.write_bytes(r3.read_bytes())
    with pytest.raises(HeldOutError, match="same content"):
        split_held_out([str(r1), str(copy)], [str(r3)])
    with pytest.raises(SweepError, match="every recording is held out"):
        split_held_out([str(r3)], [str(r3)])
    with pytest.raises(SweepError, match="no such recording"):
        split_held_out([str(r1)], [str(tmp_path / "nope.jsonl")])
    with pytest.raises(SweepError, match="lists"):
        split_held_out(str(r1), [])  # type: ignore[arg-type]


@pytest.mark.slow
def test_the_sweep_never_replays_a_held_out_recording(project: Project, tmp_path: Path) -> None:
    """A held-out "recording" that is not a recording at all: swept, it fails the sweep;
    held out, the sweep runs without ever reading it."""
    r1, r2, _ = project.recordings
    poison = tmp_path / "held-out.jsonl"
    poison.write_bytes(b"\x00 not a recording \xff\n")
    grid = {"min_edge": "0.001:0.004:0.003", "min_liquidity": [10, 200]}
    with pytest.raises(SweepError):
        sweep_recordings([r1, poison], grid=grid, workers=1)
    out = sweep_recordings([r1, r2, poison], held_out=[poison], grid=grid, workers=1)
    assert out.recordings == [str(r1), str(r2)] and out.held_out == [str(poison)]
    df = out.frame
    assert df.height == 4 and df["trades"].sum() > 0

    outputs = sweep_outputs(out, top=2)
    want = df.sort(
        ["pnl_at_payout_micros", "pnl_micros", "config_index"], descending=[True, True, False]
    )
    assert outputs.config_ids == want["config_id"].head(2).to_list()
    assert outputs.data_hashes == {
        str(r): hashlib.sha256(r.read_bytes()).hexdigest() for r in (r1, r2)
    }
    assert outputs.metrics["best"]["pnl_at_payout_micros"] == want["pnl_at_payout_micros"][0]
    assert outputs.metrics["best"]["pnl_micros"] == want["pnl_micros"][0]
    assert outputs.metrics["best_params"] == {
        "min_edge_micros": want["min_edge_micros"][0],
        "min_liquidity_micros": want["min_liquidity_micros"][0],
    }
    path = save_sweep(out, tmp_path / "run")
    assert pl.read_parquet(path).equals(df)
    assert best_rows(df, 1)["config_id"].to_list() == outputs.config_ids[:1]
    fig = sweep_heatmap(df, "sum_to_100")
    (trace,) = fig.data
    assert list(trace.x) == ["0.001", "0.004"] and list(trace.y) == ["10", "200"]
    # each cell is that point's PnL at payout (what the sweep ranks by)
    look = {
        (r["min_edge_micros"], r["min_liquidity_micros"]): r["pnl_at_payout_micros"]
        for r in df.to_dicts()
    }
    assert trace.z[1][0] == look[(1_000, 200_000_000)]


def _frame(rows: list[tuple[int, int, int]]) -> pl.DataFrame:
    """A sweep frame in ``research.sweep_run``'s column order: (grid index, PnL at payout,
    marked PnL) per row, money in micros."""
    return pl.DataFrame(
        {
            "config_index": [i for i, _, _ in rows],
            "config_id": [f"id{i}" for i, _, _ in rows],
            "strategy": ["sum_to_100"] * len(rows),
            "min_edge_micros": [1_000 * (i + 1) for i, _, _ in rows],
            "trades": [5] * len(rows),
            "pnl_micros": [m for _, _, m in rows],
            "fees_micros": [0] * len(rows),
            "pnl_at_payout_micros": [p for _, p, _ in rows],
        }
    )


def test_the_sweep_ranks_by_pnl_at_payout_then_marked_pnl_then_grid_order() -> None:
    # marked to the bids, config 0 looks best; valued at payout it is the worst
    df = _frame([(0, 1_000_000, 900_000), (1, 5_000_000, -2_000_000), (2, 3_000_000, 100_000)])
    assert best_rows(df, 3)["config_index"].to_list() == [1, 2, 0]
    # ties at payout: the higher marked PnL first, then grid order; any row order gives it
    tied = _frame([(3, 2_000_000, 0), (1, 2_000_000, 0), (2, 2_000_000, 50_000), (0, 1, 9)])
    for frame in (tied, tied.reverse(), tied.sort("config_id")):
        assert best_rows(frame, 4)["config_index"].to_list() == [2, 1, 3, 0]
    # both PnLs come first, then the swept field; every column is kept
    best = best_rows(df, 1)
    assert best.columns[:3] == ["pnl_at_payout_micros", "pnl_micros", "min_edge_micros"]
    assert sorted(best.columns) == sorted(df.columns)
    assert best_rows(df, 1, "pnl_micros")["config_index"].to_list() == [0]  # asked for
    with pytest.raises(SweepError, match="not a sweep column"):
        best_rows(df.drop("pnl_at_payout_micros"), 1)

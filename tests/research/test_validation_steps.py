"""The validate pipeline's input steps: windows from recordings (sliced when there is one,
synthetic when there is none) and the grid parameter as grid points or an Optuna space."""

from __future__ import annotations

from pathlib import Path

import pytest

from polylab.book.synthetic import SyntheticConfig, write_synthetic
from polylab.feed.recording import RecordingReader
from polylab.research.validation import prepare_windows, search_for
from polylab.research.walkforward import WalkForwardError


def test_windows_from_one_many_or_no_recording(tmp_path: Path) -> None:
    rec = tmp_path / "a.jsonl.zst"
    write_synthetic(rec, SyntheticConfig(seed=2, duration_s=3.0, rate_hz=100.0))
    sliced = prepare_windows([rec], 2, tmp_path / "w1")
    assert [p.name for p in sliced] == [f"a.slice0{k}of03.jsonl.zst" for k in (1, 2, 3)]
    assert prepare_windows([rec, rec], 1, tmp_path / "w2") == [rec, rec]
    syn = prepare_windows([], 1, tmp_path / "w3", synthetic_s=2.0, seed=4)
    assert len(syn) == 2 and all(any(True for _ in RecordingReader(p)) for p in syn)
    with pytest.raises(WalkForwardError, match=r"recordings: no such file '.*missing\.jsonl'"):
        prepare_windows([tmp_path / "missing.jsonl"], 2, tmp_path / "w4")


def test_grid_parameter_as_points_or_space() -> None:
    grid = {"min_edge": "0.001:0.003:0.001", "min_liquidity": "10,20"}
    pts = search_for("sum_to_100", grid)
    assert isinstance(pts, list) and len(pts) == 6
    assert pts[0] == {"min_edge_micros": 1_000, "min_liquidity_micros": 10_000_000}
    space = search_for("sum_to_100", grid, "optuna")
    assert space == {
        "min_edge_micros": [1_000, 2_000, 3_000],
        "min_liquidity_micros": [10_000_000, 20_000_000],
    }
    with pytest.raises(WalkForwardError, match="search 'random'"):
        search_for("sum_to_100", grid, "random")

"""Walk-forward: folds tuned on train with the sweep API and evaluated on test, IS vs OOS and
the degradation, deterministic; held-out recordings refused as sweep inputs and never opened
before the final candidate's one evaluation."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from polylab.backtest import run_backtest
from polylab.book.synthetic import SyntheticConfig, write_synthetic
from polylab.config import PolylabConfig, load_config
from polylab.research.sweep_space import grid_points, make_config
from polylab.research.walkforward import (
    HOUR_NS,
    HeldOutError,
    check_held_out,
    degradation,
    recording_span,
    slice_recording,
    walk_forward,
)

GRID = ["min_edge=0.001,0.02", "min_liquidity=10,200"]

_OPENED: list[tuple[str, str]] | None = None
"""(kind, value) in order while a test tracks: ("open", path) or ("phase", message)."""


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if _OPENED is not None and event == "open" and isinstance(args[0], str | Path):
        _OPENED.append(("open", str(Path(args[0]).resolve())))


sys.addaudithook(_audit)  # one hook for the session; it records only while _OPENED is a list


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[Path], Path]:
    d = tmp_path_factory.mktemp("wf")
    rec = d / "syn.jsonl.zst"
    write_synthetic(rec, SyntheticConfig(seed=3, duration_s=12.0, rate_hz=150.0))
    held = d / "held.jsonl.zst"
    write_synthetic(held, SyntheticConfig(seed=11, duration_s=4.0, rate_hz=150.0))
    return slice_recording(rec, 3, d / "slices"), held


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    """Workers as threads of this process, so the audit hook sees every file they open."""
    import distributed

    with distributed.Client(
        processes=False, n_workers=1, threads_per_worker=2, dashboard_address=None
    ) as c:
        yield c


@pytest.fixture(scope="module")
def base() -> PolylabConfig:
    return load_config(env={})


def test_walk_forward_never_opens_held_out_before_the_final_evaluation(
    data: tuple[list[Path], Path], client: Any, base: PolylabConfig
) -> None:
    global _OPENED
    windows, held = data
    points = grid_points("sum_to_100", GRID)
    log: list[tuple[str, str]] = []

    def phase(msg: str) -> None:
        log.append(("phase", msg))

    _OPENED = log
    try:
        rep = walk_forward(
            client, windows, base, "sum_to_100", points, folds=2, held_out=[held], on_phase=phase
        )
    finally:
        _OPENED = None
    held_path = str(held.resolve())
    start = next(i for i, (k, v) in enumerate(log) if k == "phase" and v.startswith("held_out"))
    window_opens = [
        i
        for i, (k, v) in enumerate(log)
        if k == "open" and v in {str(w.resolve()) for w in windows}
    ]
    assert window_opens and max(window_opens) < start  # the sweeps did read the windows
    early = [i for i, (k, v) in enumerate(log[:start]) if k == "open" and v == held_path]
    # before the evaluation the held-out file is read once only: hashed by the guard, on
    # this thread, before the first fold; no sweep opened it
    first_phase = next(i for i, (k, _) in enumerate(log) if k == "phase")
    assert len(early) == 1 and early[0] < first_phase
    assert any(k == "open" and v == held_path for k, v in log[start:])
    assert rep.held_out is not None and rep.held_out["events"] > 0
    # the held-out block is the candidate's own backtest of the held-out recording
    bt, _, _ = run_backtest(held, rep.candidate)
    assert (rep.held_out["pnl_micros"], rep.held_out["trades"]) == (bt.pnl, bt.trades)


def test_folds_report_in_and_out_of_sample(
    data: tuple[list[Path], Path], client: Any, base: PolylabConfig
) -> None:
    windows, _ = data
    points = grid_points("sum_to_100", GRID)
    rep = walk_forward(client, windows, base, "sum_to_100", points, folds=2, mode="rolling")
    assert [len(f.train) for f in rep.folds] == [1, 1]
    assert [f.test for f in rep.folds] == [[str(windows[1])], [str(windows[2])]]
    for f in rep.folds:
        cfg = make_config(base, "sum_to_100", f.params)
        assert f.params in points
        oos, _, _ = run_backtest(f.test[0], cfg)
        ins, _, _ = run_backtest(f.train[0], cfg)
        assert (f.out_of_sample["pnl_micros"], f.out_of_sample["trades"]) == (oos.pnl, oos.trades)
        assert (f.in_sample["pnl_micros"], f.in_sample["fees_micros"]) == (ins.pnl, ins.fees)
        first, last = recording_span(f.test[0])
        assert f.test_ns == last - first > 0
        assert f.oos_pnl_per_hour_micros == oos.pnl * HOUR_NS // f.test_ns
        assert f.degradation == degradation(ins.pnl, f.train_ns, oos.pnl, f.test_ns)
    # the chosen params are the train sweep's best by PnL: no other point beats them on train
    f0 = rep.folds[0]
    for p in points:
        other, _, _ = run_backtest(f0.train[0], make_config(base, "sum_to_100", p))
        assert other.pnl <= f0.in_sample["pnl_micros"]
    assert rep.out_of_sample["pnl_micros"] == sum(f.out_of_sample["pnl_micros"] for f in rep.folds)
    assert rep.held_out is None and rep.candidate_id
    df = rep.frame()
    assert df.height == 2 and {"is_pnl_micros", "oos_pnl_micros", "degradation"} <= set(df.columns)
    again = walk_forward(client, windows, base, "sum_to_100", points, folds=2, mode="rolling")
    assert again.frame().equals(df) and again.candidate_id == rep.candidate_id


def test_degradation_definition() -> None:
    hour = HOUR_NS
    assert degradation(1_000, hour, 1_000, hour) == 0.0
    assert degradation(1_000, 2 * hour, 250, hour) == 0.5  # 500/h in sample, 250/h out
    assert degradation(1_000, hour, -1_000, hour) == 2.0
    assert degradation(0, hour, 5, hour) is None  # no in-sample profit: no rate to degrade
    assert degradation(-3, hour, 5, hour) is None


def test_held_out_guard_by_path_and_by_content(
    data: tuple[list[Path], Path], tmp_path: Path, client: Any, base: PolylabConfig
) -> None:
    windows, held = data
    with pytest.raises(HeldOutError, match=r"held-out recording .*held\.jsonl\.zst is among"):
        check_held_out([*windows, held], [held])
    copy = tmp_path / "renamed.jsonl.zst"
    shutil.copyfile(held, copy)
    with pytest.raises(HeldOutError, match=r"renamed\.jsonl\.zst has the same content"):
        check_held_out([windows[0], copy], [held])
    check_held_out(windows, [held])  # distinct data passes
    points = grid_points("sum_to_100", GRID)
    with pytest.raises(HeldOutError):
        walk_forward(client, [*windows, copy], base, "sum_to_100", points, folds=2, held_out=[held])


def test_optuna_search_is_seeded(
    data: tuple[list[Path], Path], client: Any, base: PolylabConfig
) -> None:
    """A space (field → values) tunes each fold with a seeded TPE search: same seed, same
    choices; every choice is a value of the space."""
    windows, _ = data
    space = {"min_edge_micros": [1_000, 5_000, 20_000], "min_liquidity_micros": [10**7, 2 * 10**8]}
    runs = [
        walk_forward(client, windows, base, "sum_to_100", space, folds=1, trials=4, seed=5)
        for _ in range(2)
    ]
    a, b = runs
    assert a.search == "optuna" and len(a.folds) == 1
    assert a.folds[0].params == b.folds[0].params and a.candidate_id == b.candidate_id
    for f, vals in space.items():
        assert a.folds[0].params[f] in vals and a.candidate_params[f] in vals
    assert a.frame().equals(b.frame())

"""Sweep cost: 100 configs on one shared replay against one backtest of the same recording.

A seeded synthetic recording (or the one given) is backtested (``run_backtest``: decode +
books + strategies + risk + paper + portfolio, the run recorder and the opportunity observers)
with one sweep config (SumTo100 alone) and with the default config (what ``polylab backtest``
runs: SumTo100, Clipper, Sniper), and swept over a 10 × 10 grid of SumTo100's ``min_edge`` ×
``min_liquidity`` in this process (``replay_many``: one decode and one book build for all 100),
round-robin, timed in CPU seconds of this process (the machine may be shared). Prints both
ratios (median and spread over rounds) and, with ``--dask``, the wall
time of the same sweep on a LocalCluster of 1 and of 2 workers.

Target (issue 12): the 100-config sweep costs ≤ 10× one backtest, here the stricter baseline
(one sweep config); the verdict line says PASS or FAIL, and the exit code is 1 when missed.
Usage: ``python bench/bench_sweep.py [RECORDING] [--rounds N] [--dask]``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from verdict import Verdicts

from polylab.backtest import run_backtest
from polylab.book.synthetic import SyntheticConfig, write_synthetic
from polylab.config import load_config
from polylab.research.sweep import replay_many
from polylab.research.sweep_space import grid_points, make_config

TARGET = 10.0
GRID = ["min_edge=0.001:0.01:0.001", "min_liquidity=10:100:10"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("recording", nargs="?", help="default: a 20 s seeded synthetic recording")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--dask", action="store_true", help="also time 1 and 2 Dask workers")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        rec = Path(args.recording) if args.recording else Path(d) / "syn.jsonl.zst"
        if not args.recording:
            write_synthetic(rec, SyntheticConfig(seed=7, duration_s=20.0))
        sys.exit(run(rec, args.rounds, args.dask))


def run(rec: Path, rounds: int, dask: bool) -> int:
    base = load_config(env={})
    points = grid_points("sum_to_100", GRID)
    configs = [make_config(base, "sum_to_100", p) for p in points]
    one = make_config(base, "sum_to_100", {})
    bt: list[float] = []
    full: list[float] = []
    sw: list[float] = []
    for _ in range(rounds):
        t = time.process_time()
        res, _, _ = run_backtest(rec, one)
        bt.append(time.process_time() - t)
        t = time.process_time()
        run_backtest(rec, base)
        full.append(time.process_time() - t)
        t = time.process_time()
        stats = replay_many(rec, configs)
        sw.append(time.process_time() - t)
    ratios = [s / b for s, b in zip(sw, bt, strict=True)]
    ratios_full = [s / b for s, b in zip(sw, full, strict=True)]
    med = statistics.median(ratios)
    print(f"recording {rec.name}: {res.events:,} events; {len(configs)} configs; {rounds} rounds")
    for name, xs in (
        ("backtest, one sweep config", bt),
        ("backtest, default config", full),
        ("100-config sweep", sw),
    ):
        print(f"  {name:<28} median {statistics.median(xs):.3f} s CPU  ({_spread(xs)})")
    print(
        f"  ratio sweep / backtest of one sweep config: median {med:.2f}× "
        f"(min {min(ratios):.2f}, max {max(ratios):.2f}); target ≤ {TARGET:g}×"
    )
    print(
        f"  ratio sweep / default backtest: median {statistics.median(ratios_full):.2f}× "
        f"(min {min(ratios_full):.2f}, max {max(ratios_full):.2f})"
    )
    print(f"  configs that traded: {sum(1 for s in stats if s.trades)} of {len(stats)}")
    if dask:
        _dask(rec, base, points)
    v = Verdicts("bench_sweep")
    v.at_most(
        "100-config sweep / one backtest (CPU, median)",
        med,
        TARGET,
        "x",
        f"spread {min(ratios):.2f}–{max(ratios):.2f} over {rounds} rounds",
    )
    return v.finish()


def _spread(xs: list[float]) -> str:
    return f"min {min(xs):.3f}, max {max(xs):.3f}"


def _dask(rec: Path, base: object, points: list[dict[str, int]]) -> None:
    """Wall time of the sweep on a LocalCluster of 1 and of 2 workers (after a warm-up)."""
    from polylab.config import PolylabConfig
    from polylab.research.sweep_run import grid_sweep, open_client

    assert isinstance(base, PolylabConfig)
    wall: dict[int, float] = {}
    for n in (1, 2):
        with open_client(None, n_workers=n) as client:
            client.wait_for_workers(n)
            grid_sweep(client, [rec], base, "sum_to_100", points[:4])  # warm the workers
            t = time.perf_counter()
            grid_sweep(client, [rec], base, "sum_to_100", points)
            wall[n] = time.perf_counter() - t
        print(f"  Dask LocalCluster, {n} worker(s): {wall[n]:.3f} s wall")
    print(f"  speed-up 1 → 2 workers: {wall[1] / wall[2]:.2f}×")


if __name__ == "__main__":
    main()

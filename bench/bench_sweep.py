"""Sweep cost: 100 configs on one shared replay against one backtest of the same recording,
and the same sweep on Dask with 1 and with 2 workers.

A seeded synthetic recording (or the one given) is backtested (``run_backtest``: decode +
books + strategies + risk + paper + portfolio, the run recorder and the opportunity observers)
with one sweep config (SumTo100 alone) and with the default config (what ``polylab backtest``
runs: SumTo100, Clipper, Sniper), and swept over a 10 × 10 grid of SumTo100's ``min_edge`` ×
``min_liquidity`` in this process (``replay_many``: one decode and one book build for all 100),
round-robin, timed in CPU seconds of this process (the machine may be shared). Prints both
ratios (median and spread over rounds).

Dask scaling: the same grid through ``sweep_run.grid_sweep`` on a ``LocalCluster`` of 1 worker
and on one of 2 workers (single-threaded worker processes, both started once and warmed up),
timed in wall seconds, round-robin between the two; prints each median, the speed-up
(1-worker time / 2-worker time, median over rounds) and its spread. Wall time on a shared
machine is only indicative: rerun it quietly for figures.

Target (issue 12): the 100-config sweep costs ≤ 10× one backtest, here the stricter baseline
(one sweep config); the verdict line says PASS or FAIL, and the exit code is 1 when missed.
The Dask speed-up has no target (it is reported).

Usage: ``python bench/bench_sweep.py [RECORDING] [--rounds N] [--dask-rounds N] [--no-dask]``.
Environment knobs for a short smoke run (the flags win): ``BENCH_SECONDS`` (synthetic
recording length, default 20), ``BENCH_ROUNDS`` (default 3), ``BENCH_DASK_ROUNDS`` (default 3),
``BENCH_GRID`` (``EDGESxLIQUIDITIES``, default ``10x10``), ``BENCH_DASK=0`` (no Dask).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from verdict import Verdicts

from polylab.backtest import run_backtest
from polylab.book.synthetic import SyntheticConfig, write_synthetic
from polylab.config import PolylabConfig, load_config
from polylab.research.sweep import replay_many
from polylab.research.sweep_space import grid_points, make_config

TARGET = 10.0


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "")
    try:
        return int(raw) if raw else default
    except ValueError:
        sys.exit(f"{name}={raw!r}: expected an integer")


def grid(spec: str) -> list[str]:
    """``EDGESxLIQUIDITIES`` → the two grid specs: ``min_edge`` 0.001 … in 0.001 steps and
    ``min_liquidity`` 10 … in steps of 10 (10x10: the 100 configs of the target)."""
    try:
        ne, nl = (int(x) for x in spec.lower().split("x"))
    except ValueError:
        sys.exit(f"BENCH_GRID={spec!r}: expected EDGESxLIQUIDITIES, e.g. 10x10")
    if ne < 1 or nl < 1:
        sys.exit(f"BENCH_GRID={spec!r}: both counts must be ≥ 1")
    return [f"min_edge=0.001:{ne / 1000:g}:0.001", f"min_liquidity=10:{nl * 10}:10"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("recording", nargs="?", help="default: a seeded synthetic recording")
    ap.add_argument("--rounds", type=int, default=_env_int("BENCH_ROUNDS", 3))
    ap.add_argument("--dask-rounds", type=int, default=_env_int("BENCH_DASK_ROUNDS", 3))
    ap.add_argument("--dask", action="store_true", help="(the default) time 1 and 2 Dask workers")
    ap.add_argument("--no-dask", action="store_true", help="skip the Dask scaling")
    args = ap.parse_args()
    dask = not args.no_dask and os.environ.get("BENCH_DASK", "1") != "0"
    seconds = float(os.environ.get("BENCH_SECONDS", "20") or 20)
    specs = grid(os.environ.get("BENCH_GRID", "10x10"))
    if args.rounds < 1 or args.dask_rounds < 1:
        sys.exit("--rounds and --dask-rounds must be ≥ 1")
    with tempfile.TemporaryDirectory() as d:
        rec = Path(args.recording) if args.recording else Path(d) / "syn.jsonl.zst"
        if not args.recording:
            write_synthetic(rec, SyntheticConfig(seed=7, duration_s=seconds))
        sys.exit(run(rec, specs, args.rounds, args.dask_rounds if dask else 0))


def run(rec: Path, specs: list[str], rounds: int, dask_rounds: int) -> int:
    base = load_config(env={})
    points = grid_points("sum_to_100", specs)
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
    n = len(configs)
    print(f"recording {rec.name}: {res.events:,} events; {n} configs; {rounds} rounds")
    for name, xs in (
        ("backtest, one sweep config", bt),
        ("backtest, default config", full),
        (f"{n}-config sweep", sw),
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
    if dask_rounds:
        _dask(rec, base, points, dask_rounds)
    v = Verdicts("bench_sweep")
    v.at_most(
        f"{n}-config sweep / one backtest (CPU, median)",
        med,
        TARGET,
        "x",
        f"spread {min(ratios):.2f}–{max(ratios):.2f} over {rounds} rounds",
    )
    return v.finish()


def _spread(xs: list[float]) -> str:
    return f"min {min(xs):.3f}, max {max(xs):.3f}"


def _dask(rec: Path, base: PolylabConfig, points: list[dict[str, int]], rounds: int) -> None:
    """Wall time of the sweep on a LocalCluster of 1 and of 2 workers: both clusters up and
    warmed first, then ``rounds`` rounds alternating between them; the same rows either way."""
    from contextlib import ExitStack

    from polylab.research.sweep_run import grid_sweep, open_client

    wall: dict[int, list[float]] = {1: [], 2: []}
    with ExitStack() as stack:
        clients = {}
        for n in (1, 2):
            client = stack.enter_context(open_client(None, n_workers=n))
            client.wait_for_workers(n)
            grid_sweep(client, [rec], base, "sum_to_100", points[:4])  # warm the workers
            clients[n] = client
        frames = {}
        for _ in range(rounds):
            for n, client in clients.items():
                t = time.perf_counter()
                frames[n] = grid_sweep(client, [rec], base, "sum_to_100", points)
                wall[n].append(time.perf_counter() - t)
    assert frames[1].equals(frames[2]), "1 and 2 workers gave different rows"
    speed = [a / b for a, b in zip(wall[1], wall[2], strict=True)]
    print(f"  Dask LocalCluster, {len(points)} configs, {rounds} rounds (wall, shared machine):")
    for n in (1, 2):
        xs = wall[n]
        print(f"    {n} worker(s): median {statistics.median(xs):.3f} s wall  ({_spread(xs)})")
    print(
        f"    speed-up 1 → 2 workers: median {statistics.median(speed):.2f}× "
        f"(min {min(speed):.2f}, max {max(speed):.2f}; 2.00× would be perfect scaling)"
    )


if __name__ == "__main__":
    main()

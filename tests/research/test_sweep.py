"""Sweeps: one shared replay gives every config exactly what its own backtest gives; grids in
the spec's units; Dask (a LocalCluster of 2 workers, and a scheduler and a worker started as
separate processes) returns the same rows as the in-process replay; Optuna is seeded."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from typer.testing import CliRunner

from polylab.backtest import run_backtest
from polylab.book.registry import BookRegistry
from polylab.book.synthetic import SyntheticConfig, write_synthetic
from polylab.cli import _register_subapps, app
from polylab.config import PolylabConfig, build_strategies, load_config
from polylab.engine import Engine
from polylab.execution.paper import PaperTrader
from polylab.feed.decode import market_decoder
from polylab.feed.recording import RecordingReader, decode_meta
from polylab.research.sweep import RunStats, combine, max_drawdown, replay_many
from polylab.research.sweep_gate import NO_BOOK, TopOfBookGate
from polylab.research.sweep_run import grid_sweep, open_client, optuna_sweep
from polylab.research.sweep_space import (
    SweepError,
    grid_points,
    make_config,
    parse_grid,
    tunables,
)
from polylab.risk.manager import RiskManager
from polylab.risk.portfolio import Portfolio

BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def recs(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Two short seeded synthetic recordings (stale binary legs, a neg-risk event)."""
    d = tmp_path_factory.mktemp("sweep")
    out = []
    for seed in (3, 11):
        p = d / f"syn-{seed}.jsonl.zst"
        write_synthetic(p, SyntheticConfig(seed=seed, duration_s=8.0, rate_hz=150.0))
        out.append(p)
    return out


@pytest.fixture(scope="module")
def base() -> PolylabConfig:
    return load_config(env={})


def _same_as_backtest(rec: Path, cfg: PolylabConfig, got: RunStats) -> None:
    res, _, _ = run_backtest(rec, cfg)
    want = {
        "trades": res.trades,
        "intents": res.intents,
        "rejections": res.rejections,
        "pnl": res.pnl,
        "pnl_at_payout": res.pnl_at_payout,
        "realized": res.realized,
        "fees": res.fees,
        "merges": res.merges,
        "unfilled_legs": res.unfilled_legs,
        "unwind_fills": res.unwind_fills,
        "events": res.events,
        "malformed": res.malformed,
        "truncated": res.truncated,
    }
    have = {k: getattr(got, k) for k in want}
    assert have == want
    assert (round(got.got / got.sent, 6) if got.sent else 0.0) == res.fill_rate
    assert (got.wins / got.completed if got.completed else 0.0) == res.win_rate
    assert got.equity[-1] == res.pnl  # the last mark is the final PnL


def test_shared_replay_equals_separate_backtests(recs: list[Path], base: PolylabConfig) -> None:
    """Each config of one shared replay trades, earns and pays fees exactly as its own
    backtest; with SumTo100 and Clipper configs (the shared top-of-book gate on)."""
    points = [
        ("sum_to_100", {"min_edge_micros": 1_000, "min_liquidity_micros": 10_000_000}),
        ("sum_to_100", {"min_edge_micros": 4_000, "min_liquidity_micros": 10_000_000}),
        ("sum_to_100", {"min_edge_micros": 1_000, "min_liquidity_micros": 200_000_000}),
        ("clipper", {"min_edge_micros": 1_000, "min_size_micros": 5_000_000}),
        ("clipper", {"min_edge_micros": 20_000, "min_size_micros": 5_000_000}),
    ]
    configs = [make_config(base, s, p) for s, p in points]
    for rec in recs:
        stats = replay_many(rec, configs)
        assert len(stats) == len(configs)
        assert sum(s.trades for s in stats) > 0, "nothing traded: the comparison proves nothing"
        assert len({(s.trades, s.pnl) for s in stats}) > 1, "configs should differ"
        for cfg, st in zip(configs, stats, strict=True):
            _same_as_backtest(rec, cfg, st)


def test_shared_replay_with_every_strategy_equals_backtest(
    recs: list[Path], base: PolylabConfig
) -> None:
    """With the Sniper in the mix (gate off) and the default config, same equality."""
    configs = [base, make_config(base, "clipper", {"min_edge_micros": 2_000})]
    stats = replay_many(recs[0], configs)
    assert stats[0].trades > 0
    for cfg, st in zip(configs, stats, strict=True):
        _same_as_backtest(recs[0], cfg, st)


def test_the_gate_only_quiets_configs_that_would_do_nothing(
    recs: list[Path], base: PolylabConfig
) -> None:
    """Whenever the shared gate says a config's ``min_edge`` cannot act on an event, that
    config's strategy, asked anyway, returns no intent (and it is asked often enough, and
    acts elsewhere, for this to mean something)."""
    configs = [
        make_config(base, "sum_to_100", {"min_edge_micros": 1_000, "min_liquidity_micros": 10**7}),
        make_config(base, "clipper", {"min_edge_micros": 2_000}),
        make_config(base, "sum_to_100", {"min_edge_micros": 30_000}),
    ]
    reg = BookRegistry()
    engines = [
        Engine(
            registry=reg,
            strategies=build_strategies(c),
            risk=RiskManager(c.risk, Portfolio(10**10)),
            executor=PaperTrader(c.paper, reg.catalog),
            portfolio=Portfolio(10**10),
        )
        for c in configs
    ]
    gate = TopOfBookGate(reg.catalog, reg.books, engines)
    assert gate.on
    assert gate.edges == [1_000, 2_000, 30_000]
    dec = market_decoder()
    quieted = acted = 0
    for rec in RecordingReader(recs[0]):
        if rec.channel == "meta":
            for m in decode_meta(rec.payload):
                reg.catalog.add(m)
            continue
        for ev in dec.decode(rec.payload):
            reg.handlers[type(ev)](ev, rec.recv_ns)
            need = gate.need(ev)
            if need is None or need == NO_BOOK:
                continue
            tokens = (
                [e.asset_id for e in ev.price_changes]
                if hasattr(ev, "price_changes")
                else [ev.asset_id]
            )
            for e, edge in zip(engines, gate.edges, strict=True):
                e._now = rec.recv_ns
                out = [i for s in e.strategies for t in tokens for i in s.on_book(e, t)]
                if edge >= need:
                    quieted += 1
                    assert out == [], (edge, need, out)
                elif out:
                    acted += 1
    assert quieted > 100
    assert acted > 0


def test_gate_boundary_is_exactly_where_the_top_of_book_edge_ends() -> None:
    """Best asks 0.45 + 0.48 leave 0.07 a set: a Clipper (no fees) with ``min_edge`` just
    under it trades and is not quieted; at 0.07 it does nothing and is quieted."""
    from types import SimpleNamespace

    from polylab.book.l2 import L2Book
    from polylab.market import Market, MarketCatalog
    from polylab.money import tick_size
    from polylab.strategy.clipper import Clipper, ClipperConfig

    g = tick_size("0.01")
    books: dict[str, L2Book] = {}
    for tok, ask in (("Y", "0.45"), ("N", "0.48")):
        b = L2Book(tok, g)
        b.load([], [(g.to_ticks(ask), 100 * 10**6)])
        b.updated_ns = 1
        books[tok] = b
    catalog = MarketCatalog([Market(condition_id="0xbin", token_ids=("Y", "N"))])
    ctx = SimpleNamespace(
        books=books, catalog=catalog, now_ns=lambda: 1, position=lambda t: 0, budget=None
    )
    clips = [Clipper(ClipperConfig(min_edge_micros=e, fee_rate_micros=0)) for e in (69_999, 70_000)]
    engines = [SimpleNamespace(strategies=[c], observers=[]) for c in clips]
    gate = TopOfBookGate(catalog, books, engines)  # type: ignore[arg-type]
    assert gate.timer_need() == 70_000
    assert [len(c.on_timer(ctx)) for c in clips] == [1, 0]
    assert [e >= gate.timer_need() for e in gate.edges] == [False, True]
    del books["N"]  # an incomplete set: nobody can act, every edge is quiet
    gate.version += 1
    assert gate.timer_need() <= 0


def test_grid_values_are_read_in_the_specs_units() -> None:
    field, vals = parse_grid("sum_to_100", "min_edge=0.001:0.01:0.001")
    assert field == "min_edge_micros"
    assert vals == [1_000 * k for k in range(1, 11)]
    field, vals = parse_grid("sum_to_100", "min_liquidity=10:200:10")
    assert (field, vals[0], vals[-1], len(vals)) == ("min_liquidity_micros", 10**7, 2 * 10**8, 20)
    assert parse_grid("clipper", "CLIPPER_MIN_SIZE=5,7.5") == (
        "min_size_micros",
        [5_000_000, 7_500_000],
    )
    assert parse_grid("sum_to_100", "max_book_age=500:1500:500") == (
        "max_book_age_ms",
        [500, 1000, 1500],
    )
    assert parse_grid("sniper", "min_edge=0.1,0.25") == ("min_edge_micros", [100_000, 250_000])
    t = tunables("sum_to_100")["min_edge_micros"]
    assert parse_grid("sum_to_100", "min_edge") == ("min_edge_micros", t.values())
    pts = grid_points("sum_to_100", ["min_edge=0.001,0.002", "min_liquidity=10:30:10"])
    assert len(pts) == 6
    assert pts[0] == {"min_edge_micros": 1000, "min_liquidity_micros": 10_000_000}
    assert pts[1] == {"min_edge_micros": 1000, "min_liquidity_micros": 20_000_000}


@pytest.mark.parametrize(
    ("strategy", "spec", "needle"),
    [
        ("sum_to_100", "min_edge=0.001:abc:0.001", "'abc'"),
        ("sum_to_100", "min_edge=0.0000001", "0.0000001"),
        ("sum_to_100", "min_edgy=1", "min_edgy"),
        ("sum_to_100", "min_edge=0.01:0.001:0.001", "low ≤ high"),
        ("sum_to_100", "min_edge=0.001:0.01", "low:high:step"),
        ("sniper", "x=1", "'x'"),
        ("engine", "x=1", "engine"),
        ("nope", "x=1", "nope"),
    ],
)
def test_bad_grids_name_the_value(strategy: str, spec: str, needle: str) -> None:
    with pytest.raises(SweepError) as ei:
        grid_points(strategy, [spec])
    assert needle in str(ei.value)


def test_grid_limits_and_validation(base: PolylabConfig) -> None:
    with pytest.raises(SweepError, match="configs"):
        grid_points("sum_to_100", [])  # every tunable over its whole range: too many
    with pytest.raises(SweepError, match="given twice"):
        grid_points("sum_to_100", ["min_edge=0.001", "min_edge_micros=2000"])
    with pytest.raises(SweepError, match="max_size_micros"):
        make_config(base, "sum_to_100", {"max_size_micros": 0})
    cfg = make_config(base, "clipper", {"min_edge_micros": 7_000})
    assert cfg.strategies == ("clipper",)
    assert cfg.clipper.min_edge_micros == 7_000
    assert cfg.sum_to_100 == base.sum_to_100


def test_drawdown_and_recordings_chain() -> None:
    assert max_drawdown([]) == 0
    assert max_drawdown([-5]) == 5  # a fall from the start (0)
    assert max_drawdown([3, 10, 4, 8, 1, 12]) == 9
    a = RunStats(trades=1, pnl=4, fees=2, sent=10, got=5, wins=1, completed=2, equity=[6, 4])
    b = RunStats(trades=2, pnl=-7, fees=1, sent=10, got=10, wins=0, completed=1, equity=[-9, -7])
    row = combine([a, b])
    assert (row["trades"], row["pnl_micros"], row["fees_micros"]) == (3, -3, 3)
    assert row["fill_rate"] == 0.75
    assert row["win_rate"] == round(1 / 3, 6)
    # b starts where a ended (4): 6, 4, then 4 - 9 = -5, 4 - 7 = -3: from the peak 6 to -5
    assert row["max_drawdown_micros"] == 11
    assert combine([b, a])["max_drawdown_micros"] == 9


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    with open_client(None, n_workers=2) as c:
        yield c


def _expected(recs: list[Path], configs: list[PolylabConfig]) -> list[dict[str, Any]]:
    per = [replay_many(r, configs) for r in recs]
    return [combine([p[i] for p in per]) for i in range(len(configs))]


def test_local_cluster_of_two_workers_matches_the_in_process_replay(
    client: Any, recs: list[Path], base: PolylabConfig
) -> None:
    """Chunks of 2 configs × 2 recordings spread over 2 worker processes: same rows, in
    config order, as replaying in this process."""
    assert len(client.scheduler_info(n_workers=-1)["workers"]) == 2
    points = grid_points("sum_to_100", ["min_edge=0.001:0.003:0.001", "min_liquidity=10,100"])
    seen: list[tuple[int, int, int]] = []
    df = grid_sweep(
        client,
        recs,
        base,
        "sum_to_100",
        points,
        chunk_size=2,
        progress=lambda d, n, w: seen.append((d, n, w)),
    )
    configs = [make_config(base, "sum_to_100", p) for p in points]
    want = _expected(recs, configs)
    got = df.drop("config_index", "config_id", "strategy", *points[0]).to_dicts()
    assert got == want
    assert df["config_index"].to_list() == list(range(len(points)))
    assert df.select(*points[0]).to_dicts() == points
    assert seen[-1][:2] == (len(points), len(points))
    assert df["trades"].sum() > 0


def test_optuna_search_is_seeded(client: Any, recs: list[Path], base: PolylabConfig) -> None:
    space = dict(
        [
            parse_grid("clipper", "min_edge=0:0.02:0.001"),
            parse_grid("clipper", "min_size=5,10,50"),
        ]
    )
    run = [
        optuna_sweep(client, recs[:1], base, "clipper", space, trials=6, batch=3, seed=5)
        for _ in range(2)
    ]
    assert run[0].equals(run[1])
    other = optuna_sweep(client, recs[:1], base, "clipper", space, trials=6, batch=3, seed=6)
    cols = ["min_edge_micros", "min_size_micros"]
    assert not other.select(cols).equals(run[0].select(cols))
    assert run[0].height == 6
    assert set(run[0]["min_size_micros"].to_list()) <= {5_000_000, 10_000_000, 50_000_000}
    assert all(v % 1_000 == 0 and 0 <= v <= 20_000 for v in run[0]["min_edge_micros"])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_workers(addr: str, n: int, deadline_s: float = 60.0) -> None:
    from distributed import Client

    with Client(addr, timeout="30s") as c:
        c.wait_for_workers(n, timeout=deadline_s)


def test_cli_sweep_through_a_separate_scheduler_and_worker(
    recs: list[Path], base: PolylabConfig, tmp_path: Path
) -> None:
    """``dask scheduler`` and ``dask worker`` (the ``dask-scheduler`` / ``dask-worker`` of
    old) as their own processes on loopback; the CLI
    reaches them with ``--scheduler`` and writes the same rows the in-process replay gives."""
    port = _free_port()
    addr = f"tcp://127.0.0.1:{port}"
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    common = ["--no-dashboard"]
    procs = [
        subprocess.Popen(
            [
                str(BIN / "dask"),
                "scheduler",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                *common,
                "--dashboard-address",
                "127.0.0.1:0",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env,
        )
    ]
    try:
        procs.append(
            subprocess.Popen(
                [
                    str(BIN / "dask"),
                    "worker",
                    addr,
                    "--nthreads",
                    "1",
                    "--host",
                    "127.0.0.1",
                    *common,
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                env=env,
            )
        )
        _wait_workers(addr, 1)
        out = tmp_path / "sweep.parquet"
        _register_subapps()
        args = ["sweep", *map(str, recs), "--strategy", "sum_to_100", "--scheduler", addr]
        args += ["--grid", "min_edge=0.001:0.002:0.001", "--grid", "min_liquidity=10:20:10"]
        res = CliRunner().invoke(app, [*args, "--out", str(out)])
        assert res.exit_code == 0, res.output
        df = pl.read_parquet(out)
        need = {"config_index", "config_id", "min_edge_micros", "min_liquidity_micros", "trades"}
        need |= {"pnl_micros", "fees_micros", "max_drawdown_micros", "fill_rate", "win_rate"}
        assert need <= set(df.columns)
        assert df["config_id"].n_unique() == df.height == 4
        points = grid_points("sum_to_100", ["min_edge=0.001:0.002:0.001", "min_liquidity=10:20:10"])
        configs = [make_config(base, "sum_to_100", p) for p in points]
        assert df.drop("config_index", "config_id", "strategy", *points[0]).to_dicts() == (
            _expected(recs, configs)
        )
    finally:
        for p in reversed(procs):
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (["--grid", "min_edge=oops"], "'oops'"),
        (["--strategy", "nope"], "nope"),
        (["--search", "random"], "random"),
        (["--search", "optuna", "--objective", "fees"], "fees"),
    ],
)
def test_cli_bad_input_exits_2_naming_it(recs: list[Path], extra: list[str], needle: str) -> None:
    _register_subapps()
    res = CliRunner().invoke(app, ["sweep", str(recs[0]), "--workers", "1", *extra])
    assert res.exit_code == 2
    assert needle in res.output
    missing = CliRunner().invoke(app, ["sweep", "/nonexistent/rec.jsonl"])
    assert missing.exit_code == 2
    assert "/nonexistent/rec.jsonl" in missing.output


def test_unreachable_scheduler_is_a_clear_error() -> None:
    addr = f"tcp://127.0.0.1:{_free_port()}"
    with pytest.raises(SweepError, match="cannot reach") as ei, open_client(addr, timeout_s=1.0):
        pass
    assert addr in str(ei.value)


@pytest.mark.slow
def test_shared_replay_of_a_paper_sessions_feed_equals_backtests(
    tmp_path: Path, base: PolylabConfig
) -> None:
    """A paper session on the simulator (real sockets, a faulty feed, fast games) records
    scoreboards and feed notes besides the market frames; the shared replay of that file still
    gives each config (the Sniper among them) what its own backtest gives."""
    import asyncio

    from polylab.runner.paper import FEED_FILE, run_paper, venue

    cfg = load_config(env={"RISK_MAX_POSITION": "300"})
    sim = {
        "faults": {"drop_prob": 0.01, "disconnect_every_s": 2.5},
        "game_delay_s": [1.0, 2.0],
        "game_length_s": [2.0, 4.0],
    }

    async def main():  # type: ignore[no-untyped-def]
        async with venue(None, seed=11, sim_overrides=sim) as v:
            return await run_paper(cfg, v, seconds=7.0, out_dir=tmp_path / "paper")

    asyncio.run(main())
    feed = tmp_path / "paper" / FEED_FILE
    channels = {r.channel for r in RecordingReader(feed)}
    assert {"market", "meta", "sports", "feed"} <= channels
    configs = [
        cfg,
        make_config(cfg, "sniper", {"min_edge_micros": 50_000}),
        make_config(cfg, "sum_to_100", {"min_edge_micros": 1_000}),
    ]
    stats = replay_many(feed, configs)
    assert sum(s.trades for s in stats) > 0
    for c, st in zip(configs, stats, strict=True):
        _same_as_backtest(feed, c, st)
    gated = [make_config(cfg, "clipper", {"min_edge_micros": e}) for e in (0, 3_000, 40_000)]
    for c, st in zip(gated, replay_many(feed, gated), strict=True):
        _same_as_backtest(feed, c, st)


def test_a_task_that_fails_on_a_worker_is_one_clear_error(client: Any, tmp_path: Path) -> None:
    """A recording the workers cannot read (not zstd) stops the sweep with its path named;
    the CLI finds it before starting a cluster (exit 2, one line)."""
    bad = tmp_path / "bad.jsonl.zst"
    bad.write_bytes(b"not zstd")
    with pytest.raises(SweepError, match=r"bad\.jsonl\.zst") as ei:
        grid_sweep(client, [bad], load_config(env={}), "clipper", [{"min_edge_micros": 1000}])
    assert "RecordingError" in str(ei.value)
    _register_subapps()
    res = CliRunner().invoke(app, ["sweep", str(bad), "--strategy", "clipper"])
    assert res.exit_code == 2
    assert "not a recording" in res.output

"""Backtests on recordings with known answers (computed here, independently of polylab)."""

import json
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import polars as pl
from engine_recordings import write_negrisk_arb

from polylab.backtest import run_backtest
from polylab.config import PolylabConfig, load_config


def only_sum_to_100(**env: str) -> PolylabConfig:
    return load_config(env={"RISK_MAX_POSITION": "1000", **env}).__replace__(
        strategies=("sum_to_100",)
    )


def taker_fee(shares: Decimal, p: Decimal, rate: Decimal) -> Decimal:
    return shares * rate * p * (1 - p)


def test_negrisk_set_is_bought_held_and_paid_at_resolution(tmp_path: Path) -> None:
    rec = tmp_path / "arb.jsonl"
    write_negrisk_arb(rec)
    res, _, _ = run_backtest(rec, only_sum_to_100(), out_dir=tmp_path / "run")
    n, p, rate = Decimal(100), Decimal("0.30"), Decimal("0.04")
    fees = 3 * taker_fee(n, p, rate)
    expected = n * 1 - 3 * n * p - fees  # one leg pays $1 a share at resolution
    assert res.trades == 1 and res.intents == 1 and res.rejections == 0
    assert Decimal(res.fees) / 10**6 == fees
    assert Decimal(res.realized) / 10**6 == expected == Decimal("7.48")
    assert res.pnl == res.realized and res.win_rate == 1.0
    fills = pl.read_parquet(tmp_path / "run/fills.parquet")
    assert fills.height == 3 and set(fills["price"]) == {300_000}
    summary = json.loads((tmp_path / "run/summary.json").read_text())
    assert summary["provenance"]["config_id"] == res.config_id
    assert len(summary["provenance"]["data_hash"]) == 64
    # the depth-aware window of the set at the 50-share reference size, labelled structural
    depth = pl.read_parquet(tmp_path / "run/depth_opportunities.parquet")
    assert res.depth_opportunities == depth.height >= 1
    assert set(depth["label"]) == {"structural"} and set(depth["kind"]) == {"negrisk"}
    assert {"opportunities", "orders", "fills", "positions"} <= {
        p.stem for p in (tmp_path / "run").glob("*.parquet")
    }


def test_unresolved_set_counts_at_payout_separately(tmp_path: Path) -> None:
    rec = tmp_path / "arb.jsonl"
    write_negrisk_arb(rec, resolve_winner=None)
    res, _, _ = run_backtest(rec, only_sum_to_100())
    marked = 3 * 100 * Decimal("0.25")  # marked at the YES bids
    cost = 3 * 100 * Decimal("0.30") + 3 * taker_fee(Decimal(100), Decimal("0.30"), Decimal("0.04"))
    assert Decimal(res.pnl) / 10**6 == marked - cost
    assert Decimal(res.pnl_at_payout) / 10**6 == 100 - cost


def test_min_edge_above_the_edge_means_no_trade(tmp_path: Path) -> None:
    rec = tmp_path / "arb.jsonl"
    write_negrisk_arb(rec)
    # edge per set is 1 − 0.90 − 0.0252 = 0.0748 $: a 0.08 $ minimum refuses it
    res, _, _ = run_backtest(rec, only_sum_to_100(SUMTO100_MIN_EDGE="0.08"))
    assert res.trades == 0 and res.intents == 0 and res.pnl == 0
    res, _, _ = run_backtest(rec, only_sum_to_100(SUMTO100_MIN_EDGE="0.07"))
    assert res.trades == 1


def test_position_limit_sizes_the_intent_to_fit(tmp_path: Path) -> None:
    rec = tmp_path / "arb.jsonl"
    write_negrisk_arb(rec)
    cfg = load_config(env={"RISK_MAX_POSITION": "50"}).__replace__(strategies=("sum_to_100",))
    res, recorder, _ = run_backtest(rec, cfg)
    # $50 at 0.90 per set (limit prices) buys at most 55.55 sets in 0.01 steps; each FOK BUY
    # leg spends their cost rounded up to the cent, as the venue reads a market BUY (16.665 $ →
    # 16.67 $), which buys whole 0.01 lots at 0.30: 55.56 shares (one lot of dust per leg)
    intent_sets = Decimal("55.55")
    budget = (intent_sets * Decimal("0.30")).quantize(Decimal("0.01"), rounding="ROUND_CEILING")
    sets = (budget / Decimal("0.30")).quantize(Decimal("0.01"), rounding="ROUND_FLOOR")
    assert sets == Decimal("55.56")
    fee = taker_fee(sets, Decimal("0.30"), Decimal("0.04"))  # 0.466704 $: charged 0.46671 $
    fees = 3 * fee.quantize(Decimal("0.00001"), rounding="ROUND_CEILING")
    assert res.trades == 1 and res.rejections == 0
    (fill, *_) = recorder.rows["fills"]
    assert Decimal(fill.size) / 10**6 == sets
    assert Decimal(res.realized) / 10**6 == sets - 3 * sets * Decimal("0.30") - fees


def test_risk_rejection_is_recorded_like_a_fill(tmp_path: Path) -> None:
    rec = tmp_path / "arb.jsonl"
    write_negrisk_arb(rec)
    cfg = load_config(env={"RISK_MAX_OPEN_ORDERS": "2"}).__replace__(strategies=("sum_to_100",))
    res, recorder, _ = run_backtest(rec, cfg)
    assert res.trades == 0 and res.rejections >= 1
    (rej, *_) = recorder.rows["rejections"]
    assert rej.rule == "open_orders" and "3 > 2" in rej.reason


def test_cli_backtest_json(tmp_path: Path) -> None:
    rec = tmp_path / "arb.jsonl"
    write_negrisk_arb(rec)
    cfg = tmp_path / "c.toml"
    cfg.write_text('strategies = ["sum_to_100"]\n[risk]\nmax_position_micros = 1000000000\n')
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "polylab.cli",
            "backtest",
            str(rec),
            "--config",
            str(cfg),
            "--json",
            "--out",
            str(tmp_path / "r"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    d = json.loads(out.stdout)
    for k in ("trades", "opportunities", "pnl", "fees", "win_rate", "config_id"):
        assert k in d
    assert d["trades"] == 1 and d["pnl"] == 7_480_000


def test_cli_backtest_bad_config_names_the_field(tmp_path: Path) -> None:
    rec = tmp_path / "arb.jsonl"
    write_negrisk_arb(rec)
    cfg = tmp_path / "c.toml"
    cfg.write_text('[sum_to_100]\nSUMTO100_MIN_EDGE = "-0.1"\n')
    out = subprocess.run(
        [sys.executable, "-m", "polylab.cli", "backtest", str(rec), "--config", str(cfg)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert out.returncode == 2 and "SUMTO100_MIN_EDGE" in out.stderr and "-0.1" in out.stderr


def test_a_bare_capture_backtests_and_metadata_can_come_from_a_file(
    shared_fixtures: Path, tmp_path: Path
) -> None:
    from fixture_data import write_capture

    rec = write_capture(shared_fixtures, tmp_path / "bare.jsonl")
    res, _, engine = run_backtest(rec)
    # 14 binary markets paired from their shared `market` ids; mirrored books: nothing to buy
    assert len(engine.catalog.groups()) == 14 and res.trades == 0 and res.events > 100
    assert len(res.config_id) == 64
    # a market-only recording of the arbitrage, its catalog given as a separate file
    full = tmp_path / "arb.jsonl"
    markets = write_negrisk_arb(full)
    bare = tmp_path / "arb-bare.jsonl"
    bare.write_text(
        "".join(
            ln for ln in full.read_text().splitlines(keepends=True) if '"channel":"meta"' not in ln
        )
    )
    meta = tmp_path / "meta.json"
    meta.write_text(
        json.dumps(
            {
                "markets": [
                    {
                        "condition_id": m.condition_id,
                        "token_ids": list(m.token_ids),
                        "neg_risk": True,
                        "event_id": m.event_id,
                        "fee": {"rate_micros": 40_000},
                    }
                    for m in markets
                ]
            }
        )
    )
    cfg = only_sum_to_100()
    without, _, _ = run_backtest(bare, cfg)
    with_meta, _, _ = run_backtest(bare, cfg, meta=meta)
    assert without.trades == 0  # three unrelated binary pairs: no neg-risk set is known
    assert with_meta.trades == 1 and with_meta.realized == 7_480_000

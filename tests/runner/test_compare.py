"""``polylab compare RUN_A RUN_B``: where two run folders differ (intents, fills, PnL by
strategy, the first divergence), as rich tables or one JSON object."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from polylab.backtest import run_backtest
from polylab.book.synthetic import SyntheticConfig, write_synthetic
from polylab.compare import INTENT_KEY, CompareError, compare_runs
from polylab.config import load_config

BASE = {"RISK_MAX_POSITION": "300"}


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three backtests of one synthetic recording: a, a again, and b with a higher min edge."""
    d = tmp_path_factory.mktemp("runs")
    rec = d / "s.jsonl.zst"
    write_synthetic(rec, SyntheticConfig(seed=3, duration_s=8.0, rate_hz=300.0))
    run_backtest(rec, load_config(env=BASE), out_dir=d / "a")
    run_backtest(rec, load_config(env=BASE), out_dir=d / "a2")
    run_backtest(rec, load_config(env={**BASE, "SUMTO100_MIN_EDGE": "0.02"}), out_dir=d / "b")
    return d


def test_same_config_same_data_is_identical(runs: Path) -> None:
    c = compare_runs(runs / "a", runs / "a2")
    assert c.same_data and c.same_config and c.identical_intents
    assert c.first_intent_divergence is None and c.first_fill_divergence is None
    assert c.totals["intents"].a == c.totals["intents"].b > 0
    assert all(m.rel == 0.0 for m in c.totals.values())


def test_different_config_shows_totals_strategies_and_first_divergence(runs: Path) -> None:
    c = compare_runs(runs / "a", runs / "b")
    assert c.same_data and not c.same_config and not c.identical_intents
    ia, ib = (json.loads((runs / n / "summary.json").read_text()) for n in ("a", "b"))
    t = c.totals["intents"]
    assert (t.a, t.b) == (ia["intents"], ib["intents"]) and t.a != t.b
    assert t.rel == pytest.approx((t.b - t.a) / t.a, abs=1e-6)
    s = c.by_strategy["sum_to_100"]
    assert s.intents.a == ia["by_strategy"]["sum_to_100"]["intents"]
    assert s.intents.b == ib["by_strategy"]["sum_to_100"]["intents"]
    assert c.totals["realized"].a == ia["realized"] and c.totals["realized"].b == ib["realized"]
    d = c.first_intent_divergence
    assert d is not None and d.fields
    import polars as pl

    xa = pl.read_parquet(runs / "a/intents.parquet").to_dicts()
    xb = pl.read_parquet(runs / "b/intents.parquet").to_dicts()
    same = [
        i for i in range(min(len(xa), len(xb))) if all(xa[i][k] == xb[i][k] for k in INTENT_KEY)
    ]
    assert d.index == next(i for i in range(len(xa)) if i not in same)  # the first that differs
    assert d.a == xa[d.index] and (d.b == xb[d.index] if d.index < len(xb) else d.b is None)


def test_not_a_run_folder_is_a_clear_error(tmp_path: Path, runs: Path) -> None:
    with pytest.raises(CompareError, match=r"no summary\.json"):
        compare_runs(tmp_path, runs / "a")


def test_cli_prints_tables_and_json(runs: Path, tmp_path: Path) -> None:
    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "polylab.cli", "compare", *args],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    out = cli(str(runs / "a"), str(runs / "b"), "--json")
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout)
    assert got["identical_intents"] is False and got["first_intent_divergence"]["fields"]
    assert set(got["by_strategy"]) >= {"sum_to_100", "clipper"}
    text = cli(str(runs / "a"), str(runs / "b"))
    assert text.returncode == 0 and "first divergence" in text.stdout
    assert "sum_to_100" in text.stdout
    bad = cli(str(tmp_path / "nope"), str(runs / "a"))
    assert bad.returncode == 2 and "not a run folder" in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1

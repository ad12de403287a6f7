"""``polylab runs list|show|compare`` over real run folders (backtests of a synthetic
recording), and run-folder tables that keep their schema when empty."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from typer.testing import CliRunner

from polylab.backtest import run_backtest
from polylab.book.synthetic import SyntheticConfig, write_synthetic
from polylab.compare import compare_runs
from polylab.config import load_config
from polylab.store.run_folder import TABLES, RunRecorder
from polylab.store.run_tables import ROW_TYPES, micros_columns, row_schema
from polylab.store.runs_cli import app

BASE = {"RISK_MAX_POSITION": "300"}


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """runs/: backtest-a, backtest-b (a higher min edge) and pipelines/p1/backtest (nested),
    started in that order."""
    d = tmp_path_factory.mktemp("desk")
    rec = d / "s.jsonl.zst"
    write_synthetic(rec, SyntheticConfig(seed=3, duration_s=6.0, rate_hz=300.0))
    runs = d / "runs"
    run_backtest(rec, load_config(env=BASE), out_dir=runs / "backtest-a")
    time.sleep(0.002)  # distinct start times (ns) order the list
    run_backtest(
        rec, load_config(env={**BASE, "SUMTO100_MIN_EDGE": "0.02"}), out_dir=runs / "backtest-b"
    )
    time.sleep(0.002)
    run_backtest(rec, load_config(env=BASE), out_dir=runs / "pipelines" / "p1" / "backtest")
    (runs / "pipelines" / "p1" / "notes.txt").write_text("not a run")
    _pipeline_folder(runs / "pipelines" / PIPELINE)
    return runs


PIPELINE = "20261128T101500Z-sweep"


def _pipeline_folder(folder: Path) -> None:
    """A sweep pipeline's run folder as ``polylab pipeline run`` leaves it: the executed
    notebook, ``provenance.json`` (started an hour before now) and the sweep's Parquet."""
    folder.mkdir(parents=True)
    (folder / "10-sweep.ipynb").write_text('{"cells": []}')
    started = time.time_ns() - 3_600 * 10**9
    prov = {
        "pipeline": "sweep",
        "run_id": "pr-1",
        "status": "ok",
        "folder": str(folder),
        "notebook": "pipelines/10-sweep.ipynb",
        "executed": "10-sweep.ipynb",
        "git_sha": "0123456789abcdef0123456789abcdef01234567",
        "parameters": {"seed": 7},
        "config_ids": ["c" * 64, "d" * 64],
        "data_hashes": {"recs/a.jsonl.zst": "e" * 64},
        "metrics": {"best_pnl_micros": 1_250_000, "configs": 2},
        "artifacts": {"sweep": "sweep.parquet"},
        "timings": {
            "started_ns": started,
            "finished_ns": started + 4 * 10**9,
            "duration_s": 4.0,
            "cells": [{"index": 0, "status": "completed", "duration_s": 0.1, "source": "x"}],
        },
        "versions": {"polylab": "0.1.0", "python": "3.11", "papermill": "2.7.0"},
    }
    (folder / "provenance.json").write_text(json.dumps(prov))
    pl.DataFrame({"config_id": ["c" * 64, "d" * 64], "pnl_micros": [1_250_000, -5]}).write_parquet(
        folder / "sweep.parquet"
    )


def _cli(*args: str) -> Any:
    res = CliRunner().invoke(app, list(args))
    return res


def _json(*args: str) -> Any:
    res = _cli(*args, "--json")
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout)


def _summary(folder: Path) -> dict[str, Any]:
    out: dict[str, Any] = json.loads((folder / "summary.json").read_text())
    return out


def test_empty_tables_keep_the_schema_of_their_row_struct(tmp_path: Path) -> None:
    RunRecorder().write(tmp_path / "empty", {})
    for kind in TABLES:
        df = pl.read_parquet(tmp_path / "empty" / f"{kind}.parquet")
        assert df.height == 0
        assert dict(df.schema) == row_schema(ROW_TYPES[kind]), kind
    fills = pl.read_parquet(tmp_path / "empty" / "fills.parquet")
    assert fills.schema["fee"] == pl.Int64 and fills.schema["side"] == pl.Utf8
    assert fills.schema["unwind"] == pl.Boolean
    settle = pl.read_parquet(tmp_path / "empty" / "settlements.parquet")
    assert settle.schema["shares"] == pl.Utf8  # nested: JSON text, as rows are written


def test_a_backtest_writes_the_same_schema_with_or_without_rows(root: Path) -> None:
    folder = root / "backtest-a"
    for kind in TABLES:
        df = pl.read_parquet(folder / f"{kind}.parquet")
        assert dict(df.schema) == row_schema(ROW_TYPES[kind]), kind
    assert pl.read_parquet(folder / "fills.parquet").height > 0
    assert pl.read_parquet(folder / "settlements.parquet").height == 0


def test_list_gives_every_run_newest_first_with_full_ids_and_micros(root: Path) -> None:
    got = _json("list", str(root))
    ids = [r["id"] for r in got["runs"]]
    assert ids == ["pipelines/p1/backtest", "backtest-b", "backtest-a", f"pipelines/{PIPELINE}"]
    for r in got["runs"][:3]:
        s = _summary(root / r["id"])
        assert r["config_id"] == s["config_id"] and len(r["config_id"]) == 64
        assert r["data_hash"] == s["provenance"]["data_hash"] and len(r["data_hash"]) == 64
        assert r["pnl_micros"] == s["pnl"] and r["fees_micros"] == s["fees"]
        assert r["realized_micros"] == s["realized"] and r["trades"] == s["trades"]
        assert r["started_ns"] == s["provenance"]["started_ns"]
        assert r["kind"] == "backtest"
        assert not {"pnl", "fees", "realized"} & set(r)
    assert _json("list", str(root), "--limit", "1")["runs"][0]["id"] == ids[0]
    text = _cli("list", str(root))
    assert text.exit_code == 0 and "backtest-b" in text.stdout


def test_show_gives_summary_and_every_table_with_counts_units_and_top_rows(root: Path) -> None:
    folder = root / "backtest-a"
    got = _json("show", "backtest-a", "--root", str(root), "--top", "3")
    s = _summary(folder)
    assert got["id"] == "backtest-a" and got["kind"] == "backtest"
    assert got["summary"]["pnl_micros"] == s["pnl"] and "pnl" not in got["summary"]
    assert got["summary"]["config_id"] == s["config_id"]
    for name, st in s["by_strategy"].items():
        assert got["summary"]["by_strategy"][name]["realized_micros"] == st["realized"]
    assert set(got["tables"]) == {p.stem for p in folder.glob("*.parquet")} >= set(TABLES)
    for name, info in got["tables"].items():
        df = pl.read_parquet(folder / f"{name}.parquet")
        micros = set(micros_columns(dict(df.schema)))
        assert info["rows"] == df.height
        want_cols = [f"{c}_micros" if c in micros else c for c in df.columns]
        assert list(info["columns"]) == want_cols
        want_rows = [
            {(f"{k}_micros" if k in micros else k): v for k, v in r.items()}
            for r in df.head(3).to_dicts()
        ]
        assert info["top"] == want_rows, name
    fills = got["tables"]["fills"]
    assert {"fee_micros", "cost_micros", "price_micros", "size_micros"} <= set(fills["columns"])
    assert "leg" in fills["columns"] and "ts_ns" in fills["columns"]
    empty = got["tables"]["settlements"]
    assert empty["rows"] == 0 and empty["top"] == []
    assert empty["columns"]["payout_micros"] == "Int64"
    text = _cli("show", str(folder))
    assert text.exit_code == 0 and "fills" in text.stdout and "pnl_micros" in text.stdout


def test_show_finds_a_run_by_path_by_nested_id_and_by_unique_prefix(root: Path) -> None:
    by_path = _json("show", str(root / "pipelines" / "p1" / "backtest"), "--root", str(root))
    by_id = _json("show", "pipelines/p1/backtest", "--root", str(root))
    by_prefix = _json("show", "pipelines/p", "--root", str(root))
    assert by_path["summary"] == by_id["summary"] == by_prefix["summary"]
    assert by_prefix["id"] == "pipelines/p1/backtest"


def test_pipeline_run_folders_are_listed_and_shown_with_their_provenance(root: Path) -> None:
    prov = json.loads((root / "pipelines" / PIPELINE / "provenance.json").read_text())
    (entry,) = [r for r in _json("list", str(root))["runs"] if r["kind"] == "pipeline"]
    assert entry["id"] == f"pipelines/{PIPELINE}" and entry["status"] == "ok"
    assert entry["config_ids"] == prov["config_ids"] and entry["config_id"] == "c" * 64
    assert entry["started_ns"] == prov["timings"]["started_ns"]
    assert entry["code_version"] == prov["git_sha"] and entry["seconds"] == 4.0
    got = _json("show", PIPELINE[:12], "--root", str(root / "pipelines"))
    assert got["kind"] == "pipeline" and got["provenance"] == prov
    assert got["files"] == ["10-sweep.ipynb", "provenance.json", "sweep.parquet"]
    sweep = got["tables"]["sweep"]
    assert sweep["rows"] == 2 and sweep["columns"] == {"config_id": "String", "pnl_micros": "Int64"}
    assert sweep["top"][0] == {"config_id": "c" * 64, "pnl_micros": 1_250_000}
    text = _cli("show", f"pipelines/{PIPELINE}", "--root", str(root))
    assert text.exit_code == 0 and "metrics.best_pnl_micros" in text.stdout
    res = _cli("compare", f"pipelines/{PIPELINE}", "backtest-a", "--root", str(root))
    assert res.exit_code == 2 and "no summary.json" in res.stderr


def test_bad_runs_end_with_one_line_and_exit_2(root: Path, tmp_path: Path) -> None:
    for args, words in [
        (("show", "backtest-", "--root", str(root)), "ambiguous"),
        (("show", "nope", "--root", str(root)), "no run folder 'nope'"),
        (("compare", "backtest-a", "zzz", "--root", str(root)), "'zzz'"),
    ]:
        res = _cli(*args)
        assert res.exit_code == 2, res.output
        assert words in res.stderr and len(res.stderr.strip().splitlines()) == 1
    f = tmp_path / "file"
    f.write_text("x")
    res = _cli("list", str(f))
    assert res.exit_code == 2 and "not a directory" in res.stderr
    assert _json("list", str(tmp_path / "none"))["runs"] == []
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "summary.json").write_text("{not json")
    res = _cli("show", str(tmp_path / "broken"))
    assert res.exit_code == 2 and "unreadable run summary" in res.stderr


def test_compare_is_polylab_compare_with_units(root: Path) -> None:
    got = _json("compare", "backtest-a", "backtest-b", "--root", str(root))
    c = compare_runs(root / "backtest-a", root / "backtest-b")
    assert got["identical_intents"] is c.identical_intents is False
    assert got["totals"]["fees_micros"] == {
        "a": c.totals["fees"].a,
        "b": c.totals["fees"].b,
        "rel": c.totals["fees"].rel,
    }
    assert got["totals"]["intents"]["a"] == c.totals["intents"].a
    assert "fees" not in got["totals"] and "pnl_micros" in got["totals"]
    for name, st in c.by_strategy.items():
        assert got["by_strategy"][name]["realized_micros"]["b"] == st.realized.b
    d = got["first_intent_divergence"]
    assert c.first_intent_divergence is not None
    assert d["index"] == c.first_intent_divergence.index
    assert "edge_micros" in d["a"] and "edge" not in d["a"]
    assert d["a"]["edge_micros"] == c.first_intent_divergence.a["edge"]  # type: ignore[index]
    text = _cli("compare", "backtest-a", "backtest-b", "--root", str(root))
    assert text.exit_code == 0 and "first divergence" in text.stdout


def test_polylab_has_the_runs_command(root: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "polylab.cli", "runs", "list", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=root.parent,
        env=os.environ | {"COLUMNS": "200"},
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["runs"][0]["id"] == "pipelines/p1/backtest"

"""``polylab ledger export``: every table as Parquet, integer *_micros money, schema kept for
empty tables; operator errors are one line and exit code 2."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import polars as pl
from store.ledger_data import fill
from typer.testing import CliRunner

from polylab.store import ledger_schema
from polylab.store.ledger import Ledger
from polylab.store.ledger_cli import app
from polylab.store.ledger_rows import ConfigRow

TABLES = {t.name for t in ledger_schema.metadata.sorted_tables}


def _export(url: str, out: Path) -> tuple[int, str]:
    res = CliRunner().invoke(app, ["export", "--url", url, str(out)])
    return res.exit_code, res.output


def test_an_empty_ledger_exports_every_table_with_its_schema(
    ledger_url: str, ledger: Ledger, tmp_path: Path
) -> None:
    code, output = _export(ledger_url, tmp_path / "out")
    assert code == 0, output
    assert {p.stem for p in (tmp_path / "out").glob("*.parquet")} == TABLES
    fills = pl.read_parquet(tmp_path / "out" / "fills.parquet")
    assert fills.height == 0
    assert fills.columns == [c.name for c in ledger_schema.fills.c]
    assert fills.schema["cost_micros"] == pl.Int64 and fills.schema["unwind"] == pl.Boolean
    assert pl.read_parquet(tmp_path / "out" / "configs.parquet").schema["body"] == pl.Utf8


def test_rows_export_exactly(ledger_url: str, ledger: Ledger, tmp_path: Path) -> None:
    rid = ledger.start_run(
        mode="live", venue="polymarket", config_id="c", code_version="v", start_cash_micros=7
    )
    rows = [fill(rid, n, cost_micros=2**60 + n) for n in range(3)]
    cfg = ConfigRow(
        id="c",
        body={"a": [1, 2]},
        git_sha="s",
        data_hashes={},
        metrics={"x": 1},
        gates={},
        created_ns=5,
    )
    ledger.write([*rows, cfg])
    code, output = _export(ledger_url, tmp_path)
    assert code == 0, output
    df = pl.read_parquet(tmp_path / "fills.parquet").sort("fill_key")
    assert df["cost_micros"].to_list() == [r.cost_micros for r in rows]
    assert df["fill_key"].to_list() == [r.fill_key for r in rows]
    money = [c for c in df.columns if c.endswith("_micros")]
    assert money and all(df.schema[c] == pl.Int64 for c in money)
    runs = pl.read_parquet(tmp_path / "runs.parquet")
    assert runs.select("mode", "start_cash_micros").rows() == [("live", 7)]
    (body,) = pl.read_parquet(tmp_path / "configs.parquet")["body"].to_list()
    assert json.loads(body) == {"a": [1, 2]}


def test_export_errors_are_one_line_and_exit_2(tmp_path: Path) -> None:
    missing = f"sqlite:///{tmp_path / 'none.db'}"
    code, output = _export(missing, tmp_path / "o")
    assert code == 2 and "no ledger file" in output and len(output.strip().splitlines()) == 1
    assert not (tmp_path / "none.db").exists()  # looking did not create one
    code, output = _export("mysql://h/db", tmp_path / "o")
    assert code == 2 and "'mysql'" in output
    code, output = _export("postgresql://u:pw-secret@127.0.0.1:1/db", tmp_path / "o")
    assert code == 2 and "127.0.0.1:1" in output and "pw-secret" not in output


def test_polylab_has_the_ledger_command(tmp_path: Path) -> None:
    ledger_url = f"sqlite:///{tmp_path / 'l.db'}"
    Ledger.open(ledger_url).close()
    code = "import sys; from polylab.cli import main; sys.argv[0] = 'polylab'; main()"
    args = [sys.executable, "-c", code, "ledger", "export", "--url", ledger_url, str(tmp_path)]
    out = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "runs.parquet").is_file()

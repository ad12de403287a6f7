"""``polylab configs`` as an operator runs it: real processes on a SQLite ledger."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from pipeline.promote_data import GATES, metrics, trading_config

from polylab.pipeline.promote import register_candidate
from polylab.store.ledger import Ledger

POLYLAB = [sys.executable, "-m", "polylab.cli"]


def _run(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    return subprocess.run(
        [*POLYLAB, "configs", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_list_show_diff_promote_rollback(tmp_path: Path) -> None:
    db = tmp_path / "runs" / "polylab.db"
    db.parent.mkdir()
    led = Ledger.open(f"sqlite:///{db}")
    try:
        good = register_candidate(
            led, trading_config(1_000), metrics=metrics(), data_hashes={}, git_sha="s1"
        )
        bad = register_candidate(
            led, trading_config(7_000), metrics=metrics(oos_trades=1), data_hashes={}, git_sha="s2"
        )
    finally:
        led.close()

    listed = _run(tmp_path, "list", "--json")  # the default ledger: runs/polylab.db
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)
    assert [r["id"] for r in rows] == [good.id, bad.id]  # full ids
    assert all(r["status"] == "candidate" and r["gates"] == {} for r in rows)

    refused = _run(tmp_path, "promote", bad.id[:8], "--gates", str(GATES), "--by", "ann")
    assert refused.returncode == 2
    assert refused.stderr.strip().splitlines() == [
        f"polylab: error: config {bad.id[:12]} failed its gates: oos_trades: "
        "out_of_sample.trades = 1 is not >= 3"
    ]

    ok = _run(
        tmp_path,
        "promote",
        good.id[:8],
        "--gates",
        str(GATES),
        "--by",
        "ann",
        "--reason",
        "validated",
        "--json",
    )
    assert ok.returncode == 0, ok.stderr
    rec = json.loads(ok.stdout)
    assert rec["config_id"] == good.id and rec["by"] == "ann" and rec["action"] == "promote"
    stored = json.loads((tmp_path / rec["record"]).read_text())
    assert stored["promotion"]["reason"] == "validated" and stored["gates"]["oos_trades"]["passed"]

    shown = _run(tmp_path, "show", good.id[:10], "--json")
    assert shown.returncode == 0, shown.stderr
    s = json.loads(shown.stdout)
    assert s["status"] == "promoted" and s["gates_passed"] is True
    assert [h["action"] for h in s["history"]] == ["promote"]
    text = _run(tmp_path, "show", good.id[:10])
    assert text.returncode == 0 and "promotion history" in text.stdout and good.id in text.stdout

    diff = _run(tmp_path, "diff", good.id[:8], bad.id[:8], "--json")
    assert diff.returncode == 0, diff.stderr
    d = json.loads(diff.stdout)
    assert {p["path"]: (p["a"], p["b"]) for p in d["params"]} == {
        "clipper.min_edge_micros": (1_000, 7_000),
        "sum_to_100.min_edge_micros": (1_000, 7_000),
    }
    deltas = {m["path"]: m["delta"] for m in d["metrics"]}
    assert deltas["out_of_sample.trades"] == 1 - 12 and deltas["in_sample.pnl_micros"] == 0

    assert _run(tmp_path, "list").returncode == 0
    nothing = _run(tmp_path, "rollback")
    assert nothing.returncode == 2
    assert nothing.stderr.strip() == "polylab: error: nothing to roll back to: one promotion only"


def test_operator_errors_are_one_line_exit_2(tmp_path: Path) -> None:
    missing = _run(tmp_path, "list")
    assert missing.returncode == 2 and len(missing.stderr.strip().splitlines()) == 1
    assert "no ledger file" in missing.stderr
    Ledger.open(f"sqlite:///{tmp_path / 'l.db'}").close()
    url = f"sqlite:///{tmp_path / 'l.db'}"
    unknown = _run(tmp_path, "show", "abcdef12", "--database-url", url)
    assert unknown.returncode == 2
    assert unknown.stderr.strip() == "polylab: error: no config 'abcdef12' in the ledger"
    bad_gates = tmp_path / "g.yaml"
    bad_gates.write_text("gates:\n  - {name: x, metric: a.b, min: many}\n")
    led = Ledger.open(url)
    try:
        cid = register_candidate(led, trading_config(1), metrics=metrics(), data_hashes={}).id
    finally:
        led.close()
    res = _run(tmp_path, "promote", cid, "--gates", str(bad_gates), "--database-url", url)
    assert res.returncode == 2 and len(res.stderr.strip().splitlines()) == 1
    assert "$.gates[0].min" in res.stderr and "(value 'many')" in res.stderr

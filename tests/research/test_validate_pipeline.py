"""The validate pipeline notebook runs under papermill on small data: walk-forward over the
slices of one recording, a held-out recording, paper validation on the built-in simulator; it
stores the candidate in the ledger, writes validation.json and outputs.json."""

from __future__ import annotations

import json
from pathlib import Path

import msgspec
import yaml
from nb_run import run_notebook

from polylab.book.synthetic import SyntheticConfig, write_synthetic
from polylab.config import PolylabConfig, config_id
from polylab.pipeline.outputs import read_outputs
from polylab.research.paper_check import diff_pct
from polylab.store.ledger import Ledger

ROOT = Path(__file__).resolve().parents[2]
NB = ROOT / "pipelines/20-validate.ipynb"


def test_validate_pipeline_runs_and_registers_the_candidate(tmp_path: Path) -> None:
    rec, held = tmp_path / "rec.jsonl.zst", tmp_path / "held.jsonl.zst"
    write_synthetic(rec, SyntheticConfig(seed=3, duration_s=9.0, rate_hz=150.0))
    write_synthetic(held, SyntheticConfig(seed=11, duration_s=3.0, rate_hz=150.0))
    db = f"sqlite:///{tmp_path / 'ledger.db'}"
    out = tmp_path / "run"
    params = yaml.safe_load((ROOT / "pipelines/params/validate.yaml").read_text())
    params.update(
        out_dir=str(out),
        database_url=db,
        recordings=[str(rec)],
        held_out=[str(held)],
        grid={"min_edge": "0.001,0.02", "min_liquidity": "10,200"},
        folds=2,
        paper_seconds=3.0,
        workers=1,
    )
    run_notebook(NB, tmp_path / "20.ipynb", params, tmp_path)

    outputs = read_outputs(out)
    doc = json.loads((out / "validation.json").read_text())
    cid = doc["candidate_id"]
    assert outputs.config_ids == [cid] and outputs.artifacts == {"validation": "validation.json"}
    m = outputs.metrics
    assert len(m["folds"]) == 2 and m["held_out"]["events"] > 0
    for key in ("in_sample", "out_of_sample", "held_out"):
        for f in ("trades", "pnl_micros", "fees_micros", "max_drawdown_micros", "fill_rate"):
            assert isinstance(m[key][f], int | float), (key, f)
    assert m["out_of_sample"]["pnl_micros"] == sum(
        f["out_of_sample"]["pnl_micros"] for f in m["folds"]
    )
    paper = m["paper"]
    assert paper["diff_pct"] == diff_pct(paper["pnl_micros"], paper["backtest_pnl_micros"])
    assert paper["identical_fills"] is True
    # every data file read is hashed: the recording, its three slices, the held-out file
    assert str(rec) in outputs.data_hashes and str(held) in outputs.data_hashes
    assert len(outputs.data_hashes) == 5

    led = Ledger.open(db)
    try:
        row = led.find_config(cid)
    finally:
        led.close()
    assert row.status == "candidate" and row.gates == {}
    assert row.metrics == m and row.data_hashes == outputs.data_hashes
    assert (
        config_id(msgspec.convert(row.body, PolylabConfig)) == cid
    )  # the body is the config the id names
    text = (tmp_path / "20.ipynb").read_text()
    assert "application/vnd.plotly" in text

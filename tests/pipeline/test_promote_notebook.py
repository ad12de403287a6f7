"""pipelines/30-promote.ipynb under papermill on a tiny ledger: it promotes the newest
validated candidate when its gates pass, and fails the run, naming the gate, when not (and
the failed run's outputs and provenance name the refused config and its failed gates)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from nb_run import run_notebook
from papermill.exceptions import PapermillExecutionError
from pipeline.promote_data import GATES, ROOT, metrics, trading_config
from pipeline_helpers import Webhook

from polylab.ops.alerts import AlertConfig
from polylab.pipeline.outputs import read_outputs
from polylab.pipeline.promote import register_candidate
from polylab.pipeline.provenance import read_provenance
from polylab.pipeline.run import run_pipeline
from polylab.store.ledger import Ledger
from polylab.store.ledger_configs import PipelineRunRow

NB = ROOT / "pipelines" / "30-promote.ipynb"


def _validated(db: str, **kw: object) -> str:
    """A candidate, registered as a validate pipeline run's output would be."""
    led = Ledger.open(db)
    try:
        cid = register_candidate(
            led, trading_config(2_000), metrics=metrics(**kw), data_hashes={"r.jsonl": "b" * 64}
        ).id
        run = PipelineRunRow(
            id="v1",
            name="validate",
            status="running",
            started_ns=time.time_ns(),
            folder="runs/pipelines/x-validate",
            git_sha="s",
            params={},
        )
        led.start_pipeline_run(run)
        led.finish_pipeline_run("v1", status="ok", config_ids=[cid])
    finally:
        led.close()
    return cid


def _params(tmp_path: Path, db: str) -> dict[str, object]:
    return {
        "database_url": db,
        "gates": str(GATES),
        "redis_url": "",
        "reason": "nb test",
        "json_dir": str(tmp_path / "configs"),
        "out_dir": str(tmp_path / "run"),
    }


def test_promotes_the_latest_validated_candidate(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'ledger.db'}"
    cid = _validated(db)
    run_notebook(NB, tmp_path / "out.ipynb", _params(tmp_path, db), tmp_path)
    outputs = read_outputs(tmp_path / "run")
    assert outputs.config_ids == [cid]
    assert outputs.metrics == {"promoted": True, "gates_passed": 4, "gates": 4}
    assert outputs.data_hashes == {"r.jsonl": "b" * 64}
    rec = json.loads((tmp_path / "run" / outputs.artifacts["promotion"]).read_text())
    assert rec["config_id"] == cid and rec["promotion"]["reason"] == "nb test"
    assert (tmp_path / "configs" / f"{cid}.json").is_file()
    led = Ledger.open(db)
    try:
        promoted = led.promoted_config()
    finally:
        led.close()
    assert promoted is not None and promoted.id == cid and promoted.gates["oos_pnl"]["passed"]


def test_a_failing_gate_fails_the_run_and_promotes_nothing(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'ledger.db'}"
    cid = _validated(db, oos_trades=2)
    with pytest.raises(PapermillExecutionError) as exc:
        run_notebook(NB, tmp_path / "out.ipynb", _params(tmp_path, db), tmp_path)
    assert exc.value.ename == "PromotionError"
    assert exc.value.evalue == (
        f"config {cid[:12]} failed its gates: oos_trades: out_of_sample.trades = 2 is not >= 3"
    )
    led = Ledger.open(db)
    try:
        assert led.promoted_config() is None
        row = led.get_config(cid)
    finally:
        led.close()
    assert row is not None and row.gates["oos_trades"]["passed"] is False  # judged, recorded
    # what the run hands back names what it refused (no promotion record: nothing promoted)
    outputs = read_outputs(tmp_path / "run")
    assert outputs.config_ids == [cid] and outputs.artifacts == {}
    assert outputs.metrics == {
        "promoted": False,
        "refused": cid,
        "gates_passed": 3,
        "gates": 4,
        "failed_gates": {"oos_trades": "out_of_sample.trades = 2 is not >= 3"},
    }
    assert not (tmp_path / "run" / "promotion.json").exists()


@pytest.mark.slow
def test_a_refused_promote_run_names_the_config_and_its_failed_gates_in_its_provenance(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, webhook: Webhook
) -> None:
    """``polylab pipeline run promote`` on a candidate that fails two gates: the run fails,
    and its provenance.json and ledger row carry the refused config id and the failed gates."""
    monkeypatch.chdir(tmp_path)
    db = f"sqlite:///{tmp_path / 'ledger.db'}"
    cid = _validated(db, oos_trades=2, oos_pnl=-250_000)
    res = run_pipeline(
        "promote",
        pipelines=ROOT / "pipelines",
        root=tmp_path / "runs",
        database_url=db,
        overrides={"gates": str(GATES), "json_dir": str(tmp_path / "configs"), "redis_url": ""},
        alerts=AlertConfig(webhook_url=webhook.url),
    )
    assert res.status == "failed"
    failed = {
        "oos_trades": "out_of_sample.trades = 2 is not >= 3",
        "oos_pnl": "out_of_sample.pnl_at_payout_micros = -250000 is not >= 0",
    }
    prov = read_provenance(res.folder)
    assert prov.status == "failed" and prov.error is not None
    assert prov.error.ename == "PromotionError" and cid[:12] in prov.error.evalue
    assert prov.config_ids == [cid]
    assert prov.metrics["refused"] == cid and prov.metrics["promoted"] is False
    assert prov.metrics["failed_gates"] == failed
    assert prov.metrics["gates_passed"] == 2 and prov.metrics["gates"] == 4
    assert prov.data_hashes == {"r.jsonl": "b" * 64}
    led = Ledger.open(db)
    try:
        (row,) = led.pipeline_runs(name="promote")
        assert led.promoted_config() is None
    finally:
        led.close()
    assert row.status == "failed" and row.config_ids == [cid]
    assert row.metrics["failed_gates"] == failed
    assert len(webhook.texts) == 1 and "PromotionError" in webhook.texts[0]

"""``polylab pipeline run``: the sweep pipeline end to end through the real command (run folder,
executed notebook, provenance.json, ledger row), and failing runs (recorded, alerted, one line,
exit 2)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import polars as pl
import pytest
from pipeline_helpers import PIPELINES, Project, Webhook, nap_pipeline
from store.ledger_data import pg_url

from polylab.pipeline.provenance import read_provenance
from polylab.pipeline.run import (
    PipelineBusy,
    PipelineError,
    _lock,
    load_params,
    parse_overrides,
    run_pipeline,
)
from polylab.store.ledger import Ledger


def _sha(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def _ledger(project: Project) -> Ledger:
    return Ledger.open(f"sqlite:///{project.root / 'ledger.db'}")


@pytest.mark.slow
def test_pipeline_run_sweep_end_to_end(project: Project) -> None:
    res = project.polylab(
        "pipeline", "run", "sweep", "--pipelines", str(PIPELINES), "-f", str(project.params),
        "--json",
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    prov_json = json.loads(res.stdout)
    folder = Path(prov_json["folder"])
    # runs/pipelines/<UTC time>-sweep/ under the folder the command ran in
    assert folder.parent == project.root / "runs" / "pipelines"
    assert folder.name.endswith("Z-sweep") and folder.name[8] == "T"
    prov = read_provenance(folder)
    assert prov.status == "ok" and prov.pipeline == "sweep" and prov.error is None
    assert prov_json["run_id"] == prov.run_id

    # the executed notebook, with outputs, and what the notebook wrote
    nb = json.loads((folder / "sweep.ipynb").read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert any(c.get("outputs") for c in code)
    assert any("injected-parameters" in c["metadata"].get("tags", []) for c in code)
    df = pl.read_parquet(folder / "sweep.parquet")
    assert df.height == 4  # the 2 × 2 grid

    # hashes: of the files the sweep read, matching their bytes; the held-out one absent
    r1, r2, _held = project.recordings
    assert prov.data_hashes == {
        "data/rec-1.jsonl.zst": _sha(r1),
        "data/rec-2.jsonl.zst": _sha(r2),
    }
    assert "data/rec-3.jsonl.zst" not in json.dumps(prov.data_hashes)

    # config ids: the best two by PnL at payout (ties by marked PnL, then grid order), as in
    # sweep.parquet
    best = df.sort(
        ["pnl_at_payout_micros", "pnl_micros", "config_index"], descending=[True, True, False]
    ).head(2)
    assert prov.config_ids == best["config_id"].to_list()
    assert all(len(c) == 64 for c in prov.config_ids)
    assert prov.metrics["configs"] == 4 and prov.metrics["held_out"] == 1
    assert prov.metrics["best"]["pnl_at_payout_micros"] == best["pnl_at_payout_micros"][0]
    assert prov.metrics["best"]["pnl_micros"] == best["pnl_micros"][0]
    assert prov.artifacts == {"sweep": "sweep.parquet"}

    # parameters (the params file's, plus the runner's own), code and timings
    assert prov.parameters["held_out"] == ["data/rec-3.jsonl.zst"]
    assert prov.parameters["grid"] == {"min_edge": "0.001:0.004:0.003", "min_liquidity": [10, 200]}
    assert prov.parameters["out_dir"] == str(folder)
    assert prov.parameters["database_url"].endswith("ledger.db")
    assert len(prov.git_sha.removesuffix("-dirty")) == 40 or prov.git_sha == "unknown"
    assert prov.versions.papermill and prov.versions.python and prov.versions.polylab
    t = prov.timings
    assert t.finished_ns > t.started_ns and t.duration_s > 0
    assert len(t.cells) == len(code)
    assert all(c.status == "completed" and c.duration_s is not None for c in t.cells)
    # the default limit per cell, one attempt
    assert prov.cell_timeout_s == 900.0 and not prov.retried
    assert [(a.number, a.outcome) for a in prov.attempts] == [(1, "ok")]

    # the ledger row
    led = _ledger(project)
    try:
        (row,) = [r for r in led.pipeline_runs(name="sweep") if r.id == prov.run_id]
    finally:
        led.close()
    assert row.status == "ok" and row.error == ""
    assert row.folder == str(folder)
    assert row.config_ids == prov.config_ids
    assert row.metrics == prov.metrics
    assert row.git_sha == prov.git_sha
    assert row.finished_ns == t.finished_ns

    # `pipeline list` shows it
    listed = project.polylab(
        "pipeline", "list", "--pipelines", str(PIPELINES), "--json", "--name", "sweep"
    )
    assert listed.returncode == 0, listed.stderr
    doc = json.loads(listed.stdout)
    assert "sweep" in doc["pipelines"]
    assert prov.run_id in [r["id"] for r in doc["runs"]]


@pytest.mark.slow
@pytest.mark.parametrize("db", ["sqlite", "postgresql"])
def test_a_failing_cell_is_recorded_alerted_and_one_line(
    project: Project, webhook: Webhook, request: pytest.FixtureRequest, db: str
) -> None:
    if db == "sqlite":
        url = f"sqlite:///{project.root / 'failing.db'}"
    else:
        url = pg_url(request.getfixturevalue("pg_base"), request.getfixturevalue("pg_schema"))
    res = project.polylab(
        "pipeline", "run", "sweep", "--pipelines", str(PIPELINES), "-f", str(project.params),
        "-p", "strategy=no_such_strategy", "--database-url", url,
        SLACK_WEBHOOK_URL=webhook.url,
    )  # fmt: skip
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    line = lines[0]
    assert line.startswith("polylab: error: pipeline sweep failed at cell ")
    assert "SweepError" in line and "no_such_strategy" in line

    led = Ledger.open(url)
    try:
        (row,) = led.pipeline_runs(name="sweep")
    finally:
        led.close()
    assert row.status == "failed" and row.finished_ns is not None
    assert line == f"polylab: error: {row.error}"

    prov = read_provenance(row.folder)
    assert prov.status == "failed" and prov.run_id == row.id
    assert prov.error is not None and prov.error.ename == "SweepError"
    failed = [c for c in prov.timings.cells if c.status == "failed"]
    assert [c.index for c in failed] == [prov.error.cell]
    assert (Path(row.folder) / "sweep.ipynb").is_file()  # the executed notebook, error shown
    assert (Path(row.folder) / "kernel.log").is_file()  # the kernel's own output, kept aside

    # the alert went out (sent before the command returned)
    assert len(webhook.texts) == 1
    text = webhook.texts[0]
    assert "pipeline sweep failed" in text and "SweepError" in text
    assert Path(row.folder).name in text and row.id in text


@pytest.mark.slow
def test_an_unknown_parameter_fails_the_run_without_a_kernel(
    project: Project, webhook: Webhook
) -> None:
    url = f"sqlite:///{project.root / 'unknown.db'}"
    res = project.polylab(
        "pipeline", "run", "sweep", "--pipelines", str(PIPELINES), "--database-url", url,
        "-p", "stratgy=clipper", SLACK_WEBHOOK_URL=webhook.url,
    )  # fmt: skip
    assert res.returncode == 2
    (line,) = res.stderr.strip().splitlines()
    assert "unknown parameter 'stratgy'" in line and "strategy" in line
    led = Ledger.open(url)
    try:
        (row,) = led.pipeline_runs()
    finally:
        led.close()
    assert row.status == "failed" and "stratgy" in row.error
    prov = read_provenance(row.folder)
    assert prov.error is not None and prov.error.cell is None
    assert prov.parameters["stratgy"] == "clipper"
    assert len(webhook.texts) == 1 and "stratgy" in webhook.texts[0]


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["no_such_pipeline"], ["no pipeline 'no_such_pipeline'", "sweep"]),
        (["sweep", "-p", "novalue"], ["-p 'novalue'", "key=value"]),
        (["sweep", "-p", "out_dir=/tmp/x"], ["'out_dir'", "set by the pipeline runner"]),
        (["sweep", "-f", "missing.yaml"], ["no params file", "missing.yaml"]),
    ],
)
def test_bad_input_is_one_line_and_nothing_is_recorded(
    project: Project, args: list[str], words: list[str]
) -> None:
    url = f"sqlite:///{project.root / 'bad-input.db'}"
    res = project.polylab(
        "pipeline", "run", *args, "--pipelines", str(PIPELINES), "--database-url", url
    )
    assert res.returncode == 2
    (line,) = res.stderr.strip().splitlines()
    assert line.startswith("polylab: error: ")
    for w in words:
        assert w in line
    if (project.root / "bad-input.db").exists():
        led = Ledger.open(url)
        try:
            assert led.pipeline_runs() == []
        finally:
            led.close()


def test_no_pipelines_folder_names_the_way_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(PipelineError, match="--pipelines"):
        run_pipeline("sweep", root=tmp_path / "runs", database_url=f"sqlite:///{tmp_path}/l.db")


def test_a_second_run_of_one_pipeline_is_refused_while_the_first_holds_the_lock(
    tmp_path: Path,
) -> None:
    root = tmp_path / "runs"
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    with _lock(root.resolve(), "sweep"):
        with pytest.raises(PipelineBusy, match="already running"):
            run_pipeline("sweep", pipelines=PIPELINES, root=root, database_url=url)
        # another pipeline is not held by it
        with _lock(root.resolve(), "validate"):
            pass
    led = Ledger.open(url)
    try:
        assert led.pipeline_runs() == []
    finally:
        led.close()


def test_overrides_and_params_read_numbers_as_yaml_1_2(tmp_path: Path) -> None:
    got = parse_overrides(
        ["folds=3", "edge=0.5", "held_out=[a.jsonl, b.jsonl]", "range=10:50:10", "name=x", "e="]
    )
    assert got == {
        "folds": 3,
        "edge": 0.5,
        "held_out": ["a.jsonl", "b.jsonl"],
        "range": "10:50:10",  # YAML 1.1 would read 39010 (base 60)
        "name": "x",
        "e": None,
    }
    p = tmp_path / "p.yaml"
    p.write_text("grid:\n  min_liquidity: 10:50:10\n  min_edge: 0.001:0.01:0.001\nseed: 007\n")
    assert load_params(p) == {
        "grid": {"min_liquidity": "10:50:10", "min_edge": "0.001:0.01:0.001"},
        "seed": "007",
    }
    p.write_text("- a\n- b\n")
    with pytest.raises(PipelineError, match="mapping"):
        load_params(p)
    p.write_text("a: [1,\n")
    with pytest.raises(PipelineError, match="not valid YAML"):
        load_params(p)


@pytest.mark.slow
def test_a_cell_over_its_time_limit_fails_the_run(tmp_path: Path, webhook: Webhook) -> None:
    pipes = tmp_path / "pipelines"
    nap_pipeline(pipes, seconds=60.0)
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    from polylab.ops.alerts import AlertConfig

    res = run_pipeline(
        "nap",
        pipelines=pipes,
        root=tmp_path / "runs",
        database_url=url,
        cell_timeout_s=3.0,
        alerts=AlertConfig(webhook_url=webhook.url),
    )
    assert res.status == "failed"
    assert res.provenance.error is not None
    assert "CellTimeoutError" in res.error and "timed out" in res.error
    # a stall both times: retried once on a fresh kernel, then failed
    assert res.provenance.retried and "(on its retry: 2 attempts)" in res.error
    assert [(a.number, a.outcome) for a in res.provenance.attempts] == [
        (1, "timeout"),
        (2, "timeout"),
    ]
    # the cell that was running is named
    assert res.provenance.error.cell is not None and "(time.sleep(seconds))" in res.error
    (stuck,) = [c for c in res.provenance.timings.cells if c.index == res.provenance.error.cell]
    assert stuck.source == "time.sleep(seconds)"
    assert len(webhook.texts) == 1 and "pipeline nap failed" in webhook.texts[0]
    led = Ledger.open(url)
    try:
        (row,) = led.pipeline_runs()
    finally:
        led.close()
    assert row.status == "failed" and row.error == res.error


@pytest.mark.slow
def test_a_database_password_never_reaches_the_notebook_or_the_run_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    """The machine's PostgreSQL trusts local connections, so a URL carrying a password still
    connects: the run works, and the password is nowhere in the folder or the ledger row."""
    base = request.getfixturevalue("pg_base")
    schema = request.getfixturevalue("pg_schema")
    secret = "s3cret-Passw0rd"
    url = pg_url(base.replace("postgres@", f"postgres:{secret}@"), schema)
    pipes = tmp_path / "pipelines"
    nap_pipeline(pipes, seconds=0.0)
    # given only as an argument, not through DATABASE_URL: refused before anything runs
    monkeypatch.delenv("DATABASE_URL", raising=False)
    with pytest.raises(PipelineError, match="only through DATABASE_URL"):
        run_pipeline("nap", pipelines=pipes, root=tmp_path / "runs", database_url=url)
    monkeypatch.setenv("DATABASE_URL", url)
    res = run_pipeline("nap", pipelines=pipes, root=tmp_path / "runs")
    assert res.ok, res.error
    assert res.provenance.parameters["database_url"].startswith(
        "postgresql+psycopg://postgres:***@"
    )
    for f in res.folder.iterdir():
        assert secret not in f.read_text(errors="replace"), f.name
    led = Ledger.open(url)
    try:
        (row,) = led.pipeline_runs()
    finally:
        led.close()
    assert row.status == "ok" and secret not in json.dumps(row.params)

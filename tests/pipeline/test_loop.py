"""The research loop end to end, one command per step, as the README shows it: recordings →
``polylab pipeline run sweep`` → ``run validate`` → ``run promote`` → ``polylab run --promoted``
trading the promoted config, on small data.

Written against the pipeline contract (``pipelines/20-validate.ipynb`` and
``pipelines/30-promote.ipynb`` with their params, ``polylab run --promoted``); it skips, naming
what is missing, until those parts are in the tree.
"""

from __future__ import annotations

import json

import pytest
from pipeline_helpers import PIPELINES, Project

from polylab.store.ledger import Ledger

_MISSING = [
    str(p.relative_to(PIPELINES.parent))
    for p in (PIPELINES / "20-validate.ipynb", PIPELINES / "30-promote.ipynb")
    if not p.is_file()
]


def _runner_has_promoted() -> bool:
    from polylab.runner import service_cli

    return "promoted" in service_cli.run_cmd.__code__.co_varnames


@pytest.mark.slow
@pytest.mark.skipif(bool(_MISSING), reason=f"not in the tree yet: {_MISSING}")
def test_recordings_to_a_runner_trading_the_promoted_config(project: Project) -> None:
    if not _runner_has_promoted():
        pytest.skip("`polylab run --promoted` is not in the tree yet")
    pipes = ["--pipelines", str(PIPELINES)]
    recs = "[data/rec-1.jsonl.zst, data/rec-2.jsonl.zst]"  # as the README: rec-3 held out

    # 1. sweep (rec-3 held out)
    sweep = project.polylab("pipeline", "run", "sweep", *pipes, "-f", str(project.params), "--json")
    assert sweep.returncode == 0, sweep.stderr
    assert json.loads(sweep.stdout)["config_ids"]

    # 2. validate: walk-forward (train rec-1, test rec-2) on the same small grid, the held-out
    #    rec-3 replayed once, no paper step → one candidate
    validate = project.polylab(
        "pipeline", "run", "validate", *pipes,
        "-p", f"recordings={recs}",
        "-p", "held_out=[data/rec-3.jsonl.zst]",
        "-p", "strategy=sum_to_100",
        "-p", 'grid={min_edge: "0.001:0.004:0.003", min_liquidity: "10,200"}',
        "-p", "folds=1",
        "-p", "paper_seconds=0",
        "-p", "seed=1",
        "--json",
    )  # fmt: skip
    assert validate.returncode == 0, validate.stderr
    (candidate,) = json.loads(validate.stdout)["config_ids"]
    led = Ledger.open(f"sqlite:///{project.root / 'ledger.db'}")
    try:
        cfg = led.get_config(candidate)
        assert cfg is not None and cfg.status == "candidate"
        assert {"in_sample", "out_of_sample"} <= set(cfg.metrics)
    finally:
        led.close()

    # 3. promote the newest validated candidate through the gates
    promote = project.polylab(
        "pipeline", "run", "promote", *pipes,
        "-p", "config_id=latest",
        "-p", f"gates={PIPELINES / 'gates.yaml'}",
        "-p", "by=loop-test",
        "-p", "reason=end-to-end test",
        "--json",
    )  # fmt: skip
    assert promote.returncode == 0, promote.stderr
    assert json.loads(promote.stdout)["config_ids"] == [candidate]

    # 4. the runner trades the promoted config
    run = project.polylab("run", "--promoted", "--seconds", "3", "--json", "--http-port", "0")
    assert run.returncode == 0, run.stderr
    led = Ledger.open(f"sqlite:///{project.root / 'ledger.db'}")
    try:
        promoted = led.promoted_config()
        assert promoted is not None and promoted.id == candidate
        assert promoted.gates  # the gate results are stored with it
        runs = led.rows("runs")
    finally:
        led.close()
    assert [r for r in runs if r["config_id"] == candidate], runs

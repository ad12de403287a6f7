"""tests/pipeline fixtures: the ledger fixtures of ``tests/store`` (a SQLite file and the
machine's PostgreSQL) for the promotion tests; a small project folder (synthetic recordings, a
small sweep) and a local webhook receiver standing in for Slack for the pipeline runner's.

Pipelines run for real: papermill on the project's kernel, Dask workers, the ledger on a
SQLite file (and on the machine's PostgreSQL where a test asks for it)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pipeline_helpers import Project, Webhook, webhook_receiver
from store.conftest import ledger, ledger_url, pg_base, pg_schema

from polylab.book.synthetic import SyntheticConfig, write_synthetic

__all__ = ["ledger", "ledger_url", "pg_base", "pg_schema", "project", "webhook"]


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Project:
    """A fresh project folder per test module (recordings made once)."""
    proj = Project(tmp_path_factory.mktemp("project"))
    (proj.root / "data").mkdir()
    for seed, rec in zip((3, 11, 5), proj.recordings, strict=True):
        write_synthetic(rec, SyntheticConfig(seed=seed, duration_s=6.0, rate_hz=150.0))
    proj.params.write_text(
        "recordings: [data/rec-1.jsonl.zst, data/rec-2.jsonl.zst, data/rec-3.jsonl.zst]\n"
        "held_out: [data/rec-3.jsonl.zst]\n"
        "strategy: sum_to_100\n"
        "grid:\n"
        '  min_edge: "0.001:0.004:0.003"\n'
        "  min_liquidity: [10, 200]\n"
        "workers: 1\n"
        "top: 2\n"
    )
    return proj


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    """A local Slack-like webhook (``pipeline_helpers.webhook_receiver``)."""
    with webhook_receiver() as hook:
        yield hook

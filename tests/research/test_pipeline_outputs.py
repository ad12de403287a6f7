"""The outputs contract between a pipeline notebook and the pipeline runner."""

from __future__ import annotations

from pathlib import Path

from polylab.pipeline.outputs import (
    PipelineOutputs,
    data_hashes,
    git_sha,
    read_outputs,
    write_outputs,
)


def test_outputs_round_trip_and_missing_reads_empty(tmp_path: Path) -> None:
    assert read_outputs(tmp_path) == PipelineOutputs()
    data = tmp_path / "rec.jsonl"
    data.write_bytes(b'{"a": 1}\n')
    out = PipelineOutputs(
        metrics={"out_of_sample": {"pnl_micros": 1_250_000, "trades": 3}},
        config_ids=["ab" * 32],
        data_hashes=data_hashes([data]),
        artifacts={"sweep": "sweep.parquet"},
    )
    write_outputs(tmp_path / "run", out)
    assert read_outputs(tmp_path / "run") == out
    # the hash is of the bytes: another file with other bytes hashes differently
    other = tmp_path / "other.jsonl"
    other.write_bytes(b'{"a": 2}\n')
    assert data_hashes([other])[str(other)] != out.data_hashes[str(data)]


def test_git_sha_is_a_full_commit_in_a_checkout() -> None:
    sha = git_sha()
    assert sha == "unknown" or len(sha.removesuffix("-dirty")) == 40

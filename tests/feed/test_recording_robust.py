"""Nothing a file holds can stop a replay or a backtest (the ``polylab`` CLI, run for real).

A bad line is counted and skipped; a cut or corrupt zstd stream ends the read with what was
read, reported as ``truncated`` with the bytes read; a file that is empty or not a recording
is one line on stderr and exit code 2.
"""

from __future__ import annotations

import functools
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import msgspec
import pytest
import zstandard
from typer.testing import CliRunner

from polylab.book.synthetic import SyntheticConfig, generate
from polylab.cli import app
from polylab.feed.recording import Record, RecordingError, RecordingReader


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    """The ``polylab`` command in this process (typer's runner: exit code, stdout, stderr)."""
    r = CliRunner().invoke(app, list(args))
    if r.exception is not None and not isinstance(r.exception, SystemExit):
        raise r.exception
    return subprocess.CompletedProcess(list(args), r.exit_code, r.stdout, r.stderr)


def run_process(*args: str) -> subprocess.CompletedProcess[str]:
    """The ``polylab`` command as its own process."""
    return subprocess.run(
        [sys.executable, "-m", "polylab.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def replay_json(path: Path) -> dict[str, Any]:
    p = run_cli("replay", str(path), "--json")
    assert p.returncode == 0, p.stderr
    assert "Traceback" not in p.stderr
    out: dict[str, Any] = json.loads(p.stdout)
    return out


def one_line_error(p: subprocess.CompletedProcess[str], *words: str) -> None:
    assert p.returncode == 2, (p.returncode, p.stderr)
    assert p.stdout == "" and "Traceback" not in p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1, p.stderr
    for w in words:
        assert w in lines[0], lines[0]


@functools.cache
def _lines() -> list[bytes]:
    """A small synthetic recording, one JSON line per record."""
    enc = msgspec.json.Encoder()
    cfg = SyntheticConfig(seed=5, duration_s=6.0, binary_markets=3)
    return [enc.encode(Record(at, ch, p)) + b"\n" for at, ch, p in generate(cfg)]


def write_lines(path: Path, lines: list[bytes]) -> Path:
    path.write_bytes(b"".join(lines))
    return path


def market_frames(lines: list[bytes]) -> int:
    return sum(1 for x in lines if b'"channel":"market"' in x)


def test_bad_lines_are_counted_and_skipped(tmp_path: Path) -> None:
    lines = list(_lines())
    clean = replay_json(write_lines(tmp_path / "clean.jsonl", lines))
    assert clean["malformed"] == 0 and clean["frames"] == market_frames(lines)
    bad = list(lines)
    bad[40] = bad[40][:30] + b"\xff\xfe" + bad[40][30:]  # invalid UTF-8 at line 41
    bad[50] = b'{"recv_ns":"x","channel":1,"payload":[2]}\n'  # wrong types
    bad[60] = b'{"recv_ns": 1, "chan\n'  # broken JSON
    lost = market_frames([lines[40], lines[50], lines[60]])
    out = replay_json(write_lines(tmp_path / "bad.jsonl", bad))
    assert out["malformed"] == 3 and out["truncated"] is False
    assert out["frames"] == clean["frames"] - lost
    assert out["bytes_read"] == sum(len(x) for x in bad)


def zst(path: Path, data: bytes) -> Path:
    path.write_bytes(zstandard.ZstdCompressor(level=3, write_checksum=True).compress(data))
    return path


def test_a_zst_cut_at_two_thirds_replays_what_it_holds_and_says_truncated(
    tmp_path: Path,
) -> None:
    data = b"".join(_lines())
    whole = zst(tmp_path / "whole.jsonl.zst", data)
    clean = replay_json(whole)
    raw = whole.read_bytes()
    cut = tmp_path / "cut.jsonl.zst"
    cut.write_bytes(raw[: len(raw) * 2 // 3])
    out = replay_json(cut)
    assert out["truncated"] is True and "ends inside a frame" in out["stop_reason"]
    assert 0 < out["frames"] < clean["frames"]
    assert 0 < out["bytes_read"] < len(data)
    assert out["malformed"] == 0  # the cut-off last line is the truncation, not a bad line


def test_a_corrupt_zstd_block_ends_the_read_with_what_was_read(tmp_path: Path) -> None:
    data = b"".join(_lines())
    raw = bytearray(zst(tmp_path / "whole.jsonl.zst", data).read_bytes())
    for i in range(len(raw) * 2 // 3, len(raw) * 2 // 3 + 16):
        raw[i] ^= 0xA5
    bad = tmp_path / "corrupt.jsonl.zst"
    bad.write_bytes(bytes(raw))
    out = replay_json(bad)
    assert out["truncated"] is True and "corrupt zstd data" in out["stop_reason"]
    assert out["frames"] > 0 and out["bytes_read"] > 0


def test_empty_and_non_recording_files_are_one_line_errors(tmp_path: Path) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_bytes(b"")
    one_line_error(run_process("replay", str(empty), "--json"), "empty.jsonl", "empty")
    one_line_error(run_cli("replay", str(empty)), "empty")
    doc = tmp_path / "doc.jsonl"
    doc.write_text('{"hello": "world"}\n' * 200)
    one_line_error(run_cli("replay", str(doc)), "doc.jsonl", "not a recording")
    binary = tmp_path / "blob.jsonl"
    binary.write_bytes(bytes(range(256)) * 40)
    one_line_error(run_cli("replay", str(binary), "--json"), "not a recording")
    fake = tmp_path / "fake.jsonl.zst"
    fake.write_bytes(b"".join(_lines()[:5]))
    one_line_error(run_cli("replay", str(fake), "--json"), "fake.jsonl.zst", "not zstd")
    one_line_error(run_cli("backtest", str(empty), "--json", "--out", str(tmp_path / "r")))
    assert not (tmp_path / "r").exists()


def test_backtest_json_reports_malformed_and_truncated(tmp_path: Path) -> None:
    lines = list(_lines())
    bad = list(lines)
    bad[40] = bad[40][:30] + b"\xff" + bad[40][30:]
    bad[70] = b"[[[[\n"
    src = write_lines(tmp_path / "bad.jsonl", bad)
    p = run_cli("backtest", str(src), "--json", "--out", str(tmp_path / "bt"))
    p.check_returncode()
    out = json.loads(p.stdout)
    assert out["malformed"] == 2 and out["truncated"] is False and out["events"] > 0
    raw = zst(tmp_path / "w.jsonl.zst", b"".join(lines)).read_bytes()
    cut = tmp_path / "cut.jsonl.zst"
    cut.write_bytes(raw[: len(raw) * 2 // 3])
    p = run_process("backtest", str(cut), "--json", "--out", str(tmp_path / "run"))
    p.check_returncode()
    out = json.loads(p.stdout)
    assert out["truncated"] is True and out["bytes_read"] > 0 and out["events"] > 0
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["truncated"] is True


def test_reader_api_counts_and_raises_clearly(tmp_path: Path) -> None:
    """The same behaviour one level down, for callers of ``RecordingReader``."""
    lines = list(_lines())
    p = write_lines(tmp_path / "x.jsonl", [*lines[:10], b"\xc3\x28\n", lines[10][:-40]])
    r = RecordingReader(p)
    assert len(list(r)) == 10
    assert r.malformed == 1 and r.truncated and r.stop_reason == "the last line is cut off"
    with pytest.raises(RecordingError, match="none of its first 100 lines"):
        list(RecordingReader(write_lines(tmp_path / "y.jsonl", [b"{}\n"] * 500)))

"""Replay of the real 2026-09-24 capture reproduces every stated top of book."""

import json
import subprocess
import sys
from pathlib import Path

from fixture_data import capture_frames, write_capture

from polylab.analysis.replay import replay
from polylab.feed.recording import RecordingReader, RecordingWriter


def test_real_capture_reproduces_all_102_stated_best_bid_ask(
    shared_fixtures: Path, tmp_path: Path
) -> None:
    rec = write_capture(shared_fixtures, tmp_path / "cap.jsonl")
    res, _, windows, _ = replay(rec, verify=True)
    assert (res.frames, res.checked, res.mismatches, res.malformed) == (110, 102, 0, 0)
    assert res.level_updates == 102 and res.books == 28 and res.markets == 14
    # best_bid_ask hints arrive before their price_change and match after it (58/58)
    assert (res.hints_checked, res.hint_mismatches) == (58, 0)
    # mirrored binary books stay consistent, so no top-of-book sum window exists
    assert windows == []


def test_corrupted_frames_are_reported_and_the_rest_still_verifies(
    shared_fixtures: Path, tmp_path: Path
) -> None:
    frames = capture_frames(shared_fixtures)
    # frame 5 truncated, frame 9 garbage; both are price_change frames with 2 entries each
    lost = [i for i in (5, 9) if '"price_change"' in frames[i][1]]
    rec = write_capture(
        shared_fixtures, tmp_path / "bad.jsonl", corrupt={5: frames[5][1][:40], 9: "\x00garbage"}
    )
    with open(rec, "a") as f:
        f.write("{this line is not a record}\n")
    res, _, _, _ = replay(rec, verify=True)
    assert res.malformed == 3
    assert res.checked == 102 - 2 * len(lost)


def test_dropped_price_change_shows_up_as_mismatches(shared_fixtures: Path, tmp_path: Path) -> None:
    frames = capture_frames(shared_fixtures)
    i = next(i for i, (_, p) in enumerate(frames) if '"price_change"' in p and '"0"' not in p)
    rec = write_capture(shared_fixtures, tmp_path / "drop.jsonl", corrupt={i: "PONG"})
    res, _, _, _ = replay(rec, verify=True)
    assert res.mismatches > 0 and res.first_mismatches


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "polylab.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_cli_replay_verify_json(shared_fixtures: Path, tmp_path: Path) -> None:
    rec = write_capture(shared_fixtures, tmp_path / "cap.jsonl.zst")
    p = run_cli("replay", str(rec), "--verify", "--json")
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    for key in (
        "frames",
        "events",
        "level_updates",
        "checked",
        "mismatches",
        "malformed",
        "books",
        "seconds",
    ):
        assert key in out
    assert out["checked"] == 102 and out["mismatches"] == 0


def test_cli_exits_nonzero_on_mismatch(shared_fixtures: Path, tmp_path: Path) -> None:
    frames = capture_frames(shared_fixtures)
    i = next(i for i, (_, p) in enumerate(frames) if '"price_change"' in p)
    rec = write_capture(shared_fixtures, tmp_path / "drop.jsonl", corrupt={i: "PONG"})
    p = run_cli("replay", str(rec), "--verify", "--json")
    assert p.returncode == 1 and json.loads(p.stdout)["mismatches"] > 0
    table = run_cli("replay", str(rec), "--verify")
    assert table.returncode == 1 and "mismatches" in table.stderr


def test_cli_rejects_a_missing_file(tmp_path: Path) -> None:
    p = run_cli("replay", str(tmp_path / "nope.jsonl"))
    assert p.returncode == 2 and "no such recording" in p.stderr


def test_zstd_round_trip(tmp_path: Path) -> None:
    with RecordingWriter(tmp_path / "x.jsonl.zst") as w:
        w.write("market", "PONG", 5)
        w.write("market", '{"a": "b\\n"}', 6)
    recs = list(RecordingReader(tmp_path / "x.jsonl.zst"))
    assert [(r.recv_ns, r.payload) for r in recs] == [(5, "PONG"), (6, '{"a": "b\\n"}')]

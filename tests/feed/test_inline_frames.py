"""Recordings store JSON frames inline (one-pass replay) and everything else as strings; readers
take both forms, and a replay of either gives the same result."""

from __future__ import annotations

import json
from pathlib import Path

import msgspec
import pytest
from fixture_data import capture_frames, v2_session_frames

from polylab.analysis.replay import replay
from polylab.book.synthetic import SyntheticConfig, generate
from polylab.feed.recording import (
    Record,
    RecordingReader,
    RecordingWriter,
    encode_record,
    inline_frame,
)

ODD = [
    "PONG",
    ' {"event_type":"book","asset_id":"1"}',  # surrounding whitespace is kept byte for byte
    '{"event_type":"book",\n"asset_id":"1"}',  # a line break would split the line
    '{"event_type":"book","asset_id":"1"',  # cut off
    '{"a":1} {"b":2}',  # two values
    "",
    "\x00garbage",
    '"just a string"',
    "[1, 2",
]


@pytest.mark.parametrize("payload", ODD)
def test_anything_but_one_json_value_on_one_line_is_stored_as_a_string(payload: str) -> None:
    assert not inline_frame(payload)
    line = encode_record("market", payload, 7)
    assert json.loads(line) == {"recv_ns": 7, "channel": "market", "payload": payload}


def test_json_frames_are_stored_inline_and_read_back_byte_for_byte(tmp_path: Path) -> None:
    frames = [
        '{"event_type":"price_change","market":"0xm","price_changes":[]}',
        '[{"event_type":"book","asset_id":"1","bids":[],"asks":[]}]',
        '{"note":"caf\u00e9 \\u00e9 \\" \\\\ done"}',  # non-ASCII and escapes, as received
        '{"markets": []}',
    ]
    path = tmp_path / "rec.jsonl.zst"
    with RecordingWriter(path) as w:
        for i, f in enumerate(frames):
            w.write("meta" if i == 3 else "market", f, i)
        for i, f in enumerate(ODD):
            w.write("market", f, 100 + i)
    got = list(RecordingReader(path))
    assert [r.payload for r in got] == frames + ODD
    assert [r.channel for r in got][:4] == ["market", "market", "market", "meta"]
    lines = [json.loads(encode_record("market", f, 1)) for f in frames]
    assert all("frame" in d and "payload" not in d for d in lines)
    assert lines[2]["frame"] == json.loads(frames[2])


def test_old_and_new_lines_mix_and_bad_lines_are_counted() -> None:
    enc = msgspec.json.Encoder()
    lines = [
        enc.encode(Record(1, "market", '{"a":1}')).decode(),  # the older string form
        encode_record("market", '{"a":2}', 2),
        '{"recv_ns":3,"channel":"market"}',  # neither payload nor frame
        '{"recv_ns":4,"channel":"market","frame":{"a":4}',  # cut off
        encode_record("user", "PONG", 5),
    ]
    reader = RecordingReader.from_lines(lines)
    got = [(r.recv_ns, r.channel, r.payload) for r in reader]
    assert got == [(1, "market", '{"a":1}'), (2, "market", '{"a":2}'), (5, "user", "PONG")]
    assert reader.malformed == 2 and reader.records == 3


def _write(path: Path, frames: list[tuple[int, str, str]], legacy: bool) -> Path:
    if legacy:
        enc = msgspec.json.Encoder()
        path.write_text(
            "".join(enc.encode(Record(at, ch, p)).decode() + "\n" for at, ch, p in frames)
        )
    else:
        with RecordingWriter(path) as w:
            for at, ch, p in frames:
                w.write(ch, p, at)
    return path


def _outcome(path: Path, verify: bool) -> object:
    res, reg, windows, _ = replay(path, verify=verify)
    r = msgspec.to_builtins(res)
    for k in ("seconds", "updates_per_s", "bytes_read"):
        r.pop(k)
    books = {
        a: (b.bid_levels(), b.ask_levels(), b.hash, b.updated_ns) for a, b in reg.books.items()
    }
    return r, books, msgspec.to_builtins(windows)


@pytest.mark.parametrize("verify", [True, False])
def test_a_replay_of_inline_frames_equals_the_replay_of_string_frames(
    shared_fixtures: Path, tmp_path: Path, verify: bool
) -> None:
    """Real captures (every event type, arrays, PONGs), a synthetic stream with hints and
    windows, and broken frames: one-pass and two-pass decoding agree on everything."""
    frames = [(ns, "market", p) for ns, p in capture_frames(shared_fixtures)]
    frames += [
        (2_000_000_000_000_000_000 + i, "market", p)
        for i, p in enumerate(v2_session_frames(shared_fixtures))
    ]
    cfg = SyntheticConfig(seed=9, duration_s=3.0, rate_hz=600.0, binary_markets=3)
    frames += [(at + 3_000_000_000_000_000_000, ch, p) for at, ch, p in generate(cfg)]
    frames += [
        (4_000_000_000_000_000_000, "market", '{"event_type":"price_change","market":7}'),
        (4_000_000_000_000_000_001, "market", '{"event_type":"book","asset_id":"1","bids":5}'),
        (4_000_000_000_000_000_002, "market", '{"event_type":"mystery"}'),
        (
            4_000_000_000_000_000_003,
            "user",
            '{"event_type":"price_change","market":"x","price_changes":[]}',
        ),
    ]
    new = _outcome(_write(tmp_path / "new.jsonl", frames, legacy=False), verify)
    old = _outcome(_write(tmp_path / "old.jsonl", frames, legacy=True), verify)
    assert new == old
    res = new[0]
    assert isinstance(res, dict)
    assert res["level_updates"] > 1000 and res["malformed"] >= 2 and res["unknown_events"] >= 1
    assert new[2]  # the synthetic stream opens windows

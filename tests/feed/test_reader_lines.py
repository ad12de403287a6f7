"""``RecordingReader.from_lines`` and the replay's direct dispatch: in-memory lines are read and
counted exactly as a file's lines, and the replay gives the same figures either way."""

from __future__ import annotations

import json
from pathlib import Path

import msgspec
import pytest

from polylab.analysis.replay import replay
from polylab.book.synthetic import SyntheticConfig, generate
from polylab.feed.recording import Record, RecordingError, RecordingReader


def _lines() -> list[str]:
    enc = msgspec.json.Encoder()
    cfg = SyntheticConfig(seed=9, duration_s=4.0, binary_markets=3)
    return [enc.encode(Record(at, ch, p)).decode() for at, ch, p in generate(cfg)]


def _figures(res: object) -> dict[str, object]:
    out = msgspec.structs.asdict(res)  # type: ignore[call-overload]
    for volatile in ("seconds", "updates_per_s", "bytes_read"):
        out.pop(volatile)
    return out


@pytest.mark.parametrize("verify", [False, True])
def test_lines_in_memory_replay_like_the_same_file(tmp_path: Path, verify: bool) -> None:
    lines = _lines()
    bad = list(lines)
    bad[30] = bad[30][:25] + "\u0000" + bad[30][25:]  # a control character: not JSON
    bad[31] = '{"recv_ns":"x","channel":1,"payload":[2]}'  # wrong types
    path = tmp_path / "x.jsonl"
    path.write_text("".join(x + "\n" for x in bad))
    from_file, reg_f, win_f, _ = replay(path, verify=verify)
    for source in (bad, [x.encode() for x in bad], iter(bad)):
        reader = RecordingReader.from_lines(source)
        got, reg, win, _ = replay(reader, verify=verify)
        assert _figures(got) == _figures(from_file)
        assert got.malformed == 2 and reader.malformed == 2 and reader.records == len(bad) - 2
        assert win == win_f
        assert {a: (b.bids, b.asks) for a, b in reg.books.items()} == {
            a: (b.bids, b.asks) for a, b in reg_f.books.items()
        }


def test_lines_that_hold_no_record_raise_naming_the_source() -> None:
    with pytest.raises(RecordingError, match="<mem> is not a recording: none of its 3 lines"):
        list(RecordingReader.from_lines(["{}", "x", "[]"], name="<mem>"))
    with pytest.raises(RecordingError, match="the file is empty"):
        list(RecordingReader.from_lines([]))


def test_a_broken_hot_frame_costs_that_frame_only() -> None:
    """A ``price_change`` or ``book`` frame that ends like one but does not decode takes the
    guarded path: counted malformed and logged; the frames around it still apply."""
    lines = _lines()
    recs = [msgspec.json.decode(x, type=Record) for x in lines]
    hot = [
        i
        for i, r in enumerate(recs)
        if r.payload.endswith(('"price_change"}', '"book"}')) and i > 10
    ][:2]
    broken = list(recs)
    for i in hot:
        r = recs[i]
        assert '"market":"' in r.payload
        broken[i] = Record(
            r.recv_ns, r.channel, r.payload.replace('"market":"', '"market":7,"m":"')
        )
    clean, *_ = replay(recs, verify=False)
    got, *_ = replay(broken, verify=False)
    assert got.malformed == 2 and clean.malformed == 0
    assert got.frames == clean.frames
    lost = sum(
        len(json.loads(recs[i].payload).get("price_changes", [])) for i in hot
    )  # level updates of the broken frames
    assert got.level_updates == clean.level_updates - lost
    assert got.events == clean.events - 2

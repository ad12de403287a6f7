"""Time slices of one recording: each slice replays on its own to the books the whole
recording has at that slice's end, and the slices keep every original record, in order."""

from __future__ import annotations

from pathlib import Path

import pytest

from polylab.analysis.replay import replay
from polylab.backtest import run_backtest
from polylab.book.registry import BookRegistry
from polylab.book.synthetic import SyntheticConfig, write_synthetic
from polylab.config import load_config
from polylab.feed.recording import Record, RecordingReader, RecordingWriter
from polylab.research.walkforward import (
    Fold,
    WalkForwardError,
    make_folds,
    slice_bounds,
    slice_recording,
)


@pytest.fixture(scope="module")
def rec(tmp_path_factory: pytest.TempPathFactory) -> Path:
    p = tmp_path_factory.mktemp("slices") / "syn.jsonl.zst"
    write_synthetic(p, SyntheticConfig(seed=5, duration_s=9.0, rate_hz=150.0))
    return p


def _books(reg: BookRegistry) -> dict[str, tuple[object, ...]]:
    return {
        a: (b.tick.text, b.bid_levels(), b.ask_levels(), b.hash, b.exchange_ms)
        for a, b in reg.books.items()
    }


def _event_times(records: list[Record]) -> list[int]:
    out, now = [], 0
    for r in records:
        now = max(now, r.recv_ns)
        out.append(now)
    return out


def test_each_slice_ends_with_the_full_replays_books(rec: Path, tmp_path: Path) -> None:
    n = 4
    paths = slice_recording(rec, n, tmp_path)
    bounds = slice_bounds(rec, n)
    assert len(paths) == n and all(p.is_file() for p in paths)
    records = list(RecordingReader(rec))
    times = _event_times(records)
    for k, path in enumerate(paths):
        prefix = [r for r, t in zip(records, times, strict=True) if t < bounds[k + 1]]
        _, full_reg, _, _ = replay(prefix, verify=True)
        part, part_reg, _, _ = replay(path, verify=True)
        assert part.malformed == 0 and part.mismatches == 0, part.first_mismatches
        assert part.checked > 0  # stated best bid/asks were checked against the carried books
        assert _books(part_reg) == _books(full_reg), f"slice {k}"
        assert set(part_reg.catalog.markets) == set(full_reg.catalog.markets)
        assert len(part_reg.books) > 0


def test_slices_hold_every_record_once_in_order(rec: Path, tmp_path: Path) -> None:
    """Dropping each slice's leading state records (stamped at its start, before its first
    original record) gives back the original recording, record for record."""
    paths = slice_recording(rec, 3, tmp_path)
    bounds = slice_bounds(rec, 3)
    records = list(RecordingReader(rec))
    times = _event_times(records)
    got: list[Record] = []
    for k, p in enumerate(paths):
        own = [r for r, t in zip(records, times, strict=True) if bounds[k] <= t < bounds[k + 1]]
        body = list(RecordingReader(p))
        assert body[len(body) - len(own) :] == own
        if k:  # a later slice starts with the catalog, then a snapshot of every book
            head = body[: len(body) - len(own)]
            assert head[0].channel == "meta"
            assert sum('"event_type":"book"' in r.payload for r in head) >= 2
        got.extend(own)
    assert got == records


def test_a_slice_backtests_on_its_own(rec: Path, tmp_path: Path) -> None:
    cfg = load_config(env={})
    last = slice_recording(rec, 3, tmp_path)[-1]
    res, _, _ = run_backtest(last, cfg)
    assert res.malformed == 0 and res.events > 0 and res.intents > 0


def test_folds_anchored_and_rolling() -> None:
    w = [f"w{i}" for i in range(5)]
    assert make_folds(w, 2, "anchored") == [
        Fold(index=0, train=["w0", "w1", "w2"], test=["w3"]),
        Fold(index=1, train=["w0", "w1", "w2", "w3"], test=["w4"]),
    ]
    assert make_folds(w, 2, "rolling") == [
        Fold(index=0, train=["w0", "w1", "w2"], test=["w3"]),
        Fold(index=1, train=["w1", "w2", "w3"], test=["w4"]),
    ]
    with pytest.raises(WalkForwardError, match="3 folds need at least 4 windows"):
        make_folds(w[:3], 3)
    with pytest.raises(WalkForwardError, match="mode 'sideways'"):
        make_folds(w, 2, "sideways")
    with pytest.raises(WalkForwardError, match="folds must be ≥ 1"):
        make_folds(w, 0)


def test_slices_of_a_recording_without_catalog_leave_it_to_the_metadata_file(
    rec: Path, tmp_path: Path
) -> None:
    """Markets only inferred from bare frames are not written as a catalog: a slice of a
    recording without ``meta`` records, backtested with the metadata file, trades exactly
    like the same slice of the recording that carries its catalog."""
    bare = tmp_path / "bare.jsonl.zst"
    meta = tmp_path / "meta.json"
    with RecordingWriter(bare) as w:
        for r in RecordingReader(rec):
            if r.channel == "meta":
                meta.write_text(r.payload)
            else:
                w.write(r.channel, r.payload, r.recv_ns)
    with_cat = slice_recording(rec, 3, tmp_path / "a")[1]
    without = slice_recording(bare, 3, tmp_path / "b")[1]
    assert not any(r.channel == "meta" for r in RecordingReader(without))
    cfg = load_config(env={})
    a, _, _ = run_backtest(with_cat, cfg)
    b, _, _ = run_backtest(without, cfg, meta=meta)
    assert a.intents > 0
    assert (a.intents, a.trades, a.pnl, a.fees) == (b.intents, b.trades, b.pnl, b.fees)

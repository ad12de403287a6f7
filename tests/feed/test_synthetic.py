from pathlib import Path

from polylab.analysis.replay import replay
from polylab.book.registry import mirror_mismatches
from polylab.book.synthetic import SyntheticConfig, write_synthetic

SMALL = SyntheticConfig(seed=3, duration_s=8.0, rate_hz=300.0)


def test_same_seed_same_bytes(tmp_path: Path) -> None:
    write_synthetic(tmp_path / "a.jsonl", SMALL)
    write_synthetic(tmp_path / "b.jsonl", SMALL)
    write_synthetic(tmp_path / "c.jsonl", SyntheticConfig(seed=4, duration_s=8.0, rate_hz=300.0))
    a, b, c = ((tmp_path / n).read_bytes() for n in ("a.jsonl", "b.jsonl", "c.jsonl"))
    assert a == b and a != c


def test_synthetic_stream_verifies_and_has_both_kinds_of_window(tmp_path: Path) -> None:
    write_synthetic(tmp_path / "s.jsonl.zst", SMALL)
    res, reg, windows, _ = replay(tmp_path / "s.jsonl.zst", verify=True)
    assert res.mismatches == 0 and res.checked == res.level_updates > 1000
    assert res.hints_checked > 0 and res.hint_mismatches == 0 and res.trades > 0
    labels = {(w.kind, w.label) for w in windows}
    assert ("binary", "stale_leg") in labels and ("negrisk", "structural") in labels
    lag = SMALL.stale_lag_ms[1] * 1_000_000
    assert all(w.duration_ns <= lag for w in windows if w.kind == "binary" and w.side == "buy")
    for g in reg.catalog.groups():
        if g.kind == "binary":
            yes, no = (reg.books[t] for t in g.token_ids)
            assert mirror_mismatches(yes, no) == 0

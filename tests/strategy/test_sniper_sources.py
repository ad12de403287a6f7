"""The Sniper replayed over a recording holding both sports sources: it acts on whichever
source shows a game final first, and each source's own lag is tabulated."""

from __future__ import annotations

from pathlib import Path

from polylab.research.sniper_lag import (
    replay_sniper,
    replay_sniper_sources,
    source_lag_frame,
    write_sniper_demo,
)


def test_replay_acts_on_the_first_final_and_tabulates_each_sources_lag(tmp_path: Path) -> None:
    path = tmp_path / "both.jsonl.zst"
    lags_ms, offsets = (400, 1500, 2600), (-300, 500, -1000)
    write_sniper_demo(path, games=3, lags_ms=lags_ms, channel_offsets_ms=offsets)
    sn, intents, finals = replay_sniper_sources(path)
    by_game = {r.game_id: r for r in sn.lags}
    assert len(by_game) == 3 and len(intents) == 3
    frame = source_lag_frame(sn.lags, finals).sort("game_id")
    for i, row in enumerate(frame.iter_rows(named=True)):
        assert row["lag_ms_espn"] == lags_ms[i]
        assert row["lag_ms_polymarket"] == lags_ms[i] - offsets[i]
        # the Sniper saw the game final at the earlier of the two
        assert row["lag_ms"] == max(row["lag_ms_espn"], row["lag_ms_polymarket"])
        assert row["first_source"] == ("polymarket" if offsets[i] < 0 else "espn")
    assert all(len(ft.by_source) == 2 for ft in finals.values())


def test_espn_only_recordings_replay_as_before(tmp_path: Path) -> None:
    path = tmp_path / "espn.jsonl.zst"
    write_sniper_demo(path, games=2, lags_ms=(400, 1500))
    sn, _ = replay_sniper(path)
    sn2, _, finals = replay_sniper_sources(path)
    assert sorted(r.lag_ms for r in sn.lags) == sorted(r.lag_ms for r in sn2.lags) == [400, 1500]
    frame = source_lag_frame(sn2.lags, finals)
    assert "lag_ms_polymarket" not in frame.columns and frame["lag_ms_espn"].to_list() == [
        1500.0,
        400.0,
    ]

"""A paper session on the real simulator (over sockets) is replayable: it records the feed it
traded on into its run folder, and a backtest of that file with the same config makes the same
decisions, booked the same way."""

import asyncio
import json
from pathlib import Path

import pytest

from polylab.backtest import run_backtest
from polylab.compare import compare_runs
from polylab.config import load_config
from polylab.feed.recording import RecordingReader
from polylab.runner.paper import FEED_FILE, run_paper, venue
from polylab.store.run_folder import file_sha256

FAULTS = {
    "drop_prob": 0.01,
    "reorder_prob": 0.01,
    "malformed_prob": 0.01,
    "disconnect_every_s": 3.0,
}


FAST_GAMES = {"game_delay_s": [1.0, 3.0], "game_length_s": [3.0, 6.0]}
"""Scoreboard games that go final within the session (the Sniper trades on them)."""


@pytest.mark.parametrize("faults", [None, FAULTS], ids=["clean", "faulty-feed"])
def test_backtest_of_a_paper_sessions_feed_reproduces_it(
    tmp_path: Path, faults: dict[str, float] | None
) -> None:
    cfg = load_config(env={"RISK_MAX_POSITION": "300"})
    sim = {"faults": faults} if faults else FAST_GAMES

    async def main():  # type: ignore[no-untyped-def]
        async with venue(None, seed=11, sim_overrides=sim) as v:
            return await run_paper(cfg, v, seconds=8.0, out_dir=tmp_path / "paper")

    paper, run = asyncio.run(main())
    feed = tmp_path / "paper" / FEED_FILE
    summary = json.loads((tmp_path / "paper/summary.json").read_text())
    assert run.feed_path == feed and feed.is_file()
    digest = file_sha256(feed)
    assert summary["feed_sha256"] == summary["provenance"]["data_hash"] == digest
    records = list(RecordingReader(feed))
    assert records[0].channel == "meta"  # the catalog goes first, as in every recording
    if not faults:  # the scoreboards the Sniper saw are in the recording too
        assert any(r.channel == "sports" for r in records)
    if faults:  # every book the feed stopped trusting is marked in the recording
        assert run.feed.counters.disconnects >= 2
        assert any(r.channel == "feed" and "needs_snapshot" in r.payload for r in records)
    assert paper.intents >= 1 and paper.trades >= 1, "the simulator should have traded"

    bt, _, _ = run_backtest(feed, cfg, out_dir=tmp_path / "backtest")
    c = compare_runs(tmp_path / "paper", tmp_path / "backtest")
    assert c.same_data and c.same_config
    assert c.identical_intents, c.first_intent_divergence
    assert c.first_fill_divergence is None, c.first_fill_divergence
    assert (bt.intents, bt.trades, bt.events) == (paper.intents, paper.trades, paper.events)
    assert (bt.fees, bt.realized, bt.pnl) == (paper.fees, paper.realized, paper.pnl)
    for name, st in c.by_strategy.items():
        assert st.fills.a == st.fills.b and st.realized.a == st.realized.b, name


def test_paper_engine_runs_on_the_feeds_stamps(tmp_path: Path) -> None:
    """Every intent is created at the receive time of a recorded frame (event time, no wall
    clock timer), and the run ends at the last recorded stamp."""
    cfg = load_config(env={"RISK_MAX_POSITION": "300"})

    async def main():  # type: ignore[no-untyped-def]
        async with venue(None, seed=11) as v:
            return await run_paper(cfg, v, seconds=5.0, out_dir=tmp_path / "p")

    _, run = asyncio.run(main())
    stamps = {r.recv_ns for r in RecordingReader(tmp_path / "p" / FEED_FILE)}
    intents = run.recorder.rows.get("intents", [])
    assert intents and all(i.created_ns in stamps for i in intents)  # type: ignore[attr-defined]
    orders = run.recorder.rows.get("orders", [])
    assert all(o.sent_ns in stamps for o in orders)  # type: ignore[attr-defined]
    assert run.engine.now_ns() <= max(stamps)

"""A paper session whose Sniper also reads the venue's sports channel (the simulator's
``/ws/sports``), reconciled with the ESPN scoreboards: it trades on the channel's finals, the
channel's frames are recorded next to the scoreboards, and a backtest of the recording makes
the same decisions."""

import asyncio
from pathlib import Path

import msgspec

from polylab.backtest import run_backtest
from polylab.compare import compare_runs
from polylab.config import load_config
from polylab.feed.recording import RecordingReader
from polylab.feed.sports_sources import payload_source
from polylab.runner.paper import FEED_FILE, run_paper, venue

SIM = {
    "game_delay_s": [0.5, 1.5],
    "game_length_s": [2.0, 4.0],
    "sports_lag_s": 2.0,
    "sports_ws_lag_s": 0.0,
}


def test_paper_sniper_trades_on_the_sports_channel_and_replays(tmp_path: Path) -> None:
    base = load_config(env={"RISK_MAX_POSITION": "300"})
    # ESPN is polled once at the start (then every minute): every final comes from the channel
    sniper = msgspec.structs.replace(base.sniper, sports_channel=True, poll_ms=60_000)
    cfg = msgspec.structs.replace(base, strategies=("sniper",), sniper=sniper)

    async def main():  # type: ignore[no-untyped-def]
        async with venue(None, seed=11, sim_overrides=SIM) as v:
            return await run_paper(cfg, v, seconds=9.0, out_dir=tmp_path / "paper")

    paper, run = asyncio.run(main())
    feed = tmp_path / "paper" / FEED_FILE
    kinds = [payload_source(r.payload) for r in RecordingReader(feed) if r.channel == "sports"]
    assert "espn" in kinds and kinds.count("polymarket") >= 2
    assert paper.intents >= 1, "the channel's finals came before the markets repriced"
    intents = run.recorder.rows.get("intents", [])
    assert all(i.strategy == "sniper" for i in intents)  # type: ignore[attr-defined]

    bt, _, _ = run_backtest(feed, cfg, out_dir=tmp_path / "backtest")
    c = compare_runs(tmp_path / "paper", tmp_path / "backtest")
    assert c.identical_intents, c.first_intent_divergence
    assert (bt.intents, bt.trades) == (paper.intents, paper.trades)

"""``sim.record`` (the in-Python simulator recorder): sessions replay with zero mismatches."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from pathlib import Path

from typer.testing import CliRunner

from polylab.analysis.replay import replay
from polylab.cli import app
from polylab.feed.recording import RecordingReader, decode_meta
from polylab.market import Market
from polylab.money import MICROS
from polylab.sim.config import SimConfig
from polylab.sim.faults import FaultConfig
from polylab.sim.record import RecordStats, record, record_async
from polylab.sim.server import SimThread


def test_recorded_session_has_meta_first_sports_snapshots_and_replays_clean(tmp_path: Path) -> None:
    out = tmp_path / "session.jsonl"
    cfg = SimConfig(seed=17, sports_games=3, steps_per_s=200)
    stats = asyncio.run(asyncio.wait_for(record_async(out, 4.0, config=cfg), 25))
    assert stats.frames > 100 and stats.sports >= 3 and stats.reconnects == 0
    recs = list(RecordingReader(out))
    assert recs[0].channel == "meta"
    markets = decode_meta(recs[0].payload)
    assert len(markets) == stats.markets and len(markets) >= 6 + 6 + 3
    sports = [json.loads(r.payload) for r in recs if r.channel == "sports"]
    assert sports and all(s["events"] and "leagues" in s for s in sports)
    stamps = [r.recv_ns for r in recs]
    assert stamps == sorted(stamps)
    res, reg, _, _ = replay(out, verify=True)
    assert res.mismatches == 0, res.first_mismatches
    assert res.level_updates > 100 and res.checked == res.level_updates
    assert res.snapshots >= 2 * len(markets) and res.malformed == 0
    assert len(reg.catalog) >= len(markets)
    cli = CliRunner().invoke(app, ["replay", str(out), "--verify", "--json"])
    assert cli.exit_code == 0, cli.output
    assert json.loads(cli.output.strip().splitlines()[-1])["mismatches"] == 0


def test_record_a_running_sim_by_url_through_disconnects_and_new_listings(tmp_path: Path) -> None:
    out = tmp_path / "session.jsonl.zst"
    cfg = SimConfig(
        seed=23,
        binary_markets=3,
        negrisk_events=1,
        sports_games=1,
        faults=FaultConfig(disconnect_every_s=1.2),
    )
    late = Market(
        condition_id="0x" + "cd" * 32,
        token_ids=("3" * 77, "4" * 77),
        question="Listed while recording?",
        slug="listed-while-recording",
    )
    box: list[RecordStats] = []
    with SimThread(cfg) as sim:
        t = threading.Thread(target=lambda: box.append(record(out, seconds=4.0, url=sim.url)))
        t.start()
        time.sleep(1.0)
        sim.call(lambda: sim.state.exchange.add_market(late))
        time.sleep(0.5)
        for k in (40, 41, 42):
            sim.call(
                lambda k=k: sim.state.exchange.place(  # type: ignore[misc]
                    "0x00000000000000000000000000000000000000c3",
                    late.token_ids[0],
                    "BUY",
                    k,
                    10 * MICROS,
                )
            )
        t.join(20)
    (stats,) = box
    assert stats.reconnects >= 1
    recs = list(RecordingReader(out))
    metas = [decode_meta(r.payload) for r in recs if r.channel == "meta"]
    assert len(metas) >= 2 and [m.condition_id for m in metas[-1]] == [late.condition_id]
    late_frames = [
        r.payload
        for r in recs
        if r.channel == "market"
        and late.token_ids[0] in r.payload
        and '"price_change"' in r.payload
    ]
    assert late_frames  # subscribed dynamically after new_market
    res, reg, _, _ = replay(out, verify=True)
    assert res.mismatches == 0, res.first_mismatches
    assert res.level_updates > 0
    assert reg.books[late.token_ids[0]].best_bid_micros() == 420_000

"""``polylab record``: against the simulator in both layouts, over real sockets.

Rotation with a tiny period (every file stands alone and replays clean), a reconnect gap marked
in the file (and the books resynced from fresh snapshots), markets listed and resolved while
recording (the catalog written again), and the Gamma selection (filters, neg-risk events
whole, ``--top``)."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal
from pathlib import Path

import msgspec
from typer.testing import CliRunner

from polylab.analysis.replay import replay
from polylab.cli import app
from polylab.feed.discovery import GammaMarket
from polylab.feed.recording import RecordingReader, decode_meta
from polylab.market import Market
from polylab.money import MICROS
from polylab.runner.recorder import RecordFilters, RecordStats, record_venue, select_markets
from polylab.sim.config import SimConfig
from polylab.sim.faults import FaultConfig
from polylab.sim.layout import running_production
from polylab.sim.server import running_sim
from polylab.venue import resolve


def _replays_clean(path: Path) -> int:
    res, _, _, _ = replay(path, verify=True)
    assert res.mismatches == 0, (path.name, res.first_mismatches)
    assert res.malformed == 0 and not res.truncated
    return res.checked


def test_rotation_in_production_layout_gives_standalone_files(tmp_path: Path) -> None:
    out = tmp_path / "rec"

    async def main() -> RecordStats:
        cfg = SimConfig(seed=31, steps_per_s=200)
        async with running_production(cfg) as prod:
            p = resolve("polymarket", overrides=prod.overrides, use_env=False)
            return await record_venue(p, out, seconds=3.5, rotate_s=0.8, shard_size=7)

    stats = asyncio.run(asyncio.wait_for(main(), 60))
    files = sorted(out.glob("*.jsonl.zst"))
    assert stats.files == len(files) >= 3 and stats.reconnects == 0
    assert [f.name for f in files] == sorted(f.name for f in files)  # named by start time
    checked = 0
    for f in files:
        recs = list(RecordingReader(f))
        assert recs and recs[0].channel == "meta"
        assert len(decode_meta(recs[0].payload)) == stats.markets
        checked += _replays_clean(f)
    assert checked > 0 and stats.bytes > 0 and stats.frames > 0


def test_a_reconnect_gap_is_marked_and_resynced_and_catalog_follows(tmp_path: Path) -> None:
    out = tmp_path / "rec.jsonl.zst"
    late = Market(
        condition_id="0x" + "ab" * 32,
        token_ids=("5" * 77, "6" * 77),
        question="Listed while recording?",
        slug="listed-while-recording",
    )
    owner = "0x00000000000000000000000000000000000000c3"

    async def main() -> tuple[RecordStats, str]:
        cfg = SimConfig(
            seed=23, binary_markets=3, negrisk_events=1, faults=FaultConfig(disconnect_every_s=1.5)
        )
        async with running_sim(cfg) as h:
            p = resolve("sim", sim_url=h.url, use_env=False)
            ex = h.state.exchange
            task = asyncio.create_task(record_venue(p, out, seconds=5.0))
            await asyncio.sleep(1.0)
            ex.add_market(late)
            await asyncio.sleep(0.7)
            for k in (40, 41, 42):
                ex.place(owner, late.token_ids[0], "BUY", k, 10 * MICROS)
            gone = next(m for m in ex.markets.markets.values() if not m.neg_risk)
            await asyncio.sleep(0.3)
            ex.resolve(gone.condition_id, gone.token_ids[0])
            return await task, gone.condition_id

    stats, resolved = asyncio.run(asyncio.wait_for(main(), 60))
    assert stats.reconnects >= 1 and stats.gaps >= 1
    recs = list(RecordingReader(out))
    notes = [json.loads(r.payload) for r in recs if r.channel == "feed"]
    assert notes and all(n["needs_snapshot"] for n in notes)
    assert {n["reason"] for n in notes} >= {"disconnected"}
    metas = [decode_meta(r.payload) for r in recs if r.channel == "meta"]
    assert len(metas) >= 3  # as discovered, the listed market, the resolution
    assert late.condition_id not in {m.condition_id for m in metas[0]}
    assert late.condition_id in {m.condition_id for m in metas[-1]}
    assert resolved in {m.condition_id for m in metas[0]}
    # after each gap the shard's books come back by snapshot: the file replays clean
    assert _replays_clean(out) > 0
    res, reg, _, _ = replay(out, verify=True)
    assert reg.books[late.token_ids[0]].best_bid_micros() == 420_000
    assert res.snapshots > stats.markets * 2  # the resyncs after the reconnects


def _gm(cid: str, vol: int, liq: int, slug: str = "") -> GammaMarket:
    return GammaMarket(
        condition_id=cid,
        slug=slug or cid,
        volume_24hr=Decimal(vol),
        liquidity_num=Decimal(liq),
    )


def test_selection_filters_top_n_and_keeps_neg_risk_events_whole() -> None:
    cat = [
        Market(condition_id="a", token_ids=("1", "2"), slug="a"),
        Market(condition_id="b", token_ids=("3", "4"), slug="b"),
        Market(condition_id="n1", token_ids=("5", "6"), slug="n1", neg_risk=True, event_id="E"),
        Market(condition_id="n2", token_ids=("7", "8"), slug="n2", neg_risk=True, event_id="E"),
        Market(condition_id="n3", token_ids=("9", "0"), slug="n3", neg_risk=True, event_id="E"),
    ]
    gms = [_gm("a", 500, 10), _gm("b", 50, 1000), _gm("n1", 900, 5), _gm("n2", 1, 1)]
    gms.append(_gm("n3", 2, 2))

    def ids(f: RecordFilters) -> list[str]:
        return [m.condition_id for m in select_markets(gms, cat, f)]

    assert ids(RecordFilters()) == ["a", "b", "n1", "n2", "n3"]
    assert ids(RecordFilters(top=1)) == ["n1", "n2", "n3"]  # the top market's event, whole
    assert ids(RecordFilters(min_volume_24h=Decimal(100))) == ["a", "n1", "n2", "n3"]
    assert ids(RecordFilters(min_liquidity=Decimal(100))) == ["b"]
    assert ids(RecordFilters(slugs=("a", "n2"))) == ["a", "n1", "n2", "n3"]
    assert ids(RecordFilters(event_ids=("E",), top=2)) == ["n1", "n2", "n3"]
    inactive = [
        msgspec.structs.replace(g, closed=True) if g.condition_id == "a" else g for g in gms
    ]
    assert "a" not in [m.condition_id for m in select_markets(inactive, cat, RecordFilters())]


def test_record_and_the_sim_record_alias_on_the_command_line(tmp_path: Path) -> None:
    runner = CliRunner()
    a = tmp_path / "a.jsonl"
    r = runner.invoke(app, ["record", str(a), "--venue", "sim", "--seconds", "2", "--json"])
    assert r.exit_code == 0, r.output
    stats = json.loads(r.stdout.strip().splitlines()[-1])
    assert stats["markets"] > 0 and stats["frames"] > 0 and stats["files"] == 1
    assert _replays_clean(a) > 0
    b = tmp_path / "b.jsonl"
    from polylab.cli import _register_subapps

    _register_subapps()
    r = runner.invoke(app, ["sim", "record", str(b), "--seconds", "2"])
    assert r.exit_code == 0, r.output
    assert next(iter(RecordingReader(b))).channel == "meta"


def test_bad_record_options_are_one_line_exit_2(tmp_path: Path) -> None:
    runner = CliRunner()
    for args, needle in (
        (["--rotate", "soon"], "'soon'"),
        (["--min-volume", "-3"], "'-3'"),
        (["--league", "nfl"], "'nfl'"),
        (["--shard-size", "900"], "900"),
        (["--venue", "kalshi"], "'kalshi'"),
        (["--venue", "sim", "--url", "localhost:1"], "'localhost:1'"),
    ):
        r = runner.invoke(app, ["record", str(tmp_path / "x.jsonl"), *args, "--seconds", "1"])
        assert r.exit_code == 2, (args, r.output)
        assert "polylab: error: " in r.output and needle in r.output, (args, r.output)
        assert "Traceback" not in r.output
    assert not (tmp_path / "x.jsonl").exists()
    r = runner.invoke(app, ["record", str(tmp_path / "no/such/x.jsonl"), "--venue", "sim"])
    assert r.exit_code == 2 and "no/such/x.jsonl" in r.output, r.output

"""The venue's sports channel: ``sport_result`` parsing and the WebSocket source.

The messages are written from the field list of protocol doc §0.2 (no capture exists).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import msgspec
import pytest
from aiohttp import WSMsgType, web

from polylab.domain import Game
from polylab.feed.recording import RecordingReader, RecordingWriter
from polylab.feed.sports_channel import PolymarketSportsSource, SportsChannelConfig
from polylab.feed.sports_sources import (
    ScoreboardSource,
    iter_labelled_sports_records,
    payload_source,
)
from polylab.feed.venue_sports import (
    SportsParseStats,
    VenueSportsError,
    parse_score,
    parse_sport_results,
)

NFL_LIVE = {
    "gameId": 90061,
    "leagueAbbreviation": "nfl",
    "slug": "nfl-lac-buf-2025-01-26",
    "homeTeam": "Buffalo Bills",
    "awayTeam": "Los Angeles Chargers",
    "status": "InProgress",
    "score": "3-16",
    "period": "Q4",
    "elapsed": "02:11",
    "live": True,
    "ended": False,
    "turn": "buf",
}
NFL_FINAL = NFL_LIVE | {
    "status": "finished",
    "score": "10-23",
    "period": "Final",
    "live": False,
    "ended": True,
    "finishedTimestamp": "2025-01-27T00:41:09Z",
}
CS2_FINAL = {
    "gameId": 77120,
    "leagueAbbreviation": "cs2",
    "slug": "cs2-navi-faze-2025-03-02",
    "homeTeam": "FaZe",
    "awayTeam": "NAVI",
    "status": "finished",
    "score": "000-000|2-0|Bo3",
    "period": "2/3",
    "live": False,
    "ended": True,
    "finishedTimestamp": "2025-03-02T18:00:00Z",
}
EPL_DRAW = {
    "gameId": 5512,
    "leagueAbbreviation": "epl",
    "slug": "epl-ars-che-2025-02-01",
    "homeTeam": "Chelsea",
    "awayTeam": "Arsenal",
    "status": "finished",
    "score": "1-1",
    "period": "FT",
    "elapsed": "90",
    "live": False,
    "ended": True,
}


def enc(obj: object) -> bytes:
    return msgspec.json.encode(obj)


def test_live_nfl_result_reads_away_home_from_the_slug_order() -> None:
    (g,) = parse_sport_results(enc(NFL_LIVE))
    assert (g.id, g.league, g.slug) == ("90061", "nfl", "nfl-lac-buf-2025-01-26")
    assert (g.away, g.home, g.away_score, g.home_score) == ("LAC", "BUF", 3, 16)
    assert (g.home_name, g.away_name) == ("Buffalo Bills", "Los Angeles Chargers")
    assert g.state == "in" and not g.final and g.winner is None
    assert g.detail == "Q4 02:11"


def test_final_winner_draw_and_esports_series_score() -> None:
    (g,) = parse_sport_results(enc(NFL_FINAL))
    assert g.final and g.winner == "BUF" and (g.away_score, g.home_score) == (10, 23)
    (d,) = parse_sport_results(enc(EPL_DRAW))
    assert d.final and d.winner is None and d.home_score == d.away_score == 1
    (e,) = parse_sport_results(enc(CS2_FINAL))
    assert e.final and e.winner == "NAVI" and (e.away_score, e.home_score) == (2, 0)


def test_ended_flag_or_status_alone_makes_a_final_and_postponed_never_does() -> None:
    (a,) = parse_sport_results(enc(NFL_LIVE | {"ended": True, "live": False}))
    assert a.final
    (b,) = parse_sport_results(enc(NFL_LIVE | {"status": "Final", "live": False}))
    assert b.final
    (p,) = parse_sport_results(enc(NFL_LIVE | {"status": "Postponed", "ended": True}))
    assert p.state == "post" and not p.final and p.winner is None


def test_tolerant_of_unknown_null_and_missing_fields_and_lists() -> None:
    msg = {"gameId": 1, "leagueAbbreviation": None, "slug": None, "homeTeam": "MIA",
           "awayTeam": "NE", "status": "Scheduled", "score": None, "newField": {"x": [1]},
           "elapsed": 12}  # fmt: skip
    (g,) = parse_sport_results(enc(msg))
    assert (g.home, g.away, g.state, g.home_score, g.detail) == ("MIA", "NE", "pre", 0, "12")
    two = parse_sport_results(enc([NFL_LIVE, CS2_FINAL]))
    assert [x.id for x in two] == ["90061", "77120"]
    snake = NFL_FINAL | {"finished_timestamp": "2025-01-27T00:41:09Z"}
    assert parse_sport_results(enc(snake))[0].final


@pytest.mark.parametrize(
    "frame", [b"not json", b"{}", b'{"gameId": "x", "live": "yes"}', b"42", b"[1, 2]", b""]
)
def test_bad_frames_raise_a_clear_error_and_are_counted(frame: bytes) -> None:
    st = SportsParseStats()
    with pytest.raises(VenueSportsError, match="not a sport_result"):
        parse_sport_results(frame, stats=st)
    assert (st.frames, st.malformed, st.results) == (1, 1, 0)


def test_score_formats() -> None:
    assert parse_score("3-16") == (3, 16)
    assert parse_score("000-000|2-1|Bo3") == (2, 1)
    assert parse_score("2 - 1") == (2, 1)
    assert parse_score("") is None and parse_score("abc") is None and parse_score(None) is None


def test_payload_source_tells_the_two_sports_formats_apart() -> None:
    assert payload_source(enc(NFL_LIVE).decode()) == "polymarket"
    assert payload_source(enc([NFL_LIVE]).decode()) == "polymarket"
    assert payload_source('{"leagues": [], "events": []}') == "espn"


# -- the source over a real socket ------------------------------------------------------------
class Peer:
    """A WebSocket server on 127.0.0.1 that pings like the venue and sends ``frames``."""

    def __init__(self, frames: list[str]) -> None:
        self.frames = frames
        self.pongs = 0
        self.url = ""

    async def handler(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.send_str("ping")
        for f in self.frames:
            await ws.send_str(f)
        async for m in ws:
            if m.type == WSMsgType.TEXT and m.data == "pong":
                self.pongs += 1
        return ws


async def _serve(peer: Peer) -> web.AppRunner:
    app = web.Application()
    app.router.add_get("/ws", peer.handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    peer.url = f"ws://127.0.0.1:{port}/ws"
    return runner


def test_source_answers_ping_counts_malformed_and_records(tmp_path: Path) -> None:
    good = [enc(NFL_LIVE).decode(), enc(NFL_FINAL).decode()]
    peer = Peer([good[0], "garbage", '{"gameId": []}', '{"nope": 1}', good[1]])
    rec = RecordingWriter(tmp_path / "s.jsonl.zst")
    src_box: list[PolymarketSportsSource] = []

    async def main() -> tuple[list[Game], list[Game], int]:
        runner = await _serve(peer)
        try:
            src = PolymarketSportsSource(SportsChannelConfig(url=peer.url), recorder=rec)
            src_box.append(src)
            async with src:
                first = await src.poll()
                t1 = src.last_recv_ns
                second = await src.poll()
                while not peer.pongs:
                    await asyncio.sleep(0.01)
            return first, second, t1
        finally:
            await runner.cleanup()

    first, second, t1 = asyncio.run(asyncio.wait_for(main(), 20))
    rec.close()
    src = src_box[0]
    assert isinstance(src, ScoreboardSource)
    assert [g.state for g in first] == ["in"] and second[0].final and second[0].winner == "BUF"
    assert 0 < t1 <= src.last_recv_ns
    assert src.stats.malformed == 3 and src.decode_stats.malformed == 3
    assert src.counters.pings == 1 and peer.pongs == 1
    assert src.teams.get("nfl", "BUF") is not None
    recs = [r for r in RecordingReader(tmp_path / "s.jsonl.zst") if r.channel == "sports"]
    assert len(recs) == 2 and "ping" not in [r.payload for r in recs]  # what poll handed out
    labelled = list(iter_labelled_sports_records(tmp_path / "s.jsonl.zst"))
    assert [(k, [g.final for g in gs]) for _, k, gs in labelled if gs] == [
        ("polymarket", [False]),
        ("polymarket", [True]),
    ]
    assert labelled[0][0] == t1

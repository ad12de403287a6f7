"""ESPN-format scoreboards → Game: the three real fixtures, edge cases, sources, the CLI."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import msgspec
import pytest
from aiohttp import web

from polylab.domain import Game
from polylab.feed.recording import RecordingWriter
from polylab.feed.sports import (
    ParseStats,
    ScoreboardError,
    TeamDirectory,
    encode_scoreboard,
    parse_scoreboard,
)
from polylab.feed.sports_sources import (
    HttpScoreboardSource,
    RecordedScoreboardSource,
    ScoreboardSource,
    iter_sports_records,
)

ESPN = "espn/ha-teamtracker"
FILES = {"nfl": "scoreboard_nfl.json", "nhl": "scoreboard_nhl.json", "mls": "scoreboard_mls.json"}


def _load(shared: Path, which: str) -> bytes:
    return (shared / ESPN / FILES[which]).read_bytes()


def _games(shared: Path, which: str) -> list[Game]:
    return parse_scoreboard(_load(shared, which))


def _by_short(games: list[Game], away: str, home: str) -> Game:
    (g,) = [g for g in games if g.away == away and g.home == home]
    return g


# -- the fixtures (counts from SOURCES.md) ---------------------------------------------------------
@pytest.mark.parametrize(
    ("which", "league", "events", "states"),
    [
        ("nfl", "nfl", 16, {"post": 2, "in": 8, "pre": 6}),
        ("nhl", "nhl", 10, {"post": 3, "in": 5, "pre": 2}),
        ("mls", "usa.1", 11, {"post": 2, "in": 4, "pre": 5}),
    ],
)
def test_fixture_state_counts_match_sources(
    shared_fixtures: Path, which: str, league: str, events: int, states: dict[str, int]
) -> None:
    games = _games(shared_fixtures, which)
    assert len(games) == events
    assert dict(Counter(g.state for g in games)) == states
    assert sum(g.final for g in games) == states["post"]
    assert {g.league for g in games} == {league}
    for g in games:
        assert g.final == (g.state == "post")
        if not g.final:
            assert g.winner is None


def test_nfl_ne_at_mia_is_final_with_mia_winning_20_7(shared_fixtures: Path) -> None:
    g = _by_short(_games(shared_fixtures, "nfl"), "NE", "MIA")
    assert g.final and g.completed and g.state == "post"
    assert (g.home, g.away, g.home_score, g.away_score, g.winner) == ("MIA", "NE", 20, 7, "MIA")
    assert g.status_name == "STATUS_FINAL"
    assert g.home_name == "Miami Dolphins" and g.away_name == "New England Patriots"
    assert g.start == "2022-09-11T17:00Z" and g.id == "401437630"


def test_nfl_away_winner_and_in_progress_scores(shared_fixtures: Path) -> None:
    games = _games(shared_fixtures, "nfl")
    buf = _by_short(games, "BUF", "LAR")
    assert buf.final and buf.winner == "BUF" and (buf.away_score, buf.home_score) == (31, 10)
    phi = _by_short(games, "PHI", "DET")
    assert phi.state == "in" and not phi.final and phi.winner is None
    assert (phi.away_score, phi.home_score) == (38, 28)


def test_mls_scoreless_draw_is_final_without_winner(shared_fixtures: Path) -> None:
    games = _games(shared_fixtures, "mls")
    draw = _by_short(games, "PHI", "ATL")
    assert draw.final and draw.status_name == "STATUS_FULL_TIME"
    assert (draw.home_score, draw.away_score, draw.winner) == (0, 0, None)
    nyc = _by_short(games, "NY", "NYC")
    assert nyc.final and nyc.winner == "NYC" and (nyc.home_score, nyc.away_score) == (2, 0)
    # in-progress soccer games carry winner:false on both sides and are not draws yet
    mtl = _by_short(games, "MTL", "NE")
    assert mtl.state == "in" and not mtl.final and mtl.winner is None


def test_nhl_finals_and_team_directory(shared_fixtures: Path) -> None:
    teams = TeamDirectory()
    games = parse_scoreboard(_load(shared_fixtures, "nhl"), teams=teams)
    finals = {(g.away, g.home): g.winner for g in games if g.final}
    assert finals == {("CBJ", "PIT"): "PIT", ("BUF", "WSH"): "BUF", ("COL", "MIN"): "MIN"}
    cbj = teams.get("nhl", "CBJ")
    assert cbj is not None
    assert (cbj.display_name, cbj.short_display_name, cbj.location) == (
        "Columbus Blue Jackets",
        "Blue Jackets",
        "Columbus",
    )
    assert cbj.names()[0] == "Columbus Blue Jackets"
    assert len(teams) == len({t for g in games for t in (g.home, g.away)}) == 15


# -- edge cases on edited copies of a real event ---------------------------------------------------
def _edited(shared: Path, edit: Callable[[dict[str, Any]], None]) -> Game:
    """NE @ MIA alone, after ``edit`` changed its event dict."""
    d = json.loads(_load(shared, "nfl"))
    (ev,) = [e for e in d["events"] if e["id"] == "401437630"]
    edit(ev)
    d["events"] = [ev]
    (g,) = parse_scoreboard(json.dumps(d))
    return g


def _status(ev: dict[str, Any]) -> dict[str, Any]:
    t: dict[str, Any] = ev["competitions"][0]["status"]["type"]
    return t


def test_postponed_and_cancelled_games_are_never_final(shared_fixtures: Path) -> None:
    def postponed(ev: dict[str, Any]) -> None:
        _status(ev).update(name="STATUS_POSTPONED", state="post", completed=False)

    def cancelled_but_completed(ev: dict[str, Any]) -> None:
        _status(ev).update(name="STATUS_CANCELED", state="post", completed=True)

    for edit in (postponed, cancelled_but_completed):
        g = _edited(shared_fixtures, edit)
        assert g.state == "post" and not g.completed and not g.final and g.winner is None


def test_winner_flags_absent_fall_back_to_score_and_both_true_is_no_winner(
    shared_fixtures: Path,
) -> None:
    def drop_flags(ev: dict[str, Any]) -> None:
        for c in ev["competitions"][0]["competitors"]:
            c.pop("winner")

    def both_true(ev: dict[str, Any]) -> None:
        for c in ev["competitions"][0]["competitors"]:
            c["winner"] = True

    assert _edited(shared_fixtures, drop_flags).winner == "MIA"
    assert _edited(shared_fixtures, both_true).winner is None


def test_odd_scores_read_as_numbers_or_zero(shared_fixtures: Path) -> None:
    def odd(ev: dict[str, Any]) -> None:
        home, away = ev["competitions"][0]["competitors"]
        home["score"], away["score"] = 21, "--"

    g = _edited(shared_fixtures, odd)
    assert (g.home_score, g.away_score) == (21, 0)


def test_malformed_payloads_raise_a_clear_error_and_bad_events_are_skipped(
    shared_fixtures: Path,
) -> None:
    stats = ParseStats()
    for bad in (b"", b"[1, 2]", b'{"events": [{"id": 5}]}', b"{not json"):
        with pytest.raises(ScoreboardError, match="not an ESPN-format scoreboard"):
            parse_scoreboard(bad, stats=stats)
    assert stats.malformed == 4
    d = json.loads(_load(shared_fixtures, "nhl"))
    d["events"][0]["competitions"][0]["competitors"].pop()
    d["events"][1]["competitions"] = []
    games = parse_scoreboard(json.dumps(d), stats=stats)
    assert len(games) == 8 and stats.skipped_events == 2 and stats.games == 8


def test_encode_scoreboard_round_trips_every_fixture(shared_fixtures: Path) -> None:
    for which in FILES:
        teams = TeamDirectory()
        games = parse_scoreboard(_load(shared_fixtures, which), teams=teams)
        again = TeamDirectory()
        assert parse_scoreboard(encode_scoreboard(games, teams=teams), teams=again) == games
        some = games[0]
        assert again.get(some.league, some.home) == teams.get(some.league, some.home)


def test_simulator_scoreboard_parses_with_the_same_rules() -> None:
    sim = pytest.importorskip("polylab.sim.sports")
    sb = sim.Scoreboard()
    lg = sim.LEAGUES[("soccer", "usa.1")]
    draw = sb.add_game("soccer", "usa.1", lg.teams[0], lg.teams[1], 1_700_000_000_000)
    win = sb.add_game("soccer", "usa.1", lg.teams[2], lg.teams[3], 1_700_000_000_000)
    late = sb.add_game("soccer", "usa.1", lg.teams[4], lg.teams[5], 1_700_000_000_000)
    for gid in (draw.id, win.id):
        sb.start(gid)
    sb.update(win.id, away_score=2)
    sb.finish(draw.id)
    sb.finish(win.id)
    sb.postpone(late.id)
    games = {
        g.id: g for g in parse_scoreboard(msgspec.json.encode(sb.scoreboard("soccer", "usa.1")))
    }
    assert games[draw.id].final and games[draw.id].winner is None
    assert games[win.id].final and games[win.id].winner == lg.teams[3].abbreviation
    assert not games[late.id].final and games[late.id].league == "usa.1"


# -- sources ---------------------------------------------------------------------------------------
def test_recorded_source_replays_sports_records_in_order(
    shared_fixtures: Path, tmp_path: Path
) -> None:
    path = tmp_path / "rec.jsonl.zst"
    with RecordingWriter(path) as w:
        w.write("market", "[]", 1)
        w.write("sports", _load(shared_fixtures, "nfl").decode(), 10)
        w.write("sports", "{broken", 20)
        w.write("sports", _load(shared_fixtures, "mls").decode(), 30)
    assert [(ns, len(gs)) for ns, gs in iter_sports_records(path)] == [(10, 16), (30, 11)]

    async def run() -> list[tuple[int, int]]:
        src = RecordedScoreboardSource(path)
        assert isinstance(src, ScoreboardSource)
        out = []
        while not src.exhausted:
            games = await src.poll()
            if games:
                out.append((src.last_recv_ns, len(games)))
        assert src.parse_stats.malformed == 1 and src.stats.ok == 2
        assert src.teams.get("usa.1", "ATL") is not None
        return out

    assert asyncio.run(run()) == [(10, 16), (30, 11)]


@asynccontextmanager
async def _server(routes: dict[str, Callable[[], Any]]) -> AsyncIterator[str]:
    """A real aiohttp server on 127.0.0.1 (ephemeral port) answering ``routes``."""

    def handler(make: Callable[[], Any]) -> Any:
        async def h(request: web.Request) -> web.StreamResponse:
            r: web.StreamResponse = await make()
            return r

        return h

    app = web.Application()
    for path, make in routes.items():
        app.router.add_get(path, handler(make))
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


def test_http_source_polls_counts_failures_and_never_raises(shared_fixtures: Path) -> None:
    body = _load(shared_fixtures, "nhl")
    calls = Counter[str]()

    async def ok() -> web.Response:
        calls["ok"] += 1
        return web.Response(body=body, content_type="application/json")

    async def broken() -> web.Response:
        return web.Response(status=503, text="busy")

    async def garbage() -> web.Response:
        return web.Response(text="<html>", content_type="text/html")

    async def slow() -> web.Response:
        await asyncio.sleep(1)
        return web.Response(body=body)

    async def run() -> None:
        routes = {
            "/apis/site/v2/sports/hockey/nhl/scoreboard": ok,
            "/apis/site/v2/sports/x/busy/scoreboard": broken,
            "/apis/site/v2/sports/x/html/scoreboard": garbage,
            "/apis/site/v2/sports/x/slow/scoreboard": slow,
        }
        async with _server(routes) as base:
            src = HttpScoreboardSource(base, "hockey", "nhl", poll_ms=50)
            assert isinstance(src, ScoreboardSource)
            first = await src.poll()
            second = await src.poll()
            assert len(first) == len(second) == 10 and calls["ok"] == 2
            assert src.stats.ok == 2 and src.last_recv_ns > 0
            assert src.teams.get("nhl", "PIT") is not None
            await src.aclose()
            for league, counter in (
                ("busy", "http_errors"),
                ("html", "malformed"),
                ("slow", "timeouts"),
                ("absent", "http_errors"),
            ):
                bad = HttpScoreboardSource(base, "x", league, poll_ms=50, timeout_s=0.3)
                assert await bad.poll() == []
                assert getattr(bad.stats, counter) == 1, (league, bad.stats)
                assert bad.stats.ok == 0 and bad.stats.last_error
                await bad.aclose()
        gone = HttpScoreboardSource(base, "hockey", "nhl", timeout_s=0.5)
        assert await gone.poll() == [] and gone.stats.errors == 1
        await gone.aclose()

    asyncio.run(run())


def test_http_source_rejects_a_non_positive_period() -> None:
    with pytest.raises(ValueError, match="poll_ms must be > 0"):
        HttpScoreboardSource("http://127.0.0.1:1", "football", "nfl", poll_ms=0)


# -- CLI -------------------------------------------------------------------------------------------
def test_cli_parse_json_lists_the_games(shared_fixtures: Path) -> None:
    path = shared_fixtures / ESPN / FILES["mls"]
    out = subprocess.run(
        [sys.executable, "-m", "polylab.cli", "sports", "parse", str(path), "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    rows = json.loads(out.stdout)
    assert len(rows) == 11
    draw = next(r for r in rows if r["id"] == "623599")
    assert {
        k: draw[k]
        for k in (
            "state",
            "completed",
            "home",
            "away",
            "home_score",
            "away_score",
            "winner",
            "final",
        )
    } == {
        "state": "post",
        "completed": True,
        "home": "ATL",
        "away": "PHI",
        "home_score": 0,
        "away_score": 0,
        "winner": None,
        "final": True,
    }
    nyc = next(r for r in rows if r["id"] == "623597")
    assert nyc["winner"] == "NYC" and nyc["home_score"] == 2


def test_cli_parse_table_and_bad_input_exit_codes(shared_fixtures: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from polylab.feed.sports_cli import app

    runner = CliRunner()
    res = runner.invoke(app, ["parse", str(shared_fixtures / ESPN / FILES["nfl"])])
    assert res.exit_code == 0 and "16 games" in res.output and "MIA" in res.output
    bad = tmp_path / "bad.json"
    bad.write_text("[]")
    assert runner.invoke(app, ["parse", str(bad)]).exit_code == 2
    assert runner.invoke(app, ["parse", str(tmp_path / "missing.json")]).exit_code == 2


def test_league_comes_from_the_payload_else_from_the_caller(shared_fixtures: Path) -> None:
    d = json.loads(_load(shared_fixtures, "nhl"))
    assert {g.league for g in parse_scoreboard(json.dumps(d), league="other")} == {"nhl"}
    del d["leagues"]
    assert {g.league for g in parse_scoreboard(json.dumps(d), league="hockey/nhl")} == {
        "hockey/nhl"
    }
    assert {g.league for g in parse_scoreboard(json.dumps(d))} == {""}


def test_http_source_reads_the_simulator_and_its_sports_markets_map() -> None:
    """The simulator's ``/espn`` route over a real socket; every sports market it lists maps
    to the game it was listed for."""
    server = pytest.importorskip("polylab.sim.server")
    from polylab.sim.config import SimConfig
    from polylab.strategy.mapping import MappingResult, map_games

    async def run() -> None:
        cfg = SimConfig(seed=5, binary_markets=0, negrisk_events=0, sports_games=4)
        async with server.running_sim(cfg) as sim:
            teams = TeamDirectory()
            games: list[Game] = []
            for sport, league in sim.state.scoreboard.leagues():
                src = HttpScoreboardSource(f"{sim.url}/espn", sport, league, teams=teams)
                games += await src.poll()
                assert src.stats.ok == 1 and src.stats.errors == 0
                await src.aclose()
            assert len(games) == 4 and {g.state for g in games} == {"pre"}
            markets = [m for m in sim.state.exchange.markets.markets.values() if m.game_id]
            assert any(m.neg_risk for m in markets)  # seed 5 has a 3-way soccer game
            res = map_games(games, markets, teams)
            mapped = {mm.condition_id: gid for gid, ms in res.by_game.items() for mm in ms}
            assert mapped == {m.condition_id: m.game_id for m in markets}
            assert not res.ambiguous
            # the same markets without game_id: found by team names, same tokens
            bare = [msgspec.structs.replace(m, game_id="", home="", away="") for m in markets]
            again = map_games(games, bare, teams)

            def sides(r: MappingResult) -> dict[str, tuple[str | None, ...]]:
                return {
                    mm.condition_id: (mm.game_id, mm.home_token, mm.away_token, mm.draw_token)
                    for ms in r.by_game.values()
                    for mm in ms
                }

            assert sides(again) == sides(res) and len(sides(res)) == len(markets)

    asyncio.run(run())

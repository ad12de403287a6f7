"""Reconciling ESPN and the venue's sports channel: one game, one id, the first final wins, and
every source's final time is kept."""

from __future__ import annotations

import asyncio

import msgspec

from polylab.domain import Game
from polylab.feed.sports_reconcile import ReconciledSource, Reconciler
from polylab.feed.sports_sources import ScoreboardSource
from polylab.market import Market
from polylab.strategy.mapping import map_games, match_market

T = 1_800_000_000_000_000_000


def espn(state: str, hs: int = 0, as_: int = 0, gid: str = "401772") -> Game:
    final = state == "post"
    return Game(
        id=gid,
        league="nfl",
        state=state,
        completed=final,
        home="BUF",
        away="LAC",
        home_score=hs,
        away_score=as_,
        winner=("BUF" if hs > as_ else "LAC") if final and hs != as_ else None,
        start="2025-01-27T00:30Z",  # UTC: the evening of the 26th in the US
        home_name="Buffalo Bills",
        away_name="Los Angeles Chargers",
    )


def venue(state: str, hs: int = 0, as_: int = 0, gid: str = "90061") -> Game:
    final = state == "post"
    return Game(
        id=gid,
        league="nfl",
        state=state,
        completed=final,
        home="BUF",
        away="LAC",
        home_score=hs,
        away_score=as_,
        winner=("BUF" if hs > as_ else "LAC") if final and hs != as_ else None,
        home_name="Buffalo Bills",
        away_name="Los Angeles Chargers",
        slug="nfl-lac-buf-2025-01-26",
    )


def test_games_are_joined_across_sources_under_the_first_id() -> None:
    r = Reconciler()
    (a,) = r.feed("espn", T, [espn("in", 7, 3)])
    (b,) = r.feed("polymarket", T + 1, [venue("in", 7, 3)])
    assert a.id == b.id == "401772" and b.slug == "nfl-lac-buf-2025-01-26"
    assert r.game_id("polymarket", "90061") == "401772" and r.stats.joined == 1


def test_the_first_final_wins_and_both_sources_times_are_recorded() -> None:
    r = Reconciler()
    r.feed("espn", T, [espn("in", 20, 10)])
    r.feed("polymarket", T + 5, [venue("in", 20, 10)])
    (fin,) = r.feed("polymarket", T + 100, [venue("post", 23, 10)])
    assert fin.final and fin.id == "401772" and fin.winner == "BUF"
    assert r.feed("espn", T + 900, [espn("in", 23, 10)]) == []  # stale: the final stands
    assert r.feed("espn", T + 2_000, [espn("post", 23, 10)]) == []  # lost the race
    ft = r.finals["401772"]
    assert (ft.first, ft.first_ns, ft.result) == ("polymarket", T + 100, "home")
    assert ft.by_source == {"polymarket": T + 100, "espn": T + 2_000} and not ft.disagree
    assert r.stats.suppressed == 2


def test_a_later_final_that_disagrees_is_counted_not_passed() -> None:
    r = Reconciler()
    r.feed("espn", T, [espn("post", 10, 23)])
    assert r.feed("polymarket", T + 1, [venue("post", 23, 10)]) == []
    assert r.finals["401772"].disagree == ["polymarket"] and r.stats.disagreements == 1


def test_different_games_and_different_days_stay_apart() -> None:
    r = Reconciler()
    r.feed("espn", T, [espn("in")])
    other_day = msgspec.structs.replace(venue("in"), slug="nfl-lac-buf-2025-02-09")
    (g,) = r.feed("polymarket", T, [other_day])
    assert g.id == "90061" and r.stats.joined == 0
    rematch = msgspec.structs.replace(venue("in", gid="90062"), home="NE", home_name="Patriots")
    (h,) = r.feed("polymarket", T, [rematch])
    assert h.id == "90062"


def test_ambiguous_candidates_are_not_joined() -> None:
    r = Reconciler()
    r.feed("espn", T, [espn("in", gid="1"), espn("in", gid="2")])  # the same teams twice
    (g,) = r.feed("polymarket", T, [venue("in")])
    assert g.id == "90061" and r.stats.joined == 0


class ListSource:
    """A ``ScoreboardSource`` that returns scripted snapshots, then waits forever."""

    def __init__(self, name: str, script: list[tuple[int, list[Game]]]) -> None:
        self.name = name
        self.last_recv_ns = 0
        self.script = list(script)

    async def poll(self) -> list[Game]:
        if not self.script:
            await asyncio.Event().wait()
        self.last_recv_ns, games = self.script.pop(0)
        await asyncio.sleep(0)
        return games


def test_reconciled_source_merges_two_sources_behind_the_protocol() -> None:
    e = ListSource("espn", [(T, [espn("in", 3, 0)]), (T + 50, [espn("post", 3, 0)])])
    v = ListSource("pm", [(T + 1, [venue("in", 3, 0)]), (T + 80, [venue("post", 3, 0)])])

    async def main() -> list[tuple[int, str, list[Game]]]:
        src = ReconciledSource([("espn", e), ("polymarket", v)])
        assert isinstance(src, ScoreboardSource)
        out = []
        for _ in range(3):
            games = await asyncio.wait_for(src.poll(), 5)
            out.append((src.last_recv_ns, src.last_label, games))
        await asyncio.sleep(0.01)
        await src.aclose()
        assert src.finals["401772"].by_source == {"espn": T + 50, "polymarket": T + 80}
        return out

    out = asyncio.run(main())
    assert [g.id for _, _, gs in out for g in gs] == ["401772"] * 3
    assert [(ns, lbl) for ns, lbl, gs in out if gs[0].final] == [(T + 50, "espn")]


# -- mapping the venue's slug and abbreviations -----------------------------------------------
def test_the_venue_slug_maps_markets_without_a_start_time() -> None:
    g = venue("post", 23, 10)
    win = Market(
        condition_id="c-win",
        token_ids=("y", "n"),
        outcomes=("Yes", "No"),
        question="Will the Bills beat the Chargers?",
        slug="nfl-lac-buf-2025-01-26-buf",
    )
    teams = Market(
        condition_id="c-ml",
        token_ids=("lac", "buf"),
        outcomes=("Chargers", "Bills"),
        question="Chargers vs. Bills",
        slug="nfl-lac-buf-2025-01-26",
    )
    spread = Market(
        condition_id="c-sp",
        token_ids=("a", "b"),
        outcomes=("Chargers", "Bills"),
        question="Spread: Bills (-3.5)",
        slug="nfl-lac-buf-2025-01-26-spread-home-3pt5",
    )
    other_day = msgspec.structs.replace(teams, condition_id="c-old", slug="nfl-lac-buf-2024-12-01")
    mw, mt = match_market(g, win), match_market(g, teams)
    assert mw is not None and mw.how == "slug" and mw.home_token == "y" and mw.away_token == "n"
    assert mt is not None and mt.how == "slug" and (mt.home_token, mt.away_token) == ("buf", "lac")
    assert match_market(g, spread) is None and match_market(g, other_day) is None
    res = map_games([g], [win, teams, spread, other_day])
    assert {m.condition_id for m in res.by_game[g.id]} == {"c-win", "c-ml"}


def test_espn_first_game_maps_a_market_holding_the_venues_game_id_by_slug() -> None:
    """ESPN saw the game first, so the reconciled id is ESPN's; the market (as Gamma lists it)
    carries the venue's ``gameId``. The venue's slug, copied onto every snapshot of the game,
    still maps it; a market of another game id and slug does not."""
    r = Reconciler()
    r.feed("espn", T, [espn("in", 7, 3)])
    r.feed("polymarket", T + 1, [venue("in", 7, 3)])
    (later,) = r.feed("espn", T + 2, [espn("post", 23, 10)])
    assert later.id == "401772" and later.slug == "nfl-lac-buf-2025-01-26"
    ml = Market(
        condition_id="c-ml",
        token_ids=("lac", "buf"),
        outcomes=("Chargers", "Bills"),
        question="Chargers vs. Bills",
        slug="nfl-lac-buf-2025-01-26",
        game_id="90061",
    )
    mm = match_market(later, ml)
    assert mm is not None and mm.how == "slug" and mm.paying_token("home") == "buf"
    other = msgspec.structs.replace(ml, game_id="77", slug="nfl-lac-buf-2025-02-09")
    assert match_market(later, other) is None

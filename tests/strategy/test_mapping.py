"""Games (real ESPN fixtures) → hand-made markets: which token pays on each result."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from polylab.domain import Game
from polylab.feed.sports import TeamDirectory, parse_scoreboard
from polylab.market import Market
from polylab.strategy.mapping import map_games, match_market, result_of

ESPN = "espn/ha-teamtracker"


@pytest.fixture(scope="module")
def board(shared_fixtures: Path) -> tuple[list[Game], TeamDirectory]:
    teams = TeamDirectory()
    games: list[Game] = []
    for f in ("scoreboard_nfl.json", "scoreboard_nhl.json", "scoreboard_mls.json"):
        games += parse_scoreboard((shared_fixtures / ESPN / f).read_bytes(), teams=teams)
    return games, teams


def game(board: tuple[list[Game], TeamDirectory], away: str, home: str, league: str) -> Game:
    (g,) = [g for g in board[0] if (g.away, g.home, g.league) == (away, home, league)]
    return g


def mk(cid: str, outcomes: tuple[str, ...] = ("Yes", "No"), **kw: str) -> Market:
    """A market whose tokens are ``{cid}-0``, ``{cid}-1``… in outcome order."""
    tokens = tuple(f"{cid}-{i}" for i in range(len(outcomes)))
    base = Market(condition_id=cid, token_ids=tokens, outcomes=outcomes)
    return msgspec.structs.replace(base, **kw)


def only(
    board: tuple[list[Game], TeamDirectory], m: Market
) -> tuple[str, str | None, str | None, str | None]:
    """(game id, home token, away token, draw token) of the one game ``m`` maps to."""
    res = map_games(board[0], [m], board[1])
    hits = [(gid, mm) for gid, ms in res.by_game.items() for mm in ms]
    assert len(hits) == 1, (hits, res.ambiguous)
    gid, mm = hits[0]
    return gid, mm.home_token, mm.away_token, mm.draw_token


def unmapped(board: tuple[list[Game], TeamDirectory], m: Market) -> bool:
    res = map_games(board[0], [m], board[1])
    return not any(res.by_game.values())


# -- team-outcome markets --------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("outcomes", "question", "home_i", "away_i"),
    [
        (("MIA", "NE"), "NE @ MIA", 0, 1),
        (("NE", "MIA"), "", 1, 0),
        (("Patriots", "Dolphins"), "Patriots vs. Dolphins", 1, 0),
        (("Miami Dolphins", "New England Patriots"), "Who wins?", 0, 1),
        (("Miami", "New England"), "Miami vs. New England", 0, 1),
    ],
)
def test_team_outcomes_map_by_abbreviation_and_every_name(
    board: tuple[list[Game], TeamDirectory],
    outcomes: tuple[str, ...],
    question: str,
    home_i: int,
    away_i: int,
) -> None:
    m = mk("c", outcomes, question=question, slug="nfl-ne-mia-2022-09-11")
    gid, home, away, draw = only(board, m)
    assert gid == "401437630"
    assert (home, away, draw) == (m.token_ids[home_i], m.token_ids[away_i], None)


def test_three_way_soccer_market_has_a_draw_token(board: tuple[list[Game], TeamDirectory]) -> None:
    m = mk(
        "c",
        ("Atlanta United FC", "Draw", "Philadelphia Union"),
        question="Atlanta United FC vs. Philadelphia Union",
    )
    assert only(board, m) == ("623599", "c-0", "c-2", "c-1")


def test_same_city_clubs_are_told_apart(board: tuple[list[Game], TeamDirectory]) -> None:
    m = mk("c", ("New York Red Bulls", "New York City FC"), question="Red Bulls vs. NYCFC")
    assert only(board, m) == ("623597", "c-1", "c-0", None)


def test_metadata_game_id_wins_and_a_foreign_game_id_never_matches(
    board: tuple[list[Game], TeamDirectory],
) -> None:
    # names say nothing, the id says everything
    assert only(board, mk("c", ("MIA", "NE"), game_id="401437630"))[0] == "401437630"
    # names say NE @ MIA but the market belongs to another game
    m = mk("c", ("Dolphins", "Patriots"), question="Patriots vs. Dolphins", game_id="999")
    assert unmapped(board, m)


def test_home_away_metadata_counts_as_both_teams(board: tuple[list[Game], TeamDirectory]) -> None:
    m = mk("c", ("Yes", "No"), home="MIA", away="NE", question="Will Miami win?")
    assert only(board, m) == ("401437630", "c-0", "c-1", "c-1")


# -- Yes/No markets --------------------------------------------------------------------------------
def test_yes_no_win_and_draw_markets_of_a_soccer_game(
    board: tuple[list[Game], TeamDirectory],
) -> None:
    atl = mk(
        "a", question="Will Atlanta United FC win on 2022-09-17?", slug="mls-phi-atl-2022-09-17-atl"
    )
    phi = mk(
        "p",
        question="Will Philadelphia Union win on 2022-09-17?",
        slug="mls-phi-atl-2022-09-17-phi",
    )
    draw = mk(
        "d",
        question="Will Philadelphia Union vs. Atlanta United FC end in a draw?",
        slug="mls-phi-atl-2022-09-17-draw",
    )
    assert only(board, atl) == ("623599", "a-0", "a-1", "a-1")
    assert only(board, phi) == ("623599", "p-1", "p-0", "p-1")
    assert only(board, draw) == ("623599", "d-1", "d-1", "d-0")


def test_yes_no_subject_from_slug_when_the_question_names_no_team(
    board: tuple[list[Game], TeamDirectory],
) -> None:
    m = mk("c", question="Who takes it on 2022-09-11?", slug="nfl-ne-mia-2022-09-11-ne")
    assert only(board, m) == ("401437630", "c-1", "c-0", "c-1")


def test_one_team_needs_a_known_start_within_12_hours(
    board: tuple[list[Game], TeamDirectory],
) -> None:
    q = "Will the Buffalo Bills win?"
    assert unmapped(board, mk("c", question=q))
    near = mk("c", question=q, game_start="2022-09-08T20:20:00Z")
    g, home, away, _ = only(board, near)
    assert (g, home, away) == ("401437654", "c-1", "c-0")  # BUF is the away side at LAR
    assert unmapped(board, mk("c", question=q, game_start="2022-09-09T13:00:00Z"))


# -- what must never map ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    "question",
    [
        "Spread: Dolphins (-3.5)",
        "Dolphins vs. Patriots: O/U 45.5",
        "Patriots vs. Dolphins: 1H moneyline",
        "Will the Dolphins win the Super Bowl?",
        "Will the Dolphins beat the Patriots by 10+ points?",
        "Will the Dolphins lose to the Patriots?",
    ],
)
def test_spreads_totals_halves_futures_and_inverted_questions_are_not_mapped(
    board: tuple[list[Game], TeamDirectory],
    question: str,
) -> None:
    outcomes = ("Yes", "No") if question.startswith("Will") else ("Dolphins", "Patriots")
    m = mk("c", outcomes, question=question, game_start="2022-09-11T17:00:00Z")
    assert unmapped(board, m)
    # the same market with a plain question maps: the words above are what stop it
    assert not unmapped(
        board,
        msgspec.structs.replace(
            m, question="Will the Dolphins win?" if outcomes[0] == "Yes" else ""
        ),
    )


def test_start_more_than_12_hours_away_or_wrong_slug_date_is_rejected(
    board: tuple[list[Game], TeamDirectory],
) -> None:
    base = mk("c", ("MIA", "NE"), question="Patriots vs. Dolphins")
    ok = msgspec.structs.replace(base, game_start="2022-09-12T04:59:00Z")
    assert only(board, ok)[0] == "401437630"
    assert unmapped(board, msgspec.structs.replace(base, game_start="2022-09-12T05:01:00Z"))
    assert unmapped(board, msgspec.structs.replace(base, slug="nfl-ne-mia-2023-01-08"))


def test_same_teams_twice_a_day_are_ambiguous_until_the_start_is_known(
    board: tuple[list[Game], TeamDirectory],
) -> None:
    m = mk("c", ("Penguins", "Blue Jackets"), question="Blue Jackets vs. Penguins")
    res = map_games(board[0], [m], board[1])
    assert res.ambiguous == ["c"] and not any(res.by_game.values())
    early = msgspec.structs.replace(m, game_start="2022-09-25T17:00:00Z")
    late = msgspec.structs.replace(m, game_start="2022-09-25T23:00:00Z")
    assert only(board, early) == ("401461562", "c-0", "c-1", None)  # CBJ @ PIT
    assert only(board, late) == ("401461563", "c-1", "c-0", None)  # PIT @ CBJ


def test_without_a_team_directory_display_names_and_nicknames_still_work(
    board: tuple[list[Game], TeamDirectory],
) -> None:
    g = game(board, "NE", "MIA", "nfl")
    assert match_market(g, mk("c", ("Miami Dolphins", "New England Patriots"))) is not None
    nick = match_market(g, mk("c", ("Dolphins", "Patriots")))  # display-name suffixes
    assert nick is not None and (nick.home_token, nick.away_token) == ("c-0", "c-1")
    city = mk("c", ("Miami", "New England"))
    assert match_market(g, city) is None  # locations come from the directory
    assert match_market(g, city, board[1]) is not None


def test_result_of_reads_home_away_draw_and_rejects_contradictions(
    board: tuple[list[Game], TeamDirectory],
) -> None:
    assert result_of(game(board, "NE", "MIA", "nfl")) == "home"
    assert result_of(game(board, "BUF", "LAR", "nfl")) == "away"
    assert result_of(game(board, "PHI", "ATL", "usa.1")) == "draw"
    assert result_of(game(board, "PHI", "DET", "nfl")) is None  # in progress
    wrong = msgspec.structs.replace(game(board, "NE", "MIA", "nfl"), winner="NE")
    assert result_of(wrong) is None
    no_winner = msgspec.structs.replace(game(board, "NE", "MIA", "nfl"), winner=None)
    assert result_of(no_winner) is None

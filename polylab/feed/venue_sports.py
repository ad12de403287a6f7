"""The venue's own sports channel (``sport_result`` messages) → ``polylab.domain.Game``.

Protocol doc §0.2: the channel needs no subscribe message, broadcasts every active game, and
keeps the connection with a text ``ping`` from the server every 5 s that the client answers with
``pong`` (within 10 s, or the server closes). Each message is a JSON object: ``gameId`` (number),
``leagueAbbreviation`` ("nfl", "nba", "cs2"…), ``slug`` (``nfl-lac-buf-2025-01-26``),
``homeTeam``, ``awayTeam``, ``status`` ("InProgress", "finished"…), ``score`` (a string whose
format varies: ``"3-16"``; esports ``"000-000|2-0|Bo3"``), ``period``, ``elapsed``, ``live``,
``ended``, ``finishedTimestamp`` (only once ended) and ``turn``.

Wire side: one tolerant msgspec Struct (unknown fields ignored, every field but ``gameId``
optional and nullable); a frame may hold one object or a list of them. Domain side, the rules:

* final = ``ended`` or a finished status ("finished", "final", "ended"…), unless the status says
  the game was not played (postponed, cancelled…: ``post`` but never completed);
* the score is read as ``AWAY-HOME``, the order of the teams in the slug (``{league}-{away}-
  {home}-{date}``, the venue's slug convention); esports scores read the series part (the
  segment after the first ``|``: ``"000-000|2-0|Bo3"`` → 2-0); an unreadable score is 0-0;
* winner = the side with the higher score once final; equal scores are a draw (None);
* team abbreviations come from the slug, upper-cased (``lac`` → ``LAC``), else from the team
  field when it is short, else the team name itself; ``home_name``/``away_name`` keep the team
  fields; ``slug`` and the game id (``str(gameId)``) are kept for mapping to markets.
"""

from __future__ import annotations

import re

import msgspec

from polylab.domain import Game

__all__ = [
    "FINISHED",
    "NOT_PLAYED",
    "SportResultWire",
    "SportsParseStats",
    "VenueSportsError",
    "decode_sport_results",
    "game_of",
    "parse_score",
    "parse_sport_results",
    "slug_parts",
]

FINISHED = frozenset({"finished", "final", "ended", "complete", "completed", "closed", "ft"})
"""Statuses (lower case) that mean the game is over with a result."""
NOT_PLAYED = frozenset(
    {"postponed", "canceled", "cancelled", "abandoned", "suspended", "delayed", "forfeit"}
)
"""Statuses (lower case) that mean "no result", whatever ``ended`` says."""
_LIVE = frozenset({"inprogress", "in_progress", "live", "halftime", "break", "running"})

_PAIR = re.compile(r"\s*(\d+)\s*[-:]\s*(\d+)\s*")
_SLUG = re.compile(r"^([a-z0-9]+)-([a-z0-9]+)-([a-z0-9]+)-(\d{4}-\d{2}-\d{2})(?:-|$)")


class VenueSportsError(ValueError):
    """A frame that is not a ``sport_result`` object or a list of them (message says why)."""


class SportResultWire(msgspec.Struct, frozen=True, rename="camel"):
    """One ``sport_result`` message (fields the parser does not read are ignored)."""

    game_id: int | str
    league_abbreviation: str | None = None
    slug: str | None = None
    home_team: str | None = None
    away_team: str | None = None
    status: str | None = None
    score: str | None = None
    period: str | None = None
    elapsed: str | int | float | None = None
    live: bool | None = None
    ended: bool | None = None
    finished_timestamp: str | int | None = None
    finished_timestamp_snake: str | int | None = msgspec.field(
        default=None, name="finished_timestamp"
    )
    turn: str | None = None


_DECODER = msgspec.json.Decoder(SportResultWire | list[SportResultWire])


class SportsParseStats(msgspec.Struct):
    """Counters of the sports channel's parsing: frames, results (games) made, bad frames."""

    frames: int = 0
    results: int = 0
    malformed: int = 0


def decode_sport_results(data: str | bytes) -> list[SportResultWire]:
    """The ``sport_result`` objects of one frame; ``VenueSportsError`` when it holds none."""
    try:
        got = _DECODER.decode(data)
    except msgspec.DecodeError as exc:
        raise VenueSportsError(f"not a sport_result message: {exc}") from None
    return got if isinstance(got, list) else [got]


def parse_score(text: str | None) -> tuple[int, int] | None:
    """``(first, second)`` numbers of a score string, or None when unreadable.

    ``"3-16"`` → (3, 16); esports ``"000-000|2-0|Bo3"`` → (2, 0), the series part."""
    if not text:
        return None
    parts = text.split("|")
    seg = parts[1] if len(parts) > 1 and _PAIR.fullmatch(parts[1]) else parts[0]
    m = _PAIR.fullmatch(seg)
    return (int(m.group(1)), int(m.group(2))) if m else None


def slug_parts(slug: str | None) -> tuple[str, str, str, str] | None:
    """``(league, away, home, YYYY-MM-DD)`` of a game slug (``nfl-lac-buf-2025-01-26``)."""
    m = _SLUG.match((slug or "").lower())
    return (m.group(1), m.group(2), m.group(3), m.group(4)) if m else None


def _abbr(team: str | None, from_slug: str) -> str:
    if from_slug:
        return from_slug.upper()
    t = (team or "").strip()
    return t.upper() if t and len(t) <= 5 and " " not in t else t


def _state(w: SportResultWire) -> tuple[str, bool]:
    """``(state, completed)`` in ESPN's words: pre / in / post."""
    st = (w.status or "").strip().lower()
    if st in NOT_PLAYED:
        return "post", False
    if w.ended or st in FINISHED:
        return "post", True
    if w.live or st in _LIVE:
        return "in", False
    return "pre", False


def game_of(w: SportResultWire) -> Game:
    """The ``Game`` one ``sport_result`` describes (see the module docstring for the rules)."""
    parts = slug_parts(w.slug)
    league = (w.league_abbreviation or (parts[0] if parts else "")).lower()
    away = _abbr(w.away_team, parts[1] if parts else "")
    home = _abbr(w.home_team, parts[2] if parts else "")
    state, completed = _state(w)
    score = parse_score(w.score)
    as_, hs = score if score is not None else (0, 0)
    winner: str | None = None
    if state == "post" and completed and hs != as_:
        winner = home if hs > as_ else away
    elapsed = "" if w.elapsed is None else str(w.elapsed)
    return Game(
        id=str(w.game_id),
        league=league,
        state=state,
        completed=completed,
        home=home,
        away=away,
        home_score=hs,
        away_score=as_,
        winner=winner,
        status_name=w.status or "",
        home_name=w.home_team or "",
        away_name=w.away_team or "",
        detail=" ".join(x for x in (w.period or "", elapsed) if x),
        slug=(w.slug or "").lower(),
    )


def parse_sport_results(data: str | bytes, *, stats: SportsParseStats | None = None) -> list[Game]:
    """Games of one sports-channel frame, in message order.

    Raises ``VenueSportsError`` (counted in ``stats.malformed``) for a frame that is not a
    ``sport_result`` object or list; an object with no usable teams still makes a Game (its
    abbreviations empty), which mapping simply never matches."""
    if stats is not None:
        stats.frames += 1
    try:
        wires = decode_sport_results(data)
    except VenueSportsError:
        if stats is not None:
            stats.malformed += 1
        raise
    games = [game_of(w) for w in wires]
    if stats is not None:
        stats.results += len(games)
    return games

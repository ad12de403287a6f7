"""Which market tokens pay when a game ends: games (scoreboard) → markets (catalog).

A market belongs to a game when its ``game_id`` equals the game's id; a market with a
``game_id`` of another game never matches. A game from the venue's sports channel carries the
venue's ``slug`` (``nfl-lac-buf-2025-01-26``): a market whose slug is that slug or starts with
it and a dash (``…-2025-01-26-lac``) is that game's, even when its ``game_id`` is another
source's id of the game (reconciled games keep one source's id). Otherwise the game's teams
must be found in the market's own words (``home``/``away`` abbreviations, outcomes, question
and slug), by abbreviation (case-sensitive in text, lower-case in slugs) or by any name the
scoreboard gives the team (display name and its word suffixes such as the nickname; with a
``TeamDirectory`` also short name and location; case and accents ignored). A name both teams
share is ignored, and a match inside a longer match of the other team ("New York" inside "New
York City FC") does not count. Both teams must be found, or one team plus a known start; and
when both the game's start and the market's ``game_start`` are known they must lie within
±12 h (a date written in the slug or question, ``YYYY-MM-DD``, must lie within ±1 day).

Orientation, i.e. which token pays on a home win, an away win, a draw:

* **team outcomes** (``("MIA", "NE")``, ``("Dolphins", "Patriots", "Draw")``): the outcome
  naming each team; the draw token is the "Draw"/"Tie" outcome when there is one, else None
  (a two-team market's draw rule is unknown here: a draw is skipped);
* **Yes/No "will X win"**: the subject is the team named first in the question (else the last
  slug word, e.g. ``…-2022-09-17-atl``, else the market's ``home``): Yes pays when it wins,
  No on the other team's win and on a draw;
* **Yes/No draw** (question or slug says draw/tie): Yes pays on a draw, No otherwise.

Spread, total, half and prop markets (words like spread, o/u, points, half, quarter) are never
mapped: their payout does not follow the winner. ``map_games`` gives each market to at most one
game; a market two games fit equally well (same teams twice in a day, start unknown) is reported
as ambiguous and left out.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Literal

import msgspec

from polylab.domain import Game
from polylab.feed.sports import TeamDirectory, TeamNames
from polylab.feed.venue_sports import slug_parts
from polylab.market import Market

__all__ = [
    "MAX_START_GAP_S",
    "MappingResult",
    "MarketMapping",
    "map_games",
    "match_market",
    "result_of",
]

MAX_START_GAP_S = 12 * 3600
"""Largest |game start − market game_start| accepted, seconds."""

Result = Literal["home", "away", "draw"]

_EXCLUDE = re.compile(
    r"\b(spreads?|handicap|o/u|over|under|totals?|points?|pts|goals?|scorers?|margin|halftime|"
    r"half|1h|2h|quarter|q[1-4]|period|innings?|1st|2nd|3rd|exact|props?|mvp|series|"
    r"championship|champion|title|playoffs?|division|conference|season|cup|super bowl)\b"
    r"|(?<!\d)[+-]\d",
    re.IGNORECASE,
)
_EXCLUDE_SLUG = frozenset(
    {"spread", "spreads", "handicap", "ou", "over", "under", "total", "totals", "points", "pts",
     "goals", "margin", "half", "halftime", "1h", "2h", "quarter", "q1", "q2", "q3", "q4",
     "period", "inning", "innings", "prop", "props", "mvp", "series", "championship"}
)  # fmt: skip
_DRAW_WORDS = re.compile(r"\b(draw|tie|tied|ties)\b", re.IGNORECASE)
_LOSE_WORDS = re.compile(r"\b(lose|loses|lost|losing)\b", re.IGNORECASE)
_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})")
_DRAW_OUTCOMES = frozenset({"draw", "tie", "the draw"})


class MarketMapping(msgspec.Struct, frozen=True, kw_only=True):
    """How one market pays on one game's result.

    ``home_token``/``away_token``/``draw_token``: the token worth $1 when the home team wins,
    the away team wins, or the game is drawn (None: unknown, do not trade that result).
    ``kind``: "teams" (one outcome per team), "win" (Yes/No on one team), "draw" (Yes/No on a
    draw). ``how``: "game_id" (metadata) or "names" (teams found in the market's words).
    ``teams_found``: 0-2; ``start_gap_s``: |game start − market game_start| when both known.
    """

    game_id: str
    condition_id: str
    home_token: str | None
    away_token: str | None
    draw_token: str | None
    kind: Literal["teams", "win", "draw"]
    how: Literal["game_id", "slug", "names"]
    teams_found: int = 0
    start_gap_s: int | None = None

    def paying_token(self, result: Result) -> str | None:
        """The token worth $1 for ``result`` (None when unknown)."""
        if result == "home":
            return self.home_token
        if result == "away":
            return self.away_token
        return self.draw_token


class MappingResult(msgspec.Struct, frozen=True):
    """Mappings by game id, and the condition ids of markets more than one game fits."""

    by_game: dict[str, list[MarketMapping]]
    ambiguous: list[str]


def result_of(game: Game) -> Result | None:
    """ "home"/"away"/"draw" for a final game whose winner agrees with its score; else None."""
    if not game.final:
        return None
    if game.winner is None:
        return "draw" if game.home_score == game.away_score else None
    if game.winner == game.home and game.home_score >= game.away_score:
        return "home"
    if game.winner == game.away and game.away_score >= game.home_score:
        return "away"
    return None


# -- text ------------------------------------------------------------------------------------------
class _Words:
    """A text as space-padded alphanumeric words (accents dropped): ``cs`` keeps the case,
    ``lo`` is lower case; both have the same character positions."""

    __slots__ = ("cs", "lo")

    def __init__(self, text: str) -> None:
        t = unicodedata.normalize("NFKD", text)
        t = "".join(c for c in t if not unicodedata.combining(c))
        self.cs = " " + " ".join(re.findall(r"[A-Za-z0-9]+", t)) + " "
        self.lo = self.cs.lower()


def _parse_time(text: str) -> datetime | None:
    if not text:
        return None
    try:
        t = datetime.fromisoformat(text.replace(" ", "T"))
    except ValueError:
        return None
    return t if t.tzinfo is not None else t.replace(tzinfo=UTC)


Span = tuple[int, int]


class _Team:
    """One team's search keys: its abbreviation (matched case-sensitively, except in slugs) and
    its long names (lower case, 3+ characters, each padded by spaces)."""

    def __init__(self, abbr: str, names: Iterable[str]) -> None:
        self.abbr = f" {abbr} "
        self.names = {f" {_Words(x).lo.strip()} " for x in names}
        self.names = {n for n in self.names if len(n) >= 5}

    def spans(self, w: _Words, *, slug: bool = False) -> list[Span]:
        """Every place a key occurs in ``w`` (start, end)."""
        out: list[Span] = []
        for key, text in (
            (self.abbr.lower() if slug else self.abbr, w.lo if slug else w.cs),
            *((n, w.lo) for n in self.names),
        ):
            i = text.find(key)
            while i >= 0:
                out.append((i, i + len(key)))
                i = text.find(key, i + 1)
        return out


def _display_names(display: str) -> list[str]:
    """The display name and its word suffixes ("New England Patriots" → "England Patriots",
    "Patriots"): nicknames without a team directory."""
    words = display.split()
    return [" ".join(words[i:]) for i in range(len(words))]


def _teams_of(game: Game, teams: TeamDirectory | None) -> tuple[_Team, _Team]:
    def names(abbr: str, display: str) -> list[str]:
        tn: TeamNames | None = teams.get(game.league, abbr) if teams is not None else None
        return [*_display_names(display), *(tn.names() if tn is not None else ())]

    home = _Team(game.home, names(game.home, game.home_name))
    away = _Team(game.away, names(game.away, game.away_name))
    shared = home.names & away.names
    home.names -= shared
    away.names -= shared
    return home, away


def _resolve(home: list[Span], away: list[Span]) -> tuple[list[Span], list[Span]]:
    """Drop each team's matches that lie inside a longer match of the other team ("New York"
    inside "New York City FC")."""

    def inside(a: Span, others: list[Span]) -> bool:
        return any(o[0] <= a[0] and a[1] <= o[1] and o[1] - o[0] > a[1] - a[0] for o in others)

    return [h for h in home if not inside(h, away)], [a for a in away if not inside(a, home)]


class _Text:
    """A market's words, prepared once."""

    def __init__(self, m: Market) -> None:
        self.q = _Words(m.question)
        self.slug = _Words(m.slug)
        self.slug_tokens = self.slug.lo.split()
        self.outcomes = [_Words(o) for o in m.outcomes]
        self.excluded = bool(_EXCLUDE.search(m.question)) or bool(
            _EXCLUDE_SLUG.intersection(self.slug_tokens)
        )
        self.draw = bool(_DRAW_WORDS.search(m.question)) or "draw" in self.slug_tokens[-1:]
        self.lose = bool(_LOSE_WORDS.search(m.question))
        self.dates = [
            datetime(int(y), int(mo), int(d), tzinfo=UTC)
            for y, mo, d in _DATE.findall(f"{m.question} {m.slug}")
            if 1 <= int(mo) <= 12 and 1 <= int(d) <= 31
        ]


def _outcome_team(w: _Words, home: _Team, away: _Team) -> str:
    """ "home"/"away"/"draw"/"yes"/"no"/"" for one outcome label (the longer match wins)."""
    s = w.lo.strip()
    if s in _DRAW_OUTCOMES:
        return "draw"
    if s in ("yes", "no"):
        return s
    hs, as_ = _resolve(home.spans(w), away.spans(w))
    h = max((e - b for b, e in hs), default=0)
    a = max((e - b for b, e in as_), default=0)
    if h > a:
        return "home"
    if a > h:
        return "away"
    return ""


def match_market(
    game: Game, market: Market, teams: TeamDirectory | None = None, *, _text: _Text | None = None
) -> MarketMapping | None:
    """How ``market`` pays on ``game``'s result, or None when it is not this game's winner
    market (see the module docstring for the rules)."""
    slug_hit = _slug_hit(game.slug, market.slug)
    if market.game_id and market.game_id != game.id and not slug_hit:
        return None  # another game's id (unless the slug says it is this game under another id)
    tx = _text if _text is not None else _Text(market)
    if tx.excluded or len(market.token_ids) != len(market.outcomes):
        return None
    home, away = _teams_of(game, teams)
    how: Literal["game_id", "slug", "names"] = (
        "game_id" if market.game_id == game.id else "slug" if slug_hit else "names"
    )

    found = [False, False]
    for meta in (market.home, market.away):
        if meta and meta in (game.home, game.away):
            found[(game.home, game.away).index(meta)] = True
    q_spans = _resolve(home.spans(tx.q), away.spans(tx.q))
    slug_spans = (home.spans(tx.slug, slug=True), away.spans(tx.slug, slug=True))
    labels = [_outcome_team(w, home, away) for w in tx.outcomes]
    for i, side in enumerate(("home", "away")):
        if q_spans[i] or slug_spans[i] or side in labels:
            found[i] = True
    if how == "slug":
        found = [True, True]
    n_found = sum(found)

    g_start, m_start = _parse_time(game.start), _parse_time(market.game_start)
    gap = int(abs((g_start - m_start).total_seconds())) if g_start and m_start else None
    g_day = g_start or _slug_day(game.slug)
    if how == "names":
        if gap is not None and gap > MAX_START_GAP_S:
            return None
        if g_day is not None and any(abs((g_day - d).days) > 1 for d in tx.dates):
            return None
        if n_found < 2 and not (n_found == 1 and gap is not None):
            return None

    def mk(
        home_t: str | None,
        away_t: str | None,
        draw_t: str | None,
        kind: Literal["teams", "win", "draw"],
    ) -> MarketMapping:
        return MarketMapping(
            game_id=game.id,
            condition_id=market.condition_id,
            home_token=home_t,
            away_token=away_t,
            draw_token=draw_t,
            kind=kind,
            how=how,
            teams_found=n_found,
            start_gap_s=gap,
        )

    toks = market.token_ids
    if labels.count("home") == 1 and labels.count("away") == 1 and labels.count("draw") <= 1:
        draw_t = toks[labels.index("draw")] if "draw" in labels else None
        return mk(toks[labels.index("home")], toks[labels.index("away")], draw_t, "teams")
    if sorted(labels) != ["no", "yes"]:
        return None
    yes, no = toks[labels.index("yes")], toks[labels.index("no")]
    if tx.draw:
        return mk(no, no, yes, "draw")
    if tx.lose:
        return None
    first = [min((b for b, _ in sp), default=-1) for sp in q_spans]
    subject = _subject(game, market, tx, first)
    if subject == "home":
        return mk(yes, no, no, "win")
    if subject == "away":
        return mk(no, yes, no, "win")
    return None


def _slug_hit(game_slug: str, market_slug: str) -> bool:
    """The market's slug is the game's slug, or starts with it and a dash (lower case)."""
    if not game_slug or not market_slug:
        return False
    g, m = game_slug.lower(), market_slug.lower()
    return m == g or m.startswith(g + "-")


def _slug_day(slug: str) -> datetime | None:
    """Midnight UTC of the date in a game slug (``nfl-lac-buf-2025-01-26``), or None."""
    parts = slug_parts(slug)
    return _parse_time(parts[3]) if parts else None


def _subject(game: Game, market: Market, tx: _Text, pos: list[int]) -> str:
    """The team a Yes/No market asks about: first named in the question, else the last slug
    word, else the market's ``home``."""
    hp, ap = pos
    if hp >= 0 and (ap < 0 or hp < ap):
        return "home"
    if ap >= 0 and (hp < 0 or ap < hp):
        return "away"
    last = tx.slug_tokens[-1] if tx.slug_tokens else ""
    if last and last in (game.home.lower(), game.away.lower()) and game.home != game.away:
        return "home" if last == game.home.lower() else "away"
    if hp < 0 and ap < 0 and market.home:
        if market.home == game.home:
            return "home"
        if market.home == game.away:
            return "away"
    return ""


def map_games(
    games: Iterable[Game], markets: Iterable[Market], teams: TeamDirectory | None = None
) -> MappingResult:
    """Give each market to the game it fits best (metadata id, then venue slug, then teams
    found, then the nearest start); markets that two games fit equally well go to ``ambiguous``."""
    gs = list(games)
    by_game: dict[str, list[MarketMapping]] = {g.id: [] for g in gs}
    ambiguous: list[str] = []
    for m in markets:
        tx = _Text(m)
        cands = [mm for g in gs if (mm := match_market(g, m, teams, _text=tx)) is not None]
        if not cands:
            continue

        def rank(mm: MarketMapping) -> tuple[bool, bool, int, int]:
            gap = mm.start_gap_s if mm.start_gap_s is not None else MAX_START_GAP_S + 1
            return (mm.how == "game_id", mm.how == "slug", mm.teams_found, -gap)

        cands.sort(key=rank, reverse=True)
        if len(cands) > 1 and rank(cands[0]) == rank(cands[1]):
            ambiguous.append(m.condition_id)
            continue
        by_game[cands[0].game_id].append(cands[0])
    return MappingResult(by_game=by_game, ambiguous=ambiguous)

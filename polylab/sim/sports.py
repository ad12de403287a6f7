"""Simulated sports results, served in the public ESPN scoreboard JSON shape.

The Sniper strategy reads scoreboards to learn a result before the market reprices, so the
simulator needs a source whose shape matches the real one field for field where it matters:
``events[].id, date, name, shortName ("NE @ MIA")``, ``competitions[0].status.type {name, state
pre|in|post, completed, detail, shortDetail}`` and ``competitors[] {homeAway, score (string),
winner, team{id, abbreviation, displayName, shortDisplayName, name, location}}``.

Rules kept from the real feed: final is ``state == "post" and completed``; soccer ends with
``STATUS_FULL_TIME`` and a draw has ``winner: false`` on both sides; ``winner`` appears once the
game is over; postponed games are ``post`` but not completed. Times are ms since the epoch.
"""

from __future__ import annotations

import random
import time
from typing import Any, Literal

import msgspec

__all__ = ["LEAGUES", "Game", "League", "Scoreboard", "Team", "iso_minute", "win_prices"]


class Team(msgspec.Struct, frozen=True):
    """A team: ESPN-style id, abbreviation ("NE"), city/location and nickname."""

    id: str
    abbreviation: str
    location: str
    name: str

    @property
    def display_name(self) -> str:
        """Location and nickname: "New England Patriots"."""
        return f"{self.location} {self.name}"


class League(msgspec.Struct, frozen=True):
    """A league served at ``/espn/{sport}/{league}/scoreboard``."""

    sport: str
    slug: str
    id: str
    name: str
    abbreviation: str
    period_name: str
    periods: int
    soccer: bool
    teams: tuple[Team, ...]


_TABLE = """
football|nfl|28|National Football League|NFL|Quarter|4
  NE New_England Patriots|MIA Miami Dolphins|BUF Buffalo Bills|NYJ New_York Jets
  KC Kansas_City Chiefs|DEN Denver Broncos|DAL Dallas Cowboys|PHI Philadelphia Eagles
basketball|nba|46|National Basketball Association|NBA|Quarter|4
  BOS Boston Celtics|LAL Los_Angeles Lakers|GS Golden_State Warriors|MIA Miami Heat
  DEN Denver Nuggets|NY New_York Knicks|CHI Chicago Bulls|PHX Phoenix Suns
hockey|nhl|90|National Hockey League|NHL|Period|3
  PIT Pittsburgh Penguins|CBJ Columbus Blue_Jackets|BOS Boston Bruins|NYR New_York Rangers
  TOR Toronto Maple_Leafs|CHI Chicago Blackhawks|EDM Edmonton Oilers|VGK Vegas Golden_Knights
soccer|usa.1|770|MLS|MLS|Half|2
  NYC New_York_City FC|NY New_York Red_Bulls|LA LA Galaxy|LAFC Los_Angeles FC
  SEA Seattle Sounders_FC|ATL Atlanta United_FC|MIA Inter Miami_CF|CLB Columbus Crew
"""
"""League rows, then team rows ("ABBR Location Name", ``_`` for a space inside a word)."""


def _leagues(table: str) -> dict[tuple[str, str], League]:
    out: dict[tuple[str, str], League] = {}
    head: list[str] = []
    teams: list[Team] = []
    for line in [*table.strip().splitlines(), ""]:
        if line and line.startswith(" "):
            for item in line.split("|"):
                abbr, loc, name = (w.replace("_", " ") for w in item.split())
                teams.append(Team(str(len(teams) + 1), abbr, loc, name))
            continue
        if head:
            sport, slug, lid, name, abbr, period, n = head
            soccer = sport == "soccer"
            out[(sport, slug)] = League(
                sport, slug, lid, name, abbr, period, int(n), soccer, tuple(teams)
            )
        head, teams = line.split("|"), []
    return out


LEAGUES: dict[tuple[str, str], League] = _leagues(_TABLE)
"""Leagues the simulator can schedule games in, by ``(sport, league)``."""

State = Literal["pre", "in", "post"]


class Game(msgspec.Struct, kw_only=True):
    """One game's mutable state. ``start_ms``: scheduled start; ``clock_s``: seconds shown on
    the game clock (counting down, or minutes played for soccer)."""

    id: str
    sport: str
    league: str
    home: Team
    away: Team
    start_ms: int
    state: State = "pre"
    period: int = 0
    clock_s: int = 0
    home_score: int = 0
    away_score: int = 0
    completed: bool = False
    postponed: bool = False
    halftime: bool = False

    @property
    def winner(self) -> Literal["home", "away", "draw", ""]:
        """Result once completed: "home", "away" or "draw"; "" before."""
        if not self.completed:
            return ""
        if self.home_score == self.away_score:
            return "draw"
        return "home" if self.home_score > self.away_score else "away"

    @property
    def short_name(self) -> str:
        """Away @ home abbreviations: "NE @ MIA"."""
        return f"{self.away.abbreviation} @ {self.home.abbreviation}"


_MONTHS = "January February March April May June July August September October November December"
_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def iso_minute(ms: int) -> str:
    """ms since the epoch → ESPN's ``2022-09-11T17:00Z``."""
    return time.strftime("%Y-%m-%dT%H:%MZ", time.gmtime(ms // 1000))


def _clock_text(s: int) -> str:
    return f"{s // 60}:{s % 60:02d}"


_TYPES = {
    "scheduled": ("1", "STATUS_SCHEDULED", "pre", False, "Scheduled"),
    "in": ("2", "STATUS_IN_PROGRESS", "in", False, "In Progress"),
    "first_half": ("25", "STATUS_FIRST_HALF", "in", False, "First Half"),
    "second_half": ("26", "STATUS_SECOND_HALF", "in", False, "Second Half"),
    "halftime": ("23", "STATUS_HALFTIME", "in", False, "Halftime"),
    "final": ("3", "STATUS_FINAL", "post", True, "Final"),
    "full_time": ("28", "STATUS_FULL_TIME", "post", True, "Full Time"),
    "postponed": ("6", "STATUS_POSTPONED", "post", False, "Postponed"),
}
"""ESPN ``status.type`` (id, name, state, completed, description) by game phase."""


def _status(g: Game, lg: League) -> dict[str, Any]:
    """``competitions[0].status`` of a game."""
    t = time.gmtime(g.start_ms // 1000)
    clock = f"{(t.tm_hour % 12) or 12}:{t.tm_min:02d} {'AM' if t.tm_hour < 12 else 'PM'} UTC"
    display = f"{g.clock_s // 60}'" if lg.soccer else _clock_text(g.clock_s)
    if g.postponed:
        kind, detail, short = "postponed", "Postponed", "Postponed"
    elif g.state == "pre":
        month = _MONTHS.split()[t.tm_mon - 1]
        kind, short = "scheduled", f"{t.tm_mon}/{t.tm_mday} - {clock}"
        detail = f"{_DAYS[t.tm_wday]}, {month} {_ordinal(t.tm_mday)} at {clock}"
    elif g.state == "post":
        kind, detail = ("full_time", "FT") if lg.soccer else ("final", "Final")
        short = detail
    elif g.halftime:
        kind, detail, short = "halftime", "Halftime", "Halftime"
    elif lg.soccer:
        kind, detail, short = ("first_half" if g.period <= 1 else "second_half"), display, display
    else:
        p = _ordinal(g.period)
        kind, detail, short = "in", f"{display} - {p} {lg.period_name}", f"{display} - {p}"
    tid, name, state, completed, desc = _TYPES[kind]
    typ = {"id": tid, "name": name, "state": state, "completed": completed}
    typ |= {"description": desc, "detail": detail, "shortDetail": short}
    return {"clock": g.clock_s, "displayClock": display, "period": g.period, "type": typ}


def _competitor(g: Game, lg: League, side: Literal["home", "away"]) -> dict[str, Any]:
    team = g.home if side == "home" else g.away
    score = g.home_score if side == "home" else g.away_score
    uid = f"s:{lg.id}~l:{lg.id}~t:{team.id}"
    out: dict[str, Any] = {
        "id": team.id,
        "uid": uid,
        "type": "team",
        "order": 0 if side == "home" else 1,
        "homeAway": side,
        "team": {
            "id": team.id,
            "uid": uid,
            "location": team.location,
            "name": team.name,
            "abbreviation": team.abbreviation,
            "displayName": team.display_name,
            "shortDisplayName": team.name,
            "isActive": True,
        },
        "score": str(score),
    }
    if g.completed:
        out["winner"] = g.winner == side
    return out


class Scoreboard:
    """All simulated games, by id; changed by the generator, read by ``/espn/...`` handlers.

    ``revision`` grows on every change, so pollers can tell a new snapshot from a repeat.
    """

    def __init__(self) -> None:
        self.games: dict[str, Game] = {}
        self.revision = 0
        self._next_id = 401_700_000

    def add_game(self, sport: str, league: str, home: Team, away: Team, start_ms: int) -> Game:
        """Schedule a game (state ``pre``); ``KeyError`` for an unknown league."""
        if (sport, league) not in LEAGUES:
            raise KeyError(f"unknown league {sport}/{league}; known: {sorted(LEAGUES)}")
        self._next_id += 1
        g = Game(
            id=str(self._next_id),
            sport=sport,
            league=league,
            home=home,
            away=away,
            start_ms=start_ms,
        )
        self.games[g.id] = g
        self.revision += 1
        return g

    def start(self, game_id: str) -> None:
        """Kick-off: state ``in``, first period, full clock (soccer: minute 0)."""
        g = self.games[game_id]
        lg = LEAGUES[(g.sport, g.league)]
        g.state, g.period = "in", 1
        g.clock_s = 0 if lg.soccer else (20 * 60 if lg.slug == "nhl" else 12 * 60)
        self.revision += 1

    def update(
        self,
        game_id: str,
        *,
        home_score: int | None = None,
        away_score: int | None = None,
        period: int | None = None,
        clock_s: int | None = None,
        halftime: bool | None = None,
    ) -> None:
        """Change the score, period, clock or halftime flag of a game in progress."""
        g = self.games[game_id]
        if home_score is not None:
            g.home_score = home_score
        if away_score is not None:
            g.away_score = away_score
        if period is not None:
            g.period = period
        if clock_s is not None:
            g.clock_s = clock_s
        if halftime is not None:
            g.halftime = halftime
        self.revision += 1

    def finish(self, game_id: str, overtime_winner: Literal["home", "away"] = "home") -> str:
        """Final whistle: ``post`` + completed; returns "home", "away" or "draw". Only soccer
        ends level: elsewhere a tie goes to overtime, won by ``overtime_winner`` (+1)."""
        g = self.games[game_id]
        if g.home_score == g.away_score and not LEAGUES[(g.sport, g.league)].soccer:
            if overtime_winner == "home":
                g.home_score += 1
            else:
                g.away_score += 1
        g.state, g.completed, g.halftime = "post", True, False
        self.revision += 1
        return g.winner

    def random_game(self, rng: random.Random, start_ms: int) -> Game:
        """Schedule a game between two random teams of a random league."""
        sport, league = rng.choice(sorted(LEAGUES))
        home, away = rng.sample(LEAGUES[(sport, league)].teams, 2)
        return self.add_game(sport, league, home, away, start_ms)

    def random_score(self, game_id: str, rng: random.Random) -> None:
        """One scoring play of a game in progress (league-typical points), clock moved on."""
        g = self.games[game_id]
        lg = LEAGUES[(g.sport, g.league)]
        pts = 1 if lg.soccer or lg.slug == "nhl" else rng.choice((2, 3, 3, 7))
        home = rng.random() < 0.5
        period = min(lg.periods, g.period + (1 if rng.random() < 0.4 else 0))
        clock = 45 * 60 * period - rng.randint(0, 2400) if lg.soccer else rng.randint(0, 720)
        self.update(
            game_id,
            home_score=g.home_score + (pts if home else 0),
            away_score=g.away_score + (0 if home else pts),
            period=period,
            clock_s=clock,
        )

    def postpone(self, game_id: str) -> None:
        """Postponed: ``post`` but not completed (must not be read as final)."""
        g = self.games[game_id]
        g.state, g.postponed = "post", True
        self.revision += 1

    def leagues(self) -> list[tuple[str, str]]:
        """``(sport, league)`` pairs that have at least one game."""
        return sorted({(g.sport, g.league) for g in self.games.values()})

    def event(self, g: Game) -> dict[str, Any]:
        """One game as an ESPN ``events[]`` item."""
        lg = LEAGUES[(g.sport, g.league)]
        status = _status(g, lg)
        date = iso_minute(g.start_ms)
        uid = f"s:{lg.id}~l:{lg.id}~e:{g.id}"
        return {
            "id": g.id,
            "uid": uid,
            "date": date,
            "name": f"{g.away.display_name} at {g.home.display_name}",
            "shortName": g.short_name,
            "season": {"year": time.gmtime(g.start_ms // 1000).tm_year, "type": 2},
            "competitions": [
                {
                    "id": g.id,
                    "uid": f"{uid}~c:{g.id}",
                    "date": date,
                    "startDate": date,
                    "timeValid": True,
                    "neutralSite": False,
                    "status": status,
                    "competitors": [_competitor(g, lg, "home"), _competitor(g, lg, "away")],
                }
            ],
            "status": status,
            "links": [],
        }

    def scoreboard(self, sport: str, league: str, dates: str | None = None) -> dict[str, Any]:
        """The ``/scoreboard`` body of one league; ``dates`` ("YYYYMMDD") keeps that UTC day's
        games. ``KeyError`` for an unknown league."""
        lg = LEAGUES[(sport, league)]
        games = [g for g in self.games.values() if g.sport == sport and g.league == league]
        if dates:
            games = [
                g
                for g in games
                if time.strftime("%Y%m%d", time.gmtime(g.start_ms // 1000)) == dates
            ]
        games.sort(key=lambda g: (g.start_ms, g.id))
        year = time.gmtime(games[0].start_ms // 1000 if games else time.time()).tm_year
        body: dict[str, Any] = {
            "leagues": [
                {
                    "id": lg.id,
                    "uid": f"s:{lg.id}~l:{lg.id}",
                    "name": lg.name,
                    "abbreviation": lg.abbreviation,
                    "slug": lg.slug,
                    "season": {"year": year, "type": {"id": "2", "type": 2}},
                }
            ],
            "season": {"type": 2, "year": year},
        }
        if league == "nfl":
            body["week"] = {"number": 1}
        else:
            day = games[0].start_ms if games else int(time.time() * 1000)
            body["day"] = {"date": time.strftime("%Y-%m-%d", time.gmtime(day // 1000))}
        body["events"] = [self.event(g) for g in games]
        return body


def win_prices(lead: int, soccer: bool) -> dict[str, int]:
    """Fair YES prices (price micros, on the 0.01 grid) of "home" / "away" / "draw" given the
    home team's lead; they sum to $1 (a draw has a price only in soccer)."""
    draw = max(50_000, 280_000 - abs(lead) * 100_000) if soccer else 0
    rest = 1_000_000 - draw
    home = rest // 2 + lead * (150_000 if soccer else 40_000)
    home = max(60_000, min(rest - 60_000, home)) // 10_000 * 10_000
    return {"home": home, "away": rest - home, "draw": draw}

"""Scoreboards in ESPN's format → ``polylab.strategy.base.Game``.

Wire side: frozen msgspec Structs naming only the scoreboard fields polylab reads (camelCase on
the wire, snake_case here), decoded by one decoder built at import. Domain side: ``Game``
(abbreviations, integer scores, ``winner`` abbreviation or None) plus a ``TeamDirectory`` of
every name a team goes by, which market mapping needs and ``Game`` does not carry.

Rules (ESPN's own, checked on the NFL/NHL/MLS fixtures):

* final = ``state == "post"`` and ``completed``; postponed/cancelled/abandoned games are never
  final, whatever ``completed`` says (their ``completed`` is forced to False here);
* winner = the competitor with ``winner: true``; ``winner: false`` on both sides is a draw
  (None); when neither side carries the flag at all, the higher score wins a final game;
* scores are strings; a missing or non-numeric score reads as 0.

The sources that poll or replay scoreboards (``ScoreboardSource`` and its implementations) live
in ``polylab.feed.sports_sources``.
"""

from __future__ import annotations

import msgspec

from polylab.domain import Game

__all__ = [
    "CompetitionWire",
    "CompetitorWire",
    "EventWire",
    "LeagueWire",
    "ParseStats",
    "ScoreboardError",
    "ScoreboardWire",
    "StatusTypeWire",
    "StatusWire",
    "TeamDirectory",
    "TeamNames",
    "TeamWire",
    "encode_scoreboard",
    "parse_scoreboard",
]

NOT_PLAYED = frozenset(
    {
        "STATUS_POSTPONED",
        "STATUS_CANCELED",
        "STATUS_CANCELLED",
        "STATUS_ABANDONED",
        "STATUS_SUSPENDED",
        "STATUS_DELAYED",
        "STATUS_RAIN_DELAY",
        "STATUS_FORFEIT_NO_RESULT",
    }
)
"""Status names that mean "no result", even when the feed says ``post``/``completed``."""


class ScoreboardError(ValueError):
    """A scoreboard payload that is not the JSON object we expect (the message says why)."""


# -- wire ------------------------------------------------------------------------------------------
class TeamWire(msgspec.Struct, frozen=True, rename="camel"):
    """``competitors[].team``."""

    id: str = ""
    abbreviation: str = ""
    display_name: str = ""
    short_display_name: str = ""
    name: str = ""
    location: str = ""


class CompetitorWire(msgspec.Struct, frozen=True, rename="camel"):
    """``competitions[0].competitors[]``; ``winner`` is absent before the end."""

    home_away: str = ""
    winner: bool | None = None
    score: str | int | None = None
    team: TeamWire = TeamWire()


class StatusTypeWire(msgspec.Struct, frozen=True, rename="camel"):
    """``status.type``."""

    name: str = ""
    state: str = ""
    completed: bool = False
    detail: str = ""
    short_detail: str = ""


class StatusWire(msgspec.Struct, frozen=True, rename="camel"):
    """``status`` (of an event or a competition)."""

    type: StatusTypeWire = StatusTypeWire()
    period: int = 0
    display_clock: str = ""


class CompetitionWire(msgspec.Struct, frozen=True, rename="camel"):
    """``events[].competitions[0]``."""

    date: str = ""
    status: StatusWire | None = None
    competitors: list[CompetitorWire] = []


class EventWire(msgspec.Struct, frozen=True, rename="camel"):
    """``events[]``."""

    id: str
    date: str = ""
    name: str = ""
    short_name: str = ""
    status: StatusWire | None = None
    competitions: list[CompetitionWire] = []


class LeagueWire(msgspec.Struct, frozen=True, rename="camel"):
    """``leagues[]`` (only its slug, e.g. ``nfl`` or ``usa.1``, and abbreviation)."""

    slug: str = ""
    abbreviation: str = ""


class ScoreboardWire(msgspec.Struct, frozen=True, rename="camel"):
    """The scoreboard response: ``{leagues[], events[], …}`` (other keys ignored)."""

    leagues: list[LeagueWire] = []
    events: list[EventWire] = []


_DECODER = msgspec.json.Decoder(ScoreboardWire)


# -- domain helpers --------------------------------------------------------------------------------
class TeamNames(msgspec.Struct, frozen=True, kw_only=True):
    """Every name a team goes by on the scoreboard (for finding it in market text)."""

    abbreviation: str
    display_name: str = ""
    short_display_name: str = ""
    name: str = ""
    location: str = ""

    def names(self) -> tuple[str, ...]:
        """The non-empty long names, longest first (abbreviation excluded)."""
        got = {
            n for n in (self.display_name, self.short_display_name, self.name, self.location) if n
        }
        return tuple(sorted(got, key=lambda n: (-len(n), n)))


class TeamDirectory:
    """Team names by ``(league, abbreviation)``, filled by every parse that is given it."""

    def __init__(self) -> None:
        self._teams: dict[tuple[str, str], TeamNames] = {}

    def add(self, league: str, team: TeamNames) -> None:
        """Learn (or refresh) one team."""
        self._teams[(league, team.abbreviation)] = team

    def get(self, league: str, abbreviation: str) -> TeamNames | None:
        """A team's names, or None when never seen."""
        return self._teams.get((league, abbreviation))

    def __len__(self) -> int:
        return len(self._teams)


class ParseStats(msgspec.Struct):
    """Counters of scoreboard parsing: payloads, games made, events skipped (no home/away)."""

    payloads: int = 0
    games: int = 0
    skipped_events: int = 0
    malformed: int = 0


def _score(value: str | int | None) -> int:
    if isinstance(value, int):
        return value if value >= 0 else 0
    if value and value.isdigit():
        return int(value)
    return 0


def _winner(
    final: bool, home: CompetitorWire, away: CompetitorWire, hs: int, aws: int
) -> str | None:
    if not final:
        return None
    if home.winner and not away.winner:
        return home.team.abbreviation
    if away.winner and not home.winner:
        return away.team.abbreviation
    if home.winner is None and away.winner is None and hs != aws:
        return home.team.abbreviation if hs > aws else away.team.abbreviation
    return None


def _game(ev: EventWire, league: str, teams: TeamDirectory | None) -> Game | None:
    if not ev.competitions:
        return None
    comp = ev.competitions[0]
    sides = {c.home_away: c for c in comp.competitors}
    home, away = sides.get("home"), sides.get("away")
    if home is None or away is None or not home.team.abbreviation or not away.team.abbreviation:
        return None
    st = comp.status or ev.status or StatusWire()
    t = st.type
    completed = t.completed and t.name not in NOT_PLAYED
    final = t.state == "post" and completed
    hs, aws = _score(home.score), _score(away.score)
    if teams is not None:
        for c in (home, away):
            tw = c.team
            teams.add(
                league,
                TeamNames(
                    abbreviation=tw.abbreviation,
                    display_name=tw.display_name,
                    short_display_name=tw.short_display_name,
                    name=tw.name,
                    location=tw.location,
                ),
            )
    return Game(
        id=ev.id,
        league=league,
        state=t.state,
        completed=completed,
        home=home.team.abbreviation,
        away=away.team.abbreviation,
        home_score=hs,
        away_score=aws,
        winner=_winner(final, home, away, hs, aws),
        start=ev.date or comp.date,
        status_name=t.name,
        home_name=home.team.display_name,
        away_name=away.team.display_name,
        detail=t.short_detail or t.detail,
    )


def parse_scoreboard(
    data: str | bytes,
    *,
    league: str = "",
    teams: TeamDirectory | None = None,
    stats: ParseStats | None = None,
) -> list[Game]:
    """Games of one ESPN-format scoreboard payload, in feed order.

    ``league``: used when the payload names none (default: ``leagues[0].slug``, e.g. "nfl",
    "usa.1"). ``teams`` learns every team's names. Events without a home and an away competitor
    are skipped (counted in ``stats``). Raises ``ScoreboardError`` when the payload is not a
    scoreboard object.
    """
    try:
        wire = _DECODER.decode(data)
    except msgspec.DecodeError as exc:
        if stats is not None:
            stats.malformed += 1
        raise ScoreboardError(f"not an ESPN-format scoreboard: {exc}") from None
    lg = (wire.leagues[0].slug if wire.leagues else "") or league
    out: list[Game] = []
    skipped = 0
    for ev in wire.events:
        g = _game(ev, lg, teams)
        if g is None:
            skipped += 1
        else:
            out.append(g)
    if stats is not None:
        stats.payloads += 1
        stats.games += len(out)
        stats.skipped_events += skipped
    return out


def encode_scoreboard(
    games: list[Game], *, league: str = "", teams: TeamDirectory | None = None
) -> bytes:
    """An ESPN-format scoreboard payload holding ``games`` (the inverse of ``parse_scoreboard``
    for the fields it reads): synthetic recordings, tests and fake sources use it. ``teams``
    supplies the long names; ``winner`` flags are written once a game is completed."""

    def side(g: Game, home: bool) -> CompetitorWire:
        abbr = g.home if home else g.away
        tn = teams.get(g.league, abbr) if teams is not None else None
        tw = TeamWire(
            abbreviation=abbr,
            display_name=(g.home_name if home else g.away_name) or (tn.display_name if tn else ""),
            short_display_name=tn.short_display_name if tn else "",
            name=tn.name if tn else "",
            location=tn.location if tn else "",
        )
        won = None if not g.completed else g.winner == abbr
        return CompetitorWire(
            home_away="home" if home else "away",
            winner=won,
            score=str(g.home_score if home else g.away_score),
            team=tw,
        )

    events = [
        EventWire(
            id=g.id,
            date=g.start,
            name=f"{g.away_name or g.away} at {g.home_name or g.home}",
            short_name=f"{g.away} @ {g.home}",
            competitions=[
                CompetitionWire(
                    date=g.start,
                    status=StatusWire(
                        type=StatusTypeWire(
                            name=g.status_name,
                            state=g.state,
                            completed=g.completed,
                            detail=g.detail,
                            short_detail=g.detail,
                        )
                    ),
                    competitors=[side(g, True), side(g, False)],
                )
            ],
        )
        for g in games
    ]
    lg = league or (games[0].league if games else "")
    return msgspec.json.encode(ScoreboardWire(leagues=[LeagueWire(slug=lg)], events=events))

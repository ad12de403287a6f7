"""Scoreboards in ESPN's format → ``polylab.strategy.base.Game``, and the sources that poll them.

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

Sources (``ScoreboardSource``: ``async poll() -> list[Game]``) never raise into the caller:
errors are counted in ``stats`` and logged, and ``poll`` returns ``[]``.
``HttpScoreboardSource`` polls ``{base}/espn/{sport}/{league}/scoreboard`` (the simulator's
path); ``RecordedScoreboardSource`` replays ``sports`` records of a polylab recording. The
venue's own sports stream fits the same protocol as a further source.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol, runtime_checkable

import httpx
import msgspec

from polylab.feed.recording import RecordingReader
from polylab.strategy.base import Game

__all__ = [
    "CompetitionWire",
    "CompetitorWire",
    "EventWire",
    "HttpScoreboardSource",
    "LeagueWire",
    "ParseStats",
    "RecordedScoreboardSource",
    "ScoreboardError",
    "ScoreboardSource",
    "ScoreboardWire",
    "SourceStats",
    "StatusTypeWire",
    "StatusWire",
    "TeamDirectory",
    "TeamNames",
    "TeamWire",
    "encode_scoreboard",
    "iter_sports_records",
    "parse_scoreboard",
]

log = logging.getLogger(__name__)

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


# -- sources ---------------------------------------------------------------------------------------
@runtime_checkable
class ScoreboardSource(Protocol):
    """Where scoreboard snapshots come from (ESPN-format HTTP, a recording, the venue's stream).

    ``poll()`` waits for the next snapshot and returns its games; it never raises (failures are
    counted in ``stats`` and give ``[]``). ``last_recv_ns`` is the local receive time of the last
    snapshot returned (ns since the epoch; the time a strategy saw the result).
    """

    name: str
    last_recv_ns: int

    async def poll(self) -> list[Game]: ...


class SourceStats(msgspec.Struct):
    """Counters of a source: attempts, good snapshots, failures by kind, last error text."""

    polls: int = 0
    ok: int = 0
    errors: int = 0
    timeouts: int = 0
    http_errors: int = 0
    malformed: int = 0
    last_error: str = ""


class HttpScoreboardSource:
    """Poll ``{base_url}/espn/{sport}/{league}/scoreboard`` every ``poll_ms`` milliseconds.

    ``timeout_s`` bounds each request (connect + read). Pass ``client`` to share an
    ``httpx.AsyncClient``; otherwise one is made and ``aclose()`` closes it. The first ``poll``
    fetches at once, later ones wait for the next period (missed periods are skipped, not
    bunched).
    """

    def __init__(
        self,
        base_url: str,
        sport: str,
        league: str,
        *,
        poll_ms: int = 1000,
        timeout_s: float = 5.0,
        client: httpx.AsyncClient | None = None,
        teams: TeamDirectory | None = None,
    ) -> None:
        if poll_ms <= 0:
            raise ValueError(f"poll_ms must be > 0, was {poll_ms}")
        self.name = f"http:{sport}/{league}"
        self.url = f"{base_url.rstrip('/')}/espn/{sport}/{league}/scoreboard"
        self.league = league
        self.poll_ns = poll_ms * 1_000_000
        self.timeout = httpx.Timeout(timeout_s)
        self.teams = teams if teams is not None else TeamDirectory()
        self.stats = SourceStats()
        self.parse_stats = ParseStats()
        self.last_recv_ns = 0
        self._own_client = client is None
        self._client = client if client is not None else httpx.AsyncClient(timeout=self.timeout)
        self._next_ns = 0

    async def poll(self) -> list[Game]:
        """Wait for the next period, fetch and parse; ``[]`` (counted) on any failure."""
        now = time.monotonic_ns()
        if self._next_ns > now:
            await asyncio.sleep((self._next_ns - now) / 1e9)
            now = time.monotonic_ns()
        nxt = self._next_ns + self.poll_ns
        self._next_ns = nxt if self._next_ns and nxt > now else now + self.poll_ns
        return await self.fetch()

    async def fetch(self) -> list[Game]:
        """One request now (no pacing); ``[]`` (counted) on any failure."""
        st = self.stats
        st.polls += 1
        try:
            resp = await self._client.get(self.url, timeout=self.timeout)
            recv_ns = time.time_ns()
            resp.raise_for_status()
            games = parse_scoreboard(
                resp.content, league=self.league, teams=self.teams, stats=self.parse_stats
            )
        except httpx.TimeoutException as exc:
            return self._fail("timeouts", f"timeout: {exc!r}")
        except httpx.HTTPStatusError as exc:
            return self._fail("http_errors", f"HTTP {exc.response.status_code}")
        except httpx.HTTPError as exc:
            return self._fail("errors", f"transport: {exc!r}")
        except ScoreboardError as exc:
            return self._fail("malformed", str(exc)[:200])
        except Exception as exc:  # a poller must not die on an unforeseen error
            log.exception("%s: unexpected scoreboard poll failure", self.url)
            return self._fail("errors", f"unexpected: {exc!r}")
        st.ok += 1
        self.last_recv_ns = recv_ns
        return games

    def _fail(self, counter: str, why: str) -> list[Game]:
        st = self.stats
        setattr(st, counter, getattr(st, counter) + 1)
        st.last_error = why
        if st.polls - st.ok <= 20 or not (st.polls - st.ok) % 100:
            log.warning("%s: scoreboard poll failed (%s)", self.url, why)
        return []

    async def aclose(self) -> None:
        """Close the client if this source made it."""
        if self._own_client:
            await self._client.aclose()


def iter_sports_records(
    path: str | Path, *, teams: TeamDirectory | None = None, stats: ParseStats | None = None
) -> Iterator[tuple[int, list[Game]]]:
    """``(recv_ns, games)`` for every ``sports`` record of a recording (bad payloads counted in
    ``stats.malformed`` and skipped)."""
    for rec in RecordingReader(path):
        if rec.channel != "sports":
            continue
        try:
            games = parse_scoreboard(rec.payload, teams=teams, stats=stats)
        except ScoreboardError as exc:
            log.warning("%s: bad sports record at %d: %s", path, rec.recv_ns, exc)
            continue
        yield rec.recv_ns, games


class RecordedScoreboardSource:
    """Replay the ``sports`` records of a recording, one snapshot per ``poll`` (no waiting).

    ``last_recv_ns`` is the recorded receive time of the snapshot; after the last one ``poll``
    returns ``[]`` and ``exhausted`` is True.
    """

    def __init__(self, path: str | Path, *, teams: TeamDirectory | None = None) -> None:
        self.name = f"recording:{Path(path).name}"
        self.teams = teams if teams is not None else TeamDirectory()
        self.parse_stats = ParseStats()
        self.stats = SourceStats()
        self.last_recv_ns = 0
        self.exhausted = False
        self._it = iter_sports_records(path, teams=self.teams, stats=self.parse_stats)

    async def poll(self) -> list[Game]:
        """The next recorded snapshot's games (``[]`` once exhausted)."""
        self.stats.polls += 1
        try:
            recv_ns, games = next(self._it)
        except StopIteration:
            self.exhausted = True
            return []
        except OSError as exc:
            self.exhausted = True
            self.stats.errors += 1
            self.stats.last_error = f"read: {exc!r}"
            log.warning("%s: %s", self.name, self.stats.last_error)
            return []
        self.stats.ok += 1
        self.last_recv_ns = recv_ns
        return games

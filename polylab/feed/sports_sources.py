"""Scoreboard sources: where ``polylab.feed.sports`` snapshots come from.

Split out of ``polylab.feed.sports`` so that module holds only the wire format and its parsing
(and stays small); the sources add polling, pacing, replay and failure counting on top.

Sources (``ScoreboardSource``: ``async poll() -> list[Game]``) never raise into the caller:
errors are counted in ``stats`` and logged, and ``poll`` returns ``[]``.
``HttpScoreboardSource`` polls ESPN's ``{espn}/apis/site/v2/sports/{sport}/{league}/scoreboard``
(``{espn}``: the venue profile's ESPN base; the simulator serves it under ``/espn``);
``RecordedScoreboardSource`` replays ``sports`` records of a polylab recording. The
venue's own sports channel is ``polylab.feed.sports_channel.PolymarketSportsSource``; its frames
are recorded in the same ``sports`` channel and told apart by ``payload_source``.
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

from polylab.domain import Game
from polylab.feed.recording import RecordingReader
from polylab.feed.sports import ParseStats, ScoreboardError, TeamDirectory, parse_scoreboard
from polylab.feed.venue_sports import VenueSportsError, parse_sport_results

__all__ = [
    "HttpScoreboardSource",
    "RecordedScoreboardSource",
    "ScoreboardSource",
    "SourceStats",
    "iter_labelled_sports_records",
    "iter_sports_records",
    "payload_source",
    "sports_payload_games",
]

log = logging.getLogger("polylab.feed.sports")  # the logger name from before the split


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
    """Poll ``{base_url}/apis/site/v2/sports/{sport}/{league}/scoreboard`` every ``poll_ms``
    milliseconds. ``base_url``: the ESPN base of the venue profile (``VenueProfile.espn``).

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
        self.url = f"{base_url.rstrip('/')}/apis/site/v2/sports/{sport}/{league}/scoreboard"
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


def payload_source(payload: str) -> str:
    """ "polymarket" for a sports-channel frame (a ``sport_result`` object or list, or the
    text ``ping``), "espn" for a scoreboard payload."""
    head = payload.lstrip()[:1]
    if head == "[" or payload == "ping":
        return "polymarket"
    if head == "{" and '"gameId"' in payload and '"events"' not in payload:
        return "polymarket"
    return "espn"


def sports_payload_games(
    payload: str, *, teams: TeamDirectory | None = None, stats: ParseStats | None = None
) -> tuple[str, list[Game]]:
    """``(source label, games)`` of one recorded ``sports`` payload of either source (a
    ``ping`` gives no games); ``ScoreboardError`` when it cannot be read."""
    kind = payload_source(payload)
    if kind == "espn":
        return kind, parse_scoreboard(payload, teams=teams, stats=stats)
    if payload == "ping":
        return kind, []
    try:
        return kind, parse_sport_results(payload)
    except VenueSportsError as exc:
        if stats is not None:
            stats.malformed += 1
        raise ScoreboardError(str(exc)) from None


def iter_sports_records(
    path: str | Path, *, teams: TeamDirectory | None = None, stats: ParseStats | None = None
) -> Iterator[tuple[int, list[Game]]]:
    """``(recv_ns, games)`` for every ``sports`` record of a recording, ESPN payloads and
    sports-channel frames alike (bad payloads counted in ``stats.malformed`` and skipped)."""
    for recv_ns, _, games in iter_labelled_sports_records(path, teams=teams, stats=stats):
        yield recv_ns, games


def iter_labelled_sports_records(
    path: str | Path, *, teams: TeamDirectory | None = None, stats: ParseStats | None = None
) -> Iterator[tuple[int, str, list[Game]]]:
    """``(recv_ns, source label, games)`` for every ``sports`` record ("espn" or
    "polymarket", see ``payload_source``)."""
    for rec in RecordingReader(path):
        if rec.channel != "sports":
            continue
        try:
            kind, games = sports_payload_games(rec.payload, teams=teams, stats=stats)
        except ScoreboardError as exc:
            log.warning("%s: bad sports record at %d: %s", path, rec.recv_ns, exc)
            continue
        yield rec.recv_ns, kind, games


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

"""Reconcile several scoreboard sources (ESPN, the venue's sports channel) into one game stream.

The same game reaches polylab under a different id from each source (an ESPN event id, the
venue's ``gameId``). ``Reconciler`` matches them and hands its caller (the Sniper) one game per
real game, under one id:

* **matching**: a game joins a known one from *another* source with the same id, else with the
  same two teams (abbreviations, or else lower-cased names) in a compatible league and, when
  both dates are known, start dates at most one day apart (the venue's slug carries the local
  date, ESPN the UTC time). Only a unique candidate joins; otherwise the game stands alone.
  The joined game keeps the id it was first seen under (the Sniper tracks games by id), and
  every snapshot of it carries the venue's slug once any source gave one (market mapping
  matches on the slug whatever id a market's ``game_id`` holds).
* **first final wins**: the first final result of a game from any source is passed on; later
  snapshots of that game from the other sources are not (a later final that disagrees is
  counted in ``stats.disagreements`` and noted in ``FinalTimes.disagree``). Before any final,
  every snapshot passes (renamed to the game's id).
* **times**: ``finals[game_id].by_source[label]`` is each source's first final receive time (ns
  since the epoch), kept even when that source lost, so the lag of each source can be compared
  (notebook 03, ``polylab.research.sniper_lag.source_lag_frame``).

``ReconciledSource`` runs several ``ScoreboardSource``s concurrently behind the same protocol.
(``polylab.feed.sports_sources.sports_payload_games`` parses a recorded payload of either source.)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from datetime import date

import msgspec

from polylab.domain import Game
from polylab.feed.sports_sources import ScoreboardSource, SourceStats
from polylab.feed.venue_sports import slug_parts

__all__ = [
    "FinalTimes",
    "ReconcileStats",
    "ReconciledSource",
    "Reconciler",
]

log = logging.getLogger(__name__)

_LEAGUES = {"usa.1": "mls", "eng.1": "epl", "esp.1": "laliga", "ger.1": "bundesliga"}
"""ESPN league slugs → the venue's abbreviations (the others are the same word: nfl, nba…)."""


class FinalTimes(msgspec.Struct, kw_only=True):
    """When each source first showed one game final (``by_source``: label → ns since the
    epoch); ``first``: the label whose final was passed on; ``result``: its "home" / "away" /
    "draw"; ``disagree``: labels whose final named another result."""

    game_id: str
    league: str
    home: str
    away: str
    first: str
    first_ns: int
    result: str
    by_source: dict[str, int] = msgspec.field(default_factory=dict)
    disagree: list[str] = msgspec.field(default_factory=list)


class ReconcileStats(msgspec.Struct):
    """Counters: snapshots in, games passed on, games joined across sources, finals suppressed
    (a source that lost the race), finals that disagree with the first."""

    snapshots: int = 0
    passed: int = 0
    joined: int = 0
    suppressed: int = 0
    disagreements: int = 0


class _Known:
    __slots__ = ("abbrs", "day", "id", "league", "names", "slug", "sources")

    def __init__(self, g: Game, label: str) -> None:
        self.id = g.id
        self.league = _league(g.league)
        self.abbrs = frozenset((g.home, g.away))
        self.names = frozenset(n.lower() for n in (g.home_name, g.away_name) if n)
        self.day = _day(g)
        self.slug = g.slug
        self.sources = {label}


def _league(league: str) -> str:
    lg = league.lower()
    return _LEAGUES.get(lg, lg)


def _result(g: Game) -> str:
    """ "home" / "away" / "draw" of a final game (by its winner, else level scores), else ""."""
    if g.winner is not None:
        return "home" if g.winner == g.home else "away"
    return "draw" if g.home_score == g.away_score else ""


def _day(g: Game) -> date | None:
    parts = slug_parts(g.slug)
    text = parts[3] if parts else g.start[:10]
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


class Reconciler:
    """Match games across sources and let the first final win (see the module docstring)."""

    def __init__(self) -> None:
        self.finals: dict[str, FinalTimes] = {}
        self.stats = ReconcileStats()
        self._ids: dict[tuple[str, str], str] = {}
        self._known: dict[str, _Known] = {}

    def game_id(self, label: str, source_id: str) -> str | None:
        """The reconciled id of ``label``'s game ``source_id`` (None when never seen)."""
        return self._ids.get((label, source_id))

    def _match(self, g: Game, label: str) -> str:
        key = (label, g.id)
        got = self._ids.get(key)
        if got is not None:
            return got
        known = self._known.get(g.id)
        if known is not None and label not in known.sources:
            cands = [known]
        else:
            lg, day = _league(g.league), _day(g)
            abbrs = frozenset((g.home, g.away))
            names = frozenset(n.lower() for n in (g.home_name, g.away_name) if n)
            cands = [
                k
                for k in self._known.values()
                if label not in k.sources
                and (not lg or not k.league or lg == k.league)
                and (
                    (len(abbrs) == 2 and abbrs == k.abbrs) or (len(names) == 2 and names == k.names)
                )
                and (day is None or k.day is None or abs((day - k.day).days) <= 1)
            ]
        if len(cands) == 1:
            k = cands[0]
            k.sources.add(label)
            self.stats.joined += 1
            gid = k.id
        else:
            gid = g.id
            while gid in self._known:  # another source's game already holds this id
                gid = f"{label}:{gid}"
            self._known[gid] = _Known(g, label)
        self._ids[key] = gid
        return gid

    def feed(self, label: str, recv_ns: int, games: Sequence[Game]) -> list[Game]:
        """The games of one snapshot of source ``label`` received at ``recv_ns`` (ns), as the
        caller should see them: renamed to their reconciled id, without the ones another
        source already showed final."""
        self.stats.snapshots += 1
        out: list[Game] = []
        for g in games:
            gid = self._match(g, label)
            ft = self.finals.get(gid)
            if g.final:
                res = _result(g)
                if ft is None:
                    ft = FinalTimes(
                        game_id=gid,
                        league=g.league,
                        home=g.home,
                        away=g.away,
                        first=label,
                        first_ns=recv_ns,
                        result=res,
                    )
                    self.finals[gid] = ft
                if label not in ft.by_source:
                    ft.by_source[label] = recv_ns
                    if res != ft.result and label not in ft.disagree:
                        ft.disagree.append(label)
                        self.stats.disagreements += 1
                        log.warning(
                            "game %s: %s says %s, %s said %s", gid, label, res, ft.first, ft.result
                        )
            if ft is not None and ft.first != label:
                self.stats.suppressed += 1
                continue
            known = self._known[gid]
            if g.slug and not known.slug:
                known.slug = g.slug
            slug = g.slug or known.slug
            if g.id != gid or g.slug != slug:
                g = msgspec.structs.replace(g, id=gid, slug=slug)
            out.append(g)
        self.stats.passed += len(out)
        return out


class ReconciledSource:
    """Several labelled ``ScoreboardSource``s as one (``[("espn", http), ("polymarket", ws)]``;
    a label may repeat, e.g. one ESPN source per league). Each source is polled by its own task,
    started on the first ``poll``; ``poll`` returns the next non-empty reconciled snapshot and
    ``last_recv_ns`` its source's receive time. ``aclose()`` stops the tasks (not the sources).
    """

    def __init__(self, sources: Sequence[tuple[str, ScoreboardSource]]) -> None:
        if not sources:
            raise ValueError("ReconciledSource needs at least one source")
        self.name = "reconciled:" + "+".join(dict.fromkeys(label for label, _ in sources))
        self.sources = list(sources)
        self.reconciler = Reconciler()
        self.stats = SourceStats()
        self.last_recv_ns = 0
        self.last_label = ""
        self._queue: asyncio.Queue[tuple[str, int, list[Game]]] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def finals(self) -> dict[str, FinalTimes]:
        """Each game's per-source final times (``Reconciler.finals``)."""
        return self.reconciler.finals

    async def _pump(self, label: str, src: ScoreboardSource) -> None:
        """Poll one source; reconcile each snapshot as it comes (so every source's final time
        is recorded even when nobody polls), queue what is left."""
        while True:
            try:
                games = await src.poll()
            except Exception:  # a source must not raise; if one does, it costs a pause
                log.exception("sports source %s failed; polling it again in 1 s", label)
                await asyncio.sleep(1.0)
                continue
            if not games:
                continue
            self.stats.polls += 1
            out = self.reconciler.feed(label, src.last_recv_ns, games)
            if out:
                self._queue.put_nowait((label, src.last_recv_ns, out))

    async def poll(self) -> list[Game]:
        """The next snapshot with at least one game left after reconciling."""
        if not self._tasks:
            self._tasks = [
                asyncio.create_task(self._pump(label, src), name=f"sports:{label}")
                for label, src in self.sources
            ]
        label, ns, out = await self._queue.get()
        self.stats.ok += 1
        self.last_recv_ns, self.last_label = ns, label
        return out

    async def aclose(self) -> None:
        """Stop the polling tasks."""
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        self._tasks = []

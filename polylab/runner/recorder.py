"""``polylab record``: record a venue's market channel (and scoreboards) into recordings.

Markets are discovered through Gamma (``RecordFilters``: active only, minimum liquidity and 24 h
volume, tags, slugs, event ids; a selected neg-risk market brings its whole event; ``top`` keeps
the N largest by 24 h volume), subscribed through ``MarketFeed`` in shards of at most
``assets_per_connection`` tokens (the venue sends no snapshots above 500 per connection), and
every received frame is written as received (``market`` channel, exact text, ``recv_ns``).

The catalog goes on the ``meta`` channel first, and again (whole) whenever a market is added
(``new_market``) or resolves (``market_resolved``). A dropped socket is reconnected by the feed,
which subscribes again and so receives fresh snapshots; the books it lost are marked in the file
by ``feed`` records (``{"asset_id", "reason", "needs_snapshot": true}``) at the point of the gap,
as a paper session's feed does, so a replay or backtest distrusts them until the snapshot.

``rotate_s``: one ``.jsonl.zst`` per period inside the output directory, named by its start
time (UTC, ``YYYYmmddTHHMMSS.fffZ.jsonl.zst``). Each file stands alone: it starts with the
catalog, and the market sockets are closed and reopened at the boundary, so every book starts
with a snapshot in the new file (frames of the old sockets all land in the old file).

Memory stays flat: frames go straight to the compressor; only the books (one per token) and
the catalog are kept.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import msgspec

from polylab.book.feed_health import Shard
from polylab.book.market_feed import MarketFeed, MarketFeedConfig
from polylab.book.registry import BookRegistry
from polylab.feed.discovery import GammaClient, GammaMarket
from polylab.feed.recording import RecordingWriter
from polylab.feed.wire import MarketResolved, NewMarket
from polylab.market import Market, MarketCatalog
from polylab.venue import VenueProfile

__all__ = ["RecordFilters", "RecordStats", "RotatingWriter", "record_venue", "select_markets"]

log = logging.getLogger(__name__)


class RecordFilters(msgspec.Struct, frozen=True, kw_only=True):
    """Which markets to record. Amounts in dollars (Gamma's units); ``top`` 0 = all."""

    active_only: bool = True
    min_liquidity: Decimal = Decimal(0)
    min_volume_24h: Decimal = Decimal(0)
    tags: tuple[str, ...] = ()
    slugs: tuple[str, ...] = ()
    event_ids: tuple[str, ...] = ()
    top: int = 0

    @property
    def open(self) -> bool:
        """No selection by name or rank: markets listed later are recorded too."""
        return not (self.slugs or self.event_ids or self.tags or self.top)


class RecordStats(msgspec.Struct):
    """What a recording session did (``bytes``: uncompressed bytes written)."""

    frames: int = 0
    markets: int = 0
    sports: int = 0
    reconnects: int = 0
    gaps: int = 0
    files: int = 0
    bytes: int = 0
    seconds: float = 0.0


class RotatingWriter(RecordingWriter):
    """A recording written to ``path``, or (``rotate_s`` > 0) split into one file per period
    inside the directory ``path``, each named by its start time. ``rotate()`` starts the next
    file; ``due()`` says whether the period is over."""

    def __init__(self, path: str | Path, rotate_s: float = 0.0) -> None:
        self.root = Path(path)
        self.rotate_ns = int(rotate_s * 1e9)
        self.files: list[Path] = []
        self.bytes = 0
        self._started_ns = 0
        self._open_next()

    def _open_next(self) -> None:
        now = time.time_ns()
        if self.rotate_ns:
            stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(now // 1_000_000_000))
            name = f"{stamp}.{now // 1_000_000 % 1000:03d}Z.jsonl.zst"
            super().__init__(self.root / name)
        else:
            super().__init__(self.root)
        self._started_ns = now
        self.files.append(self.path)

    def write(self, channel: str, payload: str, recv_ns: int | None = None) -> None:
        """Write one frame into the current file."""
        super().write(channel, payload, recv_ns)
        self.bytes += len(payload) + len(channel) + 40

    def due(self, now_ns: int) -> bool:
        """The current file's period is over."""
        return bool(self.rotate_ns) and now_ns - self._started_ns >= self.rotate_ns

    def rotate(self) -> None:
        """Close the current file and open the next one."""
        self.close()
        self._open_next()


def select_markets(gms: list[GammaMarket], catalog: list[Market], f: RecordFilters) -> list[Market]:
    """The markets of ``catalog`` (discovered, with event ids) chosen by ``f`` from the Gamma
    objects ``gms`` (which carry volume and liquidity); neg-risk events are kept whole."""
    by_cid = {m.condition_id: m for m in catalog}
    chosen: list[GammaMarket] = []
    for g in gms:
        if g.condition_id not in by_cid:
            continue
        if f.active_only and (g.active is False or g.closed is True):
            continue
        if (g.liquidity_num or Decimal(0)) < f.min_liquidity:
            continue
        if (g.volume_24hr or Decimal(0)) < f.min_volume_24h:
            continue
        if f.slugs and g.slug not in f.slugs:
            continue
        if f.event_ids and by_cid[g.condition_id].event_id not in f.event_ids:
            continue
        chosen.append(g)
    chosen.sort(key=lambda g: g.volume_24hr or Decimal(0), reverse=True)
    if f.top:
        chosen = chosen[: f.top]
    keep = {g.condition_id for g in chosen}
    events = {by_cid[c].event_id for c in keep if by_cid[c].neg_risk and by_cid[c].event_id}
    return [m for m in catalog if m.condition_id in keep or (m.neg_risk and m.event_id in events)]


async def _discover(gamma: GammaClient, f: RecordFilters) -> list[Market]:
    params: dict[str, Any] = {"closed": False} if f.active_only else {}
    if f.active_only:
        params["active"] = True
    if f.tags:
        params["tag_id"] = list(f.tags)
    found = await gamma.discover(**params)
    gms = await gamma.fetch_markets(**params)
    for mid, why in found.rejected[:5]:
        log.warning("Gamma market %s not recorded: %s", mid, why)
    return select_markets(gms, found.markets, f)


class _Feed(MarketFeed):
    """The market feed with a hook run when a shard's socket is gone (the rotation waits for
    every old socket to be gone before it opens the next file)."""

    after_down: Callable[[], None] | None = None

    def _down(self, sh: Shard, code: int | None) -> None:
        super()._down(sh, code)
        if self.after_down is not None:
            self.after_down()


class _Session:
    def __init__(
        self, profile: VenueProfile, writer: RotatingWriter, f: RecordFilters, cap: int
    ) -> None:
        self.profile = profile
        self.w = writer
        self.filters = f
        self.stats = RecordStats()
        self.catalog = MarketCatalog()
        self.reg = BookRegistry(self.catalog)
        cfg = MarketFeedConfig(url=profile.market_ws, assets_per_connection=cap, stale_after_ms=0)
        self.feed = _Feed(
            cfg, self.reg, on_event=self._on_event, on_stale=self._on_stale, recorder=writer
        )
        self.feed.after_down = self._maybe_swap
        self.rotating = False
        self.planned = 0
        self._todo: list[asyncio.Task[None]] = []
        self._gamma: GammaClient | None = None

    # -- catalog -------------------------------------------------------------------------------
    def write_catalog(self) -> None:
        self.w.write_meta(list(self.catalog.markets.values()))

    def _on_event(self, recv_ns: int, ev: object) -> None:
        if isinstance(ev, NewMarket) and self.filters.open:
            cid = ev.market or ev.condition_id
            self._todo.append(asyncio.get_running_loop().create_task(self._add(cid)))
        elif isinstance(ev, MarketResolved):
            self.write_catalog()

    async def _add(self, cid: str) -> None:
        """A market listed while recording: its catalog entry from Gamma, then its books."""
        if self._gamma is None or not cid:
            return
        try:
            found = await self._gamma.discover(events=False, condition_ids=cid)
        except Exception as exc:  # discovery failing must not stop the recording
            log.warning("new market %s: Gamma lookup failed: %r", cid, exc)
            return
        new = [m for m in found.markets if m.token_ids[0] not in self.feed.token_ids]
        for m in new:
            self.catalog.add(m)
        if new:
            self.stats.markets = len(self.catalog)
            self.write_catalog()
            await self.feed.subscribe(t for m in new for t in m.token_ids)

    # -- gaps and rotation ---------------------------------------------------------------------
    def _on_stale(self, aid: str, reason: str) -> None:
        if self.rotating:
            return
        self.stats.gaps += 1
        note = {"asset_id": aid, "reason": reason, "needs_snapshot": True}
        self.w.write("feed", msgspec.json.encode(note).decode())

    def _maybe_swap(self) -> None:
        """Every socket of the old file is gone: start the next file (catalog first)."""
        if self.rotating and all(sh.ws is None for sh in self.feed.shards):
            self.w.rotate()
            self.write_catalog()
            self.rotating = False

    async def rotate(self) -> None:
        """Close every market socket; the last one down opens the next file; the feed then
        reconnects and the fresh snapshots land in the new file."""
        socks = [sh.ws for sh in self.feed.shards if sh.ws is not None]
        if not socks:
            return
        self.rotating = True
        self.planned += len(socks)
        for ws in socks:
            with contextlib.suppress(Exception):
                await ws.close()
        for _ in range(500):  # the sockets' loops end at once; a stuck one: rotate anyway
            if not self.rotating:
                return
            await asyncio.sleep(0.01)
        if self.rotating:
            self.w.rotate()
            self.write_catalog()
            self.rotating = False


async def _sports_loop(
    s: _Session, http: httpx.AsyncClient, leagues: list[tuple[str, str]], every_s: float = 1.0
) -> None:
    """Poll each league's ESPN scoreboard; write the snapshots that list games."""
    while True:
        for sport, league in leagues:
            try:
                r = await http.get(s.profile.scoreboard_url(sport, league))
            except httpx.HTTPError as exc:
                log.warning("scoreboard poll failed: %r", exc)
                continue
            if r.status_code == 200 and _has_games(r.content):
                s.w.write("sports", r.text)
                s.stats.sports += 1
        await asyncio.sleep(every_s)


class _Board(msgspec.Struct):
    events: list[object] = []


def _has_games(body: bytes) -> bool:
    try:
        return bool(msgspec.json.decode(body, type=_Board).events)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return False


async def record_venue(
    profile: VenueProfile,
    out: str | Path,
    *,
    seconds: float | None = 30.0,
    filters: RecordFilters | None = None,
    rotate_s: float = 0.0,
    shard_size: int = 200,
    leagues: list[tuple[str, str]] | None = None,
    stop: asyncio.Event | None = None,
    on_status: Callable[[RecordStats], None] | None = None,
) -> RecordStats:
    """Record ``profile``'s market channel into ``out`` for ``seconds`` (None: until ``stop``).

    ``out``: a ``.jsonl``/``.jsonl.zst`` file, or with ``rotate_s`` a directory of one file per
    period. ``leagues``: ESPN scoreboards to record on the ``sports`` channel. ``on_status``
    gets the running stats about twice a second (the CLI's status line)."""
    f = filters or RecordFilters()
    stop = stop or asyncio.Event()
    t0 = time.monotonic()
    async with GammaClient(profile.gamma) as gamma:
        markets = await _discover(gamma, f)
        w = RotatingWriter(out, rotate_s)
        s = _Session(profile, w, f, shard_size)
        s._gamma = gamma
        try:
            for m in markets:
                s.catalog.add(m)
            s.stats.markets = len(s.catalog)
            s.write_catalog()
            async with httpx.AsyncClient(timeout=5.0) as http, s.feed:
                await s.feed.subscribe(t for m in markets for t in m.token_ids)
                sports = asyncio.create_task(_sports_loop(s, http, leagues or []))
                try:
                    deadline = None if seconds is None else t0 + seconds
                    while not stop.is_set():
                        left = 0.5 if deadline is None else min(0.5, deadline - time.monotonic())
                        if left <= 0:
                            break
                        with contextlib.suppress(TimeoutError):
                            await asyncio.wait_for(stop.wait(), left)
                        if w.due(time.time_ns()):
                            await s.rotate()
                        _fill(s)
                        if on_status is not None:
                            on_status(s.stats)
                finally:
                    sports.cancel()
                    for t in (sports, *s._todo):
                        t.cancel()
                        with contextlib.suppress(asyncio.CancelledError, Exception):
                            await t
                    s.feed.recorder = None
        finally:
            w.close()
    _fill(s)
    s.stats.seconds = round(time.monotonic() - t0, 3)
    return s.stats


def _fill(s: _Session) -> None:
    c = s.feed.counters
    s.stats.frames = c.frames
    s.stats.reconnects = max(0, c.reconnects - s.planned)
    s.stats.files = len(s.w.files)
    s.stats.bytes = s.w.bytes

"""Sniper research helpers for notebooks: replay a recording through a ``Sniper``, tabulate and
plot the scoreboard-final → repricing lags it measured, and make recordings to run it on.

A recording's ``sports`` channel may hold ESPN scoreboards and the venue's sports-channel frames
side by side: the replay reconciles them (``polylab.feed.sports_reconcile``: one id per game, the
first final wins) and ``source_lag_frame`` gives each source's own lag next to the Sniper's.

Split out of ``polylab.strategy.sniper`` so that module holds only the strategy (and stays
small); nothing here is needed to trade. polars and plotly are imported inside the functions
that use them: importing this module stays cheap.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import msgspec

from polylab.book.l2 import L2Book
from polylab.book.registry import BookRegistry
from polylab.domain import Game, Intent
from polylab.feed.decode import market_decoder
from polylab.feed.recording import RecordingReader, RecordingWriter, decode_meta
from polylab.feed.sports import ScoreboardError, encode_scoreboard
from polylab.feed.sports_reconcile import FinalTimes, Reconciler
from polylab.feed.sports_sources import sports_payload_games
from polylab.feed.wire import Book, PriceChange
from polylab.market import Market, MarketCatalog
from polylab.money import MICROS, parse_micros, price_micros_to_str
from polylab.strategy.sniper import LagRecord, Sniper, SniperConfig

if TYPE_CHECKING:
    import plotly.graph_objects as go
    import polars as pl

__all__ = [
    "lag_frame",
    "plot_lags",
    "record_sniper_session",
    "replay_sniper",
    "replay_sniper_sources",
    "source_lag_frame",
    "write_sniper_demo",
]


class _ReplayContext:
    """A ``Context`` over a ``BookRegistry`` whose clock is the recording's receive time."""

    def __init__(self, reg: BookRegistry) -> None:
        self.reg = reg
        self.now = 0

    @property
    def books(self) -> dict[str, L2Book]:
        return self.reg.books

    @property
    def catalog(self) -> MarketCatalog:
        return self.reg.catalog

    def now_ns(self) -> int:
        return self.now

    def position(self, token_id: str) -> int:
        return 0


def replay_sniper(
    path: str | Path, config: SniperConfig | None = None, *, timer_ms: int = 100
) -> tuple[Sniper, list[Intent]]:
    """Run a Sniper over a recording (``meta``, ``market`` and ``sports`` records) on the
    recording's clock, calling ``on_timer`` every ``timer_ms`` of recorded time. Returns the
    Sniper (its ``lags``, ``skips`` …) and every intent it returned, in order."""
    sn, intents, _ = replay_sniper_sources(path, config, timer_ms=timer_ms)
    return sn, intents


def replay_sniper_sources(
    path: str | Path, config: SniperConfig | None = None, *, timer_ms: int = 100
) -> tuple[Sniper, list[Intent], dict[str, FinalTimes]]:
    """``replay_sniper`` that also returns, per reconciled game id, when each sports source
    ("espn", "polymarket") first showed the game final (``FinalTimes``)."""
    rc = Reconciler()
    reg = BookRegistry()
    ctx = _ReplayContext(reg)
    sn = Sniper(config)
    dec = market_decoder()
    intents: list[Intent] = []
    step = timer_ms * 1_000_000
    next_timer = 0
    for rec in RecordingReader(path):
        ns = rec.recv_ns
        if next_timer and ns >= next_timer:
            next_timer = max(next_timer, ns - 10 * step)
            while next_timer <= ns:
                ctx.now = next_timer
                intents += sn.on_timer(ctx)
                next_timer += step
        ctx.now = ns
        if rec.channel == "market":
            touched: dict[str, None] = {}
            for ev in dec.decode(rec.payload):
                reg.apply(ev, ns)
                if isinstance(ev, Book):
                    touched[ev.asset_id] = None
                elif isinstance(ev, PriceChange):
                    for e in ev.price_changes or ():
                        touched[e.asset_id] = None
                    if ev.asset_id:
                        touched[ev.asset_id] = None
            for tok in touched:
                intents += sn.on_book(ctx, tok)
        elif rec.channel == "meta":
            try:
                for m in decode_meta(rec.payload):
                    reg.catalog.add(m)
            except msgspec.DecodeError:
                continue
        elif rec.channel == "sports":
            try:
                label, games = sports_payload_games(rec.payload, teams=sn.teams)
            except ScoreboardError:
                continue
            games = rc.feed(label, ns, games)
            if games:
                intents += sn.on_games(ctx, games)
            if not next_timer:
                next_timer = ns + step
    return sn, intents, rc.finals


def lag_frame(lags: list[LagRecord]) -> pl.DataFrame:
    """The lag records as a polars frame (one row per game and market), slowest first."""
    import polars as pl

    schema = {
        "game_id": pl.String,
        "market": pl.String,
        "league": pl.String,
        "result": pl.String,
        "lag_ms": pl.Float64,
        "fired": pl.Boolean,
        "final_seen_ns": pl.Int64,
        "repriced_ns": pl.Int64,
        "token_id": pl.String,
    }
    rows = [{k: getattr(r, k) for k in schema} for r in lags]
    return pl.DataFrame(rows, schema=schema).sort("lag_ms", descending=True)


def source_lag_frame(lags: list[LagRecord], finals: dict[str, FinalTimes]) -> pl.DataFrame:
    """``lag_frame`` plus, per sports source seen, ``lag_ms_<source>``: that source's first
    final → the repricing (ms; null when the source never showed the game final), and
    ``first_source``, the source whose final the Sniper acted on."""
    import polars as pl

    frame = lag_frame(lags)
    labels = sorted({label for ft in finals.values() for label in ft.by_source})
    firsts: list[str | None] = []
    cols: dict[str, list[float | None]] = {label: [] for label in labels}
    for gid, repriced in zip(frame["game_id"], frame["repriced_ns"], strict=True):
        ft = finals.get(gid)
        firsts.append(ft.first if ft is not None else None)
        for label in labels:
            t = ft.by_source.get(label) if ft is not None else None
            cols[label].append(None if t is None else (repriced - t) / 1e6)
    return frame.with_columns(
        pl.Series("first_source", firsts, dtype=pl.String),
        *(pl.Series(f"lag_ms_{label}", v, dtype=pl.Float64) for label, v in cols.items()),
    )


def plot_lags(lags: list[LagRecord]) -> go.Figure:
    """A bar per (game, market): scoreboard-final → repricing lag in ms (fired in a second
    colour)."""
    import plotly.graph_objects as go

    fig = go.Figure()
    for fired in (True, False):
        rs = [r for r in lags if r.fired is fired]
        fig.add_bar(
            x=[f"{r.game_id} / {r.market[:10]}" for r in rs],
            y=[r.lag_ms for r in rs],
            name="sniper fired" if fired else "no intent",
        )
    fig.update_layout(
        title="Scoreboard final → market repriced",
        xaxis_title="game / market",
        yaxis_title="lag (ms)",
        barmode="group",
    )
    return fig


_DEMO_GAMES = (  # league, home, away, their names, home and away score, final status
    ("nfl", "MIA", "NE", "Miami Dolphins", "New England Patriots", 20, 7, "STATUS_FINAL"),
    ("nhl", "PIT", "CBJ", "Pittsburgh Penguins", "Columbus Blue Jackets", 3, 2, "STATUS_FINAL"),
    ("usa.1", "ATL", "PHI", "Atlanta United FC", "Philadelphia Union", 1, 1, "STATUS_FULL_TIME"),
    ("nfl", "BUF", "LAR", "Buffalo Bills", "Los Angeles Rams", 10, 31, "STATUS_FINAL"),
)
_Levels = list[tuple[str, str]]
_DEMO_BEFORE: tuple[_Levels, _Levels] = ([("0.88", "400")], [("0.9", "500"), ("0.93", "300")])
_DEMO_AFTER: tuple[_Levels, _Levels] = ([("0.99", "2000")], [])


def _demo_books(
    cid: str, win: str, lose: str, levels: tuple[_Levels, _Levels], ns: int
) -> list[tuple[int, str, str]]:
    """``book`` records for the winner at ``levels`` (bids, asks) and the loser mirrored."""

    def flip(lv: _Levels) -> _Levels:
        return [(price_micros_to_str(MICROS - parse_micros(p)), s) for p, s in lv]

    out = []
    for token, (bids, asks) in ((win, levels), (lose, (flip(levels[1]), flip(levels[0])))):
        d = {
            "event_type": "book",
            "asset_id": token,
            "market": cid,
            "tick_size": "0.01",
            "timestamp": str(ns // 10**6),
            "bids": [{"price": p, "size": z} for p, z in bids],
            "asks": [{"price": p, "size": z} for p, z in asks],
        }
        out.append((ns, "market", msgspec.json.encode(d).decode()))
    return out


def _sport_result(i: int, g: Game) -> str:
    """A venue sports-channel message for demo game ``i`` (its own id, slug and status)."""
    lg = {"usa.1": "mls"}.get(g.league, g.league)
    msg = {
        "gameId": 900_000 + i,
        "leagueAbbreviation": lg,
        "slug": f"{lg}-{g.away.lower()}-{g.home.lower()}-{g.start[:10]}",
        "homeTeam": g.home_name,
        "awayTeam": g.away_name,
        "status": "finished" if g.final else "InProgress",
        "score": f"{g.away_score}-{g.home_score}",
        "live": not g.final,
        "ended": g.final,
    }
    return msgspec.json.encode(msg).decode()


def write_sniper_demo(
    path: str | Path,
    *,
    games: int = 3,
    lags_ms: tuple[int, ...] = (400, 1500, 2600),
    poll_ms: int = 250,
    start_ns: int = 1_700_000_000 * 10**9,
    channel_offsets_ms: tuple[int, ...] = (),
) -> int:
    """Write a small synthetic recording for the Sniper: ``games`` games going final one second
    apart, a scoreboard snapshot every ``poll_ms``, and each game's market repricing
    ``lags_ms[i]`` after its final (books: winner ask 0.90/0.93 before, bid 0.99 after).

    Game ``i`` follows ``_DEMO_GAMES`` (cycling; the third is a 1-1 soccer draw with a Yes/No
    "draw" market). Markets of even ``i`` carry ``game_id``; odd ones are found by team names.
    With ``channel_offsets_ms``, the venue's sports channel is recorded too (its own game ids
    and slugs): each game in progress from the start, final ``channel_offsets_ms[i]`` after the
    scoreboard's final (negative: before it). Returns the number of records written.
    """
    recs: list[tuple[int, str, str]] = []
    markets: list[Market] = []
    states: list[tuple[Game, Game, int]] = []
    for i in range(games):
        lg, home, away, hname, aname, hs, as_, status = _DEMO_GAMES[i % len(_DEMO_GAMES)]
        gid, cid = f"{401_900_000 + i}", f"0x{i + 1:064x}"
        a, b = str(10**30 + 2 * i), str(10**30 + 2 * i + 1)
        final_ns = start_ns + (i + 1) * 10**9
        winner = None if hs == as_ else (home if hs > as_ else away)
        fin = Game(
            id=gid,
            league=lg,
            state="post",
            completed=True,
            home=home,
            away=away,
            home_score=hs,
            away_score=as_,
            winner=winner,
            start="2023-11-14T20:00Z",
            status_name=status,
            home_name=hname,
            away_name=aname,
            detail="Final",
        )
        live = msgspec.structs.replace(
            fin,
            state="in",
            completed=False,
            winner=None,
            status_name="STATUS_IN_PROGRESS",
            detail="Live",
        )
        states.append((live, fin, final_ns))
        m = Market(condition_id=cid, token_ids=(a, b), game_id=gid if i % 2 == 0 else "")
        if winner is None:
            q = f"Will {hname} vs. {aname} end in a draw?"
            markets.append(msgspec.structs.replace(m, question=q))
        else:
            q = f"{aname} vs. {hname}"
            markets.append(msgspec.structs.replace(m, question=q, outcomes=(home, away)))
        if channel_offsets_ms:
            off = channel_offsets_ms[i % len(channel_offsets_ms)] * 10**6
            recs.append((start_ns + 1, "sports", _sport_result(i, live)))
            recs.append((final_ns + off, "sports", _sport_result(i, fin)))
        win, lose = (a, b) if winner in (None, home) else (b, a)
        recs += _demo_books(cid, win, lose, _DEMO_BEFORE, start_ns)
        recs += _demo_books(
            cid, win, lose, _DEMO_AFTER, final_ns + lags_ms[i % len(lags_ms)] * 10**6
        )
    end = start_ns + (games + 2) * 10**9 + max(lags_ms) * 10**6
    for t in range(start_ns, end, poll_ms * 10**6):
        snap = [fin if t >= final_ns else live for live, fin, final_ns in states]
        for lg in sorted({g.league for g in snap}):
            text = encode_scoreboard([g for g in snap if g.league == lg], league=lg).decode()
            recs.append((t, "sports", text))
    recs.sort(key=lambda r: r[0])
    with RecordingWriter(path) as w:
        w.write_meta(markets, start_ns - 1)
        for ns, ch, payload in recs:
            w.write(ch, payload, ns)
        return w.count


def record_sniper_session(
    path: str | Path,
    *,
    seconds: float = 10.0,
    games: int = 2,
    sports_lag_s: float = 2.0,
    seed: int = 7,
) -> int:
    """Record ``seconds`` of the local simulator (``polylab.sim``) with ``games`` quick sports
    games (kick-off within 1 s, final 2-4 s later, market repriced ``sports_lag_s`` after the
    final) through ``polylab.sim.record``: the same meta/market/sports channels a live recording
    has. Runs on a worker thread (callable from a notebook's running loop); returns the number
    of scoreboard snapshots recorded."""
    import asyncio
    import concurrent.futures

    from polylab.sim import generator
    from polylab.sim.config import SimConfig
    from polylab.sim.record import record_async
    from polylab.sim.server import running_sim

    gcfg = generator.GeneratorConfig(
        seed=seed,
        binary_markets=0,
        negrisk_events=0,
        sports_games=games,
        sports_lag_s=sports_lag_s,
        game_delay_s=(0.3, 1.0),
        game_length_s=(2.0, 4.0),
        resolve_after_s=seconds,
    )

    async def session() -> int:
        async with running_sim(SimConfig(seed=seed, generator=False)) as sim:
            task = generator.start(sim.state, gcfg)
            try:
                stats = await record_async(path, seconds, url=sim.url)
            finally:
                await generator.stop(task)
        return stats.sports

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, session()).result()

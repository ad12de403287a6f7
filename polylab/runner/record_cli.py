"""``polylab record OUT --venue polymarket|sim``: the command around ``runner.recorder``.

Kept beside the recorder (``cli.py`` only mounts it) so the command line stays small: option
parsing (``--rotate 1h``, ``--league football/nfl``), the venue (a named profile, a running
simulator's URL, or the built-in simulator started for the session), and a rich status line
(frames/s, markets, reconnects, bytes written) on stderr.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import sys
import time
from collections.abc import AsyncIterator
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import msgspec
import typer
from rich.console import Console
from rich.live import Live

from polylab.cli_support import check_url, prepare_out_dir, venue_errors
from polylab.errors import InputError
from polylab.venue import VenueError, VenueProfile, resolve

if TYPE_CHECKING:
    from polylab.runner.recorder import RecordStats

__all__ = ["parse_period", "record_cmd", "run_record", "sim_record_cmd"]

VENUE_HELP = "polymarket (production hosts, POLYMARKET_*_URL overrides) or sim"

console = Console(stderr=True)
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_period(text: str) -> float:
    """``"1h"``, ``"15m"``, ``"30s"``, ``"500ms"`` → seconds (> 0); ValueError naming it."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*", text)
    if m is None or float(m.group(1)) <= 0:
        raise ValueError(f"--rotate must be a period like 1h, 15m, 30s or 500ms, was {text!r}")
    return float(m.group(1)) * _UNITS[m.group(2)]


def _league(text: str) -> tuple[str, str]:
    sport, sep, league = text.partition("/")
    if not sep or not sport or not league:
        raise ValueError(f"--league must be SPORT/LEAGUE like football/nfl, was {text!r}")
    return sport, league


def _dollars(name: str, text: str) -> Decimal:
    try:
        d = Decimal(text)
    except InvalidOperation:
        d = Decimal(-1)
    if not d.is_finite() or d < 0:
        raise ValueError(f"{name} must be a dollar amount >= 0, was {text!r}")
    return d


@contextlib.asynccontextmanager
async def _where(
    named: VenueProfile | None, url: str | None, seed: int
) -> AsyncIterator[tuple[VenueProfile, list[tuple[str, str]]]]:
    """The profile to record and the leagues its simulator schedules (none for a venue)."""
    if named is not None:
        yield named, []
        return
    from polylab.sim.sports import LEAGUES

    leagues = sorted(LEAGUES)
    if url is not None:
        yield resolve("sim", sim_url=url, use_env=False), leagues
        return
    from polylab.sim.config import SimConfig
    from polylab.sim.server import running_sim

    async with running_sim(SimConfig(seed=seed)) as h:
        yield resolve("sim", sim_url=h.url, use_env=False), leagues


def _status(st: RecordStats, t0: float, last: list[tuple[float, int]]) -> str:
    now = time.monotonic()
    prev_t, prev_f = last[0]
    rate = (st.frames - prev_f) / max(now - prev_t, 1e-9)
    last[0] = (now, st.frames)
    return (
        f"recording {now - t0:6.0f} s | {rate:8.1f} frames/s | {st.markets} markets | "
        f"{st.reconnects} reconnects | {st.gaps} gaps | {st.files} files | "
        f"{st.bytes / 1e6:.1f} MB written"
    )


def run_record(
    out: Path,
    *,
    venue_name: str,
    url: str | None,
    seconds: float | None,
    rotate: str | None,
    seed: int,
    filters: dict[str, object],
    leagues: list[str],
    shard_size: int,
    as_json: bool,
) -> RecordStats:
    """Check the options (a bad one raises ``InputError``/``ValueError``: one line, exit 2,
    printed by ``PolylabGroup``), then record."""
    from polylab.runner.recorder import RecordFilters, record_venue

    rotate_s = parse_period(rotate) if rotate else 0.0
    chosen = [_league(x) for x in leagues]
    f = RecordFilters(
        active_only=bool(filters["active_only"]),
        min_liquidity=_dollars("--min-liquidity", str(filters["min_liquidity"])),
        min_volume_24h=_dollars("--min-volume", str(filters["min_volume"])),
        tags=tuple(str(x) for x in filters["tags"]),  # type: ignore[attr-defined]
        slugs=tuple(str(x) for x in filters["slugs"]),  # type: ignore[attr-defined]
        event_ids=tuple(str(x) for x in filters["event_ids"]),  # type: ignore[attr-defined]
        top=int(str(filters["top"])),
    )
    if venue_name not in ("polymarket", "sim"):
        raise VenueError(f"unknown venue {venue_name!r}: expected one of polymarket, sim")
    if url is not None and venue_name != "sim":
        raise VenueError(f"--url {url!r} is for --venue sim")
    check_url(url)
    if not 1 <= shard_size <= 500:
        raise InputError(f"--shard-size must be 1..500 tokens, was {shard_size}")
    if seconds is not None and seconds <= 0:
        raise InputError(f"--seconds must be > 0, was {seconds}")
    if f.top < 0:
        raise InputError(f"--top must be >= 0, was {f.top}")
    folder = out if rotate_s else out.parent
    if rotate_s:
        prepare_out_dir(out)
    elif not folder.is_dir() or not os.access(folder, os.W_OK | os.X_OK):
        raise InputError(f"cannot write recording {str(out)!r}: folder missing or not writable")
    named = resolve(venue_name) if venue_name != "sim" else None

    async def main() -> RecordStats:
        from polylab.runner.paper import stop_on_signals

        stop = stop_on_signals()
        t0 = time.monotonic()
        last = [(t0, 0)]
        async with _where(named, url, seed) as (profile, sim_leagues):
            with Live(console=console, refresh_per_second=2, transient=True) as live:
                return await record_venue(
                    profile,
                    out,
                    seconds=seconds,
                    filters=f,
                    rotate_s=rotate_s,
                    shard_size=shard_size,
                    leagues=chosen or sim_leagues,
                    stop=stop,
                    on_status=lambda st: live.update(_status(st, t0, last)),
                )

    where = f"{named.name} (Gamma {named.gamma})" if named is not None else url
    with venue_errors(where):
        stats = asyncio.run(main())
    if as_json:
        sys.stdout.write(msgspec.json.encode(stats).decode() + "\n")
    else:
        console.print(
            f"recorded {stats.frames:,} frames of {stats.markets} markets in {stats.seconds} s "
            f"into {out} ({stats.files} files, {stats.reconnects} reconnects, {stats.gaps} gaps)"
        )
    return stats


def record_cmd(
    out: Annotated[Path, typer.Argument(help="recording (.jsonl[.zst]); with --rotate a folder")],
    venue_name: Annotated[
        str | None,
        typer.Option("--venue", help=f"{VENUE_HELP}; default: polymarket (sim with --url)"),
    ] = None,
    url: Annotated[
        str | None, typer.Option(help="a running simulator (--venue sim); default: start one")
    ] = None,
    seconds: Annotated[float | None, typer.Option(help="stop after this long")] = None,
    rotate: Annotated[
        str | None, typer.Option(help="one .jsonl.zst per period (1h, 15m, 30s) in OUT/")
    ] = None,
    active_only: Annotated[bool, typer.Option("--active/--all", help="open markets only")] = True,
    min_liquidity: Annotated[str, typer.Option(help="minimum Gamma liquidity, $")] = "0",
    min_volume: Annotated[str, typer.Option(help="minimum 24 h volume, $")] = "0",
    tag: Annotated[list[str] | None, typer.Option(help="Gamma tag id (repeatable)")] = None,
    slug: Annotated[list[str] | None, typer.Option(help="market slug (repeatable)")] = None,
    event: Annotated[list[str] | None, typer.Option(help="event id (repeatable)")] = None,
    top: Annotated[int, typer.Option(help="only the N largest by 24 h volume (0: all)")] = 0,
    league: Annotated[
        list[str] | None, typer.Option(help="ESPN scoreboard to record, SPORT/LEAGUE")
    ] = None,
    shard_size: Annotated[int, typer.Option(help="tokens per market socket (<= 500)")] = 200,
    seed: Annotated[int, typer.Option(help="built-in simulator seed")] = 7,
    as_json: Annotated[bool, typer.Option("--json", help="print the stats as JSON")] = False,
) -> None:
    """Record a venue's market channel (Gamma discovery, sharded sockets, meta catalog,
    reconnect gaps marked, optional rotation) until --seconds or Ctrl-C."""
    run_record(
        out,
        venue_name=venue_name or ("sim" if url else "polymarket"),
        url=url,
        seconds=seconds,
        rotate=rotate,
        seed=seed,
        filters={
            "active_only": active_only,
            "min_liquidity": min_liquidity,
            "min_volume": min_volume,
            "tags": tag or [],
            "slugs": slug or [],
            "event_ids": event or [],
            "top": top,
        },
        leagues=league or [],
        shard_size=shard_size,
        as_json=as_json,
    )


def sim_record_cmd(
    out: Annotated[Path, typer.Argument(help="recording to write (.jsonl or .jsonl.zst)")],
    seconds: Annotated[float, typer.Option(help="how long to record")] = 30.0,
    seed: Annotated[int, typer.Option(help="market generator seed")] = 7,
    url: Annotated[str | None, typer.Option(help="a running simulator; default: start one")] = None,
) -> None:
    """Alias of ``polylab record OUT --venue sim``: record what a market-channel client of the
    simulator receives."""
    record_cmd(out, venue_name="sim", url=url, seconds=seconds, seed=seed)

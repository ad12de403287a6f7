"""``polylab sports …``: read ESPN-format scoreboards the way the Sniper does.

Exit codes: 0 ok, 2 bad input (missing file, not a scoreboard) or nothing fetched.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Annotated, Any

import msgspec
import typer
from rich.console import Console
from rich.table import Table

from polylab.cli_support import PolylabGroup
from polylab.domain import Game
from polylab.errors import InputError
from polylab.feed.sports import ScoreboardError, parse_scoreboard
from polylab.feed.sports_sources import HttpScoreboardSource

__all__ = ["app", "game_rows"]

app = typer.Typer(
    help="Sports scoreboards (ESPN format) for result-driven strategies.",
    no_args_is_help=True,
    cls=PolylabGroup,
)
console = Console(stderr=True)


def game_rows(games: list[Game]) -> list[dict[str, Any]]:
    """Games as plain rows: every ``Game`` field plus ``final``."""
    return [{**msgspec.structs.asdict(g), "final": g.final} for g in games]


def _output(games: list[Game], as_json: bool, title: str) -> None:
    rows = game_rows(games)
    if as_json:
        sys.stdout.write(msgspec.json.encode(rows).decode() + "\n")
        return
    t = Table(title=f"{title}: {len(games)} games")
    for col in ("id", "league", "state", "status", "away", "home", "score", "winner", "start"):
        t.add_column(col)
    for g in games:
        t.add_row(
            g.id,
            g.league,
            g.state + (" (final)" if g.final else ""),
            g.status_name,
            g.away,
            g.home,
            f"{g.away_score}-{g.home_score}",
            g.winner or "-",
            g.start,
        )
    Console().print(t)


@app.command("parse")
def parse_cmd(
    path: Annotated[Path, typer.Argument(help="scoreboard JSON file (ESPN format)")],
    as_json: Annotated[bool, typer.Option("--json", help="print a JSON list of games")] = False,
    league: Annotated[str, typer.Option(help="league when the file names none")] = "",
) -> None:
    """Print the games of a saved scoreboard (final = post and completed; draws: no winner)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read {str(path)!r}: {exc.strerror or exc}") from None
    try:
        games = parse_scoreboard(data, league=league)
    except ScoreboardError as exc:
        raise InputError(f"{str(path)!r}: {exc}") from None
    _output(games, as_json, path.name)


@app.command("poll")
def poll_cmd(
    base_url: Annotated[
        str,
        typer.Argument(
            help="ESPN base serving /apis/site/v2/sports/{sport}/{league}/scoreboard "
            "(the single-port simulator: http://HOST:PORT/espn)"
        ),
    ],
    sport: Annotated[str, typer.Option(help="e.g. football, hockey, soccer")] = "football",
    league: Annotated[str, typer.Option(help="e.g. nfl, nhl, usa.1")] = "nfl",
    as_json: Annotated[bool, typer.Option("--json", help="print a JSON list of games")] = False,
    timeout_s: Annotated[float, typer.Option(min=0.001, help="request timeout, seconds")] = 5.0,
) -> None:
    """Fetch one scoreboard from a server (e.g. the simulator) and print its games."""

    async def once() -> tuple[list[Game], HttpScoreboardSource]:
        src = HttpScoreboardSource(base_url, sport, league, timeout_s=timeout_s)
        try:
            return await src.fetch(), src
        finally:
            await src.aclose()

    games, src = asyncio.run(once())
    if src.stats.ok == 0:
        raise InputError(f"{src.url}: {src.stats.last_error}")
    _output(games, as_json, f"{sport}/{league}")

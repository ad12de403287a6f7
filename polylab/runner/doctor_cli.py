"""``polylab doctor``: the preflight's command (checks in ``polylab.runner.doctor``)."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Annotated

import msgspec
import typer
from rich.console import Console
from rich.table import Table

__all__ = ["doctor_cmd"]


def doctor_cmd(
    venue_name: Annotated[
        str, typer.Option("--venue", help="venue profile: polymarket or sim")
    ] = "polymarket",
    url: Annotated[
        str | None,
        typer.Option(help="simulator base URL (--venue sim); with polymarket: the CLOB URL"),
    ] = None,
    markets: Annotated[
        str | None, typer.Option(help="comma-separated Gamma ids, 0x condition ids or slugs")
    ] = None,
    top: Annotated[int, typer.Option(help="without --markets: the top N by 24 h volume")] = 5,
    config: Annotated[Path | None, typer.Option(help="config file ([live] wallet set-up)")] = None,
    sports: Annotated[bool, typer.Option(help="also probe the sports channel")] = True,
    timeout: Annotated[float, typer.Option(help="per probe, seconds")] = 5.0,
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON object")] = False,
) -> None:
    """Preflight before a live session: endpoints, clock, geoblock, credentials, wallet,
    balance and allowances, market signing domains, fee rates. Exit 0 all pass (warnings
    allowed), 1 any check failed, 2 bad input."""
    from polylab.config import load_config
    from polylab.errors import InputError
    from polylab.runner.doctor import DoctorOptions, run_doctor
    from polylab.venue import resolve

    # operator errors (a bad config, URL, venue or value) raise: the CLI's group prints one
    # line and exits 2 (``polylab.cli_support``; ``polylab --debug doctor`` adds the traceback)
    cfg = load_config(config)
    if top < 1:
        raise InputError(f"--top must be at least 1, was {top}")
    if timeout <= 0:
        raise InputError(f"--timeout must be > 0 s, was {timeout}")
    if venue_name == "sim":
        profile = resolve("sim", sim_url=url or "")
    else:
        profile = resolve(venue_name)  # --url (the CLOB) beats POLYMARKET_CLOB_URL
        if url:
            profile = profile.override({"POLYMARKET_CLOB_URL": url})
    refs = tuple(m.strip() for m in (markets or "").split(",") if m.strip())
    opts = DoctorOptions(
        profile=profile,
        markets=refs,
        top=top,
        signature_type=cfg.live.signature_type,
        funder=cfg.live.funder,
        sports=sports,
        timeout_s=timeout,
    )
    try:
        report = asyncio.run(run_doctor(opts))
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
    if as_json:
        out = {"venue": report.venue, "ok": report.exit_code == 0, "checks": report.checks}
        sys.stdout.write(msgspec.json.encode(out).decode() + "\n")
    else:
        colours = {"pass": "green", "warn": "yellow", "fail": "red", "skip": "dim"}
        t = Table(title=f"polylab doctor: {report.venue} ({profile.clob})")
        for col in ("check", "status", "ms", "detail", "fix"):
            t.add_column(col, overflow="fold")
        for c in report.checks:
            ms = "" if c.latency_ms is None else f"{c.latency_ms:.0f}"
            st = f"[{colours[c.status]}]{c.status}[/{colours[c.status]}]"
            t.add_row(c.name, st, ms, c.detail, c.fix)
        Console().print(t)
        n = len(report.failed)
        Console().print("all checks passed" if not n else f"{n} check(s) failed")
    raise typer.Exit(report.exit_code)

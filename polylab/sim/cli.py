"""``polylab sim …``: run the local exchange, or record what a client of it receives.

Bad input (a port out of range or busy, a bad config file, an unwritable output, a negative
duration) fails before anything starts, as one line and exit code 2 (``polylab.cli_support``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from polylab.cli_support import PolylabGroup
from polylab.errors import InputError

__all__ = ["app"]

app = typer.Typer(
    help="The local Polymarket exchange simulator.", no_args_is_help=True, cls=PolylabGroup
)


@app.command("serve")
def serve_cmd(
    port: Annotated[int, typer.Option(min=0, max=65535, help="TCP port on 127.0.0.1")] = 8765,
    seed: Annotated[int, typer.Option(help="market generator seed")] = 7,
    config: Annotated[Path | None, typer.Option(help="simulator config file (JSON/TOML)")] = None,
    require_approval: Annotated[
        bool,
        typer.Option(
            "--require-approval",
            help="new addresses start with zero allowance: orders fail with 'not enough "
            "balance / allowance' until POST /sim/approve and /balance-allowance/update",
        ),
    ] = False,
) -> None:
    """Serve CLOB REST, /ws/market, /ws/user, Gamma and scoreboards on one port until stopped."""
    from polylab.sim.config import load_config
    from polylab.sim.server import serve

    if config is not None:
        load_config(config)  # a bad file raises ConfigError (exit 2) here, not inside serve
    serve(port=port, seed=seed, config_path=config, require_approval=require_approval)


@app.command("record")
def record_cmd(
    out: Annotated[Path, typer.Argument(help="recording to write (.jsonl or .jsonl.zst)")],
    seconds: Annotated[float, typer.Option(min=0.0, help="how long to record (s)")] = 30.0,
    seed: Annotated[int, typer.Option(help="market generator seed")] = 7,
    url: Annotated[str | None, typer.Option(help="a running simulator; default: start one")] = None,
) -> None:
    """Record what a market-channel client would receive, in polylab's recording format."""
    from polylab.cli_support import check_url
    from polylab.sim.record import record

    check_url(url)
    parent = out.parent
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise InputError(f"cannot write recording {str(out)!r}: folder missing or not writable")
    record(out, seconds=seconds, seed=seed, url=url)

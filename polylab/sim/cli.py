"""``polylab sim …``: run the local exchange. (``polylab sim record``, the alias of ``polylab
record --venue sim``, is mounted by ``polylab.cli``, which owns the recorder's command.)

Bad input (a port out of range or busy, a bad config file, an unknown layout) fails before
anything starts, as one line and exit code 2 (``polylab.cli_support``).
"""

from __future__ import annotations

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
    layout: Annotated[
        str,
        typer.Option(
            help="single: everything on --port; production: one local port per production "
            "host with the production paths, the overrides printed as one JSON object"
        ),
    ] = "single",
) -> None:
    """Serve CLOB REST, /ws/market, /ws/user, Gamma and scoreboards until stopped."""
    from polylab.sim.config import load_config
    from polylab.sim.server import serve

    if layout not in ("single", "production"):
        raise InputError(f"unknown --layout {layout!r}: expected single or production")
    if config is not None:
        load_config(config)  # a bad file raises ConfigError (exit 2) here, not inside serve
    serve(
        port=port,
        seed=seed,
        config_path=config,
        require_approval=require_approval,
        layout=layout,
    )

"""Live sessions: the paper session's engine with the live executor plugged in.

Safe by default, in code: without ``live=True`` (the CLI's ``--live``) the executor stays in
DRY_RUN whatever the config says; with it, a private key is required, and API credentials are
derived through L1 when only the key is given. Nothing secret is printed or stored.

Stopping (``stop`` set, e.g. on SIGINT / SIGTERM, or ``seconds`` over): orders in flight get
up to 5 s to come back, then every open order of the account is cancelled (when orders are
really sent), then the run folder is written.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import msgspec

from polylab.backtest import BacktestResult
from polylab.clock import WallClock
from polylab.config import PolylabConfig
from polylab.execution.auth import ApiCreds
from polylab.execution.eip712 import SigningKey
from polylab.execution.live import Credentials, LiveError, LiveExecutor
from polylab.execution.rest_async import AsyncClobRest
from polylab.execution.signer import OrderSigner
from polylab.market import MarketCatalog
from polylab.runner.paper import PaperRun, Venue, run_paper

__all__ = ["run_live"]

log = logging.getLogger(__name__)


async def run_live(
    config: PolylabConfig,
    v: Venue,
    creds: Credentials | None,
    *,
    live: bool = False,
    seconds: float | None = 30.0,
    out_dir: str | Path | None = None,
    stop: asyncio.Event | None = None,
) -> tuple[BacktestResult, PaperRun, LiveExecutor]:
    """Run every configured strategy with the live executor at ``v`` until ``seconds`` pass or
    ``stop`` is set; open orders are cancelled before the run folder is written.

    ``live`` False forces DRY_RUN (orders signed and logged, never sent).
    """
    lc = config.live if live else msgspec.structs.replace(config.live, dry_run=True)
    if creds is None:
        raise LiveError(
            "live execution needs POLY_PRIVATE_KEY (environment or .env); "
            "paper trading needs no key: use `polylab paper`"
        )
    signer = OrderSigner(
        creds.private_key, lc.chain_id, signature_type=lc.signature_type, funder=lc.funder
    )
    async with AsyncClobRest(v.url, key=SigningKey(creds.private_key)) as rest:
        api: ApiCreds | None = creds.creds
        if api is None and not lc.dry_run:
            api = await rest.create_or_derive_api_key()
        rest.creds = api
        holder: list[LiveExecutor] = []

        def make(catalog: MarketCatalog) -> LiveExecutor:
            ex = LiveExecutor(lc, catalog, signer, rest if not lc.dry_run else None, live=live)
            holder.append(ex)
            return ex

        async def cancel_open() -> dict[str, Any]:
            """Cancel every open order of the account (nothing is sent in DRY_RUN)."""
            if lc.dry_run:
                return {"cancel_on_stop": "dry_run"}
            try:
                done = await rest.cancel_all()
            except Exception as exc:  # the run folder must still be written
                log.error("cancelling open orders failed: %r", exc)
                return {"cancel_on_stop": f"failed: {type(exc).__name__}"}
            n = len(done.canceled)
            log.info("cancelled %d open orders", n)
            return {"cancel_on_stop": "ok", "cancelled_orders": n}

        cfg = msgspec.structs.replace(config, live=lc)
        res, run = await run_paper(
            cfg,
            v,
            seconds=seconds,
            out_dir=out_dir,
            executor=make,
            stop=stop,
            clock=WallClock(),
            on_stop=cancel_open,
        )
    return res, run, holder[0]

"""Live sessions: the paper session's engine with the live executor plugged in.

Safe by default, in code: without ``live=True`` (the CLI's ``--live``) the executor stays in
DRY_RUN whatever the config says; with it, a private key is required, and API credentials are
derived through L1 when only the key is given. Nothing secret is printed or stored.
"""

from __future__ import annotations

from pathlib import Path

import msgspec

from polylab.backtest import BacktestResult
from polylab.config import PolylabConfig
from polylab.execution.auth import ApiCreds
from polylab.execution.eip712 import SigningKey
from polylab.execution.live import Credentials, LiveError, LiveExecutor
from polylab.execution.rest_async import AsyncClobRest
from polylab.execution.signer import OrderSigner
from polylab.market import MarketCatalog
from polylab.runner.paper import PaperRun, Venue, run_paper

__all__ = ["run_live"]


async def run_live(
    config: PolylabConfig,
    v: Venue,
    creds: Credentials | None,
    *,
    live: bool = False,
    seconds: float | None = 30.0,
    out_dir: str | Path | None = None,
) -> tuple[BacktestResult, PaperRun, LiveExecutor]:
    """Run every configured strategy with the live executor at ``v``.

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

        cfg = msgspec.structs.replace(config, live=lc)
        res, run = await run_paper(cfg, v, seconds=seconds, out_dir=out_dir, executor=make)
    return res, run, holder[0]

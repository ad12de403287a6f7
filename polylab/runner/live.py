"""Live sessions: the paper session's engine with the live executor plugged in.

Safe by default, in code: without ``live=True`` (the CLI's ``--live``) the executor stays in
DRY_RUN whatever the config says; with it, a private key is required, and API credentials are
derived through L1 when only the key is given. Nothing secret is printed or stored.

A strategy whose config has ``paper_trading`` on (``SUMTO100_PAPER_TRADING``,
``CLIPPER_PAPER_TRADING``, or ``paper_trading = true`` in a plugin's table) is filled by the
paper trader inside the live session (``RoutingExecutor``); the ``orders`` table's ``executor``
column says which executor filled what.

Stopping (``stop`` set, e.g. on SIGINT / SIGTERM, or ``seconds`` over): orders in flight get
up to 5 s to come back, then every open order of the account is cancelled (when orders are
really sent), then the run folder is written.

Start-up rides out a briefly failing venue: market discovery retries transient failures
(``runner.startup``) and API-key creation/derivation goes through ``AsyncClobRest``, whose calls
retry with the same policy (``execution.rest_policy``: connection errors, timeouts, 5xx, 429).
"""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec

from polylab.backtest import BacktestResult
from polylab.clock import WallClock
from polylab.config import PolylabConfig
from polylab.execution.auth import ApiCreds
from polylab.execution.base import Executor
from polylab.execution.eip712 import SigningKey
from polylab.execution.live import Credentials, LiveError, LiveExecutor
from polylab.execution.paper import PaperTrader
from polylab.execution.rest_async import AsyncClobRest
from polylab.execution.routing import RoutingExecutor
from polylab.execution.signer import OrderSigner
from polylab.market import MarketCatalog
from polylab.runner.paper import PaperRun, Venue, run_paper

__all__ = ["check_credentials", "paper_routed", "run_live"]


def paper_routed(config: PolylabConfig) -> set[str]:
    """Names of the configured strategies whose ``paper_trading`` switch is on: the built-ins'
    sections, and plugins whose table sets ``paper_trading`` (routed by their ``module:Class``
    reference, which is then expected to be their ``name``)."""
    out: set[str] = set()
    for name in config.strategies:
        section = getattr(config, name, None) if ":" not in name else None
        if (section is not None and getattr(section, "paper_trading", False)) or config.plugins.get(
            name, {}
        ).get("paper_trading") is True:
            out.add(name)
    return out


log = logging.getLogger(__name__)


def check_credentials(creds: Credentials | None) -> None:
    """``LiveError`` naming ``POLY_PRIVATE_KEY`` / ``POLY_API_SECRET`` (never the value) when
    the key is not a secp256k1 private key or the API secret not base64url; ``None`` (no key)
    is left for ``run_live`` to refuse."""
    if creds is None:
        return
    try:
        SigningKey(creds.private_key.reveal())
    except ValueError as exc:
        raise LiveError(
            f"POLY_PRIVATE_KEY is not a private key ({exc}; value not shown: it is secret)"
        ) from None
    if creds.creds is not None:
        try:
            base64.urlsafe_b64decode(creds.creds.secret.reveal().encode("ascii"))
        except (ValueError, UnicodeEncodeError):
            raise LiveError(
                "POLY_API_SECRET is not base64url text (value not shown: it is secret)"
            ) from None


async def run_live(
    config: PolylabConfig,
    v: Venue,
    creds: Credentials | None,
    *,
    live: bool = False,
    seconds: float | None = 30.0,
    out_dir: str | Path | None = None,
    stop: asyncio.Event | None = None,
    on_start: Callable[[PaperRun], None] | None = None,
) -> tuple[BacktestResult, PaperRun, LiveExecutor]:
    """Run every configured strategy with the live executor at ``v`` (strategies with
    ``paper_trading`` on with the paper trader) until ``seconds`` pass or ``stop`` is set; open
    orders are cancelled before the run folder is written. Returns the live executor third.

    ``live`` False forces DRY_RUN (orders signed and logged, never sent).
    """
    lc = config.live if live else msgspec.structs.replace(config.live, dry_run=True)
    if creds is None:
        raise LiveError(
            "live execution needs POLY_PRIVATE_KEY (environment or .env); "
            "paper trading needs no key: use `polylab paper`"
        )
    check_credentials(creds)
    signer = OrderSigner(
        creds.private_key.reveal(), lc.chain_id, signature_type=lc.signature_type, funder=lc.funder
    )
    async with AsyncClobRest(v.endpoints.clob, key=SigningKey(creds.private_key.reveal())) as rest:
        api: ApiCreds | None = creds.creds
        if api is None and not lc.dry_run:
            api = await rest.create_or_derive_api_key()
        rest.creds = api
        holder: list[LiveExecutor] = []

        def make(catalog: MarketCatalog) -> Executor:
            ex = LiveExecutor(lc, catalog, signer, rest if not lc.dry_run else None, live=live)
            holder.append(ex)
            paper = paper_routed(config)
            if not paper:
                return ex
            return RoutingExecutor(ex, PaperTrader(config.paper, catalog), paper)

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
            on_start=on_start,
        )
    return res, run, holder[0]

"""Shared set-up of the live-executor tests: a static simulator (no market generator, so no
market maker moves), a binary market with YES asks placed by a maker, and a trading client."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Literal

import msgspec

from polylab.domain import Intent, Leg
from polylab.execution.base import ExecutionResult
from polylab.execution.eip712 import SigningKey
from polylab.execution.live import LiveConfig, LiveExecutor
from polylab.execution.rest_async import AsyncClobRest
from polylab.execution.rest_policy import RestConfig
from polylab.execution.signer import OrderSigner
from polylab.market import Market, MarketCatalog
from polylab.sim.config import SimConfig
from polylab.sim.faults import FaultConfig
from polylab.sim.server import SimHandle, running_sim

KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
MAKER = "0x" + "33" * 20
M = 1_000_000


def binary(h: SimHandle, version: str = "v1") -> Market:
    """The simulator's binary market of ``version`` (CTF "v1" or Protocol V2 "v2")."""
    return next(
        m
        for m in h.state.exchange.markets.markets.values()
        if len(m.token_ids) == 2 and not m.neg_risk and m.version == version
    )


def yes_asks(h: SimHandle, m: Market, levels: list[tuple[int, int]]) -> None:
    """YES asks at ``(price micros, share micros)``: a maker's NO bids at 1 − price (the books
    are mirrored), one maker order per level."""
    grid = h.state.exchange.grid(m.token_ids[1]).micros
    for price, size in levels:
        r = h.state.exchange.place(MAKER, m.token_ids[1], "BUY", (M - price) // grid, size)
        assert r.success, r.error_msg


def buy(
    tokens: list[str],
    price: int,
    size: int,
    ot: Literal["FOK", "FAK", "GTC", "GTD"] = "FOK",
    kind: Literal["set", "single"] = "single",
) -> Intent:
    legs = tuple(Leg(token_id=t, side="BUY", price=price, size=size, order_type=ot) for t in tokens)
    return Intent(strategy="t", group_id="g", kind=kind, legs=legs, edge=0, created_ns=1)


def set_faults(h: SimHandle, **faults: object) -> None:
    """Switch the running simulator's REST faults (read per request)."""
    h.state.config = msgspec.structs.replace(
        h.state.config, faults=msgspec.convert(faults, FaultConfig)
    )


@contextlib.asynccontextmanager
async def trading(
    h: SimHandle, url: str | None = None, **live: object
) -> AsyncIterator[tuple[AsyncClobRest, OrderSigner]]:
    """A REST client with L2 credentials from ``h`` (talking to ``url``, default ``h.url``)."""
    async with AsyncClobRest(h.url, key=SigningKey(KEY)) as auth:
        creds = await auth.create_or_derive_api_key()
    cfg = RestConfig(url=url or h.url, backoff_min_ms=1, backoff_max_ms=5, timeout_s=5.0)
    async with AsyncClobRest(cfg, key=SigningKey(KEY), creds=creds) as rest:
        yield rest, OrderSigner(KEY)


def live_executor(
    h: SimHandle,
    rest: AsyncClobRest,
    signer: object,
    catalog: MarketCatalog | None = None,
    **cfg: object,
) -> LiveExecutor:
    config = msgspec.convert({"url": h.url, "dry_run": False, **cfg}, LiveConfig)
    return LiveExecutor(
        config,
        catalog or h.state.exchange.markets,
        signer,  # type: ignore[arg-type]
        rest,
        live=True,
    )


async def wait_result(ex: LiveExecutor, seconds: float = 20.0) -> ExecutionResult:
    """The executor's one result (fails when none or more than one arrives)."""
    out: list[ExecutionResult] = []
    for _ in range(int(seconds / 0.01)):
        out += ex.poll(0, {})
        if out and not ex.pending():
            assert len(out) == 1, out
            return out[0]
        await asyncio.sleep(0.01)
    raise AssertionError(f"no result in {seconds} s (pending {ex.pending()})")


def static_sim(**faults: object) -> contextlib.AbstractAsyncContextManager[SimHandle]:
    """A simulator without the market generator (books move only when a test trades)."""
    cfg = SimConfig(generator=False, seed=1, faults=msgspec.convert(faults, FaultConfig))
    return running_sim(cfg)


async def bind_sim_books(ex: object, rest: AsyncClobRest, tokens: list[str]) -> None:
    """Give an executor the simulator's current books (as the engine gives its own)."""
    books = {t: await rest.get_book(t) for t in tokens}
    ex.bind_books(books)  # type: ignore[attr-defined]

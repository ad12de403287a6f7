"""Live execution: sign CLOB V2 orders off the event loop, send every leg of a set in parallel.

Safe by default: ``dry_run`` (the ``DRY_RUN`` default) builds and signs every order and logs its
hash, but sends nothing; sending needs ``dry_run=False`` *and* an explicit ``live`` flag *and* a
key. Credentials come from ``POLY_PRIVATE_KEY``, ``POLY_API_KEY``, ``POLY_API_SECRET``,
``POLY_API_PASSPHRASE`` (environment or a ``.env`` file) and are never logged or stored.

Each leg gets ``order_timeout_ms`` (500 ms) to come back; a leg still out is reported
``timeout``. A set whose legs filled unevenly is held: the merge step turns the complete part
into collateral, the rest waits for resolution (paper trading can also unwind by policy).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import msgspec
from dotenv import dotenv_values

from polylab.domain import ExecutionResult, Intent, Leg, OrderReport
from polylab.execution.auth import ApiCreds
from polylab.execution.signer import OrderSigner
from polylab.execution.signing_v2 import SignedOrderV2, exchange_domain
from polylab.market import MarketCatalog
from polylab.money import MICROS, MoneyError, parse_micros, tick_size

if TYPE_CHECKING:
    from polylab.book.l2 import L2Book
    from polylab.execution.rest_async import AsyncClobRest

__all__ = ["Credentials", "LiveConfig", "LiveError", "LiveExecutor", "load_credentials"]

log = logging.getLogger(__name__)


def _amount(text: str) -> int:
    """An order-response amount ("12.5" dollars or shares, as decimal text) in micros."""
    return parse_micros(text)


class LiveError(RuntimeError):
    """Live trading cannot start (a missing flag, key or credential); the message says which."""


class LiveConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Live executor settings.

    ``url``: CLOB REST base URL (the local simulator by default). ``dry_run``: sign and log, do
    not send (``DRY_RUN``, default true). ``chain_id``: 137 on the venue. ``order_timeout_ms``:
    per-leg wait. ``signature_type``: 0 EOA, 1 proxy, 2 safe, 3 deposit wallet; ``funder``: the
    address holding funds when it is not the key's. ``leg_policy``: "hold" keeps what filled of
    an uneven set (the merge step turns complete sets into collateral); live unwinding is not
    automated.
    """

    url: str = "http://127.0.0.1:8765"
    dry_run: bool = True
    chain_id: int = 137
    order_timeout_ms: int = 500
    signature_type: int = 0
    funder: str | None = None
    leg_policy: Literal["hold"] = "hold"


class Credentials:
    """The wallet key and L2 API credentials; nothing of them shows in a repr or a log."""

    __slots__ = ("creds", "private_key")

    def __init__(self, private_key: str, creds: ApiCreds | None) -> None:
        self.private_key = private_key
        self.creds = creds

    def __repr__(self) -> str:
        return f"Credentials(key=<redacted>, api_key={'set' if self.creds else 'unset'})"

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("credentials are not picklable")


def load_credentials(
    env: Mapping[str, str] | None = None, env_file: str | Path | None = ".env"
) -> Credentials | None:
    """Credentials from ``env`` (default ``os.environ``) overlaid on ``env_file`` if it exists;
    None without ``POLY_PRIVATE_KEY``."""
    values: dict[str, str | None] = {}
    if env_file is not None and Path(env_file).is_file():
        values.update(dotenv_values(env_file))
    values.update(env if env is not None else os.environ)
    key = values.get("POLY_PRIVATE_KEY")
    if not key:
        return None
    api = [values.get(k) for k in ("POLY_API_KEY", "POLY_API_SECRET", "POLY_API_PASSPHRASE")]
    creds = None
    if all(api):
        creds = ApiCreds(api_key=str(api[0]), secret=str(api[1]), passphrase=str(api[2]))
    return Credentials(key, creds)


class LiveExecutor:
    """The ``Executor`` for the venue (or the simulator): signing in a worker thread, legs in
    parallel, results collected by ``poll``. ``submit`` must be called on the event loop."""

    name = "live"

    def __init__(
        self,
        config: LiveConfig,
        catalog: MarketCatalog,
        signer: OrderSigner,
        rest: AsyncClobRest | None,
        *,
        live: bool = False,
    ) -> None:
        if not config.dry_run and not live:
            raise LiveError(
                "sending orders needs the explicit live flag (--live); "
                "without it polylab stays in DRY_RUN"
            )
        if not config.dry_run and rest is None:
            raise LiveError("sending orders needs a REST client with L2 credentials")
        self.config = config
        self.catalog = catalog
        self.signer = signer
        self.rest = rest
        self._tasks: dict[str, asyncio.Task[ExecutionResult]] = {}
        self._done: list[ExecutionResult] = []
        self.signed = 0

    def __repr__(self) -> str:
        return f"LiveExecutor(dry_run={self.config.dry_run}, signer={self.signer!r})"

    def submit(self, intent_id: str, intent: Intent, now_ns: int) -> None:
        """Start the intent's task (sign in a thread, send legs concurrently)."""
        task = asyncio.get_running_loop().create_task(self._run(intent_id, intent, now_ns))
        self._tasks[intent_id] = task
        task.add_done_callback(self._collect)

    def _collect(self, task: asyncio.Task[ExecutionResult]) -> None:
        iid = next((k for k, t in self._tasks.items() if t is task), "?")
        self._tasks.pop(iid, None)
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            log.error("intent %s failed: %s", iid, exc)
            return
        self._done.append(task.result())

    def poll(self, now_ns: int, books: dict[str, L2Book]) -> list[ExecutionResult]:
        """Results finished since the last poll."""
        out, self._done = self._done, []
        return out

    def pending(self) -> int:
        """Intents still in flight (plus results not yet polled)."""
        return len(self._tasks) + len(self._done)

    def sign_leg(self, leg: Leg) -> SignedOrderV2:
        """One leg as a signed V2 order on the right domain for its market (no network)."""
        m = self.catalog.by_token.get(leg.token_id)
        if m is None:
            raise LiveError(f"token {leg.token_id[:12]}… is not in the market catalog")
        tick = tick_size(m.tick_size)
        domain = (
            exchange_domain(3, self.config.chain_id)
            if m.version == "v2"
            else exchange_domain(2, self.config.chain_id, neg_risk=m.neg_risk)
        )
        size = leg.size - leg.size % 10_000  # the venue takes sizes in 0.01 share
        return self.signer.limit_order_v2(
            int(leg.token_id), leg.side, tick.micros_to_ticks(leg.price), size, tick, domain
        )

    async def _run(self, iid: str, intent: Intent, now_ns: int) -> ExecutionResult:
        loop = asyncio.get_running_loop()
        signed = await loop.run_in_executor(
            None, lambda: [self.sign_leg(leg) for leg in intent.legs]
        )
        self.signed += len(signed)
        if self.config.dry_run:
            for leg, s in zip(intent.legs, signed, strict=True):
                log.info(
                    "DRY_RUN %s %s %s @ %s: order %s signed, not sent",
                    iid,
                    leg.side,
                    leg.size,
                    leg.price,
                    s.order_hash,
                )
            reports = tuple(
                self._report(iid, i, leg, now_ns, "dry_run", s.order_hash)
                for i, (leg, s) in enumerate(zip(intent.legs, signed, strict=True))
            )
            return ExecutionResult(intent_id=iid, intent=intent, reports=reports, complete=False)
        sends = [
            self._send(iid, i, leg, s, now_ns)
            for i, (leg, s) in enumerate(zip(intent.legs, signed, strict=True))
        ]
        reports = tuple(await asyncio.gather(*sends))
        complete = all(r.status == "filled" for r in reports)
        return ExecutionResult(intent_id=iid, intent=intent, reports=reports, complete=complete)

    def _report(
        self,
        iid: str,
        i: int,
        leg: Leg,
        now_ns: int,
        status: str,
        order_id: str,
        filled: int = 0,
        cash: int = 0,
        reason: str = "",
    ) -> OrderReport:
        """``cash``: collateral that moved (BUY: paid, fees included; SELL: received, fees
        deducted), split here into the price part and the taker fee of the market's schedule."""
        fee = 0
        cost = cash
        m = self.catalog.by_token.get(leg.token_id)
        if filled and m is not None and m.fee is not None:
            tick = tick_size(m.tick_size).micros
            for _ in range(4):  # the fee depends on the price, which we back out of cash − fee
                price = (cost * MICROS // filled + tick // 2) // tick * tick
                fee = m.fee.fee(filled, price)
                cost = cash - fee if leg.side == "BUY" else cash + fee
        return OrderReport(
            intent_id=iid,
            leg=i,
            token_id=leg.token_id,
            side=leg.side,
            limit_price=leg.price,
            requested=leg.size,
            filled=filled,
            cost=cost,
            fee=fee,
            avg_price=cost * MICROS // filled if filled else 0,
            status=status,  # type: ignore[arg-type]
            sent_ns=now_ns,
            done_ns=time.time_ns(),
            order_id=order_id,
            reason=reason,
        )

    async def _send(
        self, iid: str, i: int, leg: Leg, signed: SignedOrderV2, now_ns: int
    ) -> OrderReport:
        assert self.rest is not None
        try:
            resp = await asyncio.wait_for(
                self.rest.post_order(signed, leg.order_type), self.config.order_timeout_ms / 1000
            )
        except TimeoutError:
            return self._report(
                iid,
                i,
                leg,
                now_ns,
                "timeout",
                signed.order_hash,
                reason=f"no answer in {self.config.order_timeout_ms} ms",
            )
        except Exception as exc:  # a refused leg is a report, not a crash
            return self._report(
                iid,
                i,
                leg,
                now_ns,
                "rejected",
                signed.order_hash,
                reason=f"{type(exc).__name__}: {exc}",
            )
        try:
            making = _amount(str(resp.making_amount or "0"))
            taking = _amount(str(resp.taking_amount or "0"))
        except (MoneyError, ValueError):
            making = taking = 0
        shares, cash = (taking, making) if leg.side == "BUY" else (making, taking)
        status = (
            "filled"
            if shares >= leg.size - leg.size % 10_000 and shares
            else ("partial" if shares else "unfilled")
        )
        return self._report(
            iid,
            i,
            leg,
            now_ns,
            status,
            resp.order_id or signed.order_hash,
            filled=shares,
            cash=cash,
            reason=resp.error_msg,
        )

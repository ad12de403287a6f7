"""The live executor's order path (``LiveLegs``, the base of ``live.LiveExecutor``): plan each
leg on the current book, sign off the event loop, send in parallel, and turn every outcome into
exactly one report per leg and one result per intent.

Units: prices in price micros, sizes in share micros, cash and fees in micros, times in ns.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, NamedTuple

from polylab.clock import Clock, WallClock
from polylab.domain import CashMicros, PriceMicros, SizeMicros
from polylab.errors import (
    AuthError,
    BadRequest,
    NotFound,
    OrderRejected,
    PolylabError,
    RateLimited,
)
from polylab.execution.amounts import (
    CENT,
    LOT,
    book_buy_budget,
    lot_floor,
    targets_collateral,
)
from polylab.execution.base import ExecutionResult, OpenLeg, OrderReport, OrderStatus
from polylab.execution.eip712 import Domain
from polylab.execution.live_resolve import ask_venue, traded_cash
from polylab.execution.rest_policy import ClobNotSent
from polylab.execution.signing_v2 import SignedOrderV2, exchange_domain
from polylab.money import MICROS, MoneyError, TickSize, parse_micros, tick_size

if TYPE_CHECKING:
    from polylab.book.l2 import L2Book
    from polylab.domain import Intent, Leg
    from polylab.execution.live import LiveConfig
    from polylab.execution.rest_async import AsyncClobRest
    from polylab.execution.signer import OrderSigner
    from polylab.market import MarketCatalog

__all__ = ["LegPlan", "LiveError", "LiveLegs"]

log = logging.getLogger("polylab.execution.live")

_CERTAIN = (OrderRejected, RateLimited, AuthError, BadRequest, NotFound, ClobNotSent)
"""Errors that prove an order was not placed (refused, or never sent)."""
_KILLED = ("fully filled or killed", "fok_order_not_filled", "no orders found to match")
"""The venue's words for a FOK/FAK killed for lack of liquidity: unfilled, not refused."""


class LiveError(PolylabError, RuntimeError):
    """Live trading cannot start (a missing flag, key or credential), or an order cannot be
    built; the message says which."""


class LegPlan(NamedTuple):
    """One leg as it will be signed: its price grid (the book's current tick), limit in ticks,
    amount (collateral micros for a FOK/FAK BUY, else shares) and exchange domain."""

    tick: TickSize
    ticks: int
    amount: int
    market: bool
    domain: Domain


def _micros(text: object) -> int:
    try:
        return parse_micros(str(text or "0"))
    except MoneyError:
        return 0


class LiveLegs:
    """Plan, sign, send and report (see the module docstring)."""

    name = "live"

    def __init__(
        self,
        config: LiveConfig,
        catalog: MarketCatalog,
        signer: OrderSigner,
        rest: AsyncClobRest | None,
        clock: Clock | None = None,
    ) -> None:
        self.clock: Clock = clock or WallClock()
        """When an order's answer came back (``done_ns``): the venue answers in wall time."""
        self.config = config
        self.catalog = catalog
        self.signer = signer
        self.rest = rest
        self._books: Mapping[str, L2Book] | None = None
        self._tasks: dict[asyncio.Task[ExecutionResult], tuple[str, Intent, int]] = {}
        self._done: list[ExecutionResult] = []
        self._open: dict[tuple[str, int], OpenLeg] = {}  # (intent id, leg) → its order
        self.signed = 0

    # -- Executor ------------------------------------------------------------------------------
    def bind_books(self, books: Mapping[str, L2Book]) -> None:
        """The engine's live books: tick size and BUY amounts come from them at submit."""
        self._books = books

    def submit(self, intent_id: str, intent: Intent, now_ns: int) -> None:
        """Plan every leg on the current books, then start the intent's task (sign in a
        thread, send legs concurrently). Anything that fails here is a rejected result."""
        try:
            loop = asyncio.get_running_loop()
            plans = [self.plan_leg(leg) for leg in intent.legs]
            task = loop.create_task(self._run(intent_id, intent, plans, now_ns))
        except Exception as exc:  # a leg that cannot be built: nothing is sent
            self._done.append(self._all(intent_id, intent, now_ns, "rejected", _why(exc)))
            return
        self._tasks[task] = (intent_id, intent, now_ns)
        task.add_done_callback(self._collect)
        if not self.config.dry_run:  # in flight from now on; the venue's id once signed
            for i, leg in enumerate(intent.legs):
                self._open[(intent_id, i)] = _open_leg(intent_id, i, leg, "")

    def _collect(self, task: asyncio.Task[ExecutionResult]) -> None:
        iid, intent, now_ns = self._tasks.pop(task)
        for i in range(len(intent.legs)):  # a cancelled or failed task left its legs here
            self._open.pop((iid, i), None)
        if task.cancelled():
            res = self._all(iid, intent, now_ns, "unknown", "cancelled while in flight")
        elif (exc := task.exception()) is not None:
            log.error("intent %s failed: %s", iid, _why(exc))
            res = self._all(iid, intent, now_ns, "unknown", f"executor error: {_why(exc)}")
        else:
            res = task.result()
        self._done.append(res)

    def poll(self, now_ns: int, books: Mapping[str, L2Book]) -> list[ExecutionResult]:
        """Results finished since the last poll."""
        out, self._done = self._done, []
        return out

    def pending(self) -> int:
        """Intents still in flight (plus results not yet polled)."""
        return len(self._tasks) + len(self._done)

    def open_orders(self) -> list[OpenLeg]:
        """The legs in flight: planned ("" order id until signed), then sent by their signed
        hash (the venue's order id) until the venue's answer, or the resolution of a resting
        or unanswered order, came back. Oldest first."""
        return list(self._open.values())

    # -- building ------------------------------------------------------------------------------
    def plan_leg(self, leg: Leg) -> LegPlan:
        """Grid, limit, amount and domain of ``leg`` on its book now (no network)."""
        m = self.catalog.by_token.get(leg.token_id)
        if m is None:
            raise LiveError(f"token {leg.token_id[:12]}… is not in the market catalog")
        book = self._books.get(leg.token_id) if self._books is not None else None
        tick = book.tick if book is not None else tick_size(m.tick_size)
        domain = (
            exchange_domain(3, self.config.chain_id)
            if m.version == "v2"
            else exchange_domain(2, self.config.chain_id, neg_risk=m.neg_risk)
        )
        ticks = tick.micros_to_ticks(leg.price)
        if targets_collateral(leg.side, leg.order_type):
            if book is not None and not book.needs_snapshot:
                budget = book_buy_budget(book, leg.size, leg.price)
                return LegPlan(tick, ticks, budget, True, domain)
            nominal = -(-lot_floor(leg.size) * leg.price // MICROS // CENT) * CENT
            return LegPlan(tick, ticks, nominal, True, domain)
        return LegPlan(tick, ticks, lot_floor(leg.size), False, domain)

    def sign_leg(self, leg: Leg, plan: LegPlan | None = None) -> SignedOrderV2:
        """One leg as a signed V2 order on the right domain for its market (no network)."""
        p = plan or self.plan_leg(leg)
        return self.signer.limit_order_v2(
            int(leg.token_id),
            leg.side,
            p.ticks,
            p.amount,
            p.tick,
            p.domain,
            market=p.market,
        )

    # -- one intent ----------------------------------------------------------------------------
    async def _run(
        self, iid: str, intent: Intent, plans: list[LegPlan], now_ns: int
    ) -> ExecutionResult:
        legs = intent.legs
        try:
            signed = await asyncio.get_running_loop().run_in_executor(
                None, lambda: [self.sign_leg(lg, p) for lg, p in zip(legs, plans, strict=True)]
            )
        except Exception as exc:  # nothing was sent
            return self._all(iid, intent, now_ns, "rejected", f"signing failed: {_why(exc)}")
        self.signed += len(signed)
        if self.config.dry_run:
            for leg, s in zip(legs, signed, strict=True):
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
                for i, (leg, s) in enumerate(zip(legs, signed, strict=True))
            )
            return self._result(iid, intent, reports)
        sends = [
            self._tracked(iid, i, leg, p, s, now_ns)
            for i, (leg, p, s) in enumerate(zip(legs, plans, signed, strict=True))
        ]
        return self._result(iid, intent, tuple(await asyncio.gather(*sends)))

    async def _tracked(
        self, iid: str, i: int, leg: Leg, plan: LegPlan, signed: SignedOrderV2, now_ns: int
    ) -> OrderReport:
        """``_send``, listed in ``open_orders`` by its venue id until its report is made."""
        self._open[(iid, i)] = _open_leg(iid, i, leg, signed.order_hash)
        try:
            return await self._send(iid, i, leg, plan, signed, now_ns)
        finally:
            self._open.pop((iid, i), None)

    def _result(
        self, iid: str, intent: Intent, reports: tuple[OrderReport, ...]
    ) -> ExecutionResult:
        residual: tuple[tuple[str, int], ...] = ()
        if intent.kind == "set" and len(reports) > 1:
            least = min(r.filled for r in reports)
            residual = tuple((r.token_id, r.filled - least) for r in reports if r.filled > least)
        return ExecutionResult(
            intent_id=iid,
            intent=intent,
            reports=reports,
            complete=all(r.status == "filled" for r in reports),
            executor=self.name,
            residual=residual,
        )

    def _all(
        self, iid: str, intent: Intent, now_ns: int, status: OrderStatus, reason: str
    ) -> ExecutionResult:
        """A result whose every leg ends the same way (nothing or an unknown was sent)."""
        reports = tuple(
            self._report(iid, i, leg, now_ns, status, "", reason=reason)
            for i, leg in enumerate(intent.legs)
        )
        return self._result(iid, intent, reports)

    # -- one leg -------------------------------------------------------------------------------
    async def _send(
        self, iid: str, i: int, leg: Leg, plan: LegPlan, signed: SignedOrderV2, now_ns: int
    ) -> OrderReport:
        assert self.rest is not None
        oid = signed.order_hash
        try:
            resp = await asyncio.wait_for(
                self.rest.post_order(signed, leg.order_type), self.config.order_timeout_ms / 1000
            )
        except _CERTAIN as exc:
            text = str(exc).lower()
            if any(k in text for k in _KILLED):  # a FOK/FAK that found nothing to take
                return self._report(iid, i, leg, now_ns, "unfilled", oid, reason=_why(exc))
            if "duplicated" not in text:  # a duplicate means it is there already
                return self._report(iid, i, leg, now_ns, "rejected", oid, reason=_why(exc))
            why = _why(exc)
        except TimeoutError:
            why = f"no answer in {self.config.order_timeout_ms} ms"
        except Exception as exc:  # 5xx, dropped connection, bad answer: it may have traded
            why = _why(exc)
        else:
            if resp.status.lower() in ("live", "delayed"):  # resting or pending: ask, cancel
                return await self._resolve(iid, i, leg, plan, now_ns, oid, f"order {resp.status}")
            making, taking = _micros(resp.making_amount), _micros(resp.taking_amount)
            shares, cash = (taking, making) if leg.side == "BUY" else (making, taking)
            cost: int | None = cash
            m = self.catalog.by_token.get(leg.token_id)
            if shares and m is not None and m.fee is not None:
                cost = await traded_cash(self.rest, oid, leg.token_id, now_ns // 10**9, shares)
            return self._filled(
                iid, i, leg, plan, now_ns, resp.order_id or oid, shares, cash, cost, resp.error_msg
            )
        return await self._resolve(iid, i, leg, plan, now_ns, oid, why)

    async def _resolve(
        self, iid: str, i: int, leg: Leg, plan: LegPlan, now_ns: int, oid: str, why: str
    ) -> OrderReport:
        """The leg's outcome from the venue itself; ``unknown`` when it cannot be read."""
        assert self.rest is not None
        cfg = self.config
        got, problem = await ask_venue(
            self.rest,
            oid,
            leg.token_id,
            now_ns // 10**9,
            timeout_s=cfg.resolve_timeout_ms / 1000,
            interval_s=cfg.resolve_interval_ms / 1000,
        )
        if got is None:
            log.error("intent %s leg %d: outcome unknown (%s; %s)", iid, i, why, problem)
            reason = f"{why}; venue not readable: {problem}"
            return self._report(iid, i, leg, now_ns, "unknown", oid, reason=reason)
        fees = self.catalog.fee_for(leg.token_id)
        fee = sum(fees.fee(n, p) for p, n in got.takes) if fees is not None else 0
        cash = got.cash + fee if leg.side == "BUY" else got.cash - fee
        reason = f"{why}; {got.note}"
        return self._filled(iid, i, leg, plan, now_ns, oid, got.shares, cash, got.cash, reason)

    def _filled(
        self,
        iid: str,
        i: int,
        leg: Leg,
        plan: LegPlan,
        now_ns: int,
        oid: str,
        shares: int,
        cash: int,
        cost: int | None,
        reason: str,
    ) -> OrderReport:
        """A leg's report from shares and the collateral that moved (``cash``: BUY paid fees
        included, SELL received fees deducted); ``cost``: the fee-free part when known."""
        target = lot_floor(leg.size) - (LOT if plan.market else 0)
        status: OrderStatus = (
            "filled" if shares and shares >= target else ("partial" if shares else "unfilled")
        )
        if cost is None:
            cost, fee = self._back_out(leg, shares, cash)
        else:
            fee = cash - cost if leg.side == "BUY" else cost - cash
        return self._report(iid, i, leg, now_ns, status, oid, shares, cost, fee, reason)

    def _back_out(self, leg: Leg, filled: int, cash: int) -> tuple[int, int]:
        """(cost, fee) estimated from ``cash`` when the trades cannot be read: the fee at the
        average price, backed out of cash ± fee."""
        m = self.catalog.by_token.get(leg.token_id)
        fee, cost = 0, cash
        if filled and m is not None and m.fee is not None:
            tick = tick_size(m.tick_size).micros
            for _ in range(4):  # the fee depends on the price, which we back out of cash − fee
                price = (cost * MICROS // filled + tick // 2) // tick * tick
                fee = m.fee.fee(filled, price)
                cost = cash - fee if leg.side == "BUY" else cash + fee
        return cost, fee

    def _report(
        self,
        iid: str,
        i: int,
        leg: Leg,
        now_ns: int,
        status: OrderStatus,
        order_id: str,
        filled: int = 0,
        cost: int = 0,
        fee: int = 0,
        reason: str = "",
    ) -> OrderReport:
        return OrderReport(
            intent_id=iid,
            leg=i,
            token_id=leg.token_id,
            side=leg.side,
            limit_price=leg.price,
            requested=leg.size,
            filled=SizeMicros(filled),
            cost=CashMicros(cost),
            fee=CashMicros(fee),
            avg_price=PriceMicros(cost * MICROS // filled if filled else 0),
            status=status,
            sent_ns=now_ns,
            done_ns=self.clock.now_ns(),
            order_id=order_id,
            reason=reason,
            executor=self.name,
        )


def _open_leg(iid: str, i: int, leg: Leg, order_id: str) -> OpenLeg:
    return OpenLeg(
        order_id=order_id,
        intent_id=iid,
        leg=i,
        token_id=leg.token_id,
        side=str(leg.side),
        price_micros=leg.price,
        size_micros=leg.size,
    )


def _why(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"

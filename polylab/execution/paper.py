"""Paper trading: fill intents against the books as they stand when the orders would arrive.

Model (every choice is a knob of ``PaperConfig``):

* **Latency.** An intent submitted at ``t`` reaches the venue at ``t + latency``. Its legs are
  evaluated on the first ``poll(now)`` with ``now ≥ t + latency``, against the books passed to
  that poll (call ``poll`` before applying an event stamped later than the arrival, and the fill
  sees exactly the books of the arrival instant). All legs of an intent travel together.
* **Depth walk, the venue's amounts** (``polylab.execution.amounts``, protocol doc §4.4). A leg
  takes the levels at or better than its limit, best first, at most ``depth_share_ppm`` of each
  displayed level and only the best ``max_levels`` levels (0: all), in whole 0.01-share lots.
  A FOK/FAK BUY targets collateral, as on the venue: it is sized at submit (``bind_books``;
  without bound books, at arrival) to the cost of its size on the book then, rounded to the
  cent (``amounts.buy_budget``), and at arrival spends that money (so it receives the size, ± a
  cent's worth of dust, while the book stands; more or fewer shares if the book moved). SELLs
  and GTC/GTD BUYs target shares.
  FOK fills all or nothing (a market BUY: all its money); FAK fills what is there; GTC/GTD are
  FAK then cancel (paper never rests orders).
* **Fees.** Taker fee per fill (one per level touched, each rounded up to 0.00001, as the venue
  settles each match): the market's ``FeeModel``; for markets without one,
  ``strategy_fees[intent.strategy]``; otherwise 0. Reports carry ``cost`` (fees excluded) and
  ``fee``: a BUY pays cost + fee, a SELL receives cost − fee.
* **Shadow liquidity.** Shares taken are remembered per (token, side) until that side of the
  book changes, so two intents arriving at the same instant never both take the same shares.
* **Venue checks at arrival.** Price off the book's tick grid or outside (0, $1), size ≤ 0, or
  (``enforce_min_size``) size under the market's ``min_order_size``: the leg is rejected.
  No usable book (missing or awaiting a snapshot) by ``arrival + order_timeout``: timeout.
* **Leg risk.** For a ``"set"`` intent whose legs filled unevenly, ``leg_policy="unwind"`` sends,
  when the last leg is known, an opposite FAK order for each leg's excess over the least-filled
  leg (any price: one tick for a SELL, $1 − one tick for a BUY); it arrives ``latency`` later
  and walks the book then, fees included. Its reports are ``ExecutionResult.unwound``; the loss
  shows when the portfolio books them. ``"hold"`` keeps the uneven shares. An excess under the
  market's minimum order size (the dust of a collateral-targeted BUY) is not sent: it stays in
  the portfolio and is listed in ``ExecutionResult.residual``.

Units: prices in price micros, sizes in share micros, cash and fees in micros, times in ns.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Literal

import msgspec

from polylab.book.ladder import Ladder
from polylab.domain import (
    CashMicros,
    ExecutionResult,
    OrderReport,
    OrderStatus,
    PriceMicros,
    Side,
    SizeMicros,
)
from polylab.execution.amounts import (
    LOT,
    book_buy_budget,
    fill_fee,
    fok_budget_spent,
    lot_floor,
    targets_collateral,
    walk_budget,
    walk_shares,
)
from polylab.execution.base import OpenLeg
from polylab.fees import FeeModel
from polylab.money import MICROS, MoneyError, parse_micros

if TYPE_CHECKING:
    from collections.abc import Mapping

    from polylab.book.l2 import L2Book
    from polylab.domain import Intent
    from polylab.market import MarketCatalog

__all__ = ["PaperConfig", "PaperTrader"]

_MS = 1_000_000
NonNeg = Annotated[int, msgspec.Meta(ge=0)]
_NO_FEE = FeeModel()


class PaperConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Paper executor settings.

    * ``latency_ms``: one-way time from submit to the venue (ms); also the unwind's delay.
    * ``order_timeout_ms``: how long an arrived order waits for a usable book (ms).
    * ``leg_policy``: "unwind" (sell back / buy back a set's uneven legs) or "hold".
    * ``depth_share_ppm``: share of each displayed level we may take, per million (others race
      for it too); 1_000_000 = all.
    * ``max_levels``: book levels an order may walk (0: no limit).
    * ``consume_liquidity``: remember shares taken until the book side changes.
    * ``enforce_min_size``: reject orders under the market's ``min_order_size`` like the venue.
    * ``strategy_fees``: fee schedule by strategy name for markets that publish none.
    """

    latency_ms: NonNeg = 50
    order_timeout_ms: NonNeg = 500
    leg_policy: Literal["unwind", "hold"] = "unwind"
    depth_share_ppm: Annotated[int, msgspec.Meta(gt=0, le=MICROS)] = MICROS
    max_levels: NonNeg = 0
    consume_liquidity: bool = True
    enforce_min_size: bool = True
    strategy_fees: dict[str, FeeModel] = msgspec.field(default_factory=dict)


class _Order:
    """One order in flight: an intent's leg, or an unwind (``price`` None: any price)."""

    __slots__ = (
        "arrive_ns",
        "budget",
        "leg",
        "order_id",
        "order_type",
        "price",
        "sent_ns",
        "side",
        "size",
        "token_id",
    )

    def __init__(
        self,
        leg: int,
        token_id: str,
        side: Side,
        price: int | None,
        size: int,
        order_type: str,
        order_id: str,
        sent_ns: int,
        arrive_ns: int,
    ) -> None:
        self.leg, self.token_id, self.side, self.price, self.size = leg, token_id, side, price, size
        self.order_type, self.order_id = order_type, order_id
        self.sent_ns, self.arrive_ns = sent_ns, arrive_ns
        self.budget: int | None = None  # collateral of a FOK/FAK BUY, once sized


class _Pending:
    __slots__ = (
        "done",
        "intent",
        "intent_id",
        "orders",
        "reports",
        "residual",
        "seq",
        "unwinding",
    )

    def __init__(self, seq: int, intent_id: str, intent: Intent, orders: list[_Order]) -> None:
        self.seq, self.intent_id, self.intent, self.orders = seq, intent_id, intent, orders
        self.reports: list[OrderReport] = []
        self.done: dict[int, OrderReport] = {}
        self.unwinding = False
        self.residual: tuple[tuple[str, int], ...] = ()

    def next_arrival(self) -> int:
        return min((o.arrive_ns for o in self.orders if o.leg not in self.done), default=0)


class PaperTrader:
    """The paper ``Executor``: latency, depth walk, fees, shadow liquidity and leg risk."""

    name = "paper"

    def __init__(self, config: PaperConfig, catalog: MarketCatalog) -> None:
        self.config = config
        self.catalog = catalog
        self._pending: dict[int, _Pending] = {}
        self._seq = 0
        self._shadow: dict[tuple[str, bool], tuple[Ladder, dict[int, int]]] = {}
        self._books: Mapping[str, L2Book] | None = None
        self.submitted = 0
        self.finished = 0

    def bind_books(self, books: Mapping[str, L2Book]) -> None:
        """The engine's live books: collateral-targeted BUYs are sized on them at submit."""
        self._books = books

    def pending(self) -> int:
        """Intents submitted and not yet returned by ``poll``."""
        return len(self._pending)

    def open_orders(self) -> list[OpenLeg]:
        """The orders not final yet (legs and unwinds), by paper order id, oldest first."""
        return [
            OpenLeg(
                order_id=o.order_id,
                intent_id=p.intent_id,
                leg=o.leg,
                token_id=o.token_id,
                side=str(o.side),
                price_micros=o.price if o.price is not None else 0,
                size_micros=o.size,
            )
            for p in self._pending.values()
            for o in p.orders
            if o.leg not in p.done
        ]

    def submit(self, intent_id: str, intent: Intent, now_ns: int) -> None:
        """Queue ``intent``; its legs arrive at ``now_ns + latency``."""
        self._seq += 1
        self.submitted += 1
        arrive = now_ns + self.config.latency_ms * _MS
        orders = [
            _Order(
                i,
                leg.token_id,
                leg.side,
                leg.price,
                leg.size,
                leg.order_type,
                f"paper-{self._seq}-{i}",
                now_ns,
                arrive,
            )
            for i, leg in enumerate(intent.legs)
        ]
        if self._books is not None:
            for o in orders:
                if targets_collateral(o.side, o.order_type):
                    book = self._books.get(o.token_id)
                    if book is not None and not book.needs_snapshot and o.price is not None:
                        o.budget = _budget(book, o.size, o.price)
        self._pending[self._seq] = _Pending(self._seq, intent_id, intent, orders)

    def poll(self, now_ns: int, books: dict[str, L2Book]) -> list[ExecutionResult]:
        """Evaluate every order that has arrived by ``now_ns`` (earliest arrival first, then
        submission order) against ``books``; return the intents now final."""
        ready = [p for p in self._pending.values() if p.next_arrival() <= now_ns]
        ready.sort(key=lambda p: (p.next_arrival(), p.seq))
        out: list[ExecutionResult] = []
        for p in ready:
            try:
                res = self._advance(p, now_ns, books)
            except Exception as exc:  # a bug or bad data must not lose the intent's result
                res = self._failed(p, now_ns, f"paper executor error: {type(exc).__name__}: {exc}")
            if res is not None:
                del self._pending[p.seq]
                self.finished += 1
                out.append(res)
        return out

    # -- one intent ----------------------------------------------------------------------------
    def _advance(self, p: _Pending, now: int, books: dict[str, L2Book]) -> ExecutionResult | None:
        while True:
            for o in p.orders:
                if o.leg not in p.done and o.arrive_ns <= now:
                    rep = self._execute(p, o, now, books)
                    if rep is not None:
                        p.done[o.leg] = rep
            if len(p.done) < len(p.orders):
                return None
            batch = [p.done[o.leg] for o in p.orders]
            if p.unwinding:
                return ExecutionResult(
                    intent_id=p.intent_id,
                    intent=p.intent,
                    reports=tuple(p.reports),
                    complete=False,
                    unwound=tuple(batch),
                    executor=self.name,
                    residual=p.residual,
                )
            p.reports = batch
            unwinds = self._unwinds(p, now)
            if not unwinds:
                return ExecutionResult(
                    intent_id=p.intent_id,
                    intent=p.intent,
                    reports=tuple(batch),
                    complete=bool(batch) and all(r.status == "filled" for r in batch),
                    executor=self.name,
                    residual=p.residual,
                )
            p.unwinding, p.orders, p.done = True, unwinds, {}

    def _failed(self, p: _Pending, now: int, why: str) -> ExecutionResult:
        """The intent's one result when evaluating it raised: legs already done keep their
        reports, the others are rejected with ``why``."""
        reps = [
            p.done.get(o.leg) or self._report(p, o, o.price or 0, "rejected", now, reason=why)
            for o in p.orders
        ]
        reports, unwound = (tuple(p.reports), tuple(reps)) if p.unwinding else (tuple(reps), ())
        return ExecutionResult(
            intent_id=p.intent_id,
            intent=p.intent,
            reports=reports,
            complete=False,
            unwound=unwound,
            executor=self.name,
        )

    def _unwinds(self, p: _Pending, now: int) -> list[_Order]:
        """Opposite orders for each leg's excess over the least-filled leg of a set; an excess
        too small to trade (under the minimum order size, or under one lot) is kept as
        ``residual``."""
        if p.intent.kind != "set" or len(p.reports) < 2:
            return []
        target = min(r.filled for r in p.reports)
        arrive = now + self.config.latency_ms * _MS
        out: list[_Order] = []
        kept: list[tuple[str, int]] = []
        for r in p.reports:
            excess = r.filled - target
            if excess <= 0:
                continue
            if self.config.leg_policy != "unwind" or lot_floor(excess) < max(
                self._min_size(r.token_id), LOT
            ):
                kept.append((r.token_id, excess))
                continue
            side = Side.SELL if r.side == Side.BUY else Side.BUY
            oid = f"paper-{p.seq}-{r.leg}u"
            out.append(_Order(r.leg, r.token_id, side, None, excess, "FAK", oid, now, arrive))
        p.residual = tuple(kept)
        return out

    # -- one order -----------------------------------------------------------------------------
    def _min_size(self, token_id: str) -> int:
        m = self.catalog.by_token.get(token_id)
        if m is None or not self.config.enforce_min_size:
            return 0
        try:
            return parse_micros(m.min_order_size)
        except MoneyError:
            return 0

    def _execute(
        self, p: _Pending, o: _Order, now: int, books: dict[str, L2Book]
    ) -> OrderReport | None:
        """The order's report, or None while it waits for a usable book."""
        book = books.get(o.token_id)
        if book is None or book.needs_snapshot:
            if now >= o.arrive_ns + self.config.order_timeout_ms * _MS:
                return self._report(p, o, o.price or 0, "timeout", now, reason="no usable book")
            return None
        tick = book.tick.micros
        buy = o.side == "BUY"
        limit = o.price if o.price is not None else (MICROS - tick if buy else tick)
        if not 0 < limit < MICROS or limit % tick:
            why = f"price {limit} is not a valid price on the {book.tick.text} grid"
            return self._report(p, o, limit, "rejected", now, reason=why)
        min_size = self._min_size(o.token_id)
        if o.size <= 0 or o.size < min_size:
            why = f"size {o.size} below the minimum {max(min_size, 1)} micros"
            return self._report(p, o, limit, "rejected", now, reason=why)
        lad = book.ask_ladder() if buy else book.bid_ladder()
        key = (o.token_id, buy)
        shadow = self._shadow.get(key)
        if shadow is None or shadow[0] is not lad:
            shadow = self._shadow[key] = (lad, {})
        used = shadow[1]
        share, max_levels = self.config.depth_share_ppm, self.config.max_levels
        levels: list[tuple[int, int]] = []
        for i, (price, size) in enumerate(zip(lad.prices, lad.sizes, strict=True)):
            if (price > limit if buy else price < limit) or (max_levels and i >= max_levels):
                break
            avail = size * share // MICROS - used.get(price, 0)
            if avail > 0:
                levels.append((price, avail))
        target = lot_floor(o.size)
        if targets_collateral(o.side, o.order_type):
            if o.budget is None:
                o.budget = _budget(book, o.size, limit)
            takes, unspent = walk_budget(levels, o.budget, limit)
            whole = fok_budget_spent(unspent, limit)
            dust = LOT  # a market BUY may get one lot less (or more) than its size
        else:
            takes = walk_shares(levels, o.size, limit, buy=buy)
            whole = sum(n for _, n in takes) == target
            dust = 0
        filled = sum(n for _, n in takes)
        if not filled or (o.order_type == "FOK" and not whole):
            why = f"{filled} of {o.size} available at the limit"
            return self._report(p, o, limit, "unfilled", now, reason=why)
        if self.config.consume_liquidity:
            for price, n in takes:
                used[price] = used.get(price, 0) + n
        fees = self.catalog.fee_for(o.token_id)
        if fees is None:
            fees = self.config.strategy_fees.get(p.intent.strategy, _NO_FEE)
        cost = sum(n * price // MICROS for price, n in takes)
        fee = fill_fee(takes, fees) if buy else _sell_fee(takes, fees)
        status: OrderStatus = "filled" if filled >= target - dust else "partial"
        why = "" if status == "filled" else f"rest of {o.size - filled} cancelled (no resting)"
        return self._report(p, o, limit, status, now, filled, cost, fee, why)

    def _report(
        self,
        p: _Pending,
        o: _Order,
        limit: int,
        status: OrderStatus,
        now: int,
        filled: int = 0,
        cost: int = 0,
        fee: int = 0,
        reason: str = "",
    ) -> OrderReport:
        return OrderReport(
            intent_id=p.intent_id,
            leg=o.leg,
            token_id=o.token_id,
            side=o.side,
            limit_price=PriceMicros(limit),
            requested=SizeMicros(o.size),
            filled=SizeMicros(filled),
            cost=CashMicros(cost),
            fee=CashMicros(fee),
            avg_price=PriceMicros(cost * MICROS // filled if filled else 0),
            status=status,
            sent_ns=o.sent_ns,
            done_ns=now,
            order_id=o.order_id,
            reason=reason,
            executor=self.name,
        )


def _budget(book: L2Book, size: int, limit: int) -> int:
    """A FOK/FAK BUY's collateral: the cost of ``size`` on ``book`` now (as live sizes it)."""
    return book_buy_budget(book, size, limit)


def _sell_fee(takes: list[tuple[int, int]], fees: FeeModel) -> int:
    """A SELL's fee per fill, never more than that fill's proceeds (as the venue settles)."""
    return sum(min(fees.fee(n, p), n * p // MICROS) for p, n in takes)

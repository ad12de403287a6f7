"""The simulated CLOB: order entry, matching, balances, settlement and listeners.

Pure Python, synchronous, no I/O: the REST layer calls ``place`` after it has verified the
signature and API key; simulated traders call it directly. Every state change is reported to
listeners in the venue's wire shape (``events.py``, ``market_state.py``, ``trades.py``):

* market listeners get ``list[dict]`` per change: ``best_bid_ask`` + ``price_change`` for a
  placement or cancel; ``book`` (both tokens) + ``last_trade_price`` + ``best_bid_ask`` after a
  match; ``tick_size_change``, ``new_market``, ``market_resolved``;
* user listeners get ``(address, dict)``: ``order`` events (PLACEMENT / UPDATE / CANCELLATION)
  and ``trade`` events, re-sent as settlement advances MATCHED → MINED → CONFIRMED (scheduled
  through ``set_scheduler`` under asyncio, or stepped by ``advance_settlement`` in tests).

Order rules follow the venue (protocol doc §3.3-§3.4, errors with its messages): tick grid and
price range, size in 0.01-share lots, ``min_order_size`` for resting orders, $1 for marketable
ones, collateral reserved for open BUYs and shares locked for open SELLs, GTC / GTD / FOK / FAK,
post-only. Units: prices in ticks at the API (``price_ticks`` on the market's current grid) and
price micros inside; sizes and cash in micros.
"""

from __future__ import annotations

import heapq
from typing import Any, Literal, cast

import msgspec

from polylab.money import MICROS, tick_size
from polylab.sim.accounts import norm_address
from polylab.sim.entry import funds_error, marketable_error, static_error
from polylab.sim.events import market_resolved_event, order_event, order_json
from polylab.sim.market_state import MarketState
from polylab.sim.matching import Fill, execute_fills, plan_fills
from polylab.sim.orderbook import OrderType, Side, SimOrder
from polylab.sim.trades import Trade
from polylab.sim.venue import MarketListener, Scheduler, UserListener, Venue

__all__ = ["Exchange", "MarketListener", "PlaceResult", "Scheduler", "UserListener"]


class PlaceResult(msgspec.Struct, frozen=True, kw_only=True):
    """Outcome of ``Exchange.place``; amounts in micros.

    ``status``: "live" (resting, nothing matched), "matched" (something matched; a GTC/GTD
    remainder may still rest) or "" on rejection (``error_msg`` says why). ``making_micros`` is
    what the order gave (BUY: collateral incl. fees; SELL: shares), ``taking_micros`` what it got.
    """

    success: bool
    order_id: str = ""
    status: Literal["live", "matched", "unmatched", ""] = ""
    error_msg: str = ""
    making_micros: int = 0
    taking_micros: int = 0
    fee_micros: int = 0
    trade_ids: tuple[str, ...] = ()
    transaction_hashes: tuple[str, ...] = ()


def _reject(order_id: str, msg: str) -> PlaceResult:
    return PlaceResult(success=False, order_id=order_id, error_msg=msg)


class Exchange(Venue):
    """A binary-market CLOB with mirrored books and complementary (MINT/MERGE) matching.

    Constructor (``Venue``): ``starting_collateral_micros`` granted to every new address,
    ``seed`` for ids, ``clock_ms`` (injectable clock), ``gtd_buffer_s`` (minimum GTD lead),
    ``auto_tick_size`` (0.01 → 0.001 beyond 0.96 / 0.04), ``mined_delay_s`` and
    ``confirmed_delay_s`` (settlement timing under a scheduler).
    """

    def _maybe_retick(self, state: MarketState, yes_price: int) -> None:
        """The venue's 0.96 / 0.04 rule: a 0.01 market trades on 0.001 near the edges."""
        if not self.auto_tick_size or state.base_tick != "0.01":
            return
        edge = yes_price > 960_000 or yes_price < 40_000
        current = state.market.tick_size
        if edge and current == "0.01":
            self.set_tick_size(state.yes, "0.001")
        elif not edge and current == "0.001":
            coarse = tick_size("0.01").micros
            if all(o.yes_price % coarse == 0 for o in state.book.all_orders()):
                self.set_tick_size(state.yes, "0.01")

    def place(
        self,
        owner: str,
        token_id: str,
        side: Side,
        price_ticks: int,
        size_micros: int,
        order_type: OrderType = "GTC",
        post_only: bool = False,
        expiration_s: int = 0,
        order_id: str | None = None,
        api_key: str = "",
        *,
        budget_micros: int | None = None,
    ) -> PlaceResult:
        """Validate, match and (GTC/GTD remainder) rest an order for ``owner`` (maker address).

        ``price_ticks`` is on the market's current grid. ``budget_micros`` makes a FOK/FAK BUY
        a market buy that spends up to that much collateral (fees on top), ``size_micros`` then
        being its nominal share count. Never raises on bad input: the result says why.
        """
        now = self.now_ms()
        self.expire_orders(now)
        oid = order_id or "0x" + self._next("order")[1].hex()
        owner = norm_address(owner)
        api_key = api_key or self.api_keys.get(owner, "")
        result = self._place(
            owner,
            token_id,
            side,
            price_ticks,
            size_micros,
            order_type,
            post_only,
            expiration_s,
            oid,
            api_key,
            budget_micros,
            now,
        )
        self.stats["orders" if result.success else "rejected"] += 1
        return result

    def _place(
        self,
        owner: str,
        token_id: str,
        side: str,
        price_ticks: int,
        size: int,
        order_type: str,
        post_only: bool,
        expiration_s: int,
        oid: str,
        api_key: str,
        budget: int | None,
        now: int,
    ) -> PlaceResult:
        state = self._by_token.get(token_id)
        if state is None:
            return _reject(oid, "Invalid token id")
        if oid in self._orders:
            return _reject(oid, f"order {oid} is invalid. Duplicated.")
        error = static_error(
            state,
            order_id=oid,
            side=side,
            order_type=order_type,
            price_ticks=price_ticks,
            size=size,
            post_only=post_only,
            expiration_s=expiration_s,
            budget=budget,
            now_s=now // 1000,
            gtd_buffer_s=self.gtd_buffer_s,
        )
        if error:
            return _reject(oid, error)
        order = SimOrder(
            order_id=oid,
            owner=owner,
            api_key=api_key,
            condition_id=state.market.condition_id,
            token_id=token_id,
            outcome=state.outcome(token_id),
            is_yes=state.is_yes(token_id),
            side=cast(Side, side),
            price_micros=price_ticks * self.grid(token_id).micros,
            size_micros=size,
            order_type=cast(OrderType, order_type),
            post_only=post_only,
            expiration_s=expiration_s if order_type == "GTD" else 0,
            created_ms=now,
            seq=self._next("seq")[0],
            budget_micros=budget,
        )
        crosses = state.book.crosses(order.yes_bid, order.yes_price)
        fills, unspent = plan_fills(state.book, order, order.yes_price, budget)
        error = marketable_error(order, crosses, fills, unspent) or funds_error(
            self.accounts, state.market.fee, order, fills
        )
        if error:
            return _reject(oid, error)
        return self._accept(state, order, fills, now)

    def _accept(
        self, state: MarketState, order: SimOrder, fills: list[Fill], now: int
    ) -> PlaceResult:
        self._orders[order.id] = order
        self._emit_user(order.owner, order_event(order, "PLACEMENT", now))
        before = state.book.top(True)
        ex = execute_fills(self.accounts, state, order, fills, lambda: self._next("trade")[1], now)
        for maker in ex.makers:
            if maker.status == "MATCHED":
                self._open.get(maker.owner, {}).pop(maker.id, None)
            self._emit_user(maker.owner, order_event(maker, "UPDATE", now))
        rests = order.order_type in ("GTC", "GTD") and order.remaining_micros > 0
        if rests:
            self._rest(state, order)
        else:
            order.status = "MATCHED"
        events: list[dict[str, Any]] = []
        if ex.trades:
            events = state.trade_books(now) + ex.events
        elif rests:
            events = [state.price_change([(order.yes_price, order.yes_bid)], now)]
        self._emit_market(state.best_bid_ask(before, now) + events)
        if fills:
            self._emit_user(order.owner, order_event(order, "UPDATE", now))
            self._maybe_retick(state, fills[-1].yes_price)
        for trade in ex.trades:
            self.ledger.record(trade)
            self.stats["trades"] += 1
            self._publish_trade(trade, now)
        return PlaceResult(
            success=True,
            order_id=order.id,
            status="matched" if fills else "live",
            making_micros=ex.making,
            taking_micros=ex.taking,
            fee_micros=ex.fees,
            trade_ids=tuple(t.id for t in ex.trades),
            transaction_hashes=tuple(t.transaction_hash for t in ex.trades),
        )

    def _rest(self, state: MarketState, order: SimOrder) -> None:
        """Put an order's remainder on the book, backing it with collateral or shares."""
        if order.side == "BUY":
            self.accounts.reserve(
                order.owner, order.remaining_micros * order.price_micros // MICROS
            )
        else:
            self.accounts.lock_shares(order.owner, order.token_id, order.remaining_micros)
        state.book.side_of(order).add(order)
        self._open.setdefault(order.owner, {})[order.id] = order
        if order.order_type == "GTD":
            heapq.heappush(self._gtd, (order.expiration_s, order.seq, order.id))
            if self._scheduler is not None:
                delay = max(0.0, order.expiration_s - self.now_ms() / 1000) + 0.05
                self._scheduler(delay, self.expire_orders)

    def _publish_trade(self, trade: Trade, now: int) -> None:
        for address, trader_side in trade.participants():
            self._emit_user(address, trade.to_event(trader_side, now))
        if self._scheduler is not None:
            self._scheduler(self.mined_delay_s, lambda: self._advance(trade.id, True))

    def _advance(self, trade_id: str, reschedule: bool) -> Trade | None:
        now = self.now_ms()
        trade = self.ledger.advance(trade_id, now)
        if trade is None:
            return None
        for address, trader_side in trade.participants():
            self._emit_user(address, trade.to_event(trader_side, now))
        if reschedule and trade.status != "CONFIRMED" and self._scheduler is not None:
            delay = max(0.0, self.confirmed_delay_s - self.mined_delay_s)
            self._scheduler(delay, lambda: self._advance(trade_id, True))
        return trade

    def advance_settlement(self) -> int:
        """Move every unsettled trade one status forward (for tests without a scheduler)."""
        ids = list(self.ledger.unsettled)
        return sum(1 for tid in ids if self._advance(tid, False) is not None)

    def _unrest(self, order: SimOrder, now: int) -> None:
        state = self._by_token[order.token_id]
        before = state.book.top(True)
        state.book.side_of(order).remove(order)
        if order.side == "BUY":
            self.accounts.release(
                order.owner, order.remaining_micros * order.price_micros // MICROS
            )
        else:
            self.accounts.unlock_shares(order.owner, order.token_id, order.remaining_micros)
        order.status = "CANCELED"
        self._open.get(order.owner, {}).pop(order.id, None)
        self.stats["cancels"] += 1
        self._emit_user(order.owner, order_event(order, "CANCELLATION", now))
        change = state.price_change([(order.yes_price, order.yes_bid)], now)
        self._emit_market([*state.best_bid_ask(before, now), change])

    def cancel(self, owner: str, order_id: str) -> bool:
        """Cancel one open order of ``owner``; ``False`` if it is not open or not theirs."""
        now = self.now_ms()
        self.expire_orders(now)
        order = self._open.get(norm_address(owner), {}).get(order_id)
        if order is None:
            return False
        self._unrest(order, now)
        return True

    def cancel_all(self, owner: str, market: str = "", asset_id: str = "") -> list[str]:
        """Cancel every open order of ``owner`` (optionally of one market or token)."""
        now = self.now_ms()
        self.expire_orders(now)
        victims = [
            o
            for o in self._open.get(norm_address(owner), {}).values()
            if (not market or o.condition_id == market) and (not asset_id or o.token_id == asset_id)
        ]
        for o in victims:
            self._unrest(o, now)
        return [o.id for o in victims]

    def expire_orders(self, now_ms: int | None = None) -> list[str]:
        """Cancel GTD orders whose expiration has passed; returns their ids."""
        now = self.now_ms() if now_ms is None else now_ms
        expired: list[str] = []
        while self._gtd and self._gtd[0][0] <= now // 1000:
            _, _, oid = heapq.heappop(self._gtd)
            order = self._orders.get(oid)
            if order is not None and order.status == "LIVE" and order.remaining_micros > 0:
                self._unrest(order, now)
                expired.append(oid)
        return expired

    def resolve(self, condition_id: str, winning_token_id: str) -> None:
        """Close a market: cancel its orders, name the winner, announce ``market_resolved``."""
        state = self._states[condition_id]
        if winning_token_id not in state.market.token_ids:
            raise ValueError(f"{winning_token_id} is not a token of market {condition_id}")
        now = self.now_ms()
        for order in list(state.book.all_orders()):
            self._unrest(order, now)
        state.closed = True
        state.winner = winning_token_id
        self._replace_market(state, msgspec.structs.replace(state.market, active=False))
        self._emit_market([market_resolved_event(state.market, winning_token_id, now)])

    def open_orders(
        self, owner: str, market: str = "", asset_id: str = "", order_id: str = ""
    ) -> list[dict[str, Any]]:
        """Open orders of ``owner`` as ``/data/orders`` rows, oldest first."""
        self.expire_orders()
        return [
            order_json(o)
            for o in self._open.get(norm_address(owner), {}).values()
            if (not market or o.condition_id == market)
            and (not asset_id or o.token_id == asset_id)
            and (not order_id or o.id == order_id)
        ]

"""Price-time matching on the unified YES book, and the settlement of one fill.

A taker walks the opposite side of the YES book from the best price, FIFO within a price, as
far as its limit allows; every fill is at the maker's price, so price improvement stays with the
taker. What a fill moves depends on the two tokens involved (protocol doc §1.4):

* same token: a normal transfer, shares one way and collateral the other;
* taker and maker both BUY (YES vs NO): **MINT**, both pay their own price, a new complete set
  is split and each side gets its token;
* both SELL: **MERGE**, both deliver their token, the complete set is merged and each side is
  paid its own price.

Units: share and collateral micros, prices in price micros. Sizes are whole lots of 0.01 share
and prices multiples of 0.0001, so ``size × price`` is always a whole number of micros and a
mint or merge moves exactly one dollar per complete set.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable
from itertools import groupby
from typing import Any, NamedTuple

from polylab.fees import FeeModel
from polylab.money import MICROS
from polylab.sim.accounts import FEE_COLLECTOR, Accounts
from polylab.sim.market_state import MarketState
from polylab.sim.orderbook import MarketBook, SimOrder
from polylab.sim.trades import MakerLeg, Trade

__all__ = [
    "LOT_MICROS",
    "Execution",
    "Fill",
    "FillCash",
    "execute_fills",
    "lot_cost",
    "plan_fills",
    "settle_fill",
]

LOT_MICROS = 10_000
"""Sizes move in lots of 0.01 share (the venue's 2-decimal size grid)."""


class Fill(NamedTuple):
    """One maker order hit by the taker for ``size`` shares at YES-book price ``yes_price``."""

    maker: SimOrder
    size: int
    yes_price: int


class FillCash(NamedTuple):
    """Collateral a settled fill moved: the taker's notional (own price × size), its fee, and
    the maker's notional."""

    taker_cash: int
    fee: int
    maker_cash: int


def lot_cost(price_micros: int) -> int:
    """Collateral for one 0.01-share lot at ``price_micros``."""
    return LOT_MICROS * price_micros // MICROS


def plan_fills(
    book: MarketBook, taker: SimOrder, yes_limit: int, budget_micros: int | None = None
) -> tuple[list[Fill], int]:
    """The fills ``taker`` would get now, without changing anything.

    ``yes_limit`` is the taker's limit on the YES book. With ``budget_micros`` (a market BUY)
    the walk stops when the unspent collateral cannot buy another lot; otherwise it stops when
    ``taker.remaining_micros`` shares are filled. Returns (fills, unspent budget or 0).
    """
    opposite = book.asks if taker.yes_bid else book.bids
    remaining = taker.remaining_micros
    left = budget_micros or 0
    fills: list[Fill] = []
    for p in opposite.best_first():
        if (p > yes_limit) if taker.yes_bid else (p < yes_limit):
            break
        own = taker.own_price(p)
        for maker in opposite.levels[p]:
            if budget_micros is None:
                size = min(maker.remaining_micros, remaining)
            else:
                size = min(maker.remaining_micros, left * MICROS // own // LOT_MICROS * LOT_MICROS)
            if size <= 0:
                return fills, left
            fills.append(Fill(maker, size, p))
            if budget_micros is None:
                remaining -= size
                if not remaining:
                    return fills, 0
            else:
                left -= size * own // MICROS
    return fills, left


def settle_fill(
    accounts: Accounts, taker: SimOrder, fill: Fill, fee_model: FeeModel | None
) -> FillCash:
    """Move collateral and shares for one fill; the taker pays the market's fee, makers none.

    A BUY taker's fee is added to what it pays; a SELL taker's fee comes out of its proceeds
    (never more than the proceeds). Fees go to ``FEE_COLLECTOR``.
    """
    maker, size, p = fill
    t_own = taker.own_price(p)
    t_cash = size * t_own // MICROS
    m_cash = size * maker.own_price(p) // MICROS
    fee = fee_model.fee(size, t_own) if fee_model is not None else 0
    if taker.side == "BUY":
        accounts.debit(taker.owner, t_cash + fee)
        accounts.add_shares(taker.owner, taker.token_id, size)
    else:
        fee = min(fee, t_cash)
        accounts.remove_shares(taker.owner, taker.token_id, size)
        accounts.credit(taker.owner, t_cash - fee)
    if fee:
        accounts.credit(FEE_COLLECTOR, fee)
    if maker.side == "BUY":
        accounts.spend_reserved(maker.owner, m_cash)
        accounts.add_shares(maker.owner, maker.token_id, size)
    else:
        accounts.spend_locked_shares(maker.owner, maker.token_id, size)
        accounts.credit(maker.owner, m_cash)
    taker.matched_micros += size
    maker.matched_micros += size
    return FillCash(t_cash, fee, m_cash)


class Execution(NamedTuple):
    """What settling a taker's fills produced: trades (one per YES price level), the taker's
    totals in micros (``making``: given, fees included for BUYs; ``taking``: received, fees
    deducted for SELLs), the market events (``last_trade_price``) and the makers touched."""

    trades: list[Trade]
    making: int
    taking: int
    fees: int
    events: list[dict[str, Any]]
    makers: list[SimOrder]


def execute_fills(
    accounts: Accounts,
    state: MarketState,
    taker: SimOrder,
    fills: list[Fill],
    new_id: Callable[[], bytes],
    now_ms: int,
) -> Execution:
    """Settle ``fills`` in order, update the book, and group them into trades per price level.

    ``new_id()`` returns 32 fresh bytes per trade (its UUID and transaction hash derive from
    them). Filled makers leave the book with status MATCHED.
    """
    trades: list[Trade] = []
    events: list[dict[str, Any]] = []
    makers: list[SimOrder] = []
    making = taking = fees = 0
    for p, group in groupby(fills, key=lambda f: f.yes_price):
        level = list(group)
        legs: list[MakerLeg] = []
        size = fee_sum = other_size = 0
        for fill in level:
            cash = settle_fill(accounts, taker, fill, state.market.fee)
            maker = fill.maker
            ladder = state.book.side_of(maker)
            ladder.reduce(maker, fill.size)
            if maker.remaining_micros == 0:
                ladder.remove(maker)
                maker.status = "MATCHED"
            makers.append(maker)
            legs.append(
                MakerLeg(
                    maker.id,
                    maker.api_key,
                    maker.owner,
                    fill.size,
                    maker.price_micros,
                    maker.token_id,
                    maker.outcome,
                )
            )
            size += fill.size
            fee_sum += cash.fee
            if maker.token_id != taker.token_id:
                other_size += fill.size
            if taker.side == "BUY":
                making += cash.taker_cash + cash.fee
                taking += fill.size
            else:
                making += fill.size
                taking += cash.taker_cash - cash.fee
        fees += fee_sum
        h = new_id()
        own = taker.own_price(p)
        trade = Trade(
            trade_id=str(uuid.UUID(bytes=h[:16], version=4)),
            taker_order_id=taker.id,
            taker_api_key=taker.api_key,
            taker_address=taker.owner,
            market=state.market.condition_id,
            asset_id=taker.token_id,
            outcome=taker.outcome,
            side=taker.side,
            price_micros=own,
            size_micros=size,
            fee_micros=fee_sum,
            makers=legs,
            match_ms=now_ms,
            transaction_hash="0x" + hashlib.sha256(h).hexdigest(),
        )
        taker.trade_ids.append(trade.id)
        for fill in level:
            fill.maker.trade_ids.append(trade.id)
        trades.append(trade)
        events.append(
            state.last_trade_event(
                taker.token_id, own, size, taker.side, trade.transaction_hash, now_ms
            )
        )
        if other_size:  # a MINT or MERGE also traded the complementary token
            events.append(
                state.last_trade_event(
                    state.other(taker.token_id),
                    MICROS - own,
                    other_size,
                    "SELL" if taker.side == "BUY" else "BUY",
                    trade.transaction_hash,
                    now_ms,
                )
            )
    return Execution(trades, making, taking, fees, events, makers)

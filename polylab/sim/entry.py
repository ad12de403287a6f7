"""Order-entry checks, each answering with the venue's error text (protocol doc §3.3-§3.4).

Three stages, in the order the exchange runs them:

1. ``static_error``: the order on its own (market open, side, type, tick grid and price range,
   size lots, post-only only with GTC/GTD, GTD expiration, ``min_order_size`` for resting orders);
2. ``marketable_error``: the order against the book (post-only crossing, $1 minimum for orders
   that would trade, FOK all-or-nothing, FAK needs at least one match);
3. ``funds_error``: allowance (when the simulator requires approval), then collateral (BUY,
   fees included) or free shares (SELL) for the whole order.

Units: price micros, size and cash micros; ``now_s`` unix seconds.
"""

from __future__ import annotations

from typing import Final

from polylab.fees import FeeModel
from polylab.money import MICROS, parse_micros, price_micros_to_str, size_to_str, tick_size
from polylab.sim.accounts import Accounts
from polylab.sim.market_state import MarketState
from polylab.sim.matching import LOT_MICROS, Fill, lot_cost
from polylab.sim.orderbook import SimOrder

__all__ = [
    "FAK_NOT_FILLED",
    "FOK_NOT_FILLED",
    "MARKET_NOT_READY",
    "POST_ONLY_CROSSES",
    "funds_error",
    "marketable_error",
    "not_enough_allowance",
    "not_enough_balance",
    "static_error",
]

FOK_NOT_FILLED: Final = "order couldn't be fully filled. FOK orders are fully filled or killed."
FAK_NOT_FILLED: Final = (
    "no orders found to match with FAK order. "
    "FAK orders are partially filled or killed if no match is found."
)
MARKET_NOT_READY: Final = "the market is not yet ready to process new orders"
POST_ONLY_CROSSES: Final = "invalid post-only order: order crosses book"
_ORDER_TYPES: Final = ("GTC", "GTD", "FOK", "FAK")


def not_enough_balance(have: int, need: int) -> str:
    """The venue's balance error, amounts in base units (micros)."""
    return (
        "not enough balance / allowance: the balance is not enough -> "
        f"balance: {have}, order amount: {need}"
    )


def not_enough_allowance(need: int) -> str:
    """The venue's error for an address whose allowance the CLOB has not seen (base units)."""
    return (
        "not enough balance / allowance: the allowance is not enough -> "
        f"allowance: 0, order amount: {need}"
    )


def static_error(
    state: MarketState,
    *,
    order_id: str,
    side: str,
    order_type: str,
    price_ticks: int,
    size: int,
    post_only: bool,
    expiration_s: int,
    budget: int | None,
    now_s: int,
    gtd_buffer_s: int,
) -> str:
    """What is wrong with the order by itself, or "" if nothing."""
    market = state.market
    if state.closed:
        return f"market {market.condition_id} is closed"
    if not market.active:
        return MARKET_NOT_READY
    if side not in ("BUY", "SELL"):
        return "Invalid side"
    if order_type not in _ORDER_TYPES:
        return f"Invalid order type: {order_type!r}"
    grid = tick_size(market.tick_size)
    if not 1 <= price_ticks < grid.n:
        return (
            f"order {order_id} is invalid. Price ({grid.to_str(max(price_ticks, 0))}) out of "
            f"range, min: {grid.text} - max: {grid.to_str(grid.n - 1)}"
        )
    if size <= 0 or size % LOT_MICROS:
        return (
            f"order {order_id} is invalid. Size ({size_to_str(max(size, 0))}) must be a positive"
            " number of shares with at most 2 decimals"
        )
    if post_only and order_type in ("FOK", "FAK"):
        return "invalid post-only order: only GTC and GTD order types are allowed"
    if order_type == "GTD" and expiration_s <= now_s + gtd_buffer_s:
        return "invalid expiration"
    resting = order_type in ("GTC", "GTD")
    if budget is not None and (side != "BUY" or resting or budget <= 0):
        return "a collateral budget is only valid for FOK/FAK BUY orders"
    if resting and size < parse_micros(market.min_order_size):
        return (
            f"order {order_id} is invalid. Size ({size_to_str(size)}) lower than the minimum: "
            f"{market.min_order_size}"
        )
    return ""


def marketable_error(order: SimOrder, crosses: bool, fills: list[Fill], unspent: int) -> str:
    """What forbids the order given the book (post-only, $1 minimum, FOK, FAK), or ""."""
    if order.post_only and crosses:
        return POST_ONLY_CROSSES
    budget = order.budget_micros
    notional = budget if budget is not None else order.size_micros * order.price_micros // MICROS
    if fills and notional < MICROS:
        return (
            f"invalid amount for a marketable {order.side} order "
            f"(${price_micros_to_str(notional)}), min size: $1"
        )
    if order.order_type == "FOK":
        filled = sum(f.size for f in fills)
        if budget is None:
            complete = filled == order.size_micros
        else:
            complete = unspent < lot_cost(order.price_micros)
        if not complete:
            return FOK_NOT_FILLED
    if order.order_type == "FAK" and not fills:
        return FAK_NOT_FILLED
    return ""


def funds_error(
    accounts: Accounts, fee_model: FeeModel | None, order: SimOrder, fills: list[Fill]
) -> str:
    """The venue's balance check: the whole order must be fundable, fees included, or "".

    SELL: free shares ≥ size (its fee comes out of the proceeds). BUY: free collateral ≥ the
    larger of the exact cost of the planned fills plus the resting remainder, and the order's
    nominal amount (size × limit, or the budget) plus the fee at the limit when it trades.
    """
    a = order.owner
    if order.side == "SELL":
        if not accounts.has_allowance(a):
            return not_enough_allowance(order.size_micros)
        have = accounts.free_shares(a, order.token_id)
        return not_enough_balance(have, order.size_micros) if have < order.size_micros else ""
    exact = 0
    for f in fills:
        own = order.own_price(f.yes_price)
        exact += f.size * own // MICROS + (fee_model.fee(f.size, own) if fee_model else 0)
    budget = order.budget_micros
    if budget is None and order.order_type in ("GTC", "GTD"):
        rest = order.size_micros - sum(f.size for f in fills)
        exact += rest * order.price_micros // MICROS
    nominal = budget if budget is not None else order.size_micros * order.price_micros // MICROS
    if fills and fee_model is not None:
        shares = order.size_micros if budget is None else nominal * MICROS // order.price_micros
        nominal += fee_model.fee(shares, order.price_micros)
    need = max(exact, nominal)
    if not accounts.has_allowance(a):
        return not_enough_allowance(need)
    have = accounts.free_collateral(a)
    return not_enough_balance(have, need) if have < need else ""

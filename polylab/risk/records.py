"""What the portfolio books and shows: fills, trades, merges, settlements, positions, snapshots.

Every money field is integer micros (cash, cost, fees, PnL); shares are share micros; prices are
price micros; times are ns. Signs: ``cash_delta`` and ``realized`` are signed (negative = money
out / loss); ``shares`` is signed (negative only if something sold shares it did not hold).
"""

from __future__ import annotations

from typing import Literal

import msgspec

from polylab.domain import Side

__all__ = [
    "Fill",
    "MergeRecord",
    "PortfolioSnapshot",
    "Position",
    "PositionMark",
    "SettleRecord",
    "TradeRecord",
]


class Fill(msgspec.Struct, frozen=True, kw_only=True):
    """One order's fill as booked (one per order report with shares filled).

    ``leg``: index of the intent's leg (for an unwind order, the leg it undoes); ``unwind``:
    True for the executor's leg-risk unwinds; ``size``: shares filled; ``price``: average
    price; ``cost``: cash paid (BUY) or received (SELL), fees excluded; ``fee``: taker fee;
    ``cash_delta``: the change in cash (−cost−fee for a BUY, cost−fee for a SELL);
    ``realized``: PnL realized by this fill (shares it closed, FIFO); ``position_after``:
    shares of the token held afterwards.
    """

    intent_id: str
    strategy: str
    group_id: str
    leg: int
    token_id: str
    side: Side
    size: int
    price: int
    cost: int
    fee: int
    cash_delta: int
    realized: int
    position_after: int
    ts_ns: int
    unwind: bool = False
    order_id: str = ""


class TradeRecord(msgspec.Struct, frozen=True, kw_only=True):
    """One intent seen as a trade: the shares it opened and what they realized when closed.

    ``opened``: shares the intent's fills added to positions (micros, all tokens);
    ``open_shares``: of those, still held; ``realized``: PnL realized so far on them, whoever
    closed them (a later SELL, a merge, a settlement), fees of opening and closing included;
    ``fees``: fees this intent's own orders paid; ``closed``: it opened shares and none is
    left (only closed trades count in the win rate); ``closed_ns``: when the last one went.
    """

    intent_id: str
    strategy: str
    group_id: str
    first_ns: int
    last_ns: int
    opened: int
    open_shares: int
    realized: int
    fees: int
    fills: int
    closed: bool
    closed_ns: int = 0


class MergeRecord(msgspec.Struct, frozen=True, kw_only=True):
    """Complete sets merged into collateral: ``sets`` share micros of every token → ``payout``.

    ``payout`` = ``sets`` cash micros ($1 per set); ``basis``: cost (fees included) of the shares
    merged; ``realized`` = payout − basis; ``markets``: condition ids (for the on-chain merge,
    see ``polylab.execution.merge``).
    """

    group_id: str
    kind: Literal["binary", "negrisk"]
    token_ids: tuple[str, ...]
    markets: tuple[str, ...]
    sets: int
    payout: int
    basis: int
    realized: int
    ts_ns: int


class SettleRecord(msgspec.Struct, frozen=True, kw_only=True):
    """A market resolved: held winners paid $1 a share, losers 0.

    ``payout``: cash received (negative only for shares sold short); ``basis``: cost of the
    shares removed; ``realized`` = payout − basis; ``shares``: per token, shares settled.
    """

    condition_id: str
    winning_token_id: str
    shares: tuple[tuple[str, int], ...]
    payout: int
    basis: int
    realized: int
    ts_ns: int


class Position(msgspec.Struct, frozen=True, kw_only=True):
    """Shares of one token held and what they cost (fees included), micros.

    ``avg_price``: basis per share in price micros (0 when flat).
    """

    token_id: str
    condition_id: str
    shares: int
    basis: int
    avg_price: int


class PositionMark(msgspec.Struct, frozen=True, kw_only=True):
    """A position valued at the book: longs at the best bid, shorts at the best ask.

    ``mark``: the price used (micros; 0 when there is no bid); ``value``: shares × mark
    (rounded against us); ``unrealized`` = value − basis.
    """

    token_id: str
    condition_id: str
    shares: int
    basis: int
    mark: int
    value: int
    unrealized: int


class PortfolioSnapshot(msgspec.Struct, frozen=True, kw_only=True):
    """The portfolio at one moment.

    ``equity`` = cash + Σ position values; ``realized`` + ``unrealized`` = ``equity`` −
    ``starting_cash``. ``fees``: all fees paid. ``merges``/``merged_sets``/``merge_payout``:
    count of merges, sets merged (share micros), cash they paid. ``trades``: intents with fills
    that opened shares; ``completed``/``wins``: closed trades and those with realized > 0;
    ``win_rate`` = wins / completed (a ratio, not money; 0.0 with no completed trade).
    """

    cash: int
    starting_cash: int
    equity: int
    realized: int
    unrealized: int
    fees: int
    merges: int
    merged_sets: int
    merge_payout: int
    trades: int
    open_trades: int
    completed: int
    wins: int
    win_rate: float
    fills: int
    positions: tuple[PositionMark, ...]

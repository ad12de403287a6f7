"""Response types of the CLOB REST API (venue field names, strings kept as strings) and the
conversion of a REST book into an ``L2Book``.

Numbers the venue sends as JSON numbers (``minimum_tick_size: 0.01``) are decoded to ``Decimal``
from their text, never through a float; number-or-string fields accept both, because the venue
and older captures disagree.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Generic, TypeVar

import msgspec

from polylab.book.l2 import L2Book
from polylab.errors import ProtocolError
from polylab.feed.wire import Book, MakerOrder, stamp_ms
from polylab.money import MoneyError, TickSize, parse_micros, tick_size

__all__ = [
    "END_CURSOR",
    "FIRST_CURSOR",
    "BalanceAllowance",
    "CancelResult",
    "ClobFeeDetails",
    "ClobMarket",
    "ClobMarketInfo",
    "ClobMarketToken",
    "ClobToken",
    "MarketsPage",
    "OpenOrder",
    "OrderResponse",
    "Page",
    "TradeRow",
    "book_to_l2",
    "decode_any",
    "decode_response",
]

T = TypeVar("T")

FIRST_CURSOR = "MA=="
"""Cursor of the first page (base64 "0")."""
END_CURSOR = "LTE="
"""Cursor meaning "no more pages" (base64 "-1")."""

Num = str | int
"""A number the venue sends as a string (possibly empty) or a JSON integer."""
Dec = Decimal
"""A JSON number (or numeric string) decoded exactly from its text."""


class OrderResponse(msgspec.Struct, frozen=True):
    """``POST /order`` answer. ``error_msg`` non-empty ⇒ not (immediately) placed.

    ``status``: live | matched | delayed | unmatched. Amounts are 6-decimal base-unit strings.
    """

    success: bool = False
    error_msg: str = msgspec.field(default="", name="errorMsg")
    order_id: str = msgspec.field(default="", name="orderID")
    status: str = ""
    taking_amount: Num = msgspec.field(default="", name="takingAmount")
    making_amount: Num = msgspec.field(default="", name="makingAmount")
    transactions_hashes: list[str] | None = msgspec.field(default=None, name="transactionsHashes")
    trade_ids: list[str] | None = msgspec.field(default=None, name="tradeIDs")
    order_hashes: list[str] | None = msgspec.field(default=None, name="orderHashes")


class CancelResult(msgspec.Struct, frozen=True):
    """Cancel answer: ids cancelled, and the reason per id that was not."""

    canceled: list[str] = []
    not_canceled: dict[str, str] = {}


class OpenOrder(msgspec.Struct, frozen=True):
    """A row of ``GET /data/orders`` (an open order of this API key)."""

    id: str
    status: str = ""
    owner: str = ""
    maker_address: str = ""
    market: str = ""
    asset_id: str = ""
    side: str = ""
    original_size: Num = ""
    size_matched: Num = ""
    price: Num = ""
    outcome: str = ""
    expiration: Num = ""
    order_type: str = ""
    associate_trades: list[str] | None = None
    created_at: Num = ""


class TradeRow(msgspec.Struct, frozen=True):
    """A row of ``GET /data/trades`` (same fields as the user channel's ``trade`` event)."""

    id: str
    taker_order_id: str = ""
    market: str = ""
    asset_id: str = ""
    side: str = ""
    size: Num = ""
    fee_rate_bps: Num = ""
    price: Num = ""
    status: str = ""
    match_time: Num = ""
    last_update: Num = ""
    outcome: str = ""
    bucket_index: int = 0
    owner: str = ""
    maker_address: str = ""
    transaction_hash: str = ""
    trader_side: str = ""
    maker_orders: list[MakerOrder] = []


class BalanceAllowance(msgspec.Struct, frozen=True):
    """``GET /balance-allowance``: balance and allowance per spender, 6-decimal base units."""

    balance: Num = "0"
    allowances: dict[str, Num] = {}

    @property
    def balance_micros(self) -> int:
        """Balance in micros (collateral dollars or shares)."""
        return int(self.balance)


class ClobToken(msgspec.Struct, frozen=True):
    """An outcome token of a CLOB market; ``winner`` tells the resolution."""

    token_id: str
    outcome: str = ""
    price: Dec | None = None
    winner: bool = False


class ClobMarket(msgspec.Struct, frozen=True):
    """An item of ``GET /markets`` / ``GET /markets/{condition_id}``."""

    condition_id: str
    question_id: str = ""
    question: str = ""
    market_slug: str = ""
    tokens: list[ClobToken] = []
    minimum_order_size: Dec | None = None
    minimum_tick_size: Dec | None = None
    neg_risk: bool = False
    active: bool = False
    closed: bool = False
    accepting_orders: bool = False
    end_date_iso: str | None = None
    maker_base_fee: Dec = Decimal(0)
    taker_base_fee: Dec = Decimal(0)


class MarketsPage(msgspec.Struct, frozen=True):
    """One page of ``GET /markets``: cursor ``MA==`` first, ``LTE=`` when done."""

    data: list[ClobMarket] = []
    next_cursor: str = ""
    limit: int = 0
    count: int = 0


class ClobMarketToken(msgspec.Struct, frozen=True):
    """``t[]`` item of ``/clob-markets``: token id and outcome."""

    token_id: str = msgspec.field(name="t")
    outcome: str = msgspec.field(default="", name="o")


class ClobFeeDetails(msgspec.Struct, frozen=True):
    """``fd`` of ``/clob-markets``: fee rate, exponent, taker-only."""

    rate: Dec = msgspec.field(default=Decimal(0), name="r")
    exponent: Dec = msgspec.field(default=Decimal(1), name="e")
    taker_only: bool = msgspec.field(default=True, name="to")


class ClobMarketInfo(msgspec.Struct, frozen=True):
    """``GET /clob-markets/{condition_id}`` (compact keys, spelled out here)."""

    tokens: list[ClobMarketToken] = msgspec.field(default_factory=list, name="t")
    condition_id: str = msgspec.field(default="", name="c")
    min_order_size: Dec = msgspec.field(default=Decimal(0), name="mos")
    min_tick_size: Dec = msgspec.field(default=Decimal(0), name="mts")
    maker_base_fee: Dec = msgspec.field(default=Decimal(0), name="mbf")
    taker_base_fee: Dec = msgspec.field(default=Decimal(0), name="tbf")
    neg_risk: bool = msgspec.field(default=False, name="nr")
    fee: ClobFeeDetails | None = msgspec.field(default=None, name="fd")
    version: str = msgspec.field(default="", name="v")


_FINER = {"0.1": "0.01", "0.01": "0.001", "0.001": "0.0001"}


def _grid_of(book: Book) -> TickSize:
    if book.tick_size:
        return tick_size(book.tick_size)
    grid = tick_size("0.01")
    for lv in (*book.bids, *book.asks):
        p = parse_micros(lv.price)
        while p % grid.micros:
            finer = _FINER.get(grid.text)
            if finer is None:
                raise MoneyError(f"price {lv.price!r} is finer than any venue tick size")
            grid = tick_size(finer)
    return grid


def book_to_l2(book: Book, recv_ns: int = 0) -> L2Book:
    """A REST/WS ``Book`` → ``L2Book`` on its tick grid (inferred from prices when absent).

    Raises ``MoneyError`` on an unparseable or off-grid level.
    """
    grid = _grid_of(book)
    b = L2Book(book.asset_id, grid, book.market)
    b.load(
        [(grid.to_ticks(lv.price), parse_micros(lv.size)) for lv in book.bids],
        [(grid.to_ticks(lv.price), parse_micros(lv.size)) for lv in book.asks],
    )
    b.hash = book.hash
    b.exchange_ms = stamp_ms(book.timestamp)
    b.updated_ns = recv_ns
    return b


class Page(msgspec.Struct, Generic[T]):
    """One page of a cursor-paged list (``/data/orders``, ``/data/trades``)."""

    data: list[T] = []
    next_cursor: str = ""


def decode_response(raw: bytes, typ: type[T], path: str) -> T:
    """Typed decode; a body of another shape is a ``ProtocolError``."""
    out: T = decode_any(raw, typ, path)
    return out


def decode_any(raw: bytes, typ: Any, path: str) -> Any:
    """Decode to ``typ`` (any msgspec type expression); ``ProtocolError`` on another shape."""
    try:
        return msgspec.json.decode(raw, type=typ)
    except msgspec.DecodeError as exc:
        raise ProtocolError(
            f"{path}: unexpected response ({exc}): {raw[:200]!r}", path=path
        ) from None

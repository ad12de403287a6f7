"""Wire types of the CLOB WebSocket channels, exactly as the venue sends them.

Frozen msgspec Structs in tagged unions (tag field ``event_type``), strings kept as strings:
these are the venue's words. Conversion to ticks and micros happens in ``polylab.book`` and
``polylab.money``, never here. Fields that some schema generations lack have defaults, so one
Struct decodes every generation seen in real captures (2024 → 2026).

Timestamps are ms since the epoch; the venue sends them as strings, some re-serialised
captures as integers, so both are accepted (``Stamp``).
"""

from __future__ import annotations

import msgspec

__all__ = [
    "BestBidAsk",
    "Book",
    "EventMessage",
    "FeeSchedule",
    "LastTradePrice",
    "LeanEntry",
    "LeanPriceChange",
    "LegacyChange",
    "Level",
    "MakerOrder",
    "MarketEvent",
    "MarketResolved",
    "NewMarket",
    "PriceChange",
    "PriceChangeEntry",
    "Stamp",
    "TickSizeChange",
    "UserEvent",
    "UserOrder",
    "UserTrade",
    "stamp_ms",
]

Stamp = str | int
"""Milliseconds since the epoch, as a string (live) or an integer (re-serialised captures)."""


def stamp_ms(value: Stamp | None) -> int:
    """``Stamp`` → int ms (0 when absent or blank)."""
    if value is None or value == "":
        return 0
    return int(value)


class Level(msgspec.Struct, frozen=True, gc=False):
    """One aggregated price level: ``price`` and total ``size`` resting there (strings)."""

    price: str
    size: str


class Book(msgspec.Struct, frozen=True, gc=False, tag="book", tag_field="event_type"):
    """Full snapshot of one token's book; replaces the local book.

    Lists are ordered best-last (bids ascending, asks descending) in every real capture.
    ``tick_size``/``last_trade_price`` appear in the initial dump only; ``version`` "v2" marks
    Protocol V2 position ids.
    """

    asset_id: str
    market: str = ""
    bids: list[Level] = []
    asks: list[Level] = []
    timestamp: Stamp = ""
    hash: str = ""
    tick_size: str | None = None
    last_trade_price: str | None = None
    version: str | None = None
    min_order_size: str | None = None
    neg_risk: bool | None = None


class PriceChangeEntry(msgspec.Struct, frozen=True, gc=False):
    """One level update of the current schema (since 2025-09-15): absolute new size, "0" deletes.

    ``best_bid``/``best_ask`` are that asset's top of book *after* the change ("" when absent).
    """

    asset_id: str
    price: str
    size: str
    side: str
    hash: str = ""
    best_bid: str = ""
    best_ask: str = ""


class LegacyChange(msgspec.Struct, frozen=True, gc=False):
    """One level update of the 2025 ``changes[]`` schema (asset id at the event root)."""

    price: str
    side: str
    size: str


class PriceChange(
    msgspec.Struct, frozen=True, gc=False, tag="price_change", tag_field="event_type"
):
    """Resting-size changes not caused by a match, in any of the three schema generations.

    * current: ``price_changes[]`` entries with ``asset_id``, ``hash``, ``best_bid``, ``best_ask``;
    * 2025: root ``asset_id``/``hash`` plus ``changes[]``;
    * 2024: one change with ``asset_id, price, side, size`` at the root.
    """

    market: str = ""
    timestamp: Stamp = ""
    price_changes: list[PriceChangeEntry] | None = None
    changes: list[LegacyChange] | None = None
    asset_id: str | None = None
    hash: str | None = None
    price: str | None = None
    side: str | None = None
    size: str | None = None


class LeanEntry(msgspec.Struct, frozen=True, gc=False):
    """A ``price_change`` entry with only what a book needs (hot path; see ``LeanPriceChange``)."""

    asset_id: str
    price: str
    size: str
    side: str


class LeanPriceChange(
    msgspec.Struct, frozen=True, gc=False, tag="price_change", tag_field="event_type"
):
    """The current ``price_change`` schema decoded for speed: no per-entry hash and no stated
    best bid/ask (skipping fields is cheaper than building strings). Used when nothing checks
    the venue's statements; the full ``PriceChange`` stays the reference type."""

    market: str
    price_changes: list[LeanEntry]
    timestamp: Stamp = ""


class TickSizeChange(
    msgspec.Struct, frozen=True, gc=False, tag="tick_size_change", tag_field="event_type"
):
    """The token's price grid changed (sent near 0.96 / 0.04 and back)."""

    asset_id: str
    old_tick_size: str
    new_tick_size: str
    market: str = ""
    timestamp: Stamp = ""


class LastTradePrice(
    msgspec.Struct, frozen=True, gc=False, tag="last_trade_price", tag_field="event_type"
):
    """A trade printed; ``side`` is the taker side. ``fee_rate_bps`` is not the charged fee."""

    asset_id: str
    price: str
    market: str = ""
    size: str = ""
    side: str = ""
    fee_rate_bps: str = ""
    timestamp: Stamp = ""
    transaction_hash: str | None = None


class BestBidAsk(msgspec.Struct, frozen=True, gc=False, tag="best_bid_ask", tag_field="event_type"):
    """Top-of-book hint (needs ``custom_feature_enabled``); arrives *before* its price_change."""

    asset_id: str
    best_bid: str
    best_ask: str
    market: str = ""
    spread: str = ""
    timestamp: Stamp = ""


class EventMessage(msgspec.Struct, frozen=True):
    """The event a new market belongs to (neg-risk groups share one)."""

    id: str = ""
    ticker: str = ""
    slug: str = ""
    title: str = ""
    description: str = ""


class FeeSchedule(msgspec.Struct, frozen=True):
    """Per-market taker fee schedule: ``fee = shares × rate × (p(1−p))^exponent``."""

    rate: str = "0"
    exponent: str = "1"
    taker_only: bool = True
    rebate_rate: str = "0"


class NewMarket(msgspec.Struct, frozen=True, tag="new_market", tag_field="event_type"):
    """A market was listed (broadcast to every subscriber with ``custom_feature_enabled``)."""

    market: str = ""
    id: str = ""
    question: str = ""
    slug: str = ""
    description: str = ""
    assets_ids: list[str] = []
    outcomes: list[str] = []
    event_message: EventMessage | None = None
    timestamp: Stamp = ""
    tags: list[str] = []
    condition_id: str = ""
    active: bool = True
    clob_token_ids: list[str] = []
    sports_market_type: str = ""
    line: str = ""
    game_start_time: str = ""
    order_price_min_tick_size: str = ""
    group_item_title: str = ""
    taker_base_fee: str = ""
    fees_enabled: bool = False
    fee_schedule: FeeSchedule | None = None


class MarketResolved(msgspec.Struct, frozen=True, tag="market_resolved", tag_field="event_type"):
    """A market resolved; ``winning_asset_id`` pays $1 per share."""

    market: str = ""
    id: str = ""
    assets_ids: list[str] = []
    winning_asset_id: str = ""
    winning_outcome: str = ""
    timestamp: Stamp = ""
    tags: list[str] = []


MarketEvent = (
    Book | PriceChange | TickSizeChange | LastTradePrice | BestBidAsk | NewMarket | MarketResolved
)
"""Every event of the market channel."""


class UserOrder(msgspec.Struct, frozen=True, tag="order", tag_field="event_type"):
    """User-channel order event: ``type`` PLACEMENT | UPDATE | CANCELLATION."""

    id: str
    asset_id: str = ""
    market: str = ""
    type: str = ""
    owner: str = ""
    order_owner: str = ""
    maker_address: str = ""
    outcome: str = ""
    side: str = ""
    price: str = ""
    original_size: str = ""
    size_matched: str = ""
    order_type: str = ""
    status: str = ""
    associate_trades: list[str] | None = None
    expiration: str = ""
    created_at: str = ""
    timestamp: Stamp = ""


class MakerOrder(msgspec.Struct, frozen=True):
    """A maker order filled by a trade; may sit on the complementary token (MINT/MERGE match)."""

    order_id: str
    asset_id: str = ""
    owner: str = ""
    maker_address: str = ""
    matched_amount: str = ""
    price: str = ""
    fee_rate_bps: str = ""
    outcome: str = ""


class UserTrade(msgspec.Struct, frozen=True, tag="trade", tag_field="event_type"):
    """User-channel trade event, re-sent on each status: MATCHED → MINED → CONFIRMED."""

    id: str
    asset_id: str = ""
    market: str = ""
    type: str = ""
    taker_order_id: str = ""
    side: str = ""
    size: str = ""
    price: str = ""
    fee_rate_bps: str = ""
    status: str = ""
    match_time: str = ""
    last_update: str = ""
    timestamp: Stamp = ""
    outcome: str = ""
    owner: str = ""
    trade_owner: str = ""
    maker_address: str = ""
    trader_side: str = ""
    bucket_index: int = 0
    transaction_hash: str = ""
    maker_orders: list[MakerOrder] = []


UserEvent = UserOrder | UserTrade
"""Every event of the user channel."""

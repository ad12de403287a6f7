"""Trade records and their settlement lifecycle: MATCHED → MINED → CONFIRMED.

One ``Trade`` is one taker order against the maker orders of one YES-book price level (the venue
groups a taker's fills the same way: the maker list can mix YES sellers and NO buyers at the
complementary price). Its dict is taker-centric, as the venue's is: ``asset_id``, ``side``,
``price``, ``owner`` and ``maker_address`` are the taker's; ``maker_orders`` lists the makers;
only ``trader_side`` differs between the taker's copy and a maker's (protocol doc §2).

Units: sizes and prices are micros internally and strings on the wire; ``match_time`` and
``last_update`` are unix seconds strings, ``timestamp`` ms.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Literal, NamedTuple

from polylab.money import price_micros_to_str, size_to_str

__all__ = ["MakerLeg", "Trade", "TradeLedger", "TradeStatus"]

TradeStatus = Literal["MATCHED", "MINED", "CONFIRMED"]
_NEXT: dict[str, TradeStatus] = {"MATCHED": "MINED", "MINED": "CONFIRMED"}


class MakerLeg(NamedTuple):
    """A maker order's part in a trade: shares matched at the maker's own price."""

    order_id: str
    api_key: str
    address: str
    matched_micros: int
    price_micros: int
    asset_id: str
    outcome: str


class Trade:
    """One match of a taker order against one price level (mutable: ``status`` advances)."""

    __slots__ = (
        "asset_id",
        "fee_micros",
        "id",
        "makers",
        "market",
        "match_ms",
        "outcome",
        "price_micros",
        "side",
        "size_micros",
        "status",
        "taker_address",
        "taker_api_key",
        "taker_order_id",
        "transaction_hash",
        "updated_ms",
    )

    def __init__(
        self,
        *,
        trade_id: str,
        taker_order_id: str,
        taker_api_key: str,
        taker_address: str,
        market: str,
        asset_id: str,
        outcome: str,
        side: str,
        price_micros: int,
        size_micros: int,
        fee_micros: int,
        makers: list[MakerLeg],
        match_ms: int,
        transaction_hash: str,
    ) -> None:
        self.id = trade_id
        self.taker_order_id = taker_order_id
        self.taker_api_key = taker_api_key
        self.taker_address = taker_address
        self.market = market
        self.asset_id = asset_id
        self.outcome = outcome
        self.side = side
        self.price_micros = price_micros
        self.size_micros = size_micros
        self.fee_micros = fee_micros
        self.makers = makers
        self.match_ms = match_ms
        self.updated_ms = match_ms
        self.transaction_hash = transaction_hash
        self.status: TradeStatus = "MATCHED"

    def participants(self) -> Iterator[tuple[str, str]]:
        """(address, trader_side) for the taker and each distinct maker address."""
        yield self.taker_address, "TAKER"
        seen: set[str] = set()
        for leg in self.makers:
            if leg.address not in seen:
                seen.add(leg.address)
                yield leg.address, "MAKER"

    def to_json(self, trader_side: str) -> dict[str, Any]:
        """The ``GET /data/trades`` row (taker-centric; ``trader_side`` per reader)."""
        return {
            "id": self.id,
            "taker_order_id": self.taker_order_id,
            "market": self.market,
            "asset_id": self.asset_id,
            "side": self.side,
            "size": size_to_str(self.size_micros),
            "fee_rate_bps": "0",
            "price": price_micros_to_str(self.price_micros),
            "status": self.status,
            "match_time": str(self.match_ms // 1000),
            "last_update": str(self.updated_ms // 1000),
            "outcome": self.outcome,
            "bucket_index": 0,
            "owner": self.taker_api_key,
            "maker_address": self.taker_address,
            "transaction_hash": self.transaction_hash,
            "maker_orders": [
                {
                    "order_id": m.order_id,
                    "owner": m.api_key,
                    "maker_address": m.address,
                    "matched_amount": size_to_str(m.matched_micros),
                    "price": price_micros_to_str(m.price_micros),
                    "fee_rate_bps": "0",
                    "asset_id": m.asset_id,
                    "outcome": m.outcome,
                }
                for m in self.makers
            ],
            "trader_side": trader_side,
        }

    def to_event(self, trader_side: str, timestamp_ms: int) -> dict[str, Any]:
        """The user-channel ``trade`` event (the row plus event fields)."""
        d = self.to_json(trader_side)
        d.update(
            {
                "event_type": "trade",
                "type": "TRADE",
                "trade_owner": self.taker_api_key,
                "timestamp": str(timestamp_ms),
            }
        )
        return d


class TradeLedger:
    """Every trade, by id and by participating address, plus the unsettled queue."""

    def __init__(self) -> None:
        self.trades: dict[str, Trade] = {}
        self.by_address: dict[str, list[str]] = {}
        self.unsettled: dict[str, Trade] = {}

    def record(self, trade: Trade) -> None:
        """Store a new MATCHED trade and index it under each participant."""
        self.trades[trade.id] = trade
        self.unsettled[trade.id] = trade
        for address in {a for a, _ in trade.participants()}:
            self.by_address.setdefault(address, []).append(trade.id)

    def advance(self, trade_id: str, now_ms: int) -> Trade | None:
        """Move one trade a step (MATCHED → MINED → CONFIRMED); ``None`` if already final."""
        trade = self.unsettled.get(trade_id)
        if trade is None:
            return None
        trade.status = _NEXT[trade.status]
        trade.updated_ms = now_ms
        if trade.status == "CONFIRMED":
            del self.unsettled[trade_id]
        return trade

    def for_address(self, address: str) -> Iterator[tuple[Trade, str]]:
        """(trade, trader_side) of every trade ``address`` took part in, oldest first."""
        for tid in self.by_address.get(address, ()):
            trade = self.trades[tid]
            if trade.taker_address == address:
                yield trade, "TAKER"
            if any(m.address == address for m in trade.makers):
                yield trade, "MAKER"

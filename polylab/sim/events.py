"""Venue-shaped dicts: REST books, market-channel events and user-channel order events.

Everything numeric is a string, as on the wire (protocol doc §1-§3); books list bids ascending
and asks descending (best last). The book hash is the venue's: SHA-1 of the compact JSON of
``{market, asset_id, timestamp, hash: "", bids, asks, min_order_size, tick_size, neg_risk,
last_trade_price}`` in that key order (§4.6), so a client can verify it.
"""

from __future__ import annotations

import hashlib
from typing import Any

import msgspec

from polylab.market import Market
from polylab.money import price_micros_to_str, size_to_str
from polylab.sim.orderbook import SimOrder

__all__ = [
    "book_dict",
    "book_hash",
    "level_dicts",
    "market_resolved_event",
    "new_market_event",
    "order_event",
    "order_json",
    "top_strings",
]

_encode = msgspec.json.Encoder().encode


def level_dicts(levels: list[tuple[int, int]]) -> list[dict[str, str]]:
    """``[(price micros, size micros)]`` → ``[{"price": "0.46", "size": "918.34"}]``."""
    return [{"price": price_micros_to_str(p), "size": size_to_str(s)} for p, s in levels]


def book_hash(book: dict[str, Any]) -> str:
    """The venue's book hash (40 hex digits) of a REST ``/book`` object."""
    payload = {
        "market": book["market"],
        "asset_id": book["asset_id"],
        "timestamp": book["timestamp"],
        "hash": "",
        "bids": book["bids"],
        "asks": book["asks"],
        "min_order_size": book["min_order_size"],
        "tick_size": book["tick_size"],
        "neg_risk": book["neg_risk"],
        "last_trade_price": book["last_trade_price"],
    }
    return hashlib.sha1(_encode(payload)).hexdigest()


def book_dict(
    market: Market,
    token_id: str,
    levels: tuple[list[tuple[int, int]], list[tuple[int, int]]],
    timestamp_ms: int,
    last_trade_price: str,
) -> dict[str, Any]:
    """The REST ``/book`` object of one token (with its hash; ``version`` for V2 markets)."""
    book: dict[str, Any] = {
        "market": market.condition_id,
        "asset_id": token_id,
        "timestamp": str(timestamp_ms),
        "hash": "",
        "bids": level_dicts(levels[0]),
        "asks": level_dicts(levels[1]),
        "min_order_size": market.min_order_size,
        "tick_size": market.tick_size,
        "neg_risk": market.neg_risk,
        "last_trade_price": last_trade_price,
    }
    book["hash"] = book_hash(book)
    if market.version == "v2":
        book["version"] = "v2"
    return book


def top_strings(bid: int | None, ask: int | None) -> tuple[str, str]:
    """Best bid/ask strings with the venue's empty-side values ("0" bid, "1" ask)."""
    return (
        "0" if bid is None else price_micros_to_str(bid),
        "1" if ask is None else price_micros_to_str(ask),
    )


def new_market_event(market: Market, timestamp_ms: int) -> dict[str, Any]:
    """``new_market`` (custom feature) announcing a market, 2026 shape with ``fee_schedule``."""
    fee = market.fee
    fees_enabled = fee is not None and (fee.rate_micros > 0 or fee.flat_micros_per_share > 0)
    event: dict[str, Any] = {
        "id": market.condition_id[2:14],
        "question": market.question,
        "market": market.condition_id,
        "slug": market.slug,
        "description": market.question,
        "assets_ids": list(market.token_ids),
        "outcomes": list(market.outcomes),
        "event_message": {
            "id": market.event_id,
            "ticker": market.slug,
            "slug": market.slug,
            "title": market.question,
            "description": "",
        },
        "timestamp": str(timestamp_ms),
        "tags": [],
        "condition_id": market.condition_id,
        "active": market.active,
        "clob_token_ids": list(market.token_ids),
        "sports_market_type": "moneyline" if market.game_id else "",
        "line": "",
        "game_start_time": market.game_start,
        "order_price_min_tick_size": market.tick_size,
        "group_item_title": "",
        "taker_base_fee": "1000" if fees_enabled else "0",
        "fees_enabled": fees_enabled,
        "event_type": "new_market",
    }
    if fee is not None:
        event["fee_schedule"] = {
            "exponent": str(fee.exponent),
            "rate": price_micros_to_str(fee.rate_micros),
            "taker_only": True,
            "rebate_rate": "0",
        }
    return event


def market_resolved_event(market: Market, winner: str, timestamp_ms: int) -> dict[str, Any]:
    """``market_resolved`` (custom feature) for a market whose ``winner`` token pays $1."""
    return {
        "id": market.condition_id[2:14],
        "market": market.condition_id,
        "assets_ids": list(market.token_ids),
        "winning_asset_id": winner,
        "winning_outcome": market.outcomes[market.token_ids.index(winner)],
        "timestamp": str(timestamp_ms),
        "tags": [],
        "event_type": "market_resolved",
    }


def _order_common(order: SimOrder) -> dict[str, Any]:
    return {
        "id": order.id,
        "owner": order.api_key,
        "maker_address": order.owner,
        "market": order.condition_id,
        "asset_id": order.token_id,
        "outcome": order.outcome,
        "side": order.side,
        "price": price_micros_to_str(order.price_micros),
        "original_size": size_to_str(order.size_micros),
        "size_matched": size_to_str(order.matched_micros),
        "order_type": order.order_type,
        "expiration": str(order.expiration_s),
        "associate_trades": list(order.trade_ids) or None,
        "created_at": str(order.created_ms // 1000),
    }


def order_json(order: SimOrder) -> dict[str, Any]:
    """An order as ``GET /data/orders`` and ``/data/order/{id}`` return it."""
    d = _order_common(order)
    d["status"] = order.status
    return d


def order_event(order: SimOrder, kind: str, timestamp_ms: int) -> dict[str, Any]:
    """User-channel ``order`` event; ``kind`` is PLACEMENT, UPDATE or CANCELLATION."""
    d = _order_common(order)
    d.update(
        {
            "event_type": "order",
            "type": kind,
            "order_owner": order.api_key,
            "status": order.status,
            "timestamp": str(timestamp_ms),
        }
    )
    return d

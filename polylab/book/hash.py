"""The venue's order-book hash, for integrity checks of REST books and ``price_change`` hashes.

``sha1`` of the compact JSON of ``{market, asset_id, timestamp, hash: "", bids, asks,
min_order_size, tick_size, neg_risk[, last_trade_price]}`` in exactly that key order, values as
received (timestamp as a string). ``last_trade_price`` joined the hashed fields in 2026: books
without it (2025) hash without it. Verified against a 2026-10 REST book and against the 2025-10
``price_change`` hashes that equal the REST hash taken at the same timestamp.
"""

from __future__ import annotations

import hashlib
from typing import Any

import msgspec

__all__ = ["book_hash"]

_KEYS = (
    "market",
    "asset_id",
    "timestamp",
    "hash",
    "bids",
    "asks",
    "min_order_size",
    "tick_size",
    "neg_risk",
)
_enc = msgspec.json.Encoder()


def book_hash(book: dict[str, Any]) -> str:
    """40-hex SHA-1 of a REST ``/book`` object (``bids``/``asks`` as lists of price/size dicts)."""
    body: dict[str, Any] = {}
    for k in _KEYS:
        if k == "hash":
            body[k] = ""
        elif k == "timestamp":
            body[k] = str(book.get(k, ""))
        else:
            body[k] = book.get(k)
    if "last_trade_price" in book:
        body["last_trade_price"] = book["last_trade_price"]
    return hashlib.sha1(_enc.encode(body)).hexdigest()

"""One listed market inside the exchange: its unified book, last trades, grid and resolution,
and the market-channel events that describe changes to it.

Both tokens of a binary market are views of one YES-priced ``MarketBook``, so every event is
emitted for both tokens with mirrored prices (YES bid at p ⇔ NO ask at 1 − p).
"""

from __future__ import annotations

from typing import Any

from polylab.market import Market
from polylab.money import MICROS, price_micros_to_str, size_to_str
from polylab.sim.events import book_dict, top_strings
from polylab.sim.orderbook import MarketBook

__all__ = ["MarketState"]


class MarketState:
    """Book, last trade prices, tick grid and resolution of one binary market."""

    __slots__ = ("base_tick", "book", "closed", "last_side", "last_trade", "market", "winner")

    def __init__(self, market: Market) -> None:
        if len(market.token_ids) != 2 or len(market.outcomes) != 2:
            raise ValueError(
                f"market {market.condition_id} must have exactly two tokens and outcomes"
            )
        if market.token_ids[0] == market.token_ids[1]:
            raise ValueError(f"market {market.condition_id} lists the same token twice")
        self.market = market
        """Current metadata (replaced when the tick size changes or the market resolves)."""
        self.book = MarketBook()
        self.last_trade: dict[str, str] = {t: "" for t in market.token_ids}
        """Token → last trade price string ("" before the first trade)."""
        self.last_side: dict[str, str] = {t: "" for t in market.token_ids}
        """Token → taker side of its last trade."""
        self.base_tick = market.tick_size
        self.closed = False
        self.winner = ""

    @property
    def yes(self) -> str:
        """Token id of the first outcome (the YES side of the book)."""
        return self.market.token_ids[0]

    @property
    def no(self) -> str:
        """Token id of the second outcome."""
        return self.market.token_ids[1]

    def is_yes(self, token_id: str) -> bool:
        """Whether ``token_id`` is the first outcome."""
        return token_id == self.market.token_ids[0]

    def outcome(self, token_id: str) -> str:
        """Outcome label of a token ("Yes", "Up", …)."""
        return self.market.outcomes[self.market.token_ids.index(token_id)]

    def other(self, token_id: str) -> str:
        """The complementary token."""
        return self.no if self.is_yes(token_id) else self.yes

    # -- snapshots ------------------------------------------------------------------------
    def rest_book(self, token_id: str, timestamp_ms: int) -> dict[str, Any]:
        """The REST ``/book`` object of one token (hash included)."""
        return book_dict(
            self.market,
            token_id,
            self.book.levels_for(self.is_yes(token_id)),
            timestamp_ms,
            self.last_trade[token_id],
        )

    def initial_book(self, token_id: str, timestamp_ms: int) -> dict[str, Any]:
        """A WS initial-dump ``book`` (with ``tick_size``, ``last_trade_price``, ``version``)."""
        b = self.rest_book(token_id, timestamp_ms)
        out: dict[str, Any] = {
            "market": b["market"],
            "asset_id": token_id,
            "timestamp": b["timestamp"],
            "hash": b["hash"],
            "bids": b["bids"],
            "asks": b["asks"],
            "tick_size": b["tick_size"],
            "last_trade_price": b["last_trade_price"],
            "event_type": "book",
        }
        if "version" in b:
            out["version"] = "v2"
        return out

    def trade_books(self, timestamp_ms: int) -> list[dict[str, Any]]:
        """Fresh ``book`` events of both tokens after a match (the venue's post-trade shape)."""
        out = []
        for token in self.market.token_ids:
            b = self.rest_book(token, timestamp_ms)
            out.append(
                {
                    "market": b["market"],
                    "asset_id": token,
                    "bids": b["bids"],
                    "asks": b["asks"],
                    "hash": b["hash"],
                    "timestamp": b["timestamp"],
                    "event_type": "book",
                }
            )
        return out

    # -- incremental events ---------------------------------------------------------------
    def price_change(self, changes: list[tuple[int, bool]], timestamp_ms: int) -> dict[str, Any]:
        """``price_change`` for YES-book levels ``[(yes price, is bid)]``, mirrored onto NO.

        Sizes are the levels' new aggregates ("0" removes); ``best_bid``/``best_ask``/``hash``
        are each token's state after the change.
        """
        summary: dict[str, tuple[str, str, str]] = {}
        for token in self.market.token_ids:
            bid, ask = self.book.top(self.is_yes(token))
            b, a = top_strings(bid, ask)
            summary[token] = (b, a, self.rest_book(token, timestamp_ms)["hash"])
        entries: list[dict[str, str]] = []
        for yes_price, is_bid in changes:
            ladder = self.book.bids if is_bid else self.book.asks
            size = size_to_str(ladder.size_at(yes_price))
            for token, price, side in (
                (self.yes, yes_price, "BUY" if is_bid else "SELL"),
                (self.no, MICROS - yes_price, "SELL" if is_bid else "BUY"),
            ):
                b, a, h = summary[token]
                entries.append(
                    {
                        "asset_id": token,
                        "price": price_micros_to_str(price),
                        "size": size,
                        "side": side,
                        "hash": h,
                        "best_bid": b,
                        "best_ask": a,
                    }
                )
        return {
            "market": self.market.condition_id,
            "price_changes": entries,
            "timestamp": str(timestamp_ms),
            "event_type": "price_change",
        }

    def best_bid_ask(
        self, before: tuple[int | None, int | None], timestamp_ms: int
    ) -> list[dict[str, Any]]:
        """``best_bid_ask`` for both tokens if the YES top moved since ``before``, else []."""
        if self.book.top(True) == before:
            return []
        out = []
        for token in self.market.token_ids:
            bid, ask = self.book.top(self.is_yes(token))
            b, a = top_strings(bid, ask)
            spread = (1 * MICROS if ask is None else ask) - (0 if bid is None else bid)
            out.append(
                {
                    "market": self.market.condition_id,
                    "asset_id": token,
                    "best_bid": b,
                    "best_ask": a,
                    "spread": price_micros_to_str(spread),
                    "timestamp": str(timestamp_ms),
                    "event_type": "best_bid_ask",
                }
            )
        return out

    def last_trade_event(
        self, token_id: str, price: int, size: int, side: str, tx_hash: str, timestamp_ms: int
    ) -> dict[str, Any]:
        """``last_trade_price`` (``side`` is the taker side seen from ``token_id``)."""
        text = price_micros_to_str(price)
        self.last_trade[token_id] = text
        self.last_side[token_id] = side
        return {
            "asset_id": token_id,
            "market": self.market.condition_id,
            "price": text,
            "size": size_to_str(size),
            "side": side,
            "fee_rate_bps": "0",
            "timestamp": str(timestamp_ms),
            "transaction_hash": tx_hash,
            "event_type": "last_trade_price",
        }

    def tick_change_events(self, old: str, new: str, timestamp_ms: int) -> list[dict[str, Any]]:
        """``tick_size_change`` for both tokens."""
        return [
            {
                "event_type": "tick_size_change",
                "asset_id": token,
                "market": self.market.condition_id,
                "old_tick_size": old,
                "new_tick_size": new,
                "timestamp": str(timestamp_ms),
            }
            for token in self.market.token_ids
        ]

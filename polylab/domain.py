"""The shared vocabulary every layer may import: sides, intents, legs, games, order results.

It sits at the bottom of the package next to ``money`` and imports nothing above it, so a
strategy, the risk gate, an executor and a feed all speak about the same objects without
importing each other. Units travel in the names and in the ``NewType``s below: mypy refuses a
``SizeMicros`` where a ``PriceMicros`` is expected only when both are annotated, so the hot
fields of the shared types carry them.

Units: prices in price micros (1_000_000 = $1 per share), sizes in share micros, cash and fees
in cash micros, times in ns since the epoch, ticks as integer multiples of a market's tick size.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal, NewType

import msgspec

__all__ = [
    "CashMicros",
    "ExecutionResult",
    "Game",
    "Intent",
    "IntentKind",
    "Leg",
    "OrderReport",
    "OrderStatus",
    "OrderType",
    "PriceMicros",
    "Side",
    "SizeMicros",
    "Ticks",
]

Ticks = NewType("Ticks", int)
"""A price as an integer count of the market's tick size (0.01 → 1 tick = 10_000 price micros)."""
PriceMicros = NewType("PriceMicros", int)
"""A price per share in micro-dollars: 0.42 → 420_000."""
SizeMicros = NewType("SizeMicros", int)
"""A number of shares in micro-shares: 12.5 shares → 12_500_000."""
CashMicros = NewType("CashMicros", int)
"""An amount of collateral (pUSD) in micro-dollars: $3.10 → 3_100_000."""


class Side(StrEnum):
    """Order side. A ``StrEnum`` so it compares equal to the venue's "BUY" / "SELL" strings."""

    BUY = "BUY"
    SELL = "SELL"


class OrderType(StrEnum):
    """Venue time-in-force: fill-or-kill, fill-and-kill (IOC), good-til-cancelled / -date."""

    FOK = "FOK"
    FAK = "FAK"
    GTC = "GTC"
    GTD = "GTD"


IntentKind = Literal["set", "single"]


class Leg(msgspec.Struct, frozen=True, kw_only=True):
    """One order of an intent: buy/sell ``size`` shares of ``token_id`` no worse than ``price``.

    ``price``: limit (worst acceptable) price, price micros; ``size``: share micros.
    """

    token_id: str
    side: Side
    price: PriceMicros
    size: SizeMicros
    order_type: OrderType = OrderType.FOK


class Intent(msgspec.Struct, frozen=True, kw_only=True):
    """What a strategy wants done, with why and how much it expects to make.

    ``kind``: "set" (all legs belong to one complete set: leg risk applies) or "single".
    ``edge``: expected profit in cash micros for the whole intent, fees included.
    ``group_id``: the outcome group / market the intent is about (cooldowns key on it; risk
    limits key on the tokens' markets and events, whatever the group id says).
    """

    strategy: str
    group_id: str
    kind: IntentKind
    legs: tuple[Leg, ...]
    edge: CashMicros
    created_ns: int
    reason: str = ""

    @property
    def cost(self) -> int:
        """Worst-case cash out for the BUY legs (limit × size, rounded up), cash micros."""
        return sum(
            -(-(leg.price * leg.size) // 1_000_000) for leg in self.legs if leg.side == Side.BUY
        )


class Game(msgspec.Struct, frozen=True, kw_only=True):
    """A scoreboard game in polylab's words (from an ESPN-format scoreboard or another source).

    ``home``/``away``: team abbreviations; ``winner``: abbreviation, or None for a draw or an
    unfinished game; ``final``: state "post" *and* completed (postponed games are not final).
    ``slug``: the venue's game slug (``nfl-lac-buf-2025-01-26``) when the source gives one.
    """

    id: str
    league: str
    state: str
    completed: bool
    home: str
    away: str
    home_score: int
    away_score: int
    winner: str | None
    start: str = ""
    status_name: str = ""
    home_name: str = ""
    away_name: str = ""
    detail: str = ""
    slug: str = ""

    @property
    def final(self) -> bool:
        """A result that can be traded on: the game is over and the status says so."""
        return self.state == "post" and self.completed


OrderStatus = Literal["filled", "partial", "unfilled", "rejected", "timeout", "unknown", "dry_run"]
"""``timeout``: the order never reached a usable book (paper) and certainly did not trade;
``unknown``: the venue did not say and could not be asked (it may have traded: never booked as
unfilled, the report says what was tried); ``rejected``: refused, or certainly never sent."""


class OrderReport(msgspec.Struct, frozen=True, kw_only=True):
    """One leg's outcome.

    ``filled``: shares obtained (micros); ``cost``: cash paid for a BUY or received for a SELL,
    fees excluded; ``fee``: taker fee charged; ``avg_price``: cost / filled in price micros
    (0 if nothing filled); ``order_id``: venue or simulated id; ``reason``: why not filled;
    ``executor``: the name of the executor that handled it ("paper", "live").
    """

    intent_id: str
    leg: int
    token_id: str
    side: Side
    limit_price: PriceMicros
    requested: SizeMicros
    filled: SizeMicros
    cost: CashMicros
    fee: CashMicros
    avg_price: PriceMicros
    status: OrderStatus
    sent_ns: int
    done_ns: int
    order_id: str = ""
    reason: str = ""
    executor: str = ""


class ExecutionResult(msgspec.Struct, frozen=True, kw_only=True):
    """All legs of one intent, once every leg is final.

    ``complete``: every leg filled in full. ``unwound``: reports of orders the executor sent to
    undo leg risk (a set whose legs filled unevenly), empty when none were needed.
    ``executor``: the name of the executor that handled the intent. ``residual``: (token, share
    micros) a set leg holds beyond the least-filled leg after equalizing (dust too small to
    sell, or a ``hold`` policy): exposure kept in the portfolio and seen by the risk gate.

    Contract: every intent an executor accepts ends in exactly one ``ExecutionResult``, whatever
    happens on the way (signing errors, exceptions, network errors, timeouts, unknown
    outcomes), so the engine always releases its risk reservation and its cooldown key.
    """

    intent_id: str
    intent: Intent
    reports: tuple[OrderReport, ...]
    complete: bool
    unwound: tuple[OrderReport, ...] = ()
    executor: str = ""
    residual: tuple[tuple[str, int], ...] = ()

"""The executor seam: what the engine hands an executor, and what comes back.

Executors are non-blocking: ``submit`` queues an approved intent and returns at once;
``poll(now_ns)`` returns the intents whose orders are done (filled, partly filled, rejected,
timed out). The engine calls ``poll`` after every event and on its timer. A paper executor fills
against the books as they stand when the order would reach the venue (``now + latency``); a live
executor signs off the event path and sends legs in parallel. Backtest, paper and live differ
only here (and in the clock and the source).

Units: prices in price micros, sizes in share micros, cash and fees in micros, times in ns.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal, Protocol

import msgspec

from polylab.strategy.base import Intent

if TYPE_CHECKING:
    from polylab.book.l2 import L2Book

__all__ = ["ExecutionResult", "Executor", "OrderReport", "OrderStatus"]

OrderStatus = Literal["filled", "partial", "unfilled", "rejected", "timeout", "dry_run"]


class OrderReport(msgspec.Struct, frozen=True, kw_only=True):
    """One leg's outcome.

    ``filled``: shares obtained (micros); ``cost``: cash paid for a BUY or received for a SELL,
    fees excluded; ``fee``: taker fee charged; ``avg_price``: cost / filled in price micros
    (0 if nothing filled); ``order_id``: venue or simulated id; ``reason``: why not filled.
    """

    intent_id: str
    leg: int
    token_id: str
    side: Literal["BUY", "SELL"]
    limit_price: int
    requested: int
    filled: int
    cost: int
    fee: int
    avg_price: int
    status: OrderStatus
    sent_ns: int
    done_ns: int
    order_id: str = ""
    reason: str = ""


class ExecutionResult(msgspec.Struct, frozen=True, kw_only=True):
    """All legs of one intent, once every leg is final.

    ``complete``: every leg filled in full. ``unwound``: reports of orders the executor sent to
    undo leg risk (a set whose legs filled unevenly), empty when none were needed.
    """

    intent_id: str
    intent: Intent
    reports: tuple[OrderReport, ...]
    complete: bool
    unwound: tuple[OrderReport, ...] = ()


class Executor(Protocol):
    """Paper, simulator-backed and live executors share this shape."""

    name: str

    def submit(self, intent_id: str, intent: Intent, now_ns: int) -> None:
        """Queue an approved intent; never blocks the event path."""
        ...

    def poll(self, now_ns: int, books: dict[str, L2Book]) -> list[ExecutionResult]:
        """Intents whose orders are all final by ``now_ns`` (paper: fills against ``books``)."""
        ...

    def pending(self) -> int:
        """Intents submitted and not yet returned by ``poll``."""
        ...

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

from typing import TYPE_CHECKING, Protocol

import msgspec

from polylab.domain import ExecutionResult, Intent, OrderReport, OrderStatus

if TYPE_CHECKING:
    from polylab.book.l2 import L2Book

__all__ = [
    "ExecutionResult",
    "Executor",
    "OpenLeg",
    "OrderReport",
    "OrderStatus",
    "ResidualRecord",
]


class OpenLeg(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """One order an executor has resting or in flight, as it knows it (``open_orders``).

    ``order_id``: the venue's order id (paper: the paper venue's ``paper-<seq>-<leg>``, an
    unwind ``…u``; live: the signed order's hash, which is the venue's id; "" while the leg is
    not signed yet); ``leg``: its index in the intent; ``price_micros``: the limit (0: any
    price, a paper unwind); ``size_micros``: share micros asked."""

    order_id: str
    intent_id: str
    leg: int
    token_id: str
    side: str
    price_micros: int
    size_micros: int


class ResidualRecord(msgspec.Struct, frozen=True, kw_only=True):
    """A set leg's shares beyond the least-filled leg, kept after the fills (the dust of a
    collateral-targeted BUY, or what a ``hold`` policy keeps): held in the portfolio, counted
    by the risk gate, recorded in the run's ``residuals`` table. ``shares`` in micros."""

    intent_id: str
    strategy: str
    group_id: str
    token_id: str
    shares: int
    executor: str
    ts_ns: int


class Executor(Protocol):
    """Paper, simulator-backed and live executors share this shape.

    An executor may also define ``bind_books(books)``: the engine then hands it its live
    ``{token: L2Book}`` map once, so ``submit`` can size orders on the current books (tick
    size, a collateral-targeted BUY's amount) without blocking, and ``open_orders()``: the
    ``OpenLeg`` of each order resting or in flight now, with its venue order id (the runner's
    ``poly:state`` lists them).
    """

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

"""The engine's results on the bus: a ``ResultSink`` that turns records into bus messages.

``Engine(sinks=[ledger, BusSink(bus)])``: sinks run in order, so the ledger sees a fill before
the bus does (ledger first, then bus). What goes where:

- ``fills`` (``risk.records.Fill``) → ``poly:trades`` ``FillMessage``;
- ``orders`` (``domain.OrderReport``) → ``poly:trades`` ``OrderStatusMessage``;
- ``rejections`` (``engine.RejectionRecord``) → ``poly:errors`` ``RejectionMessage`` (by risk);
- ``errors`` (``engine.ErrorRecord``) → ``poly:errors`` ``ErrorMessage``;
- anything else (opportunities, intents, merges, settlements) stays off the bus: signals need
  the intent's legs and the risk decision together, which the caller that holds both publishes
  with ``signal_message``.

A record of an unexpected type is counted in ``skipped`` and never raises into the engine.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import msgspec

from polylab.bus.base import Bus
from polylab.bus.messages import (
    ERRORS,
    TRADES,
    ErrorMessage,
    FillMessage,
    RejectionMessage,
    order_status_message,
)
from polylab.domain import OrderReport
from polylab.engine import ErrorRecord, RejectionRecord
from polylab.risk.records import Fill

__all__ = ["BusSink", "fill_id", "fill_message"]

log = logging.getLogger(__name__)


def fill_id(fill: Fill) -> str:
    """A fill's key: one per (intent, leg, order, unwind or not); the same fill always gets
    the same key, so consumers (and the ledger) can dedupe on it."""
    return f"{fill.intent_id}/{fill.leg}/{'u' if fill.unwind else 'o'}/{fill.order_id}"


def fill_message(fill: Fill, *, ts_ns: int) -> FillMessage:
    """The ``poly:trades`` message for one booked fill."""
    return FillMessage(
        ts_ns=ts_ns,
        fill_id=fill_id(fill),
        intent_id=fill.intent_id,
        strategy=fill.strategy,
        order_id=fill.order_id,
        token_id=fill.token_id,
        side=str(fill.side),
        size_micros=fill.size,
        price_micros=fill.price,
        cost_micros=fill.cost,
        fee_micros=fill.fee,
        cash_delta_micros=fill.cash_delta,
        realized_micros=fill.realized,
        position_after_micros=fill.position_after,
        unwind=fill.unwind,
    )


def _error_class(text: str) -> str:
    """The exception class named in an engine error ("s.on_book: KeyError: 'x'" → KeyError)."""
    for part in text.split(": "):
        if part.isidentifier() and part.endswith(("Error", "Exception")):
            return part
    return "Error"


class BusSink:
    """An engine ``ResultSink`` publishing to ``bus``; ``now_ns`` stamps ``ts_ns`` (the
    engine's clock in a replay, the wall clock otherwise)."""

    def __init__(self, bus: Bus, now_ns: Callable[[], int] = time.time_ns) -> None:
        self.bus = bus
        self.now_ns = now_ns
        self.skipped = 0

    def record(self, kind: str, row: msgspec.Struct) -> None:
        now = self.now_ns()
        if kind == "fills" and isinstance(row, Fill):
            self.bus.publish(TRADES, fill_message(row, ts_ns=now))
        elif kind == "orders" and isinstance(row, OrderReport):
            self.bus.publish(TRADES, order_status_message(row, ts_ns=now))
        elif kind == "rejections" and isinstance(row, RejectionRecord):
            self.bus.publish(
                ERRORS,
                RejectionMessage(
                    ts_ns=now,
                    intent_id=row.intent_id,
                    strategy=row.strategy,
                    group_id=row.group_id,
                    by="risk",
                    rule=row.rule,
                    reason=row.reason,
                ),
            )
        elif kind == "errors" and isinstance(row, ErrorRecord):
            self.bus.publish(
                ERRORS,
                ErrorMessage(
                    ts_ns=now,
                    source=row.source,
                    error=_error_class(row.error),
                    message=row.error,
                ),
            )
        elif kind in ("fills", "orders", "rejections", "errors"):
            self.skipped += 1
            if self.skipped <= 10:
                log.warning("bus sink: unexpected %s row %s", kind, type(row).__name__)

"""The engine's records on the bus: fills and order reports to poly:trades, risk rejections
and errors to poly:errors, with stable fill ids; other records stay off the bus."""

from __future__ import annotations

import asyncio

from polylab.bus import (
    ERRORS,
    TRADES,
    ErrorMessage,
    FillMessage,
    InProcessBus,
    Message,
    OrderStatusMessage,
    RejectionMessage,
)
from polylab.bus.sink import BusSink, fill_id
from polylab.domain import OrderReport, Side
from polylab.engine import ErrorRecord, IntentRecord, RejectionRecord
from polylab.risk.records import Fill


def test_engine_records_become_bus_messages() -> None:
    fill = Fill(
        intent_id="sum_to_100-7",
        strategy="sum_to_100",
        group_id="g",
        leg=1,
        token_id="tok",
        side=Side.BUY,
        size=5_000_000,
        price=480_000,
        cost=2_400_000,
        fee=12_000,
        cash_delta=-2_412_000,
        realized=0,
        position_after=5_000_000,
        ts_ns=3,
        order_id="o-9",
    )
    report = OrderReport(
        intent_id="sum_to_100-7",
        leg=1,
        token_id="tok",
        side=Side.BUY,
        limit_price=490_000,
        requested=5_000_000,
        filled=5_000_000,
        cost=2_400_000,
        fee=12_000,
        avg_price=480_000,
        status="filled",
        sent_ns=1,
        done_ns=2,
        order_id="o-9",
    )
    rej = RejectionRecord(
        intent_id="clipper-2", strategy="clipper", group_id="g", rule="r", reason="no", ts_ns=4
    )
    err = ErrorRecord(source="sniper", error="sniper.on_book: KeyError: 'tok'", ts_ns=5)
    intent = IntentRecord(
        intent_id="x",
        strategy="s",
        group_id="g",
        kind="set",
        legs=2,
        edge=1,
        created_ns=1,
        reason="",
    )

    async def main() -> tuple[list[Message], list[Message]]:
        bus = InProcessBus()
        await bus.start()
        trades: list[Message] = []
        errors: list[Message] = []
        await bus.subscribe(TRADES, callback=trades.append)
        await bus.subscribe(ERRORS, callback=errors.append)
        sink = BusSink(bus, now_ns=lambda: 42)
        for kind, row in [
            ("intents", intent),
            ("fills", fill),
            ("orders", report),
            ("rejections", rej),
            ("errors", err),
            ("fills", report),
        ]:
            sink.record(kind, row)
        await bus.close()
        assert sink.skipped == 1  # an order report filed as a fill
        return trades, errors

    trades, errors = asyncio.run(main())
    f, o = trades
    assert isinstance(f, FillMessage) and isinstance(o, OrderStatusMessage)
    assert (f.fill_id, f.cost_micros, f.fee_micros, f.ts_ns) == (
        fill_id(fill),
        2_400_000,
        12_000,
        42,
    )
    assert f.fill_id == "sum_to_100-7/1/o/o-9"
    assert (o.status, o.limit_price_micros, o.filled_micros) == ("filled", 490_000, 5_000_000)
    r, e = errors
    assert isinstance(r, RejectionMessage) and (r.rule, r.by, r.intent_id) == (
        "r",
        "risk",
        "clipper-2",
    )
    assert isinstance(e, ErrorMessage) and (e.error, e.source) == ("KeyError", "sniper")

"""Message factories and a bounded wait for the bus tests."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from polylab.bus import (
    CONTROL,
    ERRORS,
    SIGNALS,
    STATE,
    TRADES,
    ControlMessage,
    ErrorMessage,
    FeedHealth,
    FillMessage,
    Message,
    OrderStatusMessage,
    PositionView,
    RejectionMessage,
    SignalLeg,
    SignalMessage,
    StateMessage,
)


def fill(i: int) -> FillMessage:
    """A fill numbered ``i`` (``fill_id`` "f<i>", ``ts_ns`` i) so order and gaps show."""
    return FillMessage(
        ts_ns=i,
        fill_id=f"f{i}",
        intent_id=f"s-{i}",
        strategy="sum_to_100",
        order_id=f"o{i}",
        token_id="tok-yes",
        side="BUY",
        size_micros=5_000_000,
        price_micros=480_000,
        cost_micros=2_400_000,
        fee_micros=12_000,
        cash_delta_micros=-2_412_000,
    )


def samples(i: int = 1) -> dict[str, list[Message]]:
    """One message of every kind, by channel."""
    return {
        STATE: [
            StateMessage(
                ts_ns=i,
                mode="paper",
                uptime_ms=1_500,
                feeds=(FeedHealth(shard="m0", connected=True, last_msg_age_ms=12),),
                positions=(PositionView(token_id="tok-yes", size_micros=5, cost_micros=3),),
                cash_micros=100_000_000,
                counters={"frames": 10},
            )
        ],
        SIGNALS: [
            SignalMessage(
                ts_ns=i,
                intent_id=f"s-{i}",
                strategy="sum_to_100",
                group_id="g1",
                kind="set",
                legs=(
                    SignalLeg(
                        token_id="tok-yes",
                        side="BUY",
                        price_micros=480_000,
                        size_micros=5_000_000,
                        order_type="FOK",
                    ),
                ),
                edge_micros=15_000,
                cost_micros=2_400_000,
                created_ns=i,
                decision="rejected",
                rule="max_position",
                reason="over 100 $",
            )
        ],
        TRADES: [
            OrderStatusMessage(
                ts_ns=i,
                intent_id=f"s-{i}",
                leg=0,
                order_id=f"o{i}",
                token_id="tok-yes",
                side="BUY",
                status="filled",
                limit_price_micros=480_000,
                requested_micros=5_000_000,
                filled_micros=5_000_000,
            ),
            fill(i),
        ],
        ERRORS: [
            ErrorMessage(
                ts_ns=i, source="feed", error="ClobTimeout", message="GET /book timed out"
            ),
            RejectionMessage(
                ts_ns=i,
                intent_id=f"s-{i}",
                strategy="clipper",
                group_id="g1",
                by="risk",
                rule="daily_loss",
                reason="limit reached",
            ),
        ],
        CONTROL: [ControlMessage(ts_ns=i, action="kill_switch", by="ops", reason="test")],
    }


async def wait_for(cond: Callable[[], bool], what: str, limit_s: float = 30.0) -> None:
    """Yield to the loop until ``cond()`` holds; fail naming ``what`` after ``limit_s`` (a
    guard against hanging, not a timing assertion)."""
    deadline = time.monotonic() + limit_s
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        await asyncio.sleep(0.005)

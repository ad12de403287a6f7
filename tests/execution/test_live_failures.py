"""Exactly one result per intent through the live executor, on every failure path, against the
real simulator: signing error, exception while sending, HTTP 5xx, connection refused, and a
timeout that is first unknown and then resolved by asking the venue (filled / unfilled)."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import msgspec
from live_helpers import (
    KEY,
    M,
    binary,
    bind_sim_books,
    buy,
    live_executor,
    set_faults,
    static_sim,
    trading,
    wait_result,
    yes_asks,
)

from polylab.execution.signer import OrderSigner


class FailingSigner:
    """A signer whose key store fails (an HSM down, a bad key file)."""

    address = OrderSigner(KEY).address

    def limit_order_v2(self, *args: Any, **kwargs: Any) -> Any:
        raise OSError("signing device unavailable")


class BadOrderSigner:
    """Signs real orders but hands over one the client cannot serialize (side 7): the
    exception happens inside ``post_order``."""

    def __init__(self) -> None:
        self.inner = OrderSigner(KEY)

    def limit_order_v2(self, *args: Any, **kwargs: Any) -> Any:
        s = self.inner.limit_order_v2(*args, **kwargs)
        return msgspec.structs.replace(s, order=msgspec.structs.replace(s.order, side=7))


def test_signing_error_is_one_rejected_result_and_nothing_is_sent() -> None:
    async def main() -> None:
        async with static_sim() as h, trading(h) as (rest, _):
            m = binary(h)
            yes_asks(h, m, [(400_000, 50 * M)])
            ex = live_executor(h, rest, FailingSigner())
            ex.submit("i1", buy(list(m.token_ids), 450_000, 10 * M, kind="set"), 5)
            res = await wait_result(ex)
            assert [r.status for r in res.reports] == ["rejected", "rejected"]
            assert all("signing failed" in r.reason for r in res.reports), res.reports
            assert res.executor == "live" and not res.complete
            assert h.state.exchange.trades(OrderSigner(KEY).address) == []

    asyncio.run(main())


def test_exception_while_sending_is_resolved_by_asking_the_venue() -> None:
    async def main() -> None:
        async with static_sim() as h, trading(h) as (rest, _):
            m = binary(h)
            yes_asks(h, m, [(400_000, 50 * M)])
            ex = live_executor(h, rest, BadOrderSigner(), resolve_interval_ms=20)
            ex.submit("i1", buy([m.token_ids[0]], 450_000, 10 * M), 5)
            (r,) = (await wait_result(ex)).reports
            assert r.status == "unfilled" and r.filled == 0, r
            assert "IndexError" in r.reason and "neither the order nor a trade" in r.reason

    asyncio.run(main())


def test_http_5xx_is_unknown_until_the_venue_answers_then_resolved() -> None:
    async def main() -> None:
        async with static_sim() as h, trading(h) as (rest, _):
            m = binary(h)
            yes_asks(h, m, [(400_000, 50 * M)])
            ex = live_executor(h, rest, OrderSigner(KEY), resolve_interval_ms=20)
            set_faults(h, http_5xx_prob=1.0)
            ex.submit("i1", buy([m.token_ids[0]], 450_000, 10 * M), 5)
            for _ in range(2000):  # the venue fails every call for a while, then recovers
                if rest.stats.server_errors >= 3:
                    break
                await asyncio.sleep(0.005)
            assert ex.pending() == 1  # not booked on a guess while the venue cannot be read
            set_faults(h)
            (r,) = (await wait_result(ex)).reports
            assert r.status == "unfilled" and r.filled == 0, r
            assert ("503" in r.reason or "500" in r.reason) and "neither" in r.reason
            assert rest.stats.requests > 1 and h.state.exchange.trades(ex.signer.address) == []

    asyncio.run(main())


def test_connection_refused_is_a_rejection_nothing_was_sent() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]  # closed again before use: nobody listens there

    async def main() -> None:
        async with static_sim() as h, trading(h, url=f"http://127.0.0.1:{dead}") as (rest, _):
            m = binary(h)
            ex = live_executor(h, rest, OrderSigner(KEY))
            ex.submit("i1", buy(list(m.token_ids), 450_000, 10 * M, kind="set"), 5)
            res = await wait_result(ex)
            assert [r.status for r in res.reports] == ["rejected", "rejected"]
            assert all("ClobNotSent" in r.reason for r in res.reports), res.reports

    asyncio.run(main())


def test_timeout_is_resolved_filled_from_the_venue() -> None:
    async def main() -> None:
        async with static_sim(order_response_delay_ms=3_000) as h, trading(h) as (rest, signer):
            m = binary(h)
            yes_asks(h, m, [(400_000, 50 * M)])
            ex = live_executor(h, rest, signer, order_timeout_ms=100, resolve_interval_ms=20)
            await bind_sim_books(ex, rest, list(m.token_ids))
            ex.submit("i1", buy([m.token_ids[0]], 450_000, 10 * M), 5)
            (r,) = (await wait_result(ex)).reports
            assert r.status == "filled" and "no answer in 100 ms" in r.reason, r
            assert r.filled == 10 * M == h.state.exchange.position(signer.address, m.token_ids[0])
            assert r.cost == 4 * M and r.fee == 168_000  # 10 × 0.07 × 0.40 × 0.60

    asyncio.run(main())


def test_timeout_is_resolved_unfilled_from_the_venue() -> None:
    async def main() -> None:
        async with static_sim(order_response_delay_ms=3_000) as h, trading(h) as (rest, signer):
            m = binary(h)
            yes_asks(h, m, [(600_000, 50 * M)])  # above the limit: the FOK cannot fill
            ex = live_executor(h, rest, signer, order_timeout_ms=100, resolve_interval_ms=20)
            await bind_sim_books(ex, rest, list(m.token_ids))
            ex.submit("i1", buy([m.token_ids[0]], 450_000, 10 * M), 5)
            (r,) = (await wait_result(ex)).reports
            assert r.status == "unfilled" and r.filled == 0, r
            assert "no answer in 100 ms" in r.reason and "neither" in r.reason

    asyncio.run(main())


def test_a_leg_that_cannot_be_built_is_one_rejected_result() -> None:
    from polylab.execution.live import LiveConfig, LiveExecutor
    from polylab.market import MarketCatalog

    async def main() -> None:
        ex = LiveExecutor(LiveConfig(), MarketCatalog(), OrderSigner(KEY), None)
        ex.submit("i1", buy(["123"], 450_000, 10 * M), 5)  # token unknown to the catalog
        (r,) = (await wait_result(ex)).reports
        assert r.status == "rejected" and "not in the market catalog" in r.reason

    asyncio.run(main())

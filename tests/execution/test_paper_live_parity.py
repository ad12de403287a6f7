"""Paper trades like live: the same intent against the same static book gives the same fills,
to the micro, through the live executor on the simulator and through the paper trader; and a
FOK/FAK BUY receives its size (± one lot of dust), not the shares its nominal collateral buys."""

from __future__ import annotations

import asyncio

import pytest
from live_helpers import KEY, MAKER, M, binary, live_executor, static_sim, trading, wait_result

from polylab.book.l2 import L2Book
from polylab.domain import Intent, Leg
from polylab.execution.amounts import LOT
from polylab.execution.base import ExecutionResult, OrderReport
from polylab.execution.paper import PaperConfig, PaperTrader
from polylab.execution.signer import OrderSigner
from polylab.market import Market
from polylab.sim.server import SimHandle


def asks(h: SimHandle, m: Market, token: str, levels: list[tuple[int, int]]) -> None:
    """Asks on ``token`` at ``(price, size)``, one maker order per level: a maker's BUY of the
    other token at 1 − price (the venue's books are mirrored)."""
    other = m.token_ids[1] if token == m.token_ids[0] else m.token_ids[0]
    grid = h.state.exchange.grid(other).micros
    for price, size in levels:
        r = h.state.exchange.place(MAKER, other, "BUY", (M - price) // grid, size)
        assert r.success, r.error_msg


def fields(r: OrderReport) -> tuple[object, ...]:
    return (r.leg, r.token_id, r.side, r.status, r.filled, r.cost, r.fee, r.avg_price)


async def both(h: SimHandle, intent: Intent) -> tuple[ExecutionResult, ExecutionResult, int]:
    """(live result, paper result, collateral the venue debited) for ``intent`` on the books
    as they stand now."""
    async with trading(h) as (rest, signer):
        tokens = sorted({lg.token_id for lg in intent.legs})
        books: dict[str, L2Book] = {t: await rest.get_book(t) for t in tokens}
        paper = PaperTrader(PaperConfig(latency_ms=0, leg_policy="hold"), h.state.exchange.markets)
        paper.bind_books(books)
        paper.submit("p", intent, 0)
        (p_res,) = paper.poll(0, books)
        ex = live_executor(h, rest, signer)
        ex.bind_books(books)
        before = h.state.exchange.balance(signer.address)
        ex.submit("l", intent, 0)
        l_res = await wait_result(ex)
        return l_res, p_res, before - h.state.exchange.balance(signer.address)


CASES = {
    # a set the book offers at three prices under the limits: FOK legs
    "set-fok": (
        [(400_000, 30 * M), (420_000, 40 * M), (440_000, 100 * M)],
        [(620_000, 60 * M), (630_000, 20 * M), (640_000, 200 * M)],
        101_010_000,
        "FOK",
    ),
    # YES holds exactly the size under the limit: the cost rounded up to the cent could not be
    # spent (a FOK would die), so it is rounded down and the leg gets one lot less
    "set-fok-exact-depth": (
        [(400_000, 30 * M), (420_000, 40 * M), (440_000, 31_010_000)],
        [(620_000, 60 * M), (630_000, 20 * M), (640_000, 200 * M)],
        101_010_000,
        "FOK",
    ),
    # more than the book holds under the limit: FOK legs are killed (unfilled, not refused)
    "set-fok-thin": (
        [(400_000, 30 * M), (420_000, 40 * M)],
        [(620_000, 60 * M), (630_000, 20 * M), (660_000, 200 * M)],
        101_010_000,
        "FOK",
    ),
    # more than the book holds under the limit: FAK legs fill what is there
    "set-fak-thin": (
        [(400_000, 30 * M), (420_000, 40 * M)],
        [(620_000, 60 * M), (630_000, 20 * M), (660_000, 200 * M)],
        101_010_000,
        "FAK",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_same_intent_same_static_book_same_fills_to_the_micro(case: str) -> None:
    yes_levels, no_levels, size, ot = CASES[case]

    async def main() -> tuple[ExecutionResult, ExecutionResult, int, dict[str, int]]:
        async with static_sim() as h:
            m = binary(h)
            y, n = m.token_ids
            asks(h, m, y, yes_levels)
            asks(h, m, n, no_levels)
            legs = (
                Leg(token_id=y, side="BUY", price=450_000, size=size, order_type=ot),
                Leg(token_id=n, side="BUY", price=650_000, size=size, order_type=ot),
            )
            intent = Intent(
                strategy="s", group_id=m.condition_id, kind="set", legs=legs, edge=0, created_ns=0
            )
            live, paper, debited = await both(h, intent)
            addr = OrderSigner(KEY).address
            held = {t: h.state.exchange.position(addr, t) for t in (y, n)}
            return live, paper, debited, held

    live, paper, debited, held = asyncio.run(main())
    assert [fields(r) for r in live.reports] == [fields(r) for r in paper.reports]
    assert live.residual == paper.residual and live.complete == paper.complete
    assert (live.executor, paper.executor) == ("live", "paper")
    assert debited == sum(r.cost + r.fee for r in live.reports)  # what the venue really took
    assert {r.token_id: r.filled for r in live.reports} == held
    for r in live.reports:
        if case in ("set-fok", "set-fok-exact-depth"):  # the size ± one lot, not 105.8 … 288.6
            assert r.status == "filled" and abs(r.filled - size) <= LOT, r
        elif case == "set-fok-thin":
            assert r.status == "unfilled" and r.filled == 0, r
        else:
            assert r.filled < size and r.status == "partial", r

"""Live orders are built on the book's current tick size, not the catalog's: after a
``tick_size_change`` to 0.001, a BUY at 0.021 is signed (DRY_RUN) and fills on the simulator,
as the paper trader fills it."""

from __future__ import annotations

import asyncio

from live_helpers import KEY, MAKER, M, binary, live_executor, static_sim, trading, wait_result

from polylab.domain import Intent, Leg
from polylab.execution.live import LiveConfig, LiveExecutor
from polylab.execution.paper import PaperConfig, PaperTrader
from polylab.execution.signer import OrderSigner
from polylab.market import MarketCatalog


def test_orders_use_the_books_current_tick_after_a_tick_size_change() -> None:
    async def main() -> None:
        async with static_sim() as h, trading(h) as (rest, signer):
            exch = h.state.exchange
            m = binary(h)
            yes, no = m.token_ids
            catalog = MarketCatalog(list(exch.markets.markets.values()))  # as discovered: 0.01
            assert catalog.by_token[yes].tick_size == "0.01"
            exch.set_tick_size(yes, "0.001")  # the venue's 0.96 / 0.04 rule
            r = exch.place(MAKER, no, "BUY", 979, 200 * M)  # NO bid 0.979 = YES ask 0.021
            assert r.success, r.error_msg
            book = await rest.get_book(yes)
            assert book.tick.text == "0.001"
            leg = Leg(token_id=yes, side="BUY", price=21_000, size=100 * M, order_type="FOK")
            intent = Intent(
                strategy="s", group_id="g", kind="single", legs=(leg,), edge=0, created_ns=0
            )

            dry = LiveExecutor(LiveConfig(url=h.url), catalog, OrderSigner(KEY), None)
            dry.bind_books({yes: book})
            dry.submit("d", intent, 0)
            (d,) = (await wait_result(dry)).reports
            assert d.status == "dry_run" and d.order_id.startswith("0x"), d

            paper = PaperTrader(PaperConfig(latency_ms=0), catalog)
            paper.bind_books({yes: book})
            paper.submit("p", intent, 0)
            (p,) = paper.poll(0, {yes: book})[0].reports

            ex = live_executor(h, rest, signer, catalog)
            ex.bind_books({yes: book})
            ex.submit("l", intent, 0)
            (lv,) = (await wait_result(ex)).reports
            assert lv.status == p.status == "filled", (lv, p)
            assert lv.filled == p.filled == 100 * M and lv.cost == p.cost == 2_100_000
            assert exch.position(signer.address, yes) == 100 * M

    asyncio.run(main())

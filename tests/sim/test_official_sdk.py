"""The official unified SDK ``polymarket-client`` (module ``polymarket``), unmodified, against
the simulator: Gamma reads (keyset lists, id and slug lookups), CLOB reads (books, prices,
midpoints, spreads, last trades) and its realtime market stream.

Pointing the SDK at a local URL: ``PublicClient(environment)`` and ``AsyncPublicClient`` take
only an ``Environment``; the SDK reads no environment variables, ``Environment()`` refuses to be
constructed, and ``PRODUCTION`` carries fixed production URLs. The SDK builds its own
environments with ``polymarket._internal.environment.create_environment(name=, config=)`` from
an ``EnvironmentConfig`` (a frozen dataclass holding ``gamma_url``, ``clob_url``,
``clob_market_ws_url`` …), so ``sim_environment`` copies ``PRODUCTION_CONFIG`` with
``dataclasses.replace`` and swaps in the simulator's URLs (Gamma lives under ``/gamma`` there;
httpx joins the SDK's ``/markets/keyset`` onto that base path). Every request path, query and
response parser stays the SDK's own. The ``_internal`` import is the one private piece; if a
release moves it, this is the place to follow.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest
from polymarket import AsyncPublicClient, Environment, PublicClient
from polymarket._internal.environment import PRODUCTION_CONFIG, create_environment
from polymarket.errors import RequestRejectedError
from polymarket.streams import (
    MarketBookEvent,
    MarketLastTradePriceEvent,
    MarketPriceChangeEvent,
    MarketSpec,
)

from polylab.market import Market
from polylab.money import MICROS
from polylab.sim import SimConfig, SimThread
from polylab.sim.server import running_sim

MAKER = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
TAKER = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
S = MICROS


def sim_environment(url: str, ws_url: str) -> Environment:
    """The SDK's production environment with every service we serve pointed at the simulator."""
    config = dataclasses.replace(
        PRODUCTION_CONFIG,
        gamma_url=url + "/gamma",
        clob_url=url,
        clob_market_ws_url=ws_url + "/ws/market",
        clob_user_ws_url=ws_url + "/ws/user",
    )
    return create_environment(name="polylab-sim", config=config)


@pytest.fixture(scope="module")
def sim() -> Iterator[SimThread]:
    s = SimThread(SimConfig(seed=21, generator=False)).start()
    try:
        yield s
    finally:
        s.stop()


@pytest.fixture(scope="module")
def client(sim: SimThread) -> Iterator[PublicClient]:
    with PublicClient(sim_environment(sim.url, sim.ws_url)) as c:
        yield c


def gamma(sim: SimThread, path: str) -> Any:
    r = httpx.get(sim.url + "/gamma" + path, params={"limit": 1000})
    assert r.status_code == 200, r.text
    return r.json()


def catalog(sim: SimThread) -> list[Market]:
    return sim.call(lambda: list(sim.state.exchange.markets.markets.values()))


def test_sdk_lists_every_market_through_keyset_pages(sim: SimThread, client: PublicClient) -> None:
    pages = list(client.list_markets(page_size=2))
    assert len(pages) >= 3 and all(len(p.items) == 2 for p in pages[:-1])
    assert [p.has_more for p in pages] == [True] * (len(pages) - 1) + [False]
    listed = [m for p in pages for m in p.items]
    assert [m.id for m in listed] == [d["id"] for d in gamma(sim, "/markets")]
    by_cid = {m.condition_id: m for m in catalog(sim)}
    assert {m.condition_id for m in listed} == set(by_cid)
    for m in listed:
        mine = by_cid[m.condition_id]
        yes = m.outcomes.yes
        assert (yes.position_id if mine.version == "v2" else yes.token_id) == mine.token_ids[0]
        assert m.version is not None and m.version.value == mine.version
        assert m.trading.minimum_tick_size == Decimal(mine.tick_size)
        assert m.state.neg_risk == mine.neg_risk
    # a filter travels with the cursor: v2 markets only
    v2 = list(client.list_markets(version="v2", page_size=1).iter_items())
    assert [m.condition_id for m in v2] == [
        m.condition_id for m in catalog(sim) if m.version == "v2"
    ]


def test_sdk_lists_events_with_their_markets(sim: SimThread, client: PublicClient) -> None:
    events = list(client.list_events(page_size=1).iter_items())
    raw = gamma(sim, "/events")
    assert [e.id for e in events] == [e["id"] for e in raw] and len(events) >= 2
    neg = [e for e in events if len(e.markets) > 1]
    assert neg and {m.condition_id for m in neg[0].markets} == {
        m.condition_id for m in catalog(sim) if m.neg_risk
    }


def test_sdk_looks_markets_and_events_up_by_id_and_slug(
    sim: SimThread, client: PublicClient
) -> None:
    for d in gamma(sim, "/markets"):
        by_slug = client.get_market(slug=d["slug"])
        by_id = client.get_market(id=d["id"])
        assert by_slug.id == by_id.id == d["id"] and by_slug.condition_id == d["conditionId"]
    for e in gamma(sim, "/events"):
        assert client.get_event(slug=e["slug"]).id == e["id"]
        assert client.get_event(id=e["id"]).slug == e["slug"]
    with pytest.raises(RequestRejectedError) as err:
        client.get_market(slug="no-such-market")
    assert err.value.status == 404 and "not found" in str(err.value)


def test_sdk_reads_books_and_prices(sim: SimThread, client: PublicClient) -> None:
    m = next(x for x in catalog(sim) if x.version == "v1" and not x.neg_risk)
    yes, no = m.token_ids
    ex = sim.state.exchange

    def seed() -> None:
        assert ex.place(MAKER, yes, "BUY", 40, 30 * S).success  # YES bid 0.40 × 30
        assert ex.place(MAKER, no, "BUY", 45, 20 * S).success  # YES ask 0.55 × 20
        assert ex.place(TAKER, yes, "BUY", 55, 10 * S, "FAK").success  # trade 10 @ 0.55

    sim.call(seed)
    book = client.get_order_book(token_id=yes)
    assert [(b.price, b.size) for b in book.bids] == [(Decimal("0.4"), Decimal(30))]
    assert [(a.price, a.size) for a in book.asks] == [(Decimal("0.55"), Decimal(10))]
    assert book.condition_id == m.condition_id and book.tick_size == Decimal(m.tick_size)
    [again] = client.get_order_books(token_ids=[yes])
    assert again.asks == book.asks
    assert client.get_midpoint(token_id=yes) == Decimal("0.475")
    assert client.get_spread(token_id=yes) == Decimal("0.15")
    assert client.get_price(token_id=yes, side="BUY") == Decimal("0.4")
    assert client.get_price(token_id=yes, side="SELL") == Decimal("0.55")
    last = client.get_last_trade_price(token_id=yes)
    assert last is not None and last.price == Decimal("0.55")


def test_sdk_market_stream_delivers_books_changes_and_trades() -> None:
    async def go() -> None:
        async with running_sim(SimConfig(seed=22, generator=False)) as sim:
            ex = sim.state.exchange
            m = next(x for x in ex.markets.markets.values() if x.version == "v1" and not x.neg_risk)
            yes, no = m.token_ids
            assert ex.place(MAKER, no, "BUY", 45, 20 * S).success  # YES ask 0.55 before
            env = sim_environment(sim.url, sim.ws_url)
            async with AsyncPublicClient(env) as c:
                stream = await c.subscribe(MarketSpec(asset_ids=[yes, no]))
                it = aiter(stream)
                books = [await anext(it), await anext(it)]
                assert all(isinstance(b, MarketBookEvent) for b in books)
                snap = {b.payload.asset_id: b.payload for b in books}
                assert set(snap) == {yes, no}
                assert [(a.price, a.size) for a in snap[yes].asks] == [
                    (Decimal("0.55"), Decimal(20))
                ]
                assert ex.place(MAKER, yes, "BUY", 40, 30 * S).success
                change = await anext(it)
                assert isinstance(change, MarketPriceChangeEvent)
                mine = [p for p in change.payload.price_changes if p.asset_id == yes]
                assert [(p.price, p.size, p.side) for p in mine] == [
                    (Decimal("0.4"), Decimal(30), "BUY")
                ]
                assert ex.place(TAKER, yes, "BUY", 55, 10 * S, "FAK").success
                trades: list[MarketLastTradePriceEvent] = []
                while not trades:
                    ev = await anext(it)
                    if isinstance(ev, MarketLastTradePriceEvent):
                        trades.append(ev)
                t = trades[0].payload
                assert (t.price, t.size, t.side) == (Decimal("0.55"), Decimal(10), "BUY")
                await stream.close()

    asyncio.run(asyncio.wait_for(go(), 30))

"""CLOB REST client against the real simulator (ephemeral port), with and without faults."""

from __future__ import annotations

import asyncio
import functools
import logging
import socket
from collections.abc import Callable, Coroutine
from typing import Any

import httpx
import msgspec
import pytest

from polylab.errors import (
    AuthError,
    BadRequest,
    ClobConnectError,
    ClobTimeout,
    NotFound,
    OrderRejected,
    RateLimited,
    ServerError,
)
from polylab.execution.auth import ApiCreds
from polylab.execution.eip712 import SigningKey
from polylab.execution.rest import (
    AsyncClobRest,
    ClobRest,
    RestConfig,
    retry_delay_s,
    should_retry,
)
from polylab.execution.rest_policy import http_error
from polylab.execution.signer import OrderSigner
from polylab.execution.signing_v2 import SignedOrderV2, exchange_domain
from polylab.market import Market
from polylab.money import MICROS, parse_micros
from polylab.sim.config import SimConfig
from polylab.sim.exchange import Exchange
from polylab.sim.faults import FaultConfig
from polylab.sim.server import SimThread, running_sim

KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"  # public test key
OTHER = "0x" + "b2" * 20


def asynctest(fn: Callable[..., Coroutine[Any, Any, None]]) -> Callable[..., None]:
    """Run an async test on a fresh loop, bounded in time."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        asyncio.run(asyncio.wait_for(fn(*args, **kwargs), 25))

    return wrapper


def quiet_sim(**faults: Any) -> SimConfig:
    return SimConfig(generator=False, page_size=2, faults=msgspec.convert(faults, FaultConfig))


def fast(url: str, **kw: Any) -> RestConfig:
    return msgspec.convert(
        {"url": url, "backoff_min_ms": 1, "backoff_max_ms": 20, **kw}, RestConfig
    )


def by_kind(ex: Exchange) -> dict[str, Market]:
    ms = list(ex.markets.markets.values())
    return {
        "v1": next(m for m in ms if m.version == "v1" and not m.neg_risk),
        "v2": next(m for m in ms if m.version == "v2"),
        "neg": next(m for m in ms if m.neg_risk),
    }


def sign(
    signer: OrderSigner, m: Market, token: str, side: str, price: str, size: str
) -> SignedOrderV2:
    domain = exchange_domain(3 if m.version == "v2" else 2, 137, neg_risk=m.neg_risk)
    return signer.limit_order_v2(int(token), side, price, size, m.tick_size, domain)


def levels(raw: list[dict[str, str]]) -> list[tuple[int, int]]:
    return [(parse_micros(x["price"]), parse_micros(x["size"])) for x in reversed(raw)]


# -- policy (pure) ----------------------------------------------------------------------------
def test_retry_policy_is_one_function_of_the_error_class() -> None:
    assert should_retry(ServerError(503, "down"))
    assert should_retry(RateLimited(429, "slow down"))
    assert should_retry(ClobTimeout("t"))
    assert should_retry(ClobConnectError("c"))
    for final in (
        BadRequest(400, "Invalid side"),
        NotFound(404, "x"),
        AuthError(401, "x"),
        OrderRejected("INVALID_ORDER_MIN_SIZE"),
        ValueError("x"),
    ):
        assert not should_retry(final)


def test_backoff_is_bounded_and_a_429_waits_its_retry_after() -> None:
    cfg = RestConfig(url="http://x", backoff_min_ms=10, backoff_max_ms=80)
    ds = [retry_delay_s(ServerError(500, "x"), a, cfg) for a in range(1, 8) for _ in range(50)]
    assert min(ds) >= 0.01 and max(ds) <= 0.08
    r = http_error(
        httpx.Response(429, headers={"Retry-After": "1.5"}, json={"error": "Too Many Requests"}),
        "GET",
        "/book",
    )
    assert isinstance(r, RateLimited) and r.retry_after_s == 1.5
    assert r.message == "Too Many Requests" and "GET /book 429" in str(r)
    assert all(retry_delay_s(r, a, cfg) >= 1.5 for a in (1, 2, 3))
    dated = http_error(
        httpx.Response(429, headers={"Retry-After": "Wed, 21 Oct 2026 07:28:00 GMT"}), "GET", "/x"
    )
    assert isinstance(dated, RateLimited) and dated.retry_after_s is None


# -- public reads -----------------------------------------------------------------------------
@asynctest
async def test_public_reads_match_the_exchange() -> None:
    async with running_sim(quiet_sim()) as sim, AsyncClobRest(fast(sim.url)) as rest:
        ex = sim.state.exchange
        mk = by_kind(ex)
        yes, no = mk["v1"].token_ids
        ex.place(OTHER, yes, "BUY", 44, 20 * MICROS)
        ex.place(OTHER, yes, "BUY", 45, 7 * MICROS)
        ex.place(OTHER, no, "BUY", 52, 11 * MICROS)  # a YES ask at 0.48
        assert await rest.get_ok()
        assert await rest.get_version() == 2
        assert abs(await rest.get_time() - ex.now_ms() // 1000) <= 2
        raw = ex.book_json(yes)  # the hash covers the timestamp: equal levels, not hashes
        wire = await rest.get_order_book(yes)
        assert wire.tick_size == "0.01" and len(wire.hash) == 40
        assert wire.bids == [msgspec.convert(x, type(wire.bids[0])) for x in raw["bids"]]
        book = await rest.get_book(yes)
        assert book.hash and book.market == mk["v1"].condition_id
        assert [(t * 10_000, s) for t, s in book.bid_levels()] == levels(raw["bids"])
        assert [(t * 10_000, s) for t, s in book.ask_levels()] == [(480_000, 11 * MICROS)]
        tokens = [t for m in ex.markets.markets.values() for t in m.token_ids]
        books = await rest.get_books(tokens)
        assert [b.asset_id for b in books] == tokens
        assert all(
            [(t * b.tick.micros, s) for t, s in b.bid_levels()]
            == levels(ex.book_json(b.asset_id)["bids"])
            for b in books
        )
        # the venue's (and the sim's) convention: side=BUY reads the best bid, SELL the best ask
        assert await rest.get_price(yes, "BUY") == 450_000
        assert await rest.get_price(yes, "SELL") == 480_000
        assert await rest.get_midpoint(yes) == 465_000
        assert (await rest.get_tick_size(yes)).text == "0.01"
        assert await rest.get_neg_risk(mk["neg"].token_ids[0]) is True
        assert await rest.get_neg_risk(yes) is False
        assert (
            await rest.get_fee_rate(yes) == 1000
            and await rest.get_fee_rate(mk["neg"].token_ids[0]) == 0
        )
        every = await rest.get_all_markets()  # page_size 2: three pages
        assert sorted(m.condition_id for m in every) == sorted(ex.markets.markets)
        one = await rest.get_market(mk["v1"].condition_id)
        assert [t.token_id for t in one.tokens] == [yes, no]
        info = await rest.get_clob_market_info(mk["v2"].condition_id)
        assert [t.token_id for t in info.tokens] == list(mk["v2"].token_ids)
        assert rest.stats.retries == 0 and rest.stats.errors == 0


@asynctest
async def test_validation_errors_are_raised_at_once_and_never_retried() -> None:
    async with running_sim(quiet_sim()) as sim, AsyncClobRest(fast(sim.url)) as rest:
        yes = by_kind(sim.state.exchange)["v1"].token_ids[0]
        with pytest.raises(BadRequest, match="400") as bad:
            await rest.get_price(yes, "SIDEWAYS")
        assert not should_retry(bad.value)
        with pytest.raises(NotFound, match="No orderbook exists"):
            await rest.get_book("1" * 77)
        with pytest.raises(BadRequest, match="Invalid token id"):
            await rest.get_book("not-a-token")
        with pytest.raises(AuthError, match="needs L2 credentials"):
            await rest.get_open_orders()
        assert rest.stats.requests == 3 and rest.stats.retries == 0 and rest.stats.errors == 3


# -- faults -----------------------------------------------------------------------------------
@asynctest
async def test_429_and_5xx_are_retried_until_the_call_succeeds() -> None:
    async with running_sim(quiet_sim(http_429_prob=0.25, http_5xx_prob=0.25)) as sim:
        ex = sim.state.exchange
        tokens = [t for m in ex.markets.markets.values() for t in m.token_ids]
        async with AsyncClobRest(fast(sim.url, max_attempts=12)) as rest:
            for t in tokens * 3:
                assert (await rest.get_order_book(t)).asset_id == t
            st = rest.stats
        assert st.rate_limited > 0 and st.server_errors > 0
        assert st.retries == st.rate_limited + st.server_errors and st.errors == 0
        assert st.requests == 30 + st.retries
        async with AsyncClobRest(fast(sim.url, max_attempts=1)) as once:
            outcomes = []
            for t in tokens:
                try:
                    await once.get_book(t)
                    outcomes.append("ok")
                except (RateLimited, ServerError) as exc:
                    outcomes.append(type(exc).__name__)
            assert once.stats.retries == 0 and "ok" in outcomes and len(set(outcomes)) > 1


@asynctest
async def test_connect_errors_and_timeouts_are_retried_then_raised() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead_port = s.getsockname()[1]  # closed again before use: nobody listens there
    async with AsyncClobRest(fast(f"http://127.0.0.1:{dead_port}", max_attempts=3)) as rest:
        with pytest.raises(ClobConnectError):
            await rest.get_ok()
        assert rest.stats.requests == 3 and rest.stats.retries == 2

    writers: list[asyncio.StreamWriter] = []

    async def mute(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)  # read the request, never answer
        await reader.read(65536)

    server = await asyncio.start_server(mute, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    cfg = fast(f"http://127.0.0.1:{port}", max_attempts=2, timeout_s=0.2)
    async with server, AsyncClobRest(cfg) as rest:
        with pytest.raises(ClobTimeout):
            await rest.get_time()
        for w in writers:
            w.close()
            await w.wait_closed()
        assert rest.stats.requests == 2 and rest.stats.transport_errors == 2


# -- authenticated trading --------------------------------------------------------------------
@asynctest
async def test_api_keys_orders_cancels_trades_and_balances(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    async with running_sim(quiet_sim()) as sim:
        ex = sim.state.exchange
        mk = by_kind(ex)
        key = SigningKey(KEY)
        async with AsyncClobRest(fast(sim.url), key=key) as rest:
            creds = await rest.create_or_derive_api_key()
            assert await rest.derive_api_key() == creds
            assert creds.api_key in repr(rest.creds) and creds.secret.reveal() not in repr(rest)
            signer = OrderSigner(KEY)
            yes, no = mk["v1"].token_ids
            placed = []
            for m, tok in (
                (mk["v1"], yes),
                (mk["v2"], mk["v2"].token_ids[0]),
                (mk["neg"], mk["neg"].token_ids[0]),
            ):
                r = await rest.post_order(sign(signer, m, tok, "BUY", "0.4", "10"))
                assert r.success and r.status == "live" and r.order_id
                placed.append(r.order_id)
            opened = await rest.get_open_orders()  # page_size 2: two pages
            assert sorted(o.id for o in opened) == sorted(placed)
            assert [o.id for o in await rest.get_open_orders(asset_id=yes)] == [placed[0]]
            got = await rest.get_order(placed[0])
            assert got is not None and got.price == "0.4" and got.original_size == "10"
            assert (await rest.cancel(placed[0])).canceled == [placed[0]]
            after = await rest.get_order(placed[0])  # the venue returns nothing; the sim says so
            assert after is None or after.status == "CANCELED"
            gone = await rest.cancel_all()
            assert sorted(gone.canceled) == sorted(placed[1:])
            assert await rest.get_open_orders() == []

            # a taker BUY YES at 0.45 meets a resting NO bid at 0.55: a MINT match
            ex.place(OTHER, no, "BUY", 55, 20 * MICROS)
            taken = await rest.post_order(sign(signer, mk["v1"], yes, "BUY", "0.45", "10"))
            assert taken.status == "matched" and taken.trade_ids
            trades = await rest.get_trades()
            assert trades and trades[0].asset_id == yes and trades[0].side == "BUY"
            bal = await rest.get_balance_allowance()
            assert 0 < bal.balance_micros < sim.state.config.starting_collateral_micros
            await rest.update_balance_allowance()

            with pytest.raises(OrderRejected, match="400") as rej:
                await rest.post_order(sign(signer, mk["v1"], yes, "BUY", "0.4", "1"))  # < min
            assert rej.value.status == 400
            requests = rest.stats.requests
            batch = await rest.post_orders(
                [
                    (sign(signer, mk["v1"], yes, "BUY", "0.41", "6"), "GTC", False),
                    (sign(signer, mk["v1"], yes, "BUY", "0.42", "6"), "GTC", True),
                ]
            )
            assert [b.status for b in batch] == ["live", "live"]
            assert rest.stats.requests == requests + 1
            assert len((await rest.cancel_orders([b.order_id for b in batch])).canceled) == 2
            assert rest.stats.retries == 0
        bad = ApiCreds(api_key=creds.api_key, secret=creds.secret, passphrase="wrong")
        async with AsyncClobRest(fast(sim.url), creds=bad, address=key.address) as intruder:
            with pytest.raises(AuthError, match="401"):
                await intruder.get_open_orders()
            assert intruder.stats.requests == 1
    logged = caplog.text
    assert creds.secret.reveal() not in logged and creds.passphrase.reveal() not in logged
    assert KEY[2:] not in logged


@asynctest
async def test_order_rejects_are_not_retried() -> None:
    async with running_sim(quiet_sim(reject_prob=1.0)) as sim:
        m = by_kind(sim.state.exchange)["v1"]
        async with AsyncClobRest(fast(sim.url), key=SigningKey(KEY)) as rest:
            await rest.create_or_derive_api_key()
            before = rest.stats.requests
            with pytest.raises(OrderRejected) as rej:
                await rest.post_order(sign(OrderSigner(KEY), m, m.token_ids[0], "BUY", "0.4", "10"))
            assert rej.value.order_id.startswith("0x")
            assert rest.stats.requests == before + 1 and not should_retry(rej.value)


def test_sync_wrapper_against_a_simulator_thread() -> None:
    with SimThread(quiet_sim()) as sim, ClobRest(fast(sim.url), key=SigningKey(KEY)) as rest:
        m = sim.call(lambda: by_kind(sim.state.exchange)["v1"])
        creds = rest.create_or_derive_api_key()
        assert rest.creds == creds
        r = rest.post_order(sign(OrderSigner(KEY), m, m.token_ids[0], "BUY", "0.3", "5"))
        assert r.status == "live"
        book = rest.get_book(m.token_ids[0])
        assert book.bid_levels() == [(30, 5 * MICROS)]
        assert rest.cancel_all().canceled == [r.order_id]
        assert rest.stats.errors == 0

"""User-channel client against the real simulator (ephemeral port)."""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import msgspec
import pytest

from polylab.execution.auth import ApiCreds
from polylab.execution.eip712 import SigningKey
from polylab.execution.rest import AsyncClobRest, RestConfig
from polylab.execution.signer import OrderSigner
from polylab.execution.signing_v2 import exchange_domain
from polylab.feed.recording import RecordingReader, RecordingWriter
from polylab.feed.user_ws import UserFeed, UserFeedConfig
from polylab.feed.wire import UserEvent, UserOrder, UserTrade
from polylab.market import Market
from polylab.money import MICROS
from polylab.sim.config import SimConfig
from polylab.sim.faults import FaultConfig
from polylab.sim.server import SimHandle, running_sim

KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"  # public test key
OTHER = "0x" + "b2" * 20


def asynctest(fn: Callable[..., Coroutine[Any, Any, None]]) -> Callable[..., None]:
    """Run an async test on a fresh loop, bounded in time."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        asyncio.run(asyncio.wait_for(fn(*args, **kwargs), 25))

    return wrapper


def sim_config(**faults: Any) -> SimConfig:
    return SimConfig(
        generator=False,
        mined_delay_s=0.05,
        confirmed_delay_s=0.1,
        faults=msgspec.convert(faults, FaultConfig),
    )


def feed_config(sim: SimHandle, *markets: str, **kw: Any) -> UserFeedConfig:
    return msgspec.convert(
        {
            "url": sim.ws_url + "/ws/user",
            "markets": markets,
            "backoff_min_ms": 20,
            "backoff_max_ms": 200,
            **kw,
        },
        UserFeedConfig,
    )


def binaries(sim: SimHandle) -> tuple[Market, Market]:
    ms = list(sim.state.exchange.markets.markets.values())
    return (
        next(m for m in ms if m.version == "v1" and not m.neg_risk),
        next(m for m in ms if m.version == "v2"),
    )


async def until(pred: Callable[[], bool], timeout_s: float = 5.0) -> bool:
    end = time.monotonic() + timeout_s
    while not pred():
        if time.monotonic() > end:
            return False
        await asyncio.sleep(0.02)
    return True


class Trader:
    """An account posting signed orders over REST (the way a strategy would)."""

    def __init__(self, rest: AsyncClobRest) -> None:
        self.rest = rest
        self.signer = OrderSigner(KEY)

    async def buy(self, m: Market, token: str, price: str, size: str) -> str:
        domain = exchange_domain(3 if m.version == "v2" else 2, 137, neg_risk=m.neg_risk)
        signed = self.signer.limit_order_v2(int(token), "BUY", price, size, m.tick_size, domain)
        return (await self.rest.post_order(signed)).order_id


async def login(sim: SimHandle) -> tuple[AsyncClobRest, ApiCreds]:
    rest = AsyncClobRest(RestConfig(url=sim.url), key=SigningKey(KEY))
    return rest, await rest.create_or_derive_api_key()


@asynctest
async def test_order_and_trade_events_through_the_settlement_lifecycle(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    got: list[UserEvent] = []
    async with running_sim(sim_config()) as sim:
        v1, v2 = binaries(sim)
        rest, creds = await login(sim)
        me = Trader(rest)
        with RecordingWriter(tmp_path / "user.jsonl") as rec:
            feed = UserFeed(
                feed_config(sim, v1.condition_id, ping_s=0.2),
                creds,
                on_event=lambda ns, ev: got.append(ev),
                recorder=rec,
            )
            async with feed, rest:
                assert creds.secret.reveal() not in repr(feed)
                assert creds.passphrase.reveal() not in repr(feed)
                assert await feed.wait_ready(5)
                oid = await me.buy(v1, v1.token_ids[0], "0.45", "10")
                await me.buy(v2, v2.token_ids[0], "0.45", "10")  # filtered out: other market
                assert await until(lambda: any(isinstance(e, UserOrder) for e in got))
                # another account sells YES into the bid (as a BUY NO at 0.55: a MINT match)
                sim.state.exchange.place(OTHER, v1.token_ids[1], "BUY", 55, 10 * MICROS)
                assert await until(
                    lambda: any(isinstance(e, UserTrade) and e.status == "CONFIRMED" for e in got)
                )
                assert await until(lambda: feed.counters.pongs >= 3)  # PINGs every 0.2 s
                c = feed.counters
    orders = [e for e in got if isinstance(e, UserOrder)]
    trades = [e for e in got if isinstance(e, UserTrade)]
    assert orders[0].type == "PLACEMENT" and orders[0].id == oid
    assert all(e.market == v1.condition_id for e in got)
    assert [t.status for t in trades] == ["MATCHED", "MINED", "CONFIRMED"]
    assert {t.id for t in trades} == {trades[0].id} and trades[0].trader_side == "MAKER"
    assert c.orders == len(orders) and c.trades == 3 and c.malformed == 0
    assert c.pings > 0 and c.pongs > 1
    recorded = [r for r in RecordingReader(tmp_path / "user.jsonl")]
    assert {r.channel for r in recorded} == {"user"} and len(recorded) == c.frames
    text = (tmp_path / "user.jsonl").read_text() + caplog.text
    assert creds.secret.reveal() not in text and creds.passphrase.reveal() not in text


@asynctest
async def test_market_filter_can_grow_and_shrink_on_the_open_socket() -> None:
    got: list[UserEvent] = []
    async with running_sim(sim_config()) as sim:
        v1, v2 = binaries(sim)
        rest, creds = await login(sim)
        me = Trader(rest)
        async with (
            UserFeed(
                feed_config(sim, v1.condition_id), creds, on_event=lambda ns, ev: got.append(ev)
            ) as feed,
            rest,
        ):
            assert await feed.wait_ready(5)
            await me.buy(v2, v2.token_ids[0], "0.4", "10")
            await feed.subscribe_markets([v2.condition_id])
            await me.buy(v2, v2.token_ids[0], "0.41", "10")
            assert await until(lambda: len(got) == 1)
            await feed.unsubscribe_markets([v2.condition_id])
            await me.buy(v2, v2.token_ids[0], "0.42", "10")
            await me.buy(v1, v1.token_ids[0], "0.43", "10")
            assert await until(lambda: len(got) == 2)
            await asyncio.sleep(0.2)
    assert [(e.market, getattr(e, "price", "")) for e in got] == [
        (v2.condition_id, "0.41"),
        (v1.condition_id, "0.43"),
    ]


@asynctest
async def test_reconnects_after_forced_disconnects_and_keeps_receiving() -> None:
    got: list[UserEvent] = []
    async with running_sim(sim_config(disconnect_every_s=0.4)) as sim:
        v1, _ = binaries(sim)
        rest, creds = await login(sim)
        me = Trader(rest)
        async with (
            UserFeed(feed_config(sim), creds, on_event=lambda ns, ev: got.append(ev)) as feed,
            rest,
        ):
            assert await until(lambda: feed.counters.reconnects >= 2)
            assert await feed.wait_ready(5)
            await me.buy(v1, v1.token_ids[0], "0.44", "10")
            assert await until(lambda: len(got) >= 1)
            c = feed.counters
    assert c.connects >= 3 and c.disconnects >= 2 and c.auth_failures == 0
    assert isinstance(got[0], UserOrder) and got[0].price == "0.44"


@asynctest
async def test_refused_credentials_are_counted_and_never_ready() -> None:
    async with running_sim(sim_config()) as sim:
        rest, creds = await login(sim)
        await rest.aclose()
        wrong = ApiCreds(api_key=creds.api_key, secret=creds.secret, passphrase="nope")
        async with UserFeed(feed_config(sim), wrong) as feed:
            # polls, not one fixed wait: on a loaded machine the first refusal can take > 1 s.
            # ``connected`` is not asserted: it is briefly true on each reconnect before the
            # venue refuses the login again; readiness never is
            for _ in range(150):
                assert not await feed.wait_ready(0.2)
                if feed.counters.auth_failures >= 2:
                    break
            c = feed.counters
            assert c.auth_failures >= 2 and c.reconnects >= 1
            assert (c.frames, c.events, c.orders, c.trades) == (0, 0, 0, 0)
            assert not await feed.wait_ready(0.5)

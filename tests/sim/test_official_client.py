"""The official py-clob-client-v2, unmodified, against the simulator on an ephemeral port.

It decides tick size, neg-risk, fees and order version from the server (``/tick-size``,
``/neg-risk``, ``/version``, ``/markets-by-token`` + ``/clob-markets``), signs with
eth-account, and posts; the simulator verifies the EIP-712 signature per market domain.
Counterparty liquidity is seeded directly on the exchange (``SimThread.call``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from py_clob_client_v2 import ClobClient
from py_clob_client_v2.clob_types import (
    AssetType,
    BalanceAllowanceParams,
    MarketOrderArgsV2,
    OpenOrderParams,
    OrderArgsV2,
    OrderPayload,
    OrderType,
    TradeParams,
)
from py_clob_client_v2.exceptions import PolyApiException

from polylab.market import Market
from polylab.sim import SimConfig, SimThread

KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
ADDRESS = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
COUNTERPARTY = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
S = 1_000_000


def start(**kw: Any) -> SimThread:
    cfg = SimConfig(seed=9, generator=False, mined_delay_s=0.05, confirmed_delay_s=0.1, **kw)
    return SimThread(cfg).start()


@pytest.fixture(scope="module")
def sim() -> Iterator[SimThread]:
    s = start()
    try:
        yield s
    finally:
        s.stop()


def client_for(sim: SimThread) -> ClobClient:
    c = ClobClient(sim.url, 137, key=KEY)
    c.set_api_creds(c.create_or_derive_api_key())
    return c


def pick(sim: SimThread, version: str, neg_risk: bool = False) -> Market:
    ms = sim.call(lambda: list(sim.state.exchange.markets.markets.values()))
    return next(m for m in ms if m.version == version and m.neg_risk == neg_risk)


def seed_asks(sim: SimThread, market: Market, no_price_ticks: int, shares: int) -> None:
    """Counterparty BUYs the second outcome: a first-outcome ask at 1 − price (MINT on a hit)."""
    no = market.token_ids[1]
    r = sim.call(
        lambda: sim.state.exchange.place(COUNTERPARTY, no, "BUY", no_price_ticks, shares * S)
    )
    assert r.success, r.error_msg


def trade_round_trip(sim: SimThread, market: Market, *, use_position_id: bool) -> None:
    c = client_for(sim)
    yes = market.token_ids[0]
    ids = {"position_id": yes} if use_position_id else {"token_id": yes}
    seed_asks(sim, market, 45, 100)  # ask 0.55 × 100

    markets = c.get_markets()
    assert market.condition_id in {m["condition_id"] for m in markets["data"]}
    info = c.get_clob_market_info(market.condition_id)
    assert info["t"][0]["t"] == yes
    book = c.get_order_book(yes)
    assert book["asks"] == [{"price": "0.55", "size": "100"}] and book["bids"] == []

    live = c.create_and_post_order(OrderArgsV2(price=0.40, size=10, side="BUY", **ids))
    assert live["success"] and live["status"] == "live"
    open_ids = [o["id"] for o in c.get_open_orders(OpenOrderParams(asset_id=yes))]
    assert open_ids == [live["orderID"]]
    assert c.cancel_order(OrderPayload(orderID=live["orderID"]))["canceled"] == [live["orderID"]]
    assert c.get_open_orders(OpenOrderParams(asset_id=yes)) == []

    filled = c.create_and_post_market_order(
        MarketOrderArgsV2(amount=11, side="BUY", **ids), order_type=OrderType.FOK
    )
    assert filled["success"] and filled["status"] == "matched"
    assert filled["takingAmount"] == "20" and filled["transactionsHashes"]
    trades = c.get_trades(TradeParams(asset_id=yes))
    assert [t["id"] for t in trades] == filled["tradeIDs"]
    assert (trades[0]["side"], trades[0]["size"], trades[0]["price"]) == ("BUY", "20", "0.55")
    assert trades[0]["maker_orders"][0]["maker_address"] == COUNTERPARTY
    position = c.get_balance_allowance(
        BalanceAllowanceParams(asset_type=AssetType.CONDITIONAL, token_id=yes)
    )
    assert position["balance"] == str(20 * S)
    assert sim.call(lambda: sim.state.exchange.position(ADDRESS, yes)) == 20 * S


def test_official_client_trades_a_ctf_market_signed_for_domain_2(sim: SimThread) -> None:
    trade_round_trip(sim, pick(sim, "v1"), use_position_id=False)


def test_official_client_trades_a_protocol_v2_market_signed_for_domain_3(sim: SimThread) -> None:
    trade_round_trip(sim, pick(sim, "v2"), use_position_id=True)


def test_official_client_signs_neg_risk_markets_for_the_neg_risk_exchange(sim: SimThread) -> None:
    c = client_for(sim)
    m = pick(sim, "v1", neg_risk=True)
    assert c.get_neg_risk(m.token_ids[0]) is True
    res = c.create_and_post_order(
        OrderArgsV2(token_id=m.token_ids[0], price=0.20, size=5, side="BUY")
    )
    assert res["status"] == "live"
    assert c.cancel_all()["canceled"] == [res["orderID"]]


def test_tampered_signature_is_rejected_with_a_clear_400(sim: SimThread) -> None:
    c = client_for(sim)
    order = c.create_order(
        OrderArgsV2(token_id=pick(sim, "v1").token_ids[0], price=0.3, size=10, side="BUY")
    )
    sig = order.signature
    order.signature = sig[:10] + ("0" if sig[10] != "0" else "1") + sig[11:]
    with pytest.raises(PolyApiException) as err:
        c.post_order(order)
    assert err.value.status_code == 400
    assert err.value.error_msg["error"].startswith("invalid signature")


def test_order_signed_for_the_wrong_domain_is_rejected_and_named(sim: SimThread) -> None:
    c = client_for(sim)
    up = pick(sim, "v2").token_ids[0]
    # token_id instead of position_id: the client signs for CTFExchangeV2 (domain "2")
    order = c.create_order(OrderArgsV2(token_id=up, price=0.3, size=10, side="BUY"))
    with pytest.raises(PolyApiException) as err:
        c.post_order(order)
    assert err.value.status_code == 400
    message = err.value.error_msg["error"]
    assert 'domain version "3"' in message and 'signed for domain version "2"' in message


def test_official_client_signs_legacy_v1_orders_when_the_sim_runs_v1() -> None:
    sim = start(order_version="v1")
    try:
        c = client_for(sim)
        assert c.get_version() == 1
        m = pick(sim, "v1")
        seed_asks(sim, m, 45, 50)
        res = c.create_and_post_market_order(
            MarketOrderArgsV2(token_id=m.token_ids[0], amount=5.5, side="BUY")
        )
        assert res["status"] == "matched" and res["takingAmount"] == "10"
        live = c.create_and_post_order(
            OrderArgsV2(token_id=m.token_ids[0], price=0.5, size=5, side="BUY")
        )
        assert live["status"] == "live"
    finally:
        sim.stop()

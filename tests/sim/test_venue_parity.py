"""Where the simulator used to differ from the venue (issue 9 §4): maker addresses in trades,
``GET /data/order/{id}`` for inactive orders, and funding/approvals.

The approval flow runs through the official py-clob-client-v2 (signing, L2 headers,
``/balance-allowance/update``) against a simulator on an ephemeral port, and once through
``polylab sim serve --require-approval`` in a subprocess.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from py_clob_client_v2 import ClobClient
from py_clob_client_v2.clob_types import (
    AssetType,
    BalanceAllowanceParams,
    MarketOrderArgsV2,
    OrderArgsV2,
    OrderPayload,
    OrderType,
)
from py_clob_client_v2.exceptions import PolyApiException

from polylab.execution.eip712 import to_checksum_address
from polylab.market import Market
from polylab.sim import SimConfig, SimThread
from polylab.sim.exchange import Exchange
from polylab.sim.generator import GeneratorConfig, MarketGenerator
from polylab.sim.sports import Scoreboard

KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
ADDRESS = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
COUNTERPARTY = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
S = 1_000_000
ALLOWANCE_ERROR = "not enough balance / allowance"
HEX_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")


def start(**kw: Any) -> SimThread:
    cfg = SimConfig(seed=9, generator=False, mined_delay_s=0.05, confirmed_delay_s=0.1, **kw)
    return SimThread(cfg).start()


@pytest.fixture
def sim() -> Iterator[SimThread]:
    s = start()
    try:
        yield s
    finally:
        s.stop()


def client_for(url: str) -> ClobClient:
    c = ClobClient(url, 137, key=KEY)
    c.set_api_creds(c.create_or_derive_api_key())
    return c


def ctf_market(sim: SimThread) -> Market:
    ms = sim.call(lambda: list(sim.state.exchange.markets.markets.values()))
    return next(m for m in ms if m.version == "v1" and not m.neg_risk)


# -- makers ----------------------------------------------------------------------------------------
def test_generated_traders_trade_under_checksummed_0x_addresses() -> None:
    cfg = GeneratorConfig(seed=11, binary_markets=3, negrisk_events=1, steps_per_s=100)
    ex = Exchange(seed=cfg.seed)
    gen = MarketGenerator(SimpleNamespace(exchange=ex, scoreboard=Scoreboard(), config=None), cfg)
    gen.setup()
    for _ in range(3000):
        gen.step()
    trades = list(ex.ledger.trades.values())
    assert len(trades) >= 20
    rows = [t.to_json("TAKER") for t in trades]
    addresses = {r["maker_address"] for r in rows} | {
        m["maker_address"] for r in rows for m in r["maker_orders"]
    }
    assert len(addresses) >= 3
    for a in addresses:
        assert HEX_ADDRESS.match(a) and to_checksum_address(a) == a, a


# -- GET /data/order/{id} --------------------------------------------------------------------------
def test_data_order_answers_active_orders_only_as_the_venue_does(sim: SimThread) -> None:
    c = client_for(sim.url)
    m = ctf_market(sim)
    yes, no = m.token_ids
    live = c.create_and_post_order(OrderArgsV2(token_id=yes, price=0.40, size=10, side="BUY"))
    got = c.get_order(live["orderID"])
    assert got["id"] == live["orderID"] and got["status"] == "LIVE"
    assert c.cancel_order(OrderPayload(orderID=live["orderID"]))["canceled"] == [live["orderID"]]
    assert c.get_order(live["orderID"]) is None  # cancelled: empty, like an unknown id
    r = sim.call(lambda: sim.state.exchange.place(COUNTERPARTY, no, "BUY", 45, 100 * S))
    assert r.success
    filled = c.create_and_post_market_order(
        MarketOrderArgsV2(token_id=yes, amount=11, side="BUY"), order_type=OrderType.FOK
    )
    assert filled["status"] == "matched"
    assert c.get_order(filled["orderID"]) is None  # filled: empty too
    # a resting order partly filled is still active and still answered
    part = c.create_and_post_order(OrderArgsV2(token_id=no, price=0.50, size=20, side="BUY"))
    hit = sim.call(lambda: sim.state.exchange.place(COUNTERPARTY, yes, "BUY", 50, 10 * S))
    assert part["status"] == "live" and hit.status == "matched"
    got = c.get_order(part["orderID"])
    assert got["status"] == "LIVE" and got["size_matched"] == "10"
    assert c.get_order("0x" + "0" * 64) is None


# -- funding and approvals -------------------------------------------------------------------------
def allowances(c: ClobClient) -> set[str]:
    ba = c.get_balance_allowance(BalanceAllowanceParams(asset_type=AssetType.COLLATERAL))
    assert ba["balance"] == str(10_000 * S)  # funded in both modes
    return set(ba["allowances"].values())


def test_by_default_a_new_address_is_funded_and_approved(sim: SimThread) -> None:
    c = client_for(sim.url)
    assert allowances(c) == {str(2**256 - 1)}
    res = c.create_and_post_order(
        OrderArgsV2(token_id=ctf_market(sim).token_ids[0], price=0.40, size=10, side="BUY")
    )
    assert res["success"] and res["status"] == "live"


def refused(c: ClobClient, token: str) -> str:
    with pytest.raises(PolyApiException) as err:
        c.create_and_post_order(OrderArgsV2(token_id=token, price=0.01, size=10, side="BUY"))
    assert err.value.status_code == 400
    return str(err.value.error_msg["error"])


def approval_round_trip(url: str, token: str) -> None:
    """Refused → update alone changes nothing → approve alone changes nothing → update → ok."""
    c = client_for(url)
    assert allowances(c) == {"0"}
    assert refused(c, token).startswith(ALLOWANCE_ERROR)
    c.update_balance_allowance(BalanceAllowanceParams(asset_type=AssetType.COLLATERAL))
    assert refused(c, token).startswith(ALLOWANCE_ERROR)  # nothing approved on chain yet
    r = httpx.post(url + "/sim/approve", json={"address": ADDRESS.lower()})
    assert r.status_code == 200 and r.json() == {"address": ADDRESS, "approved": True}
    assert refused(c, token).startswith(ALLOWANCE_ERROR)  # the CLOB has not re-read yet
    assert allowances(c) == {"0"}
    c.update_balance_allowance(BalanceAllowanceParams(asset_type=AssetType.COLLATERAL))
    assert allowances(c) == {str(2**256 - 1)}
    # a bid at 0.01 rests even on a generated market
    res = c.create_and_post_order(OrderArgsV2(token_id=token, price=0.01, size=10, side="BUY"))
    assert res["success"] and res["status"] == "live"


def test_require_approval_starts_addresses_with_zero_allowance() -> None:
    sim = start(require_approval=True)
    try:
        m = ctf_market(sim)
        approval_round_trip(sim.url, m.token_ids[0])
        # another new address is refused again, for SELLs too, and bad input is a clear 400
        other = sim.call(
            lambda: sim.state.exchange.place(COUNTERPARTY, m.token_ids[1], "SELL", 50, 10 * S)
        )
        assert not other.success and other.error_msg.startswith(ALLOWANCE_ERROR)
        bad = httpx.post(sim.url + "/sim/approve", json={"address": "0x12"})
        assert bad.status_code == 400 and "0x12" in bad.json()["error"]
    finally:
        sim.stop()


def test_cli_serve_require_approval_flag() -> None:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(
        [sys.executable, "-m", "polylab.cli", "sim", "serve", "--port", "0", "--require-approval"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        found = re.search(r"(http://127\.0\.0\.1:\d+) \(REST\)", line)
        assert found, (line, proc.stderr.read() if proc.poll() is not None else "")
        url = found.group(1)
        markets = httpx.get(url + "/markets").json()["data"]
        token = next(
            t["token_id"] for mk in markets if not mk["neg_risk"] for t in mk["tokens"][:1]
        )
        approval_round_trip(url, token)
    finally:
        proc.terminate()
        proc.wait(10)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()

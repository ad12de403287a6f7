"""The simulator's CLOB REST API over real sockets (aiohttp client, ephemeral port): shapes,
errors, paging, L1/L2 auth, signed orders of both generations, heartbeats, faults, config."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from py_clob_client_v2.utilities import (
    generate_orderbook_summary_hash,
    parse_raw_orderbook_summary,
)

from polylab.execution.auth import ApiCreds, json_body, l1_headers, l2_headers
from polylab.execution.eip712 import SigningKey
from polylab.execution.signer import OrderSigner
from polylab.execution.signing_v1 import exchange_domain_v1, order_amounts
from polylab.execution.signing_v2 import exchange_domain, order_to_json
from polylab.fees import FeeModel
from polylab.market import Market
from polylab.money import size_to_str
from polylab.sim.config import ConfigError, SimConfig, load_config
from polylab.sim.faults import FaultConfig
from polylab.sim.server import SimHandle, running_sim

KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
SIGNER = SigningKey(KEY)
ADDRESS = SIGNER.address
OTHER = "0x00000000000000000000000000000000000000b2"
S = 1_000_000


def run(fn: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(fn(), 25))


def quiet(**kw: Any) -> SimConfig:
    return SimConfig(seed=5, generator=False, **kw)


def markets(sim: SimHandle) -> tuple[Market, Market, list[Market]]:
    ms = list(sim.state.exchange.markets.markets.values())
    v1 = next(m for m in ms if m.version == "v1" and not m.neg_risk)
    v2 = next(m for m in ms if m.version == "v2")
    return v1, v2, [m for m in ms if m.neg_risk]


class Client:
    """A tiny signed client over aiohttp, built on polylab's own signing code."""

    def __init__(self, http: aiohttp.ClientSession, url: str) -> None:
        self.http, self.url = http, url
        self.creds: ApiCreds | None = None

    async def get(self, path: str, **params: str) -> tuple[int, Any]:
        async with self.http.get(self.url + path, params=params) as r:
            return r.status, await r.json(content_type=None)

    async def post(self, path: str, body: Any) -> tuple[int, Any]:
        async with self.http.post(self.url + path, data=json.dumps(body)) as r:
            return r.status, await r.json(content_type=None)

    async def derive(self, nonce: int = 0, ts: int | None = None) -> tuple[int, Any]:
        headers = l1_headers(SIGNER, 137, nonce=nonce, timestamp=ts)
        async with self.http.get(self.url + "/auth/derive-api-key", headers=headers) as r:
            body = await r.json(content_type=None)
        if r.status == 200:
            self.creds = ApiCreds(
                api_key=body["apiKey"], secret=body["secret"], passphrase=body["passphrase"]
            )
        return r.status, body

    async def l2(
        self, method: str, path: str, body: Any = None, ts: int | None = None, **params: str
    ) -> tuple[int, Any]:
        assert self.creds is not None
        text = None if body is None else json_body(body)
        headers = l2_headers(ADDRESS, self.creds, method, path, text, timestamp=ts)
        async with self.http.request(
            method, self.url + path, headers=headers, data=text, params=params
        ) as r:
            return r.status, await r.json(content_type=None)


def signed_v2(
    token: str,
    side: str,
    price: str,
    size: str,
    domain_version: int,
    neg_risk: bool = False,
    **kw: Any,
) -> Any:
    signer = OrderSigner(KEY)
    domain = exchange_domain(domain_version, 137, neg_risk=neg_risk)
    return signer.limit_order_v2(int(token), side, price, size, "0.01", domain, **kw)


def test_public_reads_have_the_venue_shapes_and_errors() -> None:
    async def scenario() -> None:
        async with running_sim(quiet(page_size=2)) as sim, aiohttp.ClientSession() as http:
            c = Client(http, sim.url)
            v1, v2, nr = markets(sim)
            assert (await c.get("/version")) == (200, {"version": 2})
            status, t = await c.get("/time")
            assert status == 200 and abs(t - time.time()) < 60
            cursors, ids = [], []
            cursor = "MA=="
            while cursor != "LTE=":
                status, pg = await c.get("/markets", next_cursor=cursor)
                cursors.append(pg["next_cursor"])
                ids += [m["condition_id"] for m in pg["data"]]
                cursor = pg["next_cursor"]
            assert cursors == ["Mg==", "NA==", "LTE="] and len(ids) == 5
            status, m = await c.get(f"/markets/{v1.condition_id}")
            assert [t["token_id"] for t in m["tokens"]] == list(v1.token_ids)
            assert m["minimum_tick_size"] == 0.01 and m["taker_base_fee"] == 1000
            status, cm = await c.get(f"/clob-markets/{v2.condition_id}")
            assert cm["t"] == [
                {"t": v2.token_ids[0], "o": "Up"},
                {"t": v2.token_ids[1], "o": "Down"},
            ]
            assert (cm["mts"], cm["mos"], cm["nr"], cm["fd"], cm["v"]) == (
                0.01,
                5,
                False,
                {"r": 0.07, "e": 1, "to": True},
                "v2",
            )
            async with http.get(sim.url + "/tick-size", params={"token_id": v1.token_ids[0]}) as r:
                assert await r.text() == '{"minimum_tick_size":0.01}'
            assert (await c.get("/neg-risk", token_id=nr[0].token_ids[1]))[1] == {"neg_risk": True}
            assert (await c.get("/fee-rate", token_id=nr[0].token_ids[0]))[1] == {"base_fee": 0}
            assert (await c.get(f"/markets-by-token/{v2.token_ids[1]}"))[1]["condition_id"] == (
                v2.condition_id
            )
            assert await c.get("/book", token_id="123") == (
                404,
                {"error": "No orderbook exists for the requested token id"},
            )
            assert await c.get("/book") == (400, {"error": "Invalid token id"})
            assert await c.get("/price", token_id=v1.token_ids[0], side="UP") == (
                400,
                {"error": "Invalid side"},
            )
            assert (await c.get("/markets/0x12"))[0] == 400
            assert (await c.get("/markets/0x" + "0" * 64)) == (404, {"error": "market not found"})

    run(scenario)


def test_books_are_best_last_and_their_hash_verifies_with_the_official_helper() -> None:
    async def scenario() -> None:
        async with (
            running_sim(quiet(max_tokens_per_request=2)) as sim,
            aiohttp.ClientSession() as http,
        ):
            c = Client(http, sim.url)
            v1, _, _ = markets(sim)
            yes, no = v1.token_ids
            ex = sim.state.exchange
            for p in (40, 45, 42):
                ex.place(OTHER, yes, "BUY", p, 10 * S)
            ex.place(OTHER, no, "BUY", 40, 10 * S)  # YES ask 0.60
            ex.place(OTHER, no, "BUY", 45, 7 * S)  # YES ask 0.55
            status, book = await c.get("/book", token_id=yes)
            assert status == 200
            assert [lv["price"] for lv in book["bids"]] == ["0.4", "0.42", "0.45"]
            assert [lv["price"] for lv in book["asks"]] == ["0.6", "0.55"]
            assert (
                generate_orderbook_summary_hash(parse_raw_orderbook_summary(book)) == (book["hash"])
            )
            _, books = await c.post("/books", [{"token_id": yes}, {"token_id": no}])
            assert [b["asset_id"] for b in books] == [yes, no]
            assert books[1]["bids"] == [
                {"price": "0.4", "size": "10"},
                {"price": "0.45", "size": "7"},
            ]
            assert await c.post("/books", [{"token_id": yes}] * 3) == (
                400,
                {"error": "Payload exceeds the limit"},
            )
            assert (await c.get("/price", token_id=yes, side="BUY"))[1] == {"price": "0.45"}
            assert (await c.get("/price", token_id=yes, side="SELL"))[1] == {"price": "0.55"}
            assert (await c.get("/midpoint", token_id=no))[1] == {"mid": "0.5"}
            assert (await c.get("/spread", token_id=yes))[1] == {"spread": "0.1"}
            ex.split(OTHER, v1.condition_id, 5 * S)
            ex.place(OTHER, yes, "SELL", 45, 5 * S, "FAK")
            assert (await c.get("/last-trade-price", token_id=yes))[1] == {
                "price": "0.45",
                "side": "SELL",
            }

    run(scenario)


def test_l1_derives_deterministic_keys_and_refuses_stale_or_forged_headers() -> None:
    async def scenario() -> None:
        async with running_sim(quiet()) as sim, aiohttp.ClientSession() as http:
            c = Client(http, sim.url)
            status, first = await c.derive(nonce=0)
            assert status == 200 and set(first) == {"apiKey", "secret", "passphrase"}
            assert (await c.derive(nonce=0))[1] == first
            assert (await c.derive(nonce=1))[1]["apiKey"] != first["apiKey"]
            headers = l1_headers(SIGNER, 137)
            async with http.post(sim.url + "/auth/api-key", headers=headers) as r:
                assert r.status == 200 and (await r.json())["apiKey"] == first["apiKey"]
            stale = await c.derive(ts=int(time.time()) - 3600)
            assert stale == (401, {"error": "Invalid L1 Request headers"})
            forged = dict(l1_headers(SIGNER, 137), POLY_ADDRESS=OTHER)
            async with http.get(sim.url + "/auth/derive-api-key", headers=forged) as r:
                assert r.status == 401
            wrong_chain = l1_headers(SIGNER, 80002)
            async with http.get(sim.url + "/auth/derive-api-key", headers=wrong_chain) as r:
                assert r.status == 401

    run(scenario)


def test_l2_refuses_wrong_secret_stale_timestamp_and_tampered_body() -> None:
    async def scenario() -> None:
        async with running_sim(quiet()) as sim, aiohttp.ClientSession() as http:
            c = Client(http, sim.url)
            await c.derive()
            assert (await c.l2("GET", "/data/orders"))[0] == 200
            assert await c.l2("GET", "/data/orders", ts=int(time.time()) - 301) == (
                401,
                {"error": "Unauthorized/Invalid api key"},
            )
            assert c.creds is not None
            good = c.creds
            c.creds = ApiCreds(
                api_key=good.api_key, secret="A" * 43 + "=", passphrase=good.passphrase
            )
            assert (await c.l2("GET", "/data/orders"))[0] == 401
            c.creds = good
            headers = l2_headers(ADDRESS, good, "DELETE", "/order", json_body({"orderID": "0x1"}))
            async with http.delete(
                sim.url + "/order", headers=headers, data=json_body({"orderID": "0x2"})
            ) as r:
                assert r.status == 401
            async with http.get(sim.url + "/data/trades") as r:
                assert r.status == 401

    run(scenario)


def test_signed_orders_rest_cancel_fill_and_report_over_rest() -> None:
    async def scenario() -> None:
        async with running_sim(quiet()) as sim, aiohttp.ClientSession() as http:
            c = Client(http, sim.url)
            await c.derive()
            assert c.creds is not None
            v1, _, _ = markets(sim)
            yes, no = v1.token_ids
            gtc = signed_v2(yes, "BUY", "0.40", "10", 2)
            status, res = await c.l2("POST", "/order", order_to_json(gtc, c.creds.api_key, "GTC"))
            assert status == 200 and res["status"] == "live" and res["orderID"] == gtc.order_hash
            status, pg = await c.l2("GET", "/data/orders", market=v1.condition_id)
            assert [o["id"] for o in pg["data"]] == [gtc.order_hash]
            assert pg["data"][0]["owner"] == c.creds.api_key
            assert pg["next_cursor"] == "LTE="
            status, one = await c.l2("GET", f"/data/order/{gtc.order_hash}")
            assert one["status"] == "LIVE" and one["original_size"] == "10"
            status, bal = await c.l2("GET", "/balance-allowance", asset_type="COLLATERAL")
            assert bal["balance"] == str(10_000 * S)
            assert sim.state.exchange.free_balance(ADDRESS) == 10_000 * S - 4 * S
            status, out = await c.l2("DELETE", "/order", {"orderID": gtc.order_hash})
            assert out == {"canceled": [gtc.order_hash], "not_canceled": {}}
            status, out = await c.l2("DELETE", "/orders", [gtc.order_hash])
            assert out["canceled"] == [] and gtc.order_hash in out["not_canceled"]
            sim.state.exchange.place(OTHER, no, "BUY", 45, 50 * S)  # YES ask 0.55
            fok = signed_v2(yes, "BUY", "0.55", "10", 2, market=True)  # $10 market buy
            bad = signed_v2(yes, "BUY", "0.55", "10", 2, market=True)
            tampered = order_to_json(bad, c.creds.api_key, "FOK")
            tampered["order"]["makerAmount"] = "20000000"
            status, legs = await c.l2(
                "POST", "/orders", [order_to_json(fok, c.creds.api_key, "FOK"), tampered]
            )
            assert status == 200 and legs[0]["status"] == "matched"
            # $10 buys 18.18 shares (whole cents) at 0.55 = 9.999, plus the taker fee
            fee = FeeModel.from_rate("0.07").fee(18_180_000, 550_000)
            assert legs[0]["makingAmount"] == size_to_str(9_999_000 + fee)
            assert legs[0]["takingAmount"] == "18.18" and legs[0]["transactionsHashes"]
            assert legs[1]["orderID"] == "" and legs[1]["errorMsg"].startswith("invalid signature")
            status, trades = await c.l2("GET", "/data/trades")
            assert [t["id"] for t in trades["data"]] == legs[0]["tradeIDs"]
            assert trades["data"][0]["size"] == "18.18" and trades["data"][0]["price"] == "0.55"
            status, pos = await c.l2(
                "GET", "/balance-allowance", asset_type="CONDITIONAL", token_id=yes
            )
            assert pos["balance"] == "18180000"
            too_many = [order_to_json(fok, c.creds.api_key, "FOK")] * 16
            assert await c.l2("POST", "/orders", too_many) == (
                400,
                {"error": "Too many orders in payload: 16, max allowed: 15"},
            )
            other_owner = order_to_json(gtc, "someone-else", "GTC")
            assert await c.l2("POST", "/order", other_owner) == (
                400,
                {"error": "the order owner has to be the owner of the API KEY"},
            )

    run(scenario)


def test_order_checks_are_400_errors_with_the_venue_messages() -> None:
    async def scenario() -> None:
        async with running_sim(quiet()) as sim, aiohttp.ClientSession() as http:
            c = Client(http, sim.url)
            await c.derive()
            assert c.creds is not None
            key = c.creds.api_key
            v1, v2, nr = markets(sim)
            fok = signed_v2(v1.token_ids[0], "BUY", "0.50", "10", 2)
            assert await c.l2("POST", "/order", order_to_json(fok, key, "FOK")) == (
                400,
                {"error": "order couldn't be fully filled. FOK orders are fully filled or killed."},
            )
            wrong = signed_v2(v2.token_ids[0], "BUY", "0.50", "10", 2)
            status, err = await c.l2("POST", "/order", order_to_json(wrong, key, "GTC"))
            assert status == 400 and 'domain version "3"' in err["error"]
            assert 'signed for domain version "2"' in err["error"]
            not_nr = signed_v2(nr[0].token_ids[0], "BUY", "0.50", "10", 2, neg_risk=False)
            status, err = await c.l2("POST", "/order", order_to_json(not_nr, key, "GTC"))
            assert status == 400 and err["error"].startswith("invalid signature")
            ok_nr = signed_v2(nr[0].token_ids[0], "BUY", "0.50", "10", 2, neg_risk=True)
            assert (await c.l2("POST", "/order", order_to_json(ok_nr, key, "GTC")))[0] == 200
            early = signed_v2(
                v1.token_ids[0], "BUY", "0.30", "10", 2, expiration=int(time.time()) + 10
            )
            assert await c.l2("POST", "/order", order_to_json(early, key, "GTD")) == (
                400,
                {"error": "invalid expiration"},
            )
            gtd = signed_v2(
                v1.token_ids[0], "BUY", "0.30", "10", 2, expiration=int(time.time()) + 600
            )
            status, res = await c.l2("POST", "/order", order_to_json(gtd, key, "GTD"))
            assert status == 200 and res["status"] == "live"
            signer = OrderSigner(KEY)
            odd = signer.order_v2(int(v1.token_ids[0]), 0, 3_005_000, 10_000_000)
            off_grid = signer.sign_v2(odd, exchange_domain(2, 137))
            status, err = await c.l2("POST", "/order", order_to_json(off_grid, key, "GTC"))
            assert (status, err["error"]) == (
                400,
                f"order {off_grid.order_hash} is invalid. "
                "Price (0.300500) breaks minimum tick size "
                "rule: 0.01",
            )

    run(scenario)


def test_legacy_v1_generation_is_selectable_and_mismatches_are_named() -> None:
    async def scenario() -> None:
        signer = OrderSigner(KEY)
        maker, taker = order_amounts("BUY", "0.40", "10", "0.01")
        for version in ("v1", "v2"):
            async with (
                running_sim(quiet(order_version=version)) as sim,
                aiohttp.ClientSession() as http,
            ):
                c = Client(http, sim.url)
                await c.derive()
                assert c.creds is not None
                assert (await c.get("/version"))[1] == {"version": 1 if version == "v1" else 2}
                yes = markets(sim)[0].token_ids[0]
                legacy = signer.sign_v1(
                    signer.order_v1(int(yes), 0, maker, taker), exchange_domain_v1(137)
                )
                modern = signed_v2(yes, "BUY", "0.40", "10", 2)
                s1, r1 = await c.l2("POST", "/order", order_to_json(legacy, c.creds.api_key, "GTC"))
                s2, r2 = await c.l2("POST", "/order", order_to_json(modern, c.creds.api_key, "GTC"))
                if version == "v1":
                    assert s1 == 200 and r1["orderID"] == legacy.order_hash
                    assert (s2, r2) == (400, {"error": "order_version_mismatch"})
                else:
                    assert (s1, r1) == (400, {"error": "order_version_mismatch"})
                    assert s2 == 200

    run(scenario)


def test_heartbeat_lapse_cancels_all_orders_of_the_key() -> None:
    async def scenario() -> None:
        async with (
            running_sim(quiet(heartbeat_timeout_s=0.5)) as sim,
            aiohttp.ClientSession() as http,
        ):
            c = Client(http, sim.url)
            await c.derive()
            assert c.creds is not None
            yes = markets(sim)[0].token_ids[0]
            order = signed_v2(yes, "BUY", "0.40", "10", 2)
            await c.l2("POST", "/order", order_to_json(order, c.creds.api_key, "GTC"))
            status, hb = await c.l2("POST", "/v1/heartbeats", {"heartbeat_id": ""})
            assert status == 200 and hb["heartbeat_id"]
            assert (await c.l2("POST", "/v1/heartbeats", {"heartbeat_id": "nope"}))[0] == 400
            assert (await c.l2("POST", "/v1/heartbeats", hb))[1] == hb
            assert len((await c.l2("GET", "/data/orders"))[1]["data"]) == 1
            for _ in range(100):
                await asyncio.sleep(0.05)
                if not (await c.l2("GET", "/data/orders"))[1]["data"]:
                    break
            assert (await c.l2("GET", "/data/orders"))[1]["data"] == []

    run(scenario)


def test_rest_fault_injection_answers_429() -> None:
    async def scenario() -> None:
        cfg = quiet(faults=FaultConfig(http_429_prob=1.0))
        async with running_sim(cfg) as sim, aiohttp.ClientSession() as http:
            assert await Client(http, sim.url).get("/markets") == (
                429,
                {"error": "Too Many Requests"},
            )

    run(scenario)


def test_load_config_reads_json_and_toml_and_names_the_bad_field(tmp_path: Path) -> None:
    good = tmp_path / "sim.toml"
    good.write_text('seed = 11\norder_version = "v1"\n[faults]\ndrop_prob = 0.1\n')
    cfg = load_config(good)
    assert (cfg.seed, cfg.order_version, cfg.faults.drop_prob) == (11, "v1", 0.1)
    bad = tmp_path / "sim.json"
    bad.write_text(json.dumps({"faults": {"drop_prob": 2}}))
    with pytest.raises(ConfigError, match=r"\$\.faults\.drop_prob"):
        load_config(bad)
    bad.write_text(json.dumps({"starting_collateral": 5}))
    with pytest.raises(ConfigError, match="starting_collateral"):
        load_config(bad)
    with pytest.raises(ConfigError, match=r"must be \.json or \.toml"):
        load_config(tmp_path / "sim.yaml")


def test_trades_settle_matched_mined_confirmed_on_the_server_clock() -> None:
    async def scenario() -> None:
        cfg = quiet(mined_delay_s=0.05, confirmed_delay_s=0.1)
        async with running_sim(cfg) as sim, aiohttp.ClientSession() as http:
            c = Client(http, sim.url)
            await c.derive()
            assert c.creds is not None
            v1, _, _ = markets(sim)
            sim.state.exchange.place(OTHER, v1.token_ids[1], "BUY", 50, 20 * S)
            fok = signed_v2(v1.token_ids[0], "BUY", "0.50", "10", 2)
            status, res = await c.l2("POST", "/order", order_to_json(fok, c.creds.api_key, "FOK"))
            assert status == 200 and res["status"] == "matched"
            seen: list[str] = []
            for _ in range(250):
                status, pg = await c.l2("GET", "/data/trades", id=res["tradeIDs"][0])
                if not seen or seen[-1] != pg["data"][0]["status"]:
                    seen.append(pg["data"][0]["status"])
                if seen[-1] == "CONFIRMED":
                    break
                await asyncio.sleep(0.02)
            assert seen[-1] == "CONFIRMED" and set(seen) <= {"MATCHED", "MINED", "CONFIRMED"}
            maker_view = sim.state.exchange.trades(OTHER)
            assert maker_view[0]["trader_side"] == "MAKER"
            assert maker_view[0]["status"] == "CONFIRMED"

    run(scenario)

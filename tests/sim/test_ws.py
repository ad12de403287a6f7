"""The simulator's /ws/market and /ws/user over real sockets (websockets client, ephemeral port).

Quiet runs (``generator=False``) list the deterministic seed markets only, and the test places
orders itself through ``state.exchange``, so every frame it expects is known in advance.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
import pytest
import websockets

from polylab.book.registry import BookRegistry, mirror_mismatches
from polylab.feed.decode import market_decoder
from polylab.feed.wire import PriceChange
from polylab.market import Market
from polylab.money import MICROS, parse_micros
from polylab.sim.config import SimConfig
from polylab.sim.faults import FaultConfig, FrameFaults, http_fault, order_reject
from polylab.sim.server import running_sim

TESTER = "0x00000000000000000000000000000000000000a1"
OTHER = "0x00000000000000000000000000000000000000b2"


def run(coro_fn: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(coro_fn(), 25))


async def recv_for(
    ws: Any, seconds: float, stop: Callable[[list[str]], bool] | None = None
) -> list[str]:
    """Frames received within ``seconds`` (or until ``stop(frames)``)."""
    out: list[str] = []
    end = time.monotonic() + seconds
    while time.monotonic() < end and not (stop and stop(out)):
        try:
            out.append(await asyncio.wait_for(ws.recv(), end - time.monotonic()))
        except TimeoutError:
            break
    return out


def quiet(**kw: Any) -> SimConfig:
    return SimConfig(seed=3, generator=False, mined_delay_s=0.05, confirmed_delay_s=0.1, **kw)


def binary_markets(state: Any) -> list[Market]:
    return [m for m in state.exchange.markets.markets.values() if not m.neg_risk]


async def subscribe(url: str, assets: list[str], custom: bool = False, **extra: Any) -> Any:
    ws = await websockets.connect(url + "/ws/market")
    await ws.send(
        json.dumps(
            {"assets_ids": assets, "type": "market", "custom_feature_enabled": custom, **extra}
        )
    )
    return ws


def place_ladder(state: Any, token: str, n: int, owner: str = TESTER) -> list[int]:
    """BUY 10 shares at 0.01 … n/100 on ``token`` (each rests: one price_change each)."""
    for k in range(1, n + 1):
        res = state.exchange.place(owner, token, "BUY", k, 10 * MICROS)
        assert res.success and res.status == "live", res
    return list(range(1, n + 1))


def pc_entries(frames: list[str]) -> list[dict[str, Any]]:
    out = []
    for f in frames:
        if f.startswith("{") and '"price_change"' in f:
            out.extend(json.loads(f)["price_changes"])
    return out


# -- market channel ------------------------------------------------------------------------------
def test_initial_dump_array_then_single_objects_and_ping_pong() -> None:
    async def main() -> None:
        async with running_sim(quiet()) as sim:
            ms = list(sim.state.exchange.markets.markets.values())
            tokens = [t for m in ms for t in m.token_ids]
            place_ladder(sim.state, ms[0].token_ids[0], 3)
            ws = await subscribe(sim.ws_url, tokens, custom=True)
            first = await ws.recv()
            books = json.loads(first)
            assert isinstance(books, list) and len(books) == len(tokens)
            assert {b["asset_id"] for b in books} == set(tokens)
            v2 = {t for m in ms if m.version == "v2" for t in m.token_ids}
            assert v2
            for b in books:
                assert b["event_type"] == "book" and b["tick_size"] in ("0.01", "0.001")
                assert b["last_trade_price"] == ""
                assert (b.get("version") == "v2") == (b["asset_id"] in v2)
            yes = next(b for b in books if b["asset_id"] == ms[0].token_ids[0])
            assert [lv["price"] for lv in yes["bids"]] == ["0.01", "0.02", "0.03"]  # best last
            await ws.send("PING")
            place_ladder(sim.state, ms[0].token_ids[0], 4)
            frames = await recv_for(ws, 3, lambda fs: "PONG" in fs and len(fs) >= 2)
            assert "PONG" in frames
            later = [f for f in frames if f != "PONG"]
            assert later and all(f.startswith("{") for f in later)
            assert all(isinstance(json.loads(f), dict) for f in later)
            assert '", "' in later[0]  # the venue's separators on later frames
            await ws.close()

    run(main)


def test_live_sim_price_changes_mirror_and_rebuild_with_zero_mismatches() -> None:
    async def main() -> None:
        async with running_sim(SimConfig(seed=5, steps_per_s=150)) as sim:
            cat = sim.state.exchange.markets
            tokens = list(cat.by_token)
            ws = await subscribe(sim.ws_url, tokens)
            frames = await recv_for(ws, 3.0)
            await ws.close()
            reg = BookRegistry(cat, verify=True)
            dec = market_decoder()
            mirrored = pcs = 0
            for f in frames:
                for ev in dec.decode(f):
                    reg.apply(ev, time.time_ns())
                    if isinstance(ev, PriceChange) and ev.price_changes:
                        pcs += 1
                        ents = {
                            (e.asset_id, parse_micros(e.price), e.side, e.size)
                            for e in ev.price_changes
                        }
                        m = cat.by_token[ev.price_changes[0].asset_id]
                        yes, no = m.token_ids
                        flip = {"BUY": "SELL", "SELL": "BUY"}
                        mirror = {
                            (no if a == yes else yes, MICROS - p, flip[s], z) for a, p, s, z in ents
                        }
                        mirrored += mirror == ents
            assert dec.stats.malformed == 0
            assert reg.stats.checked > 50 and reg.stats.mismatches == 0, reg.mismatch_log[:3]
            assert pcs > 20 and mirrored == pcs
            assert reg.stats.trades > 0 and reg.stats.snapshots > len(tokens)
            for m in cat.markets.values():
                yes_b, no_b = reg.books.get(m.token_ids[0]), reg.books.get(m.token_ids[1])
                if yes_b is not None and no_b is not None:
                    assert mirror_mismatches(yes_b, no_b) == 0

    run(main)


def test_custom_feature_gates_best_bid_ask_new_market_and_market_resolved() -> None:
    async def main() -> None:
        async with running_sim(quiet()) as sim:
            ex = sim.state.exchange
            m = binary_markets(sim.state)[0]
            plain = await subscribe(sim.ws_url, list(m.token_ids), custom=False)
            custom = await subscribe(sim.ws_url, list(m.token_ids), custom=True)
            lurker = await subscribe(sim.ws_url, [], custom=True)  # subscribed to nothing
            for w in (plain, custom):
                assert json.loads(await w.recv())[0]["event_type"] == "book"
            await lurker.send("PING")  # its subscription is in once the PONG is back
            assert await asyncio.wait_for(lurker.recv(), 3) == "PONG"
            place_ladder(sim.state, m.token_ids[0], 2)
            new = Market(
                condition_id="0x" + "ab" * 32,
                token_ids=("1" * 77, "2" * 77),
                question="A late listing?",
                slug="a-late-listing",
            )
            ex.add_market(new)
            ex.resolve(m.condition_id, m.token_ids[0])

            def kinds(fs: list[str]) -> set[str]:
                return {
                    e.get("event_type")
                    for f in fs
                    if f.startswith(("{", "["))
                    for e in (lambda x: x if isinstance(x, list) else [x])(json.loads(f))
                }

            got_custom = kinds(await recv_for(custom, 2, lambda fs: "market_resolved" in kinds(fs)))
            got_plain = kinds(await recv_for(plain, 0.5))
            got_lurker = kinds(await recv_for(lurker, 0.5))
            assert {"best_bid_ask", "new_market", "market_resolved", "price_change"} <= got_custom
            assert "price_change" in got_plain
            assert not {"best_bid_ask", "new_market", "market_resolved"} & got_plain
            assert got_lurker == {"new_market"}
            for w in (plain, custom, lurker):
                await w.close()

    run(main)


def test_dynamic_subscribe_and_unsubscribe() -> None:
    async def main() -> None:
        async with running_sim(quiet()) as sim:
            a, b = binary_markets(sim.state)[:2]
            ws = await subscribe(sim.ws_url, list(a.token_ids))
            assert len(json.loads(await ws.recv())) == 2
            await ws.send(json.dumps({"assets_ids": list(b.token_ids), "operation": "subscribe"}))
            dump = json.loads(await ws.recv())
            assert {x["asset_id"] for x in dump} == set(b.token_ids)
            place_ladder(sim.state, b.token_ids[0], 1)
            got = pc_entries(await recv_for(ws, 2, lambda fs: len(fs) >= 1))
            assert {e["asset_id"] for e in got} == set(b.token_ids)
            await ws.send(json.dumps({"assets_ids": list(b.token_ids), "operation": "unsubscribe"}))
            await ws.send("PING")
            assert "PONG" in await recv_for(ws, 2, lambda fs: "PONG" in fs)
            place_ladder(sim.state, b.token_ids[0], 2)
            place_ladder(sim.state, a.token_ids[0], 1)
            got = pc_entries(await recv_for(ws, 1.0))
            assert got and {e["asset_id"] for e in got} == set(a.token_ids)
            await ws.close()

    run(main)


def test_asset_limit_suppresses_initial_snapshots_but_not_updates() -> None:
    async def main() -> None:
        async with running_sim(quiet(max_assets_per_connection=4)) as sim:
            ms = list(sim.state.exchange.markets.markets.values())
            tokens = [t for m in ms for t in m.token_ids]
            assert len(tokens) > 4
            over = await subscribe(sim.ws_url, tokens)
            under = await subscribe(sim.ws_url, tokens[:4])
            assert len(json.loads(await under.recv())) == 4
            place_ladder(sim.state, ms[0].token_ids[0], 1)
            frames = await recv_for(over, 1.5, lambda fs: len(fs) >= 1)
            assert frames and not any(f.startswith("[") for f in frames)
            assert pc_entries(frames)
            for w in (over, under):
                await w.close()

    run(main)


def test_bad_client_messages_get_invalid_operation_and_the_socket_survives() -> None:
    async def main() -> None:
        async with running_sim(quiet()) as sim:
            ws = await subscribe(sim.ws_url, [])
            for bad in (
                "not json",
                '{"assets_ids": "x"}',
                '{"type": "market", "assets_ids": []}',
                '{"assets_ids": [], "operation": "teleport"}',
            ):
                await ws.send(bad)
                assert await asyncio.wait_for(ws.recv(), 3) == "INVALID OPERATION"
            await ws.send("PING")
            assert await asyncio.wait_for(ws.recv(), 3) == "PONG"
            await ws.close()

    run(main)


# -- user channel --------------------------------------------------------------------------------
def test_user_channel_sends_own_orders_and_trade_lifecycle_and_rejects_bad_auth() -> None:
    async def main() -> None:
        async with running_sim(quiet()) as sim:
            st = sim.state
            m = binary_markets(st)[0]
            creds = st.issue_creds(TESTER, 0)
            auth = {
                "apiKey": creds.api_key,
                "secret": creds.secret.reveal(),
                "passphrase": creds.passphrase.reveal(),
            }
            ws = await websockets.connect(sim.ws_url + "/ws/user")
            await ws.send(json.dumps({"auth": auth, "markets": [m.condition_id], "type": "user"}))
            other = await websockets.connect(sim.ws_url + "/ws/user")
            await other.send(
                json.dumps({"auth": auth, "markets": ["0x" + "0" * 64], "type": "user"})
            )
            await asyncio.sleep(0.1)
            res = st.exchange.place(
                TESTER, m.token_ids[0], "BUY", 40, 10 * MICROS, api_key=creds.api_key
            )
            assert res.success
            taker = st.exchange.place(OTHER, m.token_ids[1], "BUY", 60, 10 * MICROS, "FAK")
            assert taker.status == "matched"

            def events(fs: list[str]) -> list[dict[str, Any]]:
                return [json.loads(f) for f in fs if f.startswith("{")]

            frames = await recv_for(
                ws, 5, lambda fs: any(e.get("status") == "CONFIRMED" for e in events(fs))
            )
            evs = events(frames)
            orders = [e for e in evs if e["event_type"] == "order"]
            trades = [e for e in evs if e["event_type"] == "trade"]
            assert orders[0]["type"] == "PLACEMENT" and orders[0]["id"] == res.order_id
            assert all(e["maker_address"].lower() == TESTER for e in orders)
            assert [t["status"] for t in trades] == ["MATCHED", "MINED", "CONFIRMED"]
            assert len({t["id"] for t in trades}) == 1
            assert await recv_for(other, 0.3) == []  # filtered out by its markets list
            for wrong in ({**auth, "secret": "A" * 44}, {**auth, "passphrase": "é"}, {}):
                bad = await websockets.connect(sim.ws_url + "/ws/user")
                await bad.send(json.dumps({"auth": wrong, "markets": [], "type": "user"}))
                with pytest.raises(websockets.ConnectionClosed) as info:
                    await asyncio.wait_for(bad.recv(), 5)
                assert info.value.rcvd is not None and info.value.rcvd.code == 1008
            for w in (ws, other):
                await w.close()

    run(main)


# -- faults --------------------------------------------------------------------------------------
def _fault_run(faults: FaultConfig, n: int = 40, seconds: float = 2.5) -> tuple[list[str], Market]:
    """Subscribe to one quiet market, place ``n`` ladder orders, return what arrived (within
    ``seconds``, or once ``n`` frames are in)."""
    result: list[Any] = []

    async def main() -> None:
        async with running_sim(quiet(faults=faults)) as sim:
            m = binary_markets(sim.state)[0]
            ws = await subscribe(sim.ws_url, list(m.token_ids))
            await recv_for(ws, 1.0, lambda fs: any(f.startswith("[") for f in fs))
            place_ladder(sim.state, m.token_ids[0], n)
            result.extend([await recv_for(ws, seconds, lambda fs: len(fs) >= n), m])
            await ws.close()

    run(main)
    return result[0], result[1]


def _yes_prices(frames: list[str], yes: str) -> list[int]:
    return [parse_micros(e["price"]) // 10_000 for e in pc_entries(frames) if e["asset_id"] == yes]


def test_fault_drop_loses_frames() -> None:
    frames, m = _fault_run(FaultConfig(drop_prob=0.5), seconds=1.0)
    got = _yes_prices(frames, m.token_ids[0])
    assert 0 < len(got) < 40 and got == sorted(got)


def test_fault_reorder_swaps_frames_but_loses_none() -> None:
    frames, m = _fault_run(FaultConfig(reorder_prob=0.4))
    got = _yes_prices(frames, m.token_ids[0])
    assert sorted(got) == list(range(1, 41)) and got != sorted(got)


def test_fault_malformed_frames_are_counted_by_the_decoder() -> None:
    frames, _ = _fault_run(FaultConfig(malformed_prob=0.4))
    dec = market_decoder()
    events = [ev for f in frames for ev in dec.decode(f)]
    assert dec.stats.malformed > 0 and events


def test_fault_latency_is_a_lower_bound_on_delivery() -> None:
    got: list[int] = []

    async def main() -> None:
        async with running_sim(quiet(faults=FaultConfig(latency_ms=120, jitter_ms=30))) as sim:
            m = binary_markets(sim.state)[0]
            ws = await subscribe(sim.ws_url, list(m.token_ids))
            await ws.recv()
            place_ladder(sim.state, m.token_ids[0], 5)
            while len(got) < 5:
                f = await asyncio.wait_for(ws.recv(), 5)
                got.append(time.time_ns() // 1_000_000 - int(json.loads(f)["timestamp"]))
            await ws.close()

    run(main)
    assert min(got) >= 119


def test_fault_stalled_token_is_withheld_then_released_in_order() -> None:
    seen: list[str] = []

    async def main() -> None:
        async with running_sim(quiet()) as probe:
            a, b = binary_markets(probe.state)[:2]
        faults = FaultConfig(stall_token_ids=[a.token_ids[0]], stall_s=0.8)
        async with running_sim(quiet(faults=faults)) as sim:
            ws = await subscribe(sim.ws_url, [*a.token_ids, *b.token_ids])
            seen.append(await ws.recv())  # the main lane's snapshots: subscribed now
            for k in range(1, 6):
                sim.state.exchange.place(TESTER, a.token_ids[0], "BUY", k, 10 * MICROS)
                sim.state.exchange.place(TESTER, b.token_ids[0], "BUY", 50 + k, 10 * MICROS)
            seen.extend(await recv_for(ws, 3.0, lambda fs: len(fs) >= 16))
            await ws.close()
        seen.append(json.dumps([a.token_ids[0], b.token_ids[0]]))

    run(main)
    stalled, control = json.loads(seen.pop())
    order = ["S" if stalled in f else "C" if control in f else "-" for f in seen]
    assert order.count("S") == 6 and order.count("C") == 6  # dump + 5 changes each, none lost
    assert order.index("S") > max(i for i, x in enumerate(order) if x == "C")


def test_fault_token_latency_makes_a_transient_stale_leg() -> None:
    got: list[str] = []

    async def main() -> None:
        async with running_sim(quiet()) as probe:
            m = binary_markets(probe.state)[0]
        faults = FaultConfig(token_latency_ms={m.token_ids[0]: 300.0})
        async with running_sim(quiet(faults=faults)) as sim:
            ws = await subscribe(sim.ws_url, list(m.token_ids))
            await recv_for(ws, 1.0, lambda fs: sum(f.startswith("[") for f in fs) >= 2)
            place_ladder(sim.state, m.token_ids[0], 3)
            got.extend(await recv_for(ws, 2.0, lambda fs: len(fs) >= 6))
            await ws.close()
        got.append(m.token_ids[0])

    run(main)
    yes = got.pop()
    owners = [{e["asset_id"] for e in json.loads(f)["price_changes"]} for f in got]
    assert all(len(o) == 1 for o in owners)  # split per token
    first_yes = next(i for i, o in enumerate(owners) if yes in o)
    assert first_yes >= 3  # every NO echo landed before the YES leg: a stale-leg window


def test_fault_forced_disconnect_closes_the_socket() -> None:
    async def main() -> None:
        async with running_sim(quiet(faults=FaultConfig(disconnect_every_s=0.3))) as sim:
            ws = await subscribe(sim.ws_url, [])
            with pytest.raises(websockets.ConnectionClosed) as info:
                while True:
                    await asyncio.wait_for(ws.recv(), 5)
            assert info.value.rcvd is not None and info.value.rcvd.code == 1001

    run(main)


def test_frame_faults_are_deterministic_per_seed() -> None:
    cfg = FaultConfig(drop_prob=0.2, reorder_prob=0.2, malformed_prob=0.2, jitter_ms=5)

    def trace(seed: str) -> list[Any]:
        f = FrameFaults(cfg, random.Random(seed))
        return [msgspec.structs.astuple(f.decide(f"frame {i}", "", float(i))) for i in range(200)]

    assert trace("1:market:1") == trace("1:market:1")
    assert trace("1:market:1") != trace("1:market:2")
    kinds = trace("1:market:1")
    assert any(k[0] for k in kinds) and any(k[4] for k in kinds)


def test_http_fault_and_order_reject_helpers() -> None:
    rng = random.Random(1)
    assert http_fault(FaultConfig(), rng) is None
    assert order_reject(FaultConfig(), rng) is None
    draws = [http_fault(FaultConfig(http_429_prob=0.3, http_5xx_prob=0.3), rng) for _ in range(300)]
    statuses = {d[0] for d in draws if d is not None}
    assert statuses == {429, 500, 503} and None in draws
    assert FaultConfig(http_429_prob=1.0).http_fault(rng) == (429, "Too Many Requests")
    rejects = {order_reject(FaultConfig(reject_prob=1.0), rng) for _ in range(50)}
    assert rejects and None not in rejects
    with pytest.raises(msgspec.ValidationError, match="drop_prob"):
        msgspec.convert({"drop_prob": 1.5}, FaultConfig)

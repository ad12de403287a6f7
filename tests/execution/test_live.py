"""The live executor against the real simulator: DRY_RUN signs but never sends; with the live
flag, legs on a CTF market (domain "2") and a Protocol V2 market (domain "3") fill in parallel;
credentials never show."""

import asyncio
import logging
from pathlib import Path

import pytest
from live_helpers import binary, buy, live_executor, static_sim, trading, yes_asks
from live_helpers import wait_result as one_result

from polylab.domain import Intent, Leg
from polylab.execution.eip712 import SigningKey
from polylab.execution.live import LiveConfig, LiveError, LiveExecutor, load_credentials
from polylab.execution.rest_async import AsyncClobRest
from polylab.execution.signer import OrderSigner
from polylab.sim.config import SimConfig
from polylab.sim.server import running_sim

KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
MAKER = "0x" + "33" * 20
M = 1_000_000


def intent_for(tokens: list[str]) -> Intent:
    legs = tuple(Leg(token_id=t, side="BUY", price=400_000, size=10 * M) for t in tokens)
    return Intent(strategy="t", group_id="g", kind="set", legs=legs, edge=0, created_ns=1)


async def wait_result(ex: LiveExecutor):  # type: ignore[no-untyped-def]
    for _ in range(200):
        out = ex.poll(0, {})
        if out:
            return out[0]
        await asyncio.sleep(0.01)
    raise AssertionError("no result")


def test_dry_run_signs_and_sends_nothing(caplog: pytest.LogCaptureFixture) -> None:
    async def main() -> None:
        async with running_sim(SimConfig(generator=False, seed=1)) as h:
            ex_state = h.state.exchange
            cat = ex_state.markets
            tokens = [m.token_ids[0] for m in list(cat.markets.values())[:2]]
            ex = LiveExecutor(LiveConfig(url=h.url), cat, OrderSigner(KEY), None)
            with caplog.at_level(logging.INFO, logger="polylab.execution.live"):
                ex.submit("i1", intent_for(tokens), 5)
                res = await wait_result(ex)
            assert [r.status for r in res.reports] == ["dry_run", "dry_run"]
            assert all(r.order_id.startswith("0x") for r in res.reports) and ex.signed == 2
            signer = OrderSigner(KEY).address
            assert ex_state.open_orders(signer) == [] and ex_state.trades(signer) == []
            assert KEY[2:] not in caplog.text and "DRY_RUN" in caplog.text

    asyncio.run(main())


def test_live_flag_sends_legs_on_both_domains_and_they_fill() -> None:
    async def main() -> None:
        async with running_sim(SimConfig(generator=False, seed=1)) as h:
            exch = h.state.exchange
            binaries = [
                m for m in exch.markets.markets.values() if len(m.token_ids) == 2 and not m.neg_risk
            ]
            assert {m.version for m in binaries} == {"v1", "v2"}
            for m in binaries:  # a NO bid at 0.60 is a YES ask at 0.40 (mirrored books)
                tick = 100 if m.tick_size == "0.01" else 1000
                r = exch.place(MAKER, m.token_ids[1], "BUY", 60 * tick // 100, 50 * M)
                assert r.success, r.error_msg
            async with AsyncClobRest(h.url, key=SigningKey(KEY)) as rest:
                rest.creds = await rest.create_or_derive_api_key()
                signer = OrderSigner(KEY)
                ex = LiveExecutor(
                    LiveConfig(url=h.url, dry_run=False), exch.markets, signer, rest, live=True
                )
                ex.submit("i2", intent_for([m.token_ids[0] for m in binaries]), 5)
                res = await wait_result(ex)
            assert res.complete, res.reports
            for rep, m in zip(res.reports, binaries, strict=True):
                assert rep.status == "filled" and rep.filled == 10 * M
                assert rep.cost == 4 * M  # 10 shares at 0.40
                assert rep.fee == 168_000  # 10 × 0.07 × 0.40 × 0.60, paid on top
                assert exch.position(signer.address, m.token_ids[0]) == 10 * M

    asyncio.run(main())


def test_sending_needs_the_live_flag_and_a_client() -> None:
    from polylab.market import MarketCatalog

    with pytest.raises(LiveError, match="--live"):
        LiveExecutor(LiveConfig(dry_run=False), MarketCatalog(), OrderSigner(KEY), None)
    with pytest.raises(LiveError, match="REST client"):
        LiveExecutor(LiveConfig(dry_run=False), MarketCatalog(), OrderSigner(KEY), None, live=True)


def test_credentials_from_env_file_never_show(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_text(
        f"POLY_PRIVATE_KEY={KEY}\nPOLY_API_KEY=k\nPOLY_API_SECRET=s3cr3t\nPOLY_API_PASSPHRASE=pp\n"
    )
    creds = load_credentials(env={}, env_file=env)
    assert creds is not None and creds.private_key.reveal() == KEY and creds.creds is not None
    text = repr(creds) + repr(creds.creds) + str(creds.creds)
    assert KEY[2:] not in text and "s3cr3t" not in text and "pp'" not in text
    assert load_credentials(env={}, env_file=tmp_path / "none") is None
    with pytest.raises(TypeError):
        __import__("pickle").dumps(creds)


def test_live_session_is_dry_run_without_the_flag() -> None:
    from polylab.config import load_config
    from polylab.execution.live import Credentials
    from polylab.runner.live import run_live
    from polylab.runner.paper import venue

    cfg = load_config(
        env={
            "RISK_MAX_POSITION": "300",
            "DRY_RUN": "false",
            "SUMTO100_PAPER_TRADING": "false",  # every strategy on the live executor
            "CLIPPER_PAPER_TRADING": "false",
        }
    )

    async def main():  # type: ignore[no-untyped-def]
        async with venue(None, seed=11) as v:
            with pytest.raises(LiveError, match="POLY_PRIVATE_KEY"):
                await run_live(cfg, v, None, seconds=0.1)
            return await run_live(cfg, v, Credentials(KEY, None), live=False, seconds=8.0)

    res, run, ex = asyncio.run(main())
    assert run.engine.executor is ex and ex.config.dry_run  # DRY_RUN=false alone is not enough
    orders = run.recorder.rows.get("orders", [])
    assert ex.signed > 0 and orders and {o.status for o in orders} == {"dry_run"}
    assert res.trades == 0 and not run.recorder.rows.get("fills")


def test_report_times_come_from_the_injected_clock() -> None:
    """The executor takes its clock as a seam (no hidden ``time.time_ns`` on the order path)."""

    class Fixed:
        def now_ns(self) -> int:
            return 1_234_567_890

    async def main() -> None:
        async with running_sim(SimConfig(generator=False, seed=1)) as h:
            cat = h.state.exchange.markets
            tokens = [m.token_ids[0] for m in list(cat.markets.values())[:2]]
            ex = LiveExecutor(LiveConfig(url=h.url), cat, OrderSigner(KEY), None, clock=Fixed())
            ex.submit("i9", intent_for(tokens), 5)
            res = await wait_result(ex)
            assert [r.done_ns for r in res.reports] == [1_234_567_890, 1_234_567_890]
            assert [r.sent_ns for r in res.reports] == [5, 5]

    asyncio.run(main())


def test_open_orders_name_each_leg_in_flight_by_its_venue_order_id() -> None:
    """A leg is listed from ``submit`` (no id before signing), then by its signed hash while
    the venue answers (the id the report and the venue carry), and not once its report is
    made."""

    async def main() -> None:
        async with static_sim() as h:
            m = binary(h)
            yes_asks(h, m, [(400_000, 50 * M)])
            async with trading(h) as (rest, signer):
                ex = live_executor(h, rest, signer)
                ex.submit("i9", buy([m.token_ids[0]], 400_000, 10 * M), 5)
                (first,) = ex.open_orders()
                assert (first.order_id, first.intent_id, first.leg) == ("", "i9", 0)
                assert (first.token_id, first.side) == (m.token_ids[0], "BUY")
                assert (first.price_micros, first.size_micros) == (400_000, 10 * M)
                seen: list[str] = []
                for _ in range(100_000):  # every turn of the loop until the hash shows
                    seen = [o.order_id for o in ex.open_orders() if o.order_id]
                    if seen or not ex.open_orders():
                        break
                    await asyncio.sleep(0)
                res = await one_result(ex)
                assert ex.open_orders() == []
            (rep,) = res.reports
            assert rep.status == "filled" and seen == [rep.order_id]
            assert rep.order_id.startswith("0x")

    asyncio.run(main())

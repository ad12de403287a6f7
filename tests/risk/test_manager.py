"""The risk gate: each limit, the kill switch, release, and atomicity under threads."""

from __future__ import annotations

import threading
import time
from typing import Literal

import msgspec
import pytest

from polylab.domain import ExecutionResult, Intent, Leg, OrderReport
from polylab.errors import ConfigError
from polylab.market import Market, MarketCatalog
from polylab.money import MICROS
from polylab.risk.manager import Approved, Rejected, RiskConfig, RiskManager
from polylab.risk.portfolio import DAY_NS, Portfolio

S = MICROS
YES, NO = "yes", "no"
YES2, NO2 = "yes2", "no2"
CAT = MarketCatalog(
    [
        Market(condition_id="m", token_ids=(YES, NO)),
        Market(condition_id="m2", token_ids=(YES2, NO2)),
    ]
)


def intent(
    *legs: tuple[str, Literal["BUY", "SELL"], int, int], group: str = "m", kind: str = "set"
) -> Intent:
    return Intent(
        strategy="s",
        group_id=group,
        kind="set" if kind == "set" else "single",
        legs=tuple(Leg(token_id=t, side=sd, price=p, size=sz) for t, sd, p, sz in legs),
        edge=0,
        created_ns=0,
    )


def buy(size_shares: int, price: int = 500_000, token: str = YES, group: str = "m") -> Intent:
    return intent((token, "BUY", price, size_shares * S), group=group, kind="single")


def book_fill(
    p: Portfolio, token: str, side: Literal["BUY", "SELL"], shares: int, price: int, ts: int = 1
) -> None:
    filled = shares * S
    r = OrderReport(
        intent_id="f",
        leg=0,
        token_id=token,
        side=side,
        limit_price=price,
        requested=filled,
        filled=filled,
        cost=price * shares,
        fee=0,
        avg_price=price,
        status="filled",
        sent_ns=ts,
        done_ns=ts,
    )
    it = intent((token, side, price, filled), kind="single")
    p.apply(ExecutionResult(intent_id=f"f{ts}{side}", intent=it, reports=(r,), complete=True), CAT)


def gate(**kw: int | bool) -> tuple[RiskManager, Portfolio]:
    p = Portfolio(kw.pop("cash", 10_000 * S))  # type: ignore[arg-type]
    return RiskManager(RiskConfig(**kw), p, CAT), p  # type: ignore[arg-type]


def test_defaults_are_the_documented_limits() -> None:
    c = RiskConfig()
    assert c.max_position_micros == 100 * S and c.max_daily_loss_micros == 200 * S


def test_position_limit_counts_reservations_and_held_positions() -> None:
    r, p = gate(max_position_micros=100 * S)
    assert isinstance(r.check("a", buy(120), 0), Approved)  # 120 × 0.5 = $60
    d = r.check("b", buy(100), 0)  # $60 + $50 > $100
    assert isinstance(d, Rejected) and d.rule == "position" and d.intent_id == "b"
    assert r.check("c", buy(100, group="other"), 0).rule == "position"  # type: ignore[union-attr]
    assert isinstance(r.check("c", buy(100, token=YES2, group="other"), 0), Approved)
    r.release("a")
    book_fill(p, YES, "BUY", 120, 500_000)  # the fill is now a position worth $60 at risk
    assert r.check("d", buy(100), 0).rule == "position"  # type: ignore[union-attr]
    assert isinstance(r.check("e", buy(80), 0), Approved)  # $60 + $40


def test_sells_do_not_use_position_room_but_cannot_exceed_holdings() -> None:
    r, p = gate(max_position_micros=10 * S)
    book_fill(p, YES, "BUY", 10, 500_000)
    sell = intent((YES, "SELL", 400_000, 6 * S), kind="single")
    assert isinstance(r.check("a", sell, 0), Approved)
    d = r.check("b", sell, 0)  # 6 more while 6 of the 10 are already being sold
    assert isinstance(d, Rejected) and d.rule == "short"
    r2, _ = gate(allow_short=True)
    assert isinstance(r2.check("a", intent((NO, "SELL", 400_000, 6 * S)), 0), Approved)


def test_daily_loss_blocks_the_rest_of_the_day_only() -> None:
    r, p = gate(max_daily_loss_micros=5 * S)
    book_fill(p, YES, "BUY", 10, 900_000, ts=10)
    book_fill(p, YES, "SELL", 10, 400_000, ts=20)  # -$5 realized
    d = r.check("a", buy(1), 30)
    assert isinstance(d, Rejected) and d.rule == "daily_loss"
    assert isinstance(r.check("b", buy(1), DAY_NS + 1), Approved)  # a new UTC day


def test_open_orders_limit_counts_legs_until_release() -> None:
    r, _ = gate(max_open_orders=3)
    pair = intent((YES, "BUY", 400_000, S), (NO, "BUY", 500_000, S))
    assert isinstance(r.check("a", pair, 0), Approved) and r.open_orders == 2
    assert r.check("b", pair, 0).rule == "open_orders"  # type: ignore[union-attr]
    assert r.release("a") and not r.release("a")
    assert isinstance(r.check("b", pair, 0), Approved)


def test_submit_rate_is_a_sliding_second() -> None:
    r, _ = gate(max_submits_per_s=2, max_open_orders=100)
    for i in range(2):
        assert isinstance(r.check(f"a{i}", buy(1), 0), Approved)
        r.release(f"a{i}")
    assert r.check("b", buy(1), 999_999_999).rule == "rate"  # type: ignore[union-attr]
    assert isinstance(r.check("c", buy(1), 1_000_000_000), Approved)


def test_cash_covers_every_intent_in_flight() -> None:
    r, _ = gate(cash=10 * S, max_position_micros=1000 * S)
    assert isinstance(r.check("a", buy(12), 0), Approved)  # $6
    d = r.check("b", buy(10, token=YES2, group="g2"), 0)
    assert isinstance(d, Rejected) and d.rule == "cash"
    assert r.reserved() == 6 * S and r.reserved("m") == 6 * S


@pytest.mark.parametrize(
    ("it", "needle"),
    [
        (intent(kind="single"), "no_legs"),
        (buy(1, price=0), "invalid_price"),
        (buy(1, price=MICROS), "invalid_price"),
        (intent((YES, "BUY", 500_000, 0)), "invalid_size"),
    ],
)
def test_invalid_intents_are_rejected_as_data(it: Intent, needle: str) -> None:
    r, _ = gate()
    d = r.check("a", it, 0)
    assert isinstance(d, Rejected) and d.rule == needle and r.rejections[needle] == 1


def test_duplicate_id_in_flight_is_rejected() -> None:
    r, _ = gate()
    r.check("a", buy(1), 0)
    assert r.check("a", buy(1), 0).rule == "duplicate"  # type: ignore[union-attr]


def test_kill_switch_rejects_everything_until_resumed() -> None:
    r, _ = gate()
    r.kill("operator: feed looks wrong")
    assert r.killed
    d = r.check("a", buy(1), 0)
    assert isinstance(d, Rejected) and d.rule == "kill_switch" and "feed looks wrong" in d.reason
    r.resume()
    assert isinstance(r.check("a", buy(1), 0), Approved)
    r2, _ = gate(kill_switch=True)
    assert r2.killed and r2.check("a", buy(1), 0).rule == "kill_switch"  # type: ignore[union-attr]
    assert r2.rejections["kill_switch"] == 1


def test_config_is_strict_and_names_the_field() -> None:
    with pytest.raises(ConfigError, match="max_open_orders"):
        RiskConfig(max_open_orders=0)
    with pytest.raises(msgspec.ValidationError, match="max_position_micros"):
        msgspec.json.decode(b'{"max_position_micros": -1}', type=RiskConfig)
    with pytest.raises(msgspec.ValidationError, match="max_orders"):
        msgspec.json.decode(b'{"max_orders": 3}', type=RiskConfig)


class SlowPortfolio(Portfolio):
    """A real portfolio whose reads pause (releasing the GIL) so that a check that read limits
    and reserved in separate steps would let every thread in between: it widens the window a
    missing lock leaves open, it does not change any result."""

    def exposure(self, token_ids: set[str] | tuple[str, ...] | list[str]) -> int:
        time.sleep(0.002)
        return super().exposure(token_ids)

    def position(self, token_id: str) -> int:
        time.sleep(0.002)
        return super().position(token_id)

    def realized_on_day(self, now_ns: int) -> int:
        time.sleep(0.002)
        return super().realized_on_day(now_ns)


def slow_gate(**kw: int) -> tuple[RiskManager, Portfolio]:
    p = SlowPortfolio(10_000 * S)
    return RiskManager(RiskConfig(max_submits_per_s=1000, **kw), p, CAT), p


def _race(r: RiskManager, intents: list[Intent], rounds: int = 1) -> list[bool]:
    barrier = threading.Barrier(len(intents))
    ok: list[bool] = [False] * len(intents)

    def go(i: int) -> None:
        barrier.wait()
        ok[i] = isinstance(r.check(f"t{i}", intents[i], 0), Approved)

    threads = [threading.Thread(target=go, args=(i,)) for i in range(len(intents))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    return ok


@pytest.mark.parametrize("trial", range(3))
def test_concurrent_checks_never_pass_a_limit_together(trial: int) -> None:
    # each $30 intent passes a $100 limit alone; 12 at once: exactly 3 may pass
    r, _ = slow_gate(max_position_micros=100 * S, max_open_orders=1000)
    ok = _race(r, [buy(60) for _ in range(12)])
    assert sum(ok) == 3 and r.reserved("m") == 90 * S
    # open-order slots: 2-leg intents against 7 slots: exactly 3
    r, _ = slow_gate(max_open_orders=7)
    pair = intent((YES, "BUY", 10_000, S), (NO, "BUY", 10_000, S))
    assert sum(_race(r, [pair] * 10)) == 3 and r.open_orders == 6
    # sells against holdings: 10 held, 4 each: exactly 2
    r, p = slow_gate(max_open_orders=1000)
    book_fill(p, YES, "BUY", 10, 100_000)
    sell = intent((YES, "SELL", 100_000, 4 * S), kind="single")
    assert sum(_race(r, [sell] * 8)) == 2

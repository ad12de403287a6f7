"""Exchange semantics: priority, fills, complementary matching, order types, fees, events,
and conservation of collateral + complete sets over random order flow."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from polylab.fees import FeeModel
from polylab.market import Market
from polylab.money import MICROS
from polylab.sim.accounts import FEE_COLLECTOR
from polylab.sim.events import book_hash
from polylab.sim.exchange import Exchange

CID = "0x" + "11" * 32
YES, NO = "1001", "1002"
FREE_CID = "0x" + "22" * 32
FYES, FNO = "2001", "2002"
A, B, C, D = ("0x" + c * 40 for c in "abcd")
S = 1_000_000  # one share / one dollar in micros
FEE = FeeModel.from_rate("0.07")


class Clock:
    """A settable ms clock."""

    def __init__(self) -> None:
        self.ms = 1_800_000_000_000

    def __call__(self) -> int:
        return self.ms


def make(
    auto_tick: bool = False,
) -> tuple[Exchange, Clock, list[list[dict[str, Any]]], list[tuple[str, dict[str, Any]]]]:
    clock = Clock()
    ex = Exchange(seed=3, clock_ms=clock, auto_tick_size=auto_tick)
    market_events: list[list[dict[str, Any]]] = []
    user_events: list[tuple[str, dict[str, Any]]] = []
    ex.add_market_listener(market_events.append)
    ex.add_user_listener(lambda a, e: user_events.append((a, e)))
    ex.add_market(Market(condition_id=CID, token_ids=(YES, NO), fee=FEE))
    ex.add_market(Market(condition_id=FREE_CID, token_ids=(FYES, FNO)))
    return ex, clock, market_events, user_events


def conserved(ex: Exchange) -> bool:
    return ex.accounts.total_collateral() + ex.locked_collateral() == ex.accounts.funded_micros


def levels(ex: Exchange, token: str, side: str) -> list[tuple[str, str]]:
    return [(lv["price"], lv["size"]) for lv in ex.book_json(token)[side]]


def test_price_time_priority_fills_best_price_then_oldest_first() -> None:
    ex, *_ = make()
    ex.split(A, FREE_CID, 100 * S)
    ex.split(B, FREE_CID, 100 * S)
    ex.split(C, FREE_CID, 100 * S)
    a = ex.place(A, FYES, "SELL", 55, 10 * S)
    b = ex.place(B, FYES, "SELL", 55, 10 * S)
    c = ex.place(C, FYES, "SELL", 54, 10 * S)
    r = ex.place(D, FYES, "BUY", 55, 15 * S, "FOK")
    assert r.success and r.status == "matched"
    assert ex.position(D, FYES) == 15 * S
    assert ex.order(c.order_id).status == "MATCHED"  # type: ignore[union-attr]
    assert ex.order(a.order_id).matched_micros == 5 * S  # type: ignore[union-attr]
    assert ex.order(b.order_id).matched_micros == 0  # type: ignore[union-attr]
    assert levels(ex, FYES, "asks") == [("0.55", "15")]
    # taker paid each maker's price: 10 @ 0.54 + 5 @ 0.55, no fee on this market
    assert ex.balance(D) == 10_000 * S - (5_400_000 + 2_750_000)


def test_partial_fill_rests_the_remainder_with_collateral_reserved() -> None:
    ex, *_ = make()
    ex.split(A, FREE_CID, 100 * S)
    ex.place(A, FYES, "SELL", 40, 6 * S)
    r = ex.place(B, FYES, "BUY", 42, 20 * S)
    assert r.success and r.status == "matched"
    assert r.taking_micros == 6 * S and r.making_micros == 2_400_000
    assert levels(ex, FYES, "bids") == [("0.42", "14")]
    assert ex.accounts.reserved[ex.order(r.order_id).owner] == 14 * 420_000  # type: ignore[union-attr]
    assert ex.free_balance(B) == 10_000 * S - 2_400_000 - 14 * 420_000
    assert ex.open_orders(B)[0]["size_matched"] == "6"


def test_price_improvement_goes_to_the_taker_at_the_maker_price() -> None:
    ex, *_ = make()
    ex.split(A, FREE_CID, 100 * S)
    ex.place(A, FYES, "SELL", 30, 10 * S)
    r = ex.place(B, FYES, "BUY", 60, 10 * S, "FAK")
    assert r.making_micros == 3 * S
    assert ex.trades(B)[0]["price"] == "0.3"


def test_mint_yes_buyer_meets_no_buyer_and_a_complete_set_is_created() -> None:
    ex, _, mev, _ = make()
    ex.place(A, FNO, "BUY", 45, 10 * S)  # NO bid 0.45 == YES ask 0.55
    assert levels(ex, FYES, "asks") == [("0.55", "10")]
    r = ex.place(B, FYES, "BUY", 55, 10 * S, "FOK")
    assert r.success
    assert ex.position(B, FYES) == 10 * S and ex.position(A, FNO) == 10 * S
    assert ex.balance(B) == 10_000 * S - 5_500_000
    assert ex.balance(A) == 10_000 * S - 4_500_000
    assert ex.accounts.token_supply(FYES) == ex.accounts.token_supply(FNO) == 10 * S
    trade = ex.trades(A)[0]
    assert trade["trader_side"] == "MAKER" and trade["asset_id"] == FYES
    assert trade["maker_orders"][0]["asset_id"] == FNO
    assert trade["maker_orders"][0]["price"] == "0.45"
    last = [e for e in mev[-1] if e["event_type"] == "last_trade_price"]
    assert {(e["asset_id"], e["price"], e["side"]) for e in last} == {
        (FYES, "0.55", "BUY"),
        (FNO, "0.45", "SELL"),
    }
    assert conserved(ex)


def test_merge_two_sellers_of_complementary_tokens_redeem_a_complete_set() -> None:
    ex, *_ = make()
    ex.split(A, FREE_CID, 10 * S)
    ex.split(B, FREE_CID, 10 * S)
    ex.place(A, FYES, "SELL", 60, 10 * S)  # YES ask 0.60
    r = ex.place(B, FNO, "SELL", 40, 10 * S, "FOK")  # NO SELL 0.40 == YES bid 0.60
    assert r.success and r.taking_micros == 4 * S
    assert ex.balance(A) == 10_000 * S - 10 * S + 6 * S
    assert ex.balance(B) == 10_000 * S - 10 * S + 4 * S
    assert ex.accounts.token_supply(FYES) == ex.accounts.token_supply(FNO) == 10 * S
    assert ex.position(A, FYES) == 0 and ex.position(B, FNO) == 0
    assert conserved(ex)


def test_fok_is_all_or_nothing() -> None:
    ex, *_ = make()
    ex.split(A, FREE_CID, 100 * S)
    ex.place(A, FYES, "SELL", 50, 5 * S)
    before = (ex.balance(B), levels(ex, FYES, "asks"))
    r = ex.place(B, FYES, "BUY", 50, 6 * S, "FOK")
    assert not r.success
    assert r.error_msg == "order couldn't be fully filled. FOK orders are fully filled or killed."
    assert (ex.balance(B), levels(ex, FYES, "asks")) == before
    assert ex.place(B, FYES, "BUY", 50, 5 * S, "FOK").success


def test_fak_fills_what_it_can_and_cancels_the_rest() -> None:
    ex, *_ = make()
    ex.split(A, FREE_CID, 100 * S)
    ex.place(A, FYES, "SELL", 50, 5 * S)
    r = ex.place(B, FYES, "BUY", 50, 8 * S, "FAK")
    assert r.success and r.taking_micros == 5 * S
    assert ex.book_json(FYES)["bids"] == [] and ex.open_orders(B) == []
    assert ex.free_balance(B) == ex.balance(B)  # nothing left reserved
    miss = ex.place(B, FYES, "BUY", 50, 8 * S, "FAK")
    assert not miss.success and miss.error_msg.startswith("no orders found to match with FAK")


def test_post_only_is_rejected_when_it_would_cross_and_rests_otherwise() -> None:
    ex, *_ = make()
    ex.place(A, FNO, "BUY", 45, 10 * S)  # YES ask 0.55
    cross = ex.place(B, FYES, "BUY", 55, 10 * S, post_only=True)
    assert cross.error_msg == "invalid post-only order: order crosses book"
    assert ex.place(B, FYES, "BUY", 54, 10 * S, post_only=True).status == "live"
    bad = ex.place(B, FYES, "BUY", 54, 10 * S, "FOK", post_only=True)
    assert bad.error_msg == "invalid post-only order: only GTC and GTD order types are allowed"


def test_gtd_needs_a_future_expiration_and_expires_as_a_cancellation() -> None:
    ex, clock, _, uev = make()
    now_s = clock.ms // 1000
    assert ex.place(A, FYES, "BUY", 40, 10 * S, "GTD", expiration_s=now_s + 30).error_msg == (
        "invalid expiration"
    )
    r = ex.place(A, FYES, "BUY", 40, 10 * S, "GTD", expiration_s=now_s + 120)
    assert r.status == "live" and ex.free_balance(A) == 10_000 * S - 4 * S
    clock.ms += 119_000
    assert ex.expire_orders() == []
    clock.ms += 2_000
    assert ex.expire_orders() == [r.order_id]
    assert ex.free_balance(A) == 10_000 * S and ex.book_json(FYES)["bids"] == []
    assert uev[-1][1]["type"] == "CANCELLATION" and uev[-1][1]["status"] == "CANCELED"


def test_taker_pays_exact_fees_and_makers_pay_none() -> None:
    ex, *_ = make()
    ex.split(A, CID, 100 * S)
    ex.place(A, YES, "SELL", 60, 50 * S)
    r = ex.place(B, YES, "BUY", 60, 50 * S, "FOK")
    fee = FEE.fee(50 * S, 600_000)  # 50 × 0.07 × 0.6 × 0.4 = 0.84
    assert fee == 840_000 and r.fee_micros == fee
    assert ex.balance(B) == 10_000 * S - 30 * S - fee
    assert ex.balance(A) == 10_000 * S - 100 * S + 30 * S
    assert ex.balance(FEE_COLLECTOR) == fee
    # a SELL taker's fee comes out of its proceeds: 7 × 0.07 × 0.33 × 0.67 = 0.108339 → 0.10834
    ex.place(C, YES, "BUY", 33, 7 * S)
    s = ex.place(A, YES, "SELL", 33, 7 * S, "FOK")
    assert s.fee_micros == 108_340 and s.taking_micros == 2_310_000 - 108_340
    assert conserved(ex)


def test_order_checks_answer_with_the_venue_messages() -> None:
    ex, *_ = make()
    assert ex.place(A, "999", "BUY", 40, 10 * S).error_msg == "Invalid token id"
    assert "out of range" in ex.place(A, FYES, "BUY", 100, 10 * S).error_msg
    assert "lower than the minimum: 5" in ex.place(A, FYES, "BUY", 40, 4 * S).error_msg
    assert "at most 2 decimals" in ex.place(A, FYES, "BUY", 40, 5 * S + 1).error_msg
    assert ex.place(A, FYES, "SELL", 40, 10 * S).error_msg.startswith(
        "not enough balance / allowance"
    )
    ex.fund(B, 0)
    big = ex.place(B, FYES, "BUY", 50, 30_000 * S)
    assert big.error_msg.startswith("not enough balance / allowance")
    ex.place(C, FNO, "BUY", 50, 10 * S)
    small = ex.place(B, FYES, "BUY", 50, 1 * S, "FOK")
    assert small.error_msg == "invalid amount for a marketable BUY order ($0.5), min size: $1"
    dup = ex.place(B, FYES, "BUY", 40, 10 * S, order_id="0xabc")
    assert ex.place(B, FYES, "BUY", 40, 10 * S, order_id="0xabc").error_msg == (
        "order 0xabc is invalid. Duplicated."
    )
    assert dup.success and ex.stats["rejected"] == 8


def test_market_buy_spends_a_collateral_budget_at_improving_prices() -> None:
    ex, *_ = make()
    ex.place(A, FNO, "BUY", 60, 10 * S)  # YES ask 0.40 × 10
    ex.place(C, FNO, "BUY", 50, 10 * S)  # YES ask 0.50 × 10
    r = ex.place(B, FYES, "BUY", 50, 14 * S, "FOK", budget_micros=7 * S)
    # $4 buys 10 @ 0.40, the remaining $3 buys 6 @ 0.50
    assert r.success and r.taking_micros == 16 * S and r.making_micros == 7 * S
    short = ex.place(B, FYES, "BUY", 50, 20 * S, "FOK", budget_micros=10 * S)
    assert short.error_msg.startswith("order couldn't be fully filled")


def test_cancel_releases_reservations_and_reports_mirrored_removal() -> None:
    ex, _, mev, uev = make()
    ex.split(A, FREE_CID, 10 * S)
    r = ex.place(A, FYES, "SELL", 70, 10 * S)
    assert ex.accounts.free_shares(ex.order(r.order_id).owner, FYES) == 0  # type: ignore[union-attr]
    assert not ex.cancel(B, r.order_id)
    assert ex.cancel(A, r.order_id)
    assert ex.accounts.free_shares(ex.order(r.order_id).owner, FYES) == 10 * S  # type: ignore[union-attr]
    change = mev[-1][-1]
    assert change["event_type"] == "price_change"
    assert [(e["asset_id"], e["price"], e["side"], e["size"]) for e in change["price_changes"]] == [
        (FYES, "0.7", "SELL", "0"),
        (FNO, "0.3", "BUY", "0"),
    ]
    assert uev[-1][1]["type"] == "CANCELLATION"


def test_market_events_mirror_both_tokens_and_carry_the_rest_book_hash() -> None:
    ex, _, mev, _ = make()
    ex.place(A, FYES, "BUY", 42, 10 * S)
    bba, change = mev[-1][0:2], mev[-1][-1]
    assert [e["event_type"] for e in mev[-1]] == ["best_bid_ask", "best_bid_ask", "price_change"]
    assert (bba[0]["best_bid"], bba[0]["best_ask"], bba[1]["best_bid"], bba[1]["best_ask"]) == (
        "0.42",
        "1",
        "0",
        "0.58",
    )
    yes_entry, no_entry = change["price_changes"]
    assert (yes_entry["price"], yes_entry["side"], no_entry["price"], no_entry["side"]) == (
        "0.42",
        "BUY",
        "0.58",
        "SELL",
    )
    assert yes_entry["hash"] == ex.book_json(FYES)["hash"] == book_hash(ex.book_json(FYES))
    assert no_entry["best_ask"] == "0.58"
    ex.split(B, FREE_CID, 10 * S)
    ex.place(B, FYES, "SELL", 42, 4 * S, "FAK")
    kinds = [e["event_type"] for e in mev[-1]]
    assert kinds == ["book", "book", "last_trade_price"]
    assert mev[-1][0]["bids"] == [{"price": "0.42", "size": "6"}]
    assert mev[-1][1]["asks"] == [{"price": "0.58", "size": "6"}]


def test_book_lists_are_best_last_on_both_tokens() -> None:
    ex, *_ = make()
    for p in (40, 42, 41):
        ex.place(A, FYES, "BUY", p, 5 * S)
    for p in (60, 58, 59):
        ex.place(B, FNO, "BUY", 100 - p, 5 * S)  # YES asks at p
    assert [p for p, _ in levels(ex, FYES, "bids")] == ["0.4", "0.41", "0.42"]
    assert [p for p, _ in levels(ex, FYES, "asks")] == ["0.6", "0.59", "0.58"]
    assert [p for p, _ in levels(ex, FNO, "bids")] == ["0.4", "0.41", "0.42"]
    assert [p for p, _ in levels(ex, FNO, "asks")] == ["0.6", "0.59", "0.58"]


def test_user_events_follow_the_venue_lifecycle() -> None:
    ex, _, _, uev = make()
    ex.place(A, FNO, "BUY", 50, 10 * S)
    ex.place(B, FYES, "BUY", 50, 10 * S, "FOK")
    seq = [(a[:4], e["event_type"], e.get("type"), e["status"]) for a, e in uev]
    assert seq == [
        ("0xaA", "order", "PLACEMENT", "LIVE"),
        ("0xbB", "order", "PLACEMENT", "LIVE"),
        ("0xaA", "order", "UPDATE", "MATCHED"),
        ("0xbB", "order", "UPDATE", "MATCHED"),
        ("0xbB", "trade", "TRADE", "MATCHED"),
        ("0xaA", "trade", "TRADE", "MATCHED"),
    ]
    assert uev[-2][1]["trader_side"] == "TAKER" and uev[-1][1]["trader_side"] == "MAKER"
    uev.clear()
    assert ex.advance_settlement() == 1
    assert [e["status"] for _, e in uev] == ["MINED", "MINED"]
    assert ex.advance_settlement() == 1 and ex.advance_settlement() == 0
    assert [e["status"] for _, e in uev][-2:] == ["CONFIRMED", "CONFIRMED"]
    assert ex.trades(B)[0]["status"] == "CONFIRMED"


def test_tick_size_tightens_beyond_096_and_both_tokens_are_told() -> None:
    ex, _, mev, _ = make(auto_tick=True)
    ex.place(A, FNO, "BUY", 3, 100 * S)  # YES ask 0.97
    ex.place(B, FYES, "BUY", 97, 100 * S, "FOK")
    ticks = [e for e in mev[-1] if e["event_type"] == "tick_size_change"]
    assert [(e["asset_id"], e["old_tick_size"], e["new_tick_size"]) for e in ticks] == [
        (FYES, "0.01", "0.001"),
        (FNO, "0.01", "0.001"),
    ]
    assert ex.book_json(FYES)["tick_size"] == "0.001"
    assert ex.place(B, FYES, "BUY", 975, 10 * S).status == "live"


def test_resolution_cancels_orders_and_redemption_pays_winners() -> None:
    ex, _, mev, _ = make()
    ex.place(A, FNO, "BUY", 40, 10 * S)
    ex.place(B, FYES, "BUY", 60, 10 * S, "FOK")
    ex.place(A, FNO, "BUY", 30, 10 * S)
    ex.resolve(FREE_CID, FYES)
    assert ex.open_orders(A) == [] and ex.free_balance(A) == ex.balance(A)
    assert mev[-1][0]["event_type"] == "market_resolved"
    assert ex.place(A, FNO, "BUY", 30, 10 * S).error_msg.endswith("is closed")
    assert ex.redeem(B, FREE_CID) == 10 * S and ex.redeem(A, FREE_CID) == 0
    assert ex.balance(B) == 10_000 * S + 4 * S and ex.balance(A) == 10_000 * S - 4 * S
    assert conserved(ex)


def test_a_failing_listener_is_counted_and_does_not_break_the_exchange() -> None:
    ex, *_ = make()

    def boom(_: object) -> None:
        raise RuntimeError("listener bug")

    ex.add_market_listener(boom)
    assert ex.place(A, FYES, "BUY", 40, 10 * S).success
    assert ex.stats["listener_errors"] == 1


ACTORS = (A, B, C, D)
order_st = st.tuples(
    st.sampled_from(ACTORS),
    st.sampled_from((YES, NO)),
    st.sampled_from(("BUY", "SELL")),
    st.integers(35, 65),
    st.integers(10, 80).map(lambda n: n * 500_000),
    st.sampled_from(("GTC", "GTC", "GTC", "GTC", "FOK", "FAK")),
)
market_buy_st = st.tuples(
    st.sampled_from(ACTORS),
    st.sampled_from((YES, NO)),
    st.integers(35, 65),
    st.integers(4, 60).map(lambda n: n * 250_000),
    st.sampled_from(("FOK", "FAK")),
)
action_st = st.one_of(
    order_st.map(lambda o: ("order", o)),
    market_buy_st.map(lambda o: ("market_buy", o)),
    st.tuples(st.sampled_from(ACTORS), st.integers(1, 30)).map(lambda x: ("split", x)),
    st.sampled_from(ACTORS).map(lambda a: ("cancel", a)),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(action_st, min_size=15, max_size=80))
def test_collateral_plus_complete_sets_is_conserved_over_random_flow(
    actions: list[tuple[str, Any]],
) -> None:
    ex, *_ = make()
    for actor in ACTORS[:2]:
        ex.split(actor, CID, 50 * S)
    for kind, arg in actions:
        if kind == "order":
            owner, token, side, price, size, otype = arg
            ex.place(owner, token, side, price, size, otype)
        elif kind == "market_buy":
            owner, token, price, budget, otype = arg
            ex.place(owner, token, "BUY", price, 10 * S, otype, budget_micros=budget)
        elif kind == "split":
            owner, n = arg
            if ex.free_balance(owner) >= n * S:
                ex.split(owner, CID, n * S)
        else:
            ex.cancel_all(arg)
        acc = ex.accounts
        assert acc.total_collateral() + ex.locked_collateral() == acc.funded_micros
        assert acc.token_supply(YES) == acc.token_supply(NO)
        bid, ask = ex.top(YES)
        assert bid is None or ask is None or bid < ask
    reserved: dict[str, int] = {}
    locked: dict[tuple[str, str], int] = {}
    for a in ACTORS:
        for o in ex.open_orders(a):
            order = ex.order(o["id"])
            assert order is not None
            if order.side == "BUY":
                reserved[order.owner] = reserved.get(order.owner, 0) + (
                    order.remaining_micros * order.price_micros // MICROS
                )
            else:
                key = (order.owner, order.token_id)
                locked[key] = locked.get(key, 0) + order.remaining_micros
    assert {k: v for k, v in ex.accounts.reserved.items() if v} == reserved
    assert {k: v for k, v in ex.accounts.locked.items() if v} == locked
    for (owner, token), n in ex.accounts.positions.items():
        assert n >= 0 and ex.accounts.free_shares(owner, token) >= 0


def test_split_and_merge_move_one_dollar_per_complete_set() -> None:
    ex, *_ = make()
    ex.split(A, CID, 7 * S)
    assert ex.position(A, YES) == ex.position(A, NO) == 7 * S
    ex.merge(A, CID, 3 * S)
    assert ex.balance(A) == 10_000 * S - 4 * S and ex.position(A, NO) == 4 * S
    with pytest.raises(ValueError, match="cannot merge"):
        ex.merge(A, CID, 5 * S)
    assert conserved(ex)


def test_public_surface_resolves_every_exported_name() -> None:
    import polylab.sim as sim

    assert sorted(sim.__all__) == sim.__all__
    for name in sim.__all__:
        assert getattr(sim, name) is not None
    with pytest.raises(AttributeError):
        _ = sim.not_a_name

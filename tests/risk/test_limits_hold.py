"""The risk gate cannot be walked around (issue 8 §3): the daily-loss limit counts the worst
case of what is in flight and held, and position limits hold per token, per market and per
neg-risk event whatever group id a strategy uses; ``budget`` reflects the same keys."""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

from polylab.book.registry import BookRegistry
from polylab.domain import ExecutionResult, Intent, Leg, OrderReport
from polylab.engine import Engine
from polylab.execution.paper import PaperConfig, PaperTrader
from polylab.feed.wire import Book, Level
from polylab.fees import FeeModel
from polylab.market import Market, MarketCatalog
from polylab.money import MICROS
from polylab.risk.manager import Approved, Rejected, RiskConfig, RiskManager
from polylab.risk.portfolio import Portfolio

S = MICROS
NOW = 1_800_000_000_000_000_000
YES, NO, YES2, NO2 = "yes", "no", "yes2", "no2"
EV = "ev"
EY = ("y0", "y1", "y2")  # the YES of each market of the neg-risk event
EN = ("n0", "n1", "n2")
RATE = FeeModel.from_rate("0.04")


def catalog() -> MarketCatalog:
    return MarketCatalog(
        [
            Market(condition_id="m", token_ids=(YES, NO)),
            Market(condition_id="m2", token_ids=(YES2, NO2)),
            *(
                Market(
                    condition_id=f"e{i}",
                    token_ids=(EY[i], EN[i]),
                    neg_risk=True,
                    event_id=EV,
                    fee=RATE,
                )
                for i in range(3)
            ),
        ]
    )


def gate(**kw: int) -> tuple[RiskManager, Portfolio, BookRegistry]:
    reg = BookRegistry(catalog())
    p = Portfolio(100_000 * S)
    cfg = RiskConfig(max_submits_per_s=10_000, max_open_orders=10_000, **kw)
    return RiskManager(cfg, p, reg.catalog, reg.books), p, reg


def buy(token: str, shares: str, price: int, group: str = "g") -> Intent:
    size = int(Decimal(shares) * S)
    return Intent(
        strategy="s",
        group_id=group,
        kind="single",
        legs=(Leg(token_id=token, side="BUY", price=price, size=size),),
        edge=0,
        created_ns=0,
    )


def fill(
    p: Portfolio, token: str, side: Literal["BUY", "SELL"], shares: int, price: int, iid: str
) -> None:
    """Book a whole fill of ``shares`` at ``price`` (no fee) straight into the portfolio."""
    r = OrderReport(
        intent_id=iid,
        leg=0,
        token_id=token,
        side=side,
        limit_price=price,
        requested=shares * S,
        filled=shares * S,
        cost=price * shares,
        fee=0,
        avg_price=price,
        status="filled",
        sent_ns=NOW,
        done_ns=NOW,
    )
    it = Intent(
        strategy="s",
        group_id="g",
        kind="single",
        legs=(Leg(token_id=token, side=side, price=price, size=shares * S),),
        edge=0,
        created_ns=0,
    )
    res = ExecutionResult(intent_id=iid, intent=it, reports=(r,), complete=True)
    p.apply(res, catalog())


def lose_today(p: Portfolio, dollars: int) -> None:
    """Realize −``dollars`` today: buy YES at 0.50, then the market resolves to NO."""
    fill(p, YES, "BUY", 2 * dollars, 500_000, "loser")
    p.settle("m", NO, NOW)
    assert p.realized_on_day(NOW) == -dollars * S


def set_bid(reg: BookRegistry, token: str, bid: str) -> None:
    reg.handlers[Book](Book(asset_id=token, bids=[Level(bid, "1000")], asks=[]), NOW)


def flat_fee(shares: Decimal) -> Decimal:
    return shares * Decimal("0.01")  # the 1 % per share bound where no schedule is published


# -- daily loss ---------------------------------------------------------------------------------
def test_a_burst_at_minus_199_of_200_approves_nothing_that_does_not_fit() -> None:
    # today: realized −199 of a −200 limit; every intent can lose more than the $1 left
    r, p, _ = gate()
    lose_today(p, 199)
    ds = [r.check(f"b{i}", buy(YES2, "4", 500_000, group=f"g{i}"), NOW) for i in range(10)]
    assert all(isinstance(d, Rejected) and d.rule == "daily_loss" for d in ds)
    assert r.reserved() == 0 and r.inflight_worst() == 0


def test_a_burst_approves_exactly_what_fits_under_the_daily_loss_limit() -> None:
    r, p, _ = gate()
    lose_today(p, 190)
    worst = 2 + flat_fee(Decimal(4))  # 4 shares at ≤ 0.50, fee bound: $2.04 each
    room = Decimal(10)
    fits = 0
    while (fits + 1) * worst < room:
        fits += 1
    ds = [r.check(f"b{i}", buy(YES2, "4", 500_000, group=f"g{i}"), NOW) for i in range(10)]
    ok = [d for d in ds if isinstance(d, Approved)]
    assert len(ok) == fits == 4
    assert Decimal(r.inflight_worst()) / S == fits * worst
    assert {d.rule for d in ds if isinstance(d, Rejected)} == {"daily_loss"}
    # results back with nothing filled: the room comes back
    for d in ok:
        assert r.release(d.intent_id)
    assert isinstance(r.check("again", buy(YES2, "4", 500_000), NOW), Approved)


def test_worst_case_of_a_set_is_every_buy_legs_limit_cost_plus_its_fee_bound() -> None:
    r, _, _ = gate(max_position_micros=1_000 * S)
    legs = tuple(
        Leg(token_id=t, side="BUY", price=px, size=100 * S)
        for t, px in zip(EY, (300_000, 200_000, 700_000), strict=True)
    )
    it = Intent(strategy="s", group_id=EV, kind="set", legs=legs, edge=0, created_ns=0)
    d = r.check("set", it, NOW)
    assert isinstance(d, Approved)
    n, rate = Decimal(100), Decimal("0.04")

    def fee_bound(p: Decimal) -> Decimal:  # a BUY fills at ≤ limit; p(1 − p) peaks at 0.5
        q = min(p, Decimal("0.5"))
        return n * rate * q * (1 - q)

    prices = (Decimal("0.3"), Decimal("0.2"), Decimal("0.7"))
    expected = sum(n * px + fee_bound(px) for px in prices)
    assert Decimal(d.worst) / S == expected == Decimal("122.48")


def test_a_sell_below_basis_counts_what_it_can_give_up() -> None:
    r, p, reg = gate()
    fill(p, YES2, "BUY", 10, 500_000, "held")  # $5 basis
    set_bid(reg, YES2, "0.45")
    sell = Intent(
        strategy="s",
        group_id="g",
        kind="single",
        legs=(Leg(token_id=YES2, side="SELL", price=400_000, size=10 * S),),
        edge=0,
        created_ns=0,
    )
    d = r.check("sell", sell, NOW)
    assert isinstance(d, Approved)
    basis, value, proceeds = Decimal(5), Decimal("4.5"), Decimal(4)
    assert Decimal(d.worst) / S == max(basis, value) - proceeds + flat_fee(Decimal(10))


def test_a_sell_set_counts_the_bound_of_buying_a_leg_back() -> None:
    r, p, reg = gate()
    for tok, bid in ((YES2, "0.6"), (NO2, "0.45")):
        fill(p, tok, "BUY", 10, 500_000, f"held-{tok}")  # $5 basis each
        set_bid(reg, tok, bid)
    legs = (
        Leg(token_id=YES2, side="SELL", price=550_000, size=10 * S),
        Leg(token_id=NO2, side="SELL", price=500_000, size=10 * S),
    )
    d = r.check(
        "sells",
        Intent(strategy="s", group_id="m2", kind="set", legs=legs, edge=0, created_ns=0),
        NOW,
    )
    assert isinstance(d, Approved)
    n, fee = Decimal(10), flat_fee(Decimal(10))
    expected = Decimal(0)
    for limit, basis, value in ((Decimal("0.55"), 5, 6), (Decimal("0.5"), 5, Decimal("4.5"))):
        give_up = max(0, max(basis, value) - limit * n)  # sold at the limit
        buy_back = (1 - limit) * n + fee  # or the leg alone fills and is bought back at $1
        expected += fee + max(give_up, buy_back)
    assert Decimal(d.worst) / S == expected == Decimal("9.9")


def test_held_positions_count_at_what_selling_them_now_brings() -> None:
    r, p, reg = gate()
    fill(p, YES, "BUY", 400, 500_000, "held")  # $200 basis, bid 0.01: −$196 if sold now
    set_bid(reg, YES, "0.01")
    assert r.day_at_risk(NOW) == -196 * S
    small, large = buy(YES2, "2", 500_000), buy(YES2, "8", 500_000)  # worst $1.02 / $4.08
    assert isinstance(r.check("s", small, NOW), Approved)
    d = r.check("l", large, NOW)
    assert isinstance(d, Rejected) and d.rule == "daily_loss" and "-197020000" in d.reason


def test_complete_sets_held_count_at_their_locked_dollar() -> None:
    r, p, reg = gate()
    for tok in (YES, NO):  # 400 binary sets at $1.00 a set, both bids 0.01
        fill(p, tok, "BUY", 400, 500_000, f"set-{tok}")
        set_bid(reg, tok, "0.01")
    for tok in EY:  # 100 neg-risk sets at $0.90, YES bids 0.01
        fill(p, tok, "BUY", 100, 300_000, f"set-{tok}")
        set_bid(reg, tok, "0.01")
    assert r.day_at_risk(NOW) == 0
    fill(p, EY[0], "BUY", 50, 300_000, "extra")  # 50 more of one outcome, marked at the bid
    sets, extra_value = Decimal(100), 50 * Decimal("0.01")
    basis = 3 * 100 * Decimal("0.3") + 50 * Decimal("0.3")
    assert Decimal(r.day_at_risk(NOW)) / S == sets + extra_value - basis == Decimal("-4.5")


# -- position limits ----------------------------------------------------------------------------
def test_the_same_token_under_ten_group_ids_holds_the_100_dollar_limit() -> None:
    # today: ten intents of $50 on one token under ten group ids took $500
    r, p, _ = gate()
    ds = [r.check(f"i{k}", buy(YES, "100", 500_000, group=f"g{k}"), NOW) for k in range(10)]
    ok = [d for d in ds if isinstance(d, Approved)]
    assert len(ok) == 2 and sum(d.reserved for d in ok) == 100 * S
    assert {d.rule for d in ds if isinstance(d, Rejected)} == {"position"}
    assert r.reserved_for("token", YES) == 100 * S == r.reserved_for("market", "m")
    # filled and released: the positions now hold the room, whatever the group
    for d in ok:
        fill(p, YES, "BUY", 100, 500_000, d.intent_id)
        r.release(d.intent_id)
    assert r.reserved() == 0
    more = [r.check(f"j{k}", buy(YES, "1", 500_000, group=f"h{k}"), NOW) for k in range(10)]
    assert all(isinstance(d, Rejected) and d.rule == "position" for d in more)


def test_both_tokens_of_a_market_share_its_limit() -> None:
    r, _, _ = gate()
    assert isinstance(r.check("a", buy(YES, "120", 500_000, group="a"), NOW), Approved)  # $60
    d = r.check("b", buy(NO, "120", 500_000, group="b"), NOW)  # +$60 on market m
    assert isinstance(d, Rejected) and d.rule == "position" and "market m" in d.reason
    assert isinstance(r.check("c", buy(NO, "80", 500_000, group="c"), NOW), Approved)  # $40


def test_every_market_of_a_negrisk_event_shares_the_events_limit() -> None:
    r, _, _ = gate()
    for i in range(2):  # $40 on two outcomes, each under its own group id
        assert isinstance(
            r.check(f"y{i}", buy(EY[i], "100", 400_000, group=f"e{i}"), NOW), Approved
        )
    d = r.check("y2", buy(EY[2], "100", 400_000, group="e2"), NOW)  # $120 on event ev
    assert isinstance(d, Rejected) and d.rule == "position" and f"event {EV}" in d.reason
    d = r.check("n2", buy(EN[2], "100", 400_000, group="x"), NOW)  # a NO of the event too
    assert isinstance(d, Rejected) and d.rule == "position"
    assert isinstance(r.check("y2s", buy(EY[2], "50", 400_000, group="e2"), NOW), Approved)
    assert r.reserved_for("event", EV) == 100 * S


def test_budget_reflects_the_same_keys() -> None:
    r, _, _ = gate()
    assert isinstance(r.check("a", buy(YES, "120", 500_000, group="g0"), NOW), Approved)  # $60
    assert r.headroom("any-group", (YES,)) == 40 * S  # token
    assert r.headroom("other", (NO,)) == 40 * S  # market
    assert r.headroom("m", ()) == 40 * S  # a group id naming the market
    assert r.headroom("m2", (YES2, NO2)) == 100 * S
    assert isinstance(r.check("e", buy(EY[0], "100", 300_000, group="x"), NOW), Approved)  # $30
    assert r.headroom("y", (EY[1],)) == 70 * S  # event
    assert r.headroom(EV, ()) == 70 * S
    assert r.headroom("g", ("nobody",)) == 0  # unknown token: the gate would refuse it
    # an intent sized to the budget is approved, one micro-dollar more is not
    room = r.headroom("z", (EY[1],))
    just = buy(EY[1], str(Decimal(room) / S / Decimal("0.5")), 500_000, group="z")
    over = buy(EY[1], str(Decimal(room) / S / Decimal("0.5") + Decimal("0.01")), 500_000)
    assert r.check("over", over, NOW).rule == "position"  # type: ignore[union-attr]
    assert isinstance(r.check("just", just, NOW), Approved)


def test_budget_is_capped_by_the_daily_loss_room() -> None:
    r, p, _ = gate()
    lose_today(p, 199)
    assert r.headroom("g", (YES2,), now_ns=NOW) == S - 1
    reg = BookRegistry(catalog())
    eng = Engine(
        registry=reg,
        strategies=[],
        risk=RiskManager(RiskConfig(), p),
        executor=PaperTrader(PaperConfig(), reg.catalog),
        portfolio=p,
    )
    eng.on_time(NOW)
    assert eng.budget("g", (YES2,)) == S - 1  # what strategies size with
    assert eng.budget("g", ("nobody",)) == 0

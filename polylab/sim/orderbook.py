"""One order book per binary market, kept in YES prices: the venue's unified (mirrored) book.

An order on the NO token is stored on the YES book at the complementary price: BUY NO at q is a
YES ask at 1 − q, SELL NO at q is a YES bid at 1 − q. Matching therefore sees every order of the
market in one price-time queue, and both tokens' books are views of it (``levels_for``).

Units: prices are price micros (0.46 → 460_000), sizes share micros. Grid-free on purpose: a
tick-size change does not move resting orders.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections import deque
from collections.abc import Iterator
from typing import Literal

from polylab.money import MICROS

__all__ = ["Ladder", "MarketBook", "OrderStatus", "OrderType", "Side", "SimOrder"]

Side = Literal["BUY", "SELL"]
OrderType = Literal["GTC", "GTD", "FOK", "FAK"]
OrderStatus = Literal["LIVE", "MATCHED", "CANCELED"]


class SimOrder:
    """One order as the exchange tracks it (mutable: fills and status change in place).

    ``side``/``price_micros`` are on the order's own token; ``yes_bid``/``yes_price`` are where it
    sits on the market's YES book. ``budget_micros`` (market BUYs only) caps the collateral a
    FOK/FAK BUY may spend; ``size_micros`` is then its nominal share count.
    """

    __slots__ = (
        "api_key",
        "budget_micros",
        "condition_id",
        "created_ms",
        "expiration_s",
        "id",
        "is_yes",
        "matched_micros",
        "order_type",
        "outcome",
        "owner",
        "post_only",
        "price_micros",
        "seq",
        "side",
        "size_micros",
        "status",
        "token_id",
        "trade_ids",
        "yes_bid",
        "yes_price",
    )

    def __init__(
        self,
        *,
        order_id: str,
        owner: str,
        api_key: str,
        condition_id: str,
        token_id: str,
        outcome: str,
        is_yes: bool,
        side: Side,
        price_micros: int,
        size_micros: int,
        order_type: OrderType,
        post_only: bool,
        expiration_s: int,
        created_ms: int,
        seq: int,
        budget_micros: int | None = None,
    ) -> None:
        self.id = order_id
        self.owner = owner
        self.api_key = api_key
        self.condition_id = condition_id
        self.token_id = token_id
        self.outcome = outcome
        self.is_yes = is_yes
        self.side: Side = side
        self.price_micros = price_micros
        self.size_micros = size_micros
        self.matched_micros = 0
        self.order_type: OrderType = order_type
        self.post_only = post_only
        self.expiration_s = expiration_s
        self.created_ms = created_ms
        self.seq = seq
        self.budget_micros = budget_micros
        self.status: OrderStatus = "LIVE"
        self.trade_ids: list[str] = []
        self.yes_bid = (side == "BUY") == is_yes
        self.yes_price = price_micros if is_yes else MICROS - price_micros

    @property
    def remaining_micros(self) -> int:
        """Shares still open (0 for a market BUY whose budget is spent)."""
        return self.size_micros - self.matched_micros

    def own_price(self, yes_price: int) -> int:
        """A YES-book price seen from this order's own token."""
        return yes_price if self.is_yes else MICROS - yes_price

    def __repr__(self) -> str:
        return (
            f"SimOrder({self.id[:10]}…, {self.owner}, {self.side} {self.outcome} "
            f"{self.remaining_micros}@{self.price_micros}, {self.status})"
        )


class Ladder:
    """One side of the YES book: FIFO queues per price, aggregate sizes, sorted prices."""

    __slots__ = ("is_bid", "levels", "prices", "sizes")

    def __init__(self, is_bid: bool) -> None:
        self.is_bid = is_bid
        self.prices: list[int] = []
        """Ascending; the best bid is last, the best ask first."""
        self.levels: dict[int, deque[SimOrder]] = {}
        self.sizes: dict[int, int] = {}

    def add(self, order: SimOrder) -> None:
        """Queue ``order`` behind everything already resting at its price."""
        p = order.yes_price
        q = self.levels.get(p)
        if q is None:
            q = self.levels[p] = deque()
            self.sizes[p] = 0
            insort(self.prices, p)
        q.append(order)
        self.sizes[p] += order.remaining_micros

    def reduce(self, order: SimOrder, micros: int) -> None:
        """Lower the level's aggregate after ``order`` filled ``micros`` (it stays queued)."""
        self.sizes[order.yes_price] -= micros

    def remove(self, order: SimOrder) -> None:
        """Take ``order`` out of its queue; its remaining size leaves the aggregate."""
        p = order.yes_price
        q = self.levels[p]
        q.remove(order)
        self.sizes[p] -= order.remaining_micros
        if not q:
            del self.levels[p]
            del self.sizes[p]
            del self.prices[bisect_left(self.prices, p)]

    def best(self) -> int | None:
        """Best price on this side, or ``None`` when empty."""
        if not self.prices:
            return None
        return self.prices[-1] if self.is_bid else self.prices[0]

    def best_first(self) -> Iterator[int]:
        """Prices from best to worst (a snapshot: safe while levels are emptied)."""
        return iter(self.prices[::-1] if self.is_bid else list(self.prices))

    def size_at(self, price: int) -> int:
        """Aggregate resting size at ``price`` (0 when the level is empty)."""
        return self.sizes.get(price, 0)

    def orders(self) -> Iterator[SimOrder]:
        """Every resting order on this side."""
        for q in self.levels.values():
            yield from q


class MarketBook:
    """The YES-priced book of one binary market (bids = YES BUY ∪ NO SELL, asks = the rest)."""

    __slots__ = ("asks", "bids")

    def __init__(self) -> None:
        self.bids = Ladder(is_bid=True)
        self.asks = Ladder(is_bid=False)

    def side_of(self, order: SimOrder) -> Ladder:
        """The ladder ``order`` rests on."""
        return self.bids if order.yes_bid else self.asks

    def crosses(self, yes_bid: bool, yes_limit: int) -> bool:
        """Would an order (YES-book side and limit) trade against the top of the book?"""
        if yes_bid:
            ask = self.asks.best()
            return ask is not None and ask <= yes_limit
        bid = self.bids.best()
        return bid is not None and bid >= yes_limit

    def top(self, is_yes: bool) -> tuple[int | None, int | None]:
        """(best bid, best ask) in price micros as seen from the YES or the NO token."""
        bid, ask = self.bids.best(), self.asks.best()
        if is_yes:
            return bid, ask
        return (
            None if ask is None else MICROS - ask,
            None if bid is None else MICROS - bid,
        )

    def levels_for(self, is_yes: bool) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        """(bids ascending, asks descending) of one token: the venue's best-last ordering."""
        bids = [(p, self.bids.sizes[p]) for p in self.bids.prices]
        asks = [(p, self.asks.sizes[p]) for p in reversed(self.asks.prices)]
        if is_yes:
            return bids, asks
        # NO bids are YES asks at 1 - p: walking YES asks from high to low gives NO ascending.
        no_bids = [(MICROS - p, s) for p, s in asks]
        no_asks = [(MICROS - p, s) for p, s in bids]
        return no_bids, no_asks

    def all_orders(self) -> Iterator[SimOrder]:
        """Every resting order of the market."""
        yield from self.bids.orders()
        yield from self.asks.orders()

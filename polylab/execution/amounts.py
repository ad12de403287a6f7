"""The venue's amount semantics (protocol doc §4.4), shared by the paper and live executors.

A FOK/FAK **BUY** is a market buy: it targets *collateral* (``makerAmount`` = dollars to spend,
on a 2-decimal grid), walks the asks up to its limit and takes as many whole 0.01-share lots as
that money buys at each level, fees on top. Sent as ``size × limit`` it would receive more
shares than asked whenever the book is cheaper than the limit. Every other order (SELLs, GTC
and GTD BUYs) targets *shares* (``size`` floored to 0.01). So a BUY leg that must receive
``size`` shares is sent with ``buy_budget``: the cost of ``size`` at the book it was sized on
(shares the book cannot supply priced at the limit), rounded to the cent. It then receives
``size`` shares plus at most a cent's worth of dust while the book stands (a cent's worth
short instead when the book under the limit is too thin to spend the change, so a FOK is not
killed for it).

Both executors fill with ``walk_budget`` / ``walk_shares`` and charge ``fill_fee`` (the taker fee
per fill, each rounded up to 0.00001 as the venue settles each match), so one intent against
one static book gives the same shares, cash and fees through either.

Units: prices in price micros, sizes in share micros, cash and fees in micros.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from polylab.fees import FeeModel
from polylab.money import MICROS

if TYPE_CHECKING:
    from polylab.book.l2 import L2Book

__all__ = [
    "CENT",
    "LOT",
    "book_buy_budget",
    "buy_budget",
    "fill_fee",
    "fok_budget_spent",
    "lot_floor",
    "targets_collateral",
    "walk_budget",
    "walk_shares",
]

LOT = 10_000
"""The venue's size grid: 0.01 share (micros)."""
CENT = 10_000
"""The collateral grid of a market BUY's ``makerAmount``: $0.01 (micros)."""

Levels = Iterable[tuple[int, int]]
"""Book levels ``(price micros, share micros)``, best first."""
Takes = list[tuple[int, int]]
"""Fills ``(price micros, share micros)``, one per level touched, best first."""


def targets_collateral(side: str, order_type: str) -> bool:
    """True for a FOK/FAK BUY: the venue reads its amount as dollars to spend."""
    return side == "BUY" and order_type in ("FOK", "FAK")


def lot_floor(size: int) -> int:
    """``size`` floored to whole 0.01-share lots (micros)."""
    return size - size % LOT


def buy_budget(asks: Levels, size: int, limit: int) -> int:
    """Collateral (micros, a whole cent) that buys ``size`` shares (lot-floored) walking
    ``asks`` up to ``limit``; shares the book does not offer are priced at ``limit``. Never
    more than the nominal ``size × limit`` rounded up to the cent.

    The cost of the size is rounded up to the cent, so the leg gets at least its size (and the
    change buys dust), unless the book under the limit is too thin to spend that change: a FOK
    would then be killed with money left over, so the cost is rounded down instead (the leg
    gets its size less the lots a cent buys). An order worth a cent or less cannot be rounded
    down; it is far under the venue's $1 minimum for marketable orders and is refused there."""
    target = lot_floor(size)
    left, notional = target, 0
    budget = change = extra = -1
    lot_at_limit = LOT * limit  # one lot at the limit, in 1e-12 $
    for price, avail in asks:
        if price > limit:
            break
        if budget < 0:
            take = min(avail, left)
            notional += take * price
            left -= take
            if left:
                continue
            budget = _cents_up(notional)
            change = budget * MICROS - notional  # what the budget has over the size (1e-12 $)
            if change < lot_at_limit:
                return budget
            extra, avail = 0, avail - take
        extra += lot_floor(avail) * price  # depth the change can still buy
        if change - extra < lot_at_limit:
            return budget
    if budget < 0:  # the book does not hold the size: the rest at the limit (a FOK dies)
        notional += left * limit
        return _cents_up(notional)
    return budget - CENT if budget > CENT else budget


def _cents_up(notional: int) -> int:
    """``notional`` (1e-12 $) as micros rounded up to a whole cent."""
    micros = -(-notional // MICROS)
    return -(-micros // CENT) * CENT


def book_buy_budget(book: L2Book, size: int, limit: int) -> int:
    """``buy_budget`` over ``book``'s asks, read straight off its tick array (no ladder: this
    runs on the tick-to-order path, and touches only the levels the size needs)."""
    asks, tm = book.asks, book.tick.micros
    end = min(book.n, limit // tm)
    return buy_budget(
        ((t * tm, asks[t]) for t in range(book.best_ask, end + 1) if asks[t]), size, limit
    )


def walk_budget(asks: Levels, budget: int, limit: int) -> tuple[Takes, int]:
    """The venue's market BUY: spend up to ``budget`` over ``asks`` (best first, up to
    ``limit``), whole lots only, stopping at the first level where the unspent money buys no
    lot. Returns the fills and the unspent collateral (micros)."""
    left = budget
    takes: Takes = []
    for price, avail in asks:
        if price > limit:
            break
        n = min(avail, left * MICROS // price // LOT * LOT)
        if n <= 0:
            break
        takes.append((price, n))
        left -= n * price // MICROS
    return takes, left


def fok_budget_spent(unspent: int, limit: int) -> bool:
    """A FOK market BUY is complete when what is left cannot buy one more lot at its limit."""
    return unspent < LOT * limit // MICROS


def walk_shares(levels: Levels, size: int, limit: int, *, buy: bool) -> Takes:
    """Take up to ``size`` shares (lot-floored) over ``levels`` best first, up to ``limit``
    (asks for a BUY, bids for a SELL)."""
    left = lot_floor(size)
    takes: Takes = []
    for price, avail in levels:
        if not left or (price > limit if buy else price < limit):
            break
        n = min(avail, left)
        if n > 0:
            takes.append((price, n))
            left -= n
    return takes


def fill_fee(takes: Takes, fees: FeeModel) -> int:
    """Taker fee of ``takes`` (micros): the market's fee per fill, each rounded up to the
    venue's 0.00001 unit."""
    return sum(fees.fee(n, p) for p, n in takes)

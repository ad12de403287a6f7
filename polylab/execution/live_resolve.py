"""Asking the venue what became of an order whose answer never came (timeout, dropped
connection, 5xx, an exception while sending), and splitting an answered fill's cash exactly.

An order without an answer may have traded. It is never booked as unfilled on a guess: the
venue is asked by order id (``GET /data/order/{id}``: still resting, or known) and by its trades
(``GET /data/trades`` for the token, rows whose taker order, or one of whose maker orders, is
ours). A resting order of a finished intent is cancelled first. "Unfilled" needs two reads one
interval apart that both show neither the order nor a trade of it; when the venue cannot be
read before the deadline, the answer is ``None`` (the report stays ``unknown``).

Units: share and cash micros, seconds for the ``after`` filter of trades.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, NamedTuple

from polylab.errors import ClobError
from polylab.money import MICROS, MoneyError, parse_micros

if TYPE_CHECKING:
    from polylab.execution.rest_async import AsyncClobRest
    from polylab.execution.rest_types import TradeRow

__all__ = ["Resolution", "ask_venue", "our_fills", "traded_cash"]

_RESTING = ("LIVE", "OPEN", "DELAYED", "UNMATCHED")


class Resolution(NamedTuple):
    """What the venue says an order did: shares and cash (fees excluded, at the trade prices),
    one ``(price, shares)`` per trade row, and how it was found out."""

    shares: int
    cash: int
    takes: list[tuple[int, int]]
    note: str


def _micros(text: object) -> int:
    try:
        return parse_micros(str(text))
    except MoneyError:
        return 0


def our_fills(rows: list[TradeRow], order_id: str) -> list[tuple[int, int]]:
    """``(price, shares)`` of every fill of ``order_id`` in ``rows``: as the taker (the row's
    size at its price) or as a maker (its matched amount at its price)."""
    oid = order_id.lower()
    out: list[tuple[int, int]] = []
    for r in rows:
        if r.taker_order_id.lower() == oid:
            out.append((_micros(r.price), _micros(r.size)))
            continue
        for mo in r.maker_orders:
            if mo.order_id.lower() == oid:
                out.append((_micros(mo.price), _micros(mo.matched_amount)))
    return out


def _resolution(takes: list[tuple[int, int]], note: str) -> Resolution:
    shares = sum(n for _, n in takes)
    cash = sum(n * p // MICROS for p, n in takes)
    return Resolution(shares, cash, takes, note)


async def ask_venue(
    rest: AsyncClobRest,
    order_id: str,
    token_id: str,
    since_s: int,
    *,
    timeout_s: float,
    interval_s: float,
) -> tuple[Resolution | None, str]:
    """What ``order_id`` (on ``token_id``, sent after unix second ``since_s``) did, and a note
    of the last problem when the venue could not be read by ``timeout_s``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    empty = 0
    problem = ""
    while True:
        try:
            order = await rest.get_order(order_id)
            if order is not None and order.status.upper() in _RESTING:
                await rest.cancel(order_id)  # the intent is over: take nothing more
                problem = f"order was {order.status}; cancelled"
            else:
                rows = await rest.get_trades(asset_id=token_id, after_s=max(0, since_s - 2))
                takes = our_fills(rows, order_id)
                matched = _micros(order.size_matched) if order is not None else 0
                if takes and sum(n for _, n in takes) >= matched:
                    return _resolution(takes, "resolved from the venue's trades"), ""
                if order is not None and not matched:
                    return _resolution([], f"venue says {order.status}, no trade"), ""
                if order is None and not takes:
                    empty += 1
                    if empty >= 2:
                        return _resolution([], "the venue has neither the order nor a trade"), ""
        except ClobError as exc:
            problem = f"{type(exc).__name__}: {exc}"
            empty = 0
        if loop.time() + interval_s > deadline:
            return None, problem or "the venue did not settle the order in time"
        await asyncio.sleep(interval_s)


async def traded_cash(
    rest: AsyncClobRest, order_id: str, token_id: str, since_s: int, shares: int
) -> int | None:
    """Cash (fees excluded) of an answered order's fills from its trade rows, when they add up
    to the ``shares`` the answer reported; None otherwise (or when they cannot be read)."""
    try:
        rows = await rest.get_trades(asset_id=token_id, after_s=max(0, since_s - 2))
    except ClobError:
        return None
    res = _resolution(our_fills(rows, order_id), "")
    return res.cash if res.shares == shares else None

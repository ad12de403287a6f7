"""Parts of the runner's ``poly:state`` read off live objects: the market feed's health, one
entry per connection (shard), as the issue asks ("feed health per shard"), and the orders in
flight (the executor's orders not final yet, by venue order id).

Units: ages in ms, times in ns since the epoch.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from polylab.book.feed_health import Shard
from polylab.book.l2 import L2Book
from polylab.bus.messages import FeedHealth, OpenOrder
from polylab.domain import Intent
from polylab.execution.base import OpenLeg
from polylab.risk.manager import RiskManager
from polylab.risk.portfolio import Portfolio

__all__ = ["day_figures", "feed_health", "open_orders"]


def feed_health(
    shards: Iterable[Shard], books: Mapping[str, L2Book], now_ns: int
) -> tuple[FeedHealth, ...]:
    """One ``FeedHealth`` per shard, named ``market-<n>``: ``connected`` while its socket is
    subscribed; ``last_msg_age_ms`` since its newest frame (-1: none yet); ``reconnects`` of
    its link; ``stale_books``: its books waiting for a snapshot (not trusted)."""
    out = []
    for sh in shards:
        link = sh.link
        last = link.last_recv_ns if link is not None else 0
        out.append(
            FeedHealth(
                shard=f"market-{sh.no}",
                connected=sh.ws is not None,
                last_msg_age_ms=max(0, now_ns - last) // 1_000_000 if last else -1,
                reconnects=link.reconnects if link is not None else 0,
                stale_books=sum(
                    1 for t in sh.tokens if (b := books.get(t)) is not None and b.needs_snapshot
                ),
            )
        )
    return tuple(out)


def open_orders(
    in_flight: Iterable[tuple[str, Intent]], executor: object = None
) -> tuple[OpenOrder, ...]:
    """The orders resting or in flight. From ``executor.open_orders()`` when the executor has
    it (paper, live): one per order it has not finished, by the venue's order id (a live leg
    not signed yet, whose id is not known, as ``<intent_id>/<leg>``). Otherwise one per leg of
    each intent in flight (``Engine.in_flight``), as ``<intent_id>/<leg>``. Limit in price
    micros (0: any price, a paper unwind), size in share micros, ``filled_micros`` 0 (fills
    come with the result)."""
    view = getattr(executor, "open_orders", None)
    if callable(view):
        legs: list[OpenLeg] = view()
        return tuple(
            OpenOrder(
                order_id=o.order_id or f"{o.intent_id}/{o.leg}",
                intent_id=o.intent_id,
                token_id=o.token_id,
                side=o.side,
                price_micros=o.price_micros,
                size_micros=o.size_micros,
            )
            for o in legs
        )
    return tuple(
        OpenOrder(
            order_id=f"{iid}/{i}",
            intent_id=iid,
            token_id=leg.token_id,
            side=str(leg.side),
            price_micros=leg.price,
            size_micros=leg.size,
        )
        for iid, intent in in_flight
        for i, leg in enumerate(intent.legs)
    )


def day_figures(
    portfolio: Portfolio, risk: RiskManager, unrealized_micros: int, now_ns: int
) -> tuple[int, int]:
    """(``daily_pnl_micros``, ``loss_headroom_micros``) of the UTC day of ``now_ns``: PnL
    realized today plus ``unrealized_micros`` (the marks now), and what the risk gate's
    daily-loss rule still allows (its worst case of the day, in-flight intents included, kept
    above −``max_daily_loss_micros``; 0 once reached). Earlier days' PnL counts in neither."""
    daily = portfolio.realized_on_day(now_ns) + unrealized_micros
    headroom = max(0, risk.config.max_daily_loss_micros + risk.day_at_risk(now_ns))
    return daily, headroom

"""Prometheus metrics of a running service, on a registry of their own.

``Metrics`` owns a dedicated ``CollectorRegistry`` (never the process-global one: two services,
or two tests, in one process do not collide) and the metrics the runner exports. Two ways in:

* **direct updates**, for events only the caller sees: ``observe_tick_to_order_ns``,
  ``observe_ledger_write_ns`` (thread-safe: the ledger writer calls it from its thread),
  ``bus_dropped``, ``set_open_orders``, ``set_pnl``;
* **periodic mirrors** of cumulative counters the trading code already keeps
  (``observe_engine`` for ``EngineStats`` + the risk gate's rejections by rule + the engine's
  reaction samples, ``observe_feed`` for ``FeedCounters``, ``observe_portfolio``,
  ``observe_bus`` for a bus's drops by reason). The hot path pays nothing: a timer (say 1 Hz)
  calls them, and each adds to the Prometheus counter the increase since its previous call
  (a source that went backwards, i.e. was replaced, counts from zero again).

Units: times in seconds (Prometheus convention; the ``*_ns`` methods convert), money in
**micros** (integers, exact in a float64 up to 2^53 micros = $9e9), counts as counts.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

from polylab.samples import LatestSamples

if TYPE_CHECKING:
    from polylab.book.feed_health import FeedCounters
    from polylab.engine import EngineStats

__all__ = [
    "CONTENT_TYPE",
    "LEDGER_WRITE_BUCKETS_S",
    "TICK_TO_ORDER_BUCKETS_S",
    "Metrics",
]

CONTENT_TYPE = CONTENT_TYPE_LATEST
"""The ``Content-Type`` of ``Metrics.exposition()`` (Prometheus text format 0.0.4)."""

TICK_TO_ORDER_BUCKETS_S: tuple[float, ...] = (
    50e-6,
    100e-6,
    200e-6,
    300e-6,
    500e-6,
    750e-6,
    1e-3,
    2e-3,
    5e-3,
    10e-3,
    20e-3,
    50e-3,
)
"""Tick-to-order buckets (s): 50 µs to 50 ms, dense around the 1 ms target."""

LEDGER_WRITE_BUCKETS_S: tuple[float, ...] = (
    1e-3,
    5e-3,
    10e-3,
    25e-3,
    50e-3,
    100e-3,
    250e-3,
    500e-3,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
)
"""Ledger enqueue→commit buckets (s): batching puts the bulk near the 50 ms batch interval;
the tail covers an outage's retries."""


class Metrics:
    """The runner's metrics (see the module docstring); ``namespace`` prefixes every name."""

    def __init__(self, namespace: str = "polylab") -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r, ns = self.registry, namespace
        self.frames = Counter(
            "feed_frames", "Market feed frames received", namespace=ns, registry=r
        )
        self.malformed = Counter(
            "feed_malformed",
            "Feed frames or entries that failed to decode",
            namespace=ns,
            registry=r,
        )
        self.reconnects = Counter(
            "feed_reconnects", "Market feed reconnections", namespace=ns, registry=r
        )
        self.resyncs = Counter(
            "feed_resyncs",
            "Book snapshots re-requested (gaps, staleness)",
            namespace=ns,
            registry=r,
        )
        self.stale_flags = Counter(
            "feed_stale_flags", "Books flagged stale", namespace=ns, registry=r
        )
        self.stale_books = Gauge(
            "feed_stale_books", "Books currently not trusted", namespace=ns, registry=r
        )
        self.events = Counter("engine_events", "Market events handled", namespace=ns, registry=r)
        self.strategy_errors = Counter(
            "strategy_errors", "Strategy callbacks that raised", namespace=ns, registry=r
        )
        self.tick_to_order = Histogram(
            "tick_to_order_seconds",
            "Market event taken by the engine to approved orders handed to the executor",
            namespace=ns,
            registry=r,
            buckets=TICK_TO_ORDER_BUCKETS_S,
        )
        self.intents_approved = Counter(
            "intents_approved", "Intents the risk gate approved", namespace=ns, registry=r
        )
        self.intents_rejected = Counter(
            "intents_rejected",
            "Intents the risk gate refused, by rule",
            ["rule"],
            namespace=ns,
            registry=r,
        )
        self.fills = Counter("fills", "Fills booked", namespace=ns, registry=r)
        self.fees = Counter("fees_micros", "Fees paid (micros of $)", namespace=ns, registry=r)
        self.pnl = Gauge(
            "pnl_micros",
            "PnL (micros of $), realized or unrealized",
            ["kind"],
            namespace=ns,
            registry=r,
        )
        self.open_orders = Gauge("open_orders", "Orders in flight", namespace=ns, registry=r)
        self.bus_drops = Counter(
            "bus_dropped", "Bus messages lost, by reason", ["reason"], namespace=ns, registry=r
        )
        self.ledger_write = Histogram(
            "ledger_write_seconds",
            "Ledger row enqueue to commit",
            namespace=ns,
            registry=r,
            buckets=LEDGER_WRITE_BUCKETS_S,
        )
        self._last: dict[tuple[str, str], int] = {}
        self._reaction_seen = 0
        self._lock = threading.Lock()

    # -- direct updates --------------------------------------------------------------------------
    def observe_tick_to_order_ns(self, ns: int) -> None:
        """One tick-to-order sample, in ns."""
        self.tick_to_order.observe(ns / 1e9)

    def observe_ledger_write_ns(self, ns: int) -> None:
        """One ledger row's enqueue→commit latency, in ns (``LedgerWriter(on_latency=…)``)."""
        self.ledger_write.observe(ns / 1e9)

    def bus_dropped(self, reason: str, n: int = 1) -> None:
        """``n`` bus messages lost for ``reason``."""
        self.bus_drops.labels(reason=reason).inc(n)

    def set_open_orders(self, n: int) -> None:
        """Orders in flight now."""
        self.open_orders.set(n)

    def set_pnl(self, *, realized_micros: int, unrealized_micros: int | None = None) -> None:
        """Current PnL in micros (unrealized left as it was when not given)."""
        self.pnl.labels(kind="realized").set(realized_micros)
        if unrealized_micros is not None:
            self.pnl.labels(kind="unrealized").set(unrealized_micros)

    # -- periodic mirrors of cumulative counters ---------------------------------------------------
    def _mirror(self, counter: Counter, key: str, value: int, label: str = "") -> None:
        """Add to ``counter`` the increase of cumulative ``value`` since the last call."""
        k = (key, label)
        with self._lock:
            last = self._last.get(k, 0)
            self._last[k] = value
        delta = value - last if value >= last else value
        if delta > 0:
            (counter.labels(label) if label else counter).inc(delta)

    def observe_engine(
        self,
        stats: EngineStats,
        *,
        rejections: Mapping[str, int] | None = None,
        reaction_ns: Sequence[int] | LatestSamples = (),
        open_orders: int | None = None,
    ) -> None:
        """Mirror the engine's counters: ``stats`` (events, approved, strategy errors),
        ``rejections`` (cumulative rejections by rule, e.g. ``RiskManager.rejections``; without
        it every rejection counts under rule ``"any"``), ``reaction_ns`` (the engine's ring of
        tick-to-order samples, or a growing list, ns: the samples taken since the last call are
        observed) and ``open_orders`` (e.g. ``RiskManager.open_orders``)."""
        self._mirror(self.events, "events", stats.events)
        self._mirror(self.strategy_errors, "strategy_errors", stats.strategy_errors)
        self._mirror(self.intents_approved, "approved", stats.approved)
        if rejections is None:
            self._mirror(self.intents_rejected, "rejected", stats.rejected, "any")
        else:
            for rule, n in rejections.items():
                self._mirror(self.intents_rejected, "rejected", n, rule)
        if isinstance(reaction_ns, LatestSamples):  # the engine's ring: its count goes on
            new = reaction_ns.since(self._reaction_seen)
            self._reaction_seen = reaction_ns.total
        else:
            seen = self._reaction_seen if self._reaction_seen <= len(reaction_ns) else 0
            new = list(reaction_ns[seen:])
            self._reaction_seen = len(reaction_ns)
        for ns in new:
            self.tick_to_order.observe(ns / 1e9)
        if open_orders is not None:
            self.open_orders.set(open_orders)

    def observe_feed(self, counters: FeedCounters, *, stale_books: int | None = None) -> None:
        """Mirror a market feed's ``FeedCounters``; ``stale_books``: books not trusted now
        (e.g. ``len(feed.stale)``)."""
        self._mirror(self.frames, "frames", counters.frames)
        self._mirror(self.malformed, "malformed", counters.malformed)
        self._mirror(self.reconnects, "reconnects", counters.reconnects)
        self._mirror(self.resyncs, "resyncs", counters.resyncs)
        self._mirror(self.stale_flags, "stale_flags", counters.stale_flags)
        if stale_books is not None:
            self.stale_books.set(stale_books)

    def observe_portfolio(
        self,
        *,
        fills: int,
        fees_micros: int,
        realized_micros: int,
        unrealized_micros: int | None = None,
    ) -> None:
        """Mirror the portfolio: cumulative ``fills`` (``len(portfolio.history)``) and
        ``fees_micros`` (``portfolio.fees``), current PnL in micros."""
        self._mirror(self.fills, "fills", fills)
        self._mirror(self.fees, "fees", fees_micros)
        self.set_pnl(realized_micros=realized_micros, unrealized_micros=unrealized_micros)

    def observe_bus(self, dropped: Mapping[str, int]) -> None:
        """Mirror a bus's cumulative drops by reason (``bus.health().dropped``)."""
        for reason, n in dropped.items():
            self._mirror(self.bus_drops, "bus_dropped", n, reason)

    # -- exposition ------------------------------------------------------------------------------
    def exposition(self) -> bytes:
        """The registry in Prometheus text format (``CONTENT_TYPE``)."""
        return generate_latest(self.registry)

    def value(self, name: str, labels: Mapping[str, str] | None = None) -> float | None:
        """A sample's current value by its full name (e.g. ``polylab_fills_total``), or None."""
        return self.registry.get_sample_value(name, dict(labels or {}))

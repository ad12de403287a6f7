"""Metrics: mirrored from a real backtest's engine, risk gate and portfolio, on private
registries that do not collide."""

from __future__ import annotations

from pathlib import Path

from engine_recordings import write_negrisk_arb
from prometheus_client.parser import text_string_to_metric_families

from polylab.backtest import run_backtest
from polylab.book.feed_health import FeedCounters
from polylab.config import PolylabConfig, load_config
from polylab.engine import EngineStats
from polylab.ops.metrics import TICK_TO_ORDER_BUCKETS_S, Metrics


def only_sum_to_100(**env: str) -> PolylabConfig:
    return load_config(env={"RISK_MAX_POSITION": "1000", **env}).__replace__(
        strategies=("sum_to_100",)
    )


def test_two_instances_do_not_collide_and_names_are_the_issues() -> None:
    a, b = Metrics(), Metrics()
    a.observe_feed(FeedCounters(frames=5))
    assert a.value("polylab_feed_frames_total") == 5
    assert b.value("polylab_feed_frames_total") == 0
    names = {f.name for f in text_string_to_metric_families(a.exposition().decode())}
    expected = {
        "polylab_feed_frames",
        "polylab_feed_malformed",
        "polylab_feed_reconnects",
        "polylab_feed_resyncs",
        "polylab_feed_stale_books",
        "polylab_tick_to_order_seconds",
        "polylab_intents_approved",
        "polylab_intents_rejected",
        "polylab_fills",
        "polylab_fees_micros",
        "polylab_pnl_micros",
        "polylab_open_orders",
        "polylab_bus_dropped",
        "polylab_ledger_write_seconds",
    }
    assert expected <= names, expected - names


def test_cumulative_sources_are_mirrored_as_increases() -> None:
    m = Metrics()
    m.observe_feed(FeedCounters(frames=10, malformed=1, reconnects=2, resyncs=3), stale_books=4)
    m.observe_feed(FeedCounters(frames=25, malformed=1, reconnects=2, resyncs=7), stale_books=0)
    assert m.value("polylab_feed_frames_total") == 25
    assert m.value("polylab_feed_resyncs_total") == 7
    assert m.value("polylab_feed_stale_books") == 0
    # the feed was replaced (its counters start over): counted from zero, never subtracted
    m.observe_feed(FeedCounters(frames=3))
    assert m.value("polylab_feed_frames_total") == 28
    m.observe_bus({"queue_full": 2, "redis_down": 0})
    m.observe_bus({"queue_full": 5, "redis_down": 9})
    m.bus_dropped("closed")
    assert m.value("polylab_bus_dropped_total", {"reason": "queue_full"}) == 5
    assert m.value("polylab_bus_dropped_total", {"reason": "redis_down"}) == 9
    assert m.value("polylab_bus_dropped_total", {"reason": "closed"}) == 1


def test_tick_to_order_buckets_span_50us_to_50ms_and_new_samples_only() -> None:
    assert TICK_TO_ORDER_BUCKETS_S[0] == 50e-6 and TICK_TO_ORDER_BUCKETS_S[-1] == 50e-3
    m = Metrics()
    samples = [40_000, 120_000, 900_000]  # ns: 40 µs, 120 µs, 900 µs
    m.observe_engine(EngineStats(), reaction_ns=samples)
    samples.append(30_000_000)  # 30 ms, appended by the engine later
    m.observe_engine(EngineStats(), reaction_ns=samples)
    h = "polylab_tick_to_order_seconds"
    assert m.value(h + "_count") == 4
    assert m.value(h + "_bucket", {"le": "5e-05"}) == 1
    assert m.value(h + "_bucket", {"le": "0.0002"}) == 2
    assert m.value(h + "_bucket", {"le": "0.001"}) == 3
    assert m.value(h + "_bucket", {"le": "0.05"}) == 4
    m.observe_ledger_write_ns(30_000_000)
    assert m.value("polylab_ledger_write_seconds_bucket", {"le": "0.05"}) == 1
    assert m.value("polylab_ledger_write_seconds_bucket", {"le": "0.025"}) == 0


def test_observe_engine_from_a_real_backtest(tmp_path: Path) -> None:
    rec = tmp_path / "arb.jsonl"
    write_negrisk_arb(rec)
    res, _, engine = run_backtest(rec, only_sum_to_100())
    m = Metrics()
    pf = engine.portfolio
    m.observe_engine(
        engine.stats,
        rejections=engine.risk.rejections,
        reaction_ns=engine.reaction_ns,
        open_orders=engine.risk.open_orders,
    )
    m.observe_portfolio(fills=len(pf.history), fees_micros=pf.fees, realized_micros=pf.realized)
    assert engine.stats.approved == res.intents - res.rejections > 0
    assert m.value("polylab_intents_approved_total") == engine.stats.approved
    assert m.value("polylab_fills_total") == len(pf.history) > 0
    assert m.value("polylab_fees_micros_total") == res.fees > 0
    assert m.value("polylab_pnl_micros", {"kind": "realized"}) == res.realized
    assert m.value("polylab_tick_to_order_seconds_count") == len(engine.reaction_ns) > 0
    assert m.value("polylab_open_orders") == 0

    # the same recording with one open order allowed: the 3-leg set is refused by that rule
    _, _, refused = run_backtest(rec, only_sum_to_100(RISK_MAX_OPEN_ORDERS="1"))
    k = Metrics()
    k.observe_engine(refused.stats, rejections=refused.risk.rejections)
    assert refused.stats.rejected > 0
    assert k.value("polylab_intents_rejected_total", {"rule": "open_orders"}) == (
        refused.stats.rejected
    )
    assert k.value("polylab_intents_rejected_total", {"rule": "rate"}) is None
    assert k.value("polylab_intents_approved_total") == 0

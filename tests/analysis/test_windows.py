"""Window labels are measured: a binary window is a stale leg only when its mirrored books
disagree when it opens; any other window is structural only when it outlives a multiple of the
reaction time, else transient. The synthetic generator's binary edges vary."""

from pathlib import Path

import pytest

from polylab.analysis.opportunities import OpportunityTracker, SumAnalyzer
from polylab.analysis.replay import replay
from polylab.analysis.windows import SumMonitor, WindowConfig, label_window, mirror_gap
from polylab.book.l2 import L2Book
from polylab.book.synthetic import SyntheticConfig, write_synthetic
from polylab.market import Market, MarketCatalog
from polylab.money import MICROS, tick_size

TICK = tick_size("0.01")
MS = 1_000_000
T0 = 1_800_000_000_000_000_000


def books_for(cat: MarketCatalog) -> dict[str, L2Book]:
    return {t: L2Book(t, TICK, m.condition_id) for m in cat.markets.values() for t in m.token_ids}


def quote(b: L2Book, bid: int | None, ask: int | None, size: int = 200 * MICROS) -> None:
    """Make ``b`` show one bid and one ask (cents), replacing what it had."""
    b.load([(bid, size)] if bid is not None else [], [(ask, size)] if ask is not None else [])


def binary() -> tuple[MarketCatalog, dict[str, L2Book]]:
    cat = MarketCatalog([Market(condition_id="0xbin", token_ids=("yes", "no"))])
    return cat, books_for(cat)


def negrisk(n: int = 3) -> tuple[MarketCatalog, dict[str, L2Book]]:
    cat = MarketCatalog(
        [
            Market(
                condition_id=f"0xm{i}", token_ids=(f"y{i}", f"n{i}"), neg_risk=True, event_id="ev"
            )
            for i in range(n)
        ]
    )
    return cat, books_for(cat)


def test_mirror_gap_is_zero_only_for_mirrored_books() -> None:
    _, bk = binary()
    quote(bk["yes"], 40, 42)
    quote(bk["no"], 58, 60)  # NO bid 0.58 = 1 − YES ask 0.42; NO ask 0.60 = 1 − YES bid 0.40
    assert mirror_gap(bk["yes"], bk["no"]) == 0
    quote(bk["no"], 58, 55)  # NO ask moved to 0.55, the YES bid has not followed
    assert mirror_gap(bk["yes"], bk["no"]) == 5 * TICK.micros
    quote(bk["yes"], None, None)
    quote(bk["no"], None, None)  # empty books mirror each other
    assert mirror_gap(bk["yes"], bk["no"]) == 0


@pytest.mark.parametrize(
    ("stale", "duration_ms", "reaction_ms", "multiple", "want"),
    [
        (True, 50, 1, 3.0, "stale_leg"),
        (False, 3, 1, 3.0, "structural"),
        (False, 2, 1, 3.0, "transient"),
        (False, 2, 1, 1.5, "structural"),
        (False, 0, 1, 3.0, "transient"),
    ],
)
def test_label_rule(
    stale: bool, duration_ms: int, reaction_ms: int, multiple: float, want: str
) -> None:
    assert label_window(stale, duration_ms * MS, reaction_ms * MS, multiple) == want


def test_binary_window_is_a_stale_leg_when_the_mirror_disagrees() -> None:
    cat, bk = binary()
    mon = SumMonitor(cat, bk)
    quote(bk["yes"], 40, 42)
    quote(bk["no"], 58, 60)
    mon.on_market("0xbin", T0)
    quote(bk["no"], 52, 55)  # NO repriced first: YES ask 0.42 + NO ask 0.55 < $1
    mon.on_market("0xbin", T0 + 1 * MS)
    quote(bk["yes"], 45, 47)  # YES catches up
    mon.on_market("0xbin", T0 + 40 * MS)
    (w,) = mon.finish(T0 + 50 * MS, reaction_ns=MS)
    assert (w.kind, w.side, w.label, w.edge) == ("binary", "buy", "stale_leg", 3 * TICK.micros)
    assert w.mirror_gap > 0 and w.duration_ns == 39 * MS


@pytest.mark.parametrize(("lasts_ms", "want"), [(2, "transient"), (30, "structural")])
def test_negrisk_window_is_structural_only_when_it_outlives_the_reaction_time(
    lasts_ms: int, want: str
) -> None:
    cat, bk = negrisk()
    for i in range(3):
        quote(bk[f"y{i}"], 30, 34)
        quote(bk[f"n{i}"], 66, 70)
    mon = SumMonitor(cat, bk, config=WindowConfig(structural_multiple=3.0))
    tracker = OpportunityTracker(cat, bk, size_micros=100 * MICROS, fallback_fee_micros=0)
    mon.on_market("0xm0", T0)
    quote(bk["y0"], 28, 31)  # Σ YES asks 0.99
    for obs in (mon.on_market, tracker.on_market):
        obs("0xm0", T0 + MS)
    quote(bk["y0"], 30, 34)
    for obs in (mon.on_market, tracker.on_market):
        obs("0xm0", T0 + (1 + lasts_ms) * MS)
    (w,) = mon.finish(T0 + 100 * MS, reaction_ns=5 * MS // 3)  # 3 × 1.67 ms = 5 ms
    (dw,) = tracker.finish(T0 + 100 * MS, reaction_ns=5 * MS // 3)
    assert (w.kind, w.side, w.mirror_gap, w.duration_ns) == ("negrisk", "buy", 0, lasts_ms * MS)
    assert w.label == want and dw.label == want and dw.duration_ns == lasts_ms * MS


def test_depth_window_and_snapshot_measure_the_binary_mirror() -> None:
    cat, bk = binary()
    tracker = OpportunityTracker(cat, bk, size_micros=100 * MICROS, fallback_fee_micros=0)
    quote(bk["yes"], 40, 42)
    quote(bk["no"], 52, 55)
    tracker.on_market("0xbin", T0)
    opps = SumAnalyzer(cat, bk, sizes=(100 * MICROS,), fallback_fee_micros=0).scan(T0)
    assert opps and {o.label for o in opps} == {"stale_leg"}
    quote(bk["no"], 58, 60)
    tracker.on_market("0xbin", T0 + 30 * MS)
    (dw,) = tracker.finish(T0 + 50 * MS, reaction_ns=MS)
    assert (dw.label, dw.duration_ns) == ("stale_leg", 30 * MS) and dw.mirror_gap > 0


def test_synthetic_binary_edges_vary(tmp_path: Path) -> None:
    cfg = SyntheticConfig(seed=5, duration_s=10.0, rate_hz=300.0)
    write_synthetic(tmp_path / "s.jsonl.zst", cfg)
    res, _, windows, _ = replay(tmp_path / "s.jsonl.zst", verify=True)
    assert res.mismatches == 0
    binary_windows = [w for w in windows if w.kind == "binary"]
    edges = {w.edge for w in binary_windows}
    assert len(edges) >= 3, edges  # not every stale leg is exactly one tick
    hi = cfg.stale_move_ticks[1]
    assert max(edges) <= (hi - 1) * TICK.micros
    assert all(w.label == "stale_leg" and w.mirror_gap > 0 for w in binary_windows)


def test_backtest_labels_windows_with_its_measured_reaction_time(tmp_path: Path) -> None:
    from engine_recordings import write_negrisk_arb

    from polylab.backtest import run_backtest
    from polylab.config import load_config

    rec = tmp_path / "arb.jsonl"
    write_negrisk_arb(rec)  # a neg-risk set mispriced for about a second
    cfg = load_config(env={"RISK_MAX_POSITION": "1000"}).__replace__(strategies=("sum_to_100",))
    res, rows, _ = run_backtest(rec, cfg)
    assert res.intents == 1 and 0 < res.reaction_p50_ns == res.reaction_ns
    depth = rows.rows["depth_opportunities"]
    assert depth and {w.label for w in depth} == {"structural"}  # type: ignore[attr-defined]
    # the same window, against a multiple no second-long window outlives: transient
    strict = cfg.__replace__(analysis=WindowConfig(structural_multiple=1e12))
    _, rows2, _ = run_backtest(rec, strict)
    assert {w.label for w in rows2.rows["depth_opportunities"]} == {"transient"}  # type: ignore[attr-defined]
    assert {w.label for w in rows2.rows["opportunities"]} == {"transient"}  # type: ignore[attr-defined]

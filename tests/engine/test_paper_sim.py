"""A paper session against the real simulator over sockets, with feed faults on: it must end
with positions and cash that add up (nothing lost, nothing double-counted)."""

import asyncio
from collections import Counter
from pathlib import Path

from polylab.config import load_config
from polylab.money import MICROS
from polylab.runner.paper import run_paper, venue

FAULTS = {
    "drop_prob": 0.01,
    "reorder_prob": 0.01,
    "malformed_prob": 0.01,
    "disconnect_every_s": 3.0,
    "latency_ms": 2.0,
    "jitter_ms": 2.0,
}


def test_paper_against_faulty_simulator_keeps_the_books_straight(tmp_path: Path) -> None:
    cfg = load_config(env={"RISK_MAX_POSITION": "300"})

    async def main():  # type: ignore[no-untyped-def]
        async with venue(None, seed=11, sim_overrides={"faults": FAULTS}) as v:
            return await run_paper(cfg, v, seconds=9.0, out_dir=tmp_path / "run")

    res, run = asyncio.run(main())
    pf = run.portfolio
    fills = run.recorder.rows.get("fills", [])
    merges = run.recorder.rows.get("merges", [])
    settles = run.recorder.rows.get("settlements", [])
    orders = run.recorder.rows.get("orders", [])
    assert res.trades >= 1 and fills, "the simulator's neg-risk windows should have traded"
    assert run.feed.counters.reconnects >= 1 and run.feed.counters.malformed >= 1
    # cash: start + every fill's cash change + merge payouts + settlement payouts
    payouts = sum(m.payout for m in merges) + sum(getattr(s, "payout", 0) for s in settles)
    assert pf.cash == 10_000 * MICROS + sum(f.cash_delta for f in fills) + payouts
    # shares: bought − sold − merged (per token), and never negative
    held: Counter[str] = Counter()
    for f in fills:
        held[f.token_id] += f.size if f.side == "BUY" else -f.size
    for m in merges:
        for t in m.token_ids:
            held[t] -= m.sets
    for s in settles:
        for t in getattr(s, "token_ids", ()):
            held[t] = 0
    assert {t: n for t, n in held.items() if n} == {
        t: pf.position(t) for t in held if pf.position(t)
    }
    assert all(n >= 0 for n in held.values())
    # one report per (intent, leg, order), one fill per filled order
    keys = [(o.intent_id, o.leg, o.order_id) for o in orders]
    assert len(keys) == len(set(keys))
    assert len(fills) == sum(1 for o in orders if o.filled)
    snap = pf.snapshot(run.engine.books)
    assert snap.realized + snap.unrealized == snap.equity - snap.starting_cash
    assert (tmp_path / "run/summary.json").is_file()

"""Paper validation: trade a candidate config on paper, then check the backtest agrees.

``paper_check`` runs the config through the paper session machinery (``runner.paper``: the
built-in simulator by default, or a running simulator's URL) for ``seconds``, backtests the
feed recording that session wrote (``<out_dir>/paper/feed.jsonl.zst``) with the same config
into ``<out_dir>/backtest``, and compares the two run folders (``compare.compare_runs``).

A paper session replays exactly (same decisions, same fills), so any difference is a bug or a
feed the backtest does not see the same way; the gate reads ``diff_pct``:

    diff_pct = |paper PnL − backtest PnL| / max(|backtest PnL|, $1) × 100

PnL as the run summaries give it (realized + unrealized, positions marked to the best bid;
integer micros), the $1 floor keeps a near-zero backtest from turning cents into a huge
percentage. Computed exactly, rounded to 6 places.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Callable, Coroutine
from fractions import Fraction
from pathlib import Path
from typing import Any, TypeVar

import msgspec

from polylab.backtest import BacktestResult, run_backtest
from polylab.compare import compare_runs
from polylab.config import PolylabConfig, config_id
from polylab.errors import InputError
from polylab.money import MICROS
from polylab.runner.paper import FEED_FILE, PaperRun, run_paper, venue

__all__ = ["PaperCheck", "diff_pct", "paper_check"]

T = TypeVar("T")


class PaperCheck(msgspec.Struct, kw_only=True):
    """A paper session against the backtest of its own feed. Money in micros; ``diff_pct``
    as the module doc defines it; ``identical_fills`` / ``identical_intents``: the two runs
    booked the same fills / made the same decisions, in the same order; ``comparison``:
    ``compare.RunComparison`` as JSON."""

    config_id: str
    seconds: float
    venue: str
    paper_dir: str
    backtest_dir: str
    feed_sha256: str
    paper_pnl_micros: int
    backtest_pnl_micros: int
    diff_micros: int
    diff_pct: float
    identical_fills: bool
    identical_intents: bool
    paper_trades: int
    backtest_trades: int
    paper_fees_micros: int
    backtest_fees_micros: int
    fill_rate: float
    win_rate: float
    comparison: dict[str, Any]

    def block(self) -> dict[str, Any]:
        """The ``paper`` block of the validation metrics (``pipeline.outputs``)."""
        return {
            "trades": self.paper_trades,
            "pnl_micros": self.paper_pnl_micros,
            "fees_micros": self.paper_fees_micros,
            "fill_rate": self.fill_rate,
            "win_rate": self.win_rate,
            "backtest_pnl_micros": self.backtest_pnl_micros,
            "backtest_trades": self.backtest_trades,
            "diff_micros": self.diff_micros,
            "diff_pct": self.diff_pct,
            "identical_fills": self.identical_fills,
            "identical_intents": self.identical_intents,
            "seconds": self.seconds,
            "venue": self.venue,
        }


def diff_pct(paper_micros: int, backtest_micros: int) -> float:
    """|paper − backtest| / max(|backtest|, $1) × 100, exact then rounded to 6 places."""
    den = max(abs(backtest_micros), MICROS)
    return round(float(Fraction(abs(paper_micros - backtest_micros) * 100, den)), 6)


def _run(factory: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine to the end from sync code, also inside a running loop (a notebook's
    kernel): then on a fresh loop in a worker thread."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(factory())
    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="paper-check") as pool:
        return pool.submit(lambda: asyncio.run(factory())).result()


def paper_check(
    cfg: PolylabConfig,
    *,
    seconds: float,
    out_dir: str | Path,
    url: str | None = None,
    seed: int = 7,
    sim_overrides: dict[str, Any] | None = None,
) -> PaperCheck:
    """Paper-trade ``cfg`` for ``seconds`` (the built-in simulator seeded with ``seed``, or
    the simulator at ``url``), backtest its feed and compare (module doc)."""
    if not seconds > 0:
        raise InputError(f"paper seconds must be > 0 (got {seconds!r})")
    out = Path(out_dir)
    paper_dir, bt_dir = out / "paper", out / "backtest"

    async def session() -> tuple[BacktestResult, PaperRun]:
        async with venue(url or None, seed=seed, sim_overrides=sim_overrides) as v:
            return await run_paper(cfg, v, seconds=seconds, out_dir=paper_dir)

    paper, _run_state = _run(session)
    prov = paper.provenance
    feed = paper_dir / FEED_FILE
    bt, _, _ = run_backtest(feed, cfg, out_dir=bt_dir)
    c = compare_runs(paper_dir, bt_dir)
    return PaperCheck(
        config_id=config_id(cfg),
        seconds=float(seconds),
        venue=url or "built-in simulator",
        paper_dir=str(paper_dir),
        backtest_dir=str(bt_dir),
        feed_sha256=prov.data_hash if prov is not None else "",
        paper_pnl_micros=paper.pnl,
        backtest_pnl_micros=bt.pnl,
        diff_micros=abs(paper.pnl - bt.pnl),
        diff_pct=diff_pct(paper.pnl, bt.pnl),
        identical_fills=c.first_fill_divergence is None,
        identical_intents=c.identical_intents,
        paper_trades=paper.trades,
        backtest_trades=bt.trades,
        paper_fees_micros=paper.fees,
        backtest_fees_micros=bt.fees,
        fill_rate=paper.fill_rate,
        win_rate=paper.win_rate,
        comparison=msgspec.to_builtins(c),
    )

"""Promotion test data: configs that differ in one threshold, and validation metrics in the
shape ``pipeline.outputs`` documents (money in integer micros)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec

from polylab.config import PolylabConfig

ROOT = Path(__file__).resolve().parents[2]
GATES = ROOT / "pipelines" / "gates.yaml"


def trading_config(min_edge_micros: int) -> PolylabConfig:
    """The two set strategies at ``min_edge_micros`` (per set), risk limits out of the way."""
    return msgspec.convert(
        {
            "strategies": ["sum_to_100", "clipper"],
            "sum_to_100": {"min_edge_micros": min_edge_micros, "min_liquidity_micros": 1_000_000},
            "clipper": {"min_edge_micros": min_edge_micros},
            "risk": {
                "max_position_micros": 10_000_000_000,
                "max_daily_loss_micros": 10_000_000_000,
            },
        },
        PolylabConfig,
    )


def metrics(
    *, oos_trades: int = 12, oos_pnl: int = 4_500_000, diff_pct: float = 2.5
) -> dict[str, Any]:
    """A validation's metrics: in-sample, out-of-sample and paper blocks (``oos_pnl`` is the
    PnL at payout the shipped gates judge; marked to the bids it is $1 lower)."""
    return {
        "in_sample": {
            "trades": 40,
            "pnl_micros": 8_000_000,
            "pnl_at_payout_micros": 9_000_000,
            "max_drawdown_micros": 1_000_000,
        },
        "out_of_sample": {
            "trades": oos_trades,
            "pnl_micros": oos_pnl - 1_000_000,
            "pnl_at_payout_micros": oos_pnl,
            "max_drawdown_micros": 2_000_000,
        },
        "paper": {"diff_pct": diff_pct},
        "degradation": 0.5,
    }

"""What the dashboard reads from the ledger: the run and its PnL over time.

The bus only carries what happens from now on (and the streams' recent entries); the ledger
holds the whole run. ``read_history`` gives the latest run (or ``run_id``) and its last
``limit`` PnL snapshots, oldest first, in integer micros and ns.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from polylab.store import ledger_schema as S
from polylab.store.ledger import Ledger

__all__ = ["read_history"]


def read_history(ledger: Ledger, run_id: str | None = None, limit: int = 2_000) -> dict[str, Any]:
    """``{"run": {...} | None, "pnl": [[ts_ns, realized, unrealized, equity, cash], ...]}``
    (money in micros). Blocking (SQL): call it from a worker thread."""
    rid = run_id or ledger.latest_run()
    if rid is None:
        return {"run": None, "pnl": []}
    runs, snaps = S.runs, S.pnl_snapshots
    with ledger.engine.connect() as conn:
        run = conn.execute(select(runs).where(runs.c.id == rid)).mappings().first()
        rows = conn.execute(
            select(
                snaps.c.ts_ns,
                snaps.c.realized_micros,
                snaps.c.unrealized_micros,
                snaps.c.equity_micros,
                snaps.c.cash_micros,
            )
            .where(snaps.c.run_id == rid)
            .order_by(snaps.c.ts_ns.desc())
            .limit(limit)
        ).all()
    if run is None:
        return {"run": None, "pnl": []}
    keep = ("id", "mode", "venue", "config_id", "code_version", "started_ns", "status")
    return {
        "run": {k: run[k] for k in keep},
        "pnl": [[int(v) for v in r] for r in reversed(rows)],
    }

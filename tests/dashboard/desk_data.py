"""A ledger's research side as the promotion pipeline leaves it: two configurations with
provenance, gate results and metrics, their promotion history, and the operators' controls
as the runner records them (for the dashboard's Configuration and Controls history panels)."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

import msgspec

from polylab.config import PolylabConfig, config_id, load_config
from polylab.store.ledger import Ledger
from polylab.store.ledger_rows import ConfigRow, ErrorRow

SHA_A = "a" * 64
SHA_B = "b" * 64


def gate(metric: str, op: str, limit: int, value: int | None) -> dict[str, Any]:
    """A gate result as ``pipeline.gates`` stores it in ``ConfigRow.gates``."""
    ok = value is not None and (value >= limit if op == ">=" else value <= limit)
    return {"metric": metric, "op": op, "limit": limit, "value": value, "passed": ok}


def metrics(pnl: int, trades: int) -> dict[str, Any]:
    """A validation's metrics (``pipeline.outputs`` conventions), money in micros."""
    block = {"trades": trades, "pnl_micros": pnl, "fees_micros": pnl // 10, "win_rate": 0.625}
    return {
        "in_sample": block,
        "out_of_sample": {**block, "pnl_micros": pnl // 2},
        "folds": [{"fold": 0}, {"fold": 1}],
        "degradation": 0.5,
    }


def config_row(cfg: PolylabConfig, *, pnl: int, created_ns: int) -> ConfigRow:
    return ConfigRow(
        id=config_id(cfg),
        body=msgspec.to_builtins(cfg),
        git_sha="0123456789abcdef0123456789abcdef01234567",
        data_hashes={"recs/day1.jsonl.zst": SHA_A, "recs/day2.jsonl.zst": SHA_B},
        metrics=metrics(pnl, 12),
        gates={
            "min_oos_trades": gate("out_of_sample.trades", ">=", 5, 12),
            "min_oos_pnl": gate("out_of_sample.pnl_micros", ">=", 0, pnl // 2),
        },
        created_ns=created_ns,
    )


@dataclass
class Desk:
    """What ``fill_desk`` wrote: the two config ids (old, new), the run id and the times
    (ns) of the kill switch and the resume."""

    old: str
    new: str
    run_id: str
    kill_ns: int
    resume_ns: int


def fill_desk(ledger: Ledger, *, rolled_back: bool = True) -> Desk:
    """Configs ``old`` (min edge $0.004) and ``new`` ($0.006, position limit $250): old is
    promoted by alice, then new by bob, then (``rolled_back``) carol rolls back to old; a run
    of ``new`` whose operator pressed the kill switch then resume (as ``apply_control``
    records them)."""
    old_cfg = load_config(env={"SUMTO100_MIN_EDGE": "0.004"})
    new_cfg = load_config(env={"SUMTO100_MIN_EDGE": "0.006", "RISK_MAX_POSITION": "250"})
    t0 = time.time_ns() - 3 * 3_600 * 10**9  # three hours ago, then minutes apart
    minute = 60 * 10**9
    old = config_row(old_cfg, pnl=3_500_000, created_ns=t0)
    new = config_row(new_cfg, pnl=8_250_000, created_ns=t0 + minute)
    ledger.put_config(old)
    ledger.put_config(new)
    ledger.promote_config(old.id, by="alice", reason="first validated", promoted_ns=t0 + 2 * minute)
    ledger.promote_config(
        new.id, by="bob", reason="better out of sample", promoted_ns=t0 + 30 * minute
    )
    if rolled_back:
        ledger.rollback_config(by="carol", reason="fills worse than paper", ts_ns=t0 + 90 * minute)
    run = ledger.start_run(
        mode="paper", venue="sim", config_id=new.id, code_version="test", started_ns=t0
    )
    kill_ns, resume_ns = t0 + 100 * minute, t0 + 110 * minute
    who = "operator@127.0.0.1 session 1a2b3c4d"
    ledger.write(
        [
            ErrorRow(
                row_key=uuid.uuid4().hex,
                run_id=run,
                source="control",
                error=f"{action} by {who}: {reason}",
                ts_ns=ts,
            )
            for action, reason, ts in [
                ("kill_switch", "dashboard button", kill_ns),
                ("resume", "spread normal again", resume_ns),
            ]
        ]
    )
    return Desk(old=old.id, new=new.id, run_id=run, kill_ns=kill_ns, resume_ns=resume_ns)

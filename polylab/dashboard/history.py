"""What the dashboard reads from the ledger: the run and its PnL over time, the active
configuration with its provenance and promotion history, and the operators' controls.

The bus only carries what happens from now on (and the streams' recent entries); the ledger
holds the whole run. ``read_history`` gives the latest run (or ``run_id``) and its last
``limit`` PnL snapshots, oldest first, in integer micros and ns. ``read_config`` gives the
promoted configuration and the one the runner runs (ids, key thresholds, git sha, data hashes,
gate results, metrics) and the promotion history; ``read_controls`` the kill switch / resume
presses the runner recorded (``errors`` rows with source ``control``), newest first.
All of them block (SQL): call them from a worker thread.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec
from sqlalchemy import select

from polylab.money import cash_to_str, size_to_str
from polylab.research.sweep_space import SweepError, tunables
from polylab.store import ledger_schema as S
from polylab.store.ledger import Ledger
from polylab.store.ledger_rows import ConfigRow

__all__ = ["config_view", "parse_control", "read_config", "read_controls", "read_history"]

RISK_LIMITS = ("max_position_micros", "max_daily_loss_micros", "max_open_orders")
"""The risk section's fields shown next to the strategies' thresholds."""

_CONTROL = re.compile(r"(?P<action>\w+) by (?P<by>.*?): (?P<reason>.*)", re.S)
"""How ``RunnerService.apply_control`` words an ``errors`` row: ``ACTION by WHO: REASON``."""


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


_SHOWN_IN: dict[str, dict[str, str]] = {
    "sniper": {
        "max_price_micros": "dollars",  # $ per share: the cap paid
        "min_edge_micros": "dollars",  # $ of expected profit per intent
        "size_micros": "shares",
    },
}
"""Tunable fields whose config declares no spec unit (``Tunable.unit`` "micros": stored as
integer micros) and the unit people read them in on the page."""


def _row(section: str, field: str, value: int, unit: str) -> dict[str, object]:
    """One threshold row: ``value`` in ``unit`` for people, exact from the integer (dollars as
    "$0.05", at least two decimals; shares and fractions as the shortest decimal); ``field``:
    the config's own name ("sniper.max_price_micros") and, for a field kept in micros, the
    stored integer as ``value_micros``."""
    name = f"{section}.{field.removesuffix('_micros').removesuffix('_ms')}"
    row: dict[str, object] = {"name": name, "field": f"{section}.{field}"}
    if unit == "dollars":
        row["value"] = "$" + cash_to_str(value)
    elif unit in ("shares", "fraction"):
        row["value"] = size_to_str(value)
    else:
        row["value"] = str(value)
    row["unit"] = unit
    if field.endswith("_micros"):
        row["value_micros"] = value
    return row


def _thresholds(body: dict[str, object]) -> list[dict[str, object]]:
    """The tunable fields of each enabled strategy and the risk limits, as the spec writes
    them (``{"name": "sum_to_100.min_edge", "field": "sum_to_100.min_edge_micros", "value":
    "$0.003", "unit": "dollars", "value_micros": 3000}``; see ``_row``)."""
    out: list[dict[str, object]] = []
    names = body.get("strategies")
    for strategy in names if isinstance(names, list) else []:
        section = body.get(str(strategy))
        if not isinstance(section, dict):
            continue
        try:
            tun = tunables(str(strategy))
        except SweepError:  # a plugin or a strategy without tunable fields
            continue
        shown = _SHOWN_IN.get(str(strategy), {})
        for field, t in tun.items():
            value = section.get(field)
            if isinstance(value, int) and not isinstance(value, bool):
                if field.endswith("_ms"):
                    unit = "ms"
                elif t.unit == "micros":  # no spec unit: the page's, else as stored
                    unit = shown.get(field, "micros")
                else:
                    unit = t.unit
                out.append(_row(str(strategy), field, value, unit))
    risk = body.get("risk")
    if isinstance(risk, dict):
        for field in RISK_LIMITS:
            value = risk.get(field)
            if isinstance(value, int) and not isinstance(value, bool):
                unit = "dollars" if field.endswith("_micros") else "count"
                out.append(_row("risk", field, value, unit))
    return out


def config_view(cfg: ConfigRow) -> dict[str, Any]:
    """One configuration for the page: its id in full, status, times (ns), provenance (git sha,
    data hashes), gate results and metrics as stored, and its key thresholds."""
    strategies = cfg.body.get("strategies")
    return {
        "id": cfg.id,
        "status": cfg.status,
        "created_ns": cfg.created_ns,
        "promoted_ns": cfg.promoted_ns,
        "git_sha": cfg.git_sha,
        "data_hashes": cfg.data_hashes,
        "gates": cfg.gates,
        "metrics": cfg.metrics,
        "strategies": list(strategies) if isinstance(strategies, list) else [],
        "thresholds": _thresholds(cfg.body),
    }


def read_config(ledger: Ledger, running_id: str | None = None, limit: int = 50) -> dict[str, Any]:
    """``{"active": view | None, "running": {"id", "known", "config": view | None} | None,
    "history": [promotion, ...]}``: the promoted configuration, the one the runner runs
    (``running_id``, else the latest run's config id) and the latest ``limit`` promotions
    and rollbacks, newest first (who, when in ns, action, from → to, why)."""
    active = ledger.promoted_config()
    rid = running_id
    if rid is None:
        latest = ledger.latest_run()
        if latest is not None:
            with ledger.engine.connect() as conn:
                q = select(S.runs.c.config_id).where(S.runs.c.id == latest)
                rid = conn.execute(q).scalar_one_or_none()
    running: dict[str, Any] | None = None
    if rid:
        cfg = active if active is not None and active.id == rid else ledger.get_config(rid)
        running = {
            "id": rid,
            "known": cfg is not None,
            "config": None if cfg is None else config_view(cfg),
        }
    return {
        "active": None if active is None else config_view(active),
        "running": running,
        "history": [msgspec.to_builtins(p) for p in ledger.promotion_history(limit)],
    }


def parse_control(error: str) -> dict[str, str]:
    """``{"action", "by", "reason"}`` from a control's ``errors`` row text; a text in another
    shape is kept whole as the reason (action and by empty)."""
    m = _CONTROL.fullmatch(error)
    if m is None:
        return {"action": "", "by": "", "reason": error}
    return {k: m.group(k) for k in ("action", "by", "reason")}


def read_controls(ledger: Ledger, limit: int = 50) -> list[dict[str, Any]]:
    """The latest ``limit`` controls the runners applied (any run), newest first: ``ts_ns``,
    ``run_id``, ``action``, ``by``, ``reason``."""
    e = S.errors.c
    q = (
        select(e.ts_ns, e.run_id, e.error)
        .where(e.source == "control")
        .order_by(e.ts_ns.desc(), e.row_key.desc())
        .limit(limit)
    )
    with ledger.engine.connect() as conn:
        rows = conn.execute(q).all()
    return [{"ts_ns": int(ts), "run_id": run, **parse_control(str(err))} for ts, run, err in rows]

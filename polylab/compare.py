"""Where two runs differ: a paper session and the backtest of its feed, two configs, two codes.

``compare_runs(a, b)`` reads two run folders (``summary.json`` plus the ``intents`` and
``fills`` tables) and returns a ``RunComparison``: the headline totals side by side with their
relative difference, the same per strategy, and the first divergence of each sequence: the
first intent (in submission order) whose strategy, group, kind, legs, edge, creation time or
reason differ, with both sides, and likewise the first differing fill. Two runs that made the
same decisions on the same events have ``identical_intents`` True.

Units: money in micros (integers), sizes in share micros, times in ns; ``rel`` is (b − a) / |a|
(None when a is 0 and b is not; 0.0 when both are 0).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import msgspec
import polars as pl
from rich.table import Table

__all__ = [
    "CompareError",
    "Divergence",
    "Metric",
    "RunComparison",
    "RunData",
    "StrategyComparison",
    "compare_runs",
    "load_run",
    "render",
]

INTENT_KEY = ("strategy", "group_id", "kind", "legs", "edge", "created_ns", "reason")
"""What makes two intents the same decision (the intent id is a sequence number)."""
FILL_KEY = ("intent_id", "leg", "unwind", "token_id", "side", "size", "price", "cost", "fee")
"""What makes two fills the same booking."""


class CompareError(ValueError):
    """A folder that is not a run folder (no ``summary.json``, unreadable tables)."""


class Metric(msgspec.Struct, frozen=True):
    """One number of both runs: ``a``, ``b`` and ``rel`` = (b − a) / |a|."""

    a: int
    b: int
    rel: float | None


class StrategyComparison(msgspec.Struct, frozen=True, kw_only=True):
    """One strategy's intents, fills, shares filled (micros), fees and realized PnL (micros)."""

    intents: Metric
    fills: Metric
    filled: Metric
    fees: Metric
    realized: Metric


class Divergence(msgspec.Struct, frozen=True, kw_only=True):
    """The first position (0-based) where two sequences differ; ``a``/``b`` are the rows there
    (None past the end of the shorter one); ``fields``: the compared fields that differ."""

    index: int
    a: dict[str, Any] | None
    b: dict[str, Any] | None
    fields: list[str]


class RunComparison(msgspec.Struct, frozen=True, kw_only=True):
    """Two runs side by side (see the module docstring)."""

    run_a: str
    run_b: str
    same_data: bool
    same_config: bool
    totals: dict[str, Metric]
    by_strategy: dict[str, StrategyComparison]
    identical_intents: bool
    first_intent_divergence: Divergence | None
    first_fill_divergence: Divergence | None


class RunData(msgspec.Struct, frozen=True, kw_only=True):
    """What a comparison reads from one run folder."""

    path: str
    summary: dict[str, Any]
    intents: list[dict[str, Any]]
    fills: list[dict[str, Any]]


def _table(folder: Path, kind: str) -> list[dict[str, Any]]:
    p = folder / f"{kind}.parquet"
    if not p.is_file():
        return []
    try:
        return pl.read_parquet(p).to_dicts()
    except (OSError, pl.exceptions.PolarsError) as exc:
        raise CompareError(f"{p}: not a readable Parquet table ({exc})") from None


def load_run(folder: str | Path) -> RunData:
    """Read a run folder; ``CompareError`` naming the folder when it is not one."""
    f = Path(folder)
    s = f / "summary.json"
    if not s.is_file():
        raise CompareError(f"{f}: not a run folder (no summary.json)")
    try:
        summary = json.loads(s.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise CompareError(f"{s}: unreadable summary ({exc})") from None
    if not isinstance(summary, dict):
        raise CompareError(f"{s}: expected a JSON object")
    return RunData(
        path=str(f), summary=summary, intents=_table(f, "intents"), fills=_table(f, "fills")
    )


def _metric(a: int, b: int) -> Metric:
    rel = 0.0 if a == b else (None if a == 0 else round((b - a) / abs(a), 6))
    return Metric(a=a, b=b, rel=rel)


def _first_divergence(
    xs: list[dict[str, Any]], ys: list[dict[str, Any]], key: tuple[str, ...]
) -> Divergence | None:
    for i in range(max(len(xs), len(ys))):
        x = xs[i] if i < len(xs) else None
        y = ys[i] if i < len(ys) else None
        if x is None or y is None:
            return Divergence(index=i, a=x, b=y, fields=list(key))
        diff = [k for k in key if x.get(k) != y.get(k)]
        if diff:
            return Divergence(index=i, a=x, b=y, fields=diff)
    return None


def _per_strategy(run: RunData) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}

    def row(name: str) -> dict[str, int]:
        return out.setdefault(
            name, {"intents": 0, "fills": 0, "filled": 0, "fees": 0, "realized": 0}
        )

    for r in run.intents:
        row(str(r.get("strategy", "?")))["intents"] += 1
    for f in run.fills:
        st = row(str(f.get("strategy", "?")))
        st["fills"] += 1
        st["filled"] += int(f.get("size") or 0)
        st["fees"] += int(f.get("fee") or 0)
        st["realized"] += int(f.get("realized") or 0)
    return out


def _provenance(run: RunData, key: str) -> str:
    prov = run.summary.get("provenance")
    return str(prov.get(key, "")) if isinstance(prov, dict) else ""


def compare_runs(a: str | Path | RunData, b: str | Path | RunData) -> RunComparison:
    """Compare run folders (or loaded runs) ``a`` and ``b``."""
    ra = a if isinstance(a, RunData) else load_run(a)
    rb = b if isinstance(b, RunData) else load_run(b)
    totals: dict[str, Metric] = {
        "intents": _metric(len(ra.intents), len(rb.intents)),
        "fills": _metric(len(ra.fills), len(rb.fills)),
        "filled": _metric(
            sum(int(f.get("size") or 0) for f in ra.fills),
            sum(int(f.get("size") or 0) for f in rb.fills),
        ),
    }
    for k in ("trades", "rejections", "fees", "realized", "unrealized", "pnl", "events"):
        totals[k] = _metric(int(ra.summary.get(k) or 0), int(rb.summary.get(k) or 0))
    pa, pb = _per_strategy(ra), _per_strategy(rb)
    zero = {"intents": 0, "fills": 0, "filled": 0, "fees": 0, "realized": 0}
    by: dict[str, StrategyComparison] = {}
    for name in sorted(set(pa) | set(pb)):
        x, y = pa.get(name, zero), pb.get(name, zero)
        by[name] = StrategyComparison(**{k: _metric(x[k], y[k]) for k in zero})
    first_intent = _first_divergence(ra.intents, rb.intents, INTENT_KEY)
    return RunComparison(
        run_a=ra.path,
        run_b=rb.path,
        same_data=bool(_provenance(ra, "data_hash"))
        and _provenance(ra, "data_hash") == _provenance(rb, "data_hash"),
        same_config=bool(ra.summary.get("config_id"))
        and ra.summary.get("config_id") == rb.summary.get("config_id"),
        totals=totals,
        by_strategy=by,
        identical_intents=first_intent is None,
        first_intent_divergence=first_intent,
        first_fill_divergence=_first_divergence(ra.fills, rb.fills, FILL_KEY),
    )


def _pct(m: Metric) -> str:
    if m.rel is None:
        return "new"
    return "=" if m.a == m.b else f"{m.rel * 100:+.1f} %"


def _short(row: dict[str, Any] | None, fields: list[str]) -> str:
    if row is None:
        return "(none: the run ends here)"
    keys = ["intent_id", *fields] if "intent_id" not in fields else fields
    return ", ".join(f"{k}={row.get(k)!r}" for k in keys if k in row)


def render(c: RunComparison) -> list[Table]:
    """Rich tables for people: totals, per strategy, first divergences."""
    t = Table(title=f"A = {c.run_a}  vs  B = {c.run_b}")
    for col in ("", "A", "B", "B vs A"):
        t.add_column(col)
    t.add_row("same data / same config", str(c.same_data), str(c.same_config), "")
    for k, m in c.totals.items():
        t.add_row(k, str(m.a), str(m.b), _pct(m))
    s = Table(title="by strategy (A → B)")
    for col in ("strategy", "intents", "fills", "shares filled", "fees", "realized"):
        s.add_column(col)
    for name, st in c.by_strategy.items():
        cells = [st.intents, st.fills, st.filled, st.fees, st.realized]
        s.add_row(name, *(f"{m.a} → {m.b} ({_pct(m)})" for m in cells))
    d = Table(title="first divergence", show_header=False)
    for what, dv in (("intent", c.first_intent_divergence), ("fill", c.first_fill_divergence)):
        if dv is None:
            d.add_row(what, "none: identical")
        else:
            d.add_row(f"{what} #{dv.index}", f"differs in {', '.join(dv.fields)}")
            d.add_row("  A", _short(dv.a, dv.fields))
            d.add_row("  B", _short(dv.b, dv.fields))
    return [t, s, d]

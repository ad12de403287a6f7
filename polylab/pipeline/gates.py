"""Promotion gates: the conditions a candidate's metrics must meet before it may trade.

Gates live in a YAML file (``pipelines/gates.yaml``)::

    gates:
      - {name: oos_trades, metric: out_of_sample.trades, min: 3}
      - {name: oos_pnl, metric: out_of_sample.pnl_micros, min: 0}
      - {name: oos_drawdown, metric: out_of_sample.max_drawdown_micros, max: 50000000}
      - {name: paper_vs_backtest, metric: paper.diff_pct, max: 10}

``metric`` is a dotted path into the candidate's metrics dict (``pipeline.outputs`` states the
conventions: money in micros, e.g. ``out_of_sample.pnl_micros``); each gate has exactly one
bound, ``min`` (value ≥ min passes) or ``max`` (value ≤ max passes), in the metric's own unit.
A metric the candidate does not have (or holds as null, e.g. a skipped paper check) fails its
gate as ``missing``: a gate can only be passed by evidence. Comparisons are exact (an int
limit against an int metric; Python compares int and float exactly).

A bad file fails at load with ``ConfigError`` naming the field and the value.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

import msgspec

from polylab.errors import ConfigError, InputError

__all__ = [
    "Gate",
    "GateResult",
    "all_passed",
    "evaluate",
    "failures",
    "gates_frame",
    "load_gates",
    "parse_gates",
]

Number = int | float


class Gate(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One gate: ``metric`` (dotted path) must be ≥ ``min`` or ≤ ``max`` (exactly one given)."""

    name: str
    metric: str
    min: Number | None = None
    max: Number | None = None

    def __post_init__(self) -> None:
        if not self.name.strip():
            raise ConfigError(f"gate name must not be empty (metric {self.metric!r})")
        if not re.fullmatch(r"[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)*", self.metric):
            raise ConfigError(
                f"gate {self.name!r}: metric must be a dotted path like "
                f"'out_of_sample.pnl_micros', was {self.metric!r}"
            )
        if (self.min is None) == (self.max is None):
            raise ConfigError(
                f"gate {self.name!r}: give exactly one of min or max "
                f"(min {self.min!r}, max {self.max!r})"
            )
        for bound in (self.min, self.max):
            if isinstance(bound, float) and bound != bound:
                raise ConfigError(f"gate {self.name!r}: limit is NaN")

    @property
    def op(self) -> Literal[">=", "<="]:
        """``>=`` for a ``min`` gate, ``<=`` for a ``max`` gate."""
        return ">=" if self.min is not None else "<="

    @property
    def limit(self) -> Number:
        """The bound (the metric's unit)."""
        bound = self.min if self.min is not None else self.max
        assert bound is not None  # __post_init__ guarantees one
        return bound


class GateResult(msgspec.Struct, frozen=True, kw_only=True):
    """One gate on one candidate: ``value`` (None when missing) ``op`` ``limit`` → ``passed``;
    ``reason``: "" when passed, else ``missing``, ``not a number`` or the failed comparison."""

    metric: str
    op: Literal[">=", "<="]
    limit: Number
    value: Number | None
    passed: bool
    reason: str = ""


class _GatesFile(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    gates: list[Gate]


def parse_gates(data: object, *, source: str = "gates") -> list[Gate]:
    """Gates from already-parsed YAML/JSON (``{"gates": [...]}``); ``ConfigError`` names the
    field and the value of the first problem, with ``source`` (the file) in front."""
    try:
        parsed = msgspec.convert(data, _GatesFile)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"{source}: {exc}{_value_at(str(exc), data)}") from None
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None
    if not parsed.gates:
        raise ConfigError(f"{source}: no gates (a promotion needs at least one)")
    seen: set[str] = set()
    for g in parsed.gates:
        if g.name in seen:
            raise ConfigError(f"{source}: gate name {g.name!r} appears twice")
        seen.add(g.name)
    return parsed.gates


def load_gates(path: str | Path) -> list[Gate]:
    """Gates from a YAML file; ``InputError`` for an unreadable file or bad YAML,
    ``ConfigError`` for a bad gate (field and value named)."""
    import yaml

    p = Path(path)
    try:
        text = p.read_text()
    except OSError as exc:
        raise InputError(f"gates file {str(p)!r}: {exc.strerror or exc}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        first = " ".join(str(exc).split())
        raise InputError(f"gates file {str(p)!r}: not valid YAML: {first}") from None
    return parse_gates(data, source=f"gates file {str(p)!r}")


def _value_at(msg: str, data: object) -> str:
    """`` (value …)`` for the ``$.gates[i].field`` a msgspec error points at."""
    m = re.search(r"at `\$\.gates\[(\d+)\]\.(\w+)`", msg)
    if not m or not isinstance(data, dict):
        return ""
    gates = data.get("gates")
    try:
        entry = gates[int(m.group(1))]  # type: ignore[index]
    except (TypeError, IndexError, KeyError):
        return ""
    if isinstance(entry, dict) and m.group(2) in entry:
        return f" (value {entry[m.group(2)]!r})"
    return ""


def _lookup(metrics: Any, path: str) -> object:
    cur: Any = metrics
    for part in path.split("."):
        if not isinstance(cur, dict) or part not in cur:
            return None
        cur = cur[part]
    return cur


def evaluate(gates: list[Gate], metrics: dict[str, Any]) -> dict[str, GateResult]:
    """Each gate's result on ``metrics`` (the candidate's metrics dict), by gate name."""
    out: dict[str, GateResult] = {}
    for g in gates:
        raw = _lookup(metrics, g.metric)
        op, limit = g.op, g.limit
        value: Number | None = None
        if raw is None:
            reason = "missing"
        elif isinstance(raw, bool) or not isinstance(raw, int | float) or raw != raw:
            reason = f"not a number: {raw!r}"
        else:
            value = raw
            ok = raw >= limit if op == ">=" else raw <= limit
            reason = "" if ok else f"{g.metric} = {raw} is not {op} {limit}"
        out[g.name] = GateResult(
            metric=g.metric, op=op, limit=limit, value=value, passed=not reason, reason=reason
        )
    return out


def all_passed(results: dict[str, Any]) -> bool:
    """True when there is at least one result and every one passed (stored results are the
    JSON form of ``GateResult``: dicts with ``passed``)."""
    return bool(results) and all(_passed(r) for r in results.values())


def failures(results: dict[str, Any]) -> list[str]:
    """One phrase per gate that did not pass (``name: reason``), in order."""
    out = []
    for name, r in results.items():
        if not _passed(r):
            reason = r.get("reason", "") if isinstance(r, dict) else getattr(r, "reason", "")
            out.append(f"{name}: {reason or 'not passed'}")
    return out


def _passed(r: object) -> bool:
    if isinstance(r, GateResult):
        return r.passed
    return isinstance(r, dict) and r.get("passed") is True


def gates_frame(results: dict[str, Any]) -> Any:
    """Gate results (``GateResult`` or their stored dicts) as a polars frame for notebooks:
    one row per gate; ``value`` and ``limit`` as text, exact in the metric's own unit."""
    import polars as pl

    rows = []
    for name, r in results.items():
        d = msgspec.to_builtins(r) if isinstance(r, GateResult) else dict(r)
        rows.append(
            {
                "gate": name,
                "metric": str(d.get("metric", "")),
                "value": "" if d.get("value") is None else str(d["value"]),
                "op": str(d.get("op", "")),
                "limit": str(d.get("limit", "")),
                "passed": d.get("passed") is True,
                "reason": str(d.get("reason", "")),
            }
        )
    schema = {
        k: pl.Boolean if k == "passed" else pl.String
        for k in ("gate", "metric", "value", "op", "limit", "passed", "reason")
    }
    return pl.DataFrame(rows, schema=schema)

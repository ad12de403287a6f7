"""What differs between two configurations: changed parameters and metric deltas.

Configs and metrics are nested JSON objects; both are compared leaf by leaf under dotted
paths (``sum_to_100.min_edge_micros``, ``out_of_sample.pnl_micros``). Values keep their
units (micros stay integers; a delta of two integers is an integer).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec

__all__ = ["MetricDelta", "ParamChange", "flatten", "metric_deltas", "param_changes"]

_MISSING = "(absent)"


class ParamChange(msgspec.Struct, frozen=True):
    """One parameter: its value in A and in B (``"(absent)"`` where it is not set)."""

    path: str
    a: Any
    b: Any


class MetricDelta(msgspec.Struct, frozen=True):
    """One metric in A and B and ``delta`` = B − A (None unless both are numbers)."""

    path: str
    a: Any
    b: Any
    delta: int | float | None


def flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested dicts → ``{"a.b.c": leaf}`` (lists are leaves)."""
    out: dict[str, Any] = {}
    for k, v in tree.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping) and v:
            out.update(flatten(v, key + "."))
        else:
            out[key] = v
    return out


def param_changes(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[ParamChange]:
    """The leaves that differ between two config bodies, sorted by path."""
    fa, fb = flatten(a), flatten(b)
    out = []
    for path in sorted(set(fa) | set(fb)):
        va, vb = fa.get(path, _MISSING), fb.get(path, _MISSING)
        if va != vb:
            out.append(ParamChange(path, va, vb))
    return out


def _num(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def metric_deltas(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[MetricDelta]:
    """Every metric leaf of A or B with its delta B − A (numbers only), sorted by path."""
    fa, fb = flatten(a), flatten(b)
    out = []
    for path in sorted(set(fa) | set(fb)):
        va, vb = fa.get(path, _MISSING), fb.get(path, _MISSING)
        delta = vb - va if _num(va) and _num(vb) else None
        if isinstance(delta, float):
            delta = round(delta, 12)
        out.append(MetricDelta(path, va, vb, delta))
    return out

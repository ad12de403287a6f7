"""The parameter space of a sweep: a strategy's tunable fields, grids written in the spec's
units, and the configs they make.

A strategy's config class declares which fields a sweep may vary and over what range
(``strategy.sum_to_100.tunable``: ``(low, high, step)`` in the field's own units, plus the unit
the spec writes it in). ``--grid min_edge=0.001:0.01:0.001`` is read in the spec's unit
($ per set here) and becomes exact field values (``min_edge_micros`` 1000, 2000, …); a bare
``--grid min_edge`` takes the declared range. Every point becomes a full ``PolylabConfig``
(the base config with that strategy section replaced and only that strategy enabled), validated
like a loaded config, so a sweep never runs a config ``polylab backtest`` would refuse.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from typing import Any

import msgspec

from polylab.config import PolylabConfig
from polylab.errors import InputError
from polylab.money import MICROS, MoneyError, parse_micros

__all__ = [
    "MAX_CONFIGS",
    "SweepError",
    "Tunable",
    "grid_points",
    "make_config",
    "parse_grid",
    "resolve",
    "tunables",
]

MAX_CONFIGS = 100_000
"""Most configs one grid may make (a bare ``--grid`` over every field can make billions)."""

_MICRO_UNITS = ("dollars", "shares", "fraction", "micros")


class SweepError(InputError):
    """Bad sweep input (strategy, grid, search, recording, scheduler); the message names the
    value. An operator error: the CLI prints it on one line and exits 2."""


class Tunable(msgspec.Struct, frozen=True, kw_only=True):
    """One tunable field: its declared sweep range in field units (micros or ms), the unit the
    spec writes it in (``dollars``, ``shares``, ``fraction``: decimals stored as micros;
    ``ms``, ``count``: integers) and its environment name."""

    field: str
    low: int
    high: int
    step: int
    unit: str
    env: str

    def parse(self, text: str) -> int:
        """A value written in the spec's unit → field units (exact)."""
        t = text.strip()
        try:
            return parse_micros(t) if self.unit in _MICRO_UNITS else int(t)
        except (MoneyError, ValueError) as exc:
            raise SweepError(f"{self.field}: bad value {text!r} ({self.unit}): {exc}") from None

    def show(self, value: int) -> str:
        """Field units → the spec's unit, for people."""
        if self.unit in _MICRO_UNITS:
            return f"{value / MICROS:g}"
        return str(value)

    def values(self) -> list[int]:
        """The declared range, both ends included."""
        return list(range(self.low, self.high + 1, self.step))


def _section_type(strategy: str) -> type[msgspec.Struct] | None:
    for f in msgspec.structs.fields(PolylabConfig):
        if f.name == strategy and isinstance(f.type, type) and issubclass(f.type, msgspec.Struct):
            return f.type
    return None


def tunables(strategy: str) -> dict[str, Tunable]:
    """Tunable fields of a built-in strategy's config section, by field name."""
    cls = _section_type(strategy)
    out: dict[str, Tunable] = {}
    if cls is not None:
        info = msgspec.inspect.type_info(cls)
        assert isinstance(info, msgspec.inspect.StructType)
        for f in info.fields:
            extra = f.type.extra if isinstance(f.type, msgspec.inspect.Metadata) else None
            if extra and "sweep" in extra:
                rng = tuple(extra["sweep"])
                lo, hi = rng[0], rng[1]
                # (low, high) alone (the Sniper's): ten steps; micros fields read as decimals
                st = rng[2] if len(rng) > 2 else max(1, (hi - lo) // 10)
                unit = extra.get("unit") or ("micros" if f.name.endswith("_micros") else "count")
                out[f.name] = Tunable(
                    field=f.name, low=lo, high=hi, step=st, unit=unit, env=extra.get("env", "")
                )
    if not out:
        known = [
            f.name for f in msgspec.structs.fields(PolylabConfig) if _has_tunables_type(f.type)
        ]
        raise SweepError(f"strategy {strategy!r} has no tunable fields (sweepable: {known})")
    return out


def _has_tunables_type(t: Any) -> bool:
    if not (isinstance(t, type) and issubclass(t, msgspec.Struct)):
        return False
    info = msgspec.inspect.type_info(t)
    assert isinstance(info, msgspec.inspect.StructType)
    return any(
        isinstance(f.type, msgspec.inspect.Metadata) and "sweep" in (f.type.extra or {})
        for f in info.fields
    )


def resolve(strategy: str, name: str) -> Tunable:
    """A tunable by its field name (``min_edge_micros``), that name without its unit suffix
    (``min_edge``) or its environment name (``SUMTO100_MIN_EDGE``)."""
    tun = tunables(strategy)
    n = name.strip()
    for cand in (n, f"{n}_micros", f"{n}_ms"):
        if cand in tun:
            return tun[cand]
    for t in tun.values():
        if t.env and t.env.lower() == n.lower():
            return t
    short = sorted(f.removesuffix("_micros") for f in tun)
    raise SweepError(f"{strategy}: {name!r} is not a tunable field (tunable: {short})")


def parse_grid(strategy: str, spec: str) -> tuple[str, list[int]]:
    """``name=low:high:step`` (both ends included), ``name=v1,v2,…``, ``name=v`` or a bare
    ``name`` (its declared range), values in the spec's unit → (field, field values)."""
    name, eq, rhs = spec.partition("=")
    tun = resolve(strategy, name)
    if not eq:
        return tun.field, tun.values()
    if ":" in rhs:
        parts = rhs.split(":")
        if len(parts) != 3:
            raise SweepError(f"--grid {spec!r}: expected low:high:step")
        lo, hi, st = (tun.parse(p) for p in parts)
        if st <= 0 or hi < lo:
            raise SweepError(f"--grid {spec!r}: need step > 0 and low ≤ high")
        vals = list(range(lo, hi + 1, st))
    else:
        vals = [tun.parse(p) for p in rhs.split(",") if p.strip()]
    if not vals:
        raise SweepError(f"--grid {spec!r}: no values")
    return tun.field, list(dict.fromkeys(vals))


def grid_points(
    strategy: str, grids: Iterable[str], *, max_configs: int = MAX_CONFIGS
) -> list[dict[str, int]]:
    """Every combination of the grids' values, in order (the first grid varies slowest); no
    grid at all means every tunable field over its declared range."""
    axes: dict[str, list[int]] = {}
    specs = list(grids)
    if not specs:
        axes = {f: t.values() for f, t in tunables(strategy).items()}
    for spec in specs:
        field, vals = parse_grid(strategy, spec)
        if field in axes:
            raise SweepError(f"--grid {spec!r}: {field} given twice")
        axes[field] = vals
    n = 1
    for v in axes.values():
        n *= len(v)
    if n > max_configs:
        sizes = {f: len(v) for f, v in axes.items()}
        raise SweepError(
            f"the grid makes {n:,} configs (over {max_configs:,}; sizes {sizes}): "
            "give --grid for fewer fields or coarser steps, or --search optuna"
        )
    names = list(axes)
    return [dict(zip(names, combo, strict=True)) for combo in itertools.product(*axes.values())]


def make_config(base: PolylabConfig, strategy: str, params: Mapping[str, int]) -> PolylabConfig:
    """``base`` with ``params`` in ``strategy``'s section and only ``strategy`` enabled; the
    section is validated like a loaded one (``SweepError`` naming the field and value)."""
    section = getattr(base, strategy)
    data = msgspec.to_builtins(section)
    data.update(params)
    try:
        new = msgspec.convert(data, type(section))
    except msgspec.ValidationError as exc:
        raise SweepError(f"{strategy}: {exc} (params {dict(params)})") from None
    return msgspec.structs.replace(base, strategies=(strategy,), **{strategy: new})

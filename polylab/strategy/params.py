"""Strategy settings: field metadata that names each field's environment variable, unit and
sweep range, and the builders that turn the spec's words (``SUMTO100_MIN_EDGE=0.003``) into a
frozen config Struct in exact units (micros, ms).

Every strategy config uses these, so a bad value fails at load naming the field, the variable
and the value, and sweeps find tunable fields without wiring (``sweep_ranges``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any, Literal, TypeVar

import msgspec

from polylab.errors import ConfigError
from polylab.money import MoneyError, parse_micros

__all__ = [
    "Unit",
    "config_from_env",
    "config_from_mapping",
    "setting",
    "sweep_ranges",
    "tunable",
]

Unit = Literal["dollars", "shares", "fraction", "ms", "count", "bool"]
"""How an environment value is written: dollars/shares/fraction are decimals stored as
micros; ms and count are integers; bool is 1/0, true/false, yes/no, on/off."""

C = TypeVar("C", bound=msgspec.Struct)
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}
_AT = re.compile(r"at `\$\.(\w+)")


def setting(*, env: str, unit: Unit) -> msgspec.Meta:
    """Field metadata: its environment variable and how that is written. Constraints go in
    their own ``msgspec.Meta`` beside it (``Annotated[int, Meta(ge=0), setting(...)]``)."""
    return msgspec.Meta(extra={"env": env, "unit": unit})


def tunable(low: int, high: int, step: int, *, env: str, unit: Unit) -> msgspec.Meta:
    """``setting`` plus the sweep range ``(low, high, step)``, in the field's own units."""
    return msgspec.Meta(extra={"env": env, "unit": unit, "sweep": (low, high, step)})


def _fields(cls: type[msgspec.Struct]) -> dict[str, dict[str, Any]]:
    """Field name → its ``extra`` metadata (empty when none)."""
    info = msgspec.inspect.type_info(cls)
    assert isinstance(info, msgspec.inspect.StructType)
    return {
        f.name: dict(f.type.extra or {}) if isinstance(f.type, msgspec.inspect.Metadata) else {}
        for f in info.fields
    }


def sweep_ranges(cls: type[msgspec.Struct]) -> dict[str, tuple[int, int, int]]:
    """Tunable fields of a config class and their ``(low, high, step)``."""
    return {n: tuple(x["sweep"]) for n, x in _fields(cls).items() if "sweep" in x}


def _from_text(field: str, env: str, unit: str, text: str) -> object:
    t = text.strip()
    try:
        if unit == "bool":
            if t.lower() in _TRUE:
                return True
            if t.lower() in _FALSE:
                return False
            raise ValueError("expected 1/0, true/false, yes/no or on/off")
        if unit in ("dollars", "shares", "fraction"):
            return parse_micros(t)
        return int(t)
    except (MoneyError, ValueError) as exc:
        raise ConfigError(f"{env} ({field}): bad value {text!r}: {exc}") from None


def config_from_mapping(cls: type[C], values: Mapping[str, object]) -> C:
    """Build ``cls`` from field names (our units: micros, ms) and/or environment names (the
    spec's units, as text). Unknown names and bad values raise ``ConfigError`` naming both."""
    fields = _fields(cls)
    by_env = {x["env"]: (n, x["unit"]) for n, x in fields.items() if "env" in x}
    out: dict[str, object] = {}
    source: dict[str, str] = {}
    for key, value in values.items():
        if key in by_env:
            name, unit = by_env[key]
            out[name] = _from_text(name, key, unit, str(value))
        elif key in fields:
            name = key
            out[name] = value
        else:
            known = ", ".join(sorted([*fields, *by_env]))
            raise ConfigError(f"{cls.__name__}: unknown setting {key!r} (known: {known})")
        source[name] = f"{key}={value!r}"
    try:
        return msgspec.convert(out, cls, strict=False)
    except msgspec.ValidationError as exc:
        m = _AT.search(str(exc))
        where = source.get(m.group(1), m.group(1)) if m else ""
        raise ConfigError(f"{cls.__name__}: {exc} ({where})" if where else f"{exc}") from None


def config_from_env(cls: type[C], prefix: str, environ: Mapping[str, str] | None = None) -> C:
    """Build ``cls`` from the variables starting with ``prefix`` (default: ``os.environ``)."""
    env = os.environ if environ is None else environ
    return config_from_mapping(cls, {k: v for k, v in env.items() if k.startswith(prefix)})

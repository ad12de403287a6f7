"""One frozen config Struct per component, gathered in ``PolylabConfig``; loading, env mapping,
strategy construction and the config id.

Precedence: built-in defaults < config file (TOML or JSON) < environment. A section of the file
may use our field names and units (``min_edge_micros = 3000``) or the spec's environment names
and units (``SUMTO100_MIN_EDGE = "0.003"``). The environment variables of the spec map onto
fields: ``SUMTO100_*``, ``CLIPPER_*``, ``RISK_MAX_POSITION`` / ``RISK_MAX_DAILY_LOSS`` (dollars),
``RISK_MAX_OPEN_ORDERS``, ``RISK_MAX_SUBMITS_PER_S``, ``RISK_KILL_SWITCH``, ``PAPER_LATENCY_MS``,
``DRY_RUN``, ``CLOB_URL``. Any bad value fails at load with ``ConfigError`` naming the field and
the value.

Strategies are named in ``strategies``: the built-ins ``sum_to_100``, ``clipper``, ``sniper``,
or ``package.module:Class`` for your own class (its settings, if it has a ``Config`` Struct
attribute, come from ``[plugins."package.module:Class"]``).

The config id is the SHA-256 of the canonical JSON of the whole config (secrets never live in
it): the provenance key of runs and promotions.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import msgspec

from polylab.analysis.windows import WindowConfig
from polylab.engine import EngineConfig
from polylab.errors import ConfigError
from polylab.execution.live import LiveConfig
from polylab.execution.paper import PaperConfig
from polylab.money import MoneyError, parse_micros
from polylab.risk.manager import RiskConfig
from polylab.strategy.base import Strategy
from polylab.strategy.clipper import Clipper, ClipperConfig
from polylab.strategy.sniper import Sniper, SniperConfig
from polylab.strategy.sum_to_100 import SumTo100, SumTo100Config

__all__ = ["BUILTIN_STRATEGIES", "PolylabConfig", "build_strategies", "config_id", "load_config"]

BUILTIN_STRATEGIES = ("sum_to_100", "clipper", "sniper")


class PolylabConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Everything a run needs to be reproduced, one Struct per component."""

    strategies: tuple[str, ...] = BUILTIN_STRATEGIES
    engine: EngineConfig = msgspec.field(default_factory=EngineConfig)
    sum_to_100: SumTo100Config = msgspec.field(default_factory=SumTo100Config)
    clipper: ClipperConfig = msgspec.field(default_factory=ClipperConfig)
    sniper: SniperConfig = msgspec.field(default_factory=SniperConfig)
    risk: RiskConfig = msgspec.field(default_factory=RiskConfig)
    paper: PaperConfig = msgspec.field(default_factory=PaperConfig)
    live: LiveConfig = msgspec.field(default_factory=LiveConfig)
    analysis: WindowConfig = msgspec.field(default_factory=WindowConfig)
    plugins: dict[str, dict[str, Any]] = msgspec.field(default_factory=dict)


_DOLLARS = "dollars"
_ENV: dict[str, tuple[str, str, str]] = {
    "RISK_MAX_POSITION": ("risk", "max_position_micros", _DOLLARS),
    "RISK_MAX_DAILY_LOSS": ("risk", "max_daily_loss_micros", _DOLLARS),
    "RISK_MAX_OPEN_ORDERS": ("risk", "max_open_orders", "int"),
    "RISK_MAX_SUBMITS_PER_S": ("risk", "max_submits_per_s", "int"),
    "RISK_KILL_SWITCH": ("risk", "kill_switch", "bool"),
    "PAPER_LATENCY_MS": ("paper", "latency_ms", "int"),
    "DRY_RUN": ("live", "dry_run", "bool"),
    "CLOB_URL": ("live", "url", "str"),
}
"""Environment variable → (section, field, how it is written)."""


def _env_value(name: str, unit: str, text: str) -> object:
    t = text.strip()
    try:
        if unit == _DOLLARS:
            return parse_micros(t)
        if unit == "int":
            return int(t)
        if unit == "bool":
            if t.lower() in ("1", "true", "yes", "on"):
                return True
            if t.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError("expected true/false")
        return t
    except (MoneyError, ValueError) as exc:
        raise ConfigError(f"{name}: bad value {text!r}: {exc}") from None


def _read_file(path: str | Path) -> dict[str, Any]:
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as exc:
        raise ConfigError(f"config file {p}: {exc.strerror}") from None
    try:
        data = tomllib.loads(text) if p.suffix == ".toml" else json.loads(text)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"config file {p}: not valid {p.suffix[1:] or 'JSON'}: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file {p}: expected a table/object at the top")
    return data


def load_config(
    path: str | Path | None = None, env: Mapping[str, str] | None = None
) -> PolylabConfig:
    """Defaults < ``path`` (TOML/JSON) < ``env`` (default ``os.environ``)."""
    data = _read_file(path) if path is not None else {}
    environ = os.environ if env is None else env
    known = {f.name for f in msgspec.structs.fields(PolylabConfig)}
    unknown = set(data) - known
    if unknown:
        raise ConfigError(f"config: unknown section(s) {sorted(unknown)} (known: {sorted(known)})")
    sections: dict[str, Any] = dict(data)
    s100 = dict(sections.get("sum_to_100", {}))
    s100.update({k: v for k, v in environ.items() if k.startswith("SUMTO100_")})
    clip = dict(sections.get("clipper", {}))
    clip.update({k: v for k, v in environ.items() if k.startswith("CLIPPER_")})
    sections["sum_to_100"] = SumTo100Config.from_mapping(s100)
    sections["clipper"] = ClipperConfig.from_mapping(clip)
    for name, (sec, field, unit) in _ENV.items():
        if name in environ:
            sec_d = dict(sections.get(sec, {}))
            sec_d[field] = _env_value(name, unit, environ[name])
            sections[sec] = sec_d
    try:
        return msgspec.convert(sections, PolylabConfig, strict=False)
    except (msgspec.ValidationError, ConfigError) as exc:
        raise ConfigError(f"config: {exc}{_value_hint(str(exc), sections)}") from None


def _value_hint(msg: str, sections: Mapping[str, Any]) -> str:
    """`` (value …)`` for the ``$.section.field`` a msgspec error points at."""
    import re

    m = re.search(r"at `\$\.(\w+)\.(\w+)`", msg)
    if not m:
        return ""
    sec = sections.get(m.group(1))
    if isinstance(sec, Mapping) and m.group(2) in sec:
        return f" (value {sec[m.group(2)]!r})"
    return ""


def config_id(cfg: PolylabConfig) -> str:
    """SHA-256 (hex) of the canonical JSON of ``cfg``."""
    return hashlib.sha256(msgspec.json.encode(cfg, order="sorted")).hexdigest()


def build_strategies(cfg: PolylabConfig) -> list[Strategy]:
    """Instantiate the configured strategies (built-ins by name, others by ``module:Class``)."""
    out: list[Strategy] = []
    for name in cfg.strategies:
        if name == "sum_to_100":
            out.append(SumTo100(cfg.sum_to_100))
        elif name == "clipper":
            out.append(Clipper(cfg.clipper))
        elif name == "sniper":
            out.append(Sniper(cfg.sniper))
        else:
            out.append(_plugin(name, cfg.plugins.get(name, {})))
    return out


def _plugin(ref: str, settings: Mapping[str, Any]) -> Strategy:
    mod_name, sep, cls_name = ref.partition(":")
    if not sep or not mod_name or not cls_name:
        raise ConfigError(
            f"strategies: {ref!r} is neither a built-in "
            f"{list(BUILTIN_STRATEGIES)} nor 'package.module:Class'"
        )
    try:
        cls = getattr(importlib.import_module(mod_name), cls_name)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"strategies: cannot load {ref!r}: {exc}") from None
    _check_strategy_class(ref, cls)
    conf_type = getattr(cls, "Config", None)
    try:
        if isinstance(conf_type, type) and issubclass(conf_type, msgspec.Struct):
            inst = cls(msgspec.convert(dict(settings), conf_type, strict=False))
        else:
            inst = cls()
    except (msgspec.ValidationError, TypeError) as exc:
        raise ConfigError(f"plugins.{ref}: {exc}") from None
    if not isinstance(inst, Strategy):
        raise ConfigError(
            f"strategies: {ref!r} does not implement the Strategy protocol "
            "(name, on_book, on_timer, on_games)"
        )
    return inst


_HOOKS = ("on_book", "on_timer", "on_games")


def _check_strategy_class(ref: str, obj: object) -> None:
    """Refuse, before calling anything, what is not a class with the Strategy hooks: a
    ``module:Class`` reference may only construct a strategy (``os:system`` must never run).
    ``name`` may be set by ``__init__``, so it is checked on the instance afterwards."""
    if not isinstance(obj, type):
        raise ConfigError(
            f"strategies: {ref!r} is a {type(obj).__name__}, not a class: a plugin must name "
            "a class implementing the Strategy protocol (name, on_book, on_timer, on_games)"
        )
    missing = [h for h in _HOOKS if not callable(getattr(obj, h, None))]
    if missing:
        raise ConfigError(
            f"strategies: class {ref!r} does not implement the Strategy protocol "
            f"(missing {', '.join(missing)}; needs name, on_book, on_timer, on_games)"
        )

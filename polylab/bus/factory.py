"""Choose the bus: in-process by default, Redis when ``REDIS_URL`` is set."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from polylab.bus.base import Bus
from polylab.bus.inprocess import InProcessBus
from polylab.bus.redis_bus import RedisBus
from polylab.errors import ConfigError

__all__ = ["bus_from_env", "make_bus"]

_SCHEMES = ("redis://", "rediss://", "unix://")
_IN_PROCESS_OPTIONS = ("queue_max", "batch_max", "stream_maxlen")


def make_bus(url: str | None = None, **options: Any) -> Bus:
    """``InProcessBus`` for no URL (None or ""), ``RedisBus`` for a ``redis://``,
    ``rediss://`` or ``unix://`` URL; ``options`` go to the bus's constructor (``prefix``,
    ``queue_max``, ``backlog_max``, ``stream_maxlen``…; the in-process bus takes the ones it
    has). ``ConfigError`` names a bad URL."""
    if not url:
        kept = {k: v for k, v in options.items() if k in _IN_PROCESS_OPTIONS}
        return InProcessBus(**kept)
    if not url.startswith(_SCHEMES):
        shown = url.split("@")[-1]  # never echo a password
        raise ConfigError(
            f"REDIS_URL must start with redis://, rediss:// or unix://, got {shown!r}"
        )
    return RedisBus(url, **options)


def bus_from_env(env: Mapping[str, str] | None = None, **options: Any) -> Bus:
    """The bus the environment asks for: ``REDIS_URL`` set → Redis, else in-process."""
    source = os.environ if env is None else env
    return make_bus(source.get("REDIS_URL", "").strip() or None, **options)

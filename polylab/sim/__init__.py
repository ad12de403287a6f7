"""polylab.sim: a local Polymarket CLOB that speaks the venue's protocol, for tests and research.

One aiohttp server (``server.py``) serves the CLOB REST API with the venue's auth (L1 EIP-712,
L2 HMAC) and signed-order checks, the market and user WebSocket channels, Gamma discovery and
sports scoreboards. Behind it ``Exchange`` keeps one mirrored book per binary market and matches
complementary orders (MINT / MERGE), with exact integer balances, fees and settlement. A seeded
generator drives simulated traders; ``faults`` injects latency, drops and errors on purpose.

Start one with ``running_sim`` (async), ``SimThread`` (sync clients) or ``polylab sim serve``.
Names are imported on first use, so ``polylab sim --help`` does not load the web stack.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from polylab.sim.config import ConfigError, SimConfig, load_config
    from polylab.sim.exchange import Exchange, PlaceResult
    from polylab.sim.server import SimHandle, SimThread, build_app, running_sim, serve
    from polylab.sim.state import SimState, seed_markets

__all__ = [
    "ConfigError",
    "Exchange",
    "PlaceResult",
    "SimConfig",
    "SimHandle",
    "SimState",
    "SimThread",
    "build_app",
    "load_config",
    "running_sim",
    "seed_markets",
    "serve",
]

_HOME = {
    "ConfigError": "config",
    "SimConfig": "config",
    "load_config": "config",
    "Exchange": "exchange",
    "PlaceResult": "exchange",
    "SimHandle": "server",
    "SimThread": "server",
    "build_app": "server",
    "running_sim": "server",
    "serve": "server",
    "SimState": "state",
    "seed_markets": "state",
}


def __getattr__(name: str) -> Any:
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module 'polylab.sim' has no attribute {name!r}")
    return getattr(importlib.import_module(f"polylab.sim.{home}"), name)

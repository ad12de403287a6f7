"""Run the simulator: one aiohttp application on one port (CLOB REST, ``/ws/market``,
``/ws/user``, ``/ws/sports``, ``/gamma/*``, ``/espn/…/scoreboard``, ``/data-api``,
``/api/geoblock``; the production layout, one port per host, is ``sim.layout``).

Three ways in, all on 127.0.0.1:

* ``serve(port, seed, config_path)``: blocking, for ``polylab sim serve``;
* ``running_sim(config, port=0)``: an async context manager yielding a ``SimHandle`` (``url``,
  ``ws_url``, ``state``), for async tests and ``polylab sim record``;
* ``SimThread(config).start()`` … ``.stop()``: the same on a background thread with its own
  event loop, for synchronous clients (the official SDK). Touch ``.state`` only through
  ``.call(fn)``, which runs ``fn`` on the simulator's loop.

On startup the exchange gets ``loop.call_later`` as its scheduler (trade settlement, GTD
expiry) and the market generator starts when ``SimConfig.generator`` is on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Final, TypeVar

import msgspec
from aiohttp import web

from polylab.sim import gamma_routes, generator, rest, rest_trading, sports_ws, ws
from polylab.sim.config import ConfigError, SimConfig, load_config
from polylab.sim.layout import extra_routes
from polylab.sim.state import SimState

__all__ = [
    "STATE_KEY",
    "SimHandle",
    "SimThread",
    "build_app",
    "on_cleanup",
    "on_startup",
    "running_sim",
    "serve",
]

log = logging.getLogger(__name__)

STATE_KEY: Final = web.AppKey("polylab_sim_state", SimState)
_GENERATOR_KEY: Final = web.AppKey("polylab_sim_generator", asyncio.Task)
T = TypeVar("T")


def build_app(state: SimState) -> web.Application:
    """The simulator's application: REST routes, WebSocket and Gamma/scoreboard handlers."""
    app = web.Application(middlewares=[rest.json_errors])
    app[STATE_KEY] = state
    rest.register(app, state)
    rest_trading.register(app, state)
    ws.register(app, state)
    gamma_routes.register(app, state)
    sports_ws.register(app, state)
    extra_routes(app, state, data_prefix="/data-api")
    app.on_startup.append(on_startup(state))
    app.on_cleanup.append(on_cleanup(state))
    return app


AppHook = Callable[[web.Application], Awaitable[None]]


def on_startup(state: SimState) -> AppHook:
    """The startup hook of the application that owns ``state``'s clock: the exchange gets the
    loop's scheduler and the generator starts (once per simulator, whatever its layout)."""

    async def start(app: web.Application) -> None:
        loop = asyncio.get_running_loop()
        state.exchange.set_scheduler(loop.call_later)
        if state.config.generator:
            app[_GENERATOR_KEY] = generator.start(state)

    return start


def on_cleanup(state: SimState) -> AppHook:
    """The matching cleanup hook: stop the generator, drop the scheduler."""

    async def stop(app: web.Application) -> None:
        task = app.get(_GENERATOR_KEY)
        if task is not None:
            await generator.stop(task)
        state.exchange.set_scheduler(None)

    return stop


class SimHandle(msgspec.Struct, frozen=True):
    """A running simulator: ``url`` ("http://127.0.0.1:PORT"), ``ws_url``, its ``state`` and
    its WebSocket ``hub`` (connections and their counters) and its ``sports`` channel."""

    url: str
    ws_url: str
    state: SimState
    port: int
    hub: ws.WsHub
    sports: sports_ws.SportsChannel


@contextlib.asynccontextmanager
async def running_sim(config: SimConfig | None = None, port: int = 0) -> AsyncIterator[SimHandle]:
    """Serve a simulator on 127.0.0.1 (``port`` 0: an ephemeral one) for the ``async with``."""
    state = SimState(config or SimConfig())
    app = build_app(state)
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", port)
        await site.start()
        bound = _bound_port(runner)
        yield SimHandle(
            url=f"http://127.0.0.1:{bound}",
            ws_url=f"ws://127.0.0.1:{bound}",
            state=state,
            port=bound,
            hub=app[ws.HUB_KEY],
            sports=app[sports_ws.CHANNEL_KEY],
        )
    finally:
        await runner.cleanup()


def _bound_port(runner: web.AppRunner) -> int:
    for addr in runner.addresses:
        if isinstance(addr, tuple):
            return int(addr[1])
    raise RuntimeError("simulator site has no TCP address")


class SimThread:
    """A simulator on a background thread (its own event loop), for synchronous clients."""

    def __init__(self, config: SimConfig | None = None, port: int = 0) -> None:
        self.config = config or SimConfig()
        self.port = port
        self.url = ""
        self.ws_url = ""
        self._handle: SimHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._main, name="polylab-sim", daemon=True)

    @property
    def state(self) -> SimState:
        """The simulator's state (read it from this thread only via ``call``)."""
        if self._handle is None:
            raise RuntimeError("SimThread is not running")
        return self._handle.state

    def start(self, timeout_s: float = 10.0) -> SimThread:
        """Start serving; returns once the port is bound (or raises what went wrong)."""
        self._thread.start()
        if not self._ready.wait(timeout_s):
            raise TimeoutError("simulator thread did not start in time")
        if self._error is not None:
            raise RuntimeError("simulator thread failed to start") from self._error
        return self

    def call(self, fn: Callable[[], T], timeout_s: float = 10.0) -> T:
        """Run ``fn()`` on the simulator's loop and return its result (thread-safe)."""
        if self._loop is None:
            raise RuntimeError("SimThread is not running")

        async def run() -> T:
            return fn()

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(timeout_s)

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop serving and join the thread."""
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout_s)

    def __enter__(self) -> SimThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _main(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:  # surfaced by start()
            self._error = exc
            self._ready.set()

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        async with running_sim(self.config, self.port) as handle:
            self._handle = handle
            self.url, self.ws_url = handle.url, handle.ws_url
            self._ready.set()
            await self._stop.wait()


async def _serve_forever(config: SimConfig, port: int, layout: str = "single") -> None:
    if layout == "production":
        from polylab.sim.layout import running_production

        async with running_production(config) as prod:
            # stdout: exactly one JSON object, the overrides (a script reads it); the rest: stderr
            print(msgspec.json.encode(prod.overrides).decode(), flush=True)
            m = len(prod.handle.state.exchange.markets)
            hosts = ", ".join(f"{k} :{v}" for k, v in prod.ports.items())
            print(f"polylab sim (production layout): {hosts}; {m} markets", file=sys.stderr)
            await asyncio.Event().wait()
    async with running_sim(config, port) as handle:
        m = len(handle.state.exchange.markets)
        print(
            f"polylab sim: {handle.url} (REST), {handle.ws_url}/ws/market, {m} markets; "
            "Ctrl-C to stop",
            flush=True,
        )
        await asyncio.Event().wait()


def serve(
    port: int,
    seed: int,
    config_path: Path | None = None,
    require_approval: bool = False,
    layout: str = "single",
) -> None:
    """Serve until interrupted. A config file's own ``seed`` wins over ``seed``;
    ``require_approval`` switches the config's field on (never off). ``layout``: ``single``
    (everything on ``port``) or ``production`` (one ephemeral port per production host, the
    overrides printed as one JSON object on stdout).

    A bad config file exits with its ``ConfigError`` message (naming the field), no traceback.
    """
    if config_path is not None:
        try:
            config = load_config(config_path)
        except ConfigError as exc:
            raise SystemExit(str(exc)) from None
        if "seed" not in _keys(config_path):
            config = msgspec.structs.replace(config, seed=seed)
    else:
        config = SimConfig(seed=seed)
    if require_approval:
        config = msgspec.structs.replace(config, require_approval=True)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve_forever(config, port, layout))


def _keys(path: Path) -> set[str]:
    data = path.read_bytes()
    raw = msgspec.toml.decode(data) if path.suffix.lower() == ".toml" else msgspec.json.decode(data)
    return set(raw) if isinstance(raw, dict) else set()

"""The simulator laid out like production: one local port per production host.

``polylab sim serve --layout production`` (and ``running_production`` for tests) serves the one
``SimState`` through several aiohttp applications, each on its own 127.0.0.1 port with the
production paths of the host it stands for (protocol doc §0.2):

* CLOB REST at ``/`` (``/book``, ``/markets``, ``/order``, ``/time`` …);
* the market and user channels at ``/ws/market`` and ``/ws/user`` (the WebSocket host);
* Gamma at ``/markets``, ``/events``, their keyset and slug variants (no ``/gamma`` prefix);
* the Data API at ``/positions?user=…`` (and ``/`` answering ``{"data": "OK"}``);
* ESPN scoreboards at ``/apis/site/v2/sports/{sport}/{league}/scoreboard``;
* the geoblock check at ``/api/geoblock``;
* the sports channel at ``/ws`` (``sim.sports_ws``: ping every 5 s, ``pong`` within 10 s).

``overrides`` maps the ``polylab.venue.ENV_KEYS`` names to these local URLs, so the
``polymarket`` profile with only those overridden talks to the simulator through exactly the
production paths. Hosts are listed in ``HOSTS``: a name, its mounting function and the
override keys it serves.

The single-port application (``server.build_app``) also mounts the Data API under
``/data-api`` and the geoblock check at ``/api/geoblock`` (``extra_routes``), where the ``sim``
profile looks for them.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Final

import msgspec
from aiohttp import web

from polylab.sim import gamma_routes, rest, rest_trading, sports_ws, ws
from polylab.sim.accounts import norm_address
from polylab.sim.config import SimConfig
from polylab.sim.state import SimState

if TYPE_CHECKING:
    from polylab.sim.server import SimHandle

__all__ = [
    "HOSTS",
    "ProductionSim",
    "add_data",
    "add_geoblock",
    "extra_routes",
    "running_production",
]

_enc = msgspec.json.Encoder()


def _json(obj: object) -> web.Response:
    return web.Response(body=_enc.encode(obj), content_type="application/json")


def extra_routes(app: web.Application, state: SimState, *, data_prefix: str) -> None:
    """Mount the Data API under ``data_prefix`` and the geoblock check at ``/api/geoblock``."""
    add_data(app, state, data_prefix)
    add_geoblock(app, state)


def add_data(app: web.Application, state: SimState, prefix: str = "") -> None:
    """The Data API's ``/positions?user=ADDRESS`` (shares as decimal strings) and a health
    answer at the root. A missing or malformed ``user`` is a 400 naming it."""

    async def root(request: web.Request) -> web.Response:
        return _json({"data": "OK"})

    async def positions(request: web.Request) -> web.Response:
        raw = request.query.get("user", "")
        if len(raw) != 42 or not raw.startswith(("0x", "0X")):
            return web.Response(
                status=400,
                body=_enc.encode({"error": f"invalid user address {raw!r}"}),
                content_type="application/json",
            )
        user = norm_address(raw)
        ex = state.exchange
        out = []
        for (addr, token), micros in sorted(ex.accounts.positions.items()):
            if addr != user or micros == 0:
                continue
            m = ex.markets.by_token.get(token)
            out.append(
                {
                    "proxyWallet": user,
                    "asset": token,
                    "conditionId": m.condition_id if m is not None else "",
                    "size": f"{micros // 1_000_000}.{micros % 1_000_000:06d}",
                    "outcome": m.outcomes[m.token_ids.index(token)] if m is not None else "",
                }
            )
        return _json(out)

    app.router.add_get(prefix or "/", root)
    app.router.add_get(f"{prefix}/positions", positions)


def add_geoblock(app: web.Application, state: SimState) -> None:
    """``GET /api/geoblock``: the caller may trade, unless ``SimConfig.geo_blocked`` (then it
    answers as the venue does for a blocked region)."""

    async def geoblock(request: web.Request) -> web.Response:
        blocked = state.config.geo_blocked
        country, region = ("US", "NY") if blocked else ("IE", "L")
        ip = request.remote or ""
        return _json({"blocked": blocked, "ip": ip, "country": country, "region": region})

    app.router.add_get("/api/geoblock", geoblock)


def _clob(app: web.Application, state: SimState) -> None:
    rest.register(app, state)
    rest_trading.register(app, state)


def _ws(app: web.Application, state: SimState) -> None:
    ws.register(app, state)


def _gamma(app: web.Application, state: SimState) -> None:
    gamma_routes.register(app, state, prefix="", scoreboards=False)


def _sports(app: web.Application, state: SimState) -> None:
    sports_ws.mount(app, sports_ws.SportsChannel(state), "/ws")


def _espn(app: web.Application, state: SimState) -> None:
    gamma_routes.register_scoreboard(app, state, (gamma_routes.SCOREBOARD_PATH,))


Mount = Callable[[web.Application, SimState], None]

HOSTS: Final[list[tuple[str, Mount, dict[str, str]]]] = [
    ("clob", _clob, {"POLYMARKET_CLOB_URL": "http://{hp}"}),
    (
        "ws",
        _ws,
        {"POLYMARKET_WS_URL": "ws://{hp}/ws/market", "POLYMARKET_USER_WS_URL": "ws://{hp}/ws/user"},
    ),
    ("gamma", _gamma, {"POLYMARKET_GAMMA_URL": "http://{hp}"}),
    ("data", add_data, {"POLYMARKET_DATA_URL": "http://{hp}"}),
    ("espn", _espn, {"ESPN_URL": "http://{hp}"}),
    ("geoblock", add_geoblock, {"POLYMARKET_GEOBLOCK_URL": "http://{hp}/api/geoblock"}),
    ("sports", _sports, {"POLYMARKET_SPORTS_WS_URL": "ws://{hp}/ws"}),
]
"""The production hosts the simulator stands in for: name, what to mount, the overrides it
answers (``{hp}``: its ``127.0.0.1:PORT``)."""


class ProductionSim(msgspec.Struct, frozen=True):
    """A simulator in production layout: ``handle`` (its CLOB host's ``SimHandle``), the
    ``overrides`` (``ENV_KEYS`` name → local URL) and each host's ``ports``."""

    handle: SimHandle
    overrides: dict[str, str]
    ports: dict[str, int]


@contextlib.asynccontextmanager
async def running_production(
    config: SimConfig | None = None, ports: dict[str, int] | None = None
) -> AsyncIterator[ProductionSim]:
    """Serve every production host of one simulator on its own port (``ports`` by host name,
    missing ones ephemeral) for the ``async with``."""
    from polylab.sim.server import SimHandle, _bound_port, on_cleanup, on_startup

    state = SimState(config or SimConfig())
    runners: list[web.AppRunner] = []
    overrides: dict[str, str] = {}
    bound: dict[str, int] = {}
    hub: ws.WsHub | None = None
    channel: sports_ws.SportsChannel | None = None
    try:
        for i, (name, mount, keys) in enumerate(HOSTS):
            app = web.Application(middlewares=[rest.json_errors])
            mount(app, state)
            if i == 0:  # the exchange's scheduler and the generator run once, with the CLOB
                app.on_startup.append(on_startup(state))
                app.on_cleanup.append(on_cleanup(state))
            runner = web.AppRunner(app, handle_signals=False)
            await runner.setup()
            runners.append(runner)
            await web.TCPSite(runner, "127.0.0.1", (ports or {}).get(name, 0)).start()
            port = bound[name] = _bound_port(runner)
            overrides.update({k: v.format(hp=f"127.0.0.1:{port}") for k, v in keys.items()})
            if ws.HUB_KEY in app:
                hub = app[ws.HUB_KEY]
            if sports_ws.CHANNEL_KEY in app:
                channel = app[sports_ws.CHANNEL_KEY]
        if hub is None or channel is None:
            raise RuntimeError("the production layout serves no market or sports channel")
        clob = bound["clob"]
        handle = SimHandle(
            url=f"http://127.0.0.1:{clob}",
            ws_url=f"ws://127.0.0.1:{bound['ws']}",
            state=state,
            port=clob,
            hub=hub,
            sports=channel,
        )
        yield ProductionSim(handle=handle, overrides=overrides, ports=bound)
    finally:
        for runner in reversed(runners):
            await runner.cleanup()

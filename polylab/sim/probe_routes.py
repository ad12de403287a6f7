"""The small endpoints a preflight probes, on the single-port simulator (``sim`` profile paths).

``polylab doctor`` checks every endpoint of a venue profile; the CLOB's root is a CLOB route
(``polylab.sim.rest``), these are the others: the Data API root (``{"data": "OK"}``), the
geoblock check (``{"blocked", "ip", "country", "region"}``; ``SimConfig.geo_blocked`` turns it
to blocked) and the ESPN scoreboard under its production path
(``/apis/site/v2/sports/{sport}/{league}/scoreboard`` below the profile's ESPN base). Each
route is mounted only when no other module already serves that path, so a fuller
implementation (the production layout) wins without a clash.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import msgspec
from aiohttp import web

from polylab.sim.sports import LEAGUES

if TYPE_CHECKING:
    from polylab.sim.state import SimState

__all__ = ["register"]


def _served(app: web.Application, method: str, path: str) -> bool:
    for route in app.router.routes():
        info = route.resource.get_info() if route.resource is not None else {}
        if route.method in (method, "*") and path in (info.get("path"), info.get("formatter")):
            return True
    return False


def register(app: web.Application, state: SimState) -> None:
    """Mount the probe routes that are not served yet."""

    async def data_root(request: web.Request) -> web.Response:
        return web.json_response({"data": "OK"})

    async def geoblock(request: web.Request) -> web.Response:
        blocked = state.config.geo_blocked
        return web.json_response(
            {
                "blocked": blocked,
                "ip": request.remote or "127.0.0.1",
                "country": "US" if blocked else "IE",
                "region": "NY" if blocked else "L",
            }
        )

    async def scoreboard(request: web.Request) -> web.Response:
        sport, league = request.match_info["sport"], request.match_info["league"]
        if (sport, league) not in LEAGUES:
            return web.json_response({"error": f"unknown league {sport}/{league}"}, status=404)
        board = state.scoreboard.scoreboard(sport, league, request.query.get("dates"))
        return web.Response(body=msgspec.json.encode(board), content_type="application/json")

    for path, handler in (
        ("/data-api/", data_root),
        ("/api/geoblock", geoblock),
        ("/espn/apis/site/v2/sports/{sport}/{league}/scoreboard", scoreboard),
    ):
        if not _served(app, "GET", path):
            app.router.add_get(path, handler)

"""Where the venue lives: one profile of endpoints per venue, the only place hosts are written.

Every client (CLOB REST, market and user channels, Gamma discovery, the Data API, the sports
channel, ESPN scoreboards, the geoblock check) takes its base URL from a ``VenueProfile`` and
composes the production paths and query strings itself, so pointing the ``polymarket`` profile at
a local simulator laid out like production (``polylab sim serve --layout production``) changes
nothing but host and port.

Two built-in profiles:

* ``polymarket``: the production hosts (protocol doc §0.2); Polygon, chain id 137.
* ``sim``: polylab's local simulator, which serves everything on one port under the paths
  polylab's simulator has always used (``/ws/market``, ``/gamma``, ``/espn``, ``/ws/sports``).

Any endpoint can be overridden from the environment (``POLYMARKET_CLOB_URL``,
``POLYMARKET_WS_URL`` (the market channel), ``POLYMARKET_USER_WS_URL``, ``POLYMARKET_GAMMA_URL``,
``POLYMARKET_DATA_URL``, ``POLYMARKET_SPORTS_WS_URL``, ``ESPN_URL``, ``POLYMARKET_GEOBLOCK_URL``)
or from a config mapping with the same keys.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Final
from urllib.parse import urlsplit

import msgspec

__all__ = [
    "ENV_KEYS",
    "PROFILES",
    "VenueError",
    "VenueProfile",
    "polymarket",
    "resolve",
    "sim",
]


class VenueError(ValueError):
    """An unknown profile or an endpoint URL that cannot be used; the message names the value."""


class VenueProfile(msgspec.Struct, frozen=True, kw_only=True):
    """The endpoints of one venue. URLs carry no trailing slash.

    ``clob``: CLOB REST base. ``market_ws`` / ``user_ws``: full WebSocket URLs of the market and
    user channels. ``gamma``: Gamma base (``/markets``, ``/events``…). ``data``: Data API base.
    ``sports_ws``: full URL of the sports channel. ``espn``: ESPN base, to which
    ``/apis/site/v2/sports/{sport}/{league}/scoreboard`` is appended. ``geoblock``: full URL of
    the geoblock check. ``chain_id``: the chain orders are signed for.
    """

    name: str
    clob: str
    market_ws: str
    user_ws: str
    gamma: str
    data: str
    sports_ws: str
    espn: str
    geoblock: str
    chain_id: int = 137

    def scoreboard_url(self, sport: str, league: str) -> str:
        """ESPN-format scoreboard of one league (``football``/``nfl``, ``soccer``/``eng.1``…)."""
        return f"{self.espn}/apis/site/v2/sports/{sport}/{league}/scoreboard"

    def override(self, values: Mapping[str, str]) -> VenueProfile:
        """This profile with the endpoints named in ``values`` (``ENV_KEYS`` names) replaced.

        Unknown keys are ignored (the environment holds much else); a value that is not an
        absolute http(s)/ws(s) URL is refused with the key and the value."""
        changes: dict[str, str] = {}
        for key, field in ENV_KEYS.items():
            raw = values.get(key)
            if raw is None or raw == "":
                continue
            changes[field] = _checked(key, raw, ws=field.endswith("_ws"))
        return msgspec.structs.replace(self, **changes) if changes else self


ENV_KEYS: Final[dict[str, str]] = {
    "POLYMARKET_CLOB_URL": "clob",
    "POLYMARKET_WS_URL": "market_ws",
    "POLYMARKET_USER_WS_URL": "user_ws",
    "POLYMARKET_GAMMA_URL": "gamma",
    "POLYMARKET_DATA_URL": "data",
    "POLYMARKET_SPORTS_WS_URL": "sports_ws",
    "ESPN_URL": "espn",
    "POLYMARKET_GEOBLOCK_URL": "geoblock",
}
"""Environment / config keys → profile fields."""


def _checked(key: str, url: str, *, ws: bool) -> str:
    parts = urlsplit(url)
    schemes = ("ws", "wss") if ws else ("http", "https")
    if parts.scheme not in schemes or not parts.netloc:
        want = " or ".join(f"{s}://HOST[:PORT]/…" for s in schemes)
        raise VenueError(f"{key} must be an absolute URL like {want}, was {url!r}")
    return url.rstrip("/")


polymarket: Final = VenueProfile(
    name="polymarket",
    clob="https://clob.polymarket.com",
    market_ws="wss://ws-subscriptions-clob.polymarket.com/ws/market",
    user_ws="wss://ws-subscriptions-clob.polymarket.com/ws/user",
    gamma="https://gamma-api.polymarket.com",
    data="https://data-api.polymarket.com",
    sports_ws="wss://sports-api.polymarket.com/ws",
    espn="https://site.api.espn.com",
    geoblock="https://polymarket.com/api/geoblock",
    chain_id=137,
)
"""Production (protocol doc §0.2)."""


def sim(base_url: str) -> VenueProfile:
    """The built-in simulator serving every endpoint on one ``http://HOST:PORT`` base."""
    base = _checked("sim base URL", base_url, ws=False)
    ws = "ws" + base[len("http") :]
    return VenueProfile(
        name="sim",
        clob=base,
        market_ws=f"{ws}/ws/market",
        user_ws=f"{ws}/ws/user",
        gamma=f"{base}/gamma",
        data=f"{base}/data-api",
        sports_ws=f"{ws}/ws/sports",
        espn=f"{base}/espn",
        geoblock=f"{base}/api/geoblock",
        chain_id=137,
    )


PROFILES: Final = ("polymarket", "sim")


def resolve(
    name: str,
    *,
    sim_url: str = "",
    overrides: Mapping[str, str] | None = None,
    use_env: bool = True,
) -> VenueProfile:
    """The named profile with configuration, then environment, overrides applied.

    ``sim_url``: the simulator's base URL for the ``sim`` profile (required for it).
    """
    if name == "polymarket":
        profile = polymarket
    elif name == "sim":
        if not sim_url:
            raise VenueError("the sim venue needs the simulator's URL (http://HOST:PORT)")
        profile = sim(sim_url)
    else:
        raise VenueError(f"unknown venue {name!r}: expected one of {', '.join(PROFILES)}")
    if overrides:
        profile = profile.override(overrides)
    if use_env:
        profile = profile.override(os.environ)
    return profile

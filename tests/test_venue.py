"""Venue profiles: production hosts in one place, every endpoint overridable, bad URLs refused."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from polylab import venue
from polylab.venue import VenueError, resolve

PROD_HOSTS = (
    "clob.polymarket.com",
    "ws-subscriptions-clob.polymarket.com",
    "gamma-api.polymarket.com",
    "data-api.polymarket.com",
    "sports-api.polymarket.com",
    "site.api.espn.com",
)


def test_production_profile_names_the_protocol_doc_endpoints() -> None:
    p = resolve("polymarket", use_env=False)
    assert p.clob == "https://clob.polymarket.com"
    assert p.market_ws.endswith("/ws/market") and p.user_ws.endswith("/ws/user")
    assert p.scoreboard_url("football", "nfl") == (
        "https://site.api.espn.com/apis/site/v2/sports/football/nfl/scoreboard"
    )
    assert p.chain_id == 137


def test_env_overrides_only_the_named_endpoints(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POLYMARKET_CLOB_URL", "http://127.0.0.1:9001/")
    monkeypatch.setenv("POLYMARKET_WS_URL", "ws://127.0.0.1:9002/ws/market")
    p = resolve("polymarket")
    assert p.clob == "http://127.0.0.1:9001"
    assert p.market_ws == "ws://127.0.0.1:9002/ws/market"
    assert p.gamma == venue.polymarket.gamma


@pytest.mark.parametrize(
    ("key", "value"),
    [("POLYMARKET_CLOB_URL", "clob.example"), ("POLYMARKET_WS_URL", "http://127.0.0.1:1/ws")],
)
def test_a_bad_override_names_key_and_value(key: str, value: str) -> None:
    with pytest.raises(VenueError, match=re.escape(value)) as e:
        resolve("polymarket", overrides={key: value}, use_env=False)
    assert key in str(e.value)


def test_unknown_venue_and_sim_without_url_are_refused() -> None:
    with pytest.raises(VenueError, match="'kalshi'"):
        resolve("kalshi")
    with pytest.raises(VenueError, match="URL"):
        resolve("sim")
    s = resolve("sim", sim_url="http://127.0.0.1:8765", use_env=False)
    assert s.market_ws == "ws://127.0.0.1:8765/ws/market"


def test_production_hosts_appear_only_in_the_venue_module() -> None:
    root = Path(venue.__file__).resolve().parent
    found = {
        str(path.relative_to(root))
        for path in root.rglob("*.py")
        for host in PROD_HOSTS
        if host in path.read_text(encoding="utf-8")
    }
    assert found == {"venue.py"}


def test_sim_profile_composes_the_single_port_simulator_paths() -> None:
    s = resolve("sim", sim_url="http://127.0.0.1:8765/", use_env=False)
    assert s.scoreboard_url("hockey", "nhl") == (
        "http://127.0.0.1:8765/espn/apis/site/v2/sports/hockey/nhl/scoreboard"
    )
    assert (s.gamma, s.user_ws) == ("http://127.0.0.1:8765/gamma", "ws://127.0.0.1:8765/ws/user")
    assert s.geoblock == "http://127.0.0.1:8765/api/geoblock"


def test_a_named_venue_drives_the_paper_runner_without_deriving_urls() -> None:
    """The runner's venue carries the whole profile: the market channel is the profile's own
    URL, not one derived from the REST URL (on the venue they are different hosts)."""
    from polylab.runner.paper import Venue

    p = resolve(
        "polymarket",
        overrides={"POLYMARKET_CLOB_URL": "http://127.0.0.1:1", "POLYMARKET_WS_URL": "ws://h:2/x"},
        use_env=False,
    )
    v = Venue(profile=p)
    assert v.url == "http://127.0.0.1:1" and v.endpoints.market_ws == "ws://h:2/x"
    assert v.endpoints.gamma == venue.polymarket.gamma

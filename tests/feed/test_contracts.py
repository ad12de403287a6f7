"""Contract tests: what polylab sends to the production hosts and what it reads back.

A local capture server stands in for every production host of the ``polymarket`` profile (only
the base URLs overridden, as with ``polylab sim serve --layout production``). It answers each
production path with the real capture from ``../shared/fixtures`` and logs every request, so
each test holds both sides: the request polylab composes (method, path, query, headers present)
and the parse of a response the venue really sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import WSMsgType, web

from polylab.book.market_feed import MarketFeed, MarketFeedConfig
from polylab.book.registry import BookRegistry
from polylab.execution.auth import ApiCreds
from polylab.execution.eip712 import SigningKey
from polylab.execution.rest_async import AsyncClobRest
from polylab.feed.discovery import GammaClient
from polylab.feed.gamma_lookup import event_by_slug, keyset, market_by_slug
from polylab.feed.sports_sources import HttpScoreboardSource
from polylab.feed.user_ws import UserFeed, UserFeedConfig
from polylab.market import MarketCatalog
from polylab.venue import VenueProfile, resolve

NT = "polymarket/nautilus_trader"
KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
L2_HEADERS = {"POLY_ADDRESS", "POLY_SIGNATURE", "POLY_TIMESTAMP", "POLY_API_KEY", "POLY_PASSPHRASE"}


class Captures:
    """One aiohttp server answering production paths with the shared captures."""

    def __init__(self, shared: Path) -> None:
        self.shared = shared
        self.requests: list[tuple[str, str, dict[str, list[str]], set[str]]] = []
        self.ws_sent: list[dict[str, Any]] = []

    def body(self, rel: str) -> bytes:
        return (self.shared / rel).read_bytes()

    def app(self) -> web.Application:
        @web.middleware
        async def log(request: web.Request, handler: Any) -> web.StreamResponse:
            q: dict[str, list[str]] = {}
            for k, v in request.query.items():
                q.setdefault(k, []).append(v)
            self.requests.append((request.method, request.path, q, set(request.headers)))
            resp: web.StreamResponse = await handler(request)
            return resp

        def static(rel: str, wrap: Any = None) -> Any:
            async def h(request: web.Request) -> web.Response:
                raw = self.body(rel)
                if wrap is not None:
                    raw = json.dumps(wrap(json.loads(raw))).encode()
                return web.Response(body=raw, content_type="application/json")

            return h

        app = web.Application(middlewares=[log])
        r = app.router
        # CLOB
        r.add_get("/book", static(f"{NT}/rest_book_2024-10.json"))
        r.add_get("/markets", static(f"{NT}/rest_clob_markets_page.json"))
        r.add_get("/markets/{cid}", static(f"{NT}/rest_clob_market_2024.json"))
        r.add_get(
            "/data/trades",
            static(
                f"{NT}/rest_data_trades_row_2024-09.json",
                lambda row: {"data": [row], "next_cursor": "LTE=", "limit": 1, "count": 1},
            ),
        )
        # Gamma (its own host in production: mounted under /g here, the override says so)
        r.add_get("/g/markets", static(f"{NT}/gamma_market_btc_updown_5m_2026-03.json", _as_list))
        r.add_get("/g/events", static(f"{NT}/gamma_events_dem_nominee_2028.json"))
        r.add_get("/g/markets/keyset", self.markets_keyset)
        r.add_get("/g/markets/slug/{slug}", static(f"{NT}/gamma_market_btc_updown_5m_2026-03.json"))
        r.add_get(
            "/g/events/slug/{slug}", static(f"{NT}/gamma_events_dem_nominee_2028.json", _first)
        )
        r.add_get(
            "/apis/site/v2/sports/football/nfl/scoreboard",
            static("espn/ha-teamtracker/scoreboard_nfl.json"),
        )
        r.add_get("/ws/market", self.market_ws)
        r.add_get("/ws/user", self.user_ws)
        return app

    async def markets_keyset(self, request: web.Request) -> web.Response:
        """Two keyset pages of real market objects: the first names a cursor, the last not."""
        events = json.loads(self.body(f"{NT}/gamma_events_dem_nominee_2028.json"))
        ms = events[0]["markets"]
        if request.query.get("after_cursor") == "c1":
            body: dict[str, Any] = {"markets": ms[1:]}
        else:
            body = {"markets": ms[:1], "next_cursor": "c1"}
        return web.json_response(body)

    async def market_ws(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        async for msg in ws:
            if msg.type != WSMsgType.TEXT:
                break
            if msg.data == "PING":
                await ws.send_str("PONG")
                continue
            self.ws_sent.append(json.loads(msg.data))
            book = json.loads(self.body(f"{NT}/ws_market_book_2024-10.json"))
            await ws.send_str(json.dumps([book]))
        return ws

    async def user_ws(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        async for msg in ws:
            if msg.type != WSMsgType.TEXT:
                break
            if msg.data == "PING":
                await ws.send_str("PONG")
                continue
            self.ws_sent.append(json.loads(msg.data))
            await ws.send_str(self.body(f"{NT}/ws_user_order_placement_2024-09.json").decode())
        return ws


def _as_list(obj: Any) -> list[Any]:
    return [obj]


def _first(obj: Any) -> Any:
    return obj[0]


@contextlib.asynccontextmanager
async def serving(shared: Path) -> AsyncIterator[tuple[Captures, VenueProfile]]:
    cap = Captures(shared)
    runner = web.AppRunner(cap.app())
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = next(a[1] for a in runner.addresses if isinstance(a, tuple))
    base = f"127.0.0.1:{port}"
    profile = resolve(
        "polymarket",
        overrides={
            "POLYMARKET_CLOB_URL": f"http://{base}",
            "POLYMARKET_WS_URL": f"ws://{base}/ws/market",
            "POLYMARKET_USER_WS_URL": f"ws://{base}/ws/user",
            "POLYMARKET_GAMMA_URL": f"http://{base}/g",
            "ESPN_URL": f"http://{base}",
        },
        use_env=False,
    )
    try:
        yield cap, profile
    finally:
        await runner.cleanup()


def _run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 30))


def test_gamma_discovery_requests_and_parses_the_captures(shared_fixtures: Path) -> None:
    async def main() -> Any:
        async with serving(shared_fixtures) as (cap, profile), GammaClient(profile.gamma) as g:
            found = await g.discover(active=True, closed=False, assume_version="v1")
            return cap.requests, found

    reqs, found = _run(main())
    paths = [(m, p) for m, p, _, _ in reqs]
    assert paths == [("GET", "/g/markets"), ("GET", "/g/events")]
    for _, _, q, _ in reqs:
        assert q["active"] == ["true"] and q["closed"] == ["false"]
        assert q["offset"] == ["0"] and int(q["limit"][0]) > 0
    slugs = {m.slug for m in found.markets}
    assert any(s.startswith("btc-updown-5m") for s in slugs), slugs
    neg = [m for m in found.markets if m.neg_risk]
    assert len(neg) == 2 and len({m.event_id for m in neg}) == 1


def test_gamma_keyset_and_slug_lookups(shared_fixtures: Path) -> None:
    async def main() -> Any:
        async with serving(shared_fixtures) as (cap, profile), GammaClient(profile.gamma) as g:
            ks = await keyset(g, "markets", closed=False)
            m = await market_by_slug(g, "btc-updown-5m-1773307200")
            e = await event_by_slug(g, "democratic-presidential-nominee-2028")
            return cap.requests, ks, m, e

    reqs, ks, m, e = _run(main())
    paths = [p for _, p, _, _ in reqs]
    assert paths == [
        "/g/markets/keyset",
        "/g/markets/keyset",
        "/g/markets/slug/btc-updown-5m-1773307200",
        "/g/events/slug/democratic-presidential-nominee-2028",
    ]
    first, second = reqs[0][2], reqs[1][2]
    assert "after_cursor" not in first and second["after_cursor"] == ["c1"]
    assert first["closed"] == second["closed"] == ["false"] and "offset" not in first
    assert len(ks) == 2 and all(x.condition_id.startswith("0x") for x in ks)
    assert m is not None and m.slug.startswith("btc-updown-5m")
    assert e is not None and e.neg_risk and len(e.markets) == 2


def test_clob_reads_and_an_l2_call_compose_production_requests(shared_fixtures: Path) -> None:
    book = json.loads((shared_fixtures / f"{NT}/rest_book_2024-10.json").read_text())
    creds = ApiCreds(api_key="k", secret="c2VjcmV0c2VjcmV0c2VjcmV0", passphrase="p")

    async def main() -> Any:
        async with (
            serving(shared_fixtures) as (cap, profile),
            AsyncClobRest(profile.clob, key=SigningKey(KEY), creds=creds) as rest,
        ):
            b = await rest.get_order_book(book["asset_id"])
            page = await rest.get_markets()
            market = await rest.get_market("0xabc")
            trades = await rest.get_trades(market="0xabc")
            return cap.requests, b, page, market, trades

    reqs, b, page, market, trades = _run(main())
    by_path = {p: (m, q, h) for m, p, q, h in reqs}
    assert by_path["/book"][:2] == ("GET", {"token_id": [book["asset_id"]]})
    assert by_path["/markets"][0] == "GET" and by_path["/markets/0xabc"][0] == "GET"
    m, q, headers = by_path["/data/trades"]
    assert m == "GET" and q["market"] == ["0xabc"]
    assert {h.upper() for h in headers} >= L2_HEADERS
    assert len(b.bids) == len(book["bids"]) and b.asset_id == book["asset_id"]
    assert len(page.data) == 100 and page.next_cursor == "MTAw"
    assert market.neg_risk is True and len(market.tokens) == 2
    assert len(trades) == 1 and trades[0].status == "CONFIRMED"


def test_espn_scoreboard_path_and_parse(shared_fixtures: Path) -> None:
    async def main() -> Any:
        async with serving(shared_fixtures) as (cap, profile):
            src = HttpScoreboardSource(profile.espn, "football", "nfl")
            try:
                games = await src.fetch()
            finally:
                await src.aclose()
            return cap.requests, games, src.url

    reqs, games, url = _run(main())
    assert [(m, p) for m, p, _, _ in reqs] == [
        ("GET", "/apis/site/v2/sports/football/nfl/scoreboard")
    ]
    assert url.endswith("/apis/site/v2/sports/football/nfl/scoreboard") and games


def test_market_and_user_channel_subscriptions_and_parses(shared_fixtures: Path) -> None:
    book = json.loads((shared_fixtures / f"{NT}/ws_market_book_2024-10.json").read_text())
    order = json.loads((shared_fixtures / f"{NT}/ws_user_order_placement_2024-09.json").read_text())
    creds = ApiCreds(api_key="k", secret="c2VjcmV0c2VjcmV0c2VjcmV0", passphrase="p")

    async def main() -> Any:
        async with serving(shared_fixtures) as (cap, profile):
            reg = BookRegistry(MarketCatalog())
            got_user: list[object] = []
            cfg = MarketFeedConfig(url=profile.market_ws, stale_after_ms=0)
            ucfg = UserFeedConfig(url=profile.user_ws, markets=(order["market"],))
            async with (
                MarketFeed(cfg, reg) as feed,
                UserFeed(ucfg, creds, on_event=lambda ns, ev: got_user.append(ev)),
            ):
                await feed.subscribe([book["asset_id"]])
                for _ in range(500):
                    if book["asset_id"] in reg.books and got_user:
                        break
                    await asyncio.sleep(0.01)
            return cap.ws_sent, reg, got_user

    sent, reg, got_user = _run(main())
    market_sub = next(s for s in sent if s.get("type") == "market")
    assert market_sub["assets_ids"] == [book["asset_id"]]
    assert market_sub["custom_feature_enabled"] is True
    user_sub = next(s for s in sent if s.get("type") == "user")
    assert set(user_sub["auth"]) == {"apiKey", "secret", "passphrase"}
    assert user_sub["markets"] == [order["market"]]
    b = reg.books[book["asset_id"]]
    assert b.best_bid_micros() == 511_000 and b.best_ask_micros() == 514_000
    assert got_user and getattr(got_user[0], "id", None) == order["id"]


@pytest.mark.parametrize("field", ["clob", "market_ws", "user_ws", "gamma", "espn"])
def test_only_the_base_urls_differ_from_production(field: str) -> None:
    """The paths a client composes come from the profile: overriding a base URL keeps the
    production path (the market and user channels keep ``/ws/market`` and ``/ws/user``)."""
    import polylab.venue as venue

    prod = getattr(venue.polymarket, field)
    key = next(k for k, f in venue.ENV_KEYS.items() if f == field)
    scheme = "ws" if field.endswith("_ws") else "http"
    path = prod.split("/", 3)[3] if prod.count("/") > 2 else ""
    local = f"{scheme}://127.0.0.1:1/{path}".rstrip("/")
    p = resolve("polymarket", overrides={key: local}, use_env=False)
    assert getattr(p, field).split("/", 3)[3:] == prod.split("/", 3)[3:]

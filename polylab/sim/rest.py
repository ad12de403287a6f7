"""CLOB REST routes of the simulator: public market data here, trading in ``rest_trading.py``.

Shapes and errors follow the venue (protocol doc §3): numbers in books and prices are strings,
books are best-last, every error is ``{"error": message}`` with the venue's status, lists page
with base64 offset cursors from ``MA==`` to ``LTE=``. Every handler runs behind ``guarded``:
the configured REST faults (429 / 5xx) are drawn first, and an unexpected exception becomes a
counted, logged 500 instead of a dropped connection.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from polylab.money import price_micros_to_str
from polylab.sim.accounts import norm_address
from polylab.sim.faults import http_fault
from polylab.sim.market_json import (
    END_CURSOR,
    clob_market_compact,
    decode_cursor,
    encode_cursor,
    json_bytes,
    market_item,
    simplified_item,
)
from polylab.sim.market_state import MarketState
from polylab.sim.state import SimState

__all__ = [
    "Handler",
    "PublicApi",
    "add_routes",
    "error",
    "guarded",
    "json_errors",
    "json_response",
    "page",
    "register",
]

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
NO_BOOK = "No orderbook exists for the requested token id"


def json_response(obj: Any, status: int = 200) -> web.Response:
    """A JSON response (``Decimal`` values as numbers)."""
    return web.Response(body=json_bytes(obj), status=status, content_type="application/json")


def error(status: int, message: str) -> web.Response:
    """The venue's error envelope."""
    return json_response({"error": message}, status)


@web.middleware
async def json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Answer a request no route matches (404, 405) in the venue's ``{"error": ...}``
    envelope instead of aiohttp's text page."""
    try:
        return await handler(request)
    except (web.HTTPNotFound, web.HTTPMethodNotAllowed) as exc:
        if getattr(request.match_info, "http_exception", None) is None:
            raise  # a handler's own 404/405 keeps its body
        what = "not found" if exc.status == 404 else "method not allowed"
        return error(exc.status, f"{what}: {request.method} {request.path}")


def guarded(state: SimState, handler: Handler) -> Handler:
    """Wrap a handler with REST fault injection and a never-crash guard."""

    async def run(request: web.Request) -> web.StreamResponse:
        fault = http_fault(state.config.faults, state.rng)
        if fault is not None:
            return error(*fault)
        try:
            return await handler(request)
        except web.HTTPException:
            raise
        except Exception:
            state.exchange.stats["rest_errors"] = state.exchange.stats.get("rest_errors", 0) + 1
            log.exception("REST %s %s failed", request.method, request.path)
            return error(500, "Internal server error")

    return run


def page(request: web.Request, rows: list[Any], size: int) -> web.Response:
    """One page of ``rows`` by ``next_cursor``: ``{data, next_cursor, limit, count}``."""
    offset = decode_cursor(request.query.get("next_cursor", ""))
    if offset is None or offset < 0:
        return error(400, "Invalid next_cursor")
    chunk = rows[offset : offset + size]
    nxt = offset + len(chunk)
    cursor = encode_cursor(nxt) if nxt < len(rows) else END_CURSOR
    return json_response({"data": chunk, "next_cursor": cursor, "limit": size, "count": len(chunk)})


class PublicApi:
    """Handlers of the unauthenticated endpoints."""

    def __init__(self, state: SimState) -> None:
        self.state = state
        self.ex = state.exchange

    # -- helpers --------------------------------------------------------------------------
    def _token(self, token_id: object) -> tuple[MarketState | None, web.Response | None]:
        if not isinstance(token_id, str) or not token_id.isdigit():
            return None, error(400, "Invalid token id")
        st = self.ex.market_state(token_id)
        if st is None or token_id not in st.market.token_ids:
            return None, error(404, NO_BOOK)
        return st, None

    def _batch(self, body: object) -> list[dict[str, Any]] | web.Response:
        if not isinstance(body, list) or not all(isinstance(x, dict) for x in body):
            return error(400, "Invalid payload")
        if len(body) > self.state.config.max_tokens_per_request:
            return error(400, "Payload exceeds the limit")
        return body

    async def _json(self, request: web.Request) -> object:
        try:
            return await request.json()
        except ValueError:
            return None

    def _price(self, token: str, side: str) -> str | None:
        bid, ask = self.ex.top(token)
        p = bid if side == "BUY" else ask
        return None if p is None else price_micros_to_str(p)

    def _mid(self, token: str) -> str | None:
        bid, ask = self.ex.top(token)
        if bid is None or ask is None:
            return None
        return price_micros_to_str((bid + ask) // 2)

    def _spread(self, token: str) -> str | None:
        bid, ask = self.ex.top(token)
        return None if bid is None or ask is None else price_micros_to_str(ask - bid)

    # -- service --------------------------------------------------------------------------
    async def ok(self, request: web.Request) -> web.StreamResponse:
        return web.Response(text="OK")

    async def time(self, request: web.Request) -> web.StreamResponse:
        offset_ms = int(self.state.config.time_offset_s * 1000)
        return json_response((self.ex.now_ms() + offset_ms) // 1000)

    async def version(self, request: web.Request) -> web.StreamResponse:
        return json_response({"version": 1 if self.state.config.order_version == "v1" else 2})

    # -- books and prices -----------------------------------------------------------------
    async def book(self, request: web.Request) -> web.StreamResponse:
        token = request.query.get("token_id")
        _, err = self._token(token)
        return err or json_response(self.ex.book_json(str(token)))

    async def books(self, request: web.Request) -> web.StreamResponse:
        items = self._batch(await self._json(request))
        if isinstance(items, web.Response):
            return items
        out = []
        for item in items:
            _, err = self._token(item.get("token_id"))
            if err is not None:
                return err
            out.append(self.ex.book_json(str(item["token_id"])))
        return json_response(out)

    async def price(self, request: web.Request) -> web.StreamResponse:
        token, side = request.query.get("token_id"), request.query.get("side")
        _, err = self._token(token)
        if err is not None:
            return err
        if side not in ("BUY", "SELL"):
            return error(400, "Invalid side")
        p = self._price(str(token), side)
        return error(404, NO_BOOK) if p is None else json_response({"price": p})

    async def prices(self, request: web.Request) -> web.StreamResponse:
        items = self._batch(await self._json(request))
        if isinstance(items, web.Response):
            return items
        out: dict[str, dict[str, str]] = {}
        for item in items:
            token, side = item.get("token_id"), item.get("side")
            _, err = self._token(token)
            if err is not None:
                return err
            if side not in ("BUY", "SELL"):
                return error(400, "Invalid side")
            p = self._price(str(token), side)
            if p is not None:
                out.setdefault(str(token), {})[side] = p
        return json_response(out)

    async def midpoint(self, request: web.Request) -> web.StreamResponse:
        return self._one(request, self._mid, "mid")

    async def spread(self, request: web.Request) -> web.StreamResponse:
        return self._one(request, self._spread, "spread")

    def _one(self, request: web.Request, fn: Callable[[str], str | None], key: str) -> web.Response:
        token = request.query.get("token_id")
        _, err = self._token(token)
        if err is not None:
            return err
        v = fn(str(token))
        return error(404, NO_BOOK) if v is None else json_response({key: v})

    async def midpoints(self, request: web.Request) -> web.StreamResponse:
        return await self._many(request, self._mid)

    async def spreads(self, request: web.Request) -> web.StreamResponse:
        return await self._many(request, self._spread)

    async def _many(self, request: web.Request, fn: Callable[[str], str | None]) -> web.Response:
        items = self._batch(await self._json(request))
        if isinstance(items, web.Response):
            return items
        out: dict[str, str] = {}
        for item in items:
            _, err = self._token(item.get("token_id"))
            if err is not None:
                return err
            v = fn(str(item["token_id"]))
            if v is not None:
                out[str(item["token_id"])] = v
        return json_response(out)

    def _last(self, token: str) -> dict[str, str]:
        st = self.ex.market_state(token)
        side = st.last_side.get(token, "") if st is not None else ""
        return {"price": self.ex.last_trade_price(token) or "0.5", "side": side}

    async def last_trade_price(self, request: web.Request) -> web.StreamResponse:
        token = request.query.get("token_id")
        _, err = self._token(token)
        return err or json_response(self._last(str(token)))

    async def last_trades_prices(self, request: web.Request) -> web.StreamResponse:
        items = self._batch(await self._json(request))
        if isinstance(items, web.Response):
            return items
        out = []
        for item in items:
            _, err = self._token(item.get("token_id"))
            if err is not None:
                return err
            out.append({"token_id": item["token_id"], **self._last(str(item["token_id"]))})
        return json_response(out)

    # -- market parameters ----------------------------------------------------------------
    def _market_of(self, request: web.Request) -> tuple[MarketState | None, web.Response | None]:
        token = request.query.get("token_id")
        if not token or not token.isdigit():
            return None, error(400, "Invalid token id")
        st = self.ex.market_state(token)
        return (st, None) if st is not None else (None, error(404, "market not found"))

    async def tick_size(self, request: web.Request) -> web.StreamResponse:
        st, err = self._market_of(request)
        if st is None:
            return err or error(404, "market not found")
        return json_response({"minimum_tick_size": clob_market_compact(st)["mts"]})

    async def neg_risk(self, request: web.Request) -> web.StreamResponse:
        st, err = self._market_of(request)
        if st is None:
            return err or error(404, "market not found")
        return json_response({"neg_risk": st.market.neg_risk})

    async def fee_rate(self, request: web.Request) -> web.StreamResponse:
        st, err = self._market_of(request)
        if st is None:
            return err or error(404, "market not found")
        return json_response({"base_fee": clob_market_compact(st)["tbf"]})

    # -- markets --------------------------------------------------------------------------
    def _states(self) -> list[MarketState]:
        return [s for c in self.ex.markets.markets if (s := self.ex.market_state(c)) is not None]

    async def markets(self, request: web.Request) -> web.StreamResponse:
        rows = [market_item(s) for s in self._states()]
        return page(request, rows, self.state.config.page_size)

    async def simplified_markets(self, request: web.Request) -> web.StreamResponse:
        rows = [simplified_item(s) for s in self._states()]
        return page(request, rows, self.state.config.page_size)

    def _condition(self, request: web.Request) -> tuple[MarketState | None, web.Response | None]:
        cid = request.match_info["condition_id"]
        if not (cid.startswith("0x") and len(cid) == 66):
            return None, error(400, "Invalid market")
        st = self.ex.market_state(cid)
        if st is None or st.market.condition_id != cid:
            return None, error(404, "market not found")
        return st, None

    async def market(self, request: web.Request) -> web.StreamResponse:
        st, err = self._condition(request)
        if st is None:
            return err or error(404, "market not found")
        return json_response(market_item(st))

    async def clob_market(self, request: web.Request) -> web.StreamResponse:
        st, err = self._condition(request)
        if st is None:
            return err or error(404, "market not found")
        return json_response(clob_market_compact(st))

    async def market_by_token(self, request: web.Request) -> web.StreamResponse:
        token = request.match_info["token_id"]
        if not token.isdigit():
            return error(400, "Invalid token id")
        st = self.ex.market_state(token)
        if st is None:
            return error(404, "market not found")
        return json_response(
            {
                "condition_id": st.market.condition_id,
                "primary_token_id": st.yes,
                "secondary_token_id": st.no,
            }
        )

    async def sim_approve(self, request: web.Request) -> web.StreamResponse:
        """``POST /sim/approve`` ``{"address": "0x…"}``: simulator-only stand-in for the wallet's
        on-chain approvals (there is no chain here). The CLOB still sees them only after
        ``/balance-allowance/update``, as on the venue."""
        body = await self._json(request)
        address = body.get("address") if isinstance(body, dict) else None
        if not (isinstance(address, str) and _is_address(address)):
            return error(400, f"Invalid address: {address!r}")
        self.ex.approve(address)
        return json_response({"address": norm_address(address), "approved": True})


def _is_address(text: str) -> bool:
    return len(text) == 42 and text[:2] in ("0x", "0X") and all(c in _HEX for c in text[2:])


_HEX = frozenset("0123456789abcdefABCDEF")


def add_routes(
    app: web.Application, state: SimState, routes: list[tuple[str, str, Handler]]
) -> None:
    """Mount ``(method, path, handler)`` routes on ``app``, each behind ``guarded``."""
    for method, path, handler in routes:
        app.router.add_route(method, path, guarded(state, handler))


def register(app: web.Application, state: SimState) -> None:
    """Mount the public CLOB REST routes on ``app`` (trading: ``rest_trading.register``)."""
    api = PublicApi(state)
    routes: list[tuple[str, str, Handler]] = [
        ("GET", "/", api.ok),  # the venue's root answers "OK" (py-clob-client's get_ok)
        ("GET", "/ok", api.ok),
        ("GET", "/time", api.time),
        ("GET", "/version", api.version),
        ("GET", "/book", api.book),
        ("POST", "/books", api.books),
        ("GET", "/price", api.price),
        ("POST", "/prices", api.prices),
        ("GET", "/midpoint", api.midpoint),
        ("POST", "/midpoints", api.midpoints),
        ("GET", "/spread", api.spread),
        ("POST", "/spreads", api.spreads),
        ("GET", "/last-trade-price", api.last_trade_price),
        ("POST", "/last-trades-prices", api.last_trades_prices),
        ("GET", "/tick-size", api.tick_size),
        ("GET", "/neg-risk", api.neg_risk),
        ("GET", "/fee-rate", api.fee_rate),
        ("GET", "/markets", api.markets),
        ("GET", "/sampling-markets", api.markets),
        ("GET", "/simplified-markets", api.simplified_markets),
        ("GET", "/sampling-simplified-markets", api.simplified_markets),
        ("GET", "/markets/{condition_id}", api.market),
        ("GET", "/clob-markets/{condition_id}", api.clob_market),
        ("GET", "/markets-by-token/{token_id}", api.market_by_token),
        ("POST", "/sim/approve", api.sim_approve),
    ]
    add_routes(app, state, routes)

"""Authenticated CLOB routes: API keys (L1), orders, cancels, account data, heartbeats (L2).

Auth is the venue's (protocol doc §3.2), verified with ``polylab.execution.auth``: L1 EIP-712
``ClobAuth`` headers for ``/auth/api-key`` and ``/auth/derive-api-key`` (credentials are
deterministic per address + nonce), L2 HMAC headers on everything else. A bad or stale
signature (timestamp further than ``auth_max_skew_s`` from the server clock) is a 401.

Orders are verified by ``signed_orders.decode_order`` (domain per market, signer recovery,
amounts → price and size) and then placed on the exchange under the order's ``maker`` address.
A rejected ``POST /order`` is a 400 ``{"error": ...}``; in ``POST /orders`` each rejected leg is
``{"success": true, "orderID": "", "errorMsg": reason}`` inside a 200 list, as on the venue.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any, Final

from aiohttp import web

from polylab.execution.auth import POLY_API_KEY, POLY_NONCE, verify_l1, verify_l2
from polylab.execution.signing_v1 import EXCHANGES_V1
from polylab.execution.signing_v2 import EXCHANGES_V2, EXCHANGES_V3
from polylab.money import size_to_str
from polylab.sim.accounts import norm_address
from polylab.sim.events import order_json
from polylab.sim.exchange import PlaceResult
from polylab.sim.faults import order_reject
from polylab.sim.rest import Handler, add_routes, error, json_response, page
from polylab.sim.signed_orders import OrderRejected, decode_order
from polylab.sim.state import SimState

__all__ = ["TradingApi", "register"]

MAX_UINT256: Final = str(2**256 - 1)
MAX_CANCEL_IDS: Final = 3000
_REJECT_TEXT: Final = {
    "ORDER_DELAYED": "order match delayed due to market conditions",
    "EXECUTION_ERROR": "could not run the execution",
    "INVALID_ORDER_ERROR": "could not insert order",
}


class _Auth:
    """Who is calling: the signing address and its API key."""

    __slots__ = ("address", "api_key")

    def __init__(self, address: str, api_key: str) -> None:
        self.address = address
        self.api_key = api_key


def _amount(micros: int) -> str:
    return size_to_str(micros) if micros else ""


def _place_json(r: PlaceResult) -> dict[str, Any]:
    return {
        "success": True,
        "errorMsg": "",
        "orderID": r.order_id,
        "status": r.status,
        "takingAmount": _amount(r.taking_micros),
        "makingAmount": _amount(r.making_micros),
        "transactionsHashes": list(r.transaction_hashes),
        "tradeIDs": list(r.trade_ids),
    }


class TradingApi:
    """Handlers of the L1/L2 endpoints of one simulator."""

    def __init__(self, state: SimState) -> None:
        self.state = state
        self.ex = state.exchange
        self.cfg = state.config
        self.makers: dict[str, set[str]] = {}
        """API key → maker (funder) addresses its orders used (proxy/safe wallets)."""

    # -- auth -----------------------------------------------------------------------------
    async def _l2(self, request: web.Request) -> tuple[_Auth | None, str]:
        body = await request.text()
        address = verify_l2(
            request.headers,
            request.method,
            request.path,
            body or None,
            self.state.lookup_creds,
            max_skew_s=self.cfg.auth_max_skew_s,
        )
        if address is None:
            return None, body
        return _Auth(norm_address(address), request.headers.get(POLY_API_KEY, "")), body

    def _owners(self, auth: _Auth) -> set[str]:
        return {auth.address} | self.makers.get(auth.api_key, set())

    async def create_api_key(self, request: web.Request) -> web.StreamResponse:
        address = verify_l1(request.headers, self.cfg.chain_id, max_skew_s=self.cfg.auth_max_skew_s)
        nonce = request.headers.get(POLY_NONCE, "0") or "0"
        if address is None or not nonce.isdigit():
            return error(401, "Invalid L1 Request headers")
        creds = self.state.issue_creds(address, int(nonce))
        return json_response(
            {
                "apiKey": creds.api_key,
                "secret": creds.secret.reveal(),
                "passphrase": creds.passphrase.reveal(),
            }
        )

    async def api_keys(self, request: web.Request) -> web.StreamResponse:
        auth, _ = await self._l2(request)
        if auth is None:
            return error(401, "Unauthorized/Invalid api key")
        return json_response({"apiKeys": self.state.keys.keys_of(auth.address)})

    async def delete_api_key(self, request: web.Request) -> web.StreamResponse:
        auth, _ = await self._l2(request)
        if auth is None:
            return error(401, "Unauthorized/Invalid api key")
        self.state.keys.revoke(auth.api_key)
        return json_response("OK")

    async def closed_only(self, request: web.Request) -> web.StreamResponse:
        auth, _ = await self._l2(request)
        if auth is None:
            return error(401, "Unauthorized/Invalid api key")
        return json_response({"closed_only": False})

    # -- orders ---------------------------------------------------------------------------
    def _submit(self, auth: _Auth, body: object) -> PlaceResult:
        """Verify and place one posted order; ``OrderRejected`` on refusal."""
        if not isinstance(body, dict):
            raise OrderRejected("Invalid order payload")
        req = decode_order(
            body,
            api_key=auth.api_key,
            address=auth.address,
            exchange=self.ex,
            chain_id=self.cfg.chain_id,
            order_version=self.cfg.order_version,
        )
        code = order_reject(self.cfg.faults, self.state.rng)
        if code is not None:
            raise OrderRejected(_REJECT_TEXT.get(code, code))
        maker = norm_address(req.maker)
        self.makers.setdefault(auth.api_key, set()).add(maker)
        result = self.ex.place(
            maker,
            req.token_id,
            req.side,
            req.price_ticks,
            req.size_micros,
            req.order_type,
            req.post_only,
            req.expiration_s,
            req.order_id,
            auth.api_key,
            budget_micros=req.budget_micros,
        )
        if not result.success:
            raise OrderRejected(result.error_msg)
        return result

    async def post_order(self, request: web.Request) -> web.StreamResponse:
        auth, text = await self._l2(request)
        if auth is None:
            return error(401, "Unauthorized/Invalid api key")
        try:
            answer = json_response(_place_json(self._submit(auth, _loads(text))))
        except OrderRejected as exc:
            answer = error(exc.status, exc.message)
        delay_ms = self.cfg.faults.order_response_delay_ms
        if delay_ms:  # handled already; only the answer is late (fault injection)
            await asyncio.sleep(delay_ms / 1000)
        return answer

    async def post_orders(self, request: web.Request) -> web.StreamResponse:
        auth, text = await self._l2(request)
        if auth is None:
            return error(401, "Unauthorized/Invalid api key")
        bodies = _loads(text)
        if not isinstance(bodies, list):
            return error(400, "Invalid order payload")
        limit = self.cfg.max_orders_per_request
        if len(bodies) > limit:
            return error(400, f"Too many orders in payload: {len(bodies)}, max allowed: {limit}")
        out = []
        for body in bodies:
            try:
                out.append(_place_json(self._submit(auth, body)))
            except OrderRejected as exc:
                out.append(
                    {
                        "success": True,
                        "errorMsg": exc.message,
                        "orderID": "",
                        "status": "",
                        "takingAmount": "",
                        "makingAmount": "",
                        "transactionsHashes": [],
                        "tradeIDs": [],
                    }
                )
        return json_response(out)

    def _cancel(self, auth: _Auth, ids: list[str]) -> dict[str, Any]:
        owners = self._owners(auth)
        canceled: list[str] = []
        not_canceled: dict[str, str] = {}
        for oid in ids:
            order = self.ex.order(oid)
            if order is None or order.owner not in owners:
                not_canceled[oid] = "order not found"
            elif not self.ex.cancel(order.owner, oid):
                not_canceled[oid] = "order can't be canceled, it is already matched or canceled"
            else:
                canceled.append(oid)
        return {"canceled": canceled, "not_canceled": not_canceled}

    async def cancel_order(self, request: web.Request) -> web.StreamResponse:
        auth, text = await self._l2(request)
        if auth is None:
            return error(401, "Unauthorized/Invalid api key")
        body = _loads(text)
        oid = body.get("orderID") if isinstance(body, dict) else None
        if not isinstance(oid, str) or not oid:
            return error(400, "Invalid orderID")
        return json_response(self._cancel(auth, [oid]))

    async def cancel_orders(self, request: web.Request) -> web.StreamResponse:
        auth, text = await self._l2(request)
        if auth is None:
            return error(401, "Unauthorized/Invalid api key")
        ids = _loads(text)
        if not isinstance(ids, list) or not all(isinstance(i, str) and i for i in ids):
            return error(400, "Invalid order payload")
        if len(ids) > MAX_CANCEL_IDS:
            return error(400, f"Too many orders in payload, max allowed: {MAX_CANCEL_IDS}")
        return json_response(self._cancel(auth, ids))

    async def cancel_all(self, request: web.Request) -> web.StreamResponse:
        auth, _ = await self._l2(request)
        if auth is None:
            return error(401, "Unauthorized/Invalid api key")
        canceled = [oid for a in sorted(self._owners(auth)) for oid in self.ex.cancel_all(a)]
        return json_response({"canceled": canceled, "not_canceled": {}})

    async def cancel_market_orders(self, request: web.Request) -> web.StreamResponse:
        auth, text = await self._l2(request)
        if auth is None:
            return error(401, "Unauthorized/Invalid api key")
        body = _loads(text) if text else {}
        if not isinstance(body, dict):
            return error(400, "Invalid order payload")
        market, asset = body.get("market", ""), body.get("asset_id", "")
        if not isinstance(market, str) or not isinstance(asset, str):
            return error(400, "Invalid order payload")
        canceled = [
            oid
            for a in sorted(self._owners(auth))
            for oid in self.ex.cancel_all(a, market=market, asset_id=asset)
        ]
        return json_response({"canceled": canceled, "not_canceled": {}})

    # -- account data ---------------------------------------------------------------------
    async def orders(self, request: web.Request) -> web.StreamResponse:
        auth, _ = await self._l2(request)
        if auth is None:
            return error(401, "Unauthorized/Invalid api key")
        q = request.query
        rows = [
            row
            for a in sorted(self._owners(auth))
            for row in self.ex.open_orders(
                a, q.get("market", ""), q.get("asset_id", ""), q.get("id", "")
            )
        ]
        return page(request, rows, self.cfg.page_size)

    async def order(self, request: web.Request) -> web.StreamResponse:
        auth, _ = await self._l2(request)
        if auth is None:
            return error(401, "Unauthorized/Invalid api key")
        order = self.ex.order(request.match_info["order_id"])
        # the venue answers for active orders only: filled, cancelled and expired orders read
        # as empty (``null``), exactly like an unknown id (protocol doc §3.3)
        if order is None or order.owner not in self._owners(auth) or order.status != "LIVE":
            return json_response(None)
        return json_response(order_json(order))

    async def trades(self, request: web.Request) -> web.StreamResponse:
        auth, _ = await self._l2(request)
        if auth is None:
            return error(401, "Unauthorized/Invalid api key")
        q = request.query
        try:
            before, after = int(q.get("before", "0") or 0), int(q.get("after", "0") or 0)
        except ValueError:
            return error(400, "Invalid trade params payload")
        who = q.get("maker_address", "")
        owners = {norm_address(who)} if who else self._owners(auth)
        seen: set[tuple[str, str]] = set()
        rows = []
        for a in sorted(owners):
            for row in self.ex.trades(
                a,
                trade_id=q.get("id", ""),
                market=q.get("market", ""),
                asset_id=q.get("asset_id", ""),
                before_s=before,
                after_s=after,
            ):
                key = (row["id"], row["trader_side"])
                if key not in seen:
                    seen.add(key)
                    rows.append(row)
        return page(request, rows, self.cfg.page_size)

    async def balance_allowance(self, request: web.Request) -> web.StreamResponse:
        auth, _ = await self._l2(request)
        if auth is None:
            return error(401, "Unauthorized/Invalid api key")
        q = request.query
        makers = self.makers.get(auth.api_key, set())
        holder = next(iter(makers)) if len(makers) == 1 else auth.address
        kind = q.get("asset_type", "COLLATERAL")
        if kind == "COLLATERAL":
            balance = self.ex.balance(holder)
        elif kind in ("CONDITIONAL", "CONDITIONAL-V2"):
            token = q.get("token_id", "")
            if self.ex.market_state(token) is None:
                return error(400, "Invalid token id")
            balance = self.ex.position(holder, token)
        else:
            return error(400, "Invalid asset type")
        chain = self.cfg.chain_id
        spenders = [*EXCHANGES_V2.get(chain, ()), EXCHANGES_V3.get(chain, "")]
        if self.cfg.order_version == "v1":
            spenders += EXCHANGES_V1.get(chain, ())
        allowance = MAX_UINT256 if self.ex.has_allowance(holder) else "0"
        return json_response(
            {"balance": str(balance), "allowances": {s: allowance for s in spenders if s}}
        )

    async def update_balance_allowance(self, request: web.Request) -> web.StreamResponse:
        """``/balance-allowance/update``: re-read the approvals of the key's address and its
        makers, then answer like ``/balance-allowance``."""
        auth, _ = await self._l2(request)
        if auth is None:
            return error(401, "Unauthorized/Invalid api key")
        for a in self._owners(auth):
            self.ex.update_allowance(a)
        return await self.balance_allowance(request)

    async def heartbeat(self, request: web.Request) -> web.StreamResponse:
        auth, text = await self._l2(request)
        if auth is None:
            return error(401, "Unauthorized/Invalid api key")
        body = _loads(text) if text else {}
        hb = body.get("heartbeat_id", "") if isinstance(body, dict) else None
        if not isinstance(hb, str):
            return error(400, "Invalid payload")
        hb_id = self.state.heartbeats.beat(auth.api_key, auth.address, hb)
        if hb_id is None:
            return error(400, "Invalid heartbeat id")
        loop = asyncio.get_running_loop()
        loop.call_later(self.cfg.heartbeat_timeout_s + 0.05, self.state.check_heartbeats)
        return json_response({"heartbeat_id": hb_id})


def _loads(text: str) -> object:
    try:
        return json.loads(text) if text else None
    except ValueError:
        return None


def register(app: web.Application, state: SimState) -> TradingApi:
    """Mount every authenticated CLOB route on ``app``."""
    api = TradingApi(state)
    routes: list[tuple[str, str, Handler]] = [
        ("POST", "/auth/api-key", api.create_api_key),
        ("GET", "/auth/derive-api-key", api.create_api_key),
        ("GET", "/auth/api-keys", api.api_keys),
        ("DELETE", "/auth/api-key", api.delete_api_key),
        ("GET", "/auth/ban-status/closed-only", api.closed_only),
        ("POST", "/order", api.post_order),
        ("POST", "/orders", api.post_orders),
        ("DELETE", "/order", api.cancel_order),
        ("DELETE", "/orders", api.cancel_orders),
        ("DELETE", "/cancel-all", api.cancel_all),
        ("DELETE", "/cancel-market-orders", api.cancel_market_orders),
        ("GET", "/data/orders", api.orders),
        ("GET", "/data/order/{order_id}", api.order),
        ("GET", "/data/trades", api.trades),
        ("GET", "/balance-allowance", api.balance_allowance),
        ("GET", "/balance-allowance/update", api.update_balance_allowance),
        ("POST", "/v1/heartbeats", api.heartbeat),
    ]
    add_routes(app, state, routes)
    return api

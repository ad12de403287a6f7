"""L2 trading calls of the CLOB REST client (orders, cancels, account data), as a mixin of
``polylab.execution.rest_async.AsyncClobRest``: posting signed orders, cancelling, open orders,
trades, balances. Orders are built and signed by ``signing_v1``/``signing_v2``; this only posts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal, TypeVar

import msgspec

from polylab.errors import AuthError, BadRequest, OrderRejected, ProtocolError
from polylab.execution.auth import ApiCreds
from polylab.execution.rest_types import (
    END_CURSOR,
    FIRST_CURSOR,
    BalanceAllowance,
    CancelResult,
    OpenOrder,
    OrderResponse,
    Page,
    TradeRow,
    decode_any,
    decode_response,
)
from polylab.execution.signing_v1 import SignedOrderV1
from polylab.execution.signing_v2 import SignedOrderV2, order_to_json

__all__ = ["SignedOrder", "TradingCalls"]

T = TypeVar("T")
Auth = Literal["none", "l1", "l2"]
SignedOrder = SignedOrderV1 | SignedOrderV2
"""A signed order of either generation (``POST /order`` takes both)."""


class TradingCalls:
    """``POST /order(s)``, cancels, ``/data/orders``, ``/data/trades``, balance-allowance."""

    creds: ApiCreds | None

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
        auth: Auth = "none",
        nonce: int = 0,
        resend: bool = True,
    ) -> bytes:
        """Implemented by ``AsyncClobRest``."""
        raise NotImplementedError

    def _owner(self) -> str:
        if self.creds is None:
            raise AuthError(0, "posting orders needs L2 credentials", method="POST", path="/order")
        return self.creds.api_key

    async def post_order(
        self,
        order: SignedOrder,
        order_type: str = "GTC",
        *,
        post_only: bool = False,
        defer_exec: bool = False,
    ) -> OrderResponse:
        """``POST /order``; raises ``OrderRejected`` when the exchange refuses it.

        Never re-sent after an attempt that may have been processed (timeout, dropped
        connection, 5xx): that error is raised, and only the venue can say what happened
        (``get_order``, ``get_trades``)."""
        body = order_to_json(order, self._owner(), order_type, post_only, defer_exec)
        try:
            raw = await self.request("POST", "/order", body=body, auth="l2", resend=False)
        except BadRequest as exc:
            raise OrderRejected(exc.message, status=exc.status, order_id=order.order_hash) from exc
        resp = decode_response(raw, OrderResponse, "/order")
        if not resp.success or resp.error_msg:
            raise OrderRejected(
                resp.error_msg or "success=false", order_id=resp.order_id or order.order_hash
            )
        return resp

    async def post_orders(
        self, orders: Sequence[tuple[SignedOrder, str, bool]], *, defer_exec: bool = False
    ) -> list[OrderResponse]:
        """``POST /orders`` (≤ 15): ``(signed, order_type, post_only)`` each. Per-order results
        are returned, not raised: a refused leg has ``error_msg`` set."""
        owner = self._owner()
        body = [order_to_json(o, owner, t, p, defer_exec) for o, t, p in orders]
        return decode_response(
            await self.request("POST", "/orders", body=body, auth="l2", resend=False),
            list[OrderResponse],
            "/orders",
        )

    async def cancel(self, order_id: str) -> CancelResult:
        """``DELETE /order``."""
        return decode_response(
            await self.request("DELETE", "/order", body={"orderID": order_id}, auth="l2"),
            CancelResult,
            "/order",
        )

    async def cancel_orders(self, order_ids: Sequence[str]) -> CancelResult:
        """``DELETE /orders``."""
        return decode_response(
            await self.request("DELETE", "/orders", body=list(order_ids), auth="l2"),
            CancelResult,
            "/orders",
        )

    async def cancel_all(self) -> CancelResult:
        """``DELETE /cancel-all``: every open order of this API key."""
        return decode_response(
            await self.request("DELETE", "/cancel-all", auth="l2"), CancelResult, "/cancel-all"
        )

    async def cancel_market_orders(self, market: str = "", asset_id: str = "") -> CancelResult:
        """``DELETE /cancel-market-orders`` for a market and/or one of its tokens."""
        body = {"market": market, "asset_id": asset_id}
        return decode_response(
            await self.request("DELETE", "/cancel-market-orders", body=body, auth="l2"),
            CancelResult,
            "/cancel-market-orders",
        )

    async def _paged(self, path: str, typ: type[T], params: dict[str, Any]) -> list[T]:
        out: list[T] = []
        cursor = FIRST_CURSOR
        for _ in range(10_000):
            raw = await self.request(
                "GET", path, params={**params, "next_cursor": cursor}, auth="l2"
            )
            page = decode_any(raw, Page[typ] | list[typ], path)  # type: ignore[valid-type]
            if isinstance(page, list):
                out.extend(page)
                break
            out.extend(page.data)
            if not page.next_cursor or page.next_cursor == END_CURSOR:
                break
            cursor = page.next_cursor
        return out

    async def get_open_orders(
        self, *, market: str = "", asset_id: str = "", order_id: str = ""
    ) -> list[OpenOrder]:
        """``GET /data/orders``: open orders of this key, all pages."""
        return await self._paged(
            "/data/orders", OpenOrder, {"market": market, "asset_id": asset_id, "id": order_id}
        )

    async def get_order(self, order_id: str) -> OpenOrder | None:
        """``GET /data/order/{id}``; None when it is not open any more."""
        raw = await self.request("GET", f"/data/order/{order_id}", auth="l2")
        got = decode_response(raw, Any, "/data/order")
        if not isinstance(got, dict) or not got.get("id"):
            return None
        try:
            return msgspec.convert(got, OpenOrder)
        except msgspec.ValidationError as exc:
            raise ProtocolError(f"/data/order: {exc}", path="/data/order") from None

    async def get_trades(
        self,
        *,
        market: str = "",
        asset_id: str = "",
        maker_address: str = "",
        trade_id: str = "",
        after_s: int = 0,
    ) -> list[TradeRow]:
        """``GET /data/trades``: this key's trades, all pages (``after_s``: matched after this
        unix second only)."""
        return await self._paged(
            "/data/trades",
            TradeRow,
            {
                "market": market,
                "asset_id": asset_id,
                "maker_address": maker_address,
                "id": trade_id,
                "after": after_s or "",
            },
        )

    async def get_balance_allowance(
        self, asset_type: str = "COLLATERAL", token_id: str = "", signature_type: int = 0
    ) -> BalanceAllowance:
        """``GET /balance-allowance`` (balance and allowances in micros)."""
        q = {"asset_type": asset_type, "token_id": token_id, "signature_type": signature_type}
        raw = await self.request("GET", "/balance-allowance", params=q, auth="l2")
        return decode_response(raw, BalanceAllowance, "/balance-allowance")

    async def update_balance_allowance(
        self, asset_type: str = "COLLATERAL", token_id: str = "", signature_type: int = 0
    ) -> None:
        """``GET /balance-allowance/update``: ask the venue to re-read chain balances."""
        q = {"asset_type": asset_type, "token_id": token_id, "signature_type": signature_type}
        await self.request("GET", "/balance-allowance/update", params=q, auth="l2")

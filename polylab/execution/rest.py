"""CLOB REST client over httpx: ``AsyncClobRest`` (the implementation) and ``ClobRest`` (a thin
synchronous wrapper that drives it on a private event loop).

* One ``httpx.AsyncClient`` per client: keep-alive connection reuse, explicit timeouts.
* Retries by error class through one function, ``should_retry(error)``: transport errors
  (connect, timeouts), 5xx and 429 are retried with exponential backoff and full jitter, a 429
  waits at least its ``Retry-After``; 4xx validation errors and order rejects never are. Posting
  a signed order again is safe: the venue deduplicates by order hash.
* Errors are the tree in ``polylab.errors`` (``ClobError`` and below), with method, path,
  status and the venue's ``{"error": …}`` text.
* Auth: L1 (``POST /auth/api-key``, ``GET /auth/derive-api-key``) signs ``ClobAuth`` with the
  wallet key; L2 calls carry HMAC headers over the exact body text sent (``auth.json_body``),
  fresh per attempt. Orders are built and signed by ``polylab.execution.signing_v1/_v2``; this
  module only posts them.
* Books come back as ``L2Book`` (ticks, size micros) or as the wire ``Book`` (strings, hash).

Secrets (private key, API secret, passphrase) are never logged and never in a repr.

Layout: ``rest_async`` (the client, public reads, L1), ``rest_trading`` (L2 calls, a mixin of
it), ``rest_policy`` (config, counters, retry policy, HTTP error mapping), ``rest_types``
(response Structs, REST book → ``L2Book``); this module re-exports the public names.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Sequence
from typing import Any, TypeVar

from polylab.book.l2 import L2Book
from polylab.execution.auth import ApiCreds
from polylab.execution.eip712 import SigningKey
from polylab.execution.rest_async import END_CURSOR, FIRST_CURSOR, AsyncClobRest, SignedOrder
from polylab.execution.rest_policy import RestConfig, RestStats, retry_delay_s, should_retry
from polylab.execution.rest_types import (
    BalanceAllowance,
    CancelResult,
    ClobMarket,
    ClobMarketInfo,
    MarketsPage,
    OpenOrder,
    OrderResponse,
    TradeRow,
)
from polylab.feed.wire import Book
from polylab.money import TickSize

__all__ = [
    "END_CURSOR",
    "FIRST_CURSOR",
    "AsyncClobRest",
    "ClobRest",
    "RestConfig",
    "RestStats",
    "SignedOrder",
    "retry_delay_s",
    "should_retry",
]

T = TypeVar("T")


class ClobRest:
    """Synchronous wrapper: every call runs the ``AsyncClobRest`` method on a private event loop.

    For scripts, notebooks and sync tests; never call it from inside a running event loop (use
    ``AsyncClobRest`` there). Close it (or use ``with``) to release the pool and the loop.
    """

    def __init__(
        self,
        config: RestConfig | str,
        *,
        creds: ApiCreds | None = None,
        key: SigningKey | None = None,
        address: str | None = None,
    ) -> None:
        self._loop = asyncio.new_event_loop()
        self.aio = AsyncClobRest(config, creds=creds, key=key, address=address)

    def __repr__(self) -> str:
        return f"ClobRest({self.aio!r})"

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self._loop.run_until_complete(coro)

    @property
    def stats(self) -> RestStats:
        """The async client's counters."""
        return self.aio.stats

    @property
    def creds(self) -> ApiCreds | None:
        """Current L2 credentials."""
        return self.aio.creds

    def close(self) -> None:
        """Close the pool and the private loop."""
        if not self._loop.is_closed():
            self._run(self.aio.aclose())
            self._loop.close()

    def __enter__(self) -> ClobRest:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # Each method below is the ``AsyncClobRest`` method of the same name, run to completion.
    def get_ok(self) -> bool:
        return self._run(self.aio.get_ok())

    def get_time(self) -> int:
        return self._run(self.aio.get_time())

    def get_version(self) -> int:
        return self._run(self.aio.get_version())

    def get_order_book(self, token_id: str) -> Book:
        return self._run(self.aio.get_order_book(token_id))

    def get_book(self, token_id: str) -> L2Book:
        return self._run(self.aio.get_book(token_id))

    def get_order_books(self, token_ids: Sequence[str]) -> list[Book]:
        return self._run(self.aio.get_order_books(token_ids))

    def get_books(self, token_ids: Sequence[str]) -> list[L2Book]:
        return self._run(self.aio.get_books(token_ids))

    def get_price(self, token_id: str, side: str) -> int:
        return self._run(self.aio.get_price(token_id, side))

    def get_midpoint(self, token_id: str) -> int:
        return self._run(self.aio.get_midpoint(token_id))

    def get_tick_size(self, token_id: str) -> TickSize:
        return self._run(self.aio.get_tick_size(token_id))

    def get_neg_risk(self, token_id: str) -> bool:
        return self._run(self.aio.get_neg_risk(token_id))

    def get_fee_rate(self, token_id: str) -> int:
        return self._run(self.aio.get_fee_rate(token_id))

    def get_markets(self, next_cursor: str = FIRST_CURSOR) -> MarketsPage:
        return self._run(self.aio.get_markets(next_cursor))

    def get_all_markets(self, max_pages: int = 10_000) -> list[ClobMarket]:
        return self._run(self.aio.get_all_markets(max_pages))

    def get_market(self, condition_id: str) -> ClobMarket:
        return self._run(self.aio.get_market(condition_id))

    def get_clob_market_info(self, condition_id: str) -> ClobMarketInfo:
        return self._run(self.aio.get_clob_market_info(condition_id))

    def create_api_key(self, nonce: int = 0) -> ApiCreds:
        return self._run(self.aio.create_api_key(nonce))

    def derive_api_key(self, nonce: int = 0) -> ApiCreds:
        return self._run(self.aio.derive_api_key(nonce))

    def create_or_derive_api_key(self, nonce: int = 0) -> ApiCreds:
        return self._run(self.aio.create_or_derive_api_key(nonce))

    def post_order(
        self,
        order: SignedOrder,
        order_type: str = "GTC",
        *,
        post_only: bool = False,
        defer_exec: bool = False,
    ) -> OrderResponse:
        return self._run(
            self.aio.post_order(order, order_type, post_only=post_only, defer_exec=defer_exec)
        )

    def post_orders(
        self, orders: Sequence[tuple[SignedOrder, str, bool]], *, defer_exec: bool = False
    ) -> list[OrderResponse]:
        return self._run(self.aio.post_orders(orders, defer_exec=defer_exec))

    def cancel(self, order_id: str) -> CancelResult:
        return self._run(self.aio.cancel(order_id))

    def cancel_orders(self, order_ids: Sequence[str]) -> CancelResult:
        return self._run(self.aio.cancel_orders(order_ids))

    def cancel_all(self) -> CancelResult:
        return self._run(self.aio.cancel_all())

    def cancel_market_orders(self, market: str = "", asset_id: str = "") -> CancelResult:
        return self._run(self.aio.cancel_market_orders(market, asset_id))

    def get_open_orders(
        self, *, market: str = "", asset_id: str = "", order_id: str = ""
    ) -> list[OpenOrder]:
        return self._run(
            self.aio.get_open_orders(market=market, asset_id=asset_id, order_id=order_id)
        )

    def get_order(self, order_id: str) -> OpenOrder | None:
        return self._run(self.aio.get_order(order_id))

    def get_trades(
        self, *, market: str = "", asset_id: str = "", maker_address: str = "", trade_id: str = ""
    ) -> list[TradeRow]:
        return self._run(
            self.aio.get_trades(
                market=market, asset_id=asset_id, maker_address=maker_address, trade_id=trade_id
            )
        )

    def get_balance_allowance(
        self, asset_type: str = "COLLATERAL", token_id: str = "", signature_type: int = 0
    ) -> BalanceAllowance:
        return self._run(self.aio.get_balance_allowance(asset_type, token_id, signature_type))

    def update_balance_allowance(
        self, asset_type: str = "COLLATERAL", token_id: str = "", signature_type: int = 0
    ) -> None:
        self._run(self.aio.update_balance_allowance(asset_type, token_id, signature_type))

"""``AsyncClobRest``: the asynchronous CLOB REST client (see ``polylab.execution.rest`` for the
overview, the sync wrapper and the public names)."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any, Literal, TypeVar

import httpx
import msgspec

from polylab.book.l2 import L2Book
from polylab.errors import (
    AuthError,
    BadRequest,
    ClobConnectError,
    ClobError,
    ClobTimeout,
    ProtocolError,
    RateLimited,
    ServerError,
    TransportError,
)
from polylab.execution.auth import ApiCreds, json_body, l1_headers, l2_headers
from polylab.execution.eip712 import SigningKey
from polylab.execution.rest_policy import (
    ClobNotSent,
    RestConfig,
    RestStats,
    http_error,
    retry_delay_s,
    should_retry,
)
from polylab.execution.rest_trading import SignedOrder, TradingCalls
from polylab.execution.rest_types import (
    END_CURSOR,
    FIRST_CURSOR,
    ClobMarket,
    ClobMarketInfo,
    MarketsPage,
    book_to_l2,
    decode_any,
    decode_response,
)
from polylab.feed.wire import Book
from polylab.money import TickSize, parse_micros, tick_size

__all__ = ["END_CURSOR", "FIRST_CURSOR", "AsyncClobRest", "SignedOrder"]

log = logging.getLogger(__name__)

T = TypeVar("T")
Auth = Literal["none", "l1", "l2"]


class _Price(msgspec.Struct):
    price: Decimal


class _Mid(msgspec.Struct):
    mid: Decimal


class _Tick(msgspec.Struct):
    minimum_tick_size: Decimal


class _NegRisk(msgspec.Struct):
    neg_risk: bool


class _Fee(msgspec.Struct):
    base_fee: int = 0


class _Version(msgspec.Struct):
    version: int


def _num_micros(v: Decimal) -> int:
    return parse_micros(format(v, "f"))


class AsyncClobRest(TradingCalls):
    """Asynchronous CLOB REST client.

    ``creds`` (L2) and ``key`` (L1, the wallet's ``SigningKey``) are optional: public reads need
    neither. ``address`` is the ``POLY_ADDRESS`` of L2 calls (the signing EOA); it defaults to
    the key's address. ``transport`` lets tests pass an ``httpx`` transport.
    """

    def __init__(
        self,
        config: RestConfig | str,
        *,
        creds: ApiCreds | None = None,
        key: SigningKey | None = None,
        address: str | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.config = config if isinstance(config, RestConfig) else RestConfig(url=config)
        c = self.config
        if c.max_attempts < 1:
            raise ValueError(f"max_attempts must be ≥ 1, was {c.max_attempts}")
        self.creds = creds
        self._key = key
        self.address = address or (key.address if key is not None else "")
        self.stats = RestStats()
        self._rng = rng or random.Random()
        self._http = httpx.AsyncClient(
            base_url=c.url.rstrip("/"),
            timeout=httpx.Timeout(c.timeout_s, connect=c.connect_timeout_s),
            limits=httpx.Limits(
                max_connections=c.max_connections, max_keepalive_connections=c.max_connections
            ),
            transport=transport,
        )

    def __repr__(self) -> str:
        return (
            f"AsyncClobRest(url={self.config.url!r}, address={self.address!r}, "
            f"creds={'set' if self.creds else 'none'}, key={'set' if self._key else 'none'})"
        )

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    async def __aenter__(self) -> AsyncClobRest:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # -- core ----------------------------------------------------------------------------------
    def _headers(
        self, auth: Auth, method: str, path: str, body: str | None, nonce: int
    ) -> dict[str, str]:
        h = {"Content-Type": "application/json"} if body is not None else {}
        if auth == "l2":
            if self.creds is None or not self.address:
                raise AuthError(
                    0, "this call needs L2 credentials and an address", method=method, path=path
                )
            h.update(l2_headers(self.address, self.creds, method, path, body))
        elif auth == "l1":
            if self._key is None:
                raise AuthError(0, "this call needs the wallet key (L1)", method=method, path=path)
            h.update(l1_headers(self._key, self.config.chain_id, nonce=nonce))
        return h

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
        """Send one call with retries; return the 2xx body or raise a ``ClobError``.

        ``auth``: "l2" signs with the API credentials, "l1" with the wallet key (``nonce`` picks
        the API key to create/derive). Headers are rebuilt per attempt (fresh timestamp).
        ``resend`` False: retry only attempts that certainly were not processed (see
        ``should_retry``). ``ClobNotSent``: the request never left.
        """
        text = None if body is None else json_body(body)
        content = None if text is None else text.encode("utf-8")
        q = {k: v for k, v in (params or {}).items() if v not in (None, "")}
        st, cfg = self.stats, self.config
        attempt = 0
        while True:
            attempt += 1
            headers = self._headers(auth, method, path, text, nonce)
            st.requests += 1
            err: ClobError
            try:
                r = await self._http.request(
                    method, path, params=q or None, content=content, headers=headers
                )
            except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
                err = ClobNotSent(
                    f"{method} {path}: {type(exc).__name__}: {exc}", method=method, path=path
                )
            except httpx.TimeoutException as exc:
                err = ClobTimeout(
                    f"{method} {path}: {type(exc).__name__}", method=method, path=path
                )
            except httpx.TransportError as exc:
                err = ClobConnectError(
                    f"{method} {path}: {type(exc).__name__}: {exc}", method=method, path=path
                )
            else:
                if r.status_code < 300:
                    return r.content
                err = http_error(r, method, path)
            if isinstance(err, RateLimited):
                st.rate_limited += 1
            elif isinstance(err, ServerError):
                st.server_errors += 1
            elif isinstance(err, TransportError):
                st.transport_errors += 1
            retry_after = err.retry_after_s if isinstance(err, RateLimited) else None
            if (
                attempt >= cfg.max_attempts
                or not should_retry(err, resend=resend)
                or (retry_after is not None and retry_after > cfg.max_retry_after_s)
            ):
                st.errors += 1
                raise err
            st.retries += 1
            delay = retry_delay_s(err, attempt, cfg, self._rng)
            log.debug("retry %d of %s %s in %.3fs after %s", attempt, method, path, delay, err)
            await asyncio.sleep(delay)

    async def _get(self, path: str, typ: type[T], auth: Auth = "none", **params: Any) -> T:
        return decode_response(await self.request("GET", path, params=params, auth=auth), typ, path)

    # -- public reads --------------------------------------------------------------------------
    async def get_ok(self) -> bool:
        """``GET /ok``: True when the venue answers."""
        await self.request("GET", "/ok")
        return True

    async def get_time(self) -> int:
        """Server time, unix seconds (for L1/L2 timestamps when clocks disagree)."""
        return int(decode_any(await self.request("GET", "/time"), int | str, "/time"))

    async def get_version(self) -> int:
        """Order generation the venue accepts (1 legacy, 2 CLOB V2)."""
        return (await self._get("/version", _Version)).version

    async def get_order_book(self, token_id: str) -> Book:
        """``GET /book`` as the wire ``Book`` (strings, best-last lists, hash, tick size)."""
        return await self._get("/book", Book, token_id=token_id)

    async def get_book(self, token_id: str) -> L2Book:
        """``GET /book`` as an ``L2Book`` (``hash``, ``market``, ``exchange_ms`` filled)."""
        return book_to_l2(await self.get_order_book(token_id))

    async def get_order_books(self, token_ids: Sequence[str]) -> list[Book]:
        """``POST /books`` for several tokens, wire form."""
        raw = await self.request("POST", "/books", body=[{"token_id": t} for t in token_ids])
        return decode_response(raw, list[Book], "/books")

    async def get_books(self, token_ids: Sequence[str]) -> list[L2Book]:
        """``POST /books`` as ``L2Book`` objects, in the order returned."""
        return [book_to_l2(b) for b in await self.get_order_books(token_ids)]

    async def get_price(self, token_id: str, side: str) -> int:
        """Best price to trade ``side`` ("BUY"/"SELL"), price micros."""
        return _num_micros((await self._get("/price", _Price, token_id=token_id, side=side)).price)

    async def get_midpoint(self, token_id: str) -> int:
        """Mid price, price micros."""
        return _num_micros((await self._get("/midpoint", _Mid, token_id=token_id)).mid)

    async def get_tick_size(self, token_id: str) -> TickSize:
        """The token's price grid."""
        v = (await self._get("/tick-size", _Tick, token_id=token_id)).minimum_tick_size
        return tick_size(format(v, "f"))

    async def get_neg_risk(self, token_id: str) -> bool:
        """Whether the token trades on the neg-risk exchange."""
        return (await self._get("/neg-risk", _NegRisk, token_id=token_id)).neg_risk

    async def get_fee_rate(self, token_id: str) -> int:
        """``base_fee`` in bps (1000 on fee-enabled markets); not the charged rate."""
        return (await self._get("/fee-rate", _Fee, token_id=token_id)).base_fee

    async def get_markets(self, next_cursor: str = FIRST_CURSOR) -> MarketsPage:
        """One page of ``GET /markets``."""
        return await self._get("/markets", MarketsPage, next_cursor=next_cursor)

    async def get_all_markets(self, max_pages: int = 10_000) -> list[ClobMarket]:
        """Every market, following ``next_cursor`` until ``LTE=``."""
        out: list[ClobMarket] = []
        cursor = FIRST_CURSOR
        for _ in range(max_pages):
            page = await self.get_markets(cursor)
            out.extend(page.data)
            if not page.next_cursor or page.next_cursor == END_CURSOR:
                break
            cursor = page.next_cursor
        return out

    async def get_market(self, condition_id: str) -> ClobMarket:
        """``GET /markets/{condition_id}``."""
        return await self._get(f"/markets/{condition_id}", ClobMarket)

    async def get_clob_market_info(self, condition_id: str) -> ClobMarketInfo:
        """``GET /clob-markets/{condition_id}`` (compact V2 form)."""
        return await self._get(f"/clob-markets/{condition_id}", ClobMarketInfo)

    # -- L1 ------------------------------------------------------------------------------------
    async def create_api_key(self, nonce: int = 0) -> ApiCreds:
        """``POST /auth/api-key``: a new API key for the wallet (L1)."""
        raw = await self.request("POST", "/auth/api-key", auth="l1", nonce=nonce)
        return _decode_creds(raw, "/auth/api-key")

    async def derive_api_key(self, nonce: int = 0) -> ApiCreds:
        """``GET /auth/derive-api-key``: re-derive the wallet's key for ``nonce`` (L1)."""
        raw = await self.request("GET", "/auth/derive-api-key", auth="l1", nonce=nonce)
        return _decode_creds(raw, "/auth/derive-api-key")

    async def create_or_derive_api_key(self, nonce: int = 0) -> ApiCreds:
        """Create the key, or derive it when it already exists; sets ``self.creds``."""
        try:
            creds = await self.create_api_key(nonce)
        except (BadRequest, AuthError, ServerError):
            creds = await self.derive_api_key(nonce)
        self.creds = creds
        return creds


def _decode_creds(raw: bytes, path: str) -> ApiCreds:
    """``ApiCreds.decode`` with a ``ProtocolError`` (never the body: it holds the secret)."""
    try:
        return ApiCreds.decode(raw)
    except msgspec.DecodeError as exc:
        raise ProtocolError(f"{path}: unexpected response ({exc})", path=path) from None

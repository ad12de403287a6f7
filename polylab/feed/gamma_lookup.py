"""Gamma's keyset lists and slug lookups (protocol doc §7), next to ``GammaClient``'s offset
lists.

* ``keyset(client, "markets" | "events", **filters)``: every item of ``GET {gamma}/markets/keyset``
  or ``/events/keyset``, paged by ``limit`` and ``after_cursor`` (the previous page's
  ``next_cursor``; the key is absent on the last page);
* ``market_by_slug`` / ``event_by_slug``: ``GET {gamma}/markets/slug/{slug}`` and
  ``/events/slug/{slug}``; a 404 is ``None``.

Errors (transport, HTTP status, body) raise ``DiscoveryError`` naming the path.
"""

from __future__ import annotations

from typing import Any, Literal
from urllib.parse import quote

import httpx
import msgspec

from polylab.errors import DiscoveryError
from polylab.feed.discovery import GammaClient, GammaEvent, GammaMarket, _params

__all__ = ["event_by_slug", "keyset", "market_by_slug"]


class _MarketsPage(msgspec.Struct):
    markets: list[GammaMarket] = []
    next_cursor: str | None = None


class _EventsPage(msgspec.Struct):
    events: list[GammaEvent] = []
    next_cursor: str | None = None


async def _get(client: GammaClient, path: str, params: dict[str, Any] | None = None) -> bytes:
    try:
        r = await client._http.get(f"{client.base_url}{path}", params=params)
    except httpx.HTTPError as exc:
        raise DiscoveryError(f"GET {path}: {exc!r}") from exc
    if r.status_code == 404:
        return b""
    if r.status_code != 200:
        raise DiscoveryError(f"GET {path}: HTTP {r.status_code}: {r.text[:200]}")
    return r.content


async def keyset(
    client: GammaClient, kind: Literal["markets", "events"], **filters: Any
) -> list[Any]:
    """Every market (``GammaMarket``) or event (``GammaEvent``) of the keyset list."""
    typ: type[_MarketsPage] | type[_EventsPage] = _MarketsPage if kind == "markets" else _EventsPage
    path = f"/{kind}/keyset"
    out: list[Any] = []
    cursor: str | None = None
    for _ in range(client.max_pages):
        q = {**_params(filters), "limit": client.page_size}
        if cursor:
            q["after_cursor"] = cursor
        body = await _get(client, path, q)
        try:
            page = msgspec.json.decode(body, type=typ)
        except msgspec.DecodeError as exc:
            raise DiscoveryError(f"GET {path}: bad body: {exc}") from None
        out.extend(page.markets if isinstance(page, _MarketsPage) else page.events)
        cursor = page.next_cursor
        if not cursor:
            break
    return out


async def market_by_slug(client: GammaClient, slug: str) -> GammaMarket | None:
    """The market with this slug, or None."""
    path = f"/markets/slug/{quote(slug, safe='')}"
    body = await _get(client, path)
    try:
        return msgspec.json.decode(body, type=GammaMarket) if body else None
    except msgspec.DecodeError as exc:
        raise DiscoveryError(f"GET {path}: bad body: {exc}") from None


async def event_by_slug(client: GammaClient, slug: str) -> GammaEvent | None:
    """The event with this slug (with its markets), or None."""
    path = f"/events/slug/{quote(slug, safe='')}"
    body = await _get(client, path)
    try:
        return msgspec.json.decode(body, type=GammaEvent) if body else None
    except msgspec.DecodeError as exc:
        raise DiscoveryError(f"GET {path}: bad body: {exc}") from None

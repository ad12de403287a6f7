"""Gamma discovery: which markets exist, their outcome tokens, grid, size floor, fees, events.

Gamma's shapes (protocol doc §0.1, §7) are awkward and are contained here:

* ``clobTokenIds``, ``outcomes`` and ``outcomePrices`` are **JSON-encoded strings** inside the
  JSON (``"[\\"2507…\\", \\"1116…\\"]"``); a plain array is accepted too.
* ``version`` says which protocol the market trades on: ``"v1"`` (CTF markets, ids in
  ``clobTokenIds``) or ``"v2"`` (Protocol V2, ids in ``positionIds``, never neg-risk exchange).
  A missing or unknown ``version`` is refused (``MarketVersionError``); captures made before the
  field existed (before Oct 2026) can be read with ``assume_version="v1"``.
* numbers such as ``orderPriceMinTickSize`` (0.01), ``orderMinSize`` (5) and ``feeSchedule.rate``
  (0.07) are JSON numbers: they are decoded straight to ``Decimal`` from the text, never through
  a float, then to polylab's strings/micros.
* ``GET /events`` embeds ``markets[]``; markets of a neg-risk event share the event id, which
  becomes ``Market.event_id`` so the catalog groups them.
* sports markets (``gameId`` set) get ``game_id``, ``game_start`` (``eventStartTime``, else
  ``gameStartTime``) and away/home abbreviations read from the slug ``{league}-{away}-{home}-…``.

Fetching pages through ``limit``/``offset`` until a short page. A market that cannot be used is
skipped, counted and logged (``Discovered.rejected``); ``strict=True`` raises instead.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any, Literal, TypeVar

import httpx
import msgspec

from polylab.errors import DiscoveryError, MarketVersionError
from polylab.fees import FeeModel
from polylab.market import Market, MarketCatalog
from polylab.money import MoneyError, decimal_to_micros, size_to_str, tick_size

__all__ = [
    "Discovered",
    "GammaClient",
    "GammaEvent",
    "GammaEventRef",
    "GammaFeeSchedule",
    "GammaMarket",
    "decode_events",
    "decode_markets",
    "market_from_gamma",
    "markets_from_event",
    "markets_from_gamma",
]

log = logging.getLogger(__name__)

Version = Literal["v1", "v2"]
T = TypeVar("T")


class GammaFeeSchedule(msgspec.Struct, frozen=True, rename="camel"):
    """``feeSchedule``: taker fee = shares × rate × (p(1−p))^exponent."""

    rate: Decimal = Decimal(0)
    exponent: Decimal = Decimal(1)
    taker_only: bool = True
    rebate_rate: Decimal = Decimal(0)


class GammaEventRef(msgspec.Struct, frozen=True):
    """The event a market belongs to, as embedded in a market object (id only is used)."""

    id: str | int = ""


class GammaMarket(msgspec.Struct, frozen=True, rename="camel"):
    """The fields of a Gamma market object polylab uses (every other field is ignored)."""

    id: str | int = ""
    question: str = ""
    condition_id: str = ""
    slug: str = ""
    clob_token_ids: str | list[str] | None = None
    position_ids: list[str] | None = None
    outcomes: str | list[str] | None = None
    outcome_prices: str | list[str] | None = None
    neg_risk: bool | None = False
    neg_risk_other: bool | None = False
    active: bool | None = True
    closed: bool | None = False
    accepting_orders: bool | None = None
    order_price_min_tick_size: Decimal | None = None
    order_min_size: Decimal | None = None
    fees_enabled: bool | None = False
    fee_schedule: GammaFeeSchedule | None = None
    version: str | None = None
    game_id: str | int | None = None
    game_start_time: str | None = None
    event_start_time: str | None = None
    events: list[GammaEventRef] | None = None
    volume_24hr: Decimal | None = msgspec.field(default=None, name="volume24hr")
    liquidity_num: Decimal | None = None


class GammaEvent(msgspec.Struct, frozen=True, rename="camel"):
    """A Gamma event with its embedded markets (a neg-risk event groups N one-winner markets)."""

    id: str | int = ""
    slug: str = ""
    title: str = ""
    neg_risk: bool | None = False
    neg_risk_augmented: bool | None = False
    markets: list[GammaMarket] = []


_markets_dec = msgspec.json.Decoder(list[GammaMarket])
_events_dec = msgspec.json.Decoder(list[GammaEvent])
_market_dec = msgspec.json.Decoder(GammaMarket)
_str_list_dec = msgspec.json.Decoder(list[str])


def decode_markets(body: bytes | str) -> list[GammaMarket]:
    """Decode a ``/markets`` body (a JSON list, or one market object)."""
    try:
        return _markets_dec.decode(body)
    except msgspec.ValidationError:
        return [_market_dec.decode(body)]


def decode_events(body: bytes | str) -> list[GammaEvent]:
    """Decode an ``/events`` body (a JSON list of events)."""
    return _events_dec.decode(body)


def _str_list(value: str | list[str] | None, name: str, mid: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, list):
        return value
    if not value.strip():
        return []
    try:
        return _str_list_dec.decode(value)
    except msgspec.DecodeError as exc:
        raise DiscoveryError(
            f"market {mid}: {name} is not a JSON list of strings: {exc}", mid
        ) from None


def _version(gm: GammaMarket, mid: str, assume: Version | None) -> Version:
    v = gm.version
    if v == "v1":
        return "v1"
    if v == "v2":
        return "v2"
    if v is None and assume is not None:
        return assume
    what = "has no version" if v is None else f"has unknown version {v!r}"
    raise MarketVersionError(
        f"market {mid} {what}; only 'v1' (clobTokenIds) and 'v2' (positionIds) are supported", mid
    )


def market_from_gamma(
    gm: GammaMarket,
    *,
    event_id: str = "",
    assume_version: Version | None = None,
    event_markets: int = 0,
    augmented: bool = False,
) -> Market:
    """One Gamma market → ``Market``; raises ``DiscoveryError`` naming the market and the field.

    ``event_id`` (the parent event when read from ``/events``) wins over the market's embedded
    ``events[0].id``. ``assume_version`` only fills a *missing* version (pre-Oct-2026 data).
    ``event_markets``: how many markets the parent event lists (0: unknown); ``augmented``:
    the parent event is augmented neg-risk.
    """
    mid = str(gm.id) or gm.condition_id or gm.slug or "?"
    version = _version(gm, mid, assume_version)
    if not gm.condition_id:
        raise DiscoveryError(f"market {mid}: conditionId is missing", mid)
    if version == "v2":
        tokens = list(gm.position_ids or [])
        field = "positionIds"
    else:
        tokens = _str_list(gm.clob_token_ids, "clobTokenIds", mid)
        field = "clobTokenIds"
    if not tokens:
        raise DiscoveryError(f"market {mid}: no token ids yet ({field} empty)", mid)
    if not all(t.isascii() and t.isdigit() for t in tokens):
        raise DiscoveryError(f"market {mid}: {field} holds a non-decimal token id", mid)
    outcomes = _str_list(gm.outcomes, "outcomes", mid) or (
        ["Yes", "No"] if len(tokens) == 2 else [str(i) for i in range(len(tokens))]
    )
    if len(outcomes) != len(tokens):
        raise DiscoveryError(
            f"market {mid}: {len(outcomes)} outcomes for {len(tokens)} token ids", mid
        )
    try:
        tick_d = gm.order_price_min_tick_size
        tick = tick_size(format(tick_d, "f")).text if tick_d is not None else "0.01"
        min_d = gm.order_min_size
        min_size = size_to_str(decimal_to_micros(min_d)) if min_d is not None else "5"
        fee = None
        if gm.fees_enabled and gm.fee_schedule is not None:
            fs = gm.fee_schedule
            if fs.exponent != fs.exponent.to_integral_value():
                raise DiscoveryError(f"market {mid}: fee exponent {fs.exponent} is fractional", mid)
            fee = FeeModel(rate_micros=decimal_to_micros(fs.rate), exponent=int(fs.exponent))
    except MoneyError as exc:
        raise DiscoveryError(f"market {mid}: {exc}", mid) from None
    ev = event_id or (str(gm.events[0].id) if gm.events else "")
    game_id = "" if gm.game_id is None else str(gm.game_id)
    away, home = _teams(gm.slug) if game_id else ("", "")
    return Market(
        condition_id=gm.condition_id,
        token_ids=tuple(tokens),
        outcomes=tuple(outcomes),
        question=gm.question,
        slug=gm.slug,
        tick_size=tick,
        min_order_size=min_size,
        neg_risk=bool(gm.neg_risk),
        event_id=ev,
        version=version,
        fee=fee,
        active=bool(gm.active) and not gm.closed,
        game_id=game_id,
        home=home,
        away=away,
        game_start=(gm.event_start_time or gm.game_start_time or "") if game_id else "",
        event_markets=event_markets,
        neg_risk_other=bool(gm.neg_risk_other),
        neg_risk_augmented=augmented,
    )


def _teams(slug: str) -> tuple[str, str]:
    """(away, home) abbreviations from a sports slug ``{league}-{away}-{home}-{date}`` (the
    venue's naming habit, INF: Gamma has no home/away fields); blanks when it does not fit."""
    parts = slug.split("-")
    if len(parts) >= 3 and parts[1].isalnum() and parts[2].isalnum():
        return parts[1].upper(), parts[2].upper()
    return "", ""


class Discovered(msgspec.Struct):
    """Result of a discovery pass: the usable markets and why the others were skipped."""

    markets: list[Market] = []
    rejected: list[tuple[str, str]] = []
    """(market id, reason) of every market that could not be used."""

    def catalog(self, into: MarketCatalog | None = None) -> MarketCatalog:
        """The markets as a ``MarketCatalog`` (neg-risk events grouped by event id)."""
        cat = into if into is not None else MarketCatalog()
        for m in self.markets:
            cat.add(m)
        return cat


def _collect(
    items: list[tuple[GammaMarket, str, int, bool]],
    out: Discovered,
    strict: bool,
    assume_version: Version | None,
) -> None:
    for gm, ev, n, aug in items:
        try:
            out.markets.append(
                market_from_gamma(
                    gm, event_id=ev, assume_version=assume_version, event_markets=n, augmented=aug
                )
            )
        except DiscoveryError as exc:
            if strict:
                raise
            out.rejected.append((exc.market_id, str(exc)))
            if len(out.rejected) <= 20:
                log.warning("gamma: skipping market: %s", exc)


def markets_from_gamma(
    markets: list[GammaMarket], *, strict: bool = False, assume_version: Version | None = None
) -> Discovered:
    """Convert decoded ``/markets`` objects, skipping (or, ``strict``, raising on) bad ones."""
    out = Discovered()
    _collect([(m, "", 0, False) for m in markets], out, strict, assume_version)
    return out


def markets_from_event(
    events: list[GammaEvent], *, strict: bool = False, assume_version: Version | None = None
) -> Discovered:
    """Convert decoded ``/events`` objects: every embedded market tagged with its event id and
    the number of markets the event lists (rejected ones included: a set without them is not
    the whole event)."""
    out = Discovered()
    items = [
        (m, str(e.id), len(e.markets), bool(e.neg_risk_augmented))
        for e in events
        for m in e.markets
    ]
    _collect(items, out, strict, assume_version)
    return out


class GammaClient:
    """Gamma over httpx (async). ``base_url`` is the Gamma root: the venue's Gamma host, or
    ``<sim url>/gamma`` for the local simulator. Pages with ``limit``/``offset``.
    """

    def __init__(
        self,
        base_url: str,
        *,
        page_size: int = 100,
        max_pages: int = 1000,
        timeout_s: float = 10.0,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        if page_size <= 0 or max_pages <= 0:
            raise ValueError(f"page_size and max_pages must be > 0, were {page_size}, {max_pages}")
        self.base_url = base_url.rstrip("/")
        self.page_size = page_size
        self.max_pages = max_pages
        self._own = client is None
        self._http = client if client is not None else httpx.AsyncClient(timeout=timeout_s)

    async def aclose(self) -> None:
        """Close the HTTP client if this object created it."""
        if self._own:
            await self._http.aclose()

    async def __aenter__(self) -> GammaClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def _pages(
        self, path: str, params: Mapping[str, Any], dec: Callable[[bytes], list[T]]
    ) -> list[T]:
        out: list[T] = []
        offset = 0
        for _ in range(self.max_pages):
            q = {**_params(params), "limit": self.page_size, "offset": offset}
            try:
                r = await self._http.get(f"{self.base_url}{path}", params=q)
            except httpx.HTTPError as exc:
                raise DiscoveryError(f"GET {path} offset={offset}: {exc!r}") from exc
            if r.status_code != 200:
                raise DiscoveryError(
                    f"GET {path} offset={offset}: HTTP {r.status_code}: {r.text[:200]}"
                )
            try:
                page = dec(r.content)
            except msgspec.DecodeError as exc:
                raise DiscoveryError(f"GET {path} offset={offset}: bad body: {exc}") from None
            out.extend(page)
            if len(page) < self.page_size:
                break
            offset += len(page)
        return out

    async def fetch_markets(self, **params: Any) -> list[GammaMarket]:
        """Every market matching the filters (``active=True``, ``closed=False``, ``slug=…``)."""
        return await self._pages("/markets", params, decode_markets)

    async def fetch_events(self, **params: Any) -> list[GammaEvent]:
        """Every event matching the filters, with its embedded markets."""
        return await self._pages("/events", params, decode_events)

    async def discover(
        self,
        *,
        events: bool = True,
        strict: bool = False,
        assume_version: Version | None = None,
        **params: Any,
    ) -> Discovered:
        """Markets from ``/markets``, plus the event ids of neg-risk groups from ``/events``.

        A market seen in both keeps the event's id, market count and augmented flag (the market
        object may not embed them).
        """
        found = markets_from_gamma(
            await self.fetch_markets(**params), strict=strict, assume_version=assume_version
        )
        if events:
            by_event = markets_from_event(
                await self.fetch_events(**params), strict=strict, assume_version=assume_version
            )
            seen = {m.condition_id: i for i, m in enumerate(found.markets)}
            for m in by_event.markets:
                i = seen.get(m.condition_id)
                if i is None:
                    seen[m.condition_id] = len(found.markets)
                    found.markets.append(m)
                else:
                    old = found.markets[i]
                    found.markets[i] = msgspec.structs.replace(
                        old,
                        event_id=old.event_id or m.event_id,
                        event_markets=old.event_markets or m.event_markets,
                        neg_risk_augmented=old.neg_risk_augmented or m.neg_risk_augmented,
                    )
            known = {mid for mid, _ in found.rejected}
            found.rejected.extend(r for r in by_event.rejected if r[0] not in known)
        return found


def _params(params: Mapping[str, Any]) -> dict[str, Any]:
    """Booleans as the lowercase strings Gamma expects."""
    return {k: (str(v).lower() if isinstance(v, bool) else v) for k, v in params.items()}

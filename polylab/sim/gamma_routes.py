"""The simulator's Gamma routes (``/gamma/…``) and ESPN-style scoreboards.

Offset lists, as the venue has always served them: ``GET /gamma/markets`` and ``/gamma/events``
(``limit``/``offset``, default 100, at most 1000) and ``/{id}``. Keyset lists, as the official
``polymarket-client`` SDK reads them: ``GET /gamma/markets/keyset`` → ``{"markets": [...],
"next_cursor": "..."}`` and ``/gamma/events/keyset`` → ``{"events": [...], "next_cursor"}``,
paged by ``limit`` and ``after_cursor`` (the ``next_cursor`` of the previous page; the key is
absent on the last page). Items keep first-seen order, so a market listed between two pages
shows up on a later page, never shifts one. Slug lookups: ``/gamma/markets/slug/{slug}`` and
``/gamma/events/slug/{slug}``. Filters: ``slug``, ``condition_ids``, ``clob_token_ids``,
``id``, ``active``, ``closed``, ``version`` (repeated keys or comma lists). A miss is a 404
``{"error": ...}``, bad paging a 400. ``GET /espn/{sport}/{league}/scoreboard[?dates=
YYYYMMDD]`` serves ``state.scoreboard`` (``polylab.sim.sports``).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import msgspec
from aiohttp import web

from polylab.market import Market
from polylab.sim.gamma import GAMMA_KEY, GammaIndex
from polylab.sim.sports import LEAGUES

if TYPE_CHECKING:
    from polylab.sim.state import SimState

__all__ = ["SCOREBOARD_PATH", "register", "register_scoreboard"]

_enc = msgspec.json.Encoder(decimal_format="number")
_MAX_LIMIT = 1000
_DEFAULT_LIMIT = 100


def _multi(q: Any, name: str) -> set[str]:
    out: set[str] = set()
    for v in q.getall(name, ()):
        out.update(x for x in str(v).split(",") if x)
    return out


def _bad(msg: str) -> web.HTTPBadRequest:
    return web.HTTPBadRequest(text=_err(msg), content_type="application/json")


def _int(q: Any, name: str, default: int) -> int:
    raw = q.get(name, str(default))
    try:
        value = int(raw)
    except ValueError:
        raise _bad(f"{name} must be an integer, got {raw!r}") from None
    if value < 0:
        raise _bad(f"{name} must be >= 0, got {value}")
    return value


def _page(q: Any) -> tuple[int, int]:
    return min(_int(q, "limit", _DEFAULT_LIMIT), _MAX_LIMIT), _int(q, "offset", 0)


def _err(msg: str) -> str:
    return json.dumps({"error": msg})


def _not_found(msg: str) -> web.Response:
    return web.Response(status=404, text=_err(msg), content_type="application/json")


def _flag(q: Any, name: str) -> bool | None:
    v = q.get(name)
    if v is None:
        return None
    return str(v).lower() in ("1", "true", "yes")


def _json(obj: Any) -> web.Response:
    return web.Response(body=_enc.encode(obj), content_type="application/json")


def _cursor(kind: str, last_id: str) -> str:
    """An opaque keyset cursor: the id of the last item served (base64url)."""
    return base64.urlsafe_b64encode(f"{kind}:{last_id}".encode()).decode()


def _after(q: Any, kind: str) -> str | None:
    """The id a keyset page continues after, or ``None`` for the first page."""
    raw = q.get("after_cursor")
    if raw is None or raw == "":
        return None
    try:
        text = base64.urlsafe_b64decode(raw.encode()).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise _bad(f"invalid after_cursor {raw!r}") from None
    prefix, _, last = text.partition(":")
    if prefix != kind or not last:
        raise _bad(f"invalid after_cursor {raw!r}")
    return last


def _keyset(q: Any, kind: str, items: Iterable[dict[str, Any]]) -> web.Response:
    """One keyset page of ``items`` (already filtered, in first-seen order)."""
    limit = _int(q, "limit", _DEFAULT_LIMIT)
    if limit == 0:
        raise _bad("limit must be >= 1")
    limit = min(limit, _MAX_LIMIT)
    after = _after(q, kind)
    out: list[dict[str, Any]] = []
    more = False
    seen_after = after is None
    for d in items:
        if not seen_after:
            seen_after = d["id"] == after
            continue
        if len(out) == limit:
            more = True
            break
        out.append(d)
    if not seen_after:
        raise _bad(f"after_cursor names no {kind[:-1]}")
    body: dict[str, Any] = {kind: out}
    if more:
        body["next_cursor"] = _cursor(kind, out[-1]["id"])
    return _json(body)


class _Select:
    """Filtered views of the index in first-seen order (``q``: the request's query)."""

    def __init__(self, idx: GammaIndex) -> None:
        self.idx = idx

    def markets(self, q: Any) -> Iterable[dict[str, Any]]:
        slugs, cids = _multi(q, "slug"), _multi(q, "condition_ids")
        toks, ids = _multi(q, "clob_token_ids") | _multi(q, "position_ids"), _multi(q, "id")
        versions = _multi(q, "version")
        active, closed = _flag(q, "active"), _flag(q, "closed")
        idx = self.idx
        for m in idx.markets():
            if (slugs and m.slug not in slugs) or (cids and m.condition_id not in cids):
                continue
            if (toks and not toks.intersection(m.token_ids)) or (
                versions and m.version not in versions
            ):
                continue
            if ids and idx.market_ids[m.condition_id] not in ids:
                continue
            d = idx.market_json(m)
            if active is not None and d["active"] != active:
                continue
            if closed is not None and d["closed"] != closed:
                continue
            yield d

    def events(self, q: Any) -> Iterable[dict[str, Any]]:
        slugs, ids, versions = _multi(q, "slug"), _multi(q, "id"), _multi(q, "version")
        active, closed = _flag(q, "active"), _flag(q, "closed")
        for key, ms in self.idx.event_groups():
            if versions and not any(m.version in versions for m in ms):
                continue
            e = self.idx.event_json(key, ms)
            if (slugs and e["slug"] not in slugs) or (ids and e["id"] not in ids):
                continue
            if active is not None and e["active"] != active:
                continue
            if closed is not None and e["closed"] != closed:
                continue
            yield e

    def market_by(self, pred: Any) -> dict[str, Any] | None:
        m: Market
        for m in self.idx.markets():
            if pred(m):
                return self.idx.market_json(m)
        return None

    def event_by(self, field: str, value: str) -> dict[str, Any] | None:
        for key, ms in self.idx.event_groups():
            e = self.idx.event_json(key, ms)
            if e[field] == value:
                return e
        return None


SCOREBOARD_PATH = "/apis/site/v2/sports/{sport}/{league}/scoreboard"
"""ESPN's own scoreboard path (protocol doc §8), under the ESPN base."""


def register_scoreboard(app: web.Application, state: SimState, paths: Iterable[str]) -> None:
    """Mount the ESPN-format scoreboards at each of ``paths`` (with ``{sport}``/``{league}``)."""

    async def scoreboard(request: web.Request) -> web.Response:
        sport, league = request.match_info["sport"], request.match_info["league"]
        if (sport, league) not in LEAGUES:
            return _not_found(f"unknown league {sport}/{league}")
        return _json(state.scoreboard.scoreboard(sport, league, request.query.get("dates")))

    for path in paths:
        app.router.add_get(path, scoreboard)


def register(
    app: web.Application, state: SimState, *, prefix: str = "/gamma", scoreboards: bool = True
) -> GammaIndex:
    """Mount the Gamma routes under ``prefix`` (``/gamma`` on the single-port simulator, ``""``
    on a Gamma host of the production layout) and, with ``scoreboards``, the ESPN scoreboards
    at ``/espn/{sport}/{league}/scoreboard`` and at ESPN's own path under ``/espn`` (so the
    ``sim`` venue profile's ``{espn}/apis/site/v2/…`` resolves on the one port)."""
    idx = GammaIndex(state)
    app[GAMMA_KEY] = idx
    state.exchange.add_market_listener(idx.on_market_events)
    sel = _Select(idx)

    async def markets(request: web.Request) -> web.Response:
        limit, offset = _page(request.query)
        return _json(list(sel.markets(request.query))[offset : offset + limit])

    async def markets_keyset(request: web.Request) -> web.Response:
        return _keyset(request.query, "markets", sel.markets(request.query))

    async def market_by_id(request: web.Request) -> web.Response:
        mid = request.match_info["id"]
        found = sel.market_by(lambda m: idx.market_ids[m.condition_id] == mid)
        return _json(found) if found is not None else _not_found("market not found")

    async def market_by_slug(request: web.Request) -> web.Response:
        slug = request.match_info["slug"]
        found = sel.market_by(lambda m: m.slug == slug)
        return _json(found) if found is not None else _not_found("market not found")

    async def events(request: web.Request) -> web.Response:
        limit, offset = _page(request.query)
        return _json(list(sel.events(request.query))[offset : offset + limit])

    async def events_keyset(request: web.Request) -> web.Response:
        return _keyset(request.query, "events", sel.events(request.query))

    async def event_by_id(request: web.Request) -> web.Response:
        found = sel.event_by("id", request.match_info["id"])
        return _json(found) if found is not None else _not_found("event not found")

    async def event_by_slug(request: web.Request) -> web.Response:
        found = sel.event_by("slug", request.match_info["slug"])
        return _json(found) if found is not None else _not_found("event not found")

    add = app.router.add_get
    add(f"{prefix}/markets", markets)
    add(f"{prefix}/markets/keyset", markets_keyset)  # before /{id}, which would match "keyset"
    add(f"{prefix}/markets/slug/{{slug}}", market_by_slug)
    add(f"{prefix}/markets/{{id}}", market_by_id)
    add(f"{prefix}/events", events)
    add(f"{prefix}/events/keyset", events_keyset)
    add(f"{prefix}/events/slug/{{slug}}", event_by_slug)
    add(f"{prefix}/events/{{id}}", event_by_id)
    if scoreboards:
        register_scoreboard(
            app, state, ("/espn/{sport}/{league}/scoreboard", f"/espn{SCOREBOARD_PATH}")
        )
    return idx

"""Gamma-style market discovery served by the simulator: the index and the venue's shapes.

``GammaIndex`` gives every market and event a stable Gamma id (first-seen order) and renders
them in the venue's Gamma shape, built from the exchange's catalog and live books:
``clobTokenIds``, ``outcomes`` and ``outcomePrices`` are JSON-encoded strings (``positionIds`` a
plain array and ``clobTokenIds`` null for Protocol-V2 markets), numbers such as
``orderPriceMinTickSize`` or ``bestBid`` are JSON numbers written from exact decimals (never
floats), ``feeSchedule`` is camelCase, events embed ``markets[]``. The HTTP routes are in
``polylab.sim.gamma_routes``.
"""

from __future__ import annotations

import json
import time
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from aiohttp import web

from polylab.fees import FeeModel
from polylab.market import Market
from polylab.money import MICROS, micros_to_decimal, parse_micros, price_micros_to_str
from polylab.sim.sports import LEAGUES

if TYPE_CHECKING:
    from polylab.sim.state import SimState

__all__ = ["GAMMA_KEY", "GammaIndex", "gamma_event_title", "market_from_gamma"]

_CATEGORY = {70_000: "crypto", 30_000: "sports", 40_000: "politics", 50_000: "general"}


def _iso(ms: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + f".{ms % 1000:03d}Z"


def _slug_words(slug: str) -> str:
    return " ".join(w.capitalize() for w in slug.split("-") if w)


def _sports_names(m: Market) -> tuple[str, str, str] | None:
    """(league slug, away display name, home display name) of a generated sports market."""
    for lg in LEAGUES.values():
        if m.slug.startswith(lg.abbreviation.lower() + "-"):
            names = {t.abbreviation: t.display_name for t in lg.teams}
            return lg.slug, names.get(m.away, m.away), names.get(m.home, m.home)
    return None


def gamma_event_title(m: Market) -> str:
    """The title of the event a market belongs to (sports: "Away vs. Home")."""
    if m.game_id:
        names = _sports_names(m)
        if names is not None:
            return f"{names[1]} vs. {names[2]}"
    if m.neg_risk and m.event_id:
        return _slug_words(m.event_id)
    return m.question


class GammaIndex:
    """Gamma view of the exchange: stable numeric ids, first-seen times, trades and results.

    It listens to the exchange's market events to learn last trade prices, volume and
    resolutions, so Gamma answers what a venue's discovery API would at that moment.
    """

    def __init__(self, state: SimState) -> None:
        self.state = state
        self.market_ids: dict[str, str] = {}
        self.event_ids: dict[str, str] = {}
        self.created_ms: dict[str, int] = {}
        self.last_trade: dict[str, int] = {}
        self.volume_micros: dict[str, int] = {}
        self.resolved: dict[str, str] = {}
        self._next_market = 600_000
        self._next_event = 40_000

    def on_market_events(self, events: list[dict[str, Any]]) -> None:
        """Exchange listener: remember trades and resolutions."""
        for ev in events:
            kind = ev.get("event_type")
            try:
                if kind == "last_trade_price":
                    p, s = parse_micros(ev["price"]), parse_micros(ev.get("size") or "0")
                    self.last_trade[ev["asset_id"]] = p
                    cid = ev.get("market", "")
                    self.volume_micros[cid] = self.volume_micros.get(cid, 0) + p * s // MICROS
                elif kind == "market_resolved":
                    self.resolved[ev["market"]] = ev["winning_asset_id"]
            except (KeyError, ValueError):
                continue

    def _sync(self) -> list[Market]:
        markets: list[Market] = list(self.state.exchange.markets.markets.values())
        now = int(time.time() * 1000)
        for m in markets:
            if m.condition_id not in self.market_ids:
                self._next_market += 1
                self.market_ids[m.condition_id] = str(self._next_market)
                self.created_ms[m.condition_id] = now
            ek = self._event_key(m)
            if ek not in self.event_ids:
                self._next_event += 1
                # a neg-risk event's id is the catalog's event_id (new_market's event_message.id)
                self.event_ids[ek] = m.event_id or str(self._next_event)
        return markets

    @staticmethod
    def _event_key(m: Market) -> str:
        if m.event_id:
            return m.event_id
        return m.slug or m.condition_id

    def _top(self, token: str) -> tuple[int | None, int | None]:
        book = self.state.exchange.book_json(token)
        bids, asks = book.get("bids") or [], book.get("asks") or []
        bid = parse_micros(bids[-1]["price"]) if bids else None
        ask = parse_micros(asks[-1]["price"]) if asks else None
        return bid, ask

    def market_json(self, m: Market, embed_event: bool = True) -> dict[str, Any]:
        """One market in Gamma's shape."""
        cid = m.condition_id
        created = _iso(self.created_ms.get(cid, 0))
        winner = self.resolved.get(cid)
        closed = winner is not None
        bid, ask = self._top(m.token_ids[0]) if not closed else (None, None)
        if closed:
            prices = ["1" if t == winner else "0" for t in m.token_ids]
        elif bid is not None and ask is not None:
            mid = (bid + ask) // 2
            prices = [price_micros_to_str(mid), price_micros_to_str(MICROS - mid)]
        else:
            prices = ["0.5", "0.5"] if len(m.token_ids) == 2 else ["0"] * len(m.token_ids)
        vol = micros_to_decimal(self.volume_micros.get(cid, 0))
        d: dict[str, Any] = {
            "id": self.market_ids.get(cid, "0"),
            "question": m.question,
            "conditionId": cid,
            "questionID": "0x" + cid[2:60] + "0" * 4,
            "slug": m.slug,
            "description": f"Simulated market: {m.question}",
            "resolutionSource": "",
            "outcomes": json.dumps(list(m.outcomes)),
            "outcomePrices": json.dumps(prices),
            "clobTokenIds": json.dumps(list(m.token_ids)) if m.version == "v1" else None,
            "volume": str(vol),
            "volumeNum": vol,
            "volume24hr": vol,
            "liquidity": "0",
            "liquidityNum": Decimal(0),
            "active": m.active or closed,
            "closed": closed,
            "archived": False,
            "new": False,
            "featured": False,
            "restricted": True,
            "acceptingOrders": m.active and not closed,
            "enableOrderBook": True,
            "startDate": created,
            "createdAt": created,
            "updatedAt": _iso(int(time.time() * 1000)),
            "endDate": _iso(self.created_ms.get(cid, 0) + 7 * 86_400_000),
            "startDateIso": created[:10],
            "endDateIso": _iso(self.created_ms.get(cid, 0) + 7 * 86_400_000)[:10],
            "negRisk": m.neg_risk,
            "orderPriceMinTickSize": Decimal(m.tick_size),
            "orderMinSize": Decimal(m.min_order_size),
            "bestBid": micros_to_decimal(bid) if bid is not None else Decimal(0),
            "bestAsk": micros_to_decimal(ask) if ask is not None else Decimal(1),
            "spread": micros_to_decimal(ask - bid)
            if bid is not None and ask is not None
            else Decimal(1),
            "lastTradePrice": micros_to_decimal(self.last_trade.get(m.token_ids[0], 0)),
            "umaResolutionStatuses": json.dumps(["resolved"] if closed else []),
            "version": m.version,
        }
        if m.version == "v2":
            d["positionIds"] = list(m.token_ids)
        if m.neg_risk:
            d["negRiskMarketID"] = "0x" + _hex_of(m.event_id)
            d["negRiskRequestID"] = "0x" + _hex_of(cid)
            d["groupItemTitle"] = m.outcomes[0] if m.game_id else m.question
        fee = m.fee
        d["feesEnabled"] = fee is not None and fee.rate_micros > 0
        d["makerBaseFee"] = 1000 if d["feesEnabled"] else 0
        d["takerBaseFee"] = 1000 if d["feesEnabled"] else 0
        if fee is not None and fee.rate_micros > 0:
            cat = _CATEGORY.get(fee.rate_micros, "general")
            d["feeType"] = f"{cat}_fees_v2"
            d["feeSchedule"] = {
                "exponent": fee.exponent,
                "rate": micros_to_decimal(fee.rate_micros),
                "takerOnly": True,
                "rebateRate": Decimal("0.2") if cat == "crypto" else Decimal("0.25"),
            }
        if m.game_id:
            d["gameId"] = m.game_id
            d["sportsMarketType"] = "moneyline"
            if m.game_start:
                d["gameStartTime"] = m.game_start.replace("T", " ").rstrip("Z")[:19] + "+00"
                d["eventStartTime"] = m.game_start
        if embed_event:
            d["events"] = [self._event_head(m)]
        return d

    def _event_head(self, m: Market) -> dict[str, Any]:
        key = self._event_key(m)
        created = _iso(self.created_ms.get(m.condition_id, 0))
        slug = key if m.event_id else m.slug
        e: dict[str, Any] = {
            "id": self.event_ids.get(key, "0"),
            "ticker": slug,
            "slug": slug,
            "title": gamma_event_title(m),
            "description": f"Simulated event: {gamma_event_title(m)}",
            "startDate": created,
            "creationDate": created,
            "createdAt": created,
            "endDate": _iso(self.created_ms.get(m.condition_id, 0) + 7 * 86_400_000),
            "active": True,
            "closed": False,
            "archived": False,
            "restricted": True,
            "negRisk": m.neg_risk,
            "enableNegRisk": m.neg_risk,
            "enableOrderBook": True,
        }
        if m.neg_risk:
            e["negRiskMarketID"] = "0x" + _hex_of(m.event_id)
        if m.game_id:
            e["gameId"] = int(m.game_id) if m.game_id.isdigit() else m.game_id
            if m.game_start:
                e["startTime"] = m.game_start
                e["eventDate"] = m.game_start[:10]
        return e

    def event_groups(self) -> list[tuple[str, list[Market]]]:
        """Events in first-seen order, each with its markets."""
        groups: dict[str, list[Market]] = {}
        for m in self._sync():
            groups.setdefault(self._event_key(m), []).append(m)
        return list(groups.items())

    def event_json(self, key: str, markets: list[Market]) -> dict[str, Any]:
        """One event in Gamma's shape, markets embedded."""
        e = self._event_head(markets[0])
        ms = [self.market_json(m, embed_event=False) for m in markets]
        e["closed"] = all(x["closed"] for x in ms)
        e["active"] = any(x["active"] for x in ms)
        vol = sum((x["volumeNum"] for x in ms), Decimal(0))
        e["volume"] = vol
        e["volume24hr"] = vol
        e["liquidity"] = Decimal(0)
        e["markets"] = ms
        return e

    def markets(self) -> list[Market]:
        """Every market in first-seen order (ids assigned)."""
        return self._sync()


def market_from_gamma(d: dict[str, Any]) -> Market:
    """A Gamma market object (as this simulator serves it) → ``Market``.

    Reads token ids from ``clobTokenIds`` (v1) or ``positionIds`` (v2), the grid and size floor
    from the numeric fields, fees from ``feeSchedule``, the neg-risk event from ``events[0]``,
    and for generated sports markets the teams from the slug (``nfl-ne-mia-…``).
    ``ValueError``/``KeyError`` when a required field is missing or malformed.
    """
    version = d.get("version")
    if version not in ("v1", "v2"):
        raise ValueError(f"market {d.get('id')!r}: missing or unknown version {version!r}")
    raw_ids = d.get("positionIds") if version == "v2" else json.loads(d["clobTokenIds"])
    tokens = tuple(str(t) for t in raw_ids or ())
    outcomes = tuple(str(o) for o in json.loads(d.get("outcomes") or "[]"))
    fee = None
    sched = d.get("feeSchedule")
    if d.get("feesEnabled") and isinstance(sched, dict):
        fee = FeeModel.from_rate(str(sched.get("rate", "0")), str(sched.get("exponent", "1")))
    events = d.get("events") or [{}]
    neg = bool(d.get("negRisk"))
    game_id = str(d.get("gameId") or "")
    home = away = ""
    if game_id:
        parts = str(d.get("slug", "")).split("-")
        if len(parts) >= 3:
            away, home = parts[1].upper(), parts[2].upper()
    return Market(
        condition_id=str(d["conditionId"]),
        token_ids=tokens,
        outcomes=outcomes,
        question=str(d.get("question", "")),
        slug=str(d.get("slug", "")),
        tick_size=str(d.get("orderPriceMinTickSize", "0.01")),
        min_order_size=str(d.get("orderMinSize", "5")),
        neg_risk=neg,
        event_id=str(events[0].get("id", "")) if neg else "",
        version=version,
        fee=fee,
        active=bool(d.get("active", True)) and not d.get("closed"),
        game_id=game_id,
        home=home,
        away=away,
        game_start=str(d.get("eventStartTime") or "") if game_id else "",
    )


def _hex_of(text: str) -> str:
    import hashlib

    return hashlib.sha256(text.encode()).hexdigest()


GAMMA_KEY: web.AppKey[GammaIndex] = web.AppKey("polylab_sim_gamma", GammaIndex)

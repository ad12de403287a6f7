"""CLOB market objects as the venue's REST API returns them (protocol doc §3.1).

Unlike books and events, these objects carry some JSON **numbers** (``minimum_tick_size``,
``minimum_order_size``, token ``price``, fees; the compact ``/clob-markets`` keys ``mos``,
``mts``, ``fd.r``). They are built as ``Decimal`` here, never float, and encoded as numbers by
``json_bytes`` (msgspec with ``decimal_format="number"``).
"""

from __future__ import annotations

import base64
import hashlib
from decimal import Decimal
from typing import Any, Final

import msgspec

from polylab.money import micros_to_decimal, parse_micros
from polylab.sim.market_state import MarketState

__all__ = [
    "END_CURSOR",
    "START_CURSOR",
    "clob_market_compact",
    "decode_cursor",
    "encode_cursor",
    "json_bytes",
    "market_item",
    "simplified_item",
]

START_CURSOR: Final = "MA=="
"""base64("0"): the first page."""
END_CURSOR: Final = "LTE="
"""base64("-1"): there is no next page."""

_encoder = msgspec.json.Encoder(decimal_format="number")


def json_bytes(obj: Any) -> bytes:
    """Compact JSON with ``Decimal`` values as numbers (exact, no float round trip)."""
    return _encoder.encode(obj)


def encode_cursor(offset: int) -> str:
    """The venue's cursor for a page offset (base64 of the decimal offset)."""
    return base64.b64encode(str(offset).encode()).decode()


def decode_cursor(cursor: str) -> int | None:
    """Offset of a cursor ("" and ``MA==`` → 0, ``LTE=`` → -1); ``None`` if malformed."""
    if not cursor:
        return 0
    try:
        text = base64.b64decode(cursor, validate=True).decode()
        return int(text)
    except (ValueError, UnicodeDecodeError):
        return None


def _num(micros: int) -> Decimal:
    """Micros → the shortest exact Decimal ("0.01", "5", "10"; never "1E+1")."""
    d = micros_to_decimal(micros).normalize()
    return d.quantize(Decimal(1)) if d.as_tuple().exponent > 0 else d  # type: ignore[operator]


def _dec(text: str) -> Decimal:
    return _num(parse_micros(text))


def _fee_on(state: MarketState) -> bool:
    fee = state.market.fee
    return fee is not None and (fee.rate_micros > 0 or fee.flat_micros_per_share > 0)


def _token_prices(state: MarketState) -> list[Decimal]:
    """Per-token display price: 1/0 once resolved, else last trade, else 0.5."""
    out = []
    for token in state.market.token_ids:
        if state.winner:
            out.append(Decimal(1 if token == state.winner else 0))
        elif state.last_trade[token]:
            out.append(_dec(state.last_trade[token]))
        else:
            out.append(Decimal("0.5"))
    return out


def _question_id(condition_id: str) -> str:
    return "0x" + hashlib.sha256(("question|" + condition_id).encode()).hexdigest()


def market_item(state: MarketState) -> dict[str, Any]:
    """One ``GET /markets`` item (also ``GET /markets/{condition_id}``)."""
    m = state.market
    base_fee = 1000 if _fee_on(state) else 0
    prices = _token_prices(state)
    return {
        "enable_order_book": True,
        "active": m.active,
        "closed": state.closed,
        "archived": False,
        "accepting_orders": m.active and not state.closed,
        "accepting_order_timestamp": None,
        "minimum_order_size": _dec(m.min_order_size),
        "minimum_tick_size": _dec(m.tick_size),
        "condition_id": m.condition_id,
        "question_id": _question_id(m.condition_id),
        "question": m.question,
        "description": m.question,
        "market_slug": m.slug,
        "end_date_iso": None,
        "game_start_time": m.game_start or None,
        "seconds_delay": 0,
        "fpmm": "",
        "maker_base_fee": base_fee,
        "taker_base_fee": base_fee,
        "notifications_enabled": False,
        "neg_risk": m.neg_risk,
        "neg_risk_market_id": m.event_id if m.neg_risk else "",
        "neg_risk_request_id": "",
        "icon": "",
        "image": "",
        "rewards": {"rates": None, "min_size": 0, "max_spread": 0},
        "is_50_50_outcome": False,
        "tokens": [
            {"token_id": t, "outcome": o, "price": p, "winner": t == state.winner}
            for t, o, p in zip(m.token_ids, m.outcomes, prices, strict=True)
        ],
        "tags": [],
    }


def simplified_item(state: MarketState) -> dict[str, Any]:
    """One ``GET /simplified-markets`` item."""
    full = market_item(state)
    keys = ("condition_id", "rewards", "tokens", "active", "closed", "archived")
    out = {k: full[k] for k in keys}
    out["accepting_orders"] = full["accepting_orders"]
    return out


def clob_market_compact(state: MarketState) -> dict[str, Any]:
    """``GET /clob-markets/{condition_id}``: the compact form V2 clients cache per token."""
    m = state.market
    base_fee = 1000 if _fee_on(state) else 0
    out: dict[str, Any] = {
        "r": {"mi": 0, "ma": 0, "moas": 0},
        "t": [{"t": t, "o": o} for t, o in zip(m.token_ids, m.outcomes, strict=True)],
        "c": m.condition_id,
        "mos": _dec(m.min_order_size),
        "mts": _dec(m.tick_size),
        "mbf": base_fee,
        "tbf": base_fee,
        "nr": m.neg_risk,
        "ao": m.active and not state.closed,
        "cbos": True,
        "itode": False,
        "v": m.version,
    }
    fee = m.fee
    if fee is not None:
        out["fd"] = {
            "r": _num(fee.rate_micros),
            "e": fee.exponent,
            "to": True,
        }
    return out

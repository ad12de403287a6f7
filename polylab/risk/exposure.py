"""What the risk gate keys limits on, and what an intent or a position can still lose.

**Limit keys.** Position limits hold per token, per market (condition id) and per neg-risk
event, whatever ``group_id`` a strategy puts on its intent: a leg's token resolves through the
catalog to its market and, for a neg-risk market, its event (``LimitKeys.of``). Each key also
names the tokens whose held positions count against it (``LimitKeys.tokens``).

**Worst cases** (cash micros, ≥ 0) for the daily-loss limit:

* a BUY leg: everything it may pay, limit × size rounded up, plus the taker fee bound (the fee
  is largest at p = 0.5, and a BUY fills at or below its limit). If only some legs of a set
  fill, the executor sells the filled ones back; a sale brings ≥ 0, so what a set can lose is
  bounded by the sum of its BUY legs' worst cases.
* a SELL leg: its fee bound plus what selling at the limit can give up beyond what the gate
  already counts for the shares sold: ``max(basis, value at the bid) − limit × size`` (≥ 0);
  shares sold beyond those held (``allow_short``) can lose $1 − limit each. In a set (leg
  risk), at least what buying the leg back at $1 would cost: (1 − limit) × size plus the
  buy-back's fee bound, the bound of that unwind.
* markets that publish no fee schedule are charged the strategies' default flat 1 % per share
  (``DEFAULT_FALLBACK_FEE_MICROS``), so the bound does not rest on a fee that may be charged.

**Unrealized at risk** (cash micros, ≤ 0): held positions marked at what selling them now
brings (longs at the best bid, shorts bought back at the best ask, nothing when a side is
empty), except complete sets, which are worth their locked $1 (a market's YES + NO, or the YES of
every market of a neg-risk event). Gains do not offset: each market (or neg-risk event) adds
``min(0, value − basis)``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from polylab.analysis.set_cost import DEFAULT_FALLBACK_FEE_MICROS
from polylab.fees import FeeModel
from polylab.money import MICROS

if TYPE_CHECKING:
    from polylab.book.l2 import L2Book
    from polylab.domain import Intent
    from polylab.market import Market, MarketCatalog
    from polylab.risk.records import Position

__all__ = ["Key", "LimitKeys", "exposure_by_key", "unrealized_at_risk", "worst_case"]

Key = tuple[str, str]
"""A limit key: ("token", token id) | ("market", condition id) | ("event", neg-risk event id)."""

_FALLBACK = FeeModel(flat_micros_per_share=DEFAULT_FALLBACK_FEE_MICROS)
_HALF = MICROS // 2


class LimitKeys:
    """Token → market → event resolution over a catalog, with each key's tokens.

    The event index (event id → its markets) is rebuilt when the catalog's market count
    changes (markets are added as they are discovered; a market never changes its event)."""

    def __init__(self, catalog: MarketCatalog | None) -> None:
        self.catalog = catalog
        self._n = -1
        self._events: dict[str, tuple[Market, ...]] = {}

    def events(self) -> dict[str, tuple[Market, ...]]:
        """Markets of every neg-risk event, by event id."""
        cat = self.catalog
        if cat is None:
            return {}
        if len(cat.markets) != self._n:
            ev: dict[str, list[Market]] = {}
            for m in cat.markets.values():
                if m.neg_risk and m.event_id:
                    ev.setdefault(m.event_id, []).append(m)
            self._events = {k: tuple(v) for k, v in ev.items()}
            self._n = len(cat.markets)
        return self._events

    def market(self, token_id: str) -> Market | None:
        """The token's market, if the catalog knows it."""
        return self.catalog.by_token.get(token_id) if self.catalog is not None else None

    def of(self, token_id: str) -> tuple[Key, ...]:
        """The keys a position in ``token_id`` counts against (token, market, event)."""
        m = self.market(token_id)
        if m is None:
            return (("token", token_id),)
        if m.neg_risk and m.event_id:
            return (("token", token_id), ("market", m.condition_id), ("event", m.event_id))
        return (("token", token_id), ("market", m.condition_id))

    def tokens(self, key: Key) -> tuple[str, ...]:
        """The tokens whose held positions count against ``key``."""
        kind, ident = key
        if kind == "token":
            return (ident,)
        if kind == "market":
            cat = self.catalog
            m = cat.markets.get(ident) if cat is not None else None
            return m.token_ids if m is not None else ()
        return tuple(t for m in self.events().get(ident, ()) for t in m.token_ids)

    def for_group(self, group_id: str, token_ids: Iterable[str]) -> tuple[str, ...] | None:
        """Tokens an intent on ``group_id`` with ``token_ids`` may touch: the given tokens, or
        when none is given, the market or event named ``group_id``; None if a token (or the
        group) is unknown."""
        toks = tuple(token_ids)
        if not toks:
            toks = self.tokens(("market", group_id)) or self.tokens(("event", group_id))
        if not toks or any(self.market(t) is None for t in toks):
            return None
        return toks


def exposure_by_key(positions: Mapping[str, Position], keys: LimitKeys) -> dict[Key, int]:
    """What held positions can still lose, summed per limit key, cash micros: a long's basis,
    a short's $1 per share minus what selling it brought (``Portfolio.exposure``'s rule)."""
    out: dict[Key, int] = {}
    for tok, pos in positions.items():
        sh, b = pos.shares, pos.basis
        e = max(b, 0) if sh >= 0 else -sh + b
        if e:
            for k in keys.of(tok):
                out[k] = out.get(k, 0) + e
    return out


def _fee_bound(catalog: MarketCatalog | None, token_id: str, size: int, price: int) -> int:
    fm = catalog.fee_for(token_id) if catalog is not None else None
    return (fm or _FALLBACK).fee(size, price)


def worst_case(
    intent: Intent,
    catalog: MarketCatalog | None,
    books: Mapping[str, L2Book] | None,
    positions: Mapping[str, Position],
) -> int:
    """What ``intent`` can lose at worst, cash micros (see the module docstring)."""
    total = 0
    for leg in intent.legs:
        tok, size, price = leg.token_id, leg.size, leg.price
        if leg.side == "BUY":
            total += -(-price * size // MICROS)
            total += _fee_bound(catalog, tok, size, min(price, _HALF))
            continue
        total += _fee_bound(catalog, tok, size, max(price, _HALF))
        pos = positions.get(tok)
        held = pos.shares if pos is not None and pos.shares > 0 else 0
        sold = min(size, held)
        give_up = 0
        if sold and pos is not None:
            basis = pos.basis * sold // held
            book = books.get(tok) if books is not None else None
            value = (book.bid_px if book is not None else 0) * sold // MICROS
            give_up = max(0, max(basis, value) - price * sold // MICROS)
        if size > sold:
            give_up += -(-(MICROS - price) * (size - sold) // MICROS)
        if intent.kind == "set":  # an uneven set is unwound by buying back, at up to $1
            buy_back = -(-(MICROS - price) * size // MICROS)
            give_up = max(give_up, buy_back + _fee_bound(catalog, tok, size, _HALF))
        total += give_up
    return total


def unrealized_at_risk(
    positions: Mapping[str, Position], keys: LimitKeys, books: Mapping[str, L2Book] | None
) -> int:
    """Σ over markets / neg-risk events of ``min(0, value − basis)``, cash micros (≤ 0)."""
    if not positions:
        return 0
    clusters: dict[str, list[str]] = {}
    for tok in positions:
        m = keys.market(tok)
        if m is None:
            cid = f"token:{tok}"
        elif m.neg_risk and m.event_id:
            cid = f"event:{m.event_id}"
        else:
            cid = f"market:{m.condition_id}"
        clusters.setdefault(cid, []).append(tok)
    total = 0
    for cid, toks in clusters.items():
        left = {t: positions[t].shares for t in toks}
        value = 0
        for t in toks:  # a market's YES + NO: $1 a set
            m = keys.market(t)
            if m is not None and len(m.token_ids) == 2 and t == m.token_ids[0]:
                n = min(left.get(m.token_ids[0], 0), left.get(m.token_ids[1], 0))
                if n > 0:
                    value += n
                    left[m.token_ids[0]] -= n
                    left[m.token_ids[1]] -= n
        if cid.startswith("event:"):  # the YES of every market of the event: $1 a set
            ms = keys.events().get(cid[6:], ())
            n = min((left.get(m.token_ids[0], 0) for m in ms), default=0) if len(ms) > 1 else 0
            if n > 0:
                value += n
                for m in ms:
                    left[m.token_ids[0]] -= n
        for t, sh in left.items():
            book = books.get(t) if books is not None else None
            if sh > 0:
                value += (book.bid_px if book is not None else 0) * sh // MICROS
            elif sh < 0:
                value -= -((book.ask_px if book is not None else MICROS) * -sh // -MICROS)
        basis = sum(positions[t].basis for t in toks)
        total += min(0, value - basis)
    return total

"""Market metadata: which tokens form a complete set, their grid, size floor and fee schedule.

Two kinds of outcome group matter for sum analysis:

* ``binary``: the two tokens of one market (YES/NO). The venue keeps their books as mirrors, so a
  YES+NO ask sum below $1 is only ever a transient stale-leg window.
* ``negrisk``: the YES tokens of every market of one neg-risk event (exactly one outcome wins).
  Sums away from $1 can last here: structural deviations.

The catalog is built from Gamma discovery, from a recording's ``meta`` channel, or, for a bare
capture of market frames, from the frames themselves (tokens sharing a ``market`` id pair up).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

import msgspec

from polylab.fees import FeeModel
from polylab.money import TickSize, parse_micros, tick_size

__all__ = ["Market", "MarketCatalog", "OutcomeGroup"]


class Market(msgspec.Struct, frozen=True, kw_only=True):
    """One market (condition): its outcome tokens in outcome order, grid and fees.

    ``version``: "v1" for CTF markets (domain "2" orders), "v2" for Protocol V2 markets
    (ExchangeV3, domain "3"). ``event_id`` groups the markets of one neg-risk event.
    ``fee``: taker schedule; ``None`` means the market published none.
    ``event_markets``: how many markets the event lists at the source (Gamma ``/events``),
    tradable or not; 0 when unknown. ``neg_risk_other``: the "Other" / placeholder outcome of
    an augmented neg-risk event (Gamma ``negRiskOther``), whose meaning changes as outcomes
    are named. ``neg_risk_augmented``: the event is augmented neg-risk (Gamma event
    ``negRiskAugmented``): outcomes can still be added, so its listed markets may not be all.
    """

    condition_id: str
    token_ids: tuple[str, ...]
    outcomes: tuple[str, ...] = ("Yes", "No")
    question: str = ""
    slug: str = ""
    tick_size: str = "0.01"
    min_order_size: str = "5"
    neg_risk: bool = False
    event_id: str = ""
    version: Literal["v1", "v2"] = "v1"
    fee: FeeModel | None = None
    active: bool = True
    game_id: str = ""
    home: str = ""
    away: str = ""
    game_start: str = ""
    event_markets: int = 0
    neg_risk_other: bool = False
    neg_risk_augmented: bool = False

    def __post_init__(self) -> None:
        # Parse once at the edge: a market with an unknown grid or size floor is refused here,
        # naming the value, instead of failing later on the order path.
        tick_size(self.tick_size)
        parse_micros(self.min_order_size)

    @property
    def tick(self) -> TickSize:
        """The catalog's price grid (a book's ``tick`` wins after a ``tick_size_change``)."""
        return tick_size(self.tick_size)

    @property
    def tick_micros(self) -> int:
        """Tick size in price micros (0.01 → 10_000)."""
        return tick_size(self.tick_size).micros

    @property
    def min_size_micros(self) -> int:
        """The venue's minimum order size in share micros ("5" → 5_000_000)."""
        return parse_micros(self.min_order_size)


class OutcomeGroup(msgspec.Struct, frozen=True, kw_only=True):
    """Tokens whose complete set pays exactly $1: buy one of each to lock in the payout.

    ``kind``: "binary" (mirrored pair; deviations are transient) or "negrisk" (N outcomes;
    deviations can be structural). ``token_ids`` are the legs; ``markets`` the condition ids.
    """

    kind: Literal["binary", "negrisk"]
    id: str
    token_ids: tuple[str, ...]
    markets: tuple[str, ...]
    label: str = ""


class MarketCatalog:
    """Markets by condition id and by token; outcome groups derived on demand."""

    def __init__(self, markets: Iterable[Market] = ()) -> None:
        self.markets: dict[str, Market] = {}
        self.by_token: dict[str, Market] = {}
        for m in markets:
            self.add(m)

    def add(self, market: Market) -> None:
        """Add or replace a market."""
        old = self.markets.get(market.condition_id)
        if old is not None:
            for t in old.token_ids:
                self.by_token.pop(t, None)
        self.markets[market.condition_id] = market
        for t in market.token_ids:
            self.by_token[t] = market

    def observe(self, condition_id: str, token_id: str) -> None:
        """Learn a token from a bare frame: tokens sharing a ``market`` id form a pair."""
        if not condition_id or token_id in self.by_token:
            return
        m = self.markets.get(condition_id)
        if m is None:
            self.add(Market(condition_id=condition_id, token_ids=(token_id,), outcomes=("?",)))
        elif len(m.token_ids) < 2:
            self.add(
                msgspec.structs.replace(
                    m, token_ids=(*m.token_ids, token_id), outcomes=("Yes", "No")
                )
            )

    def groups(self) -> list[OutcomeGroup]:
        """Binary pairs for every two-token market, plus one group per neg-risk event."""
        out: list[OutcomeGroup] = []
        events: dict[str, list[Market]] = {}
        for m in self.markets.values():
            if len(m.token_ids) == 2:
                out.append(
                    OutcomeGroup(
                        kind="binary",
                        id=m.condition_id,
                        token_ids=m.token_ids,
                        markets=(m.condition_id,),
                        label=m.question or m.slug,
                    )
                )
            if m.neg_risk and m.event_id:
                events.setdefault(m.event_id, []).append(m)
        for ev, ms in events.items():
            if len(ms) >= 2:
                out.append(
                    OutcomeGroup(
                        kind="negrisk",
                        id=ev,
                        token_ids=tuple(m.token_ids[0] for m in ms),
                        markets=tuple(m.condition_id for m in ms),
                        label=ev,
                    )
                )
        return out

    def fee_for(self, token_id: str) -> FeeModel | None:
        """The token's market fee schedule, if published."""
        m = self.by_token.get(token_id)
        return m.fee if m is not None else None

    def to_list(self) -> list[Market]:
        """All markets (for the recording's meta channel)."""
        return list(self.markets.values())

    def __len__(self) -> int:
        return len(self.markets)

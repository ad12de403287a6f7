"""What a strategy is: a small class with a frozen config that reads books and returns intents.

A strategy never submits anything. The engine calls it on every book update of a token it
watches and on a 10 Hz timer; what it returns goes through risk, then to an executor. Backtest,
paper and live run the very same calls; only the clock, source and executor differ.

Units: prices in price micros (per share), sizes in share micros, cash in micros, times in ns.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal, Protocol, runtime_checkable

import msgspec

if TYPE_CHECKING:
    from polylab.book.l2 import L2Book
    from polylab.market import MarketCatalog

__all__ = ["Context", "Game", "Intent", "Leg", "Strategy", "budget_of"]

Side = Literal["BUY", "SELL"]
OrderType = Literal["FOK", "FAK", "GTC", "GTD"]


class Leg(msgspec.Struct, frozen=True, kw_only=True):
    """One order of an intent: buy/sell ``size`` shares of ``token_id`` no worse than ``price``.

    ``price``: limit (worst acceptable) price, micros; ``size``: share micros.
    """

    token_id: str
    side: Side
    price: int
    size: int
    order_type: OrderType = "FOK"


class Intent(msgspec.Struct, frozen=True, kw_only=True):
    """What a strategy wants done, with why and how much it expects to make.

    ``kind``: "set" (all legs belong to one complete set: leg risk applies) or "single".
    ``edge``: expected profit in cash micros for the whole intent, fees included.
    ``group_id``: the outcome group / market the intent is about (risk limits key on it).
    """

    strategy: str
    group_id: str
    kind: Literal["set", "single"]
    legs: tuple[Leg, ...]
    edge: int
    created_ns: int
    reason: str = ""

    @property
    def cost(self) -> int:
        """Worst-case cash out for the BUY legs (limit × size), micros."""
        return sum(
            -(-(leg.price * leg.size) // 1_000_000) for leg in self.legs if leg.side == "BUY"
        )


class Game(msgspec.Struct, frozen=True, kw_only=True):
    """A scoreboard game in polylab's words (from an ESPN-format scoreboard or another source).

    ``home``/``away``: team abbreviations; ``winner``: abbreviation, or None for a draw or an
    unfinished game; ``final``: state "post" *and* completed (postponed games are not final).
    """

    id: str
    league: str
    state: str
    completed: bool
    home: str
    away: str
    home_score: int
    away_score: int
    winner: str | None
    start: str = ""
    status_name: str = ""
    home_name: str = ""
    away_name: str = ""
    detail: str = ""

    @property
    def final(self) -> bool:
        """A result that can be traded on: the game is over and the status says so."""
        return self.state == "post" and self.completed


class Context(Protocol):
    """What strategies may read: books, the catalog, positions, the time."""

    @property
    def books(self) -> dict[str, L2Book]: ...

    @property
    def catalog(self) -> MarketCatalog: ...

    def now_ns(self) -> int: ...

    def position(self, token_id: str) -> int:
        """Shares held (micros)."""
        ...


def budget_of(ctx: Context, group_id: str, token_ids: tuple[str, ...]) -> int | None:
    """Cash micros an intent on this group may still commit (limit × size) before the risk
    gate refuses it, from ``ctx.budget(group_id, token_ids)`` when the context offers it (the
    engine does), else None (no cap). Strategies size to fit instead of being rejected."""
    fn = getattr(ctx, "budget", None)
    return None if fn is None else int(fn(group_id, token_ids))


@runtime_checkable
class Strategy(Protocol):
    """The strategy protocol. ``name`` is unique per engine; hooks return intents (maybe [])."""

    name: str

    def on_book(self, ctx: Context, token_id: str) -> list[Intent]:
        """Called after ``token_id``'s book changed."""
        ...

    def on_timer(self, ctx: Context) -> list[Intent]:
        """Called at 10 Hz."""
        ...

    def on_games(self, ctx: Context, games: list[Game]) -> list[Intent]:
        """Called with each new scoreboard snapshot (sports strategies; others return [])."""
        ...

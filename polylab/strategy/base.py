"""What a strategy is: a small class with a frozen config that reads books and returns intents.

A strategy never submits anything. The engine calls it on every book update of a token it
watches and on a 10 Hz timer; what it returns goes through risk, then to an executor. Backtest,
paper and live run the very same calls; only the clock, source and executor differ.

Units: prices in price micros (per share), sizes in share micros, cash in micros, times in ns.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, runtime_checkable

from polylab.domain import Game, Intent, Leg, OrderType, Side

if TYPE_CHECKING:
    from polylab.book.l2 import L2Book
    from polylab.market import MarketCatalog

__all__ = [
    "Context",
    "Game",
    "Intent",
    "Leg",
    "OrderType",
    "Side",
    "Strategy",
    "budget_of",
]


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

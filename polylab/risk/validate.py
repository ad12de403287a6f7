"""Is an intent well formed for the venue? One rule name and the offending value, or nothing.

The risk gate runs this before any limit, so a malformed intent (a "HOLD" leg, a price of 0 or
off the token's grid, a size that is not whole 0.01 shares, a token the catalog does not know,
the same token twice) is a recorded rejection naming the rule and the value, never an order
and never a crash. Rules (``Rejected.rule``):

* ``no_legs``: the intent has no legs (or ``legs`` is not a sequence of ``Leg``).
* ``invalid_side``: a leg's side is not "BUY" or "SELL".
* ``invalid_order_type``: not one of FOK, FAK, GTC, GTD.
* ``invalid_size``: size not an integer > 0 (share micros).
* ``off_size_grid``: size not a whole multiple of 0.01 share (``SIZE_STEP_MICROS``).
* ``invalid_price``: price not an integer strictly inside (0, $1) (price micros).
* ``unknown_token``: the token is not in the market catalog.
* ``off_tick_grid``: price not on the token's *current* tick grid: its live book's grid (which
  follows ``tick_size_change``) when the token has a book, else the catalog's ``tick_size``.
* ``duplicate_token``: two legs of one intent on the same token.

Checks are a few integer operations and dict lookups per leg: this runs on the tick-to-order
path.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from polylab.analysis.set_cost import SIZE_STEP_MICROS
from polylab.money import MICROS, MoneyError, price_micros_to_str, tick_size

if TYPE_CHECKING:
    from polylab.book.l2 import L2Book
    from polylab.domain import Intent
    from polylab.market import MarketCatalog

__all__ = ["RULES", "validate"]

RULES = (
    "no_legs",
    "invalid_side",
    "invalid_order_type",
    "invalid_size",
    "off_size_grid",
    "invalid_price",
    "unknown_token",
    "off_tick_grid",
    "duplicate_token",
)
"""Every rule ``validate`` can return, in the order it checks them (per leg)."""

_SIDES = frozenset(("BUY", "SELL"))
_ORDER_TYPES = frozenset(("FOK", "FAK", "GTC", "GTD"))


def _short(token: object) -> str:
    s = str(token)
    return s if len(s) <= 20 else f"{s[:16]}…"


def validate(
    intent: Intent, catalog: MarketCatalog | None, books: Mapping[str, L2Book] | None
) -> tuple[str, str]:
    """``("", "")`` when ``intent`` is well formed, else ``(rule, reason)`` (see the module
    docstring); ``catalog`` None knows no token. Never raises on a malformed intent."""
    legs = getattr(intent, "legs", None)
    if not isinstance(legs, tuple | list) or not legs:
        return "no_legs", f"intent has no legs (legs={legs!r})"
    by_token = catalog.by_token if catalog is not None else {}
    seen: set[str] = set()
    for i, leg in enumerate(legs):
        try:
            side, otype, size, price, tok = (
                leg.side,
                leg.order_type,
                leg.size,
                leg.price,
                leg.token_id,
            )
        except AttributeError:
            return "no_legs", f"leg {i} is not a Leg: {leg!r}"
        if side not in _SIDES:
            return "invalid_side", f"leg {i} side must be BUY or SELL, was {side!r}"
        if otype not in _ORDER_TYPES:
            return (
                "invalid_order_type",
                f"leg {i} order type must be FOK/FAK/GTC/GTD, was {otype!r}",
            )
        if type(size) is not int or size <= 0:
            return "invalid_size", f"leg {i} size must be an integer > 0 share micros, was {size!r}"
        if size % SIZE_STEP_MICROS:
            return "off_size_grid", (
                f"leg {i} size {size} micros is not a multiple of {SIZE_STEP_MICROS} (0.01 share)"
            )
        if type(price) is not int or not 0 < price < MICROS:
            return "invalid_price", f"leg {i} price must be in (0, 1e6) micros, was {price!r}"
        market = by_token.get(tok) if type(tok) is str else None
        if market is None or type(tok) is not str:
            return "unknown_token", f"leg {i} token {_short(tok)!s} is not in the market catalog"
        book = books.get(tok) if books is not None else None
        if book is not None:
            grid = book.tick
        else:
            try:
                grid = tick_size(market.tick_size)
            except MoneyError as exc:
                return "off_tick_grid", f"leg {i} token {_short(tok)} has no usable grid: {exc}"
        if price % grid.micros:
            return "off_tick_grid", (
                f"leg {i} price {price_micros_to_str(price)} is not on token {_short(tok)}'s "
                f"current {grid.text} tick grid"
            )
        if tok in seen:
            return "duplicate_token", f"leg {i} token {_short(tok)} appears twice in the intent"
        seen.add(tok)
    return "", ""

"""Exact money: the only place where wire strings become integers (and back).

Units used everywhere in polylab:

* **price ticks**: an ``int`` count of the market's tick size (``TickSize``); a price of 0.46 on a
  0.01 grid is ``46`` ticks, on a 0.001 grid ``460``.
* **price micros**: price in millionths of a dollar per share (0.46 → ``460_000``); every
  tick size the venue uses (0.1 … 0.0001) is a whole number of micros: the grid-free form.
* **size micros**: shares in millionths (outcome tokens have 6 decimals; 918.34 →
  ``918_340_000``).
* **cash micros**: dollars (USDC / pUSD) in millionths, the collateral's base unit.

Floats never carry money: a value that cannot be represented exactly is rejected with
``MoneyError`` naming the value, instead of being rounded silently.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Final

__all__ = [
    "MICROS",
    "MoneyError",
    "TickSize",
    "cash_to_str",
    "cost_micros",
    "decimal_to_micros",
    "micros_to_decimal",
    "parse_micros",
    "parse_size",
    "price_micros_to_str",
    "size_to_str",
    "tick_size",
]

MICROS: Final = 1_000_000
"""Base units per dollar and per share (6 decimals)."""

_CACHE_LIMIT: Final = 16_384
"""Strings ``parse_micros`` remembers before starting over. Prices repeat (a few hundred
ticks); sizes mostly do not, so on a long live feed the cache fills with sizes: at 200,000
entries it held ~25 MiB and grew the runner's RSS for half an hour (issue 11 §7, "flat");
16,384 (~2.5 MiB) keeps every price hot."""


class MoneyError(ValueError):
    """A price, size or amount string that is not an exact non-negative decimal we can hold."""


_micros_cache: dict[str, int] = {}


def _parse_micros_slow(text: str) -> int:
    """``[digits][.digits]`` (at least one digit) → micros; string methods, not a regex: sizes
    rarely repeat, so this runs for most levels of a busy feed."""
    whole, _, frac = text.partition(".")
    if (
        not (whole or frac)
        or (whole and not (whole.isascii() and whole.isdigit()))
        or (frac and not (frac.isascii() and frac.isdigit()))
    ):
        raise MoneyError(f"not a non-negative decimal number: {text!r}")
    if len(frac) > 6:
        if frac[6:].strip("0"):
            raise MoneyError(f"more than 6 decimals cannot be held exactly: {text!r}")
        frac = frac[:6]
    return int(whole or "0") * MICROS + int(frac.ljust(6, "0"))


def parse_micros(text: str) -> int:
    """Parse a decimal string ("918.34", "0.5", ".48", "5") into micro-units (int).

    Strings repeat a lot on the wire, so results are memoised; the cache is bounded.
    Raises ``MoneyError`` on signs, exponents, blanks, or more than 6 significant decimals.
    """
    v = _micros_cache.get(text)
    if v is None:
        if type(text) is not str:
            raise MoneyError(f"expected a decimal string, got {type(text).__name__}: {text!r}")
        v = _parse_micros_slow(text)
        if len(_micros_cache) >= _CACHE_LIMIT:
            _micros_cache.clear()
        _micros_cache[text] = v
    return v


parse_size = parse_micros
"""Shares string → size micros."""


def decimal_to_micros(value: Decimal | int | str) -> int:
    """Exact Decimal/int/str → micros; rejects values needing more than 6 decimals."""
    d = Decimal(value) if not isinstance(value, Decimal) else value
    if not d.is_finite() or d < 0:
        raise MoneyError(f"not a finite non-negative amount: {value!r}")
    scaled = d * MICROS
    if scaled != scaled.to_integral_value():
        raise MoneyError(f"more than 6 decimals cannot be held exactly: {value!r}")
    return int(scaled)


def micros_to_decimal(micros: int) -> Decimal:
    """Micros → exact ``Decimal`` (for the edges: reports, JSON, notebooks)."""
    return Decimal(micros).scaleb(-6)


def _fmt(micros: int, min_decimals: int = 0) -> str:
    sign = "-" if micros < 0 else ""
    whole, frac = divmod(abs(micros), MICROS)
    f = f"{frac:06d}".rstrip("0")
    if len(f) < min_decimals:
        f = f.ljust(min_decimals, "0")
    return f"{sign}{whole}.{f}" if f else f"{sign}{whole}"


def size_to_str(micros: int) -> str:
    """Size micros → the venue's shortest decimal string ("918.34", "5")."""
    return _fmt(micros)


def cash_to_str(micros: int) -> str:
    """Cash micros (may be negative, e.g. PnL) → decimal string with at least 2 decimals."""
    return _fmt(micros, 2)


def price_micros_to_str(micros: int) -> str:
    """Price micros → shortest decimal string ("0.46", "0.5")."""
    return _fmt(micros)


def cost_micros(price_micros: int, size_micros: int, *, round_up: bool) -> int:
    """Cash for ``size`` shares at ``price``, in micros.

    Exact whenever price decimals + size decimals ≤ 6 (the venue's 4-decimal prices and 2-decimal
    sizes always are). Otherwise rounded up for money we pay and down for money we receive, so
    an estimate never flatters a trade.
    """
    num = price_micros * size_micros
    return -(-num // MICROS) if round_up else num // MICROS


class TickSize:
    """A price grid (0.1, 0.01, 0.001 or 0.0001 dollars per share).

    ``ticks`` are prices counted in this grid; ``n`` is the tick count of $1 (100 for 0.01), so
    valid order prices are ``1 … n-1``. Instances are shared per grid (see ``tick_size``).
    """

    __slots__ = ("_cache", "decimals", "micros", "n", "text")

    def __init__(self, text: str) -> None:
        micros = parse_micros(text)
        if micros <= 0 or MICROS % micros:
            raise MoneyError(f"tick size must divide 1 exactly, was {text!r}")
        self.micros: int = micros
        self.n: int = MICROS // micros
        self.decimals: int = len(str(self.n)) - 1
        self.text: str = _fmt(micros)
        self._cache: dict[str, int] = {}

    def __repr__(self) -> str:
        return f"TickSize({self.text!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, TickSize) and other.micros == self.micros

    def __hash__(self) -> int:
        return hash(self.micros)

    def to_ticks(self, price: str) -> int:
        """Price string → ticks on this grid; ``MoneyError`` if off-grid or outside [0, 1]."""
        t = self._cache.get(price)
        if t is None:
            m = parse_micros(price)
            t, rem = divmod(m, self.micros)
            if rem:
                raise MoneyError(f"price {price!r} is not on the {self.text} tick grid")
            if t > self.n:
                raise MoneyError(f"price {price!r} is above 1")
            self._cache[price] = t
        return t

    def micros_to_ticks(self, price_micros: int) -> int:
        """Price micros → ticks; ``MoneyError`` if off-grid."""
        t, rem = divmod(price_micros, self.micros)
        if rem:
            raise MoneyError(f"price {_fmt(price_micros)} is not on the {self.text} tick grid")
        return t

    def to_str(self, ticks: int) -> str:
        """Ticks → the shortest price string ("0.46", "0.5")."""
        return _fmt(ticks * self.micros)

    def to_decimal(self, ticks: int) -> Decimal:
        """Ticks → exact Decimal price."""
        return Decimal(ticks * self.micros).scaleb(-6)


_GRIDS: dict[str, TickSize] = {}


def tick_size(text: str | TickSize) -> TickSize:
    """The shared ``TickSize`` for a tick string ("0.01", "0.001", …)."""
    if isinstance(text, TickSize):
        return text
    g = _GRIDS.get(text)
    if g is None:
        g = TickSize(text)
        g = _GRIDS.setdefault(g.text, g)
        _GRIDS[text] = g
    return g

"""Depth-aware sum deviations over every outcome group: where a complete set is mispriced.

A complete set (one share of every outcome of a group) pays exactly $1. Buying every leg for
less than $1 after fees locks in the difference; selling every leg for more than $1 (holding
sets, or splitting $1 into one) does the same on the bid side. ``windows.py`` watches the top
of book; this module prices the depth (through ``analysis.set_cost``):

* ``SumAnalyzer.scan``: ``Opportunity`` rows for every group, side and size, with the size
  that earns the most (``max_size``); a binary pair is labelled ``stale_leg`` when its mirrored
  books disagree at that instant, else ``transient``; an instant cannot show whether a neg-risk
  mispricing lasts, so those rows keep the group's ``structural`` label;
* ``OpportunityTracker``: windows (start, end, duration) during which a set of a reference size
  had an edge, labelled by measurement (``windows.label_window``: stale leg at the opening,
  else structural only when the window outlives a multiple of polylab's reaction time);
* ``opportunities_frame`` / ``windows_frame``: polars frames for notebooks.

Units: sizes are share micros (sets), prices price micros, cash micros, times ns.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Literal

import msgspec

from polylab.analysis.set_cost import (
    DEFAULT_FALLBACK_FEE_MICROS,
    DEFAULT_SIZES,
    GroupIndex,
    GroupLegs,
    SetQuote,
    SetSide,
    best_set,
    no_edge_at_top,
    quote_set,
)
from polylab.analysis.windows import Label, WindowConfig, label_window, mirror_gap
from polylab.book.l2 import L2Book
from polylab.market import MarketCatalog
from polylab.money import MICROS

if TYPE_CHECKING:
    import polars as pl

__all__ = [
    "DepthWindow",
    "Opportunity",
    "OpportunityTracker",
    "SumAnalyzer",
    "opportunities_frame",
    "windows_frame",
]


class Opportunity(msgspec.Struct, frozen=True, kw_only=True):
    """A complete set priced at one size. Amounts are micros; ``size`` and ``max_size`` are
    sets (share micros).

    ``cost``: Σ legs' cash, fees excluded (buy: paid; sell: received); ``fees``: Σ taker fees
    (fallback included); ``edge``: total profit against $1 per set; ``edge_per_set``: micros
    per set. ``vwaps``/``worst_prices``: each leg's average and last price (price micros; the
    average rounded against us). ``max_size``: the size that earns the most (0.01-share steps;
    sets are added while the next one still earns > 0 after fees, ``set_cost.best_set``), 0
    when none. Sizes past it may still show a positive total edge, but every set added there
    loses money.
    """

    group: str
    kind: Literal["binary", "negrisk"]
    label: Label
    side: SetSide
    size: int
    cost: int
    fees: int
    edge: int
    edge_per_set: int
    tokens: tuple[str, ...]
    vwaps: tuple[int, ...]
    worst_prices: tuple[int, ...]
    max_size: int
    detected_ns: int


def _gap(legs: GroupLegs, books: dict[str, L2Book]) -> int:
    """Mirror disagreement of a binary pair's books (price micros; 0 for neg-risk events or
    missing books)."""
    if legs.group.kind != "binary" or len(legs.tokens) != 2:
        return 0
    yes, no = books.get(legs.tokens[0]), books.get(legs.tokens[1])
    return mirror_gap(yes, no) if yes is not None and no is not None else 0


def _opportunity(legs: GroupLegs, q: SetQuote, max_size: int, now_ns: int, gap: int) -> Opportunity:
    buy = q.side == "buy"
    vw = tuple(
        (-(-v.notional // v.filled) if buy else v.notional // v.filled) if v.filled else 0
        for v in q.legs
    )
    return Opportunity(
        group=legs.group.id,
        kind=legs.group.kind,
        label=("stale_leg" if gap else "transient") if legs.group.kind == "binary" else legs.label,
        side=q.side,
        size=q.size,
        cost=q.cost,
        fees=q.fees,
        edge=q.edge,
        edge_per_set=q.edge_per_set,
        tokens=legs.tokens,
        vwaps=vw,
        worst_prices=tuple(v.worst_price for v in q.legs),
        max_size=max_size,
        detected_ns=now_ns,
    )


class SumAnalyzer:
    """Prices every outcome group of ``catalog`` over ``books`` at ``sizes`` (share micros)."""

    def __init__(
        self,
        catalog: MarketCatalog,
        books: dict[str, L2Book],
        *,
        sizes: Sequence[int] = DEFAULT_SIZES,
        fallback_fee_micros: int = DEFAULT_FALLBACK_FEE_MICROS,
        sides: Sequence[SetSide] = ("buy", "sell"),
    ) -> None:
        self.books = books
        self.index = GroupIndex(catalog)
        self.sizes = tuple(sorted(sizes))
        self.fallback_fee_micros = fallback_fee_micros
        self.sides = tuple(sides)

    def group(
        self, legs: GroupLegs, now_ns: int, *, min_edge_micros: int | None = 0
    ) -> list[Opportunity]:
        """One group's rows: every side and size with edge > 0 and edge per set ≥
        ``min_edge_micros``; with ``min_edge_micros=None`` every fillable size (any edge)."""
        out: list[Opportunity] = []
        books, fb = self.books, self.fallback_fee_micros
        gap = _gap(legs, books)
        for side in self.sides:
            buy = side == "buy"
            if min_edge_micros is not None and no_edge_at_top(legs, books, buy, min_edge_micros):
                continue
            top = best_set(legs, books, side, fallback_fee_micros=fb)
            max_size = top.size if top is not None else 0
            for size in self.sizes:
                q = quote_set(legs, books, side, size, fb)
                if q is None:
                    break  # sizes are sorted: a larger one cannot fill either
                e = q.edge
                if min_edge_micros is None or (e > 0 and e * MICROS >= min_edge_micros * size):
                    out.append(_opportunity(legs, q, max_size, now_ns, gap))
        return out

    def scan(self, now_ns: int, *, min_edge_micros: int | None = 0) -> list[Opportunity]:
        """Rows for every group, best total edge first (then best edge per set)."""
        self.index.sync()
        out: list[Opportunity] = []
        for legs in self.index.groups:
            out.extend(self.group(legs, now_ns, min_edge_micros=min_edge_micros))
        out.sort(key=lambda o: (-o.edge, -o.edge_per_set, o.group, o.side, o.size))
        return out


class DepthWindow(msgspec.Struct, frozen=True, kw_only=True):
    """A span during which ``size`` sets (share micros) had an edge on ``side``.

    ``start_ns``/``end_ns``: receive times of the events that opened and closed it (``end_ns``
    is 0 while open); ``best_edge``: the largest total edge seen (micros) and
    ``best_edge_per_set`` its per-set value; ``updates``: checks while open; ``mirror_gap``:
    a binary pair's mirror disagreement when it opened (price micros); ``label``:
    ``windows.label_window``.
    """

    group: str
    kind: Literal["binary", "negrisk"]
    label: Label
    side: SetSide
    size: int
    start_ns: int
    end_ns: int
    best_edge: int
    best_edge_per_set: int
    updates: int
    mirror_gap: int = 0

    @property
    def duration_ns(self) -> int:
        """Window length in ns (0 while still open)."""
        return self.end_ns - self.start_ns if self.end_ns else 0


class _Open:
    __slots__ = ("best", "best_per_set", "gap", "start", "updates")

    def __init__(self, start: int, edge: int, per_set: int, gap: int) -> None:
        self.start = start
        self.best = edge
        self.best_per_set = per_set
        self.gap = gap
        self.updates = 1


class OpportunityTracker:
    """Depth-aware windows at a reference size: call ``on_market(market_id, recv_ns)`` (or
    ``on_token``) after each event; ``finish(now_ns)`` closes open windows and returns all.

    A window is open while ``size_micros`` sets have edge > 0 and edge per set ≥
    ``min_edge_micros``; a book too thin for the reference size closes it. Labels use
    ``window_config`` and the reaction time (``reaction_ns``; ``finish`` may pass the one the
    run measured).
    """

    def __init__(
        self,
        catalog: MarketCatalog,
        books: dict[str, L2Book],
        *,
        size_micros: int = 100 * MICROS,
        min_edge_micros: int = 0,
        fallback_fee_micros: int = DEFAULT_FALLBACK_FEE_MICROS,
        sides: Sequence[SetSide] = ("buy", "sell"),
        window_config: WindowConfig | None = None,
    ) -> None:
        self.books = books
        self.index = GroupIndex(catalog)
        self.window_config = window_config or WindowConfig()
        self.reaction_ns = self.window_config.default_reaction_ns
        self.size = size_micros
        self.min_edge = min_edge_micros
        self.fallback_fee_micros = fallback_fee_micros
        self.sides = tuple(sides)
        self.windows: list[DepthWindow] = []
        self.checks = 0
        self._open: dict[tuple[str, SetSide], tuple[GroupLegs, _Open]] = {}

    def on_market(self, market: str, recv_ns: int) -> None:
        """Re-check every group containing market (condition id) ``market``."""
        self.index.sync()
        self._check(self.index.by_market.get(market, ()), recv_ns)

    def on_token(self, token_id: str, recv_ns: int) -> None:
        """Re-check every group containing ``token_id``."""
        self.index.sync()
        self._check(self.index.by_token.get(token_id, ()), recv_ns)

    def _check(self, groups: Iterable[GroupLegs], now: int) -> None:
        books, size, me = self.books, self.size, self.min_edge
        for legs in groups:
            if any(t not in books for t in legs.tokens):
                continue
            self.checks += 1
            for side in self.sides:
                key = (legs.group.id, side)
                q = None
                if not no_edge_at_top(legs, books, side == "buy", me):
                    q = quote_set(legs, books, side, size, self.fallback_fee_micros)
                    if q is not None and (q.edge <= 0 or q.edge * MICROS < me * size):
                        q = None
                held = self._open.get(key)
                if q is not None:
                    e, ps = q.edge, q.edge_per_set
                    if held is None:
                        self._open[key] = (legs, _Open(now, e, ps, _gap(legs, books)))
                    else:
                        w = held[1]
                        w.updates += 1
                        if e > w.best:
                            w.best, w.best_per_set = e, ps
                elif held is not None:
                    del self._open[key]
                    self._close(held[0], side, held[1], now)

    def _label(self, gap: int, duration_ns: int) -> Label:
        mult = self.window_config.structural_multiple
        return label_window(gap > 0, duration_ns, self.reaction_ns, mult)

    def _close(self, legs: GroupLegs, side: SetSide, w: _Open, end: int) -> None:
        self.windows.append(
            DepthWindow(
                group=legs.group.id,
                kind=legs.group.kind,
                label=self._label(w.gap, end - w.start),
                side=side,
                size=self.size,
                start_ns=w.start,
                end_ns=end,
                best_edge=w.best,
                best_edge_per_set=w.best_per_set,
                updates=w.updates,
                mirror_gap=w.gap,
            )
        )

    def finish(self, now_ns: int, *, reaction_ns: int | None = None) -> list[DepthWindow]:
        """Close every open window at ``now_ns``; all windows, best edge first, labelled with
        ``reaction_ns`` (ns) when given."""
        if reaction_ns:
            self.reaction_ns = reaction_ns
        for (_, side), (legs, w) in self._open.items():
            self._close(legs, side, w, now_ns)
        self._open.clear()
        self.windows = [
            msgspec.structs.replace(w, label=lb)
            if (lb := self._label(w.mirror_gap, w.end_ns - w.start_ns)) != w.label
            else w
            for w in self.windows
        ]
        self.windows.sort(key=lambda w: (-w.best_edge, w.start_ns))
        return self.windows


def opportunities_frame(opps: Iterable[Opportunity]) -> pl.DataFrame:
    """Opportunities as a polars frame (money columns are int micros; leg columns are lists)."""
    import polars as pl

    rows = [msgspec.structs.asdict(o) for o in opps]
    schema = pl.Schema(
        {
            "group": pl.String(),
            "kind": pl.String(),
            "label": pl.String(),
            "side": pl.String(),
            "size": pl.Int64(),
            "cost": pl.Int64(),
            "fees": pl.Int64(),
            "edge": pl.Int64(),
            "edge_per_set": pl.Int64(),
            "tokens": pl.List(pl.String()),
            "vwaps": pl.List(pl.Int64()),
            "worst_prices": pl.List(pl.Int64()),
            "max_size": pl.Int64(),
            "detected_ns": pl.Int64(),
        }
    )
    return pl.DataFrame(rows, schema=schema)


def windows_frame(windows: Iterable[DepthWindow]) -> pl.DataFrame:
    """Depth windows as a polars frame with ``duration_ns`` and ``duration_ms`` columns."""
    import polars as pl

    rows = [{**msgspec.structs.asdict(w), "duration_ns": w.duration_ns} for w in windows]
    schema = pl.Schema(
        {
            "group": pl.String(),
            "kind": pl.String(),
            "label": pl.String(),
            "side": pl.String(),
            "size": pl.Int64(),
            "start_ns": pl.Int64(),
            "end_ns": pl.Int64(),
            "best_edge": pl.Int64(),
            "best_edge_per_set": pl.Int64(),
            "updates": pl.Int64(),
            "mirror_gap": pl.Int64(),
            "duration_ns": pl.Int64(),
        }
    )
    df = pl.DataFrame(rows, schema=schema)
    return df.with_columns((pl.col("duration_ns") / 1e6).alias("duration_ms"))

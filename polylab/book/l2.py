"""One token's full-depth L2 book in integer ticks and size micros.

Storage is a tick array per side (``list[int]`` of size micros indexed by price tick, length
``n + 1`` where ``n`` ticks make $1): a level update is one list store and best bid/ask are
kept current in O(1) (a scan only when the best level empties). Deep walks (VWAP) use a sorted
``Ladder`` built lazily from the array and cached until the side changes.

Empty sides follow the venue's convention when formatted: best bid "0", best ask "1"; internally
``best_bid == -1`` / ``best_ask == n + 1``.
"""

from __future__ import annotations

from itertools import compress

from polylab.book.ladder import Ladder
from polylab.money import MICROS, MoneyError, TickSize

__all__ = ["L2Book"]


class L2Book:
    """Bids and asks of one outcome token.

    Attributes are public for the hot path: ``bids``/``asks`` (size micros by tick),
    ``best_bid``/``best_ask`` (ticks), ``bid_px``/``ask_px`` (the same as price micros, 0 / $1
    when a side is empty), ``tick`` (the grid), ``updated_ns`` (local receive time of
    the last change, ns), ``exchange_ms`` (venue timestamp of the last change, ms).
    """

    __slots__ = (
        "_ask_ladder",
        "_ask_probe",
        "_ask_ver",
        "_bid_ladder",
        "_bid_ver",
        "_tm",
        "ask_px",
        "asks",
        "asset_id",
        "best_ask",
        "best_bid",
        "bid_px",
        "bids",
        "exchange_ms",
        "hash",
        "market",
        "n",
        "n_asks",
        "n_bids",
        "needs_snapshot",
        "tick",
        "updated_ns",
    )

    def __init__(self, asset_id: str, tick: TickSize, market: str = "") -> None:
        self.asset_id = asset_id
        self.market = market
        self.hash = ""
        self.updated_ns = 0
        self.exchange_ms = 0
        self.needs_snapshot = False
        self._bid_ver = 0
        self._ask_ver = 0
        self._bid_ladder: Ladder | None = None
        self._ask_ladder: Ladder | None = None
        self._ask_probe = -1  # ask version last looked at without a ladder (cached_ask_ladder)
        self._reset(tick)

    def _reset(self, tick: TickSize) -> None:
        self.tick = tick
        self.n = n = tick.n
        self.bids: list[int] = [0] * (n + 1)
        self.asks: list[int] = [0] * (n + 1)
        self._tm = tick.micros
        self.best_bid = -1
        self.best_ask = n + 1
        self.bid_px = 0
        self.ask_px = MICROS
        self.n_bids = 0
        self.n_asks = 0
        self._bid_ver += 1
        self._ask_ver += 1

    # -- updates -------------------------------------------------------------------------------
    def set_bid(self, t: int, size: int) -> None:
        """Set the bid level at tick ``t`` to ``size`` micros (absolute; 0 deletes)."""
        bids = self.bids
        old = bids[t]
        bids[t] = size
        self._bid_ver += 1
        if size:
            if not old:
                self.n_bids += 1
            if t > self.best_bid:
                self.best_bid = t
                self.bid_px = t * self._tm
        elif old:
            self.n_bids -= 1
            if t == self.best_bid:
                if not self.n_bids:
                    self.best_bid = -1
                    self.bid_px = 0
                else:
                    t -= 1
                    while not bids[t]:
                        t -= 1
                    self.best_bid = t
                    self.bid_px = t * self._tm

    def set_ask(self, t: int, size: int) -> None:
        """Set the ask level at tick ``t`` to ``size`` micros (absolute; 0 deletes)."""
        asks = self.asks
        old = asks[t]
        asks[t] = size
        self._ask_ver += 1
        if size:
            if not old:
                self.n_asks += 1
            if t < self.best_ask:
                self.best_ask = t
                self.ask_px = t * self._tm
        elif old:
            self.n_asks -= 1
            if t == self.best_ask:
                if not self.n_asks:
                    self.best_ask = self.n + 1
                    self.ask_px = MICROS
                else:
                    t += 1
                    while not asks[t]:
                        t += 1
                    self.best_ask = t
                    self.ask_px = t * self._tm

    def load(self, bids: list[tuple[int, int]], asks: list[tuple[int, int]]) -> None:
        """Replace the whole book with ``(tick, size micros)`` levels (a snapshot)."""
        self._reset(self.tick)
        for t, s in bids:
            if s:
                self.set_bid(t, s)
        for t, s in asks:
            if s:
                self.set_ask(t, s)
        self.needs_snapshot = False

    def replace(
        self, bids: list[int], asks: list[int], bid_hint: int = -1, ask_hint: int = -1
    ) -> None:
        """Install whole tick arrays (length ``n + 1``, size micros by tick) from a snapshot.

        The fast path for ``book`` events: no per-level method calls. ``bid_hint`` /
        ``ask_hint``: the tick of the last level listed per side (the venue lists best-last);
        checked, and used as the best level when nothing better exists (C-level checks).
        """
        n = self.n
        bb, nb = -1, 0
        if 0 <= bid_hint <= n and bids[bid_hint] and not any(bids[bid_hint + 1 :]):
            bb = bid_hint
        else:
            for t in range(n, -1, -1):
                if bids[t]:
                    bb = t
                    break
        if bb >= 0:
            nb = n + 1 - bids.count(0)
        ba, na = n + 1, 0
        if 0 <= ask_hint <= n and asks[ask_hint] and not any(asks[:ask_hint]):
            ba = ask_hint
        else:
            for t in range(n + 1):
                if asks[t]:
                    ba = t
                    break
        if ba <= n:
            na = n + 1 - asks.count(0)
        self.bids, self.asks = bids, asks
        self.best_bid, self.best_ask, self.n_bids, self.n_asks = bb, ba, nb, na
        self.bid_px = bb * self._tm if bb >= 0 else 0
        self.ask_px = ba * self._tm if ba <= n else MICROS
        self._bid_ver += 1
        self._ask_ver += 1
        self.needs_snapshot = False

    def regrid(self, tick: TickSize) -> bool:
        """Move to another tick grid, keeping every level that lies on it.

        Returns False (and empties the book, flagging ``needs_snapshot``) when a level falls
        between the new grid's ticks; the next snapshot then restores it.
        """
        if tick == self.tick:
            return True
        old_micros = self.tick.micros
        bid_lv = [(t * old_micros, s) for t, s in enumerate(self.bids) if s]
        ask_lv = [(t * old_micros, s) for t, s in enumerate(self.asks) if s]
        self._reset(tick)
        try:
            self.load(
                [(tick.micros_to_ticks(p), s) for p, s in bid_lv],
                [(tick.micros_to_ticks(p), s) for p, s in ask_lv],
            )
        except MoneyError:
            self._reset(tick)
            self.needs_snapshot = True
            return False
        return True

    # -- reads ---------------------------------------------------------------------------------
    def best_bid_micros(self) -> int:
        """Best bid in price micros; 0 when there are no bids (the venue's "0")."""
        return self.bid_px

    def best_ask_micros(self) -> int:
        """Best ask in price micros; $1 when there are no asks (the venue's "1")."""
        return self.ask_px

    def crossed(self) -> bool:
        """Best bid ≥ best ask: the book cannot be right (missed update or stale side)."""
        return self.best_bid >= 0 and self.best_ask <= self.n and self.best_bid >= self.best_ask

    def age_ns(self, now_ns: int) -> int:
        """Time since the last change reached us, ns."""
        return now_ns - self.updated_ns

    def is_stale(self, now_ns: int, max_age_ns: int) -> bool:
        """True when nothing changed for longer than ``max_age_ns`` (or a snapshot is owed)."""
        return self.needs_snapshot or now_ns - self.updated_ns > max_age_ns

    def bid_levels(self) -> list[tuple[int, int]]:
        """Bids as ``(tick, size micros)``, best first."""
        b = self.bids
        return [(t, b[t]) for t in range(self.best_bid, -1, -1) if b[t]]

    def ask_levels(self) -> list[tuple[int, int]]:
        """Asks as ``(tick, size micros)``, best first."""
        a = self.asks
        return [(t, a[t]) for t in range(self.best_ask, self.n + 1) if a[t]]

    def ask_ladder(self) -> Ladder:
        """Sorted, cumulated asks for buying (cached until the ask side changes)."""
        lad = self._ask_ladder
        if lad is None or lad.version != self._ask_ver:
            lo, hi = self.best_ask, self.n + 1
            if lo < hi:
                seg = self.asks[lo:hi]
                ticks = list(compress(range(lo, hi), seg))
                sizes = list(filter(None, seg))
            else:
                ticks, sizes = [], []
            lad = Ladder.from_arrays(ticks, sizes, self.tick.micros, self._ask_ver)
            self._ask_ladder = lad
        return lad

    def cached_ask_ladder(self) -> Ladder | None:
        """The ask ladder when it is worth having, else None: the cached ladder while the ask
        side is unchanged; built on the second query of one state; None on the first, when a
        direct walk of the tick array is cheaper than building (most states are read once)."""
        lad = self._ask_ladder
        ver = self._ask_ver
        if lad is not None and lad.version == ver:
            return lad
        if self._ask_probe != ver:
            self._ask_probe = ver
            return None
        return self.ask_ladder()

    def bid_ladder(self) -> Ladder:
        """Sorted, cumulated bids for selling (cached until the bid side changes)."""
        lad = self._bid_ladder
        if lad is None or lad.version != self._bid_ver:
            hi = self.best_bid
            if hi >= 0:
                seg = self.bids[hi::-1]
                ticks = list(compress(range(hi, -1, -1), seg))
                sizes = list(filter(None, seg))
            else:
                ticks, sizes = [], []
            lad = Ladder.from_arrays(ticks, sizes, self.tick.micros, self._bid_ver)
            self._bid_ladder = lad
        return lad

    def depth_micros(self, side: str) -> int:
        """Total resting size on ``"bids"`` or ``"asks"``, micros."""
        return sum(self.bids if side == "bids" else self.asks)

    def __repr__(self) -> str:
        return (
            f"L2Book({self.asset_id[:10]}…, tick={self.tick.text}, "
            f"bid={self.tick.to_str(max(self.best_bid, 0))}x{self.n_bids}, "
            f"ask={self.tick.to_str(min(self.best_ask, self.n))}x{self.n_asks})"
        )

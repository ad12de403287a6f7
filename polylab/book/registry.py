"""Books by token id, driven by market-channel events; optional self-check against the venue.

``BookRegistry.apply(event, recv_ns)`` is the feed → book step of the engine and of replay.
With ``verify=True`` every current-schema ``price_change`` entry's stated ``best_bid``/``best_ask``
is compared with the rebuilt book right after that entry is applied; ``best_bid_ask`` hints are
held and compared after the ``price_change`` with the same timestamp (they arrive before it).

Bad levels (off-grid or non-numeric prices, unknown sides) are counted in ``stats.malformed``
and skipped; a price on a finer grid than the book's moves the book to that grid.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from polylab.book.l2 import L2Book
from polylab.book.stats import BookStats, Mismatch
from polylab.feed.wire import (
    BestBidAsk,
    Book,
    LastTradePrice,
    LeanPriceChange,
    MarketResolved,
    NewMarket,
    PriceChange,
    PriceChangeEntry,
    TickSizeChange,
)
from polylab.fees import FeeModel
from polylab.market import Market, MarketCatalog
from polylab.money import MICROS, MoneyError, TickSize, _micros_cache, parse_micros, tick_size

__all__ = ["BookRegistry", "BookStats", "Mismatch", "mirror_mismatches"]

_MAX_KEPT_MISMATCHES = 100


def _grid_for(price_micros: int) -> TickSize:
    for text in ("0.1", "0.01", "0.001", "0.0001"):
        g = tick_size(text)
        if price_micros % g.micros == 0:
            return g
    raise MoneyError(f"price {price_micros} micros is finer than any venue tick size")


def _infer_tick(ev: Book) -> TickSize:
    micros = [parse_micros(lv.price) for lv in (*ev.bids, *ev.asks)]
    grid = tick_size("0.01")
    for m in micros:
        if m % grid.micros:
            grid = _grid_for(m) if _grid_for(m).micros < grid.micros else grid
    return grid


class BookRegistry:
    """All books of a feed, the catalog they belong to, and feed-level facts (trades, results)."""

    def __init__(self, catalog: MarketCatalog | None = None, *, verify: bool = False) -> None:
        self.books: dict[str, L2Book] = {}
        self.catalog = catalog if catalog is not None else MarketCatalog()
        self.verify = verify
        self.stats = BookStats()
        self.mismatch_log: list[Mismatch] = []
        self.last_trade: dict[str, LastTradePrice] = {}
        self.resolved: dict[str, str] = {}
        self._hints: dict[str, tuple[str, int, int]] = {}
        self.before_apply: Callable[[int], None] | None = None
        """Called with ``recv_ns`` before ``apply`` applies an event (the paper runner books
        the orders due by then). A hook, not a subclass: this class is compiled (native.py)."""
        self._handlers: dict[type, Callable[[Any, int], None]] = {
            Book: self._on_book,
            PriceChange: self._on_price_change,
            LeanPriceChange: self._on_lean_price_change,
            TickSizeChange: self._on_tick_change,
            LastTradePrice: self._on_last_trade,
            BestBidAsk: self._on_best_bid_ask,
            NewMarket: self._on_new_market,
            MarketResolved: self._on_resolved,
        }

    # -- entry point ---------------------------------------------------------------------------
    @property
    def handlers(self) -> dict[type, Callable[[Any, int], None]]:
        """Event type → handler, for loops that dispatch themselves (replay, engine)."""
        return self._handlers

    def apply(self, ev: object, recv_ns: int) -> None:
        """Apply one decoded market event received at ``recv_ns`` (ns since the epoch)."""
        hook = self.before_apply
        if hook is not None:
            hook(recv_ns)
        self.stats.events += 1
        self._handlers[type(ev)](ev, recv_ns)

    def book(self, asset_id: str) -> L2Book | None:
        """The book of ``asset_id`` if one was seen."""
        return self.books.get(asset_id)

    def _new_book(self, asset_id: str, market: str, tick: TickSize | None) -> L2Book:
        if tick is None:
            m = self.catalog.by_token.get(asset_id)
            tick = m.tick if m is not None else tick_size("0.01")
        b = L2Book(asset_id, tick, market)
        self.books[asset_id] = b
        self.catalog.observe(market, asset_id)
        return b

    # -- handlers ------------------------------------------------------------------------------
    def _on_book(self, ev: Book, recv_ns: int) -> None:
        b = self.books.get(ev.asset_id)
        if (
            b is None
            or (ev.tick_size and ev.tick_size != b.tick.text)
            or not self._load_fast(b, ev)
        ):
            self._load_slow(b, ev)
        if b is None:
            b = self.books.get(ev.asset_id)
            if b is None:
                return
        b.updated_ns = recv_ns
        try:
            b.exchange_ms = int(ev.timestamp or 0)
        except ValueError:  # not an integer: the book stands, its venue time is unknown
            b.exchange_ms = 0
        b.hash = ev.hash

    def _load_fast(self, b: L2Book, ev: Book) -> bool:
        """Snapshot straight into fresh tick arrays; False when a level needs the slow path."""
        tick = b.tick
        cache = tick._cache
        size = b.n + 1
        bids = [0] * size
        asks = [0] * size
        tb = ta = -1
        t: int | None = -1
        try:
            for lv in ev.bids:
                t = cache.get(lv.price)
                s = _micros_cache.get(lv.size)
                if t is None or s is None:
                    t, s = tick.to_ticks(lv.price), parse_micros(lv.size)
                bids[t] = s
            tb = t if t is not None else -1
            for lv in ev.asks:
                t = cache.get(lv.price)
                s = _micros_cache.get(lv.size)
                if t is None or s is None:
                    t, s = tick.to_ticks(lv.price), parse_micros(lv.size)
                asks[t] = s
            ta = t if ev.asks and t is not None else -1
        except (MoneyError, IndexError, OverflowError):  # OverflowError: compiled list index
            return False
        b.replace(bids, asks, tb, ta)
        self.stats.snapshots += 1
        return True

    def _load_slow(self, b: L2Book | None, ev: Book) -> None:
        st = self.stats
        try:
            if ev.tick_size:
                tick = tick_size(ev.tick_size)
            elif b is not None:
                tick = b.tick
            else:
                tick = _infer_tick(ev)
            if b is None:
                b = self._new_book(ev.asset_id, ev.market, tick)
            bids = [(parse_micros(lv.price), parse_micros(lv.size)) for lv in ev.bids]
            asks = [(parse_micros(lv.price), parse_micros(lv.size)) for lv in ev.asks]
            for p, _ in (*bids, *asks):
                if p > MICROS:  # checked, not left to the list index (compiled: OverflowError)
                    raise MoneyError(f"price above 1: {p} micros")
                if p % tick.micros:
                    tick = _grid_for(p) if _grid_for(p).micros < tick.micros else tick
            if tick != b.tick:
                b.regrid(tick)
            b.load(
                [(p // tick.micros, s) for p, s in bids], [(p // tick.micros, s) for p, s in asks]
            )
        except (MoneyError, IndexError):
            st.malformed += 1
            if b is not None:
                b.needs_snapshot = True
            return
        st.snapshots += 1

    def _legacy(self, ev: PriceChange) -> list[PriceChangeEntry]:
        aid = ev.asset_id or ""
        if ev.changes is not None:
            return [
                PriceChangeEntry(aid, c.price, c.size, c.side, ev.hash or "") for c in ev.changes
            ]
        if ev.price is not None and ev.size is not None and ev.side is not None:
            return [PriceChangeEntry(aid, ev.price, ev.size, ev.side, ev.hash or "")]
        self.stats.malformed += 1
        return []

    def _on_price_change(self, ev: PriceChange, recv_ns: int) -> None:
        entries = ev.price_changes
        if entries is None:
            entries = self._legacy(ev)
        books = self.books
        st = self.stats
        verify = self.verify
        mget = _micros_cache.get
        bget = books.get
        n = 0
        for e in entries:
            b = bget(e.asset_id)
            if b is None:
                b = self._new_book(e.asset_id, ev.market, None)
            t = b.tick._cache.get(e.price)
            s = mget(e.size)
            if t is None or s is None:
                try:
                    t = b.tick.to_ticks(e.price)
                    s = parse_micros(e.size)
                except MoneyError:
                    t, s = self._offgrid(b, e)
                    if t < 0:
                        continue
            side = e.side
            if side == "BUY":
                b.set_bid(t, s)
            elif side == "SELL":
                b.set_ask(t, s)
            else:
                st.malformed += 1
                continue
            b.updated_ns = recv_ns
            b.hash = e.hash
            n += 1
            if verify and e.best_bid and e.best_ask:
                self._check(b, e, ev.timestamp)
        st.level_updates += n
        if verify and self._hints:
            self._check_hints(entries, ev.timestamp)

    def _on_lean_price_change(self, ev: LeanPriceChange, recv_ns: int) -> None:
        """``_on_price_change`` without hashes and checks (the hot path when not verifying).
        Plain calls, no bound-method locals: compiled (native.py), each is a direct C call."""
        books = self.books
        n = 0
        for e in ev.price_changes:
            b = books.get(e.asset_id)
            if b is None:
                b = self._new_book(e.asset_id, ev.market, None)
            t = b.tick._cache.get(e.price)
            s = _micros_cache.get(e.size)
            if t is None or s is None:
                try:
                    t = b.tick.to_ticks(e.price)
                    s = parse_micros(e.size)
                except MoneyError:
                    t, s = self._offgrid(b, e)  # type: ignore[arg-type]
                    if t < 0:
                        continue
            side = e.side
            if side == "BUY":
                b.set_bid(t, s)
            elif side == "SELL":
                b.set_ask(t, s)
            else:
                self.stats.malformed += 1
                continue
            b.updated_ns = recv_ns
            n += 1
        self.stats.level_updates += n

    def _offgrid(self, b: L2Book, e: PriceChangeEntry) -> tuple[int, int]:
        try:
            p = parse_micros(e.price)
            s = parse_micros(e.size)
            if p > MICROS:
                raise MoneyError(f"price above 1: {e.price!r}")
            g = _grid_for(p)
        except MoneyError:
            self.stats.malformed += 1
            return -1, 0
        if g.micros < b.tick.micros:
            b.regrid(g)
            self.stats.regrids += 1
        return p // b.tick.micros, s

    def _check(self, b: L2Book, e: PriceChangeEntry, ts: object) -> None:
        st = self.stats
        st.checked += 1
        try:
            sb = parse_micros(e.best_bid)
            sa = parse_micros(e.best_ask)
        except MoneyError:
            st.malformed += 1
            return
        bb, ba = b.best_bid_micros(), b.best_ask_micros()
        if sb != bb or sa != ba:
            st.mismatches += 1
            if len(self.mismatch_log) < _MAX_KEPT_MISMATCHES:
                self.mismatch_log.append(Mismatch(e.asset_id, str(ts), sb, sa, bb, ba))

    def _check_hints(self, entries: list[PriceChangeEntry], ts: object) -> None:
        st = self.stats
        for aid in {e.asset_id for e in entries}:
            h = self._hints.get(aid)
            if h is None or h[0] != str(ts):
                continue
            del self._hints[aid]
            b = self.books[aid]
            st.hints_checked += 1
            if (h[1], h[2]) != (b.best_bid_micros(), b.best_ask_micros()):
                st.hint_mismatches += 1

    def _on_tick_change(self, ev: TickSizeChange, recv_ns: int) -> None:
        try:
            tick = tick_size(ev.new_tick_size)
        except MoneyError:
            self.stats.malformed += 1
            return
        b = self.books.get(ev.asset_id)
        if b is None:
            b = self._new_book(ev.asset_id, ev.market, tick)
        else:
            b.regrid(tick)
        b.updated_ns = recv_ns
        self.stats.tick_changes += 1

    def _on_last_trade(self, ev: LastTradePrice, recv_ns: int) -> None:
        self.last_trade[ev.asset_id] = ev
        self.stats.trades += 1

    def _on_best_bid_ask(self, ev: BestBidAsk, recv_ns: int) -> None:
        if not self.verify:
            return
        try:
            self._hints[ev.asset_id] = (
                str(ev.timestamp),
                parse_micros(ev.best_bid),
                parse_micros(ev.best_ask),
            )
        except MoneyError:
            self.stats.malformed += 1

    def _on_new_market(self, ev: NewMarket, recv_ns: int) -> None:
        self.stats.new_markets += 1
        tokens = tuple(ev.assets_ids or ev.clob_token_ids)
        if not tokens:
            return
        fee = None
        if ev.fees_enabled and ev.fee_schedule is not None:
            try:
                fee = FeeModel.from_rate(ev.fee_schedule.rate, ev.fee_schedule.exponent)
            except (MoneyError, ValueError):
                self.stats.malformed += 1
        try:  # a market with an unusable grid is malformed, not a crash
            market = Market(
                condition_id=ev.market or ev.condition_id,
                token_ids=tokens,
                outcomes=tuple(ev.outcomes) or ("Yes", "No"),
                question=ev.question,
                slug=ev.slug,
                tick_size=ev.order_price_min_tick_size or "0.01",
                event_id=ev.event_message.id if ev.event_message is not None else "",
                fee=fee,
                game_start=ev.game_start_time,
            )
        except (MoneyError, ValueError):
            self.stats.malformed += 1
            return
        self.catalog.add(market)

    def _on_resolved(self, ev: MarketResolved, recv_ns: int) -> None:
        self.resolved[ev.market] = ev.winning_asset_id
        self.stats.resolutions += 1


def mirror_mismatches(yes: L2Book, no: L2Book) -> int:
    """Levels where a binary pair's books fail to mirror (YES bid at p ≠ NO ask at 1−p, and
    YES ask at p ≠ NO bid at 1−p). 0 means consistent; books on different grids are compared on
    the finer one."""
    g = yes.tick if yes.tick.micros <= no.tick.micros else no.tick

    def lv(levels: list[tuple[int, int]], b: L2Book) -> dict[int, int]:
        return {t * b.tick.micros // g.micros: s for t, s in levels}

    yb, ya = lv(yes.bid_levels(), yes), lv(yes.ask_levels(), yes)
    nb, na = lv(no.bid_levels(), no), lv(no.ask_levels(), no)
    n = g.n
    bad = 0
    for t in set(yb) | {n - u for u in na}:
        bad += yb.get(t, 0) != na.get(n - t, 0)
    for t in set(ya) | {n - u for u in nb}:
        bad += ya.get(t, 0) != nb.get(n - t, 0)
    return bad

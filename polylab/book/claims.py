"""What polylab's own orders in flight have claimed from the books, and the books net of it.

Strategies read the venue's books, and the venue's books do not show what polylab itself has
just taken until the venue reports it (live) or never (paper). Without a shared view, two
strategies seeing the same edge both send orders for the same shares: the second one's legs
find nothing at their limit and a set ends up unwound at a loss.

``ClaimLedger`` keeps, per approved intent, what each leg will take if it executes at its
limit: per token, book side and price level, in share micros (walking the *net* book, so two
claims never count the same shares). ``books(raw)`` gives strategies the books net of every
outstanding claim: a claimed token is served as an ``L2Book`` copy with the claimed sizes
subtracted at the claimed levels (every other token is the venue's own book, so the hot path
pays nothing while nothing is claimed; copies are rebuilt only when that token's book
changes). Every reader (``analysis.vwap``, ``analysis.set_cost``, strategies) reads through
it unchanged.

A claim is released when
* the book shows it: a later update leaves the level at or below what the net view showed
  after the claim (``floor``), i.e. the venue has removed the claimed size;
* the intent ends (``end``): legs that filled nothing release at once; a filled leg's claim,
  capped at the filled size, is kept until that side of the book next changes after the
  result (the venue's update carrying the fill; it is also when the paper trader forgets the
  shares it took, so paper and the strategies' view agree), or ``hold_ns`` after the result;
* it is older than ``ttl_ns`` (a safety net: an intent always ends in one result).

Units: prices in price micros, sizes in share micros, times in ns.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

import msgspec

from polylab.book.l2 import L2Book

if TYPE_CHECKING:
    from polylab.domain import Leg, OrderReport

__all__ = ["Claim", "ClaimLedger", "ClaimStats"]


class ClaimStats(msgspec.Struct):
    """Counters: levels claimed, share micros claimed, and claims released by cause."""

    claims: int = 0
    claimed_micros: int = 0
    by_book: int = 0
    by_result: int = 0
    after_fill: int = 0
    expired: int = 0


class Claim:
    """Shares one leg of one intent expects to take at one price level.

    ``buy``: takes asks (a BUY) or bids (a SELL); ``price``: the level, price micros;
    ``amount``: share micros still claimed; ``floor``: the level's size in the net view after
    the claim (the raw book at or below it means the venue has removed the claimed shares);
    ``ended``: the intent has its result; ``ver``: the side's book version at the result;
    ``expires``: ns after which the claim is dropped whatever happens.
    """

    __slots__ = ("amount", "buy", "ended", "expires", "floor", "intent_id", "leg", "price", "ver")

    def __init__(
        self, intent_id: str, leg: int, buy: bool, price: int, amount: int, floor: int, exp: int
    ) -> None:
        self.intent_id, self.leg, self.buy, self.price = intent_id, leg, buy, price
        self.amount, self.floor, self.expires = amount, floor, exp
        self.ended = False
        self.ver = 0

    def __repr__(self) -> str:
        side = "asks" if self.buy else "bids"
        return f"Claim({self.intent_id}#{self.leg} {side}@{self.price} ×{self.amount})"


def _side_ver(b: L2Book, buy: bool) -> int:
    return b._ask_ver if buy else b._bid_ver


def _level(b: L2Book, buy: bool, price: int) -> int:
    """Raw size at ``price`` on the side a claim takes from (0 when off the book's grid)."""
    tm = b.tick.micros
    if price % tm:
        return 0
    t = price // tm
    if not 0 <= t <= b.n:
        return 0
    return b.asks[t] if buy else b.bids[t]


class ClaimLedger:
    """Outstanding claims by intent and by token, and the netted views of claimed tokens."""

    def __init__(self, *, hold_ns: int = 1_000_000_000, ttl_ns: int = 30_000_000_000) -> None:
        self.hold_ns = hold_ns
        self.ttl_ns = ttl_ns
        self.stats = ClaimStats()
        self._by_intent: dict[str, list[tuple[str, Claim]]] = {}
        self._by_token: dict[str, list[Claim]] = {}
        self._views: dict[str, L2Book] = {}
        self._seen: dict[str, tuple[int, int]] = {}
        self._overlay: dict[str, L2Book] | None = None

    # -- reads -----------------------------------------------------------------------------------
    @property
    def active(self) -> bool:
        """True while any claim is outstanding."""
        return bool(self._by_token)

    def claims(self, token_id: str) -> list[Claim]:
        """Outstanding claims on ``token_id`` (oldest first)."""
        return list(self._by_token.get(token_id, ()))

    def claimed(self, token_id: str, buy: bool, price: int) -> int:
        """Share micros claimed at one level (``buy``: on the asks)."""
        return sum(
            c.amount for c in self._by_token.get(token_id, ()) if c.buy == buy and c.price == price
        )

    def books(self, raw: dict[str, L2Book]) -> dict[str, L2Book]:
        """The books strategies see: ``raw`` itself while nothing is claimed, else a dict with
        every claimed token's netted view in place of its raw book."""
        if not self._by_token:
            return raw
        ov = self._overlay
        if ov is None or len(ov) != len(raw):
            ov = dict(raw)
            ov.update(self._views)
            self._overlay = ov
        return ov

    # -- writes ----------------------------------------------------------------------------------
    def claim(
        self, intent_id: str, legs: Iterable[Leg], raw: dict[str, L2Book], now_ns: int
    ) -> int:
        """Claim what every leg would take at its limit, walking the current net view; returns
        the share micros claimed. Legs on unknown tokens or with bad sides/sizes claim nothing."""
        made: list[tuple[str, Claim]] = []
        if self._by_token:
            self.sync(raw, now_ns)  # walk views that reflect the books as they are now
        view = self.books(raw)
        exp = now_ns + self.ttl_ns
        for i, leg in enumerate(legs):
            b = view.get(leg.token_id)
            if b is None or leg.size <= 0 or leg.side not in ("BUY", "SELL"):
                continue
            buy = leg.side == "BUY"
            tm = b.tick.micros
            left: int = leg.size
            if buy:
                arr, t, step, end = b.asks, b.best_ask, 1, min(b.n, leg.price // tm) + 1
            else:
                arr, t, step, end = b.bids, b.best_bid, -1, max(0, -(-leg.price // tm)) - 1
            while left and (t < end if buy else t > end):
                s = arr[t]
                if s:
                    take = s if s < left else left
                    made.append(
                        (leg.token_id, Claim(intent_id, i, buy, t * tm, take, s - take, exp))
                    )
                    left -= take
                t += step
        if not made:
            return 0
        self._by_intent.setdefault(intent_id, []).extend(made)
        touched = set()
        total = 0
        for tok, c in made:
            self._by_token.setdefault(tok, []).append(c)
            touched.add(tok)
            total += c.amount
        self.stats.claims += len(made)
        self.stats.claimed_micros += total
        for tok in touched:
            self._rebuild(tok, raw)
        return total

    def end(
        self, intent_id: str, reports: Iterable[OrderReport], raw: dict[str, L2Book], now_ns: int
    ) -> None:
        """The intent has its result: release what its legs did not take; keep what they did
        (capped at the filled size, best level first) until the book shows it."""
        made = self._by_intent.pop(intent_id, None)
        if not made:
            return
        filled: dict[int, int] = {}
        for r in reports:
            filled[r.leg] = filled.get(r.leg, 0) + max(r.filled, 0)
        drop: list[tuple[str, Claim]] = []
        touched: set[str] = set()
        for tok, c in made:
            left = filled.get(c.leg, 0)
            if left <= 0:
                drop.append((tok, c))
                continue
            c.amount = min(c.amount, left)
            filled[c.leg] = left - c.amount
            c.ended = True
            b = raw.get(tok)
            c.ver = _side_ver(b, c.buy) if b is not None else -1
            c.expires = min(c.expires, now_ns + self.hold_ns)
        for tok, c in drop:
            self._by_token[tok].remove(c)
            self.stats.by_result += 1
            touched.add(tok)
        for tok in touched:
            self._settle_token(tok, raw)

    def sync(self, raw: dict[str, L2Book], now_ns: int) -> None:
        """Release the claims the books now reflect (or that waited too long) and rebuild the
        views of tokens whose raw book changed. Cheap when nothing changed: one version
        comparison per claimed token."""
        st = self.stats
        for tok in list(self._by_token):
            b = raw.get(tok)
            cs = self._by_token[tok]
            if b is None:
                continue
            changed = self._seen.get(tok) != (b._bid_ver, b._ask_ver)
            keep: list[Claim] = []
            for c in cs:
                if now_ns >= c.expires:
                    st.expired += 1
                elif changed and c.ended and _side_ver(b, c.buy) != c.ver:
                    st.after_fill += 1
                elif changed and _level(b, c.buy, c.price) <= c.floor:
                    st.by_book += 1
                else:
                    keep.append(c)
                    continue
                self._forget(c)
            if len(keep) != len(cs):
                self._by_token[tok] = keep
                self._settle_token(tok, raw)
            elif changed:
                self._rebuild(tok, raw)

    # -- internals -------------------------------------------------------------------------------
    def _forget(self, c: Claim) -> None:
        made = self._by_intent.get(c.intent_id)
        if made is None:
            return
        made[:] = [m for m in made if m[1] is not c]
        if not made:
            del self._by_intent[c.intent_id]

    def _settle_token(self, tok: str, raw: dict[str, L2Book]) -> None:
        """After claims on ``tok`` were released: drop its view if none remain, else rebuild."""
        if self._by_token.get(tok):
            self._rebuild(tok, raw)
            return
        self._by_token.pop(tok, None)
        self._views.pop(tok, None)
        self._seen.pop(tok, None)
        if not self._by_token:
            self._overlay = None
        elif self._overlay is not None and tok in raw:
            self._overlay[tok] = raw[tok]

    def _rebuild(self, tok: str, raw: dict[str, L2Book]) -> None:
        """The netted copy of ``tok``'s book: raw sizes minus the claims at claimed levels."""
        rb = raw.get(tok)
        if rb is None:
            return
        v = self._views.get(tok)
        if v is None or v.tick != rb.tick:
            v = L2Book(rb.asset_id, rb.tick, rb.market)
        # the raw state (no scans: best levels and counts come along) with new versions; a side
        # is copied only if claims change it, else shared (read-only, and the view is rebuilt
        # before strategies read it again whenever the raw book changes)
        cs = self._by_token.get(tok, ())
        asks_claimed = any(c.buy for c in cs)
        bids_claimed = any(not c.buy for c in cs)
        v.bids = rb.bids[:] if bids_claimed else rb.bids
        v.asks = rb.asks[:] if asks_claimed else rb.asks
        v.best_bid, v.best_ask, v.bid_px, v.ask_px = rb.best_bid, rb.best_ask, rb.bid_px, rb.ask_px
        v.n_bids, v.n_asks = rb.n_bids, rb.n_asks
        v._bid_ver += 1
        v._ask_ver += 1
        tm = rb.tick.micros
        for c in cs:
            if c.price % tm:
                continue
            t = c.price // tm
            if c.buy:
                q = v.asks[t]
                if q:
                    v.set_ask(t, q - c.amount if q > c.amount else 0)
            else:
                q = v.bids[t]
                if q:
                    v.set_bid(t, q - c.amount if q > c.amount else 0)
        v.updated_ns, v.exchange_ms, v.hash = rb.updated_ns, rb.exchange_ms, rb.hash
        v.needs_snapshot = rb.needs_snapshot
        self._views[tok] = v
        self._seen[tok] = (rb._bid_ver, rb._ask_ver)
        if self._overlay is not None:
            self._overlay[tok] = v

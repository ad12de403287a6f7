"""Lots and trades of the portfolio, and which lots a closing order or a merge takes.

A **lot** is shares of one token opened by one intent of one strategy, with what they cost
(fees in). Closing shares picks lots by owner before age, so PnL lands on the trade that
really made it:

1. lots the closing intent opened itself (an executor's unwind sells back its own legs),
2. then lots of the same strategy, oldest first,
3. then any other lot, oldest first (a strategy selling shares it never bought).

Merges of complete sets pair lots the same way: one intent's own complete sets first, then
sets within one strategy, then whatever is left, oldest first.

Units: shares in share micros (negative for a short lot), basis and PnL in cash micros, ns.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable

from polylab.risk.records import TradeRecord

__all__ = ["Lot", "Trade", "closing_order", "owner_keys", "pair_sets", "take"]


class Lot:
    """``shares`` (signed) of one token opened by ``intent_id`` of ``strategy``, costing
    ``basis`` (cash micros, fees included; negative for a short lot: what selling brought)."""

    __slots__ = ("basis", "intent_id", "shares", "strategy")

    def __init__(self, intent_id: str, shares: int, basis: int, strategy: str = "") -> None:
        self.intent_id = intent_id
        self.shares = shares
        self.basis = basis
        self.strategy = strategy

    def __repr__(self) -> str:
        return f"Lot({self.strategy}/{self.intent_id}: {self.shares} for {self.basis})"


class Trade:
    """One intent seen as a trade: what it opened, what is still open, what it realized."""

    __slots__ = (
        "closed_ns",
        "fees",
        "fills",
        "first_ns",
        "group_id",
        "intent_id",
        "last_ns",
        "open_shares",
        "opened",
        "realized",
        "strategy",
    )

    def __init__(self, intent_id: str, strategy: str, group_id: str, ts: int) -> None:
        self.intent_id, self.strategy, self.group_id = intent_id, strategy, group_id
        self.first_ns = self.last_ns = ts
        self.opened = self.open_shares = self.realized = self.fees = self.fills = 0
        self.closed_ns = 0

    def record(self) -> TradeRecord:
        """The trade as a frozen row."""
        return TradeRecord(
            intent_id=self.intent_id,
            strategy=self.strategy,
            group_id=self.group_id,
            first_ns=self.first_ns,
            last_ns=self.last_ns,
            opened=self.opened,
            open_shares=self.open_shares,
            realized=self.realized,
            fees=self.fees,
            fills=self.fills,
            closed=self.opened > 0 and self.open_shares == 0,
            closed_ns=self.closed_ns,
        )


def closing_order(lots: Iterable[Lot], intent_id: str, strategy: str, buy: bool) -> list[Lot]:
    """The lots a fill of ``intent_id`` (of ``strategy``) closes, in the order it closes them:
    its own lots, then its strategy's, then the others' (each oldest first). Only lots on the
    other side of the fill qualify (longs for a SELL, shorts for a BUY)."""
    opposite = [lot for lot in lots if lot.shares and (lot.shares > 0) != buy]
    own = [lot for lot in opposite if lot.intent_id == intent_id]
    mine = [lot for lot in opposite if lot.intent_id != intent_id and lot.strategy == strategy]
    rest = [lot for lot in opposite if lot.strategy != strategy]
    return own + mine + rest


def owner_keys() -> tuple[Callable[[Lot], str], ...]:
    """How a merge pairs lots, in order: by intent, by strategy, then all together."""
    return (lambda lot: lot.intent_id, lambda lot: lot.strategy, lambda lot: "")


def take(
    lots: dict[str, deque[Lot]], token_id: str, n: int, owner: Callable[[Lot], str], who: str
) -> list[tuple[str, int, int]]:
    """Remove ``n`` long shares of ``token_id`` from lots with ``owner(lot) == who``, oldest
    first: ``(intent_id, shares, basis)`` pieces (emptied lots leave ``lots``)."""
    pieces: list[tuple[str, int, int]] = []
    queue = lots[token_id]
    for lot in queue:
        if not n:
            break
        if lot.shares <= 0 or owner(lot) != who:
            continue
        close = min(n, lot.shares)
        removed = lot.basis if close == lot.shares else lot.basis * close // lot.shares
        lot.shares -= close
        lot.basis -= removed
        n -= close
        pieces.append((lot.intent_id, close, removed))
    lots[token_id] = deque(lot for lot in queue if lot.shares)
    return pieces


def pair_sets(
    lots: dict[str, deque[Lot]], tokens: tuple[str, ...], n: int
) -> list[tuple[str, int, int, int]]:
    """Take ``n`` complete sets of ``tokens`` out of ``lots`` (one intent's sets first, then
    one strategy's, then any) and split their $1 a set over each batch's pieces in proportion
    to basis: ``(intent_id, shares, basis, payout)`` pieces, payouts summing to ``n``."""
    out: list[tuple[str, int, int, int]] = []
    for owner in owner_keys():
        held: dict[str, list[int]] = {}
        for j, tok in enumerate(tokens):
            for lot in lots.get(tok, ()):
                if lot.shares > 0:
                    held.setdefault(owner(lot), [0] * len(tokens))[j] += lot.shares
        for who, per in held.items():
            k = min(min(per), n)
            if k <= 0:
                continue
            pieces = [p for tok in tokens for p in take(lots, tok, k, owner, who)]
            basis = sum(b for _, _, b in pieces)
            shares_total = sum(s for _, s, _ in pieces)
            given = 0
            for i, (iid, shares, b) in enumerate(pieces):
                if i == len(pieces) - 1:
                    paid = k - given
                elif basis > 0:
                    paid = k * b // basis
                else:
                    paid = k * shares // shares_total
                given += paid
                out.append((iid, shares, b, paid))
            n -= k
            if not n:
                return out
    return out

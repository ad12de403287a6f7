"""Cash, positions and PnL from execution results, in integer micros (no floats).

Accounting (exact, FIFO lots):

* Each token's position is a queue of **lots** (shares, basis) tagged with the intent and the
  strategy that opened them. A BUY of ``s`` shares for ``cost`` plus ``fee`` opens a lot of
  basis ``cost + fee`` (the fee is part of what the shares cost). A SELL closes the intent's
  own lots first (an unwind undoes its own legs), then its strategy's, then others', each
  first in, first out (``risk.lots``); proceeds net of the fee (``cost − fee``) minus the
  basis removed is **realized PnL**, credited to the trades (intents) whose lots it closed, so
  per-strategy realized PnL adds up to the total and lands where it was made. A SELL beyond
  the shares held opens a short lot of negative shares and basis (the venue forbids this; the
  risk gate stops it).
* ``merge_sets`` turns ``n`` complete sets (``n`` shares of every token of a group) into ``n``
  cash micros ($1 per set): the lots' basis leaves, ``n − basis`` is realized. Sets are
  paired within one intent first, then within one strategy, then across.
* ``settle`` pays $1 a share for the winning token and 0 for the others; the basis leaves.
* Invariant, exact at every step: ``cash + Σ basis = starting_cash + realized``.
  ``unrealized`` marks longs to the best bid and shorts to the best ask.

**Win rate.** A *trade* is an intent whose fills opened shares. It is *completed* once every
share it opened has been closed (sold, unwound, merged or settled); its realized PnL is the sum
over those shares of what closing them brought minus what they cost, fees on both sides
included (merge payouts are split across the merged lots in proportion to their basis). An
intent that only closed shares other intents opened is not a trade of its own: its PnL belongs
to those trades. ``win_rate = wins / completed``, wins being completed trades with realized
PnL > 0 (0.0 while none is completed); open trades are not counted.

Thread-safe: one re-entrant lock guards every read and write (the risk gate reads positions
from other threads).
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Mapping
from typing import TYPE_CHECKING

from polylab.money import MICROS, cost_micros
from polylab.risk.lots import Lot, Trade, closing_order, pair_sets
from polylab.risk.payout import pays_one
from polylab.risk.records import (
    Fill,
    MergeRecord,
    PortfolioSnapshot,
    Position,
    PositionMark,
    SettleRecord,
    TradeRecord,
)

if TYPE_CHECKING:
    from polylab.book.l2 import L2Book
    from polylab.domain import ExecutionResult, OrderReport
    from polylab.market import MarketCatalog, OutcomeGroup

__all__ = [
    "DAY_NS",
    "RECOVERED",
    "Fill",
    "MergeRecord",
    "Portfolio",
    "PortfolioError",
    "PortfolioSnapshot",
    "Position",
    "PositionMark",
    "SettleRecord",
    "TradeRecord",
]

DAY_NS = 86_400 * 1_000_000_000
"""One UTC day in ns: daily PnL buckets are ``ts_ns // DAY_NS``."""

RECOVERED = "recovered"
"""Intent and strategy of the lots a restarted runner takes over (``Portfolio.restore``)."""


class PortfolioError(ValueError):
    """A request the portfolio cannot book (e.g. a winner that is not one of the market's)."""


class Portfolio:
    """Cash, FIFO lots per token, realized PnL per trade and per UTC day; all micros."""

    def __init__(self, starting_cash_micros: int) -> None:
        if starting_cash_micros < 0:
            raise PortfolioError(f"starting cash must be >= 0, was {starting_cash_micros}")
        self.lock = threading.RLock()
        self.starting_cash = starting_cash_micros
        self.cash = starting_cash_micros
        self.realized = 0
        self.fees = 0
        self.merges: list[MergeRecord] = []
        self.settlements: list[SettleRecord] = []
        self.history: list[Fill] = []
        self._lots: dict[str, deque[Lot]] = {}
        self._trades: dict[str, Trade] = {}
        self._daily: dict[int, int] = {}
        self._cond_of: dict[str, str] = {}
        self._tokens_of: dict[str, tuple[str, ...]] = {}
        self._last_ns = 0

    # -- reads ---------------------------------------------------------------------------------
    def position(self, token_id: str) -> int:
        """Shares of ``token_id`` held (micros; negative if short)."""
        with self.lock:
            return sum(lot.shares for lot in self._lots.get(token_id, ()))

    def basis(self, token_id: str) -> int:
        """What the shares held of ``token_id`` cost, fees included (micros)."""
        with self.lock:
            return sum(lot.basis for lot in self._lots.get(token_id, ()))

    def positions(self) -> dict[str, Position]:
        """Every non-flat position by token id."""
        with self.lock:
            out: dict[str, Position] = {}
            for tok, lots in self._lots.items():
                sh = sum(lot.shares for lot in lots)
                if sh:
                    b = sum(lot.basis for lot in lots)
                    out[tok] = Position(
                        token_id=tok,
                        condition_id=self._cond_of.get(tok, ""),
                        shares=sh,
                        basis=b,
                        avg_price=b * MICROS // sh,
                    )
            return out

    def exposure(self, token_ids: set[str] | tuple[str, ...] | list[str]) -> int:
        """Most that positions in ``token_ids`` can still lose, micros: a long's basis; a
        short's $1 per share minus what selling it brought."""
        with self.lock:
            total = 0
            for tok in token_ids:
                lots = self._lots.get(tok)
                if not lots:
                    continue
                sh = sum(lot.shares for lot in lots)
                b = sum(lot.basis for lot in lots)
                total += max(b, 0) if sh >= 0 else -sh + b
            return total

    def realized_on_day(self, now_ns: int) -> int:
        """PnL realized during the UTC day containing ``now_ns`` (micros, signed)."""
        with self.lock:
            return self._daily.get(now_ns // DAY_NS, 0)

    def trades(self) -> list[TradeRecord]:
        """Every trade (intent that opened shares), in the order they first filled."""
        with self.lock:
            return [t.record() for t in self._trades.values() if t.opened]

    # -- bookings ------------------------------------------------------------------------------
    def restore(
        self,
        *,
        cash_micros: int,
        positions: Mapping[str, tuple[int, int]],
        realized_today_micros: int,
        now_ns: int,
        catalog: MarketCatalog | None = None,
        owner: str = RECOVERED,
    ) -> None:
        """Start from what a previous run left (restart recovery), before anything is booked.

        ``positions``: token → (shares, basis), micros; each becomes one lot of intent and
        strategy ``owner`` (so later sells close it FIFO and realize against its basis: PnL
        continues). ``realized_today_micros`` is counted as realized on the UTC day of
        ``now_ns`` (the daily loss limit reads ``realized_on_day``). ``starting_cash`` is set
        so that ``cash + Σ basis = starting_cash + realized`` holds exactly. With the
        ``catalog`` the restored tokens' markets are known (so their resolution settles them).
        """
        with self.lock:
            if self.history or self.merges or self.settlements:
                raise PortfolioError("restore() must come before any booking")
            for tok, (shares, basis) in positions.items():
                if shares:
                    self._lots[tok] = deque([Lot(owner, shares, basis, owner)])
                    if catalog is not None:
                        self._learn(tok, catalog)
            self.cash = cash_micros
            self.realized = realized_today_micros
            self._daily = {now_ns // DAY_NS: realized_today_micros} if realized_today_micros else {}
            held = sum(lot.basis for lots in self._lots.values() for lot in lots)
            self.starting_cash = cash_micros + held - realized_today_micros

    def apply(self, result: ExecutionResult, catalog: MarketCatalog) -> list[Fill]:
        """Book every filled order of ``result`` (legs, then unwinds); returns the fills."""
        intent = result.intent
        out: list[Fill] = []
        with self.lock:
            n_legs = len(result.reports)
            for i, rep in enumerate((*result.reports, *result.unwound)):
                if rep.filled <= 0:
                    continue
                self._learn(rep.token_id, catalog)
                out.append(
                    self._book(result.intent_id, intent.strategy, intent.group_id, rep, i >= n_legs)
                )
            self.history.extend(out)
        return out

    def _learn(self, token_id: str, catalog: MarketCatalog) -> None:
        if token_id in self._cond_of:
            return
        m = catalog.by_token.get(token_id)
        if m is not None:
            self._tokens_of[m.condition_id] = m.token_ids
            for t in m.token_ids:
                self._cond_of[t] = m.condition_id

    def _trade(self, intent_id: str, strategy: str, group_id: str, ts: int) -> Trade:
        t = self._trades.get(intent_id)
        if t is None:
            t = self._trades[intent_id] = Trade(intent_id, strategy, group_id, ts)
        return t

    def _realize(self, intent_id: str, pnl: int, closed: int, ts: int) -> None:
        self.realized += pnl
        day = ts // DAY_NS
        self._daily[day] = self._daily.get(day, 0) + pnl
        t = self._trades.get(intent_id)
        if t is not None:
            t.realized += pnl
            t.open_shares -= closed
            t.last_ns = max(t.last_ns, ts)
            if t.open_shares == 0 and t.opened:
                t.closed_ns = ts

    def _book(
        self, intent_id: str, strategy: str, group_id: str, rep: OrderReport, unwind: bool
    ) -> Fill:
        ts = rep.done_ns
        self._last_ns = max(self._last_ns, ts)
        buy = rep.side == "BUY"
        flow = rep.cost + rep.fee if buy else rep.fee - rep.cost  # cash spent, signed
        self.cash -= flow
        self.fees += rep.fee
        tr = self._trade(intent_id, strategy, group_id, ts)
        tr.fees += rep.fee
        tr.fills += 1
        tr.last_ns = max(tr.last_ns, ts)
        lots = self._lots.setdefault(rep.token_id, deque())
        sign = 1 if buy else -1
        left: int = rep.filled
        flow_left, realized = flow, 0
        for lot in closing_order(lots, intent_id, strategy, buy):
            if not left:
                break
            held = abs(lot.shares)
            close = min(left, held)
            removed = lot.basis if close == held else lot.basis * close // held
            part = flow_left if close == left else flow_left * close // left
            flow_left -= part
            left -= close
            lot.shares += sign * close
            lot.basis -= removed
            pnl = -part - removed
            realized += pnl
            self._realize(lot.intent_id, pnl, close, ts)
        if left != rep.filled:
            lots = self._lots[rep.token_id] = deque(lot for lot in lots if lot.shares)
        if left:
            lots.append(Lot(intent_id, sign * left, flow_left, strategy))
            tr.opened += left
            tr.open_shares += left
        return Fill(
            intent_id=intent_id,
            strategy=strategy,
            group_id=group_id,
            leg=rep.leg,
            token_id=rep.token_id,
            side=rep.side,
            size=rep.filled,
            price=rep.avg_price,
            cost=rep.cost,
            fee=rep.fee,
            cash_delta=-flow,
            realized=realized,
            position_after=sum(lot.shares for lot in lots),
            ts_ns=ts,
            unwind=unwind,
            order_id=rep.order_id,
        )

    def complete_sets(self, group: OutcomeGroup) -> int:
        """Complete sets of ``group`` held: the least long position over its tokens (micros)."""
        with self.lock:
            return max(0, min(self.position(t) for t in group.token_ids))

    def merge_sets(
        self,
        group: OutcomeGroup,
        now_ns: int,
        *,
        allow_negrisk: bool = False,
        catalog: MarketCatalog | None = None,
    ) -> MergeRecord | None:
        """Merge every complete set of ``group`` held into $1 of cash each; None if none.

        Binary groups merge on-chain any time (CTF ``mergePositions``, NegRiskAdapter or the
        V2 Router). A neg-risk group (the YES of every outcome of an event) has no on-chain
        merge: it pays $1 at resolution (``settle``), so it is skipped unless
        ``allow_negrisk`` books the locked dollar now (research only), and then, given the
        ``catalog``, only when the group is the whole event (``risk.payout``).
        """
        if group.kind == "negrisk" and (
            not allow_negrisk or (catalog is not None and not pays_one(group, catalog))
        ):
            return None
        with self.lock:
            n = self.complete_sets(group)
            if n <= 0:
                return None
            basis = 0
            for iid, shares, b, paid in pair_sets(self._lots, group.token_ids, n):
                basis += b
                self._realize(iid, paid - b, shares, now_ns)
            payout = n
            self.cash += payout
            self._last_ns = max(self._last_ns, now_ns)
            rec = MergeRecord(
                group_id=group.id,
                kind=group.kind,
                token_ids=group.token_ids,
                markets=group.markets,
                sets=n,
                payout=payout,
                basis=basis,
                realized=payout - basis,
                ts_ns=now_ns,
            )
            self.merges.append(rec)
            return rec

    def settle(
        self, condition_id: str, winning_token_id: str, now_ns: int | None = None
    ) -> SettleRecord | None:
        """Resolve a market: its winning token pays $1 a share, the others 0; None if nothing
        of it is held. ``now_ns`` dates the realized PnL (default: the last booking)."""
        ts = self._last_ns if now_ns is None else now_ns
        with self.lock:
            tokens = self._tokens_of.get(condition_id)
            if tokens is None:
                return None
            if winning_token_id and winning_token_id not in tokens:
                raise PortfolioError(
                    f"winning token {winning_token_id[:16]}… is not an outcome of market "
                    f"{condition_id[:16]}…"
                )
            payout = basis = 0
            shares: list[tuple[str, int]] = []
            for tok in tokens:
                lots = self._lots.pop(tok, None)
                if not lots:
                    continue
                shares.append((tok, sum(lot.shares for lot in lots)))
                for lot in lots:
                    pay = lot.shares if tok == winning_token_id else 0  # $1 × shares, micros
                    payout += pay
                    basis += lot.basis
                    self._realize(lot.intent_id, pay - lot.basis, abs(lot.shares), ts)
            if not shares:
                return None
            self.cash += payout
            rec = SettleRecord(
                condition_id=condition_id,
                winning_token_id=winning_token_id,
                shares=tuple(shares),
                payout=payout,
                basis=basis,
                realized=payout - basis,
                ts_ns=ts,
            )
            self.settlements.append(rec)
            return rec

    # -- views ---------------------------------------------------------------------------------
    def snapshot(self, books: dict[str, L2Book]) -> PortfolioSnapshot:
        """Cash, marked positions, PnL, fees, merges and trade statistics at this moment."""
        with self.lock:
            marks: list[PositionMark] = []
            for pos in self.positions().values():
                book = books.get(pos.token_id)
                if pos.shares > 0:
                    mark = book.best_bid_micros() if book is not None else 0
                    value = cost_micros(mark, pos.shares, round_up=False)
                else:
                    mark = book.best_ask_micros() if book is not None else MICROS
                    value = -cost_micros(mark, -pos.shares, round_up=True)
                marks.append(
                    PositionMark(
                        token_id=pos.token_id,
                        condition_id=pos.condition_id,
                        shares=pos.shares,
                        basis=pos.basis,
                        mark=mark,
                        value=value,
                        unrealized=value - pos.basis,
                    )
                )
            trades = self.trades()
            done = [t for t in trades if t.closed]
            wins = sum(1 for t in done if t.realized > 0)
            return PortfolioSnapshot(
                cash=self.cash,
                starting_cash=self.starting_cash,
                equity=self.cash + sum(m.value for m in marks),
                realized=self.realized,
                unrealized=sum(m.unrealized for m in marks),
                fees=self.fees,
                merges=len(self.merges),
                merged_sets=sum(m.sets for m in self.merges),
                merge_payout=sum(m.payout for m in self.merges),
                trades=len(trades),
                open_trades=len(trades) - len(done),
                completed=len(done),
                wins=wins,
                win_rate=wins / len(done) if done else 0.0,
                fills=len(self.history),
                positions=tuple(marks),
            )

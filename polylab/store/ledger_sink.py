"""The engine's results into the ledger: a ``ResultSink`` over a ``LedgerWriter``.

Add it to the engine's sinks next to the run recorder. ``record`` maps fills, orders,
rejections and errors to ledger rows and queues them (microseconds, no database call); the
other kinds (opportunities, intents, merges, settlements, residuals) stay in the run folder.
``on_commit(row, exc)`` runs on the writer thread once a row is committed, and ``on_fill(fill)``
with the engine's own ``Fill`` once that fill is committed: that is where the runner publishes
it to the bus (ledger first, then bus), e.g. ``polylab.bus.sink.fill_message(fill, ...)``.

A full queue (``LedgerFull``) never raises into the engine: the row is counted in ``lost``
and logged, and ``writer.halt`` is already True: the runner must stop trading.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable

import msgspec

from polylab.domain import OrderReport
from polylab.engine import ErrorRecord, IntentRecord, RejectionRecord
from polylab.risk.records import Fill, PortfolioSnapshot
from polylab.store.ledger import LedgerError
from polylab.store.ledger_rows import (
    PnlSnapshotRow,
    PositionRow,
    error_row,
    fill_row,
    order_row,
    rejection_row,
)
from polylab.store.ledger_writer import LedgerWriter, OnCommit, Row

__all__ = ["LedgerSink"]

log = logging.getLogger(__name__)
_STRATEGIES_KEPT = 100_000  # intent id → strategy entries (orders do not name their strategy)


class LedgerSink:
    """Queues the engine's fills, orders, rejections and errors of run ``run_id``.

    ``executor``: the name stored with each fill (``paper``, ``live``, …); ``on_commit``:
    called with each row once committed (or refused); ``on_fill``: called with each engine
    ``Fill`` once committed (not if refused). Both run on the writer thread.
    """

    def __init__(
        self,
        writer: LedgerWriter,
        run_id: str,
        *,
        executor: str,
        on_commit: OnCommit | None = None,
        on_fill: Callable[[Fill], None] | None = None,
    ) -> None:
        self.writer = writer
        self.run_id = run_id
        self.executor = executor
        self.on_commit = on_commit
        self.on_fill = on_fill
        self.lost = 0
        self._strategy: OrderedDict[str, str] = OrderedDict()
        self._held: set[str] = set()  # tokens the last snapshot wrote with shares

    def record(self, kind: str, row: msgspec.Struct) -> None:
        """The ``ResultSink`` protocol: queue ``row`` if the ledger keeps its kind."""
        out: Row
        done = self.on_commit
        if isinstance(row, IntentRecord):
            self._strategy[row.intent_id] = row.strategy
            if len(self._strategy) > _STRATEGIES_KEPT:
                self._strategy.popitem(last=False)
            return
        if isinstance(row, Fill):
            self._strategy.setdefault(row.intent_id, row.strategy)
            out = fill_row(self.run_id, row, executor=self.executor)
            if self.on_fill is not None:
                done = self._fill_done(row)
        elif isinstance(row, OrderReport):
            strategy = self._strategy.get(row.intent_id, "")
            out = order_row(self.run_id, row, strategy=strategy)
        elif isinstance(row, RejectionRecord):
            out = rejection_row(self.run_id, row)
        elif isinstance(row, ErrorRecord):
            out = error_row(self.run_id, row)
        else:
            return
        try:
            self.writer.submit(out, done)
        except LedgerError as exc:
            self.lost += 1
            log.error("ledger row lost (%s): %s", kind, exc)

    def snapshot(self, snap: PortfolioSnapshot, ts_ns: int) -> None:
        """Queue the portfolio's cash, PnL and positions at ``ts_ns`` (e.g. every few
        seconds and at stop: ``load_state`` starts from the latest and replays later fills).
        A token held at the previous snapshot and flat now is written with 0 shares."""
        rows: list[Row] = [
            PnlSnapshotRow(
                run_id=self.run_id,
                ts_ns=ts_ns,
                cash_micros=snap.cash,
                equity_micros=snap.equity,
                realized_micros=snap.realized,
                unrealized_micros=snap.unrealized,
                fees_micros=snap.fees,
            )
        ]
        held: set[str] = set()
        for p in snap.positions:
            if p.shares == 0:
                continue
            held.add(p.token_id)
            rows.append(
                PositionRow(
                    run_id=self.run_id,
                    token_id=p.token_id,
                    shares_micros=p.shares,
                    cost_micros=p.basis,
                    avg_price_micros=p.basis * 10**6 // p.shares,
                    realized_micros=0,
                    ts_ns=ts_ns,
                )
            )
        for tok in sorted(self._held - held):
            rows.append(
                PositionRow(
                    run_id=self.run_id,
                    token_id=tok,
                    shares_micros=0,
                    cost_micros=0,
                    avg_price_micros=0,
                    realized_micros=0,
                    ts_ns=ts_ns,
                )
            )
        self._held = held
        for row in rows:
            try:
                self.writer.submit(row, self.on_commit)
            except LedgerError as exc:
                self.lost += 1
                log.error("ledger row lost (snapshot): %s", exc)

    def _fill_done(self, fill: Fill) -> OnCommit:
        def done(row: Row, exc: BaseException | None) -> None:
            if self.on_commit is not None:
                self.on_commit(row, exc)
            if exc is None and self.on_fill is not None:
                self.on_fill(fill)

        return done

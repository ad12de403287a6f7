"""The rows a runner hands the ledger: one struct per table, field names = column names.

Units as in ``ledger_schema``: money, prices and sizes integer micros, times integer ns.
``fill_row``, ``order_row``, ``rejection_row`` and ``error_row`` build rows from the engine's
own records so the runner does not repeat the mapping.

Keys (idempotence): a fill's ``fill_key`` must name the fill itself, so that the same fill
seen twice (a retried batch, a restart that re-reads the venue's trades) is stored once. The
default, ``fill_key_for``, is ``run/order/intent/leg[/unwind]/ts_ns``: the paper trader's
order and intent ids restart with each process, so the run id and the fill's time keep a
later process's fills apart from an earlier one's. For venue trades pass the trade id instead
(``fill_row(..., key="trade:<id>")``), which holds across runs and restarts.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, ClassVar

import msgspec

if TYPE_CHECKING:  # the engine's records are only read here: keep `polylab ledger` light
    from polylab.domain import OrderReport
    from polylab.engine import ErrorRecord, RejectionRecord
    from polylab.risk.records import Fill

__all__ = [
    "ConfigRow",
    "ErrorRow",
    "FillRow",
    "LedgerRow",
    "OrderRow",
    "PnlSnapshotRow",
    "PositionRow",
    "RejectionRow",
    "error_row",
    "fill_key_for",
    "fill_row",
    "order_row",
    "rejection_row",
]


class OrderRow(msgspec.Struct, frozen=True, kw_only=True):
    """An order's latest state; written again on every status change (upsert by run+order).

    ``status``: the executor's word (``open``/``live``/``pending`` count as open on recovery;
    ``filled``, ``partial``, ``unfilled``, ``rejected``, ``timeout``, ``dry_run``,
    ``cancelled`` are final).
    """

    TABLE: ClassVar[str] = "orders"
    run_id: str
    order_id: str
    intent_id: str
    strategy: str
    leg: int
    token_id: str
    side: str
    limit_price_micros: int
    size_micros: int
    filled_micros: int
    status: str
    reason: str
    created_ns: int
    updated_ns: int


class FillRow(msgspec.Struct, frozen=True, kw_only=True):
    """One fill (insert once by ``fill_key``). ``cost_micros``: cash paid (BUY) or received
    (SELL), fee excluded; ``cash_delta_micros``: signed change in cash; ``realized_micros``:
    PnL this fill realized."""

    TABLE: ClassVar[str] = "fills"
    fill_key: str
    run_id: str
    order_id: str
    intent_id: str
    strategy: str
    group_id: str
    leg: int
    token_id: str
    side: str
    size_micros: int
    price_micros: int
    cost_micros: int
    fee_micros: int
    cash_delta_micros: int
    realized_micros: int
    unwind: bool
    executor: str
    ts_ns: int


class PositionRow(msgspec.Struct, frozen=True, kw_only=True):
    """A token's position at ``ts_ns`` (upsert by run+token: the table keeps the latest)."""

    TABLE: ClassVar[str] = "positions"
    run_id: str
    token_id: str
    shares_micros: int
    cost_micros: int
    avg_price_micros: int
    realized_micros: int
    ts_ns: int


class PnlSnapshotRow(msgspec.Struct, frozen=True, kw_only=True):
    """The portfolio's cash and PnL at ``ts_ns`` (one row per run and time)."""

    TABLE: ClassVar[str] = "pnl_snapshots"
    run_id: str
    ts_ns: int
    cash_micros: int
    equity_micros: int
    realized_micros: int
    unrealized_micros: int
    fees_micros: int


class RejectionRow(msgspec.Struct, frozen=True, kw_only=True):
    """A risk rejection (``rule`` that refused, ``reason`` in words); ``row_key`` unique."""

    TABLE: ClassVar[str] = "rejections"
    row_key: str
    run_id: str
    intent_id: str
    strategy: str
    group_id: str
    rule: str
    reason: str
    ts_ns: int


class ErrorRow(msgspec.Struct, frozen=True, kw_only=True):
    """Something that went wrong without stopping the run; ``row_key`` unique."""

    TABLE: ClassVar[str] = "errors"
    row_key: str
    run_id: str
    source: str
    error: str
    ts_ns: int


class ConfigRow(msgspec.Struct, frozen=True, kw_only=True):
    """A configuration as the promotion pipeline sees it (bodies and results as JSON)."""

    TABLE: ClassVar[str] = "configs"
    id: str
    body: dict[str, object]
    git_sha: str
    data_hashes: dict[str, str]
    metrics: dict[str, object]
    gates: dict[str, object]
    created_ns: int
    promoted_ns: int | None = None
    status: str = "candidate"


LedgerRow = OrderRow | FillRow | PositionRow | PnlSnapshotRow | RejectionRow | ErrorRow


def fill_key_for(run_id: str, fill: Fill) -> str:
    """The default fill key: one fill per (run, order, intent, leg, unwind, time)."""
    tail = "/unwind" if fill.unwind else ""
    return f"{run_id}/{fill.order_id}/{fill.intent_id}/{fill.leg}{tail}/{fill.ts_ns}"


def fill_row(run_id: str, fill: Fill, *, executor: str, key: str | None = None) -> FillRow:
    """A portfolio ``Fill`` as a ledger row (``key`` defaults to ``fill_key_for``)."""
    return FillRow(
        fill_key=key if key is not None else fill_key_for(run_id, fill),
        run_id=run_id,
        order_id=fill.order_id,
        intent_id=fill.intent_id,
        strategy=fill.strategy,
        group_id=fill.group_id,
        leg=fill.leg,
        token_id=fill.token_id,
        side=str(fill.side),
        size_micros=fill.size,
        price_micros=fill.price,
        cost_micros=fill.cost,
        fee_micros=fill.fee,
        cash_delta_micros=fill.cash_delta,
        realized_micros=fill.realized,
        unwind=fill.unwind,
        executor=executor,
        ts_ns=fill.ts_ns,
    )


def order_row(run_id: str, report: OrderReport, *, strategy: str) -> OrderRow:
    """An executor's ``OrderReport`` as an order row (an empty order id becomes intent/leg)."""
    return OrderRow(
        run_id=run_id,
        order_id=report.order_id or f"{report.intent_id}/{report.leg}",
        intent_id=report.intent_id,
        strategy=strategy,
        leg=report.leg,
        token_id=report.token_id,
        side=str(report.side),
        limit_price_micros=report.limit_price,
        size_micros=report.requested,
        filled_micros=report.filled,
        status=report.status,
        reason=report.reason,
        created_ns=report.sent_ns,
        updated_ns=report.done_ns,
    )


def rejection_row(run_id: str, rec: RejectionRecord) -> RejectionRow:
    """The engine's ``RejectionRecord`` as a row with a fresh ``row_key``."""
    return RejectionRow(
        row_key=uuid.uuid4().hex,
        run_id=run_id,
        intent_id=rec.intent_id,
        strategy=rec.strategy,
        group_id=rec.group_id,
        rule=rec.rule,
        reason=rec.reason,
        ts_ns=rec.ts_ns,
    )


def error_row(run_id: str, rec: ErrorRecord) -> ErrorRow:
    """The engine's ``ErrorRecord`` as a row with a fresh ``row_key``."""
    return ErrorRow(
        row_key=uuid.uuid4().hex, run_id=run_id, source=rec.source, error=rec.error, ts_ns=rec.ts_ns
    )

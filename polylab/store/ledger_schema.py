"""The ledger's tables (SQLAlchemy Core), the single description the code reads and writes.

Units: every money column is integer micros (``*_micros``, BIGINT; 1 USDC = 1_000_000), prices
are price micros, share sizes are share micros, times are integer nanoseconds since the epoch
(``*_ns``). No float column exists. Alembic's initial revision
(``migrations/versions/0001_initial.py``) creates exactly this schema; a test compares the two.

Keys make every write idempotent, so a batch retried after a lost commit acknowledgement is
stored once: fills by ``fill_key`` (unique across runs), rejections and errors by a
client-made ``row_key``, orders by (run, order id), positions by (run, token), PnL snapshots
by (run, time).
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    Table,
    Text,
)

__all__ = [
    "RUN_MODES",
    "configs",
    "errors",
    "fills",
    "metadata",
    "orders",
    "pipeline_runs",
    "pnl_snapshots",
    "positions",
    "promotions",
    "rejections",
    "runs",
]

RUN_MODES = ("paper", "live", "backtest")

metadata = MetaData(
    naming_convention={
        "pk": "pk_%(table_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    }
)


def _run_fk() -> Column[str]:
    return Column("run_id", Text, ForeignKey("runs.id"), nullable=False)


runs = Table(
    "runs",
    metadata,
    Column("id", Text, primary_key=True),
    Column("mode", Text, nullable=False),
    Column("venue", Text, nullable=False),
    Column("config_id", Text, nullable=False),
    Column("code_version", Text, nullable=False),
    Column("started_ns", BigInteger, nullable=False),
    Column("stopped_ns", BigInteger, nullable=True),
    Column("status", Text, nullable=False),
    Column("start_cash_micros", BigInteger, nullable=False),
    CheckConstraint("mode IN ('paper', 'live', 'backtest')", name="mode"),
    Index(None, "started_ns"),
)

orders = Table(
    "orders",
    metadata,
    _run_fk(),
    Column("order_id", Text, nullable=False),
    Column("intent_id", Text, nullable=False),
    Column("strategy", Text, nullable=False),
    Column("leg", Integer, nullable=False),
    Column("token_id", Text, nullable=False),
    Column("side", Text, nullable=False),
    Column("limit_price_micros", BigInteger, nullable=False),
    Column("size_micros", BigInteger, nullable=False),
    Column("filled_micros", BigInteger, nullable=False),
    Column("status", Text, nullable=False),
    Column("reason", Text, nullable=False),
    Column("created_ns", BigInteger, nullable=False),
    Column("updated_ns", BigInteger, nullable=False),
    PrimaryKeyConstraint("run_id", "order_id"),  # one row per order, status updated in place
    Index(None, "run_id", "status"),
)

fills = Table(
    "fills",
    metadata,
    Column("fill_key", Text, primary_key=True),
    _run_fk(),
    Column("order_id", Text, nullable=False),
    Column("intent_id", Text, nullable=False),
    Column("strategy", Text, nullable=False),
    Column("group_id", Text, nullable=False),
    Column("leg", Integer, nullable=False),
    Column("token_id", Text, nullable=False),
    Column("side", Text, nullable=False),
    Column("size_micros", BigInteger, nullable=False),
    Column("price_micros", BigInteger, nullable=False),
    Column("cost_micros", BigInteger, nullable=False),
    Column("fee_micros", BigInteger, nullable=False),
    Column("cash_delta_micros", BigInteger, nullable=False),
    Column("realized_micros", BigInteger, nullable=False),
    Column("unwind", Boolean, nullable=False),
    Column("executor", Text, nullable=False),
    Column("ts_ns", BigInteger, nullable=False),
    Index(None, "run_id", "ts_ns"),
)

positions = Table(
    "positions",
    metadata,
    Column("run_id", Text, ForeignKey("runs.id"), primary_key=True),
    Column("token_id", Text, primary_key=True),
    Column("shares_micros", BigInteger, nullable=False),
    Column("cost_micros", BigInteger, nullable=False),
    Column("avg_price_micros", BigInteger, nullable=False),
    Column("realized_micros", BigInteger, nullable=False),
    Column("ts_ns", BigInteger, nullable=False),
)

pnl_snapshots = Table(
    "pnl_snapshots",
    metadata,
    Column("run_id", Text, ForeignKey("runs.id"), primary_key=True),
    Column("ts_ns", BigInteger, primary_key=True),
    Column("cash_micros", BigInteger, nullable=False),
    Column("equity_micros", BigInteger, nullable=False),
    Column("realized_micros", BigInteger, nullable=False),
    Column("unrealized_micros", BigInteger, nullable=False),
    Column("fees_micros", BigInteger, nullable=False),
)

rejections = Table(
    "rejections",
    metadata,
    Column("row_key", Text, primary_key=True),
    _run_fk(),
    Column("intent_id", Text, nullable=False),
    Column("strategy", Text, nullable=False),
    Column("group_id", Text, nullable=False),
    Column("rule", Text, nullable=False),
    Column("reason", Text, nullable=False),
    Column("ts_ns", BigInteger, nullable=False),
    Index(None, "run_id", "ts_ns"),
)

errors = Table(
    "errors",
    metadata,
    Column("row_key", Text, primary_key=True),
    _run_fk(),
    Column("source", Text, nullable=False),
    Column("error", Text, nullable=False),
    Column("ts_ns", BigInteger, nullable=False),
    Index(None, "run_id", "ts_ns"),
)

configs = Table(
    "configs",
    metadata,
    Column("id", Text, primary_key=True),
    Column("body", JSON, nullable=False),
    Column("git_sha", Text, nullable=False),
    Column("data_hashes", JSON, nullable=False),
    Column("metrics", JSON, nullable=False),
    Column("gates", JSON, nullable=False),
    Column("created_ns", BigInteger, nullable=False),
    Column("promoted_ns", BigInteger, nullable=True),
    Column("status", Text, nullable=False),
    Index(None, "status"),
)

promotions = Table(
    "promotions",
    metadata,
    Column("id", Text, primary_key=True),
    Column("config_id", Text, ForeignKey("configs.id"), nullable=False),
    Column("previous_id", Text, nullable=True),
    Column("action", Text, nullable=False),
    Column("by", Text, nullable=False),
    Column("reason", Text, nullable=False),
    Column("ts_ns", BigInteger, nullable=False),
    CheckConstraint("action IN ('promote', 'rollback')", name="action"),
    Index(None, "ts_ns"),
)
"""Every change of the promoted configuration, in order: which config became the promoted
one, which one it replaced (``previous_id``, ``None`` for the first), by whom and why. The
promotion history a dashboard shows and ``rollback`` walks."""

pipeline_runs = Table(
    "pipeline_runs",
    metadata,
    Column("id", Text, primary_key=True),
    Column("name", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("started_ns", BigInteger, nullable=False),
    Column("finished_ns", BigInteger, nullable=True),
    Column("folder", Text, nullable=False),
    Column("git_sha", Text, nullable=False),
    Column("params", JSON, nullable=False),
    Column("metrics", JSON, nullable=False),
    Column("config_ids", JSON, nullable=False),
    Column("error", Text, nullable=False),
    CheckConstraint("status IN ('running', 'ok', 'failed')", name="status"),
    Index(None, "name", "started_ns"),
)
"""One row per papermill pipeline run (``polylab pipeline run``): its folder (the executed
notebook and ``provenance.json``), parameters, headline metrics and the config ids it made."""

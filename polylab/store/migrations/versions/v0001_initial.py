"""Initial ledger schema: runs, orders, fills, positions, PnL snapshots, rejections, errors,
configs (money as BIGINT micros, times as BIGINT ns).

Revision ID: 0001
Revises:
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

__all__ = ["branch_labels", "depends_on", "down_revision", "downgrade", "revision", "upgrade"]

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Create every table and index."""
    op.create_table(
        "configs",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("body", sa.JSON(), nullable=False),
        sa.Column("git_sha", sa.Text(), nullable=False),
        sa.Column("data_hashes", sa.JSON(), nullable=False),
        sa.Column("metrics", sa.JSON(), nullable=False),
        sa.Column("gates", sa.JSON(), nullable=False),
        sa.Column("created_ns", sa.BigInteger(), nullable=False),
        sa.Column("promoted_ns", sa.BigInteger(), nullable=True),
        sa.Column("status", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_configs")),
    )
    op.create_index(op.f("ix_configs_status"), "configs", ["status"], unique=False)
    op.create_table(
        "runs",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("mode", sa.Text(), nullable=False),
        sa.Column("venue", sa.Text(), nullable=False),
        sa.Column("config_id", sa.Text(), nullable=False),
        sa.Column("code_version", sa.Text(), nullable=False),
        sa.Column("started_ns", sa.BigInteger(), nullable=False),
        sa.Column("stopped_ns", sa.BigInteger(), nullable=True),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("start_cash_micros", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("mode IN ('paper', 'live', 'backtest')", name=op.f("ck_runs_mode")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_runs")),
    )
    op.create_index(op.f("ix_runs_started_ns"), "runs", ["started_ns"], unique=False)
    op.create_table(
        "errors",
        sa.Column("row_key", sa.Text(), nullable=False),
        sa.Column("run_id", sa.Text(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("ts_ns", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name=op.f("fk_errors_run_id_runs")),
        sa.PrimaryKeyConstraint("row_key", name=op.f("pk_errors")),
    )
    op.create_index(op.f("ix_errors_run_id_ts_ns"), "errors", ["run_id", "ts_ns"], unique=False)
    op.create_table(
        "fills",
        sa.Column("fill_key", sa.Text(), nullable=False),
        sa.Column("run_id", sa.Text(), nullable=False),
        sa.Column("order_id", sa.Text(), nullable=False),
        sa.Column("intent_id", sa.Text(), nullable=False),
        sa.Column("strategy", sa.Text(), nullable=False),
        sa.Column("group_id", sa.Text(), nullable=False),
        sa.Column("leg", sa.Integer(), nullable=False),
        sa.Column("token_id", sa.Text(), nullable=False),
        sa.Column("side", sa.Text(), nullable=False),
        sa.Column("size_micros", sa.BigInteger(), nullable=False),
        sa.Column("price_micros", sa.BigInteger(), nullable=False),
        sa.Column("cost_micros", sa.BigInteger(), nullable=False),
        sa.Column("fee_micros", sa.BigInteger(), nullable=False),
        sa.Column("cash_delta_micros", sa.BigInteger(), nullable=False),
        sa.Column("realized_micros", sa.BigInteger(), nullable=False),
        sa.Column("unwind", sa.Boolean(), nullable=False),
        sa.Column("executor", sa.Text(), nullable=False),
        sa.Column("ts_ns", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name=op.f("fk_fills_run_id_runs")),
        sa.PrimaryKeyConstraint("fill_key", name=op.f("pk_fills")),
    )
    op.create_index(op.f("ix_fills_run_id_ts_ns"), "fills", ["run_id", "ts_ns"], unique=False)
    op.create_table(
        "orders",
        sa.Column("run_id", sa.Text(), nullable=False),
        sa.Column("order_id", sa.Text(), nullable=False),
        sa.Column("intent_id", sa.Text(), nullable=False),
        sa.Column("strategy", sa.Text(), nullable=False),
        sa.Column("leg", sa.Integer(), nullable=False),
        sa.Column("token_id", sa.Text(), nullable=False),
        sa.Column("side", sa.Text(), nullable=False),
        sa.Column("limit_price_micros", sa.BigInteger(), nullable=False),
        sa.Column("size_micros", sa.BigInteger(), nullable=False),
        sa.Column("filled_micros", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created_ns", sa.BigInteger(), nullable=False),
        sa.Column("updated_ns", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name=op.f("fk_orders_run_id_runs")),
        sa.PrimaryKeyConstraint("run_id", "order_id", name=op.f("pk_orders")),
    )
    op.create_index(op.f("ix_orders_run_id_status"), "orders", ["run_id", "status"], unique=False)
    op.create_table(
        "pnl_snapshots",
        sa.Column("run_id", sa.Text(), nullable=False),
        sa.Column("ts_ns", sa.BigInteger(), nullable=False),
        sa.Column("cash_micros", sa.BigInteger(), nullable=False),
        sa.Column("equity_micros", sa.BigInteger(), nullable=False),
        sa.Column("realized_micros", sa.BigInteger(), nullable=False),
        sa.Column("unrealized_micros", sa.BigInteger(), nullable=False),
        sa.Column("fees_micros", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name=op.f("fk_pnl_snapshots_run_id_runs")),
        sa.PrimaryKeyConstraint("run_id", "ts_ns", name=op.f("pk_pnl_snapshots")),
    )
    op.create_table(
        "positions",
        sa.Column("run_id", sa.Text(), nullable=False),
        sa.Column("token_id", sa.Text(), nullable=False),
        sa.Column("shares_micros", sa.BigInteger(), nullable=False),
        sa.Column("cost_micros", sa.BigInteger(), nullable=False),
        sa.Column("avg_price_micros", sa.BigInteger(), nullable=False),
        sa.Column("realized_micros", sa.BigInteger(), nullable=False),
        sa.Column("ts_ns", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name=op.f("fk_positions_run_id_runs")),
        sa.PrimaryKeyConstraint("run_id", "token_id", name=op.f("pk_positions")),
    )
    op.create_table(
        "rejections",
        sa.Column("row_key", sa.Text(), nullable=False),
        sa.Column("run_id", sa.Text(), nullable=False),
        sa.Column("intent_id", sa.Text(), nullable=False),
        sa.Column("strategy", sa.Text(), nullable=False),
        sa.Column("group_id", sa.Text(), nullable=False),
        sa.Column("rule", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("ts_ns", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name=op.f("fk_rejections_run_id_runs")),
        sa.PrimaryKeyConstraint("row_key", name=op.f("pk_rejections")),
    )
    op.create_index(
        op.f("ix_rejections_run_id_ts_ns"), "rejections", ["run_id", "ts_ns"], unique=False
    )


def downgrade() -> None:
    """Drop everything the upgrade created."""
    op.drop_index(op.f("ix_rejections_run_id_ts_ns"), table_name="rejections")
    op.drop_table("rejections")
    op.drop_table("positions")
    op.drop_table("pnl_snapshots")
    op.drop_index(op.f("ix_orders_run_id_status"), table_name="orders")
    op.drop_table("orders")
    op.drop_index(op.f("ix_fills_run_id_ts_ns"), table_name="fills")
    op.drop_table("fills")
    op.drop_index(op.f("ix_errors_run_id_ts_ns"), table_name="errors")
    op.drop_table("errors")
    op.drop_index(op.f("ix_runs_started_ns"), table_name="runs")
    op.drop_table("runs")
    op.drop_index(op.f("ix_configs_status"), table_name="configs")
    op.drop_table("configs")

"""Ledger test helpers: row builders (every money field integer micros) and PostgreSQL URLs."""

from __future__ import annotations

import os

import psycopg

from polylab.store.ledger_rows import FillRow, OrderRow

PG_BASE = os.environ.get("POLYLAB_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


def pg_admin() -> psycopg.Connection[tuple[object, ...]]:
    """An autocommit connection to the test database (for schemas and pg_terminate_backend)."""
    return psycopg.connect(PG_BASE, autocommit=True, connect_timeout=3)


def pg_url(base: str, schema: str, host_port: str | None = None) -> str:
    """``base`` confined to ``schema`` (and optionally sent to another host:port)."""
    url = base
    if host_port is not None:
        url = url.replace("127.0.0.1:5432", host_port)
    sep = "&" if "?" in url else "?"
    return f"{url}{sep}options=-csearch_path%3D{schema}"


def fill(run_id: str, n: int, **kw: object) -> FillRow:
    """The ``n``-th fill of a run: BUY 1 share of ``tok-<n % 3>`` at 0.40 + n micros."""
    base: dict[str, object] = {
        "fill_key": f"{run_id}/f{n}",
        "run_id": run_id,
        "order_id": f"o{n}",
        "intent_id": f"i{n}",
        "strategy": "sum_to_100",
        "group_id": "g",
        "leg": 0,
        "token_id": f"tok-{n % 3}",
        "side": "BUY",
        "size_micros": 1_000_000,
        "price_micros": 400_000 + n,
        "cost_micros": 400_000 + n,
        "fee_micros": 7,
        "cash_delta_micros": -(400_000 + n + 7),
        "realized_micros": 0,
        "unwind": False,
        "executor": "paper",
        "ts_ns": 1_000 + n,
    }
    base.update(kw)
    return FillRow(**base)  # type: ignore[arg-type]


def order(run_id: str, order_id: str, status: str, **kw: object) -> OrderRow:
    """An order of 5 shares at 0.40."""
    base: dict[str, object] = {
        "run_id": run_id,
        "order_id": order_id,
        "intent_id": "i",
        "strategy": "s",
        "leg": 0,
        "token_id": "tok-0",
        "side": "BUY",
        "limit_price_micros": 400_000,
        "size_micros": 5_000_000,
        "filled_micros": 0,
        "status": status,
        "reason": "",
        "created_ns": 10,
        "updated_ns": 10,
    }
    base.update(kw)
    return OrderRow(**base)  # type: ignore[arg-type]

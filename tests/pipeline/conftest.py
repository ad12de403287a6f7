"""Ledger fixtures of ``tests/store`` (a SQLite file and the machine's PostgreSQL) for the
promotion tests."""

from store.conftest import ledger, ledger_url, pg_base, pg_schema

__all__ = ["ledger", "ledger_url", "pg_base", "pg_schema"]

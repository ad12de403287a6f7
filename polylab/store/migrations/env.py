"""Alembic's environment for the ledger: run by ``polylab.store.ledger.Ledger.migrate``.

The caller passes an open SQLAlchemy connection in ``config.attributes["connection"]`` (the
ledger holds a lock on it while migrating); there is no ``alembic.ini`` and no offline mode.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from polylab.store.ledger_schema import metadata

__all__: list[str] = []

_conn = context.config.attributes.get("connection")
if not isinstance(_conn, Connection):
    raise RuntimeError("the ledger's migrations run through polylab.store.ledger.Ledger.migrate")
context.configure(
    connection=_conn,
    target_metadata=metadata,
    render_as_batch=_conn.dialect.name == "sqlite",  # SQLite alters tables by copying them
)
with context.begin_transaction():
    context.run_migrations()

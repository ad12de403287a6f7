"""The ledger's database connection: which URL, which engine (SQLite or PostgreSQL/psycopg 3).

``resolve_url`` picks ``url`` > ``DATABASE_URL`` > the SQLite file ``runs/polylab.db`` and
normalises PostgreSQL schemes; ``make_engine`` sets SQLite to WAL with foreign keys on, and
PostgreSQL to a named (``application_name``), pre-pinged pool with a 3 s connect timeout.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from polylab.errors import PolylabError

__all__ = ["DEFAULT_SQLITE_PATH", "LedgerError", "make_engine", "redact_url", "resolve_url"]

DEFAULT_SQLITE_PATH = Path("runs") / "polylab.db"


class LedgerError(PolylabError):
    """The ledger cannot be used as asked (bad URL, unreachable, unknown run); the message says
    why and names the URL without its password. The CLI prints it as one line, exit 2."""


def resolve_url(url: str | None = None) -> str:
    """The SQLAlchemy URL to use: ``url``, else ``DATABASE_URL``, else the default SQLite file.

    ``postgres://`` and ``postgresql://`` become ``postgresql+psycopg://`` (psycopg 3).
    """
    raw = (url if url is not None else os.environ.get("DATABASE_URL", "")).strip()
    if not raw:
        return f"sqlite:///{DEFAULT_SQLITE_PATH}"
    scheme, sep, rest = raw.partition("://")
    if not sep:
        raise LedgerError(f"database URL has no scheme: {redact_url(raw)!r}")
    if scheme in ("postgres", "postgresql", "postgresql+psycopg"):
        return f"postgresql+psycopg://{rest}"
    if scheme in ("sqlite", "sqlite+pysqlite"):
        return raw
    raise LedgerError(
        f"unsupported database URL scheme {scheme!r} (use sqlite:///PATH or postgresql://…)"
    )


def redact_url(url: str) -> str:
    """``url`` with any password replaced by ``***`` (for messages and logs)."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url.split("@")[-1]


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "foreign_keys=ON"):
        cur.execute(f"PRAGMA {pragma}")
    cur.close()


def make_engine(url: str, *, application_name: str = "polylab-ledger") -> Engine:
    """An engine for ``url`` (already resolved): SQLite in WAL mode with foreign keys on, or
    PostgreSQL with ``application_name`` set (operators and tests find the ledger's backends
    by it), a 3 s connect timeout and a liveness check before each checkout."""
    u = make_url(url)
    if u.get_backend_name() == "sqlite":
        if u.database and u.database != ":memory:":
            Path(u.database).parent.mkdir(parents=True, exist_ok=True)
        # a locked file is waited for 5 s (``?timeout=S`` in the URL to change), then retried
        eng = create_engine(u, connect_args={} if "timeout" in u.query else {"timeout": 5.0})
        event.listen(eng, "connect", _sqlite_pragmas)
        return eng
    args: dict[str, Any] = {"connect_timeout": 3}
    if "application_name" not in u.query:
        args["application_name"] = application_name
    return create_engine(u, pool_pre_ping=True, pool_size=2, max_overflow=2, connect_args=args)

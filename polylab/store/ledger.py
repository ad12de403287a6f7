"""The ledger: a run's orders, fills, positions, PnL, rejections and errors in SQL.

SQLite file by default (``runs/polylab.db``), PostgreSQL (psycopg 3) when ``DATABASE_URL`` is
set. ``Ledger.open`` creates or upgrades the schema with the Alembic scripts shipped inside the
package, so an installed polylab needs no repository. Writes on the event path go through
``LedgerWriter`` (batched, off-thread); ``write`` here is the synchronous batch they end in.

Units: money, prices and share sizes are integer micros, times integer ns (see
``ledger_schema``). Every write is idempotent by key (see ``ledger_rows``), so a batch retried
after a connection died mid-commit stores each fill once.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import msgspec
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, Engine, Table, func, select, text
from sqlalchemy.dialects import postgresql, sqlite

from polylab.store import ledger_schema as S
from polylab.store.ledger_configs import ConfigStore
from polylab.store.ledger_db import (
    DEFAULT_SQLITE_PATH,
    LedgerError,
    make_engine,
    redact_url,
    resolve_url,
)
from polylab.store.ledger_rows import ConfigRow, LedgerRow, OrderRow

__all__ = [
    "DEFAULT_SQLITE_PATH",
    "MIGRATIONS",
    "OPEN_ORDER_STATUSES",
    "Ledger",
    "LedgerError",
    "RecoveredState",
    "make_engine",
    "redact_url",
    "resolve_url",
    "write_rows",
]

OPEN_ORDER_STATUSES = ("open", "live", "pending")
MIGRATIONS = Path(__file__).resolve().parent / "migrations"
_LOCK_KEY = 0x706F6C79  # "poly": one migrator at a time on a shared PostgreSQL
_KEYS: dict[str, tuple[str, ...]] = {
    "orders": ("run_id", "order_id"),
    "fills": ("fill_key",),
    "positions": ("run_id", "token_id"),
    "pnl_snapshots": ("run_id", "ts_ns"),
    "rejections": ("row_key",),
    "errors": ("row_key",),
    "configs": ("id",),
}
_LAST_WINS = frozenset({"orders", "positions", "pnl_snapshots", "configs"})
_TABLES: dict[str, Table] = {t.name: t for t in S.metadata.sorted_tables}


class RecoveredState(msgspec.Struct, frozen=True, kw_only=True):
    """What a restarted runner needs from the ledger before it trades again.

    ``positions``: token → shares (micros) = the latest position snapshot plus the fills
    recorded after it; ``cash_micros``: the latest PnL snapshot's cash plus the cash deltas of
    later fills (no snapshot: the run's starting cash plus all its fills); ``open_orders``:
    orders whose status is open/live/pending; ``realized_today_micros``: PnL realized by fills
    since 00:00 UTC in every run of the same mode and venue (the daily loss limit's input);
    ``last_fill_ns``: the newest fill's time (ask the venue for trades after it), 0 if none.
    """

    run_id: str
    mode: str
    venue: str
    config_id: str
    status: str
    positions: dict[str, int]
    cash_micros: int
    open_orders: tuple[OrderRow, ...]
    realized_today_micros: int
    last_fill_ns: int
    fills: int
    basis: dict[str, int] = {}
    """token → what the shares held cost, fees in (micros): the snapshot's ``cost_micros``
    plus ``realized − cash_delta`` of each later fill (the portfolio's invariant, per fill)."""


def _plain(row: Mapping[Any, Any]) -> dict[str, Any]:
    """A result row as a dict keyed by plain ``str`` (column names are a ``str`` subclass)."""
    return {str(k): v for k, v in row.items()}


def write_rows(conn: Connection, rows: Iterable[LedgerRow | ConfigRow]) -> None:
    """Upsert ``rows`` on ``conn`` (inside the caller's transaction), table by table.

    Orders, positions, PnL snapshots and configs: the last row for a key wins. Fills,
    rejections and errors: inserted once, a row whose key exists is skipped.
    """
    by_table: dict[str, dict[tuple[Any, ...], dict[str, Any]]] = {}
    for row in rows:
        name = row.TABLE
        d = msgspec.structs.asdict(row)
        key = tuple(d[c] for c in _KEYS[name])
        bucket = by_table.setdefault(name, {})
        if name in _LAST_WINS:
            bucket.pop(key, None)
            bucket[key] = d
        else:
            bucket.setdefault(key, d)
    insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    for name, bucket in by_table.items():
        table = _TABLES[name]
        ins = insert(table)
        keys = _KEYS[name]
        if name in _LAST_WINS:
            upd = {c.name: ins.excluded[c.name] for c in table.c if c.name not in keys}
            stmt = ins.on_conflict_do_update(index_elements=list(keys), set_=upd)
        else:
            stmt = ins.on_conflict_do_nothing(index_elements=list(keys))
        conn.execute(stmt, list(bucket.values()))


class Ledger(ConfigStore):
    """One database holding the runs' records. Thread-safe: SQLAlchemy engines pool
    connections; each call takes its own."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @classmethod
    def open(
        cls,
        url: str | None = None,
        *,
        application_name: str = "polylab-ledger",
        migrate: bool = True,
    ) -> Ledger:
        """Connect to ``url`` (see ``resolve_url``) and bring the schema to the latest revision.

        Raises ``LedgerError`` naming the (password-free) URL when it cannot connect.
        """
        resolved = resolve_url(url)
        ledger = cls(make_engine(resolved, application_name=application_name))
        if migrate:
            try:
                ledger.migrate()
            except Exception as exc:
                ledger.close()
                if isinstance(exc, LedgerError):
                    raise
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                raise LedgerError(f"cannot open ledger {redact_url(resolved)}: {first}") from exc
        return ledger

    @property
    def url(self) -> str:
        """The database URL without its password."""
        return self.engine.url.render_as_string(hide_password=True)

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self.engine.dialect.name

    def migrate(self) -> None:
        """Alembic ``upgrade head`` on this database (PostgreSQL: under an advisory lock)."""
        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        with self.engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK_KEY})
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")

    def revision(self) -> str | None:
        """The schema revision the database is at (``None`` before any migration)."""
        with self.engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()

    def close(self) -> None:
        """Close the pooled connections."""
        self.engine.dispose()

    # -- runs ------------------------------------------------------------------------------

    def start_run(
        self,
        *,
        mode: str,
        venue: str,
        config_id: str,
        code_version: str,
        start_cash_micros: int = 0,
        run_id: str | None = None,
        started_ns: int | None = None,
    ) -> str:
        """Record a run as ``running`` (synchronously: rows referencing it come after); returns
        its id (default ``<mode>-<UTC time>-<8 hex>``)."""
        if mode not in S.RUN_MODES:
            raise LedgerError(f"run mode must be one of {', '.join(S.RUN_MODES)}, not {mode!r}")
        now = time.time_ns() if started_ns is None else started_ns
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now // 10**9))
        rid = run_id or f"{mode}-{stamp}-{uuid.uuid4().hex[:8]}"
        with self.engine.begin() as conn:
            conn.execute(
                S.runs.insert().values(
                    id=rid,
                    mode=mode,
                    venue=venue,
                    config_id=config_id,
                    code_version=code_version,
                    started_ns=now,
                    stopped_ns=None,
                    status="running",
                    start_cash_micros=start_cash_micros,
                )
            )
        return rid

    def stop_run(
        self, run_id: str, *, status: str = "stopped", stopped_ns: int | None = None
    ) -> None:
        """Mark a run finished (``stopped``, ``crashed``, …) at ``stopped_ns`` (default now)."""
        now = time.time_ns() if stopped_ns is None else stopped_ns
        with self.engine.begin() as conn:
            res = conn.execute(
                S.runs.update().where(S.runs.c.id == run_id).values(status=status, stopped_ns=now)
            )
        if res.rowcount == 0:
            raise LedgerError(f"no run {run_id!r} in the ledger")

    def latest_run(self, *, mode: str | None = None, venue: str | None = None) -> str | None:
        """The id of the most recently started run (optionally of one mode/venue)."""
        q = select(S.runs.c.id).order_by(S.runs.c.started_ns.desc(), S.runs.c.id.desc()).limit(1)
        if mode is not None:
            q = q.where(S.runs.c.mode == mode)
        if venue is not None:
            q = q.where(S.runs.c.venue == venue)
        with self.engine.connect() as conn:
            return conn.execute(q).scalar_one_or_none()

    # -- writes and reads ------------------------------------------------------------------

    def write(self, rows: Sequence[LedgerRow | ConfigRow]) -> None:
        """Write ``rows`` in one transaction (idempotent, see ``write_rows``)."""
        with self.engine.begin() as conn:
            write_rows(conn, rows)

    def rows(self, table: str, *, run_id: str | None = None) -> list[dict[str, Any]]:
        """Every row of ``table`` (of one run when given), in key order: for tests and tools."""
        t = _TABLES.get(table)
        if t is None:
            raise LedgerError(f"no ledger table {table!r} (have: {', '.join(sorted(_TABLES))})")
        q = select(t).order_by(*t.primary_key.columns)
        if run_id is not None and "run_id" in t.c:
            q = q.where(t.c.run_id == run_id)
        with self.engine.connect() as conn:
            return [_plain(r._mapping) for r in conn.execute(q)]

    def load_state(self, run_id: str | None = None, *, now_ns: int | None = None) -> RecoveredState:
        """Positions, cash, open orders and today's realized PnL of ``run_id`` (default: the
        latest run), for restart recovery; see ``RecoveredState`` for how each is derived."""
        rid = run_id if run_id is not None else self.latest_run()
        if rid is None:
            raise LedgerError("the ledger has no run to recover")
        f = S.fills.c
        with self.engine.connect() as conn:
            run = conn.execute(select(S.runs).where(S.runs.c.id == rid)).mappings().first()
            if run is None:
                raise LedgerError(f"no run {rid!r} in the ledger")
            positions: dict[str, int] = {}
            basis: dict[str, int] = {}
            seen_ns: dict[str, int] = {}
            for p in conn.execute(
                select(S.positions).where(S.positions.c.run_id == rid)
            ).mappings():
                positions[p["token_id"]] = p["shares_micros"]
                basis[p["token_id"]] = p["cost_micros"]
                seen_ns[p["token_id"]] = p["ts_ns"]
            snap = (
                conn.execute(
                    select(S.pnl_snapshots)
                    .where(S.pnl_snapshots.c.run_id == rid)
                    .order_by(S.pnl_snapshots.c.ts_ns.desc())
                    .limit(1)
                )
                .mappings()
                .first()
            )
            cash = snap["cash_micros"] if snap else run["start_cash_micros"]
            cash_after = snap["ts_ns"] if snap else None
            last_fill = 0
            n = 0
            q = select(
                f.token_id, f.side, f.size_micros, f.cash_delta_micros, f.realized_micros, f.ts_ns
            )
            for tok, side, size, delta, pnl, ts in conn.execute(q.where(f.run_id == rid)):
                n += 1
                last_fill = max(last_fill, ts)
                if ts > seen_ns.get(tok, -1):
                    positions[tok] = positions.get(tok, 0) + (size if side == "BUY" else -size)
                    basis[tok] = basis.get(tok, 0) + pnl - delta
                if cash_after is None or ts > cash_after:
                    cash += delta
            opened = conn.execute(
                select(S.orders)
                .where(S.orders.c.run_id == rid, S.orders.c.status.in_(OPEN_ORDER_STATUSES))
                .order_by(S.orders.c.created_ns, S.orders.c.order_id)
            ).mappings()
            open_orders = tuple(msgspec.convert(_plain(o), OrderRow) for o in opened)
            now = time.time_ns() if now_ns is None else now_ns
            day0 = now - now % (86_400 * 10**9)
            same = select(S.runs.c.id).where(
                S.runs.c.mode == run["mode"], S.runs.c.venue == run["venue"]
            )
            realized = conn.execute(
                select(func.coalesce(func.sum(f.realized_micros), 0)).where(
                    f.ts_ns >= day0, f.run_id.in_(same.scalar_subquery())
                )
            ).scalar_one()
        return RecoveredState(
            run_id=rid,
            mode=run["mode"],
            venue=run["venue"],
            config_id=run["config_id"],
            status=run["status"],
            positions={k: v for k, v in sorted(positions.items()) if v != 0},
            cash_micros=int(cash),
            open_orders=open_orders,
            realized_today_micros=int(realized),
            last_fill_ns=last_fill,
            fills=n,
            basis={k: int(basis.get(k, 0)) for k, v in sorted(positions.items()) if v != 0},
        )

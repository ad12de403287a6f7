"""The ledger's research side: configurations, their promotion history, pipeline runs.

A configuration is stored once (``configs``, keyed by ``config_id``, the SHA-256 of its
canonical JSON) with its provenance: git sha, data hashes, metrics and gate results. At most
one is ``promoted`` at a time; every change of the promoted one is a ``promotions`` row made
in the same transaction, so the history can never disagree with the current state. A
rollback walks that history as a stack: each promotion pushes a config, each rollback pops
one, and the config under the top is the one a rollback restores.

Times are integer ns since the epoch.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from typing import Any, Literal

import msgspec
from sqlalchemy import Connection, Engine, select

from polylab.store import ledger_schema as S
from polylab.store.ledger_db import LedgerError
from polylab.store.ledger_rows import ConfigRow

__all__ = ["ConfigStore", "PipelineRunRow", "PromotionRow"]

PipelineStatus = Literal["running", "ok", "failed"]


class PromotionRow(msgspec.Struct, frozen=True, kw_only=True):
    """One change of the promoted configuration (``promotions``)."""

    id: str
    config_id: str
    previous_id: str | None
    action: Literal["promote", "rollback"]
    by: str
    reason: str
    ts_ns: int


class PipelineRunRow(msgspec.Struct, frozen=True, kw_only=True):
    """One papermill pipeline run (``pipeline_runs``); ``folder`` holds the executed notebook
    and ``provenance.json``."""

    id: str
    name: str
    status: PipelineStatus
    started_ns: int
    folder: str
    git_sha: str
    params: dict[str, Any]
    metrics: dict[str, Any] = {}
    config_ids: list[str] = []
    error: str = ""
    finished_ns: int | None = None


def _plain(row: Mapping[Any, Any]) -> dict[str, Any]:
    return {str(k): v for k, v in row.items()}


class ConfigStore:
    """Configs, promotions and pipeline runs on the ledger's engine (mixed into ``Ledger``)."""

    engine: Engine

    # -- configs ---------------------------------------------------------------------------

    def put_config(self, cfg: ConfigRow) -> None:
        """Insert or replace a configuration (its promotion status is kept as given)."""
        from polylab.store.ledger import write_rows

        with self.engine.begin() as conn:
            write_rows(conn, [cfg])

    def get_config(self, config_id: str) -> ConfigRow | None:
        """One configuration, or ``None``."""
        with self.engine.connect() as conn:
            r = (
                conn.execute(select(S.configs).where(S.configs.c.id == config_id))
                .mappings()
                .first()
            )
        return None if r is None else msgspec.convert(_plain(r), ConfigRow)

    def find_config(self, prefix: str) -> ConfigRow:
        """The configuration whose id is ``prefix`` or starts with it (a unique prefix of at
        least 6 hex digits, as an operator types it); ``LedgerError`` names what is wrong."""
        exact = self.get_config(prefix)
        if exact is not None:
            return exact
        if len(prefix) < 6:
            raise LedgerError(f"config id {prefix!r}: give at least 6 characters")
        c = S.configs.c
        with self.engine.connect() as conn:
            ids = [r[0] for r in conn.execute(select(c.id).where(c.id.startswith(prefix)))]
        if not ids:
            raise LedgerError(f"no config {prefix!r} in the ledger")
        if len(ids) > 1:
            raise LedgerError(f"config id {prefix!r} is ambiguous ({len(ids)} match)")
        found = self.get_config(ids[0])
        assert found is not None
        return found

    def configs(self, *, status: str | None = None) -> list[ConfigRow]:
        """Every configuration (of one status when given), oldest first."""
        c = S.configs.c
        q = select(S.configs).order_by(c.created_ns, c.id)
        if status is not None:
            q = q.where(c.status == status)
        with self.engine.connect() as conn:
            return [msgspec.convert(_plain(r), ConfigRow) for r in conn.execute(q).mappings()]

    def promoted_config(self) -> ConfigRow | None:
        """The configuration currently promoted, or ``None``."""
        with self.engine.connect() as conn:
            r = (
                conn.execute(select(S.configs).where(S.configs.c.status == "promoted"))
                .mappings()
                .first()
            )
        return None if r is None else msgspec.convert(_plain(r), ConfigRow)

    # -- promotion -------------------------------------------------------------------------

    def promote_config(
        self,
        config_id: str,
        *,
        by: str = "",
        reason: str = "",
        promoted_ns: int | None = None,
    ) -> PromotionRow:
        """Make ``config_id`` the one promoted configuration (the previous one is ``retired``)
        and record it in the history. Gates are the caller's business (``pipeline.promote``);
        the ledger only keeps the record straight."""
        now = time.time_ns() if promoted_ns is None else promoted_ns
        with self.engine.begin() as conn:
            return self._switch(conn, config_id, "promote", by, reason, now)

    def rollback_config(
        self, *, by: str = "", reason: str = "", ts_ns: int | None = None
    ) -> PromotionRow:
        """Restore the configuration promoted before the current one (see the module doc);
        ``LedgerError`` when there is none."""
        now = time.time_ns() if ts_ns is None else ts_ns
        with self.engine.begin() as conn:
            stack = self._stack(conn)
            if len(stack) < 2:
                raise LedgerError(
                    "nothing to roll back to: "
                    + ("no configuration was ever promoted" if not stack else "one promotion only")
                )
            return self._switch(conn, stack[-2], "rollback", by, reason, now)

    def promotion_history(self, limit: int = 100) -> list[PromotionRow]:
        """The latest ``limit`` changes of the promoted configuration, newest first."""
        p = S.promotions.c
        q = select(S.promotions).order_by(p.ts_ns.desc(), p.id.desc()).limit(limit)
        with self.engine.connect() as conn:
            return [msgspec.convert(_plain(r), PromotionRow) for r in conn.execute(q).mappings()]

    def _stack(self, conn: Connection) -> list[str]:
        p = S.promotions.c
        stack: list[str] = []
        for cid, action in conn.execute(
            select(p.config_id, p.action).order_by(p.ts_ns, p.id)
        ).all():
            if action == "rollback":
                if stack:
                    stack.pop()
                if not stack or stack[-1] != cid:
                    stack.append(cid)
            else:
                stack.append(cid)
        return stack

    def _switch(
        self, conn: Connection, config_id: str, action: str, by: str, reason: str, now: int
    ) -> PromotionRow:
        c = S.configs.c
        if conn.execute(select(c.id).where(c.id == config_id)).first() is None:
            raise LedgerError(f"no config {config_id!r} in the ledger")
        prev = conn.execute(select(c.id).where(c.status == "promoted")).scalar_one_or_none()
        last = conn.execute(select(S.promotions.c.ts_ns).order_by(S.promotions.c.ts_ns.desc()))
        newest = last.scalar()
        if newest is not None and now <= newest:
            now = newest + 1  # history order is time order, even on a coarse clock
        conn.execute(S.configs.update().where(c.status == "promoted").values(status="retired"))
        conn.execute(
            S.configs.update().where(c.id == config_id).values(status="promoted", promoted_ns=now)
        )
        row = PromotionRow(
            id=uuid.uuid4().hex,
            config_id=config_id,
            previous_id=prev,
            action="rollback" if action == "rollback" else "promote",
            by=by,
            reason=reason,
            ts_ns=now,
        )
        conn.execute(S.promotions.insert().values(**msgspec.structs.asdict(row)))
        return row

    # -- pipeline runs ---------------------------------------------------------------------

    def start_pipeline_run(self, row: PipelineRunRow) -> None:
        """Record a pipeline run as it starts (status ``running``)."""
        with self.engine.begin() as conn:
            conn.execute(S.pipeline_runs.insert().values(**msgspec.structs.asdict(row)))

    def finish_pipeline_run(
        self,
        run_id: str,
        *,
        status: PipelineStatus,
        metrics: Mapping[str, Any] | None = None,
        config_ids: list[str] | None = None,
        error: str = "",
        finished_ns: int | None = None,
    ) -> None:
        """Close a pipeline run with its outcome, headline metrics and the configs it made."""
        if status not in ("ok", "failed"):
            raise LedgerError(f"a finished pipeline run is ok or failed, not {status!r}")
        vals: dict[str, Any] = {
            "status": status,
            "finished_ns": time.time_ns() if finished_ns is None else finished_ns,
            "error": error,
        }
        if metrics is not None:
            vals["metrics"] = dict(metrics)
        if config_ids is not None:
            vals["config_ids"] = list(config_ids)
        with self.engine.begin() as conn:
            res = conn.execute(
                S.pipeline_runs.update().where(S.pipeline_runs.c.id == run_id).values(**vals)
            )
        if res.rowcount == 0:
            raise LedgerError(f"no pipeline run {run_id!r} in the ledger")

    def pipeline_runs(self, *, name: str | None = None, limit: int = 100) -> list[PipelineRunRow]:
        """The latest pipeline runs (of one pipeline when given), newest first."""
        r = S.pipeline_runs.c
        q = select(S.pipeline_runs).order_by(r.started_ns.desc(), r.id.desc()).limit(limit)
        if name is not None:
            q = q.where(r.name == name)
        with self.engine.connect() as conn:
            return [msgspec.convert(_plain(m), PipelineRunRow) for m in conn.execute(q).mappings()]

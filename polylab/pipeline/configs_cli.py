"""``polylab configs list|show|diff|promote|rollback``: configurations in the ledger.

Ids are the config's SHA-256 (64 hex digits); every command takes a unique prefix of at least
6 (as ``list`` shows them), ``--json`` prints them whole. Money metrics are integer micros
(``*_micros``), shown as dollars in tables. ``promote`` evaluates the gates (``--gates``, or
``pipelines/gates.yaml`` when the config has no stored results), stores the results with the
config, and promotes only when all passed; ``promote`` and ``rollback`` write
``runs/configs/<id>.json`` and notify a running runner (``--redis-url`` / ``REDIS_URL``; without
Redis the runner polls the ledger). Operator errors: one line, exit 2.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import msgspec
import typer
from rich.console import Console
from rich.table import Table

from polylab.cli_support import PolylabGroup

if TYPE_CHECKING:
    from polylab.store.ledger import Ledger
    from polylab.store.ledger_rows import ConfigRow

__all__ = ["app"]

app = typer.Typer(
    help="Configurations in the ledger: list, show, diff, promote, rollback.",
    no_args_is_help=True,
    cls=PolylabGroup,
)
out = Console() if sys.stdout.isatty() else Console(width=200)  # tables on stdout
err = Console(stderr=True)

_DB_HELP = "ledger URL (default: $DATABASE_URL, else sqlite:///runs/polylab.db)"
DbOpt = Annotated[str | None, typer.Option("--database-url", help=_DB_HELP)]
JsonOpt = Annotated[bool, typer.Option("--json", help="print JSON (full ids)")]
RedisOpt = Annotated[
    str | None,
    typer.Option("--redis-url", help="bus to notify the runner on (default: $REDIS_URL)"),
]
PrefixOpt = Annotated[str, typer.Option(help="prefix of the bus channel names (as the runner's)")]
ByOpt = Annotated[str | None, typer.Option(help="who decides (default: $USER)")]
ReasonOpt = Annotated[str, typer.Option(help="why (kept in the ledger and the JSON record)")]
JsonDirOpt = Annotated[Path, typer.Option(help="where <config_id>.json is written")]

_METRIC_COLS = (
    ("out_of_sample.trades", "OOS trades"),
    ("out_of_sample.pnl_at_payout_micros", "OOS PnL at payout $"),
    ("out_of_sample.pnl_micros", "OOS PnL marked $"),
    ("out_of_sample.max_drawdown_micros", "OOS max DD $"),
)


@contextmanager
def _ledger(url: str | None) -> Iterator[Ledger]:
    """The ledger at ``url`` (default ``DATABASE_URL``, else the SQLite file), which must
    exist: a missing SQLite file is an error, not a new ledger."""
    from sqlalchemy.engine import make_url

    from polylab.store.ledger import Ledger, LedgerError, resolve_url

    resolved = resolve_url(url)
    u = make_url(resolved)
    if u.get_backend_name() == "sqlite" and not Path(u.database or "").is_file():
        raise LedgerError(f"no ledger file at {u.database!r}")
    ledger = Ledger.open(resolved, application_name="polylab-configs")
    try:
        yield ledger
    finally:
        ledger.close()


def _json(data: object) -> None:
    sys.stdout.write(msgspec.json.encode(data).decode() + "\n")


def _time(ns: int | None) -> str:
    if not ns:
        return ""
    return datetime.fromtimestamp(ns / 1e9, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _metric(metrics: dict[str, Any], path: str) -> Any:
    cur: Any = metrics
    for part in path.split("."):
        if not isinstance(cur, dict):
            return None
        cur = cur.get(part)
    return cur


def _show_value(path: str, v: Any) -> str:
    """Micros as dollars (exact), everything else as is."""
    from polylab.money import cash_to_str

    if v is None:
        return ""
    if path.endswith("_micros") and isinstance(v, int) and not isinstance(v, bool):
        return cash_to_str(v)
    return str(v)


def _gates_cell(row: ConfigRow) -> str:
    from polylab.pipeline.gates import all_passed

    if not row.gates:
        return "—"
    passed = sum(1 for r in row.gates.values() if isinstance(r, dict) and r.get("passed") is True)
    mark = "pass" if all_passed(row.gates) else "FAIL"
    return f"{mark} {passed}/{len(row.gates)}"


def _summary(row: ConfigRow) -> dict[str, Any]:
    from polylab.pipeline.gates import all_passed

    return {
        "id": row.id,
        "status": row.status,
        "created_ns": row.created_ns,
        "promoted_ns": row.promoted_ns,
        "git_sha": row.git_sha,
        "strategies": row.body.get("strategies"),
        "gates_passed": all_passed(row.gates),
        "gates": row.gates,
        "metrics": row.metrics,
        "data_hashes": row.data_hashes,
    }


@app.command("list")
def list_cmd(
    database_url: DbOpt = None,
    status: Annotated[
        str | None, typer.Option(help="only candidate, promoted or retired configs")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Every configuration, oldest first: status, gates, headline out-of-sample metrics."""
    if status is not None and status not in ("candidate", "promoted", "retired"):
        raise typer.BadParameter(f"{status!r}: candidate, promoted or retired", param_hint="status")
    with _ledger(database_url) as ledger:
        rows = ledger.configs(status=status)
    if as_json:
        _json([_summary(r) for r in rows])
        return
    t = Table(title=f"configs ({len(rows)})")
    for col in ("id", "status", "created (UTC)", "strategies", "gates"):
        t.add_column(col, no_wrap=col == "id")
    for _, label in _METRIC_COLS:
        t.add_column(label, justify="right")
    t.add_column("git sha")
    for r in rows:
        strategies = r.body.get("strategies")
        names = ", ".join(strategies) if isinstance(strategies, list) else ""
        t.add_row(
            r.id[:12],
            r.status,
            _time(r.created_ns),
            names,
            _gates_cell(r),
            *(_show_value(p, _metric(r.metrics, p)) for p, _ in _METRIC_COLS),
            r.git_sha[:10],
        )
    out.print(t)


@app.command("show")
def show_cmd(
    config_id: Annotated[str, typer.Argument(help="config id or a unique prefix (≥ 6)")],
    database_url: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """One configuration: body, provenance, metrics, gate results, promotion history."""
    from polylab.pipeline.config_diff import flatten

    with _ledger(database_url) as ledger:
        row = ledger.find_config(config_id)
        history = [h for h in ledger.promotion_history(limit=10_000) if h.config_id == row.id]
    if as_json:
        _json({**_summary(row), "body": row.body, "history": msgspec.to_builtins(history)})
        return
    head = Table(title="config", show_header=False)
    head.add_row("id", row.id)
    head.add_row("status", row.status)
    head.add_row("created", _time(row.created_ns))
    head.add_row("promoted", _time(row.promoted_ns))
    head.add_row("git sha", row.git_sha)
    for path, digest in row.data_hashes.items():
        head.add_row(f"data {path}", digest)
    out.print(head)
    body = Table(title="parameters")
    body.add_column("parameter")
    body.add_column("value")
    for k, v in flatten(row.body).items():
        body.add_row(k, str(v))
    out.print(body)
    met = Table(title="metrics")
    met.add_column("metric")
    met.add_column("value", justify="right")
    for k, v in flatten(row.metrics).items():
        met.add_row(k, _show_value(k, v))
    out.print(met)
    gates = Table(title="gates")
    for col in ("gate", "metric", "value", "op", "limit", "result"):
        gates.add_column(col)
    for name, r in row.gates.items():
        g = r if isinstance(r, dict) else {}
        ok = g.get("passed") is True
        gates.add_row(
            name,
            str(g.get("metric", "")),
            str(g.get("value", "")),
            str(g.get("op", "")),
            str(g.get("limit", "")),
            "pass" if ok else f"FAIL {g.get('reason', '')}".strip(),
        )
    out.print(gates)
    hist = Table(title="promotion history")
    for col in ("when (UTC)", "action", "by", "reason", "previous"):
        hist.add_column(col)
    for h in history:
        hist.add_row(_time(h.ts_ns), h.action, h.by, h.reason, (h.previous_id or "")[:12])
    out.print(hist)


@app.command("diff")
def diff_cmd(
    a: Annotated[str, typer.Argument(help="config A (id or unique prefix)")],
    b: Annotated[str, typer.Argument(help="config B (id or unique prefix)")],
    database_url: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """What changed from A to B: parameters, and every metric with its delta B − A."""
    from polylab.pipeline.config_diff import metric_deltas, param_changes

    with _ledger(database_url) as ledger:
        ra, rb = ledger.find_config(a), ledger.find_config(b)
    params = param_changes(ra.body, rb.body)
    deltas = metric_deltas(ra.metrics, rb.metrics)
    if as_json:
        _json(
            {
                "a": ra.id,
                "b": rb.id,
                "params": msgspec.to_builtins(params),
                "metrics": msgspec.to_builtins(deltas),
            }
        )
        return
    pt = Table(title=f"parameters {ra.id[:12]} → {rb.id[:12]}")
    for col in ("parameter", "A", "B"):
        pt.add_column(col)
    for c in params:
        pt.add_row(c.path, str(c.a), str(c.b))
    out.print(pt)
    mt = Table(title="metrics")
    for col in ("metric", "A", "B", "B − A"):
        mt.add_column(col, justify="right" if col != "metric" else "left")
    for d in deltas:
        delta = "" if d.delta is None else _show_value(d.path, d.delta)
        mt.add_row(d.path, _show_value(d.path, d.a), _show_value(d.path, d.b), delta)
    out.print(mt)


@app.command("promote")
def promote_cmd(
    config_id: Annotated[str, typer.Argument(help="config id or a unique prefix (≥ 6)")],
    gates: Annotated[
        Path | None,
        typer.Option(
            help="gates file to evaluate now (default: the stored results, else "
            "pipelines/gates.yaml)"
        ),
    ] = None,
    by: ByOpt = None,
    reason: ReasonOpt = "",
    database_url: DbOpt = None,
    redis_url: RedisOpt = None,
    bus_prefix: PrefixOpt = "",
    json_dir: JsonDirOpt = Path("runs/configs"),
    as_json: JsonOpt = False,
) -> None:
    """Evaluate the gates, then promote when every one passed; notify the runner."""
    from polylab.pipeline import promote as P

    who = by or P.default_operator()
    with _ledger(database_url) as ledger:
        row = ledger.find_config(config_id)
        if gates is not None or not row.gates:
            row = P.evaluate_candidate(ledger, row.id, gates or P.DEFAULT_GATES)
        rec = P.promote(
            ledger,
            row.id,
            by=who,
            reason=reason,
            json_dir=json_dir,
            redis_url=redis_url,
            bus_prefix=bus_prefix,
        )
    _done(rec, json_dir, as_json)


@app.command("rollback")
def rollback_cmd(
    by: ByOpt = None,
    reason: ReasonOpt = "",
    database_url: DbOpt = None,
    redis_url: RedisOpt = None,
    bus_prefix: PrefixOpt = "",
    json_dir: JsonDirOpt = Path("runs/configs"),
    as_json: JsonOpt = False,
) -> None:
    """Restore the configuration promoted before the current one; notify the runner."""
    from polylab.pipeline import promote as P

    with _ledger(database_url) as ledger:
        rec = P.rollback(
            ledger,
            by=by or P.default_operator(),
            reason=reason,
            json_dir=json_dir,
            redis_url=redis_url,
            bus_prefix=bus_prefix,
        )
    _done(rec, json_dir, as_json)


def _done(rec: Any, json_dir: Path, as_json: bool) -> None:
    record = json_dir / f"{rec.config_id}.json"
    if as_json:
        _json({**msgspec.to_builtins(rec), "record": str(record)})
        return
    verb = "promoted" if rec.action == "promote" else "rolled back to"
    err.print(
        f"{verb} config {rec.config_id} (previous {rec.previous_id or 'none'}) by {rec.by}; "
        f"record {record}",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )

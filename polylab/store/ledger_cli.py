"""``polylab ledger …``: look into the SQL ledger from the shell (export, runs)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer
from rich.console import Console

if TYPE_CHECKING:
    from polylab.store.ledger import Ledger

__all__ = ["app"]

app = typer.Typer(help="The SQL ledger: runs, orders, fills, positions, PnL.", no_args_is_help=True)
console = Console(stderr=True)

_URL_HELP = "database URL (default: $DATABASE_URL, else sqlite:///runs/polylab.db)"


def _fail(msg: str) -> NoReturn:
    """One line naming the problem, exit code 2."""
    console.print(
        f"polylab: error: {msg}", style="red", markup=False, soft_wrap=True, highlight=False
    )
    raise typer.Exit(2)


@app.callback()
def _group() -> None:
    """The SQL ledger: runs, orders, fills, positions, PnL."""


def _open_existing(url: str | None, debug: bool) -> Ledger:
    """The ledger at ``url`` without creating anything; exits 2 naming the problem."""
    from sqlalchemy.engine import make_url

    from polylab.store.ledger import Ledger, LedgerError, redact_url, resolve_url

    try:
        resolved = resolve_url(url)
        u = make_url(resolved)
        if u.get_backend_name() == "sqlite" and not Path(u.database or "").is_file():
            raise LedgerError(f"no ledger file at {u.database!r}")
        ledger = Ledger.open(resolved, migrate=False)
        try:
            rev = ledger.revision()
        except Exception as exc:
            ledger.close()
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise LedgerError(f"cannot read ledger {redact_url(resolved)}: {first}") from exc
        if rev is None:
            ledger.close()
            raise LedgerError(f"no ledger schema at {redact_url(resolved)}")
        return ledger
    except Exception as exc:
        if debug:
            raise
        _fail(str(exc))


@app.command("export")
def export_cmd(
    out_dir: Annotated[Path, typer.Argument(help="folder for <table>.parquet files")],
    url: Annotated[str | None, typer.Option(help=_URL_HELP)] = None,
    debug: Annotated[bool, typer.Option(help="show tracebacks")] = False,
) -> None:
    """Write each ledger table as Parquet (money as integer *_micros columns)."""
    from polylab.store.ledger_export import export_tables

    ledger = _open_existing(url, debug)
    try:
        counts = export_tables(ledger, out_dir)
    except OSError as exc:
        if debug:
            raise
        _fail(f"cannot write {out_dir}: {exc.strerror or exc}")
    finally:
        ledger.close()
    for name, n in counts.items():
        console.print(f"{name:14} {n:>9} rows → {out_dir / (name + '.parquet')}")

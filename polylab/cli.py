"""The ``polylab`` command line (typer + rich). Exit codes: 0 ok, 1 check failed (e.g.
mismatches), 2 bad input (config, file)."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import Annotated

import msgspec
import typer
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn
from rich.table import Table

from polylab.analysis.windows import Window
from polylab.feed.replay import ReplayResult, replay
from polylab.feed.synthetic import SyntheticConfig, write_synthetic
from polylab.money import price_micros_to_str

__all__ = ["app", "main"]

app = typer.Typer(
    help="polylab: research-to-production workbench for Polymarket CLOB markets.",
    no_args_is_help=True,
    add_completion=False,
)
console = Console(stderr=True)


def _register_subapps() -> None:
    """Sub-commands living next to the code they drive (sim, sports, …)."""
    import importlib

    for mod, name in (("polylab.sim.cli", "sim"), ("polylab.feed.sports_cli", "sports")):
        try:
            sub = importlib.import_module(mod)
        except ModuleNotFoundError as exc:
            if exc.name != mod:
                raise
            continue
        app.add_typer(sub.app, name=name)


def _window_rows(windows: list[Window], top: int) -> list[dict[str, object]]:
    return [
        {
            "group": w.group[:14],
            "kind": w.kind,
            "label": w.label,
            "side": w.side,
            "best_sum": price_micros_to_str(w.best_sum),
            "edge": price_micros_to_str(w.edge),
            "duration_ms": round(w.duration_ns / 1e6, 3),
            "updates": w.updates,
        }
        for w in windows[:top]
    ]


def _print_summary(res: ReplayResult, windows: list[Window], top: int) -> None:
    t = Table(title="replay", show_header=False)
    for k, v in msgspec.structs.asdict(res).items():
        if k != "first_mismatches":
            t.add_row(k, str(v))
    console.print(t)
    if res.first_mismatches:
        console.print("[red]first mismatches:[/red]", res.first_mismatches[:5])
    rows = _window_rows(windows, top)
    if rows:
        w = Table(title=f"top {len(rows)} sum windows (best edge first)")
        for col in rows[0]:
            w.add_column(col)
        for r in rows:
            w.add_row(*(str(v) for v in r.values()))
        console.print(w)
    else:
        console.print("no top-of-book sum window found")


@app.command("replay")
def replay_cmd(
    path: Annotated[Path, typer.Argument(help="recording (.jsonl or .jsonl.zst)")],
    verify: Annotated[bool, typer.Option(help="check every stated best bid/ask")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON object")] = False,
    top: Annotated[int, typer.Option(help="sum windows to list")] = 10,
) -> None:
    """Rebuild every book from a recording; with --verify exit 1 on any mismatch."""
    if not path.is_file():
        console.print(f"[red]no such recording: {path}[/red]")
        raise typer.Exit(2)
    if as_json:
        res, _, windows, _ = replay(path, verify=verify)
        out = msgspec.structs.asdict(res)
        out["top_windows"] = _window_rows(windows, top)
        sys.stdout.write(msgspec.json.encode(out).decode() + "\n")
    else:
        size = path.stat().st_size
        with Progress(
            "[progress.description]{task.description}",
            BarColumn(),
            DownloadColumn(),
            TimeRemainingColumn(),
            console=console,
            transient=True,
            disable=size < 5_000_000,
        ) as prog:
            task = prog.add_task(
                f"replaying {path.name}", total=None if path.suffix == ".zst" else size
            )
            res, _, windows, _ = replay(
                path, verify=verify, progress=lambda b: prog.update(task, completed=b)
            )
        _print_summary(res, windows, top)
    if verify and res.mismatches:
        raise typer.Exit(1)


@app.command("synth")
def synth_cmd(
    out: Annotated[Path, typer.Argument(help="where to write the recording (.jsonl[.zst])")],
    seed: int = 7,
    duration_s: float = 30.0,
    rate_hz: float = 200.0,
    binary_markets: int = 6,
    negrisk_outcomes: int = 4,
) -> None:
    """Write a seeded synthetic recording (mirrored binary books, stale legs, a neg-risk event)."""
    cfg = SyntheticConfig(
        seed=seed,
        duration_s=duration_s,
        rate_hz=rate_hz,
        binary_markets=binary_markets,
        negrisk_outcomes=negrisk_outcomes,
    )
    n = write_synthetic(out, cfg)
    console.print(f"wrote {n} records to {out}")


@app.command("demo")
def demo_cmd(
    seed: int = 7,
    duration_s: float = 60.0,
    keep: Annotated[Path | None, typer.Option(help="keep the recording here")] = None,
) -> None:
    """Generate a synthetic session, replay it with --verify, print what was found."""
    with tempfile.TemporaryDirectory() as d:
        path = keep or Path(d) / "synthetic.jsonl.zst"
        cfg = SyntheticConfig(seed=seed, duration_s=duration_s)
        n = write_synthetic(path, cfg)
        console.print(
            f"[bold]1.[/bold] synthetic recording: {n} records, {duration_s:.0f} s, "
            f"seed {seed} → {path}"
        )
        res, _, windows, _ = replay(path, verify=True)
        console.print("[bold]2.[/bold] replay --verify")
        _print_summary(res, windows, 10)
        binary = [w for w in windows if w.kind == "binary" and w.side == "buy"]
        neg = [w for w in windows if w.kind == "negrisk"]
        console.print(
            f"[bold]3.[/bold] {len(binary)} binary stale-leg buy windows "
            f"(median {_median_ms(binary)} ms), {len(neg)} neg-risk structural windows "
            f"(median {_median_ms(neg)} ms); mismatches {res.mismatches}, "
            f"{res.updates_per_s:,.0f} level updates/s with verify on"
        )
        if res.mismatches:
            raise typer.Exit(1)


def _median_ms(ws: list[Window]) -> str:
    if not ws:
        return "-"
    d = sorted(w.duration_ns for w in ws)
    return f"{d[len(d) // 2] / 1e6:.1f}"


def main() -> None:
    """Console-script entry point."""
    _register_subapps()
    app()


if __name__ == "__main__":
    main()

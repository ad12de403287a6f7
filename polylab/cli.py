"""The ``polylab`` command line (typer + rich). Exit codes: 0 ok, 1 check failed (e.g.
mismatches), 2 bad input (config, file, URL, key, port, value): one stderr line naming the
problem and the value (``polylab.cli_support``); ``polylab --debug …`` adds the traceback."""

from __future__ import annotations

import contextlib
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import msgspec
import typer
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn
from rich.table import Table

from polylab.analysis.replay import ReplayResult, replay
from polylab.analysis.windows import Window
from polylab.book.synthetic import SyntheticConfig, write_synthetic
from polylab.cli_support import PolylabGroup, check_url, prepare_out_dir, venue_errors
from polylab.errors import InputError
from polylab.feed.recording import RecordingError
from polylab.money import cash_to_str, price_micros_to_str

if TYPE_CHECKING:
    from polylab.backtest import BacktestResult
    from polylab.config import PolylabConfig
    from polylab.venue import VenueProfile

VENUE_HELP = "polymarket (production hosts, POLYMARKET_*_URL overrides) or sim"


def _venue(name: str | None, url: str | None) -> tuple[VenueProfile | None, str | None]:
    """``--venue``/``--url`` → (a named profile, or None) and the simulator URL (or None: the
    built-in simulator). A bad name or override URL raises ``VenueError`` (a ValueError: one
    line, exit 2)."""
    from polylab.venue import VenueError, resolve

    if name is None or name == "sim":
        return None, url
    if url is not None:
        raise VenueError(f"--url {url!r} is for --venue sim; --venue {name} takes its hosts")
    return resolve(name), None


def _where(profile: VenueProfile | None, url: str | None) -> str | None:
    """What ``venue_errors`` names when a session cannot use its venue (None: the built-in
    simulator, whose errors are bugs)."""
    if profile is None:
        return url
    return f"{profile.name} (CLOB {profile.clob}, Gamma {profile.gamma})"


__all__ = ["app", "main"]

app = typer.Typer(
    help="polylab: research-to-production workbench for Polymarket CLOB markets.",
    no_args_is_help=True,
    add_completion=False,
    cls=PolylabGroup,
    pretty_exceptions_show_locals=False,
)
console = Console(stderr=True)


@app.callback()
def _root(
    debug: Annotated[
        bool, typer.Option("--debug", help="on errors show the traceback; log at debug level")
    ] = False,
    log_file: Annotated[
        Path | None, typer.Option(help="also write the logs to this file (appended)")
    ] = None,
) -> None:
    """Global options; ``PolylabGroup.invoke`` reads them (logging, error display)."""


def _register_subapps() -> None:
    """Sub-commands living next to the code they drive (sim, sports, …); idempotent."""
    import importlib

    have = {g.name for g in app.registered_groups}
    for mod, name in (
        ("polylab.sim.cli", "sim"),
        ("polylab.feed.sports_cli", "sports"),
        ("polylab.store.ledger_cli", "ledger"),
        ("polylab.research.sweep_cli", "sweep"),
        ("polylab.dashboard.cli", "dashboard"),
        ("polylab.pipeline.configs_cli", "configs"),
        ("polylab.store.runs_cli", "runs"),
        ("polylab.pipeline.cli", "pipeline"),
    ):
        if name in have:
            continue
        try:
            sub = importlib.import_module(mod)
        except ModuleNotFoundError as exc:
            if exc.name != mod:
                raise
            continue
        if name == "sim":
            from polylab.runner.record_cli import sim_record_cmd

            sub.app.command("record")(sim_record_cmd)
        app.add_typer(sub.app, name=name)
    _register_run()


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


@contextlib.contextmanager
def _recording_errors() -> Iterator[None]:
    """A file that is not a recording at all: one line naming it and why, exit 2."""
    try:
        yield
    except RecordingError as exc:
        raise InputError(str(exc)) from None


@app.command("replay")
def replay_cmd(
    path: Annotated[Path, typer.Argument(help="recording (.jsonl or .jsonl.zst)")],
    verify: Annotated[bool, typer.Option(help="check every stated best bid/ask")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON object")] = False,
    top: Annotated[int, typer.Option(min=0, help="sum windows to list")] = 10,
) -> None:
    """Rebuild every book from a recording; with --verify exit 1 on any mismatch."""
    _check_recording(path)
    with _recording_errors():
        _replay(path, verify, as_json, top)


def _replay(path: Path, verify: bool, as_json: bool, top: int) -> None:
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
    duration_s: Annotated[float, typer.Option(min=0.0, help="seconds of feed")] = 30.0,
    rate_hz: Annotated[float, typer.Option(help="actions per second (> 0)")] = 200.0,
    binary_markets: Annotated[int, typer.Option(min=0)] = 6,
    negrisk_outcomes: Annotated[int, typer.Option(min=0)] = 4,
) -> None:
    """Write a seeded synthetic recording (mirrored binary books, stale legs, a neg-risk event)."""
    if not rate_hz > 0:
        raise InputError(f"--rate-hz must be > 0, was {rate_hz}")
    cfg = SyntheticConfig(
        seed=seed,
        duration_s=duration_s,
        rate_hz=rate_hz,
        binary_markets=binary_markets,
        negrisk_outcomes=negrisk_outcomes,
    )
    n = write_synthetic(out, cfg)
    console.print(f"wrote {n} records to {out}")


def _check_recording(path: Path) -> None:
    if not path.is_file():
        raise InputError(f"no such recording: {str(path)!r}")


def _load_cfg(path: Path | None) -> PolylabConfig:
    """The config, with its strategies (plugins included) checked before anything starts."""
    from polylab.config import build_strategies, load_config

    cfg = load_config(path)
    build_strategies(cfg)
    return cfg


def _check_meta(meta: Path | None) -> None:
    """A metadata file that cannot be read or decoded fails here, naming the file."""
    if meta is None:
        return
    from polylab.feed.recording import decode_meta

    try:
        decode_meta(meta.read_text())
    except (OSError, ValueError) as exc:
        raise InputError(f"metadata file {str(meta)!r}: {exc}") from None


def _result_table(res: BacktestResult, title: str) -> Table:
    t = Table(title=title, show_header=False)
    for k, v in msgspec.structs.asdict(res).items():
        if k == "by_strategy":
            for name, st in v.items():
                t.add_row(
                    f"  {name}",
                    f"{st.intents} intents, {st.rejections} rejected, "
                    f"{st.trades} trades ({st.closed} closed), realized "
                    f"{cash_to_str(st.realized)} $, fees {cash_to_str(st.fees)} $",
                )
        elif k == "provenance" and v is not None:
            t.add_row("code", v.code_version)
            t.add_row("data_hash", v.data_hash[:16] or "-")
        elif k.endswith("_micros") or k in (
            "pnl",
            "pnl_at_payout",
            "realized",
            "unrealized",
            "fees",
        ):
            t.add_row(k, f"{cash_to_str(v)} $")
        else:
            t.add_row(k, str(v))
    return t


@app.command("backtest")
def backtest_cmd(
    recording: Annotated[Path, typer.Argument(help="recording (.jsonl or .jsonl.zst)")],
    config: Annotated[Path | None, typer.Option(help="config file (TOML or JSON)")] = None,
    meta: Annotated[Path | None, typer.Option(help='market metadata {"markets": [...]}')] = None,
    out: Annotated[Path | None, typer.Option(help="run folder (default runs/backtest-…)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON object")] = False,
) -> None:
    """Backtest the configured strategies on a recording; writes a run folder."""
    from polylab.backtest import run_backtest

    _check_recording(recording)
    cfg = _load_cfg(config)
    _check_meta(meta)
    out_dir = prepare_out_dir(out or Path("runs") / f"backtest-{time.strftime('%Y%m%d-%H%M%S')}")
    with _recording_errors():
        res, _, _ = run_backtest(recording, cfg, meta=meta, out_dir=out_dir)
    if as_json:
        sys.stdout.write(msgspec.json.encode(res).decode() + "\n")
    else:
        console.print(_result_table(res, f"backtest of {recording.name} → {out_dir}"))


def _paper_session(
    cfg: PolylabConfig,
    url: str | None,
    seconds: float | None,
    seed: int,
    out_dir: Path,
    title: str,
    sim_overrides: dict[str, Any] | None = None,
    profile: VenueProfile | None = None,
) -> BacktestResult:
    import asyncio

    from rich.live import Live

    from polylab.runner.paper import PaperRun, Venue, run_paper, stop_on_signals, venue

    def render(run: PaperRun) -> Table:
        snap = run.portfolio.snapshot(run.engine.registry.books)
        st = run.engine.stats
        t = Table(title=title, show_header=False)
        t.add_row("elapsed", f"{(time.time_ns() - run.started) / 1e9:.0f} s")
        t.add_row("books / events", f"{len(run.engine.books)} / {st.events:,}")
        t.add_row("intents / approved / rejected", f"{st.intents} / {st.approved} / {st.rejected}")
        t.add_row("trades / fills", f"{snap.trades} / {snap.fills}")
        t.add_row("unfilled legs / unwind fills", f"{st.unfilled_legs} / {st.unwind_fills}")
        t.add_row(
            "pnl (realized + unrealized)", f"{cash_to_str(snap.realized + snap.unrealized)} $"
        )
        t.add_row("fees", f"{cash_to_str(snap.fees)} $")
        t.add_row(
            "feed frames / reconnects",
            f"{run.feed.counters.frames:,} / {run.feed.counters.reconnects}",
        )
        return t

    async def main() -> BacktestResult:
        stop = stop_on_signals()  # Ctrl-C / SIGTERM: stop cleanly, keep the session
        with venue_errors(where):
            async with venue(url, seed=seed, sim_overrides=sim_overrides, profile=profile) as v:
                return await session(v, stop)

    async def session(v: Venue, stop: asyncio.Event) -> BacktestResult:
        with Live(console=console, refresh_per_second=2, transient=True) as live:
            res, _ = await run_paper(
                cfg,
                v,
                seconds=seconds,
                out_dir=out_dir,
                on_tick=lambda r: live.update(render(r)),
                stop=stop,
            )
        return res

    where = _where(profile, url)
    try:
        return asyncio.run(main())
    except KeyboardInterrupt:
        console.print("[yellow]stopped[/yellow]")
        raise typer.Exit(130) from None


@app.command("paper")
def paper_cmd(
    url: Annotated[
        str | None,
        typer.Option(help="a running simulator's base URL; default: start the built-in one"),
    ] = None,
    venue_name: Annotated[
        str | None, typer.Option("--venue", help=f"{VENUE_HELP}; default: the simulator")
    ] = None,
    seconds: Annotated[float | None, typer.Option(min=0.0, help="stop after this long (s)")] = None,
    config: Annotated[Path | None, typer.Option(help="config file (TOML or JSON)")] = None,
    seed: Annotated[int, typer.Option(help="simulator seed (built-in simulator only)")] = 7,
    out: Annotated[Path | None, typer.Option(help="run folder")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON object")] = False,
) -> None:
    """Paper-trade against the simulator (or a URL, or --venue) until stopped, with a live
    summary."""
    check_url(url)
    profile, url = _venue(venue_name, url)
    cfg = _load_cfg(config)
    out_dir = prepare_out_dir(out or Path("runs") / f"paper-{time.strftime('%Y%m%d-%H%M%S')}")
    res = _paper_session(cfg, url, seconds, seed, out_dir, "paper trading", profile=profile)
    if as_json:
        sys.stdout.write(msgspec.json.encode(res).decode() + "\n")
    else:
        console.print(_result_table(res, f"paper session → {out_dir}"))


@app.command("live")
def live_cmd(
    url: Annotated[
        str | None,
        typer.Option(help="a running simulator's base URL (with --venue sim)"),
    ] = None,
    venue_name: Annotated[
        str | None,
        typer.Option("--venue", help=f"{VENUE_HELP}; default: polymarket (sim with --url)"),
    ] = None,
    live: Annotated[
        bool, typer.Option("--live", help="really send orders (else DRY_RUN: sign and log only)")
    ] = False,
    seconds: Annotated[float | None, typer.Option(min=0.0, help="stop after this long (s)")] = None,
    config: Annotated[Path | None, typer.Option(help="config file (TOML or JSON)")] = None,
    seed: Annotated[int, typer.Option(help="simulator seed (built-in simulator only)")] = 7,
    out: Annotated[Path | None, typer.Option(help="run folder")] = None,
) -> None:
    """Run the strategies with the live executor: DRY_RUN unless --live; needs
    POLY_PRIVATE_KEY (and POLY_API_* or L1 derivation) from the environment or .env."""
    import asyncio

    from polylab.execution.live import load_credentials
    from polylab.runner.live import check_credentials, run_live
    from polylab.runner.paper import stop_on_signals, venue

    check_url(url)
    profile, url = _venue(venue_name or ("sim" if url else "polymarket"), url)
    cfg = _load_cfg(config)
    creds = load_credentials()
    check_credentials(creds)
    out_dir = prepare_out_dir(out or Path("runs") / f"live-{time.strftime('%Y%m%d-%H%M%S')}")
    mode = "LIVE" if live and not cfg.live.dry_run else "DRY_RUN"
    where = profile.clob if profile is not None else url or "the built-in simulator"
    console.print(f"[bold]{mode}[/bold]: {', '.join(cfg.strategies)} at {where}")

    async def main() -> BacktestResult:
        stop = stop_on_signals()  # Ctrl-C / SIGTERM: cancel open orders, write the run folder
        with venue_errors(_where(profile, url)):
            async with venue(url, seed=seed, profile=profile) as v:
                res, _, ex = await run_live(
                    cfg, v, creds, live=live, seconds=seconds, out_dir=out_dir, stop=stop
                )
        console.print(f"orders signed: {ex.signed}")
        return res

    try:
        res = asyncio.run(main())
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
    console.print(_result_table(res, f"{mode} session → {out_dir}"))


def _register_run() -> None:
    """``polylab run`` (the headless runner) lives with its service; idempotent."""
    if any(c.name == "run" for c in app.registered_commands):
        return
    from polylab.runner.service_cli import run_cmd

    app.command("run")(run_cmd)


def _register_record() -> None:
    """``polylab record`` lives with the recorder (``runner/record_cli.py``); idempotent."""
    if any(c.name == "record" for c in app.registered_commands):
        return
    from polylab.runner.record_cli import record_cmd

    app.command("record")(record_cmd)


_register_record()


def _register_doctor() -> None:
    """``polylab doctor`` (the preflight) lives with its checks; idempotent."""
    if any(c.name == "doctor" for c in app.registered_commands):
        return
    from polylab.runner.doctor_cli import doctor_cmd

    app.command("doctor")(doctor_cmd)


_register_doctor()  # at import, so ``polylab.cli.app`` has it in tests too


@app.command("compare")
def compare_cmd(
    run_a: Annotated[Path, typer.Argument(help="run folder A (e.g. a paper session)")],
    run_b: Annotated[Path, typer.Argument(help="run folder B (e.g. the backtest of its feed)")],
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON object")] = False,
) -> None:
    """Where two runs differ: intents, fills, PnL by strategy, and the first divergence."""
    from polylab.compare import CompareError, compare_runs, render

    try:
        c = compare_runs(run_a, run_b)
    except CompareError as exc:
        raise InputError(str(exc)) from None
    except (OSError, ValueError) as exc:  # e.g. a summary.json that is not UTF-8
        raise InputError(f"cannot compare {str(run_a)!r} with {str(run_b)!r}: {exc}") from None
    if as_json:
        sys.stdout.write(msgspec.json.encode(c).decode() + "\n")
    else:
        for t in render(c):
            Console().print(t)


@app.command("demo")
def demo_cmd(
    seed: int = 7,
    seconds: Annotated[float, typer.Option(min=0.0, help="paper-trading time (s)")] = 30.0,
) -> None:
    """The main job on embedded defaults: verify replay on a synthetic recording, then start
    the simulator and paper-trade SumTo100, Clipper and Sniper against it."""
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "synthetic.jsonl.zst"
        n = write_synthetic(path, SyntheticConfig(seed=seed, duration_s=20.0))
        res, _, windows, _ = replay(path, verify=True)
        binary = [w for w in windows if w.kind == "binary" and w.side == "buy"]
        neg = [w for w in windows if w.kind == "negrisk" and w.label == "structural"]
        console.print(
            f"[bold]1. replay --verify[/bold] of a {n:,}-record synthetic recording: "
            f"{res.checked:,} stated best bid/ask checked, {res.mismatches} mismatches; "
            f"{len(binary)} binary stale-leg windows (median {_median_ms(binary)} ms), "
            f"{len(neg)} neg-risk structural windows (median {_median_ms(neg)} ms)"
        )
        if res.mismatches:
            raise typer.Exit(1)
    cfg = _load_cfg(None)
    out_dir = prepare_out_dir(Path("runs") / f"demo-{time.strftime('%Y%m%d-%H%M%S')}")
    console.print(
        f"[bold]2. paper trading[/bold] {', '.join(cfg.strategies)} against the "
        f"built-in simulator for {seconds:.0f} s (seed {seed}) …"
    )
    # games short enough to go final (and pay the Sniper) within the session
    fast_games = {"game_delay_s": [1.0, 4.0], "game_length_s": [5.0, 12.0]}
    pres = _paper_session(cfg, None, seconds, seed, out_dir, "demo: paper trading", fast_games)
    console.print(_result_table(pres, f"3. results → {out_dir}"))


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

"""``polylab run``: the headless runner's command (see ``runner.service``)."""

from __future__ import annotations

import asyncio
import gc
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import msgspec
import typer

from polylab.errors import ConfigError
from polylab.money import MICROS

if TYPE_CHECKING:
    from polylab.dashboard.auth import AuthSettings
    from polylab.runner.dashboard_server import EmbeddedDashboard
    from polylab.runner.service import RunnerService

__all__ = ["run_cmd"]


def run_cmd(
    url: Annotated[
        str | None,
        typer.Option(help="venue/simulator base URL; default: start the built-in simulator"),
    ] = None,
    live: Annotated[
        bool,
        typer.Option("--live", help="trade with the live executor (DRY_RUN unless DRY_RUN=false)"),
    ] = False,
    send: Annotated[
        bool, typer.Option("--send", help="with --live: really send orders (needs the key)")
    ] = False,
    seconds: Annotated[
        float | None, typer.Option(min=0.0, help="stop after this long (s; tests)")
    ] = None,
    config: Annotated[Path | None, typer.Option(help="config file (TOML or JSON)")] = None,
    promoted: Annotated[
        bool,
        typer.Option("--promoted", help="start from the ledger's promoted config (not --config)"),
    ] = False,
    seed: Annotated[int, typer.Option(help="simulator seed (built-in simulator only)")] = 7,
    out: Annotated[Path | None, typer.Option(help="run folder")] = None,
    redis_url: Annotated[
        str | None, typer.Option(help="bus (default: REDIS_URL, else in-process)")
    ] = None,
    database_url: Annotated[
        str | None, typer.Option(help="ledger (default: DATABASE_URL, else runs/polylab.db)")
    ] = None,
    bus_prefix: Annotated[str, typer.Option(help="prefix for bus channel names")] = "",
    as_json: Annotated[bool, typer.Option("--json", help="print the summary as JSON")] = False,
    http_port: Annotated[
        int | None,
        typer.Option(
            min=0, max=65535, help="/health and /metrics port (default: POLYLAB_HTTP_PORT, 8080)"
        ),
    ] = None,
    dashboard: Annotated[
        bool,
        typer.Option(
            "--dashboard",
            help="also serve the operator dashboard from this process (needs "
            "DASHBOARD_JWT_SECRET; codes: `polylab dashboard otp --dashboard-url URL`)",
        ),
    ] = False,
    dashboard_port: Annotated[
        int, typer.Option(min=0, max=65535, help="dashboard port (0: a free one)")
    ] = 8050,
    dashboard_host: Annotated[str, typer.Option(help="dashboard address")] = "127.0.0.1",
) -> None:
    """Run paper (default) or live until SIGTERM/SIGINT, publishing poly:state every 100 ms,
    signals, trades and errors on the bus and recording every fill in the ledger first."""
    from polylab.cli import _load_cfg, console
    from polylab.cli_support import check_url, prepare_out_dir, venue_errors
    from polylab.execution.live import load_credentials
    from polylab.ops.service import Ops, OpsConfig
    from polylab.runner.live import check_credentials, run_live
    from polylab.runner.paper import PaperRun, run_paper, stop_on_signals, venue
    from polylab.runner.service import RunnerService, ServiceOptions

    check_url(url)
    mode = "live" if live else "paper"
    options = ServiceOptions.from_env(
        redis_url=redis_url, database_url=database_url, bus_prefix=bus_prefix
    )
    promoted_id: str | None = None
    if promoted:  # the ledger's promoted config, as gated (no environment overrides)
        from polylab.runner.reload import load_promoted

        if config is not None:
            raise ConfigError(f"--promoted and --config {str(config)!r}: give one of them")
        ledger_url = options.database_url or f"sqlite:///{Path(options.sqlite_path).resolve()}"
        cfg, promoted_id = load_promoted(ledger_url)
    else:
        cfg = _load_cfg(config)
    out_dir = prepare_out_dir(out or Path("runs") / f"run-{mode}-{time.strftime('%Y%m%d-%H%M%S')}")
    creds = load_credentials() if live else None
    if creds is not None:
        check_credentials(creds)
    try:
        ops_cfg = OpsConfig.from_env(**({} if http_port is None else {"http_port": http_port}))
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    dash_settings = _dashboard_settings(bus_prefix) if dashboard else None

    sys.setswitchinterval(_switch_interval_s())

    async def main() -> dict[str, object]:
        stop = stop_on_signals()
        with venue_errors(url):
            return await session(stop)

    async def session(stop: asyncio.Event) -> dict[str, object]:
        async with venue(url, seed=seed) as v:
            svc = RunnerService(
                cfg,
                options,
                mode=mode,
                venue="sim" if v.simulated else v.url,
                starting_cash_micros=10_000 * MICROS,
            )
            svc.promoted_id = promoted_id
            await svc.start()
            dash = (
                await _start_dashboard(svc, dash_settings, dashboard_host, dashboard_port)
                if dash_settings is not None
                else None
            )
            ops = Ops(ops_cfg, service=f"polylab {mode}")
            await ops.start(f"{mode} on {svc.venue}, run {svc.run_id}")
            writer = svc.writer
            writer.on_latency = ops.metrics.observe_ledger_write_ns
            prev_status = writer.on_status

            def ledger_status(up: bool, reason: str) -> None:
                if prev_status is not None:
                    prev_status(up, reason)
                ops.ledger_status(up, reason)

            writer.on_status = ledger_status

            def on_start(run: PaperRun) -> None:
                # What start-up built lives as long as the session: move it out of the
                # collector's view, so a full collection later scans only what trading made
                # (tens of ms less per gen-2 pause, which would delay poly:state).
                gc.collect()
                gc.freeze()
                svc.attach(run)
                run.engine.sinks.append(ops.alerts)
                ops.attach(
                    engine=run.engine,
                    feed=run.feed,
                    bus=svc.bus,
                    ledger=writer,
                    state=svc.publisher,
                )

            status = "crashed"
            try:
                if creds is None:
                    res, _ = await run_paper(
                        cfg, v, seconds=seconds, out_dir=out_dir, stop=stop, on_start=on_start
                    )
                else:
                    await svc.reconcile(v.url, creds)  # restart recovery, before trading
                    res, _, _ = await run_live(
                        cfg,
                        v,
                        creds,
                        live=send,
                        seconds=seconds,
                        out_dir=out_dir,
                        stop=stop,
                        on_start=on_start,
                    )
                status = "stopped"
            finally:
                await ops.close(status)  # first: a bus closed at stop is not an outage
                await svc.close(status)
                if dash is not None:
                    await dash.close()
            return {
                "run_id": svc.run_id,
                "mode": mode,
                "out_dir": str(out_dir),
                "signals": svc.signals,
                "fills_published": svc.fills_published,
                "recovery": {"started_with": svc.started_with, "notes": svc.recovery_notes},
                "bus": msgspec.to_builtins(svc.bus.health()),
                **_config_summary(svc),
                "result": msgspec.to_builtins(res),
            }

    summary = asyncio.run(main())
    if as_json:
        sys.stdout.write(msgspec.json.encode(summary).decode() + "\n")
    else:
        console.print(
            f"run {summary['run_id']}: {summary['signals']} signals, "
            f"{summary['fills_published']} fills published → {out_dir}"
        )


def _config_summary(svc: RunnerService) -> dict[str, object]:
    """The summary's hot-reload part: the config trading at the end, each swap, each refusal."""
    from polylab.config import config_id

    r = svc.reloader
    return {
        "config_id": r.active_id if r is not None else config_id(svc.config),
        "config_swaps": msgspec.to_builtins(r.swaps) if r is not None else [],
        "config_refusals": list(r.refusals) if r is not None else [],
    }


def _dashboard_settings(prefix: str) -> AuthSettings:
    """The dashboard's auth settings (``DASHBOARD_JWT_SECRET``), checked before anything
    starts: a missing secret is one line and exit 2."""
    from polylab.dashboard.cli import auth_settings

    return auth_settings(prefix)


async def _start_dashboard(
    svc: RunnerService, settings: AuthSettings, host: str, port: int
) -> EmbeddedDashboard:
    """The dashboard on the runner's bus and ledger: sessions in Redis when the bus is Redis,
    else in this process (``MemoryAuthStore``). Says where on stderr; a code goes to the
    terminal only (never to a captured stderr, which ends up in logs)."""
    import redis.asyncio as aioredis

    from polylab.dashboard.auth import AuthStore, MemoryAuthStore
    from polylab.runner.dashboard_server import EmbeddedDashboard

    url = svc.options.redis_url
    store = AuthStore(aioredis.Redis.from_url(url), settings) if url else MemoryAuthStore(settings)
    dash = EmbeddedDashboard(svc.bus, store, host=host, port=port, ledger=svc.ledger)
    await dash.start()
    how = (
        "`polylab dashboard otp`"
        if url
        else f"`polylab dashboard otp --dashboard-url http://127.0.0.1:{dash.port}`"
    )
    typer.echo(f"dashboard on {dash.url} (log in with a code from {how})", err=True)
    if sys.stderr.isatty():
        code = await store.issue_code()
        typer.echo(f"dashboard one-time code: {code} (valid 5 min, once)", err=True)
    return dash


def _switch_interval_s() -> float:
    """How long a thread here (the ``poly:state`` sender, the ledger writer) waits for the
    interpreter while the event loop is busy: ``POLYLAB_SWITCH_INTERVAL_MS`` (default 1 ms;
    Python's own 5 ms let a state leave 10-20 ms late under load)."""
    raw = os.environ.get("POLYLAB_SWITCH_INTERVAL_MS", "").strip() or "1"
    try:
        ms = float(raw)
    except ValueError:
        ms = -1.0
    if not 0.05 <= ms <= 100:
        raise ConfigError(f"POLYLAB_SWITCH_INTERVAL_MS must be 0.05..100 (ms), got {raw!r}")
    return ms / 1000

"""``Ops``: health, metrics, HTTP and alerts as one object the runner starts, feeds and closes.

Wiring, in ``polylab run`` (as on the ``ops-wiring`` branch; every part optional)::

    ops = Ops(OpsConfig.from_env(http_port=http_port), service=f"polylab {mode}")
    await ops.start(f"{mode} on {venue}")    # port open; /health 503 until attach
    writer.on_latency = ops.metrics.observe_ledger_write_ns
    writer.on_status = ops.ledger_status     # (chained with the runner's own logger)

    def on_start(run):                       # the session's engine and feed exist now
        svc.attach(run)
        run.engine.sinks.append(ops.alerts)  # daily-loss rejections, failed orders
        ops.attach(engine=run.engine, feed=run.feed, bus=svc.bus, ledger=writer,
                   state=publisher)
    …
    await ops.close(status)                  # first: final mirror pass, "stopped", flush
    await svc.close(status)                  # then the runner shuts its bus and ledger
                                             # (after ops: a closed bus is not an outage)

``attach`` registers the readiness checks (feed connected and fresh, ledger reachable, bus
reachable, last state younger than ``state_max_age_s``) and a watcher that, every
``watch_every_s`` seconds on the event loop, mirrors the cumulative counters into the metrics
and feeds the alert rules (kill switch, daily loss, feed stale, bus down and back). A watcher
that raises is logged and counted in ``watch_errors``; it never stops the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Protocol

import msgspec

from polylab.ops.alert_rules import AlertRules, OpsAlerts
from polylab.ops.alerts import AlertConfig, AlertSender
from polylab.ops.health import (
    BusLike,
    CheckResult,
    Health,
    LedgerLike,
    age_check,
    bus_check,
    feed_check,
    ledger_check,
)
from polylab.ops.http import OpsServer
from polylab.ops.metrics import Metrics
from polylab.ops.settings import http_settings

if TYPE_CHECKING:
    from polylab.book.market_feed import MarketFeed
    from polylab.engine import Engine

__all__ = ["Ops", "OpsConfig", "PublisherLike"]

log = logging.getLogger(__name__)


def _env_float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        return float(raw)
    except ValueError:
        raise ValueError(f"{name} must be a number, got {raw!r}") from None


class PublisherLike(Protocol):
    """What the state check reads (``polylab.bus.periodic.PeriodicPublisher``)."""

    @property
    def last_ns(self) -> int: ...
    @property
    def clock_ns(self) -> Callable[[], int]: ...


class OpsConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Where to serve, where and when to alert. ``state_max_age_s``: readiness limit on the
    last ``poly:state``; ``feed_max_quiet_s``: readiness limit on the newest frame;
    ``watch_every_s``: period of the metric mirrors and alert watchers."""

    http_host: str = "127.0.0.1"
    http_port: int = 8080
    alerts: AlertConfig = AlertConfig()
    rules: AlertRules = AlertRules()
    state_max_age_s: float = 1.0
    feed_max_quiet_s: float = 5.0
    watch_every_s: float = 1.0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, /, **over: object) -> OpsConfig:
        """From ``POLYLAB_HTTP_HOST`` / ``POLYLAB_HTTP_PORT`` (or ``PORT``),
        ``SLACK_WEBHOOK_URL``, ``ALERT_FEED_STALE_S``, ``ALERT_ORDER_ERRORS``,
        ``ALERT_DEDUPE_S``; ``over`` sets fields directly (e.g. ``http_port`` from
        ``--http-port``). A bad value raises ``ValueError`` naming the variable."""
        env = os.environ if env is None else env
        host, port = http_settings(env)
        errors_raw = env.get("ALERT_ORDER_ERRORS", "").strip() or "5"
        if not errors_raw.isdigit():
            raise ValueError(f"ALERT_ORDER_ERRORS must be a whole number, got {errors_raw!r}")
        alerts = AlertConfig(
            webhook_url=env.get("SLACK_WEBHOOK_URL", "").strip(),
            dedupe_s=_env_float(env, "ALERT_DEDUPE_S", 300.0),
        )
        rules = AlertRules(
            feed_stale_s=_env_float(env, "ALERT_FEED_STALE_S", 30.0),
            order_errors=int(errors_raw),
        )
        base = cls(http_host=host, http_port=port, alerts=alerts, rules=rules)
        return msgspec.structs.replace(base, **over) if over else base


class Ops:
    """The bundle (see the module docstring): ``metrics``, ``health``, ``server``, ``sender``
    and ``alerts``, plus the periodic watchers."""

    def __init__(self, config: OpsConfig | None = None, *, service: str = "polylab") -> None:
        self.config = cfg = config or OpsConfig()
        if cfg.alerts.service != service:
            cfg = msgspec.structs.replace(
                cfg, alerts=msgspec.structs.replace(cfg.alerts, service=service)
            )
            self.config = cfg
        self.metrics = Metrics()
        self.health = Health(service=service)
        self.server = OpsServer(self.health, self.metrics, host=cfg.http_host, port=cfg.http_port)
        self.sender = AlertSender(cfg.alerts)
        self.alerts = OpsAlerts(self.sender, cfg.rules)
        self.watch_errors = 0
        self._watchers: list[tuple[Callable[[], object], bool]] = []
        self._task: asyncio.Task[None] | None = None
        self._attached = False
        self.health.register("runner", self._runner_check)

    def _runner_check(self) -> CheckResult:
        """Not ready until ``attach`` plugged the session in (the port opens first)."""
        if self._attached:
            return CheckResult(ok=True, detail={"attached": True})
        return CheckResult(
            ok=False, detail={"attached": False, "problem": "session not started yet"}
        )

    # -- wiring ----------------------------------------------------------------------------------
    def watch(self, fn: Callable[[], object], *, final: bool = True) -> None:
        """Call ``fn`` every ``watch_every_s`` (on the event loop; keep it short) and, if
        ``final``, once more at ``close`` (metric mirrors yes; alert rules no: at close the bus
        and the ledger are already shut, which is not an outage)."""
        self._watchers.append((fn, final))

    def ledger_status(self, up: bool, reason: str) -> None:
        """``LedgerWriter(on_status=…)``: ledger down and back alerts (any thread)."""
        self.alerts.component("ledger", up, reason)

    def attach(
        self,
        *,
        engine: Engine | None = None,
        feed: MarketFeed | None = None,
        bus: BusLike | None = None,
        ledger: LedgerLike | None = None,
        state: PublisherLike | None = None,
        state_last_ns: Callable[[], int] | None = None,
    ) -> None:
        """Register the checks and watchers for what is given (see the module docstring);
        until the first call, ``/health`` answers 503 (check ``runner``: not started yet).
        ``state``: the ``poly:state`` publisher (its ``last_ns`` on its ``clock_ns``);
        ``state_last_ns``: or a function giving that time in ns since the epoch."""
        self._attached = True
        cfg, m, a = self.config, self.metrics, self.alerts
        if feed is not None:
            self.health.register("feed", feed_check(feed, max_quiet_s=cfg.feed_max_quiet_s))
            self.watch(lambda: m.observe_feed(feed.counters, stale_books=len(feed.stale)))
            self.watch(lambda: a.watch_feed(feed), final=False)
        if ledger is not None:
            self.health.register("ledger", ledger_check(ledger))
        if bus is not None:
            self.health.register("bus", bus_check(bus))
            self.watch(lambda: m.observe_bus(bus.health().dropped))
            self.watch(lambda: a.watch_bus(bus), final=False)
        if state is not None:
            pub = state
            self.health.register(
                "state",
                age_check(
                    lambda: pub.last_ns,
                    max_age_s=cfg.state_max_age_s,
                    what="last poly:state",
                    now_ns=pub.clock_ns,
                ),
            )
        elif state_last_ns is not None:
            self.health.register(
                "state",
                age_check(state_last_ns, max_age_s=cfg.state_max_age_s, what="last poly:state"),
            )
        if engine is not None:
            eng = engine

            def engine_watch() -> None:
                risk, pf = eng.risk, eng.portfolio
                m.observe_engine(
                    eng.stats,
                    rejections=risk.rejections,
                    reaction_ns=eng.reaction_ns,
                    open_orders=risk.open_orders,
                )
                m.observe_portfolio(
                    fills=len(pf.history), fees_micros=pf.fees, realized_micros=pf.realized
                )

            self.watch(engine_watch)
            self.watch(lambda: a.watch_risk(eng.risk, eng.now_ns() or None), final=False)

    # -- running ---------------------------------------------------------------------------------
    def tick(self, *, final: bool = False) -> None:
        """Run every watcher once (``final``: only those meant for the last pass); a raising
        one is logged and counted."""
        for fn, at_close in list(self._watchers):
            if final and not at_close:
                continue
            try:
                fn()
            except Exception:
                self.watch_errors += 1
                if self.watch_errors <= 20:
                    log.exception("ops watcher failed")

    async def _loop(self) -> None:
        every = self.config.watch_every_s
        while True:
            await asyncio.sleep(every)
            self.tick()

    async def start(self, detail: str = "") -> Ops:
        """Serve HTTP, start the alert sender and the watchers, send "started"."""
        await self.server.start()
        await self.sender.start()
        self._task = asyncio.create_task(self._loop(), name="ops-watch")
        self.alerts.started(detail)
        return self

    async def close(self, detail: str = "", timeout_s: float = 5.0) -> None:
        """Last watcher pass, "stopped" alert, flush alerts (up to ``timeout_s``), stop serving."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.tick(final=True)
        self.alerts.stopped(detail)
        t0 = time.monotonic()
        await self.sender.close(timeout_s)
        await self.server.close()
        log.debug("ops closed in %.3f s", time.monotonic() - t0)

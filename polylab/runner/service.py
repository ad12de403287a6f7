"""``polylab run``: the headless runner — one paper or live session that reports as it trades.

The session is the paper (or live) session of ``runner.paper`` / ``runner.live``, unchanged;
this module attaches what a service needs when the session starts:

* **the ledger** (``store.Ledger``: SQLite ``runs/polylab.db`` by default, PostgreSQL by
  ``DATABASE_URL``): every fill, order, rejection and error is queued to a background writer
  off the event path, and portfolio snapshots every ``snapshot_s``;
* **the bus** (``bus``: in-process by default, Redis by ``REDIS_URL``): ``poly:state`` every
  100 ms, ``poly:signals`` (each intent with the risk gate's decision), ``poly:trades`` (order
  statuses, and each fill **once the ledger has committed it**: ledger first, then bus) and
  ``poly:errors``; ``poly:control`` is read for the kill switch, resume and config reloads
  (``runner.reload``: promotions swap the strategies between two events);
* **restart recovery** (``runner.recovery``): before trading, the previous run of the same
  mode and venue is read back from the ledger and restored into the new session (cash,
  positions with their cost basis, today's realized PnL for the daily loss limit); a previous
  run still ``running`` (killed) is marked ``crashed``; its open paper orders are recorded
  ``cancelled`` (none survives a restart); a live session first reconciles the ledger with the
  venue (balances, open orders, trades since the last fill). Each step and each difference is
  an ``errors`` row of source ``recovery`` and a log warning, never silent.

Publishing never blocks trading (``Bus.publish`` only queues); a ledger that is down queues
rows and, past its halt depth, stops new intents through the kill switch until it is back.
Units: micros for money and sizes, ns for times.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec

import polylab
from polylab.bus import Bus, InProcessBus, make_bus
from polylab.bus.messages import (
    CONTROL,
    SIGNALS,
    STATE,
    TRADES,
    ControlMessage,
    PositionView,
    StateMessage,
    signal_message,
)
from polylab.bus.periodic import PeriodicPublisher
from polylab.bus.sink import BusSink, fill_message
from polylab.config import PolylabConfig, config_id
from polylab.domain import Intent
from polylab.engine import ErrorRecord
from polylab.execution.live import Credentials
from polylab.risk.manager import Approved, Decision
from polylab.risk.records import Fill
from polylab.runner import recovery
from polylab.runner.ledger_halt import LedgerHalt
from polylab.runner.paper import PaperRun
from polylab.runner.reload import ConfigReloader
from polylab.runner.state_view import day_figures, feed_health, open_orders
from polylab.store.ledger import Ledger, RecoveredState
from polylab.store.ledger_db import LedgerError
from polylab.store.ledger_sink import LedgerSink
from polylab.store.ledger_writer import LedgerWriter

__all__ = ["RunnerService", "ServiceOptions"]

log = logging.getLogger(__name__)


class ServiceOptions(msgspec.Struct, frozen=True, kw_only=True):
    """Where a runner reports. Empty URLs mean the embedded defaults.

    ``redis_url``: the bus (``REDIS_URL``; "" = in-process); ``database_url``: the ledger
    (``DATABASE_URL``; "" = SQLite at ``sqlite_path``); ``state_period_ms``: ``poly:state``
    period; ``snapshot_s``: portfolio snapshots into the ledger; ``bus_prefix``: prepended to
    channel names (tests run side by side on one Redis).
    """

    redis_url: str = ""
    database_url: str = ""
    sqlite_path: str = "runs/polylab.db"
    state_period_ms: int = 100
    snapshot_s: float = 5.0
    bus_prefix: str = ""

    @classmethod
    def from_env(cls, **overrides: Any) -> ServiceOptions:
        """``REDIS_URL`` and ``DATABASE_URL`` from the environment, then ``overrides``."""
        base: dict[str, Any] = {
            "redis_url": os.environ.get("REDIS_URL", "").strip(),
            "database_url": os.environ.get("DATABASE_URL", "").strip(),
        }
        base.update({k: v for k, v in overrides.items() if v is not None})
        return msgspec.convert(base, cls)


class _TradesWithoutFills(BusSink):
    """The bus sink for orders, rejections and errors; fills are published by the ledger's
    commit callback instead, so a fill reaches ``poly:trades`` only once it is stored."""

    def record(self, kind: str, row: msgspec.Struct) -> None:
        if kind != "fills":
            super().record(kind, row)


class RunnerService:
    """Ledger, bus, state publisher and control loop around one session (see module doc)."""

    def __init__(
        self,
        config: PolylabConfig,
        options: ServiceOptions,
        *,
        mode: str,
        venue: str,
        starting_cash_micros: int,
    ) -> None:
        self.config = config
        self.options = options
        self.mode = mode
        self.venue = venue
        self.starting_cash = starting_cash_micros
        self.bus: Bus = make_bus(options.redis_url or None, prefix=options.bus_prefix)
        url = options.database_url or f"sqlite:///{Path(options.sqlite_path).resolve()}"
        if not options.database_url:
            Path(options.sqlite_path).parent.mkdir(parents=True, exist_ok=True)
        self.ledger = _open_ledger(url)
        self.recovered: RecoveredState | None = self._recover()
        self.run_id = self.ledger.start_run(
            mode=mode,
            venue=venue,
            config_id=config_id(config),
            code_version=polylab.__version__,
            start_cash_micros=(
                self.recovered.cash_micros if self.recovered is not None else starting_cash_micros
            ),
        )
        self.writer = LedgerWriter(self.ledger, on_status=self._ledger_status).start()
        self.ledger_sink = LedgerSink(
            self.writer, self.run_id, executor=mode, on_fill=self._fill_committed
        )
        self.run: PaperRun | None = None
        self.started_ns = time.time_ns()
        self.signals = 0
        self.fills_published = 0
        self.ledger_halt: LedgerHalt | None = None  # the ledger-down policy, once attached
        self._tasks: list[asyncio.Task[None]] = []
        self._publisher: PeriodicPublisher | None = None
        self._last_snapshot = 0.0
        self._ledger_p99 = 0
        self._ledger_p99_at = -1.0
        self.started_with: dict[str, object] = {}
        self.recovery_notes: list[str] = []
        self.reloader: ConfigReloader | None = None  # hot reload (runner.reload), once attached
        self.promoted_id: str | None = None  # set by --promoted: the promoted id started from
        self._mark_crashed()

    @property
    def publisher(self) -> PeriodicPublisher | None:
        """The ``poly:state`` publisher once attached (its ``last_ns`` feeds readiness)."""
        return self._publisher

    # -- start and stop ------------------------------------------------------------------------
    async def start(self) -> None:
        """Connect the bus (publishing works at once; Redis may come later)."""
        await self.bus.start()

    def attach(self, run: PaperRun) -> None:
        """``run_paper``'s ``on_start``: plug the ledger, the bus and the hooks into the
        session's engine, and start the state publisher and the control loop."""
        self.run = run
        eng = run.engine
        eng.sinks.extend([self.ledger_sink, _TradesWithoutFills(self.bus)])
        eng.decision_hooks.append(self._signal)
        self.ledger_halt = LedgerHalt(eng.risk)
        if self.recovered is not None:
            self._restore(run, self.recovered)
        pub = PeriodicPublisher(
            self.bus, STATE, self.state, period_ns=self.options.state_period_ms * 1_000_000
        )
        self._publisher = pub
        inner = run.feed.on_event
        if inner is not None:  # a due state goes out between two events of a long busy step

            def on_event(recv_ns: int, ev: Any) -> None:
                inner(recv_ns, ev)
                pub.poll()

            run.feed.on_event = on_event
        self._tasks.append(asyncio.create_task(self._control(pub)))
        self.reloader = ConfigReloader(
            eng,
            self.config,
            ledger=self.ledger,
            bus=self.bus,
            ledger_sink=self.ledger_sink,
            poll=isinstance(self.bus, InProcessBus),  # no Redis: nobody can send a reload
            followed=self.promoted_id,
            sports=run.sports,
        )
        self._tasks.append(asyncio.create_task(self.reloader.run()))

    async def close(self, status: str = "stopped") -> None:
        """Final state, snapshot, ledger flush and bus flush (in that order), run marked."""
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t
        if self.reloader is not None:
            await self.reloader.close()
        if self.run is not None:
            self._snapshot(force=True)
            final = self.state()
            self.bus.publish(STATE, final)
        left = await asyncio.to_thread(self.writer.close, 10.0)
        if left:
            log.error("ledger: %d rows could not be written before stopping", left)
        with contextlib.suppress(LedgerError):
            self.ledger.stop_run(self.run_id, status=status)
        await self.bus.close(5.0)
        self.ledger.close()

    # -- what goes out ---------------------------------------------------------------------------
    def state(self) -> StateMessage:
        """The ``poly:state`` message now (also the final one at stop)."""
        now = time.time_ns()
        self._snapshot()
        run = self.run
        if run is None:
            return StateMessage(ts_ns=now, mode=self.mode, uptime_ms=0)
        eng = run.engine
        snap = run.portfolio.snapshot(eng.registry.books)
        feed = run.feed
        c = feed.counters
        stale = sum(1 for b in eng.registry.books.values() if b.needs_snapshot)
        risk = eng.risk
        st = eng.stats
        samples = eng.reaction_ns
        p50, p99 = samples.quantile(0.5) // 1_000, samples.quantile(0.99) // 1_000
        daily, headroom = day_figures(run.portfolio, risk, snap.unrealized, now)
        return StateMessage(
            ts_ns=now,
            mode=self.mode,
            uptime_ms=(now - self.started_ns) // 1_000_000,
            feeds=feed_health(feed.shards, eng.registry.books, now),
            stale_books=stale,
            positions=tuple(
                PositionView(
                    token_id=p.token_id,
                    size_micros=p.shares,
                    cost_micros=p.basis,
                    mark_price_micros=p.mark,
                    unrealized_micros=p.unrealized,
                )
                for p in snap.positions
            ),
            cash_micros=snap.cash,
            realized_pnl_micros=snap.realized,
            unrealized_pnl_micros=snap.unrealized,
            daily_pnl_micros=daily,
            loss_headroom_micros=headroom,
            open_orders_headroom=max(0, risk.config.max_open_orders - eng.executor.pending()),
            open_orders=open_orders(eng.in_flight(), eng.executor),
            kill_switch=risk.killed,
            tick_to_order_p50_us=p50,
            tick_to_order_p99_us=p99,
            counters={
                "frames": c.frames,
                "malformed": c.malformed,
                "reconnects": c.reconnects,
                "resyncs": c.resyncs,
                "intents": st.intents,
                "approved": st.approved,
                "rejected": st.rejected,
                "fills": snap.fills,
                "signals": self.signals,
                "fills_published": self.fills_published,
                "ledger_queue": self.writer.depth,
                "ledger_p99_us": self._ledger_p99_us(),
                "tick_to_order_samples": samples.total,
                "state_late": self._publisher.rebased if self._publisher is not None else 0,
                "bus_dropped": sum(self.bus.health().dropped.values()),
            },
            config_id=self.reloader.active_id if self.reloader else config_id(self.config),
        )

    def _ledger_p99_us(self) -> int:
        """The writer's enqueue→commit p99 (µs), recomputed at most once a second: it sorts
        up to 10,000 samples, too much for every 100 ms tick on the event loop."""
        now = time.monotonic()
        if now - self._ledger_p99_at >= 1.0:
            self._ledger_p99_at = now
            self._ledger_p99 = self.writer.latency_ns(0.99) // 1_000
        return self._ledger_p99

    def _signal(self, iid: str, intent: Intent, decision: Decision, now_ns: int) -> None:
        approved = isinstance(decision, Approved)
        rule = "" if approved else getattr(decision, "rule", "")
        reason = "" if approved else getattr(decision, "reason", "")
        self.signals += 1
        self.bus.publish(
            SIGNALS,
            signal_message(iid, intent, approved=approved, ts_ns=now_ns, rule=rule, reason=reason),
        )

    def _fill_committed(self, fill: Fill) -> None:
        """On the ledger writer's thread, once the fill is stored (``publish`` is thread-safe)."""
        self.fills_published += 1
        self.bus.publish(TRADES, fill_message(fill, ts_ns=time.time_ns()))

    def _snapshot(self, force: bool = False) -> None:
        run = self.run
        now = time.monotonic()
        if run is None or (not force and now - self._last_snapshot < self.options.snapshot_s):
            return
        self._last_snapshot = now
        self.ledger_sink.snapshot(run.portfolio.snapshot(run.engine.registry.books), time.time_ns())
        self._follow_ledger_halt()

    def _follow_ledger_halt(self) -> None:
        """The documented policy (``runner.ledger_halt``): halt, not lose; lift only our halt."""
        if self.ledger_halt is not None and (did := self.ledger_halt.update(self.writer.halt)):
            log.warning("ledger halt: new intents %s", did)

    def _ledger_status(self, up: bool, reason: str) -> None:
        log.warning("ledger %s%s", "back" if up else "down", f": {reason}" if reason else "")

    # -- what comes in ---------------------------------------------------------------------------
    async def _control(self, pub: PeriodicPublisher) -> None:
        # States start once poly:control is subscribed: a client that sees the first state may
        # send a command at once, and pub/sub would drop it if nobody listened yet.
        sub = await self.bus.subscribe(CONTROL)
        self._tasks.append(asyncio.create_task(pub.run()))
        async for msg in sub:
            if isinstance(msg, ControlMessage):
                if msg.action == "reload_config" and self.reloader is not None:
                    self.reloader.request(msg)  # runner.reload: off the loop, swap between events
                else:
                    self.apply_control(msg)

    def apply_control(self, msg: ControlMessage) -> None:
        """Kill switch / resume from an operator (recorded in the ledger with who and why)."""
        run = self.run
        if run is None:
            return
        risk = run.engine.risk
        who = msg.by or "unknown"
        if msg.action == "kill_switch":
            risk.kill(f"kill switch by {who}: {msg.reason}".rstrip(": "))
        elif msg.action == "resume":
            risk.resume()
            self._follow_ledger_halt()  # the ledger still past its halt depth: still halted
        else:
            log.warning("control %s is not handled by this runner yet", msg.action)
            return
        log.warning("control: %s by %s (%s)", msg.action, who, msg.reason)
        self.ledger_sink.record(
            "errors",
            ErrorRecord(
                source="control", error=f"{msg.action} by {who}: {msg.reason}", ts_ns=msg.ts_ns
            ),
        )
        self.bus.publish(STATE, self.state())  # confirm at once, not at the next tick

    # -- restart recovery ------------------------------------------------------------------------
    def _recover(self) -> RecoveredState | None:
        try:
            latest = self.ledger.latest_run(mode=self.mode, venue=self.venue)
        except LedgerError:
            return None
        if latest is None:
            return None
        try:
            return self.ledger.load_state(latest)
        except LedgerError as exc:
            log.error("restart recovery: %s", exc)
            return None

    def _note(self, line: str) -> None:
        """One recovery step or difference: a log warning and an ``errors`` row."""
        log.warning("restart recovery: %s", line)
        self.recovery_notes.append(line)
        self.ledger_sink.record(
            "errors", ErrorRecord(source="recovery", error=line, ts_ns=time.time_ns())
        )

    def _mark_crashed(self) -> None:
        """A previous run still ``running`` was killed (no clean stop marked it): say so."""
        rec = self.recovered
        if rec is None or rec.status != "running":
            return
        try:
            self.ledger.stop_run(rec.run_id, status="crashed")
        except LedgerError as exc:
            log.error("restart recovery: cannot mark run %s crashed: %s", rec.run_id, exc)
            return
        self._note(f"run {rec.run_id} was still running: marked crashed")

    def _restore(self, run: PaperRun, rec: RecoveredState) -> None:
        """Before trading: the previous run's state into this session's portfolio; its open
        paper orders recorded cancelled; a snapshot at once (a crash before the first periodic
        one must not lose the restored positions)."""
        now = time.time_ns()
        self._note(recovery.restore(run.portfolio, rec, run.catalog, now))
        self.started_with = recovery.restored_view(run.portfolio, now)
        if self.mode == "paper" and rec.open_orders:
            for o in recovery.cancelled_orders(rec, now):
                self.writer.submit(o)
                self._note(f"order {o.order_id} of run {rec.run_id} was open: recorded cancelled")
        self._snapshot(force=True)

    async def reconcile(self, url: str, creds: Credentials) -> list[str]:
        """Live, before trading: the ledger against the venue's account at ``url`` (L2 keys
        from ``creds``, else derived through L1); every difference is recorded and returned
        (empty: all agree). A venue that cannot answer is recorded as such."""
        rec = self.recovered
        if rec is None:
            return []
        try:
            filled = {str(f["order_id"]) for f in self.ledger.rows("fills", run_id=rec.run_id)}
            diffs = await recovery.reconcile_at(url, creds, rec, filled)
        except Exception as exc:  # the failure itself is the recorded difference
            diffs = [f"cannot reconcile with the venue: {type(exc).__name__}: {exc}"]
        for line in diffs:
            self._note(line)
        if not diffs:
            self._note(f"venue agrees with the ledger (run {rec.run_id})")
        return diffs


def _open_ledger(url: str, attempts: int = 4) -> Ledger:
    """The ledger, retried on a transient failure at start (a connection dropped while
    migrating): 0.5, 1, 2 s apart; the last error propagates (one line from the CLI)."""
    for i in range(attempts):
        try:
            return Ledger.open(url, application_name="polylab-runner")
        except LedgerError as exc:
            if i == attempts - 1:
                raise
            log.info("ledger not ready (%s); retrying", exc)
            time.sleep(0.5 * 2**i)
    raise AssertionError("unreachable")


OnStart = Callable[[PaperRun], None]

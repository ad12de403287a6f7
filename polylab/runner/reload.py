"""Hot reload: the running runner swaps its configuration between two events.

A promotion (``pipeline.promote``) reaches a running ``polylab run`` in one of two ways:

* a ``reload_config`` control message on ``poly:control`` (``config_path`` "": the promoted
  configuration in the ledger; else a config file), sent by ``promote`` / ``rollback`` when
  Redis is used;
* on the in-process bus (no Redis: nobody outside the process can send a message), a poll of
  the ledger every ``POLL_S`` noticing that the promoted config id changed.

Reading the ledger, decoding the config and building its strategies happen off the event
loop (``asyncio.to_thread``); the swap itself is a few assignments made on the loop, and the
engine's handlers are synchronous on that same loop, so it always falls **between two
events**: the feed, the books, the engine, the portfolio, the orders in flight and their risk
reservations all stay. What is swapped: the strategies (rebuilt from the new config: fresh
strategy state; the Sniper keeps the team directory the scoreboards fill), the risk limits
(``RiskManager.reconfigure``) and the Sniper's scoreboard pollers (``sports``:
``runner.sports_pollers``; a reload that adds the Sniper starts them, one that removes it
stops them, ``sniper.poll_ms`` and ``sniper.sports_channel`` take effect at once).
Sections a running session does not swap (``engine``, ``paper``, ``live``, ``analysis``) are
named in the swap's ``restart_needed``; they take effect at the next start (``polylab run
--promoted``).

**Gates.** A config is taken only if the ledger holds it with gate results that all passed
(a promoted config always has them). That holds for a file too: ``reload_config`` with a
``config_path`` is accepted only when the file's config id (environment overrides are not
applied to it) is in the ledger with passed gates, so a hand-edited file cannot bypass them;
to trade an ungated config, restart with ``--config``. A refusal is an ``errors`` row of
source ``config`` in the ledger and an ``ErrorMessage`` on ``poly:errors``.

**Records.** Each swap is an ``errors`` row of source ``config`` (old id → new id, by whom,
after which intent) and a ``ConfigMessage`` on ``poly:signals``, in order with the signals
(intents made before it are the old config's); ``poly:state`` carries the active
``config_id``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple, TypeVar

import msgspec

from polylab.bus.messages import SIGNALS, ConfigMessage, ControlMessage
from polylab.config import PolylabConfig, build_strategies, config_id, load_config
from polylab.engine import ErrorRecord
from polylab.errors import InputError, PolylabError
from polylab.pipeline.config_diff import param_changes
from polylab.pipeline.promote import PromotionError, check_gated, config_of
from polylab.store.ledger_rows import ConfigRow
from polylab.strategy.base import Strategy

if TYPE_CHECKING:
    from polylab.bus.base import Bus
    from polylab.engine import Engine
    from polylab.runner.sports_pollers import SportsPollers
    from polylab.store.ledger import Ledger
    from polylab.store.ledger_sink import LedgerSink

__all__ = ["POLL_S", "ConfigReloader", "load_promoted", "promoted_start_config"]

log = logging.getLogger(__name__)

POLL_S = 0.25
"""Ledger poll period on the in-process bus (s)."""

T = TypeVar("T")

RESTART_SECTIONS = ("engine", "paper", "live", "analysis")
"""Config sections a running session keeps until its next start."""


class _Prepared(NamedTuple):
    """A config ready to swap in, built off the loop; ``changed``: its parameters that differ
    from the config trading now ("section.field")."""

    config: PolylabConfig
    config_id: str
    strategies: list[Strategy]
    changed: tuple[str, ...]


def promoted_start_config(ledger: Ledger) -> tuple[PolylabConfig, str]:
    """``polylab run --promoted``: the promoted config and its id; ``InputError`` when the
    ledger has none, ``PromotionError`` when its gates are not all passed."""
    row = ledger.promoted_config()
    if row is None:
        raise InputError(
            "--promoted: no promoted config in the ledger (polylab configs promote ID)"
        )
    check_gated(row)
    return config_of(row), row.id


def load_promoted(database_url: str) -> tuple[PolylabConfig, str]:
    """``promoted_start_config`` on the ledger at ``database_url`` (opened for the read)."""
    from polylab.store.ledger import Ledger

    ledger = Ledger.open(database_url, application_name="polylab-runner")
    try:
        return promoted_start_config(ledger)
    finally:
        ledger.close()


class ConfigReloader:
    """Swaps ``engine``'s strategies and risk limits for a gated config (see module doc).

    ``config`` / ``active_id``: what the session trades now; ``poll``: watch the ledger's
    promoted config (the in-process bus); ``followed``: the promoted id the session started
    from (None: read it when ``run`` starts; later changes of it are followed); ``sports``:
    the session's Sniper scoreboards, brought in line with each config swapped in."""

    def __init__(
        self,
        engine: Engine,
        config: PolylabConfig,
        *,
        ledger: Ledger,
        bus: Bus,
        ledger_sink: LedgerSink,
        poll: bool,
        active_id: str | None = None,
        followed: str | None = None,
        poll_s: float = POLL_S,
        sports: SportsPollers | None = None,
    ) -> None:
        self.engine = engine
        self.config = config
        self.active_id = active_id if active_id is not None else config_id(config)
        self.ledger = ledger
        self.bus = bus
        self.ledger_sink = ledger_sink
        self.poll = poll
        self.poll_s = poll_s
        self.sports = sports
        self.swaps: list[ConfigMessage] = []
        self.refusals: list[str] = []
        self._followed = followed
        self._lock = asyncio.Lock()
        self._pending: set[asyncio.Task[None]] = set()

    # -- what triggers a reload ------------------------------------------------------------------
    async def run(self) -> None:
        """The ledger poll (on the in-process bus); returns at once otherwise."""
        if not self.poll:
            return
        if self._followed is None:
            first = await self._read(self.ledger.promoted_config)
            self._followed = first.id if first is not None else ""
        while True:
            await asyncio.sleep(self.poll_s)
            row = await self._read(self.ledger.promoted_config)
            if row is None or row.id == self._followed:
                continue
            self._followed = row.id
            last = await self._read(lambda: self.ledger.promotion_history(limit=1))
            by, why = (last[0].by, last[0].reason) if last else ("", "")
            await self._reload(self._promoted_row, by=by, reason=why, origin="ledger")

    def request(self, msg: ControlMessage) -> None:
        """A ``reload_config`` control message: handled in its own task (the control loop
        goes on reading)."""
        task = asyncio.create_task(self.on_control(msg))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def on_control(self, msg: ControlMessage) -> None:
        """Reload the promoted config (``config_path`` "") or the named file's config."""
        if msg.config_path:
            path = msg.config_path
            await self._reload(
                lambda: self._file_row(path), by=msg.by, reason=msg.reason, origin=path
            )
            return

        await self._reload(self._promoted_row, by=msg.by, reason=msg.reason, origin="promoted")

    async def close(self) -> None:
        """Cancel reloads still being prepared."""
        for t in list(self._pending):
            t.cancel()
        for t in list(self._pending):
            with contextlib.suppress(asyncio.CancelledError):
                await t

    # -- the reload ------------------------------------------------------------------------------
    async def _read(self, fn: Callable[[], T]) -> T | None:
        """``fn()`` on a worker thread; a ledger that cannot answer now is logged and reads as
        None (the poll tries again at its next turn)."""
        try:
            return await asyncio.to_thread(fn)
        except Exception as exc:  # LedgerError, SQLAlchemy's errors: a ledger outage
            log.warning("config reload: cannot read the ledger: %s", exc)
            return None

    async def _reload(
        self, find: Callable[[], ConfigRow], *, by: str, reason: str, origin: str
    ) -> None:
        async with self._lock:  # one reload at a time, in the order asked
            try:
                prep = await asyncio.to_thread(self._prepare, find)
            except (PolylabError, ValueError, OSError) as exc:  # gates, body, file, ledger
                self._refuse(exc, by=by, origin=origin)
                return
            except Exception as exc:  # a database error from the ledger read
                self._refuse(exc, by=by, origin=origin)
                return
            if prep is None:
                log.info("config reload (%s): already trading %s", origin, self.active_id)
                return
            self._swap(prep, by=by, reason=reason, origin=origin)
            if self.sports is not None:  # stopped pollers' connections closed before the next
                await self.sports.settle()

    def _prepare(self, find: Callable[[], ConfigRow]) -> _Prepared | None:
        """On a worker thread: the row, its gates, its config and fresh strategies, and what
        changed against the config trading now (None: it is the one trading now)."""
        row = find()
        check_gated(row)
        cfg = config_of(row)
        if row.id == self.active_id:
            return None
        changed = tuple(
            c.path
            for c in param_changes(msgspec.to_builtins(self.config), msgspec.to_builtins(cfg))
        )
        return _Prepared(cfg, row.id, build_strategies(cfg), changed)

    def _promoted_row(self) -> ConfigRow:
        """The ledger's promoted config (worker thread); ``InputError`` when there is none."""
        row = self.ledger.promoted_config()
        if row is None:
            raise InputError("no promoted config in the ledger")
        return row

    def _file_row(self, path: str) -> ConfigRow:
        """The ledger row of a config file's config (no environment overrides: the file's
        own id); ``PromotionError`` when the ledger does not hold it."""
        cfg = load_config(Path(path), env={})
        cid = config_id(cfg)
        row = self.ledger.get_config(cid)
        if row is None:
            raise PromotionError(
                f"config file {path!r} (config {cid[:12]}) is not in the ledger: only configs "
                "with passed gates are reloaded (restart with --config to trade it ungated)"
            )
        return row

    def _swap(self, prep: _Prepared, *, by: str, reason: str, origin: str) -> None:
        """On the event loop, between two events: strategies and risk limits, then records."""
        eng = self.engine
        old_cfg, old_id = self.config, self.active_id
        before = {s.name: s for s in eng.strategies}
        for s in prep.strategies:  # the Sniper's names come from the scoreboards it was given
            teams = getattr(before.get(s.name), "teams", None)
            if teams is not None and hasattr(s, "teams"):
                setattr(s, "teams", teams)  # noqa: B010 - not every Strategy has teams
        eng.strategies[:] = prep.strategies
        if prep.config.risk != old_cfg.risk:
            eng.risk.reconfigure(prep.config.risk)
        if self.sports is not None:  # the Sniper's scoreboards follow: started, stopped, retuned
            self.sports.apply(prep.config)
        self.config, self.active_id = prep.config, prep.config_id
        now = time.time_ns()
        restart = tuple(
            s for s in RESTART_SECTIONS if any(p.startswith(s + ".") for p in prep.changed)
        )
        msg = ConfigMessage(
            ts_ns=now,
            old_id=old_id,
            new_id=prep.config_id,
            by=by,
            reason=reason,
            origin=origin,
            intents_before=eng.stats.intents,
            changed=prep.changed,
            restart_needed=restart,
        )
        self.swaps.append(msg)
        self.bus.publish(SIGNALS, msg)
        text = (
            f"config swap {old_id} -> {prep.config_id} by {by or 'unknown'} ({origin}) after "
            f"intent {msg.intents_before}: {reason or '-'}; changed: "
            + (", ".join(prep.changed) or "nothing")
            + (f"; at the next start: {', '.join(restart)}" if restart else "")
        )
        self.ledger_sink.record("errors", ErrorRecord(source="config", error=text, ts_ns=now))
        log.warning("%s", text)

    def _refuse(self, exc: BaseException, *, by: str, origin: str) -> None:
        """A reload that is not taken: every engine sink (ledger, poly:errors, run folder,
        alerts) gets an error of source ``config``; the session trades on unchanged."""
        what = "the promoted config" if origin in ("promoted", "ledger") else origin
        text = f"{type(exc).__name__}: reload of {what} by {by or 'unknown'} refused: " + " ".join(
            str(exc).split()
        )
        self.refusals.append(text)
        rec = ErrorRecord(source="config", error=text, ts_ns=time.time_ns())
        for sink in self.engine.sinks:
            sink.record("errors", rec)
        log.error("%s", text)

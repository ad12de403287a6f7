"""Liveness and readiness: a set of named checks the runner registers.

**Liveness** is the process answering at all (the HTTP server's event loop turns). **Readiness**
is every registered check passing. A check is a plain callable (sync or async) returning a
``CheckResult``; ``Health.readiness()`` runs them all concurrently, each under a timeout, and
an exception or a timeout is a failed check with the error's type and first line (run through
the ``Sanitizer``: ``/health`` is served, so a URL's password must not show), never a crash of
``/health``.

Ready-made checks for what the issue asks the runner to watch (duck-typed, so this package
depends on no concrete feed, bus or ledger class):

* ``feed_check(feed, max_quiet_s)``: a socket is open and the newest frame is younger than
  ``max_quiet_s``; detail: shards connected, frame age, stale books;
* ``ledger_check(writer)``: the ledger writer's ``up`` flag (and queue depth, halt);
* ``bus_check(bus)``: ``bus.health().connected`` (and queued, drops);
* ``age_check(last_ns, max_age_s)``: something happened less than ``max_age_s`` ago (the
  last ``poly:state`` publication: 1 s).

Times: ns since the epoch (``time.time_ns``) for stamps, seconds for ages and limits.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, Protocol

import msgspec

from polylab.ops.sanitize import Sanitizer

__all__ = [
    "BusHealthLike",
    "BusLike",
    "Check",
    "CheckResult",
    "FeedLike",
    "Health",
    "LedgerLike",
    "LinkLike",
    "ShardLike",
    "age_check",
    "bus_check",
    "feed_check",
    "last_frame_ns",
    "ledger_check",
]

Detail = Mapping[str, Any]


class CheckResult(msgspec.Struct, frozen=True, kw_only=True):
    """One check's answer: ``ok`` and a JSON-able ``detail`` (no secrets: it is served)."""

    ok: bool
    detail: dict[str, Any] = msgspec.field(default_factory=dict)


Check = Callable[[], CheckResult | Awaitable[CheckResult]]
"""A readiness check: returns (or resolves to) a ``CheckResult``; should not block."""


class Health:
    """Named readiness checks plus the process's start time (for ``uptime_s``).

    ``timeout_s``: the most one check may take before it counts as failed."""

    def __init__(
        self,
        *,
        timeout_s: float = 1.0,
        service: str = "polylab",
        sanitizer: Sanitizer | None = None,
    ) -> None:
        self.timeout_s = timeout_s
        self.service = service
        self.sanitizer = sanitizer or Sanitizer()
        self.started_ns = time.time_ns()
        self._checks: dict[str, Check] = {}

    def register(self, name: str, check: Check) -> None:
        """Add (or replace) the check ``name``."""
        if not name:
            raise ValueError("a health check needs a name")
        self._checks[name] = check

    def unregister(self, name: str) -> None:
        """Remove the check ``name`` (absent: nothing happens)."""
        self._checks.pop(name, None)

    @property
    def names(self) -> list[str]:
        """The registered checks' names."""
        return list(self._checks)

    async def _run(self, check: Check) -> CheckResult:
        try:
            out = check()
            if inspect.isawaitable(out):
                out = await asyncio.wait_for(out, self.timeout_s)
            if not isinstance(out, CheckResult):
                return CheckResult(ok=False, detail={"error": f"bad result {type(out).__name__}"})
            return out
        except TimeoutError:
            return CheckResult(ok=False, detail={"error": f"timed out after {self.timeout_s} s"})
        except Exception as exc:
            first = self.sanitizer.clean((str(exc).strip().splitlines() or [""])[0])[:200]
            return CheckResult(ok=False, detail={"error": f"{type(exc).__name__}: {first}"})

    async def readiness(self) -> tuple[bool, dict[str, CheckResult]]:
        """Run every check; ready when all pass (and vacuously when none is registered)."""
        names = list(self._checks)
        results = await asyncio.gather(*(self._run(self._checks[n]) for n in names))
        by_name = dict(zip(names, results, strict=True))
        return all(r.ok for r in results), by_name

    async def report(self) -> dict[str, Any]:
        """The ``/health`` body: ``live`` (always true when it answers), ``ready``,
        ``uptime_s`` and each check's ``ok`` and detail."""
        ready, checks = await self.readiness()
        return {
            "service": self.service,
            "live": True,
            "ready": ready,
            "uptime_s": round((time.time_ns() - self.started_ns) / 1e9, 3),
            "checks": {n: {"ok": r.ok, **r.detail} for n, r in checks.items()},
        }


# -- ready-made checks ---------------------------------------------------------------------------
class LinkLike(Protocol):
    """What ``feed_check`` reads of a shard's link (``polylab.feed.ws_link.WsLink``)."""

    @property
    def last_recv_ns(self) -> int: ...


class ShardLike(Protocol):
    """What ``feed_check`` reads of a feed connection (``polylab.book.feed_health.Shard``):
    ``ws``, the socket while subscribed, and ``link``, whose ``last_recv_ns`` stamps the newest
    frame (ns since the epoch)."""

    @property
    def ws(self) -> object | None: ...
    @property
    def link(self) -> LinkLike | None: ...


def last_frame_ns(feed: FeedLike) -> int:
    """Newest frame on any of ``feed``'s shards (ns since the epoch; 0: none yet)."""
    return max((s.link.last_recv_ns for s in feed.shards if s.link is not None), default=0)


class FeedLike(Protocol):
    """What ``feed_check`` reads of a market feed (``polylab.book.market_feed.MarketFeed``)."""

    @property
    def shards(self) -> Iterable[ShardLike]: ...
    @property
    def stale(self) -> set[str]: ...


def feed_check(
    feed: FeedLike, *, max_quiet_s: float = 5.0, max_stale_books: int | None = None
) -> Check:
    """Ready when at least one shard has an open socket, the newest frame (any shard) is at
    most ``max_quiet_s`` old, and (if given) at most ``max_stale_books`` books are stale."""

    def check() -> CheckResult:
        now = time.time_ns()
        shards = list(feed.shards)
        connected = sum(1 for s in shards if s.ws is not None)
        last = last_frame_ns(feed)
        age_s = (now - last) / 1e9 if last else None
        stale = len(feed.stale)
        problems = []
        if not connected:
            problems.append("no shard connected")
        if age_s is None:
            problems.append("no frame received yet")
        elif age_s > max_quiet_s:
            problems.append(f"last frame {age_s:.3f} s ago > {max_quiet_s} s")
        if max_stale_books is not None and stale > max_stale_books:
            problems.append(f"{stale} stale books > {max_stale_books}")
        detail: dict[str, Any] = {
            "shards": len(shards),
            "connected": connected,
            "last_frame_age_s": None if age_s is None else round(age_s, 3),
            "stale_books": stale,
        }
        if problems:
            detail["problem"] = "; ".join(problems)
        return CheckResult(ok=not problems, detail=detail)

    return check


class LedgerLike(Protocol):
    """What ``ledger_check`` reads (``polylab.store.ledger_writer.LedgerWriter``)."""

    @property
    def up(self) -> bool: ...
    @property
    def depth(self) -> int: ...
    @property
    def halt(self) -> bool: ...


def ledger_check(writer: LedgerLike) -> Check:
    """Ready while the ledger writer reaches its database and has not halted trading."""

    def check() -> CheckResult:
        up, halt = writer.up, writer.halt
        detail: dict[str, Any] = {"up": up, "queued_rows": writer.depth, "halt": halt}
        if not up:
            detail["problem"] = "database unreachable"
        elif halt:
            detail["problem"] = "write queue too deep: new intents halted"
        return CheckResult(ok=up and not halt, detail=detail)

    return check


class BusHealthLike(Protocol):
    """What ``bus_check`` reads of ``bus.health()`` (``polylab.bus.base.BusHealth``)."""

    @property
    def backend(self) -> str: ...
    @property
    def connected(self) -> bool: ...
    @property
    def queued(self) -> int: ...
    @property
    def dropped(self) -> dict[str, int]: ...


class BusLike(Protocol):
    """A bus with a ``health()`` snapshot."""

    def health(self) -> BusHealthLike: ...


def bus_check(bus: BusLike) -> Check:
    """Ready while the bus reaches its backend (in-process: always)."""

    def check() -> CheckResult:
        h = bus.health()
        detail: dict[str, Any] = {
            "backend": h.backend,
            "connected": h.connected,
            "queued": h.queued,
            "dropped": sum(h.dropped.values()),
        }
        if not h.connected:
            detail["problem"] = "backend unreachable"
        return CheckResult(ok=h.connected, detail=detail)

    return check


def age_check(
    last_ns: Callable[[], int],
    *,
    max_age_s: float = 1.0,
    what: str = "last event",
    now_ns: Callable[[], int] = time.time_ns,
) -> Check:
    """Ready while ``last_ns()`` (0 = never) is at most ``max_age_s`` old on the clock
    ``now_ns`` (default ``time.time_ns``; give ``PeriodicPublisher.clock_ns`` with its
    ``last_ns``), e.g. the last ``poly:state`` publication (1 s)."""

    def check() -> CheckResult:
        last = last_ns()
        if not last:
            return CheckResult(ok=False, detail={"age_s": None, "problem": f"no {what} yet"})
        age_s = (now_ns() - last) / 1e9
        detail: dict[str, Any] = {"age_s": round(age_s, 3), "max_age_s": max_age_s}
        if age_s > max_age_s:
            detail["problem"] = f"{what} {age_s:.3f} s ago > {max_age_s} s"
        return CheckResult(ok=age_s <= max_age_s, detail=detail)

    return check

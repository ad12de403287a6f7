"""Ledger writes off the event path: a bounded queue drained by one background thread.

``submit(row, on_commit)`` appends to a queue (a lock and a deque: a few microseconds, never
a database call); ``on_commit(row, None)`` runs once the row is committed (``on_commit(row,
exc)`` if the database refused the row itself). ``submit_future(row)`` returns a
``concurrent.futures.Future`` instead (a few µs dearer). The thread commits batches, in
submission order: when ``batch_rows`` rows wait, when the oldest has waited ``interval_s``, or
at once on ``flush()``. **Ledger first, then bus**: publish a fill from its ``on_commit`` (or
its future's callback), never before; both run on the writer thread, so hop to the event loop
with ``loop.call_soon_threadsafe`` and keep them short. A row submitted twice is stored once
but its callback runs each time (whether an earlier, unacknowledged commit already stored it
cannot be known), so bus consumers dedupe fills by ``fill_key``.

Outage policy (the database unreachable: connections killed, server refusing, SQLite locked):

- rows stay queued, in order; the thread retries the same batch with backoff (50 ms doubling
  to 2 s) and ``on_status(False, reason)`` fires once, ``on_status(True, "")`` on recovery;
- every write is an idempotent upsert (see ``ledger_rows``), so a batch whose commit was
  acknowledged to nobody is stored once when retried: each fill exactly once after recovery;
- when ``halt_depth`` rows wait, ``halt`` turns True: the runner stops new intents (orders in
  flight still deliver their fills into the queue); it turns False again once the queue is
  back under half of that. At ``max_depth`` rows ``submit`` raises ``LedgerFull``: the runner
  must stop trading (kill switch), as a fill it cannot record is one it cannot account for;
- a row the database refuses for itself (a constraint, bad data) is isolated by retrying the
  batch row by row: its callback gets the error and it counts in ``stats.failed``; the
  other rows are committed.

``close(timeout)`` flushes what it can and returns the number of rows left uncommitted.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from itertools import islice

import msgspec
from sqlalchemy.exc import DBAPIError, DisconnectionError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from polylab.store.ledger import Ledger, LedgerError, write_rows
from polylab.store.ledger_rows import ConfigRow, LedgerRow

__all__ = ["LedgerFull", "LedgerWriter", "OnCommit", "Row", "WriterStats", "is_transient"]

Row = LedgerRow | ConfigRow
OnCommit = Callable[[Row, BaseException | None], None]
log = logging.getLogger(__name__)


class LedgerFull(LedgerError):
    """The writer's queue is at ``max_depth``: the row was not accepted."""


class WriterStats(msgspec.Struct):
    """Counters since start. ``failed``: rows refused by the database (callback got the error);
    ``retries``: batch attempts that met an unreachable database; ``outages``: times it went
    down; ``max_depth_seen``: the deepest the queue got (rows)."""

    submitted: int = 0
    committed: int = 0
    failed: int = 0
    batches: int = 0
    retries: int = 0
    outages: int = 0
    max_depth_seen: int = 0


def is_transient(exc: BaseException) -> bool:
    """The database could not be reached or was busy (retry), as opposed to refusing data."""
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    return isinstance(exc, OperationalError | InterfaceError | DisconnectionError | PoolTimeout)


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def _resolve(fut: Future[None]) -> OnCommit:
    def done(_row: Row, exc: BaseException | None) -> None:
        if exc is None:
            fut.set_result(None)
        else:
            fut.set_exception(exc)

    return done


class _Item:
    __slots__ = ("done", "enq_ns", "row")

    def __init__(self, row: Row, done: OnCommit | None, enq_ns: int) -> None:
        self.row = row
        self.done = done
        self.enq_ns = enq_ns


class LedgerWriter:
    """Batches ``submit``-ted rows into ``ledger`` from a background thread (see module doc).

    ``batch_rows``: most rows per transaction; ``interval_s``: longest a row waits for a
    batch to fill (0: commit whatever is queued at once); ``halt_depth`` / ``max_depth``: queue
    depths (rows) for ``halt`` and ``LedgerFull``; ``on_status(up, reason)``: called on the
    writer thread when the database goes down or comes back; ``on_latency(ns)``: called per
    committed row with its enqueue→commit latency (e.g. a Prometheus histogram's observe).
    """

    def __init__(
        self,
        ledger: Ledger,
        *,
        batch_rows: int = 500,
        interval_s: float = 0.05,
        halt_depth: int = 10_000,
        max_depth: int = 100_000,
        backoff_s: tuple[float, float] = (0.05, 2.0),
        on_status: Callable[[bool, str], None] | None = None,
        on_latency: Callable[[int], None] | None = None,
        latency_window: int = 10_000,
    ) -> None:
        if not 0 < halt_depth <= max_depth or batch_rows < 1:
            raise ValueError(
                f"need 0 < halt_depth <= max_depth and batch_rows >= 1, got "
                f"{halt_depth}, {max_depth}, {batch_rows}"
            )
        self.ledger = ledger
        self.batch_rows = batch_rows
        self.interval_ns = int(interval_s * 1e9)
        self.halt_depth = halt_depth
        self.max_depth = max_depth
        self.backoff_s = backoff_s
        self.on_status = on_status
        self.on_latency = on_latency
        self.stats = WriterStats()
        self._q: deque[_Item] = deque()
        self._lock = threading.Lock()  # guards the queue; submit takes only this (C-level)
        self._cv = threading.Condition(self._lock)
        self._done = 0  # rows popped (committed or failed), monotonic: flush() waits on it
        self._flush_to = 0
        self._halt = False
        self._up = True
        self._down_since_ns = 0
        self._closing = False
        self._abort = False
        self._abort_evt = threading.Event()
        self._lat: deque[int] = deque(maxlen=latency_window)
        self._thread = threading.Thread(target=self._run, name="ledger-writer", daemon=True)

    def start(self) -> LedgerWriter:
        """Start the background thread; returns ``self``."""
        self._thread.start()
        return self

    # -- the event path --------------------------------------------------------------------

    def submit(self, row: Row, on_commit: OnCommit | None = None) -> None:
        """Queue ``row``; ``on_commit(row, None)`` runs on the writer thread after its commit,
        ``on_commit(row, exc)`` if the database refused the row. Raises ``LedgerFull`` at
        ``max_depth`` and ``LedgerError`` after ``close``."""
        with self._lock:
            if self._closing:
                raise LedgerError("the ledger writer is closed")
            depth = len(self._q)
            if depth >= self.max_depth:
                self._halt = True
                raise LedgerFull(f"ledger queue full ({depth} rows waiting): stop trading")
            self._q.append(_Item(row, on_commit, time.monotonic_ns()))
            self.stats.submitted += 1
            depth += 1
            if depth > self.stats.max_depth_seen:
                self.stats.max_depth_seen = depth
            if depth >= self.halt_depth:
                self._halt = True
            if depth == 1 or depth == self.batch_rows:
                self._cv.notify()

    def submit_future(self, row: Row) -> Future[None]:
        """``submit`` with a future: resolves to ``None`` after the commit, or fails with the
        database's error for a refused row."""
        fut: Future[None] = Future()
        self.submit(row, _resolve(fut))
        return fut

    @property
    def halt(self) -> bool:
        """True while the queue is too deep: stop new intents (see the outage policy)."""
        return self._halt

    @property
    def up(self) -> bool:
        """False from a failed attempt to reach the database until the next commit."""
        return self._up

    @property
    def down_since_ns(self) -> int:
        """Wall-clock ns when the current outage began; 0 when up."""
        return 0 if self._up else self._down_since_ns

    @property
    def depth(self) -> int:
        """Rows waiting to be committed."""
        return len(self._q)

    def latency_ns(self, q: float) -> int:
        """Quantile ``q`` (0..1) of enqueue→commit latency over recent rows, ns (0 if none)."""
        lat = sorted(self._lat)
        if not lat:
            return 0
        return lat[min(len(lat) - 1, int(q * len(lat)))]

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every row submitted before this call is committed (or refused);
        False if ``timeout`` seconds passed first (e.g. the database is down)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cv:
            target = self._done + len(self._q)
            self._flush_to = max(self._flush_to, target)
            self._cv.notify_all()
            while self._done < target:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                if not self._thread.is_alive():
                    return False
                self._cv.wait(left if left is not None else 0.5)
        return True

    def close(self, timeout: float = 10.0) -> int:
        """Flush for at most ``timeout`` s, stop the thread; returns rows left uncommitted
        (their callbacks never run: record or alert on a non-zero count)."""
        self.flush(timeout if self._thread.is_alive() else 0)
        with self._cv:
            self._closing = True
            self._abort = True
            self._abort_evt.set()
            self._cv.notify_all()
        if self._thread.is_alive():
            self._thread.join(timeout=5.0)
        return len(self._q)

    # -- the writer thread -----------------------------------------------------------------

    def _next_batch(self) -> list[_Item] | None:
        with self._cv:
            while True:
                if self._abort:
                    return None
                n = len(self._q)
                if n:
                    if n >= self.batch_rows or self._flush_to > self._done or self._closing:
                        break
                    wait_ns = self._q[0].enq_ns + self.interval_ns - time.monotonic_ns()
                    if wait_ns <= 0:
                        break
                    self._cv.wait(wait_ns / 1e9)
                elif self._closing:
                    return None
                else:
                    self._cv.wait()
            return list(islice(self._q, self.batch_rows))

    def _run(self) -> None:
        backoff = self.backoff_s[0]
        while True:
            batch = self._next_batch()
            if batch is None:
                return
            try:
                with self.ledger.engine.begin() as conn:
                    write_rows(conn, [it.row for it in batch])
            except Exception as exc:
                if not is_transient(exc):
                    if self._isolate(batch):
                        backoff = self.backoff_s[0]
                        continue
                else:
                    self._went_down(exc)
                if self._sleep(backoff):
                    return
                backoff = min(backoff * 2, self.backoff_s[1])
                continue
            backoff = self.backoff_s[0]
            self.stats.batches += 1
            self._done_with(batch, None)

    def _isolate(self, batch: list[_Item]) -> bool:
        """Commit ``batch`` row by row so one refused row fails alone; False if the database
        became unreachable meanwhile (the rest stays queued)."""
        for it in batch:
            try:
                with self.ledger.engine.begin() as conn:
                    write_rows(conn, [it.row])
            except Exception as exc:
                if is_transient(exc):
                    self._went_down(exc)
                    return False
                self._done_with([it], exc)
                continue
            self.stats.batches += 1
            self._done_with([it], None)
        return True

    def _done_with(self, items: list[_Item], exc: Exception | None) -> None:
        now = time.monotonic_ns()
        with self._cv:
            for _ in items:
                self._q.popleft()
            self._done += len(items)
            if self._halt and len(self._q) <= self.halt_depth // 2:
                self._halt = False
            self._cv.notify_all()
        was_down = not self._up
        self._up = True
        for it in items:
            if exc is None:
                lat = now - it.enq_ns
                self._lat.append(lat)
                self.stats.committed += 1
                if self.on_latency is not None:
                    self._notify(self.on_latency, lat)
            else:
                self.stats.failed += 1
            if it.done is not None:
                self._notify(it.done, it.row, exc)
        if was_down and self.on_status is not None:
            self._notify(self.on_status, True, "")

    def _went_down(self, exc: BaseException) -> None:
        log.warning("ledger unreachable (%d rows queued): %s", len(self._q), _first_line(exc))
        self.stats.retries += 1
        if self._up:
            self._up = False
            self._down_since_ns = time.time_ns()
            self.stats.outages += 1
            if self.on_status is not None:
                self._notify(self.on_status, False, _first_line(exc)[:200])

    def _sleep(self, seconds: float) -> bool:
        """Back off (new rows do not cut it short); True when ``close`` asked to give up."""
        return self._abort_evt.wait(seconds)

    def _notify(self, fn: Callable[..., None], *args: object) -> None:
        try:
            fn(*args)
        except Exception:  # a hook's bug must not stop the ledger
            log.exception("ledger writer hook %r failed", fn)

"""Replay a recording through decode → books (→ sum monitor), optionally verifying every stated
best bid/ask. This is the same feed → book path the live engine runs, minus the socket; it
sits in ``analysis/`` because it drives the sum monitor over the rebuilt books."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from polylab.analysis.replay_result import ReplayResult
from polylab.analysis.windows import SumMonitor, Window
from polylab.book.registry import BookRegistry
from polylab.feed.decode import FrameDecoder, RateLimitedLog, market_decoder
from polylab.feed.hot_lines import SkippedHint, hot_line_decoder
from polylab.feed.recording import Record, RecordingReader, decode_meta
from polylab.feed.wire import BestBidAsk, Book, LeanPriceChange, MarketEvent, PriceChange
from polylab.market import MarketCatalog

__all__ = ["ReplayResult", "iter_market_events", "replay"]

log = logging.getLogger(__name__)

_HINT_TAIL = '"best_bid_ask"}'
"""How a ``best_bid_ask`` frame ends on the wire (``event_type`` last).
Hints only matter when verifying, so without ``verify`` such frames are counted, not decoded;
any other layout still decodes normally."""


def iter_market_events(
    path: str | Path, catalog: MarketCatalog | None = None
) -> Iterator[tuple[int, MarketEvent]]:
    """Yield ``(recv_ns, event)`` for every market event of a recording, in order.

    ``meta`` records extend ``catalog`` as they are met. Used by backtests and notebooks.
    """
    dec = market_decoder()
    bad_log = RateLimitedLog(log)
    for rec in RecordingReader(path):
        if rec.channel == "market":
            for ev in dec.decode(rec.payload):
                yield rec.recv_ns, ev
        elif rec.channel == "meta" and catalog is not None:
            try:
                for m in decode_meta(rec.payload):
                    catalog.add(m)
            except Exception as exc:  # a broken catalog record is skipped, not fatal
                bad_log.warning("bad meta record at %d: %r", rec.recv_ns, exc)


class _Replayer:
    """Counters of one replay and the general path for a decoded ``Record``."""

    def __init__(
        self, reg: BookRegistry, mon: SumMonitor | None, dec: FrameDecoder[Any], verify: bool
    ) -> None:
        self.reg = reg
        self.mon = mon
        self.dec = dec
        self.skip_hints = not verify
        self.handlers = reg.handlers
        (
            (self.pc_tail, self.pc_type, self.pc_decode),
            (
                self.book_tail,
                self.book_type,
                self.book_decode,
            ),
        ) = dec.direct
        self.watched = frozenset((LeanPriceChange, PriceChange, Book) if mon is not None else ())
        self.bad_log = RateLimitedLog(log)
        self.last_ns = 0
        self.n = 0
        self.n_market = 0
        self.n_events = 0
        self.bad_lines = 0

    def record(self, rec: Record) -> None:
        """Apply one record (a venue frame as text, or a catalog)."""
        self.n += 1
        last_ns = self.last_ns = rec.recv_ns
        if rec.channel == "market":
            self.n_market += 1
            self.market(rec.payload, last_ns)
        elif rec.channel == "meta":
            try:
                for m in decode_meta(rec.payload):
                    self.reg.catalog.add(m)
            except Exception as exc:
                self.bad_lines += 1
                self.bad_log.warning("bad meta record at %d: %r", last_ns, exc)

    def market(self, payload: str, last_ns: int) -> None:
        """One market frame given as text: hot layouts straight into their Struct."""
        handlers = self.handlers
        mon = self.mon
        apply: Callable[[Any, int], None] | None
        ev: Any = None
        if payload.endswith(self.pc_tail):
            apply = handlers[self.pc_type]
            try:
                ev = self.pc_decode(payload)
            except Exception:  # anything odd: the guarded path below
                apply = None
        elif self.skip_hints and payload.endswith(_HINT_TAIL):  # the next most frequent
            self.n_events += 1
            return
        elif payload.endswith(self.book_tail):
            apply = handlers[self.book_type]
            try:
                ev = self.book_decode(payload)
            except Exception:
                apply = None
        else:
            apply = None
        if apply is not None:
            self.n_events += 1
            try:
                apply(ev, last_ns)
                if mon is not None:
                    mon.on_market(ev.market, last_ns)
            except Exception as exc:  # a value that breaks an invariant costs its frame
                self.bad_lines += 1
                self.bad_log.warning("frame at %d not applied (%r): %.300s", last_ns, exc, payload)
            return
        dec = self.dec
        try:
            out = dec.fast_decode(payload)
        except Exception:  # DecodeError, or anything a hostile frame provokes
            out = dec.redecode(payload)
        watched = self.watched
        try:
            for e in out if type(out) is list else [out]:
                self.n_events += 1
                handlers[type(e)](e, last_ns)
                if mon is not None and type(e) in watched:
                    mon.on_market(e.market, last_ns)
        except Exception as exc:  # a value that breaks an invariant costs its frame only
            self.bad_lines += 1
            self.bad_log.warning("frame at %d not applied (%r): %.300s", last_ns, exc, payload)


def replay(
    path: str | Path | RecordingReader | Iterable[Record],
    *,
    verify: bool = True,
    monitor: bool = True,
    keep_series: bool = False,
    progress: Callable[[int], None] | None = None,
) -> tuple[ReplayResult, BookRegistry, list[Window], SumMonitor | None]:
    """Rebuild every book of the recording at ``path``.

    ``path`` may also be a ``RecordingReader`` (``RecordingReader.from_lines`` for in-memory
    lines) or an iterable of ``Record`` (streams already decoded).
    Returns the result counters, the registry (final books and catalog), the sum windows found
    (best first) and the monitor (its ``series`` when ``keep_series``). ``progress`` is called
    with bytes read, every few thousand records.

    A recording's hot lines (one ``price_change``, ``book`` or ``best_bid_ask`` frame stored
    inline) are decoded in one pass, line and event together (``feed.hot_lines``), and applied
    without the generic dispatch; without ``verify`` a ``best_bid_ask`` frame is counted, not
    kept (nothing reads hints). Any other line takes the reader's general path and then
    ``_Replayer.record``: hot frames stored as strings are decoded straight into their Struct,
    anything else goes through the guarded path of ``FrameDecoder``.
    """
    if isinstance(path, RecordingReader):
        reader: RecordingReader | None = path
    elif isinstance(path, str | Path):
        reader = RecordingReader(path)
    else:
        reader = None
    reg = BookRegistry(verify=verify)
    mon = SumMonitor(reg.catalog, reg.books, keep_series=keep_series) if monitor else None
    dec = market_decoder(lean=not verify)
    r = _Replayer(reg, mon, dec, verify)
    t0 = time.perf_counter()
    if reader is None:
        records: Iterable[Record] = path  # type: ignore[assignment]
        for rec in records:
            r.record(rec)
    else:
        hot = hot_line_decoder(lean=not verify).decode
        decode_line = reader.decode_line
        count = reader.count_record
        lean = not verify
        for line in reader.lines():
            try:
                ln = hot(line)
            except Exception:  # not a hot line: the general path, which counts bad lines
                other = decode_line(line)
                if other is not None:
                    r.record(other)
                continue
            if ln.channel != "market":
                other = decode_line(line)
                if other is not None:
                    r.record(other)
                continue
            count()
            r.n += 1
            r.n_market += 1
            r.n_events += 1
            last_ns = ln.recv_ns
            r.last_ns = last_ns
            if progress is not None and not r.n_market & 4095:
                progress(reader.bytes_read)
            ev = ln.frame
            if type(ev) is SkippedHint:
                continue
            try:
                if lean and type(ev) is LeanPriceChange:
                    reg._on_lean_price_change(ev, last_ns)
                elif type(ev) is Book:
                    reg._on_book(ev, last_ns)
                else:
                    reg.handlers[type(ev)](ev, last_ns)
                    if type(ev) is BestBidAsk:
                        continue
                if mon is not None:
                    mon.on_market(ev.market, last_ns)  # type: ignore[union-attr]
            except Exception as exc:  # a value that breaks an invariant costs its frame only
                r.bad_lines += 1
                r.bad_log.warning("frame at %d not applied (%r): %.300r", last_ns, exc, line)
    seconds = time.perf_counter() - t0
    st = reg.stats
    dec.stats.frames += r.n_market
    st.events += r.n_events
    windows = mon.finish(r.last_ns) if mon is not None else []
    ds = dec.stats
    res = ReplayResult(
        frames=ds.frames,
        events=st.events,
        level_updates=st.level_updates,
        snapshots=st.snapshots,
        checked=st.checked,
        mismatches=st.mismatches,
        hints_checked=st.hints_checked,
        hint_mismatches=st.hint_mismatches,
        malformed=(reader.malformed if reader else 0) + r.bad_lines + ds.malformed + st.malformed,
        unknown_events=ds.unknown,
        books=len(reg.books),
        markets=len(reg.catalog),
        groups=len(reg.catalog.groups()),
        trades=st.trades,
        windows=len(windows),
        seconds=round(seconds, 6),
        updates_per_s=round(st.level_updates / seconds, 1) if seconds > 0 else 0.0,
        truncated=reader.truncated if reader else False,
        bytes_read=reader.bytes_read if reader else 0,
        stop_reason=reader.stop_reason if reader else "",
        first_mismatches=reg.mismatch_log[:10],
    )
    if progress is not None and reader is not None:
        progress(reader.bytes_read)
    return res, reg, windows, mon

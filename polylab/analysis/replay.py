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
from polylab.feed.decode import RateLimitedLog, market_decoder
from polylab.feed.recording import Record, RecordingReader, decode_meta
from polylab.feed.wire import Book, LeanPriceChange, MarketEvent, PriceChange
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

    The hot events (a single ``price_change`` or ``book`` object in the venue's layout, tag
    last) are decoded straight into their Struct and applied without the generic dispatch;
    without ``verify`` a ``best_bid_ask`` frame is counted, not decoded (nothing reads hints);
    anything else takes the guarded path of ``FrameDecoder``.
    """
    if isinstance(path, RecordingReader):
        reader: RecordingReader | None = path
    elif isinstance(path, str | Path):
        reader = RecordingReader(path)
    else:
        reader = None
    records: Iterable[Record] = reader if reader is not None else path  # type: ignore[assignment]
    bad_lines = 0
    bad_log = RateLimitedLog(log)
    reg = BookRegistry(verify=verify)
    mon = SumMonitor(reg.catalog, reg.books, keep_series=keep_series) if monitor else None
    dec = market_decoder(lean=not verify)
    handlers = reg.handlers
    skip_hints = not verify
    fast = dec._fast
    (pc_tail, pc_type, pc_decode), (book_tail, book_type, book_decode) = dec.direct
    on_pc, on_book = handlers[pc_type], handlers[book_type]
    st = reg.stats
    on_market = mon.on_market if mon is not None else None
    watched = frozenset((LeanPriceChange, PriceChange, Book) if on_market is not None else ())
    last_ns = 0
    n = 0
    n_market = 0
    n_events = 0
    t0 = time.perf_counter()
    for rec in records:
        n += 1
        last_ns = rec.recv_ns
        if rec.channel == "market":
            n_market += 1
            payload = rec.payload
            if progress is not None and not n & 4095:
                progress(reader.bytes_read if reader is not None else n)
            # the hot events: straight into their Struct, their handler, the monitor
            apply: Callable[[Any, int], None] | None
            if payload.endswith(pc_tail):
                apply = on_pc
                try:
                    ev = pc_decode(payload)
                except Exception:  # anything odd: the guarded path below
                    apply = None
            elif skip_hints and payload.endswith(_HINT_TAIL):  # the next most frequent
                n_events += 1
                continue
            elif payload.endswith(book_tail):
                apply = on_book
                try:
                    ev = book_decode(payload)
                except Exception:
                    apply = None
            else:
                apply = None
            if apply is not None:
                n_events += 1
                try:
                    apply(ev, last_ns)
                    if on_market is not None:
                        on_market(ev.market, last_ns)
                except Exception as exc:  # a value that breaks an invariant costs its frame
                    bad_lines += 1
                    bad_log.warning("frame at %d not applied (%r): %.300s", last_ns, exc, payload)
                continue
            try:
                ev = fast(payload)
            except Exception:  # DecodeError, or anything a hostile frame provokes
                ev = dec.redecode(payload)
            try:
                if type(ev) is list:
                    n_events += len(ev)
                    for e in ev:
                        handlers[type(e)](e, last_ns)
                        if type(e) in watched:
                            on_market(e.market, last_ns)  # type: ignore[misc]
                else:
                    n_events += 1
                    tev = type(ev)
                    handlers[tev](ev, last_ns)
                    if tev in watched:
                        on_market(ev.market, last_ns)  # type: ignore[misc]
            except Exception as exc:  # a value that breaks an invariant costs its frame only
                bad_lines += 1
                bad_log.warning("frame at %d not applied (%r): %.300s", last_ns, exc, payload)
        elif rec.channel == "meta":
            try:
                for m in decode_meta(rec.payload):
                    reg.catalog.add(m)
            except Exception as exc:
                bad_lines += 1
                bad_log.warning("bad meta record at %d: %r", last_ns, exc)
    seconds = time.perf_counter() - t0
    dec.stats.frames += n_market
    st.events += n_events
    windows = mon.finish(last_ns) if mon is not None else []
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
        malformed=(reader.malformed if reader else 0) + bad_lines + ds.malformed + st.malformed,
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

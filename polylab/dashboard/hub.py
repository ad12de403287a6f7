"""What the dashboard knows of the runner: the latest ``poly:state`` and the recent entries of
the lossless channels, shared by every open page.

One ``Hub`` per dashboard process holds one subscription per channel on the bus, whatever the
number of pages, so twenty browsers cost the bus what one does. ``poly:state`` is a snapshot:
only the newest one is kept (a slow page skips to it). Signals, trades and errors are read from
the bus's streams (Redis Streams, or the in-process bus's rings) with their ids: the pub/sub
message only wakes the reader, so entries are never lost, never doubled and always in order,
and a page that (re)connects catches up from the ids it last saw.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Mapping

from polylab.bus import (
    ERRORS,
    SIGNALS,
    STATE,
    TRADES,
    Bus,
    Message,
    Subscription,
    encode_message,
)
from polylab.bus.base import parse_stream_id

__all__ = ["LOSSLESS", "Hub", "StreamItem", "format_cursor", "parse_cursor"]

log = logging.getLogger(__name__)

LOSSLESS = (SIGNALS, TRADES, ERRORS)
"""The channels read from streams, in the order their short names appear in a cursor."""
_SHORT = {SIGNALS: "signals", TRADES: "trades", ERRORS: "errors"}

StreamItem = tuple[str, str, bytes]
"""(channel, stream id, message JSON)."""


def format_cursor(ids: Mapping[str, str]) -> str:
    """Per-channel last ids as one SSE event id: ``signals=…;trades=…;errors=…``."""
    return ";".join(f"{_SHORT[ch]}={ids.get(ch, '0-0')}" for ch in LOSSLESS)


def parse_cursor(text: str | None) -> dict[str, str] | None:
    """The ids of a ``Last-Event-ID`` header; None when absent or malformed (start afresh)."""
    if not text:
        return None
    by_short = {v: k for k, v in _SHORT.items()}
    out: dict[str, str] = {}
    for part in text.split(";"):
        name, _, sid = part.partition("=")
        ch = by_short.get(name.strip())
        if ch is None:
            return None
        try:
            parse_stream_id(sid.strip())
        except ValueError:
            return None
        out[ch] = sid.strip()
    return out


class Hub:
    """Subscribes to the bus once and tells waiting pages when something changed.

    ``state`` is the newest ``poly:state`` (JSON bytes, None before the first) and
    ``state_seq`` counts them; ``ring`` keeps the last ``keep`` entries of each lossless
    channel. ``changed`` is replaced (and the old one set) on every change: a page awaits it.
    """

    def __init__(self, bus: Bus, *, keep: int = 500, poll_s: float = 1.0) -> None:
        self.bus = bus
        self.keep = keep
        self.poll_s = poll_s
        """How often the streams are read even without a wake-up (a missed pub/sub)."""
        self.state: bytes | None = None
        self.state_seq = 0
        self.ring: dict[str, deque[tuple[tuple[int, int], StreamItem]]] = {
            ch: deque(maxlen=keep) for ch in LOSSLESS
        }
        self.last_id: dict[str, str] = dict.fromkeys(LOSSLESS, "0-0")
        self.changed = asyncio.Event()
        self.read_errors = 0
        self._wake = asyncio.Event()
        self._subs: list[Subscription] = []
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Subscribe, read what the streams already hold, and start following them."""
        self._subs.append(await self.bus.subscribe(STATE, callback=self._on_state))
        for ch in LOSSLESS:
            self._subs.append(await self.bus.subscribe(ch, callback=self._on_lossless))
        await self._read_streams()
        self._task = asyncio.create_task(self._follow(), name="dashboard-hub")

    async def close(self) -> None:
        for sub in self._subs:
            sub.close()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def notify(self) -> None:
        """Wake every waiting page (new data, or a session ended)."""
        old, self.changed = self.changed, asyncio.Event()
        old.set()

    def _on_state(self, message: Message) -> None:
        self.state = encode_message(message)
        self.state_seq += 1
        self.notify()

    def _on_lossless(self, _message: Message) -> None:
        self._wake.set()

    async def _follow(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.poll_s)
            self._wake.clear()
            await self._read_streams()

    async def _read_streams(self) -> None:
        got = False
        for ch in LOSSLESS:
            while True:
                try:
                    entries = await self.bus.read_stream(ch, self.last_id[ch], 1_000)
                except Exception as exc:  # Redis away: keep the page going, retry later
                    self.read_errors += 1
                    if self.read_errors <= 5:
                        log.warning("dashboard could not read %s: %s", ch, exc)
                    break
                for e in entries:
                    self.ring[ch].append(
                        (parse_stream_id(e.id), (ch, e.id, encode_message(e.message)))
                    )
                    self.last_id[ch] = e.id
                got = got or bool(entries)
                if len(entries) < 1_000:
                    break
        if got:
            self.notify()

    async def since(self, cursor: Mapping[str, str]) -> list[StreamItem]:
        """Entries after ``cursor`` (per channel), oldest first per channel: from the ring, or
        from the bus when the cursor is older than the ring's first entry."""
        out: list[StreamItem] = []
        for ch in LOSSLESS:
            after = parse_stream_id(cursor.get(ch, "0-0"))
            ring = self.ring[ch]
            if ring and after < ring[0][0] and after != (0, 0):
                try:
                    entries = await self.bus.read_stream(ch, cursor[ch], 1_000)
                except Exception:
                    entries = []
                out.extend((ch, e.id, encode_message(e.message)) for e in entries)
                continue
            out.extend(item for key, item in ring if key > after)
        return out

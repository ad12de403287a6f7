"""Guarded decoding of WebSocket frames: foreign input is contained here.

A frame is the text ``PONG``/``PING``, a JSON object, or a JSON array of objects. One msgspec
decoder per channel is built once; the fast path decodes straight into the tagged union. When
that fails the slow path sorts the frame out element by element, so one unknown or broken
event never hides its neighbours. Nothing here raises into the engine: failures are counted
(``DecodeStats``) and logged with the raw text, rate-limited.

A frame longer than ``max_frame_bytes`` is malformed without being decoded (one ``len`` per
frame). Before the slow path decodes a frame into untyped JSON it checks its nesting depth
(``MAX_DEPTH``): a frame of a few thousand ``[`` would otherwise raise ``RecursionError`` from
the decoder. The fast typed path needs no depth check (a typed decoder stops at the first value
of the wrong shape), so valid frames pay nothing for it.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import Any, Generic, TypeVar

import msgspec

from polylab.feed.wire import Book, LeanPriceChange, MarketEvent, PriceChange, UserEvent

__all__ = [
    "MAX_DEPTH",
    "MAX_FRAME_BYTES",
    "DecodeStats",
    "FrameDecoder",
    "RateLimitedLog",
    "market_decoder",
    "nesting_within",
    "user_decoder",
]

log = logging.getLogger(__name__)

E = TypeVar("E")

_LOG_LIMIT = 20
"""Raw frames logged per decoder before going quiet (counts keep going)."""

MAX_DEPTH = 32
"""Deepest JSON nesting accepted (venue frames nest at most 4 levels: array, event, entries,
entry)."""
MAX_FRAME_BYTES = 16 * 1024 * 1024
"""Largest frame accepted, in characters (the feeds' default WebSocket ``max_size`` too)."""

_TOKENS = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]')
"""A JSON string literal (skipped whole, brackets inside do not nest) or one bracket."""


def nesting_within(text: str, limit: int = MAX_DEPTH) -> bool:
    """True when the JSON text nests arrays/objects at most ``limit`` deep (brackets inside
    string literals do not count). Linear; returns as soon as the limit is passed."""
    if text.count("[") + text.count("{") <= limit:
        return True
    depth = 0
    for m in _TOKENS.finditer(text):
        c = m.group()
        if c == "[" or c == "{":
            depth += 1
            if depth > limit:
                return False
        elif c == "]" or c == "}":
            depth -= 1
    return True


class RateLimitedLog:
    """Logs the first ``limit`` problems of one source with their text, then only counts."""

    def __init__(self, logger: logging.Logger, limit: int = _LOG_LIMIT) -> None:
        self._log = logger
        self.limit = limit
        self.logged = 0

    def warning(self, msg: str, *args: object) -> None:
        """Log ``msg % args`` at WARNING unless the limit is reached."""
        if self.logged < self.limit:
            self.logged += 1
            if self.logged == self.limit:
                msg += " (further ones are counted, not logged)"
            self._log.warning(msg, *args)


class DecodeStats(msgspec.Struct):
    """Counters exposed for metrics: frames seen, events out, and what was dropped."""

    frames: int = 0
    events: int = 0
    pongs: int = 0
    malformed: int = 0
    unknown: int = 0


class FrameDecoder(Generic[E]):
    """Decode one channel's frames into events, counting what cannot be used."""

    def __init__(
        self,
        event_type: Any,
        known_tags: frozenset[str],
        channel: str,
        direct: tuple[tuple[str, type], ...] = (),
        max_frame_bytes: int = MAX_FRAME_BYTES,
    ) -> None:
        self._union: msgspec.json.Decoder[Any] = msgspec.json.Decoder(list[event_type] | event_type)
        self.direct: tuple[tuple[str, type, Callable[[str], Any]], ...] = tuple(
            (f'"{tag}"}}', t, msgspec.json.Decoder(t).decode) for tag, t in direct
        )
        """``(tail, type, decode)`` of the hot events decoded straight into their Struct when a
        single-object frame ends with ``tail`` (see ``fast_decode``), for loops that dispatch
        themselves (``analysis.replay``)."""
        self._event_type = event_type
        self._known = known_tags
        self.channel = channel
        self._fast = self._make_fast()
        self.stats = DecodeStats()
        self.max_frame_bytes = max_frame_bytes
        self._log = RateLimitedLog(log)
        self.unknown_types: dict[str, int] = {}

    def fast_decode(self, frame: str | bytes) -> Any:
        """One event or a list of them, raising ``msgspec.DecodeError`` on anything odd; for
        loops that count frames themselves (on error call ``redecode``).

        A single object whose text ends with a hot event's tag (the venue writes
        ``event_type`` last) is decoded straight into that Struct: one pass, where a tagged
        union has to find the tag first. Anything else goes through the union.
        """
        return self._fast(frame)

    def _make_fast(self) -> Any:
        union = self._union.decode
        if len(self.direct) != 2:
            return union
        (t1, _, d1), (t2, _, d2) = self.direct

        def fast(frame: str | bytes) -> Any:
            if type(frame) is str:
                if frame.endswith(t1):
                    return d1(frame)
                if frame.endswith(t2):
                    return d2(frame)
            return union(frame)

        return fast

    def redecode(self, frame: str | bytes) -> list[E]:
        """The guarded slow path for a frame the fast decode rejected (never raises)."""
        out = self._slow(frame)
        self.stats.events -= len(out)
        return out

    def decode(self, frame: str | bytes) -> list[E]:
        """Frame text → events (possibly empty). Never raises."""
        st = self.stats
        st.frames += 1
        if len(frame) > self.max_frame_bytes:
            return self._slow(frame)
        try:
            out = self._fast(frame)
        except Exception:  # DecodeError, or anything else a hostile frame provokes
            return self._slow(frame)
        if type(out) is list:
            st.events += len(out)
            return out
        st.events += 1
        return [out]

    def _slow(self, frame: str | bytes) -> list[E]:
        try:
            return self._sort_out(frame)
        except Exception as exc:  # nothing a frame holds may escape into the feed
            self._bad(_preview(frame), f"{type(exc).__name__}: {exc}")
            return []

    def _sort_out(self, frame: str | bytes) -> list[E]:
        st = self.stats
        if len(frame) > self.max_frame_bytes:
            self._bad(_preview(frame), f"frame of {len(frame)} bytes")
            return []
        text = frame.strip() if isinstance(frame, str) else frame.strip().decode("utf-8", "replace")
        if text in ("PONG", "PING"):
            st.pongs += 1
            return []
        if not nesting_within(text):
            self._bad(text, f"nested deeper than {MAX_DEPTH}")
            return []
        try:
            raw = msgspec.json.decode(text)
        except msgspec.DecodeError as exc:
            self._bad(text, f"not JSON: {exc}")
            return []
        items = raw if isinstance(raw, list) else [raw]
        out: list[E] = []
        for item in items:
            kind = item.get("event_type") if isinstance(item, dict) else None
            if not isinstance(kind, str):
                self._bad(text, "no event_type")
                continue
            if kind not in self._known:
                st.unknown += 1
                n = self.unknown_types.get(kind, 0)
                self.unknown_types[kind] = n + 1
                if n == 0:
                    log.info("%s channel: ignoring unknown event type %r", self.channel, kind)
                continue
            try:
                out.append(msgspec.convert(item, self._event_type))
            except (msgspec.ValidationError, ValueError, TypeError) as exc:
                self._bad(text, f"{kind}: {exc}")
        st.events += len(out)
        return out

    def _bad(self, text: str, why: str) -> None:
        self.stats.malformed += 1
        self._log.warning("%s channel: malformed frame (%s): %.300s", self.channel, why, text)


def _preview(frame: str | bytes) -> str:
    return frame[:300] if isinstance(frame, str) else repr(frame[:300])


_MARKET_TAGS = frozenset(
    {
        "book",
        "price_change",
        "tick_size_change",
        "last_trade_price",
        "best_bid_ask",
        "new_market",
        "market_resolved",
    }
)


def market_decoder(
    *, lean: bool = False, max_frame_bytes: int = MAX_FRAME_BYTES
) -> FrameDecoder[MarketEvent]:
    """A decoder for the market channel (one per connection or replay).

    ``lean``: decode current-schema ``price_change`` frames as ``LeanPriceChange`` (no hashes,
    no stated best bid/ask), for paths that do not verify the venue's statements.
    ``max_frame_bytes``: larger frames are malformed (characters).
    """
    pc: type = LeanPriceChange if lean else PriceChange
    return FrameDecoder(
        MarketEvent,
        _MARKET_TAGS,
        "market",
        (("price_change", pc), ("book", Book)),
        max_frame_bytes=max_frame_bytes,
    )


def user_decoder(*, max_frame_bytes: int = MAX_FRAME_BYTES) -> FrameDecoder[UserEvent]:
    """A decoder for the user channel (``max_frame_bytes`` as for ``market_decoder``)."""
    return FrameDecoder(
        UserEvent, frozenset({"order", "trade"}), "user", max_frame_bytes=max_frame_bytes
    )

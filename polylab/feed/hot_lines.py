"""One-pass decoding of a recording's hot lines: line and frame straight into Structs.

A recording stores a venue frame inline (``{"recv_ns": …, "channel": "market", "frame": {…}}``,
see ``feed.recording``), so a replay can decode a whole line into ``recv_ns``, ``channel`` and
the event in one pass, with no intermediate frame string to build and decode again. These are
the lines that pass covers: one ``price_change``, ``book`` or ``best_bid_ask`` object. Anything
else (an array of events, another event type, a frame stored as a string, a bad line) fails
the decode and takes the reader's general path (``RecordingReader.decode_line``).
"""

from __future__ import annotations

import msgspec

from polylab.feed.wire import BestBidAsk, Book, LeanPriceChange, PriceChange

__all__ = ["HotLine", "LeanHotLine", "SkippedHint", "hot_line_decoder"]


class SkippedHint(
    msgspec.Struct, frozen=True, gc=False, tag="best_bid_ask", tag_field="event_type"
):
    """A ``best_bid_ask`` frame when nothing checks hints: recognised, nothing kept (no strings
    are built for it)."""


class LeanHotLine(msgspec.Struct, gc=False):
    """A hot line for paths that do not verify the venue's statements (``LeanPriceChange``)."""

    recv_ns: int
    channel: str
    frame: LeanPriceChange | Book | SkippedHint


class HotLine(msgspec.Struct, gc=False):
    """A hot line with everything a verifying replay checks (``PriceChange``, ``BestBidAsk``)."""

    recv_ns: int
    channel: str
    frame: PriceChange | Book | BestBidAsk


def hot_line_decoder(*, lean: bool) -> msgspec.json.Decoder[LeanHotLine | HotLine]:
    """The one-pass decoder of hot lines (``lean``: ``LeanHotLine``, else ``HotLine``)."""
    return msgspec.json.Decoder(LeanHotLine if lean else HotLine)

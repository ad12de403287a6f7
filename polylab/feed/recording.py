"""The recording format: JSON Lines, one object per received frame, zstd when named ``*.zst``.

``{"recv_ns": <int: local receive time, ns since the epoch>, "channel": "market",
"payload": "<frame>"}``

``payload`` is the exact frame text. Channels: ``market`` and ``user`` (venue frames), ``meta``
(polylab's own: a JSON ``{"markets": [...]}`` catalog so a backtest knows pairs, neg-risk groups,
fees and sports mappings), and ``sports`` (scoreboard snapshots for the Sniper).
"""

from __future__ import annotations

import io
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import IO

import msgspec
import zstandard

from polylab.market import Market

__all__ = [
    "MetaPayload",
    "Record",
    "RecordingReader",
    "RecordingWriter",
    "decode_meta",
    "open_text",
]

log = logging.getLogger(__name__)


class Record(msgspec.Struct, frozen=True, gc=False):
    """One received frame."""

    recv_ns: int
    channel: str
    payload: str


class MetaPayload(msgspec.Struct, frozen=True):
    """Body of a ``meta`` record: the market catalog known when recording."""

    markets: list[Market]


def open_text(path: str | Path, mode: str = "r") -> IO[str]:
    """Open a recording for text reading/writing, through zstd when the name ends in ``.zst``."""
    p = Path(path)
    if p.suffix == ".zst":
        if "r" in mode:
            raw = zstandard.ZstdDecompressor().stream_reader(open(p, "rb"))  # noqa: SIM115
            return io.TextIOWrapper(raw, encoding="utf-8")
        w = zstandard.ZstdCompressor(level=3).stream_writer(open(p, "wb"))  # noqa: SIM115
        return io.TextIOWrapper(w, encoding="utf-8")
    return open(p, mode, encoding="utf-8")


class RecordingWriter:
    """Append frames to a recording; use as a context manager."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._f = open_text(self.path, "w")
        self._enc = msgspec.json.Encoder()
        self.count = 0

    def write(self, channel: str, payload: str, recv_ns: int | None = None) -> None:
        """Write one frame (``recv_ns`` defaults to now)."""
        rec = Record(recv_ns if recv_ns is not None else time.time_ns(), channel, payload)
        self._f.write(self._enc.encode(rec).decode())
        self._f.write("\n")
        self.count += 1

    def write_meta(self, markets: list[Market], recv_ns: int | None = None) -> None:
        """Store the market catalog on the ``meta`` channel."""
        self.write("meta", self._enc.encode(MetaPayload(markets)).decode(), recv_ns)

    def close(self) -> None:
        """Flush and close (also finishes the zstd frame)."""
        self._f.close()

    def __enter__(self) -> RecordingWriter:
        return self

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class RecordingReader:
    """Iterate a recording's records; broken lines are counted (``malformed``) and skipped."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.malformed = 0
        self.bytes_read = 0
        self._dec = msgspec.json.Decoder(Record)

    def __iter__(self) -> Iterator[Record]:
        dec = self._dec
        with open_text(self.path) as f:
            for line in f:
                self.bytes_read += len(line)
                if not line.strip():
                    continue
                try:
                    yield dec.decode(line)
                except msgspec.DecodeError as exc:
                    self.malformed += 1
                    if self.malformed <= 20:
                        log.warning("%s: bad recording line (%s): %.200s", self.path, exc, line)


def decode_meta(payload: str) -> list[Market]:
    """Markets from a ``meta`` payload (raises ``msgspec.DecodeError`` when broken)."""
    return msgspec.json.decode(payload, type=MetaPayload).markets

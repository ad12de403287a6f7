"""The recording format: JSON Lines, one object per received frame, zstd when named ``*.zst``.

``{"recv_ns": <int: local receive time, ns since the epoch>, "channel": "market",
"frame": <frame>}`` when the frame is one JSON object or array on one line (every venue frame
but ``PONG``): its exact text, inline, so a replay decodes line and frame in one pass
(``feed.hot_lines``). Any other frame is stored as a JSON string, ``"payload": "<frame>"``,
the only form recordings had before; readers take both, in any mix. Either way
``Record.payload`` is the exact frame text. Channels: ``market`` and ``user`` (venue frames),
``meta`` (polylab's own: a JSON ``{"markets": [...]}`` catalog so a backtest knows pairs,
neg-risk groups, fees and sports mappings), and ``sports`` (scoreboard snapshots for the
Sniper).
"""

from __future__ import annotations

import contextlib
import io
import itertools
import logging
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO

import msgspec
import zstandard

from polylab.errors import PolylabError
from polylab.feed.decode import RateLimitedLog
from polylab.market import Market

__all__ = [
    "MetaPayload",
    "Record",
    "RecordingError",
    "RecordingReader",
    "RecordingWriter",
    "decode_meta",
    "encode_record",
    "inline_frame",
    "open_text",
]

log = logging.getLogger(__name__)


class Record(msgspec.Struct, frozen=True, gc=False):
    """One received frame."""

    recv_ns: int
    channel: str
    payload: str


class _Line(msgspec.Struct, gc=False):
    """A line as stored: the frame inline (``frame``) or as a JSON string (``payload``)."""

    recv_ns: int
    channel: str
    payload: str | None = None
    frame: msgspec.Raw = msgspec.Raw()


_enc = msgspec.json.Encoder()
_raw = msgspec.json.Decoder(msgspec.Raw)


def inline_frame(payload: str) -> bool:
    """Whether ``payload`` may be stored inline: exactly one JSON object or array (validated),
    no surrounding whitespace (its text is kept byte for byte) and no line break."""
    if not payload or payload[0] not in "{[" or payload[-1] not in "}]":
        return False
    if "\n" in payload or "\r" in payload:
        return False
    try:
        _raw.decode(payload)
    except (msgspec.DecodeError, RecursionError):
        return False
    return True


def encode_record(channel: str, payload: str, recv_ns: int) -> str:
    """One recording line (without its newline) for a frame received at ``recv_ns`` (ns)."""
    if inline_frame(payload):
        return (
            f'{{"recv_ns":{recv_ns:d},"channel":{_enc.encode(channel).decode()},"frame":{payload}}}'
        )
    return _enc.encode(Record(recv_ns, channel, payload)).decode()


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
        # the checksum lets a reader tell a corrupt block from data
        w = zstandard.ZstdCompressor(level=3, write_checksum=True).stream_writer(open(p, "wb"))  # noqa: SIM115
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
        at = recv_ns if recv_ns is not None else time.time_ns()
        self._f.write(encode_record(channel, payload, at))
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


class RecordingError(PolylabError, ValueError):
    """The file is not a recording at all: empty, not zstd though it should be, or no line of
    it is a record. The message names the file and what was found."""


_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_CHUNK = 1 << 18
"""Bytes read from a plain file at a time."""
_ZCHUNK = 1 << 14
"""Compressed bytes decompressed at a time: a corrupt block loses only what follows it."""
_PROBE_LINES = 100
"""Lines without one record among them after which a file is declared not a recording."""


class RecordingReader:
    """Iterate a recording's records. Never raises for what a line holds.

    A bad line (not UTF-8, not JSON, wrong types, longer than ``max_line_bytes``) is counted
    (``malformed``) and skipped. A zstd stream that is cut short or corrupt ends the iteration
    with what was read: ``truncated`` is set and ``stop_reason`` says why (a plain file whose
    last line is cut off counts as truncated too). ``bytes_read``: recording bytes read so far
    (decompressed). Zstd is recognised by its magic number, whatever the name.
    Raises ``RecordingError`` when the file is empty or is not a recording at all (no record
    among its first lines, or none in the whole file).
    """

    def __init__(self, path: str | Path, *, max_line_bytes: int = 64 * 1024 * 1024) -> None:
        self.path = Path(path)
        self.max_line_bytes = max_line_bytes
        self.malformed = 0
        self.bytes_read = 0
        self.records = 0
        self.truncated = False
        self.stop_reason = ""
        self._dec = msgspec.json.Decoder(_Line)
        self._log = RateLimitedLog(log)
        self._bad = 0
        self._held: list[tuple[Exception, str | bytes]] = []
        self._tail: bytes | None = None
        self._lines: Iterable[str | bytes] | None = None

    @classmethod
    def from_lines(cls, lines: Iterable[str | bytes], *, name: str = "<lines>") -> RecordingReader:
        """A reader of in-memory recording lines (text or bytes, without their newline) that
        decodes and counts them as it would a file's (benchmarks, tests, streams already in
        memory); ``name`` stands for the path in messages; ``bytes_read`` stays 0 and
        ``max_line_bytes`` does not apply (the lines are already in memory)."""
        r = cls(name)
        r._lines = lines
        return r

    def __iter__(self) -> Iterator[Record]:
        return self._records()

    def _records(self) -> Iterator[Record]:
        """The records (one generator: it is on every replay's hot path)."""
        decode = self.decode_line
        for line in self.lines():
            rec = decode(line)
            if rec is not None:
                yield rec

    def lines(self) -> Iterator[str | bytes]:
        """The raw lines, for loops that decode them themselves (``analysis.replay``): such a
        loop calls ``decode_line`` on a line it could not use, ``count_record`` on one it did.
        Raises ``RecordingError`` at the end when no line was a record."""
        with contextlib.ExitStack() as stack:
            if self._lines is not None:
                batches = self._line_batches(self._lines)
            else:
                batches = self._batches(stack.enter_context(open(self.path, "rb")))
            for batch in batches:
                yield from batch
        if not self.records:
            if self._bad:
                why = f"none of its {self._bad} lines is a record"
            elif self.stop_reason:
                why = self.stop_reason
            else:
                why = "the file is empty"
            raise RecordingError(f"{self.path} is not a recording: {why}")

    def decode_line(self, line: str | bytes) -> Record | None:
        """The line's record, or None for a line that is not one (counted in ``malformed``)."""
        try:
            ln = self._dec.decode(line)
            payload = ln.payload
            if payload is None:
                if not ln.frame:
                    raise msgspec.ValidationError("neither `payload` nor `frame`")
                payload = str(ln.frame, "utf-8")
        except (msgspec.DecodeError, ValueError) as exc:  # ValueError: not UTF-8
            self._bad_line(line, exc)
            return None
        self.count_record()
        return Record(ln.recv_ns, ln.channel, payload)

    def count_record(self) -> None:
        """Count a line its caller decoded as a record."""
        if self._held:
            self._release()
        self.records += 1

    @staticmethod
    def _line_batches(lines: Iterable[str | bytes]) -> Iterator[Sequence[str | bytes]]:
        if isinstance(lines, list | tuple):
            yield lines
            return
        it = iter(lines)
        while batch := list(itertools.islice(it, 4096)):
            yield batch

    def _bad_line(self, line: str | bytes, exc: Exception) -> None:
        """Count a line that is not a record; raise when the file is clearly no recording."""
        if not line.strip():
            return
        if line is self._tail:  # the last line, cut short
            if not self.truncated:
                self._cut("the last line is cut off")
            return
        self.malformed += 1
        self._bad += 1
        if self.records:
            self._warn_line(exc, line)
            return
        if len(self._held) < self._log.limit:  # logged once a record proves it a recording
            self._held.append((exc, line))
        if self._bad >= _PROBE_LINES:
            raise RecordingError(
                f"{self.path} is not a recording: none of its first {self._bad} lines is a "
                f"record ({exc})"
            )

    def _warn_line(self, exc: Exception, line: str | bytes) -> None:
        self._log.warning("%s: bad recording line (%s): %.200r", self.path, exc, line)

    def _release(self) -> None:
        for exc, line in self._held:
            self._warn_line(exc, line)
        self._held.clear()

    def _cut(self, why: str) -> None:
        self.truncated = True
        self.stop_reason = why
        if self.records:
            log.warning("%s: recording truncated (%s); reading stops here", self.path, why)

    def _batches(self, f: IO[bytes]) -> Iterator[list[bytes]]:
        """The file's lines (without their newline), a read's worth at a time, through zstd
        when it starts with its magic; a line longer than ``max_line_bytes`` is dropped
        (counted). A last line without newline is ``_tail``."""
        head = f.read(4)
        f.seek(0)
        if self.path.suffix == ".zst" and head != _ZSTD_MAGIC:
            raise RecordingError(
                f"{self.path} is not a recording: named .zst but not zstd data "
                f"(starts with {head!r})"
            )
        chunks = self._zstd_chunks(f) if head == _ZSTD_MAGIC else iter(lambda: f.read(_CHUNK), b"")
        rest = b""
        cap = self.max_line_bytes
        skipping = False
        for chunk in chunks:
            self.bytes_read += len(chunk)
            parts = (rest + chunk).split(b"\n") if rest else chunk.split(b"\n")
            rest = parts.pop()
            if skipping and parts:
                del parts[0]
                skipping = False
            yield parts
            if len(rest) > cap:
                self.malformed += 1
                self._log.warning("%s: line over %d bytes dropped", self.path, cap)
                rest = b""
                skipping = True
        if rest and not skipping:
            self._tail = rest
            yield [rest]

    def _zstd_chunks(self, f: IO[bytes]) -> Iterator[bytes]:
        """Decompressed data of every zstd frame in the file; stops (``truncated``) at a corrupt
        block or when the file ends inside a frame."""
        dctx = zstandard.ZstdDecompressor()
        dobj = dctx.decompressobj()
        started = False
        while chunk := f.read(_ZCHUNK):
            while chunk:
                started = True
                try:
                    out = dobj.decompress(chunk)
                except zstandard.ZstdError as exc:
                    self._cut(f"corrupt zstd data: {exc}")
                    return
                if out:
                    yield out
                if not dobj.eof:
                    break
                chunk = dobj.unused_data
                dobj = dctx.decompressobj()
                started = False
        if started and not dobj.eof:
            self._cut("the zstd stream ends inside a frame")


def decode_meta(payload: str) -> list[Market]:
    """Markets from a ``meta`` payload (raises ``msgspec.DecodeError`` when broken)."""
    return msgspec.json.decode(payload, type=MetaPayload).markets

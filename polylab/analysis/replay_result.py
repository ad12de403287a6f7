"""What a replay saw (``polylab.analysis.replay.replay`` returns it).

Kept out of ``replay.py``, which ``polylab.native`` compiles with mypyc: mypyc drops the class
keywords of msgspec Structs (``kw_only=``...), so the Struct lives in a module that always runs
as Python.
"""

from __future__ import annotations

import msgspec

from polylab.book.stats import Mismatch

__all__ = ["ReplayResult"]


class ReplayResult(msgspec.Struct, kw_only=True):
    """What a replay saw. ``malformed`` counts bad recording lines, undecodable frames, frames
    that could not be applied and bad levels; ``mismatches`` counts stated best bid/ask pairs the
    rebuilt book did not reproduce. ``truncated``: the recording ended early (cut or corrupt
    zstd stream, last line cut off; ``stop_reason`` says which) and the figures cover the
    ``bytes_read`` bytes (decompressed) before that point."""

    frames: int = 0
    events: int = 0
    level_updates: int = 0
    snapshots: int = 0
    checked: int = 0
    mismatches: int = 0
    hints_checked: int = 0
    hint_mismatches: int = 0
    malformed: int = 0
    unknown_events: int = 0
    books: int = 0
    markets: int = 0
    groups: int = 0
    trades: int = 0
    windows: int = 0
    seconds: float = 0.0
    updates_per_s: float = 0.0
    truncated: bool = False
    bytes_read: int = 0
    stop_reason: str = ""
    first_mismatches: list[Mismatch] = []

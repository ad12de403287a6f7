"""Counters of the feed → book step and the record of a stated top of book not reproduced.

Kept out of ``registry.py``, which ``polylab.native`` compiles with mypyc: mypyc drops the class
keywords of msgspec Structs (``frozen=``...), so the Structs live in a module that always runs
as Python.
"""

from __future__ import annotations

import msgspec

__all__ = ["BookStats", "Mismatch"]


class BookStats(msgspec.Struct):
    """Counters of the feed → book step."""

    events: int = 0
    snapshots: int = 0
    level_updates: int = 0
    checked: int = 0
    mismatches: int = 0
    hints_checked: int = 0
    hint_mismatches: int = 0
    malformed: int = 0
    regrids: int = 0
    tick_changes: int = 0
    trades: int = 0
    resolutions: int = 0
    new_markets: int = 0


class Mismatch(msgspec.Struct, frozen=True):
    """A stated top of book that the rebuilt book did not reproduce (prices as micros)."""

    asset_id: str
    timestamp: str
    stated_bid: int
    stated_ask: int
    book_bid: int
    book_ask: int

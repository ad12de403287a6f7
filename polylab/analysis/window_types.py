"""The records of sum windows: their labels, the labelling config, windows and sum points.

Kept out of ``windows.py``, which ``polylab.native`` compiles with mypyc: mypyc drops the class
keywords of msgspec Structs (``frozen=``, ``array_like=``, ``forbid_unknown_fields=``...), so the
Structs live in a module that always runs as Python.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

__all__ = ["Label", "SumPoint", "Window", "WindowConfig", "label_window"]

Label = Literal["stale_leg", "structural", "transient"]


class WindowConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """How windows are labelled (config section ``analysis``).

    ``structural_multiple``: a window not explained by a stale leg is ``structural`` when it
    lasts at least this many times the reaction time, else ``transient``.
    ``default_reaction_ns``: the reaction time (ns) used when a run measured none (no intent
    submitted, or a plain replay): the 1 ms tick-to-order target.
    """

    structural_multiple: Annotated[float, msgspec.Meta(gt=0)] = 3.0
    default_reaction_ns: Annotated[int, msgspec.Meta(gt=0)] = 1_000_000


def label_window(stale: bool, duration_ns: int, reaction_ns: int, multiple: float) -> Label:
    """``stale_leg`` if the mirrored books disagreed when the window opened; otherwise
    ``structural`` when ``duration_ns`` ≥ ``multiple`` × ``reaction_ns``, else ``transient``."""
    if stale:
        return "stale_leg"
    return "structural" if duration_ns >= multiple * reaction_ns else "transient"


class Window(msgspec.Struct, frozen=True, kw_only=True):
    """One span during which a complete set was mispriced at top of book.

    ``side``: "buy" (Σ asks < $1) or "sell" (Σ bids > $1). ``best_sum``: the most favourable sum
    seen, price micros. ``edge``: |$1 − best_sum| micros per set. ``end_ns`` is 0 while open.
    ``mirror_gap``: for a binary pair, how far its mirrored books disagreed when the window
    opened (price micros, ``mirror_gap``); 0 for neg-risk events. ``label``: ``label_window``.
    """

    group: str
    kind: Literal["binary", "negrisk"]
    label: Label
    side: Literal["buy", "sell"]
    start_ns: int
    end_ns: int
    best_sum: int
    edge: int
    updates: int
    mirror_gap: int = 0

    @property
    def duration_ns(self) -> int:
        """Window length in ns (0 while still open)."""
        return self.end_ns - self.start_ns if self.end_ns else 0


class SumPoint(msgspec.Struct, frozen=True, gc=False, array_like=True):
    """One observation of a group's sums (price micros), for time series."""

    recv_ns: int
    group: str
    ask_sum: int
    bid_sum: int

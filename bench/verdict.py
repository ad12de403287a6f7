"""Verdicts of the benchmarks against the targets of ``docs/performance.md``.

Each bench collects its figures in a ``Verdicts`` and ends with ``sys.exit(v.finish())``: one
line per target, ``PASS`` or ``FAIL`` with the figure and the target, a summary line, and exit
code 1 when any target is missed (or could not be measured, e.g. the baseline it is a ratio to
is not installed), so ``make bench`` fails. A figure that is NaN counts as missed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["Verdict", "Verdicts"]


@dataclass(frozen=True)
class Verdict:
    """One target: ``what`` was ``figure`` (in ``unit``); ``op`` is "<=" or ">="."""

    what: str
    figure: float
    op: str
    target: float
    unit: str = ""
    note: str = ""

    @property
    def passed(self) -> bool:
        if math.isnan(self.figure):
            return False
        return self.figure <= self.target if self.op == "<=" else self.figure >= self.target

    def line(self) -> str:
        if math.isnan(self.figure) and math.isnan(self.target):
            return f"FAIL  {self.what}: not measured ({self.note})"
        unit = f" {self.unit}" if self.unit and self.unit != "x" else self.unit
        op = "≤" if self.op == "<=" else "≥"
        note = f" ({self.note})" if self.note else ""
        return (
            f"{'PASS' if self.passed else 'FAIL'}  {self.what}: {self.figure:.3g}{unit} "
            f"(target {op} {self.target:g}{unit}){note}"
        )


class Verdicts:
    """The targets of one bench, in order."""

    def __init__(self, bench: str) -> None:
        self.bench = bench
        self.items: list[Verdict] = []

    def at_most(
        self, what: str, figure: float, target: float, unit: str = "", note: str = ""
    ) -> bool:
        """Record that ``figure`` must be ≤ ``target``; True when it is."""
        v = Verdict(what, float(figure), "<=", target, unit, note)
        self.items.append(v)
        return v.passed

    def at_least(
        self, what: str, figure: float, target: float, unit: str = "", note: str = ""
    ) -> bool:
        """Record that ``figure`` must be ≥ ``target``; True when it is."""
        v = Verdict(what, float(figure), ">=", target, unit, note)
        self.items.append(v)
        return v.passed

    def not_measured(self, what: str, target: str, why: str) -> None:
        """A target this run could not measure: reported as missed."""
        self.items.append(Verdict(what, math.nan, ">=", math.nan, note=f"{target}; {why}"))

    def lines(self) -> list[str]:
        """One line per target, then the summary."""
        missed = sum(not v.passed for v in self.items)
        out = [v.line() for v in self.items]
        if not self.items:
            out.append(f"{self.bench}: no target in performance.md (figures only)")
        else:
            out.append(
                f"{self.bench}: {len(self.items) - missed}/{len(self.items)} targets met"
                + (f", {missed} MISSED" if missed else "")
            )
        return out

    def exit_code(self) -> int:
        """0 when every target passed, else 1."""
        return 0 if all(v.passed for v in self.items) else 1

    def finish(self) -> int:
        """Print the verdict lines; the process exit code."""
        print("\n".join(["", *self.lines()]), flush=True)
        return self.exit_code()

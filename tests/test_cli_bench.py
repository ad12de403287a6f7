"""``make bench`` verdicts (issue 9 §2): one PASS/FAIL line per target with the figure and the
target, and a non-zero exit when a target is missed."""

from __future__ import annotations

import importlib.util
import math
import subprocess
import sys
from pathlib import Path
from types import ModuleType

BENCH = Path(__file__).resolve().parents[1] / "bench"


def _verdict() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_verdict", BENCH / "verdict.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look the module up
    spec.loader.exec_module(mod)
    return mod


def test_verdicts_pass_and_fail_with_figure_and_target() -> None:
    v = _verdict().Verdicts("bench_x")
    assert v.at_most("vwap 1 level", 0.41, 0.5, "µs") is True
    assert v.at_least("replay vs peer", 1.6, 2.0, "x") is False
    assert v.at_most("exactly on target", 10.0, 10.0, "µs") is True
    lines = v.lines()
    assert lines[0] == "PASS  vwap 1 level: 0.41 µs (target ≤ 0.5 µs)"
    assert lines[1] == "FAIL  replay vs peer: 1.6x (target ≥ 2x)"
    assert lines[2].startswith("PASS  exactly on target")
    assert lines[-1] == "bench_x: 2/3 targets met, 1 MISSED"
    assert v.exit_code() == 1


def test_all_met_exits_0_and_nan_or_unmeasured_is_missed() -> None:
    mod = _verdict()
    ok = mod.Verdicts("b")
    ok.at_most("a", 1.0, 2.0)
    assert ok.exit_code() == 0 and ok.lines()[-1] == "b: 1/1 targets met"
    nan = mod.Verdicts("b")
    nan.at_most("p99", math.nan, 1000.0, "µs")
    assert nan.exit_code() == 1 and nan.lines()[0].startswith("FAIL  p99")
    gone = mod.Verdicts("b")
    gone.not_measured("replay vs peer", "target ≥ 2x", "peer not installed")
    assert gone.exit_code() == 1
    assert gone.lines()[0] == "FAIL  replay vs peer: not measured (target ≥ 2x; peer not installed)"
    none = mod.Verdicts("b")
    assert none.exit_code() == 0 and "no target" in none.lines()[0]


def test_quick_bench_prints_a_verdict_per_target_and_exits_accordingly() -> None:
    """A ``--quick`` smoke run (noisy figures: either verdict is fine, they must agree)."""
    p = subprocess.run(
        [sys.executable, str(BENCH / "bench_vwap.py"), "--quick"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    verdicts = [ln for ln in p.stdout.splitlines() if ln.startswith(("PASS  ", "FAIL  "))]
    assert len(verdicts) == 2, p.stdout + p.stderr
    assert all("target ≤" in ln and "µs" in ln for ln in verdicts)
    assert p.returncode == (1 if any(ln.startswith("FAIL") for ln in verdicts) else 0)
    assert "targets met" in p.stdout.splitlines()[-1]

"""The package's imports only look down the flow feed → book → … → runner.

A module may import its own layer and the layers below it. ``sim/`` is the exchange polylab
tests against, not a trader: it may use the bottom layers, the feed's recording format and
execution's signing/auth code (to verify orders), and nothing on the trading path imports it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "polylab"

# Layer of each top-level module or subpackage of polylab (lower imports nothing higher).
LAYERS: dict[str, int] = {
    "domain": 0,
    "money": 0,
    "errors": 0,
    "fees": 0,
    "market": 0,
    "clock": 0,
    "venue": 0,
    "secret": 0,
    "samples": 0,  # the latest-samples ring (engine's tick-to-order, read by ops and runner)
    "cli_support": 0,  # the commands' error/log plumbing (imports only errors): feed, sim use it
    "feed": 1,
    "book": 2,
    "analysis": 3,
    "strategy": 4,
    "risk": 5,
    "execution": 6,
    "engine": 7,
    "backtest": 9,  # a face: engine over a recording, writes a run folder
    "config": 7,
    "compare": 7,
    "store": 8,
    "bus": 8,
    "ops": 8,
    "runner": 9,
    "research": 9,
    "pipeline": 9,  # papermill pipelines over research, store and the runner's bus
    "cli": 9,
    "sim": 9,
    "dashboard": 9,  # a face: the operator's page on the bus
    "__init__": 0,  # the package itself: __version__ and the guard of the compiled hot path
    "native": 0,  # which build of the hot path loads (stdlib only)
    "native_build": 9,  # compiles the hot path (mypyc, setuptools): make setup
    "__main__": 9,
}
TRADING_PATH_MAX = 8  # layers up to store/bus never import the simulator
SIM_MAY_IMPORT = {
    "polylab.execution.auth",
    "polylab.execution.eip712",
    "polylab.execution.signing_v1",
    "polylab.execution.signing_v2",
    "polylab.feed.recording",
    "polylab.feed.wire",
}
SIM_MAX_LAYER = 1  # beyond the list above, the simulator uses only domain/money and feed

# Edges still to be untangled: (importer, imported). Must only shrink.
KNOWN: set[tuple[str, str]] = set()


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _top(mod: str) -> str:
    parts = mod.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _imports(path: Path, mod: str) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out: set[str] = set()
    pkg = mod if path.name == "__init__.py" else mod.rsplit(".", 1)[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.startswith("polylab"))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = pkg.split(".")
                base = base[: len(base) - node.level + 1]
                name = ".".join([*base, node.module] if node.module else base)
            else:
                name = node.module or ""
            if name.startswith("polylab"):
                out.add(name)
    return out


def _upward(importer: str, imported: str) -> bool:
    """Whether ``importer`` → ``imported`` breaks the layering."""
    top, other = _top(importer), _top(imported)
    if other == top:
        return False
    if top == "sim":
        return imported not in SIM_MAY_IMPORT and LAYERS[other] > SIM_MAX_LAYER
    if other == "sim":
        return LAYERS[top] <= TRADING_PATH_MAX
    return LAYERS[other] > LAYERS[top]


def _violations() -> set[tuple[str, str]]:
    bad: set[tuple[str, str]] = set()
    for path in sorted(ROOT.rglob("*.py")):
        mod = _module_name(path)
        top = _top(mod)
        assert top in LAYERS, f"{mod}: give its top-level name a layer in tests/test_layers.py"
        bad.update((mod, imp) for imp in _imports(path, mod) if _upward(mod, imp))
    return bad


def test_imports_only_look_down_the_flow() -> None:
    new = _violations() - KNOWN
    assert not new, "upward imports: " + ", ".join(f"{a} → {b}" for a, b in sorted(new))


def test_known_exceptions_are_still_real() -> None:
    stale = KNOWN - _violations()
    assert not stale, f"remove fixed edges from KNOWN: {sorted(stale)}"


@pytest.mark.parametrize(
    ("importer", "imported", "expected"),
    [
        ("polylab.feed.x", "polylab.strategy.base", True),
        ("polylab.strategy.x", "polylab.feed.wire", False),
        ("polylab.engine", "polylab.sim.server", True),
        ("polylab.sim.rest", "polylab.execution.signing_v2", False),
        ("polylab.sim.rest", "polylab.execution.live", True),
    ],
)
def test_the_rule_itself(importer: str, imported: str, expected: bool) -> None:
    assert _upward(importer, imported) is expected


def test_unit_newtypes_catch_a_unit_mix_up(tmp_path: Path) -> None:
    """mypy refuses a size where a price goes: the shared types carry the unit NewTypes."""
    import subprocess
    import sys

    src = tmp_path / "mixup.py"
    src.write_text(
        "from polylab.domain import Leg, Side, SizeMicros, PriceMicros\n"
        "size = SizeMicros(5_000_000)\n"
        "ok = Leg(token_id='t', side=Side.BUY, price=PriceMicros(420_000), size=size)\n"
        "bad = Leg(token_id='t', side=Side.BUY, price=size, size=size)\n",
        encoding="utf-8",
    )
    out = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", str(src)],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT.parent,
    )
    assert out.returncode == 1, out.stdout
    assert 'Argument "price" to "Leg" has incompatible type "SizeMicros"' in out.stdout
    assert out.stdout.count("error:") == 1

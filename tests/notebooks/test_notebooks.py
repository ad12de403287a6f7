"""Notebooks: stripped of outputs, no functions or classes in cells, one parameters cell, and
they run (papermill) on small data."""

import ast
import json
from pathlib import Path

import pytest
from nb_run import run_notebook

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb")) + sorted(
    (ROOT / "pipelines").glob("*.ipynb")
)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_clean(path: Path) -> None:
    nb = json.loads(path.read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert nb["cells"][0]["cell_type"] == "markdown", "first cell states purpose, inputs, outputs"
    params = [c for c in code if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(params) == 1, "exactly one cell tagged parameters"
    for c in code:
        assert not c.get("outputs") and c.get("execution_count") is None, "outputs committed"
        tree = ast.parse("".join(c["source"]))
        defs = [
            n
            for n in ast.walk(tree)
            if isinstance(n, ast.FunctionDef | ast.ClassDef | ast.AsyncFunctionDef | ast.Lambda)
        ]
        assert not defs, f"logic belongs in the package, not in {path.name}"


def test_01_explore_depth_runs(tmp_path: Path) -> None:
    out = tmp_path / "01.ipynb"
    run_notebook(
        ROOT / "notebooks/01-explore-depth.ipynb",
        out,
        {"duration_s": 6.0, "seed": 5},
        tmp_path,
    )
    nb = json.loads(out.read_text())
    text = json.dumps([c.get("outputs", []) for c in nb["cells"]])
    assert "mismatches=0" in text and "stale_leg" in text and "application/vnd.plotly" in text


def test_01_explore_depth_runs_on_live_data_from_the_simulator(tmp_path: Path) -> None:
    """``source="live"``: the same cells on seconds recorded now from the built-in simulator."""
    out = tmp_path / "01-live.ipynb"
    run_notebook(
        ROOT / "notebooks/01-explore-depth.ipynb",
        out,
        {"source": "live", "duration_s": 4.0, "seed": 3},
        tmp_path,
    )
    nb = json.loads(out.read_text())
    text = json.dumps([c.get("outputs", []) for c in nb["cells"]])
    assert "mismatches=0" in text and "application/vnd.plotly" in text
    # The simulator's catalog (recorded on the meta channel), not the synthetic generator's.
    assert "sim-" in text


def test_02_tune_thresholds_runs(tmp_path: Path) -> None:
    out = tmp_path / "02.ipynb"
    run_notebook(
        ROOT / "notebooks/02-tune-thresholds.ipynb",
        out,
        {
            "duration_s": 8.0,
            "seed": 5,
            "edges": [0.0, 0.05],
            "liquidities": [5.0, 100.0],
            "workers": 1,
        },
        tmp_path,
    )
    nb = json.loads(out.read_text())
    text = json.dumps([c.get("outputs", []) for c in nb["cells"]])
    assert "application/vnd.plotly" in text and "min_liquidity" in text
    assert "application/vnd.jupyter.widget-view+json" in text

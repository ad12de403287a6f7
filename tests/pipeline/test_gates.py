"""Gates from YAML: a bad file names the field and the value; evaluation is exact, and a
missing metric fails its gate."""

from __future__ import annotations

from pathlib import Path

import pytest
from pipeline.promote_data import GATES, metrics

from polylab.errors import ConfigError, InputError
from polylab.pipeline.gates import Gate, all_passed, evaluate, failures, load_gates, parse_gates


def test_the_shipped_gates_file_loads_and_passes_a_good_candidate() -> None:
    gates = load_gates(GATES)
    assert [g.name for g in gates] == ["oos_trades", "oos_pnl", "oos_drawdown", "paper_vs_backtest"]
    res = evaluate(gates, metrics())
    assert all_passed(res) and failures(res) == []
    assert res["oos_pnl"].op == ">=" and res["oos_pnl"].limit == 0
    assert res["oos_pnl"].value == 4_500_000
    assert res["oos_drawdown"].op == "<=" and res["oos_drawdown"].limit == 50_000_000


def test_bounds_are_inclusive_and_exact() -> None:
    gates = [
        Gate(name="pnl", metric="out_of_sample.pnl_micros", min=1),
        Gate(name="diff", metric="paper.diff_pct", max=10),
    ]
    at = evaluate(gates, {"out_of_sample": {"pnl_micros": 1}, "paper": {"diff_pct": 10.0}})
    assert at["pnl"].passed and at["diff"].passed
    below = evaluate(gates, {"out_of_sample": {"pnl_micros": 0}, "paper": {"diff_pct": 10.000001}})
    assert not below["pnl"].passed and not below["diff"].passed
    assert below["pnl"].reason == "out_of_sample.pnl_micros = 0 is not >= 1"
    # one micro above a huge limit still fails: integers are compared exactly
    big = [Gate(name="dd", metric="m", max=2**62)]
    assert not evaluate(big, {"m": 2**62 + 1})["dd"].passed


def test_a_missing_or_non_numeric_metric_fails_its_gate() -> None:
    gates = load_gates(GATES)
    m = metrics()
    del m["paper"]
    m["out_of_sample"]["trades"] = None
    m["out_of_sample"]["pnl_at_payout_micros"] = "12"
    res = evaluate(gates, m)
    assert res["paper_vs_backtest"].reason == "missing" and res["paper_vs_backtest"].value is None
    assert res["oos_trades"].reason == "missing"
    assert res["oos_pnl"].reason.startswith("not a number")
    assert res["oos_drawdown"].passed
    assert not all_passed(res)
    assert failures(res) == [
        "oos_trades: missing",
        "oos_pnl: not a number: '12'",
        "paper_vs_backtest: missing",
    ]


def test_no_results_is_not_passed() -> None:
    assert not all_passed({})


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("gates:\n  - {name: a, metric: x.y, min: lots}\n", "$.gates[0].min` (value 'lots')"),
        ("gates:\n  - {name: a, metric: x.y}\n", "give exactly one of min or max"),
        ("gates:\n  - {name: a, metric: x.y, min: 1, max: 2}\n", "give exactly one of min or max"),
        ("gates:\n  - {name: a, metric: 'x y', min: 1}\n", "was 'x y'"),
        ("gates:\n  - {name: a, metric: x, min: 1, maxx: 2}\n", "unknown field `maxx`"),
        (
            "gates:\n  - {name: a, metric: x, min: 1}\n  - {name: a, metric: y, min: 1}\n",
            "'a' appears twice",
        ),
        ("gates: []\n", "no gates"),
        ("[1, 2]\n", "Expected `object`"),
    ],
)
def test_a_bad_gates_file_names_the_field_and_value(tmp_path: Path, text: str, needle: str) -> None:
    p = tmp_path / "gates.yaml"
    p.write_text(text)
    with pytest.raises(ConfigError) as exc:
        load_gates(p)
    assert needle in str(exc.value) and str(p) in str(exc.value)


def test_unreadable_or_malformed_yaml_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"gates file .*nope\.yaml"):
        load_gates(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("gates: [ {name: a\n")
    with pytest.raises(InputError, match="not valid YAML"):
        load_gates(bad)


def test_parse_gates_takes_parsed_data() -> None:
    gates = parse_gates({"gates": [{"name": "t", "metric": "a.b", "max": 2.5}]})
    assert gates == [Gate(name="t", metric="a.b", max=2.5)]

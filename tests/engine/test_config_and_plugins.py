from pathlib import Path

import pytest
from engine_recordings import write_negrisk_arb

from polylab.backtest import run_backtest
from polylab.config import build_strategies, config_id, load_config
from polylab.errors import ConfigError


def test_env_maps_onto_fields_in_the_spec_units() -> None:
    cfg = load_config(
        env={
            "SUMTO100_MIN_EDGE": "0.01",
            "SUMTO100_MIN_LIQUIDITY": "25",
            "RISK_MAX_POSITION": "250",
            "RISK_MAX_DAILY_LOSS": "75.5",
            "DRY_RUN": "false",
            "PAPER_LATENCY_MS": "20",
        }
    )
    assert cfg.sum_to_100.min_edge_micros == 10_000
    assert cfg.sum_to_100.min_liquidity_micros == 25_000_000
    assert cfg.risk.max_position_micros == 250_000_000
    assert cfg.risk.max_daily_loss_micros == 75_500_000
    assert cfg.live.dry_run is False and cfg.paper.latency_ms == 20


def test_defaults_are_the_spec_defaults_and_safe() -> None:
    cfg = load_config(env={})
    assert cfg.sum_to_100.min_edge_micros == 3_000
    assert cfg.sum_to_100.min_liquidity_micros == 50_000_000
    assert cfg.sum_to_100.fee_rate_micros == 10_000
    assert cfg.risk.max_position_micros == 100_000_000
    assert cfg.risk.max_daily_loss_micros == 200_000_000
    assert cfg.live.dry_run is True


@pytest.mark.parametrize(
    ("env", "needle"),
    [
        ({"SUMTO100_MIN_EDGE": "abc"}, "'abc'"),
        ({"SUMTO100_MIN_EDGE": "-0.1"}, "-0.1"),
        ({"RISK_MAX_POSITION": "lots"}, "RISK_MAX_POSITION"),
        ({"DRY_RUN": "maybe"}, "DRY_RUN"),
        ({"SUMTO100_NOPE": "1"}, "SUMTO100_NOPE"),
    ],
)
def test_bad_values_fail_at_load_naming_field_and_value(env: dict[str, str], needle: str) -> None:
    with pytest.raises(ConfigError, match=needle.replace("(", r"\(")):
        load_config(env=env)


def test_config_file_toml_and_json_and_unknown_sections(tmp_path: Path) -> None:
    t = tmp_path / "c.toml"
    t.write_text(
        'strategies = ["clipper"]\n[clipper]\nCLIPPER_MIN_EDGE = "0.02"\n'
        "[engine]\ncooldown_ms = 10\n"
    )
    cfg = load_config(t, env={})
    assert cfg.strategies == ("clipper",) and cfg.clipper.min_edge_micros == 20_000
    assert cfg.engine.cooldown_ms == 10
    j = tmp_path / "c.json"
    j.write_text('{"risk": {"max_open_orders": 0}}')
    with pytest.raises(ConfigError, match="max_open_orders"):
        load_config(j, env={})
    (tmp_path / "u.toml").write_text("[strategy]\nx = 1\n")
    with pytest.raises(ConfigError, match="unknown section"):
        load_config(tmp_path / "u.toml", env={})


def test_config_id_is_stable_and_sensitive() -> None:
    a, b = load_config(env={}), load_config(env={})
    assert config_id(a) == config_id(b)
    assert config_id(a) != config_id(load_config(env={"SUMTO100_MIN_EDGE": "0.004"}))


def test_plugin_strategy_by_module_and_class(tmp_path: Path) -> None:
    t = tmp_path / "c.toml"
    t.write_text(
        'strategies = ["sum_to_100", "plugin_strategies:Counting"]\n'
        '[plugins."plugin_strategies:Counting"]\nlabel = "mine"\n'
    )
    strategies = build_strategies(load_config(t, env={}))
    assert [s.name for s in strategies] == ["sum_to_100", "mine"]
    with pytest.raises(ConfigError, match="cannot load"):
        build_strategies(load_config(env={}).__replace__(strategies=("nope.mod:Thing",)))
    with pytest.raises(ConfigError, match="neither a built-in"):
        build_strategies(load_config(env={}).__replace__(strategies=("sumto100",)))


def test_a_raising_strategy_is_contained(tmp_path: Path) -> None:
    rec = tmp_path / "arb.jsonl"
    write_negrisk_arb(rec)
    cfg = load_config(env={"RISK_MAX_POSITION": "1000"}).__replace__(
        strategies=("plugin_strategies:Exploding", "sum_to_100")
    )
    res, recorder, engine = run_backtest(rec, cfg)
    assert engine.stats.strategy_errors >= 6  # every book update of the recording
    assert recorder.rows["errors"] and "boom" in recorder.rows["errors"][0].error
    assert res.trades == 1  # the healthy strategy still traded

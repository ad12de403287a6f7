"""Plugins load classes only (issue 9 §2): a ``module:Class`` that is not a class implementing
the Strategy protocol is refused before anything of it is called."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from polylab.config import build_strategies, load_config
from polylab.errors import ConfigError

PLUGIN = """
from pathlib import Path

MARK = Path({mark!r})


def touch(*args, **kwargs):
    MARK.write_text("called")
    return []


class NotAStrategy:
    def __init__(self, *args, **kwargs):
        MARK.write_text("constructed")


class HalfStrategy:
    name = "half"

    def __init__(self, *args, **kwargs):
        MARK.write_text("constructed")

    def on_book(self, ctx, token_id):
        return []


class Fine:
    name = "fine"

    def on_book(self, ctx, token_id):
        return []

    def on_timer(self, ctx):
        return []

    def on_games(self, ctx, games):
        return []
"""


@pytest.fixture
def plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A plugin module ``evil_plugin_mod`` on sys.path; returns the file a call would write."""
    mark = tmp_path / "called.txt"
    pkg = tmp_path / "plugins"
    pkg.mkdir()
    (pkg / "evil_plugin_mod.py").write_text(PLUGIN.format(mark=str(mark)))
    monkeypatch.syspath_prepend(str(pkg))
    sys.modules.pop("evil_plugin_mod", None)  # each test imports its own copy (its own MARK)
    yield mark
    sys.modules.pop("evil_plugin_mod", None)


def _build(ref: str) -> None:
    build_strategies(load_config(env={}).__replace__(strategies=(ref,)))


def test_a_function_is_refused_and_never_called(plugin: Path) -> None:
    with pytest.raises(ConfigError, match=r"'evil_plugin_mod:touch' is a function, not a class"):
        _build("evil_plugin_mod:touch")
    assert not plugin.exists()


@pytest.mark.parametrize("ref", ["evil_plugin_mod:NotAStrategy", "evil_plugin_mod:HalfStrategy"])
def test_a_class_without_the_hooks_is_refused_before_construction(plugin: Path, ref: str) -> None:
    with pytest.raises(ConfigError, match="does not implement the Strategy protocol"):
        _build(ref)
    assert not plugin.exists()


def test_os_system_is_refused_by_name(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"'os:system' is a builtin_function_or_method"):
        _build("os:system")
    with pytest.raises(ConfigError, match=r"'os:environ' is a _Environ, not a class"):
        _build("os:environ")
    with pytest.raises(ConfigError, match="does not implement the Strategy protocol"):
        _build("subprocess:Popen")
    assert os.environ  # untouched


def test_a_strategy_class_still_loads(plugin: Path) -> None:
    strategies = build_strategies(
        load_config(env={}).__replace__(strategies=("sum_to_100", "evil_plugin_mod:Fine"))
    )
    assert [s.name for s in strategies] == ["sum_to_100", "fine"]
    assert not plugin.exists()


def test_the_cli_refuses_os_system_before_running(tmp_path: Path, plugin: Path) -> None:
    from typer.testing import CliRunner

    from polylab.book.synthetic import SyntheticConfig, write_synthetic
    from polylab.cli import app

    rec = tmp_path / "r.jsonl"
    write_synthetic(rec, SyntheticConfig(seed=2, duration_s=1.0))
    cfg = tmp_path / "c.toml"
    cfg.write_text('strategies = ["evil_plugin_mod:touch"]\n')
    res = CliRunner().invoke(
        app, ["backtest", str(rec), "--config", str(cfg), "--out", str(tmp_path / "run")]
    )
    assert res.exit_code == 2 and "evil_plugin_mod:touch" in res.stderr
    assert not plugin.exists()

"""Paper validation on the built-in simulator: the session and the backtest of its own feed
agree (same fills, PnL difference 0 %), also when called from inside a running event loop (a
notebook kernel), and the difference is measured as defined."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from polylab.config import config_id, load_config
from polylab.errors import InputError
from polylab.money import MICROS
from polylab.research.paper_check import PaperCheck, diff_pct, paper_check
from polylab.runner.paper import FEED_FILE
from polylab.store.run_folder import file_sha256


def test_paper_session_agrees_with_the_backtest_of_its_feed(tmp_path: Path) -> None:
    cfg = load_config(env={"RISK_MAX_POSITION": "300"})

    async def in_a_loop() -> PaperCheck:  # as a notebook cell runs: inside the kernel's loop
        return paper_check(cfg, seconds=5.0, out_dir=tmp_path, seed=11)

    chk = asyncio.run(in_a_loop())
    assert chk.paper_trades >= 1, "the simulator should have traded: nothing to compare"
    assert chk.config_id == config_id(cfg)
    assert chk.identical_fills and chk.identical_intents
    assert chk.backtest_pnl_micros == chk.paper_pnl_micros and chk.diff_pct == 0.0
    assert chk.backtest_trades == chk.paper_trades
    feed = tmp_path / "paper" / FEED_FILE
    assert chk.feed_sha256 == file_sha256(feed)
    bt = json.loads((tmp_path / "backtest" / "summary.json").read_text())
    assert bt["pnl"] == chk.backtest_pnl_micros and bt["provenance"]["data_hash"] == chk.feed_sha256
    assert chk.comparison["same_data"] and chk.comparison["same_config"]
    block = chk.block()
    assert block["diff_pct"] == 0.0 and block["pnl_micros"] == chk.paper_pnl_micros


def test_diff_pct_definition() -> None:
    assert diff_pct(3 * MICROS, 2 * MICROS) == 50.0
    assert diff_pct(-2 * MICROS, 2 * MICROS) == 200.0
    assert diff_pct(10_000, 0) == 1.0  # one cent against the $1 floor
    assert diff_pct(0, -MICROS // 2) == 50.0  # |backtest| under $1: the floor
    assert diff_pct(7, 7) == 0.0


def test_paper_seconds_must_be_positive(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="paper seconds must be > 0 \\(got 0\\)"):
        paper_check(load_config(env={}), seconds=0, out_dir=tmp_path)

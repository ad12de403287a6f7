"""``runner.reload`` on a real engine, ledger and bus in one process: what a swap changes
(strategies, risk limits) and keeps (the engine, the Sniper's team directory), a config file
reload, and the refusals."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest
from engine_recordings import negrisk_markets
from pipeline.promote_data import GATES, metrics

from polylab.backtest import RunParts
from polylab.book.registry import BookRegistry
from polylab.bus import InProcessBus
from polylab.bus.messages import ERRORS, SIGNALS, ConfigMessage, ControlMessage, ErrorMessage
from polylab.bus.sink import BusSink
from polylab.config import PolylabConfig, config_id
from polylab.execution.paper import PaperTrader
from polylab.market import MarketCatalog
from polylab.pipeline.promote import evaluate_candidate, register_candidate
from polylab.runner.reload import ConfigReloader
from polylab.store.ledger import Ledger
from polylab.store.ledger_sink import LedgerSink
from polylab.store.ledger_writer import LedgerWriter

BASE: dict[str, object] = {
    "strategies": ["sum_to_100", "sniper"],
    "sum_to_100": {"min_edge_micros": 1_000},
    "risk": {"max_open_orders": 20},
}


def _cfg(**sections: object) -> PolylabConfig:
    data = json.loads(json.dumps(BASE))
    for name, fields in sections.items():
        data[name] = {**data.get(name, {}), **fields}  # type: ignore[dict-item]
    return msgspec.convert(data, PolylabConfig)


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    led = Ledger.open(f"sqlite:///{tmp_path / 'ledger.db'}")
    yield led
    led.close()


def _gated(ledger: Ledger, cfg: PolylabConfig) -> str:
    cid = register_candidate(ledger, cfg, metrics=metrics(), data_hashes={}).id
    evaluate_candidate(ledger, cid, GATES)
    return cid


def _config_file(tmp: Path, cfg: PolylabConfig) -> Path:
    p = tmp / f"{config_id(cfg)[:8]}.json"
    p.write_bytes(msgspec.json.encode(cfg))
    return p


def _run(
    ledger: Ledger, start: PolylabConfig, messages: list[ControlMessage]
) -> tuple[ConfigReloader, RunParts, list[object], list[object]]:
    """Build a session's engine on ``start``, hand each control message to a reloader, and
    return what reached poly:signals and poly:errors."""
    catalog = MarketCatalog(negrisk_markets())
    parts = RunParts(start, BookRegistry(catalog), PaperTrader(start.paper, catalog), 10**9)
    run_id = ledger.start_run(mode="paper", venue="t", config_id=config_id(start), code_version="t")
    writer = LedgerWriter(ledger).start()
    sink = LedgerSink(writer, run_id, executor="paper")
    parts.engine.sinks.append(sink)

    async def main() -> tuple[ConfigReloader, list[object], list[object]]:
        bus = InProcessBus()
        parts.engine.sinks.append(BusSink(bus))  # as the runner's: errors to poly:errors
        await bus.start()
        signals = await bus.subscribe(SIGNALS, maxsize=100)
        errors = await bus.subscribe(ERRORS, maxsize=100)
        r = ConfigReloader(
            parts.engine, start, ledger=ledger, bus=bus, ledger_sink=sink, poll=False
        )
        for m in messages:
            await r.on_control(m)
        await bus.close()
        got_s = [m async for m in signals]
        got_e = [m async for m in errors]
        return r, got_s, got_e

    r, sigs, errs = asyncio.run(main())
    writer.close()
    return r, parts, sigs, errs


def _reload(path: str = "", by: str = "ops") -> ControlMessage:
    return ControlMessage(ts_ns=1, action="reload_config", by=by, reason="r", config_path=path)


def test_a_file_reload_swaps_strategies_and_risk_limits_in_the_same_engine(
    ledger: Ledger, tmp_path: Path
) -> None:
    start = _cfg()
    new = _cfg(sum_to_100={"min_edge_micros": 7_000}, risk={"max_open_orders": 3})
    new_id = _gated(ledger, new)
    path = _config_file(tmp_path, new)
    r, parts, sigs, errs = _run(ledger, start, [_reload(str(path))])
    eng = parts.engine
    assert r.active_id == new_id and r.config == new and r.refusals == []
    s100 = next(s for s in eng.strategies if s.name == "sum_to_100")
    assert s100.config.min_edge_micros == 7_000  # type: ignore[attr-defined]
    assert eng.risk.config.max_open_orders == 3
    (msg,) = sigs
    assert isinstance(msg, ConfigMessage) and errs == []
    assert (msg.old_id, msg.new_id, msg.origin) == (config_id(start), new_id, str(path))
    assert msg.changed == ("risk.max_open_orders", "sum_to_100.min_edge_micros")
    assert msg.restart_needed == ()
    (row,) = [e for e in ledger.rows("errors") if e["source"] == "config"]
    assert row["error"].startswith(f"config swap {config_id(start)} -> {new_id} by ops")


def test_the_sniper_keeps_its_team_directory_and_engine_changes_wait(
    ledger: Ledger, tmp_path: Path
) -> None:
    start = _cfg()
    new = _cfg(engine={"cooldown_ms": 900}, sniper={"min_edge_micros": 50_000})
    _gated(ledger, new)
    r, parts, sigs, _ = _run(ledger, start, [_reload(str(_config_file(tmp_path, new)))])
    (msg,) = sigs
    assert isinstance(msg, ConfigMessage) and msg.restart_needed == ("engine",)
    assert r.active_id == msg.new_id
    sniper = next(s for s in parts.engine.strategies if s.name == "sniper")
    assert sniper.config.min_edge_micros == 50_000  # type: ignore[attr-defined]
    assert parts.engine.config.cooldown_ms == 250  # kept until the next start


def test_refusals_leave_the_session_unchanged_and_are_recorded(
    ledger: Ledger, tmp_path: Path
) -> None:
    start = _cfg()
    ungated = _cfg(sum_to_100={"min_edge_micros": 2})
    failing = _cfg(sum_to_100={"min_edge_micros": 3})
    cid = register_candidate(ledger, failing, metrics=metrics(oos_pnl=-1), data_hashes={}).id
    evaluate_candidate(ledger, cid, GATES)
    messages = [
        _reload(str(_config_file(tmp_path, ungated))),  # not in the ledger
        _reload(str(_config_file(tmp_path, failing))),  # in it, a gate failed
        _reload(str(tmp_path / "missing.toml")),  # no such file
        _reload(""),  # nothing promoted
    ]
    r, parts, sigs, errs = _run(ledger, start, messages)
    assert r.active_id == config_id(start) and r.config == start and sigs == []
    s100 = next(s for s in parts.engine.strategies if s.name == "sum_to_100")
    assert s100.config.min_edge_micros == 1_000  # type: ignore[attr-defined]
    assert len(r.refusals) == len(errs) == 4
    assert all(isinstance(e, ErrorMessage) and e.source == "config" for e in errs)
    assert "is not in the ledger: only configs with passed gates" in r.refusals[0]
    assert f"config {cid[:12]} failed its gates: oos_pnl" in r.refusals[1]
    assert "missing.toml" in r.refusals[2]
    assert "no promoted config in the ledger" in r.refusals[3]
    rows = [e["error"] for e in ledger.rows("errors") if e["source"] == "config"]
    assert sorted(rows) == sorted(r.refusals)  # the table is in key (uuid) order


def test_a_reloaded_kill_switch_halts_and_only_resume_clears_it(
    ledger: Ledger, tmp_path: Path
) -> None:
    start = _cfg()
    halted = _cfg(risk={"kill_switch": True})
    _gated(ledger, halted)
    _, parts, _, _ = _run(ledger, start, [_reload(str(_config_file(tmp_path, halted)))])
    risk = parts.engine.risk
    assert risk.killed and "reloaded config" in risk.kill_reason
    risk.reconfigure(start.risk)
    assert risk.killed  # a config without the switch does not resume trading
    risk.resume()
    assert not risk.killed


def test_run_promoted_needs_a_promoted_config(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    db = f"sqlite:///{tmp_path / 'ledger.db'}"
    for extra, line in (
        (
            [],
            "polylab: error: --promoted: no promoted config in the ledger "
            "(polylab configs promote ID)",
        ),
        (
            ["--config", "x.toml"],
            "polylab: error: --promoted and --config 'x.toml': give one of them",
        ),
    ):
        res = subprocess.run(
            [
                sys.executable,
                "-m",
                "polylab.cli",
                "run",
                "--promoted",
                "--database-url",
                db,
                *extra,
            ],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert res.returncode == 2 and res.stderr.strip() == line

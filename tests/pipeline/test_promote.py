"""Promotion on a real ledger (SQLite and PostgreSQL): gates block, promotion and rollback
keep the history and the JSON record, and the runner is told on the bus or on Redis."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest
import redis
from pipeline.promote_data import GATES, metrics, trading_config

from polylab.bus import InProcessBus
from polylab.bus.messages import CONTROL, ControlMessage, decode_message
from polylab.config import config_id
from polylab.pipeline.promote import (
    PromotionError,
    evaluate_candidate,
    promote,
    register_candidate,
    resolve_config_id,
    rollback,
)
from polylab.store.ledger import Ledger
from polylab.store.ledger_configs import PipelineRunRow

HASHES = {"recs/a.jsonl.zst": "a" * 64}


def _candidate(ledger: Ledger, edge: int, **kw: object) -> str:
    row = register_candidate(
        ledger, trading_config(edge), metrics=metrics(**kw), data_hashes=HASHES, git_sha="c0ffee"
    )
    return row.id


def test_register_stores_the_config_with_its_provenance(ledger: Ledger) -> None:
    cfg = trading_config(2_000)
    row = register_candidate(ledger, cfg, metrics=metrics(), data_hashes=HASHES, git_sha="c0ffee")
    assert row.id == config_id(cfg) and row.status == "candidate" and row.gates == {}
    stored = ledger.get_config(row.id)
    assert stored is not None and stored.body["sum_to_100"]["min_edge_micros"] == 2_000
    assert stored.data_hashes == HASHES and stored.git_sha == "c0ffee"
    assert stored.metrics["out_of_sample"]["pnl_at_payout_micros"] == 4_500_000


def test_a_failing_gate_blocks_promotion_with_its_message(ledger: Ledger, tmp_path: Path) -> None:
    cid = _candidate(ledger, 2_000, oos_pnl=-250_000)
    with pytest.raises(PromotionError, match="no gate results"):
        promote(ledger, cid, by="t", reason="r", json_dir=tmp_path / "configs")
    row = evaluate_candidate(ledger, cid[:10], GATES)
    assert row.status == "candidate"
    assert row.gates["oos_pnl"] == {
        "metric": "out_of_sample.pnl_at_payout_micros",
        "op": ">=",
        "limit": 0,
        "value": -250_000,
        "passed": False,
        "reason": "out_of_sample.pnl_at_payout_micros = -250000 is not >= 0",
    }
    assert row.gates["oos_trades"]["passed"] is True
    with pytest.raises(PromotionError) as exc:
        promote(ledger, cid, by="t", reason="r", json_dir=tmp_path / "configs")
    assert str(exc.value) == (
        f"config {cid[:12]} failed its gates: oos_pnl: "
        "out_of_sample.pnl_at_payout_micros = -250000 is not >= 0"
    )
    assert ledger.promoted_config() is None and ledger.promotion_history() == []
    assert not (tmp_path / "configs").exists()


def test_promote_then_rollback_keeps_history_and_json(ledger: Ledger, tmp_path: Path) -> None:
    a, b = _candidate(ledger, 1_000), _candidate(ledger, 9_000, oos_trades=3)
    for cid in (a, b):
        evaluate_candidate(ledger, cid, GATES)
    first = promote(ledger, a, by="alice", reason="first", json_dir=tmp_path)
    assert first.previous_id is None
    with pytest.raises(PromotionError, match="already the promoted config"):
        promote(ledger, a[:8], by="alice", reason="again", json_dir=tmp_path)
    second = promote(ledger, b[:8], by="bob", reason="tighter", json_dir=tmp_path)
    assert second.previous_id == a and ledger.promoted_config().id == b  # type: ignore[union-attr]
    rec = json.loads((tmp_path / f"{b}.json").read_text())
    assert rec["config_id"] == b and rec["status"] == "promoted"
    assert rec["body"]["clipper"]["min_edge_micros"] == 9_000
    assert rec["git_sha"] == "c0ffee" and rec["data_hashes"] == HASHES
    assert rec["in_sample"]["trades"] == 40 and rec["out_of_sample"]["trades"] == 3
    assert rec["paper"] == {"diff_pct": 2.5}
    assert set(rec["gates"]) == {"oos_trades", "oos_pnl", "oos_drawdown", "paper_vs_backtest"}
    assert rec["promotion"]["by"] == "bob" and rec["promotion"]["previous_id"] == a

    back = rollback(ledger, by="carol", reason="regressed", json_dir=tmp_path)
    assert (back.config_id, back.previous_id, back.action) == (a, b, "rollback")
    assert ledger.promoted_config().id == a  # type: ignore[union-attr]
    rec_a = json.loads((tmp_path / f"{a}.json").read_text())
    assert rec_a["promotion"]["action"] == "rollback"
    assert [h["action"] for h in rec_a["history"]] == ["rollback", "promote"]
    with pytest.raises(PromotionError, match="nothing to roll back to"):
        rollback(ledger, by="carol", reason="again", json_dir=tmp_path)


def test_re_registering_keeps_status_and_drops_stale_gates(ledger: Ledger, tmp_path: Path) -> None:
    cid = _candidate(ledger, 1_000)
    evaluate_candidate(ledger, cid, GATES)
    promote(ledger, cid, by="t", reason="r", json_dir=tmp_path / "configs")
    same = register_candidate(
        ledger, trading_config(1_000), metrics=metrics(), data_hashes=HASHES, git_sha="c0ffee"
    )
    assert same.status == "promoted" and same.gates  # same metrics: results still hold
    moved = register_candidate(
        ledger, trading_config(1_000), metrics=metrics(oos_pnl=1), data_hashes=HASHES
    )
    assert moved.status == "promoted" and moved.gates == {}


def test_latest_is_the_newest_ok_validate_run(ledger: Ledger) -> None:
    with pytest.raises(PromotionError, match="no successful validate"):
        resolve_config_id(ledger, "latest")
    a, b = _candidate(ledger, 1_000), _candidate(ledger, 2_000)
    now = time.time_ns()
    for i, (cid, status) in enumerate([(a, "ok"), (b, "failed")]):
        run = PipelineRunRow(
            id=f"r{i}",
            name="validate",
            status="running",
            started_ns=now + i,
            folder="f",
            git_sha="s",
            params={},
        )
        ledger.start_pipeline_run(run)
        ledger.finish_pipeline_run(run.id, status=status, config_ids=[cid])  # type: ignore[arg-type]
    assert resolve_config_id(ledger, "latest") == a
    assert resolve_config_id(ledger, b[:9]) == b


def test_promotion_notifies_the_runner_on_redis(
    ledger: Ledger, tmp_path: Path, redis_url: str, prefix: str
) -> None:
    cid = _candidate(ledger, 1_000)
    evaluate_candidate(ledger, cid, GATES)
    client = redis.Redis.from_url(redis_url)
    sub = client.pubsub()
    sub.subscribe(prefix + CONTROL)
    try:
        assert sub.get_message(timeout=2)["type"] == "subscribe"  # type: ignore[index]
        promote(
            ledger,
            cid,
            by="ops",
            reason="go",
            json_dir=tmp_path,
            redis_url=redis_url,
            bus_prefix=prefix,
        )
        m = sub.get_message(timeout=5)
    finally:
        sub.close()
        client.close()
    assert m is not None and m["type"] == "message"
    msg = decode_message(m["data"])
    assert isinstance(msg, ControlMessage)
    assert (msg.action, msg.by, msg.reason, msg.config_path) == ("reload_config", "ops", "go", "")


def test_promotion_notifies_through_a_given_bus(ledger: Ledger, tmp_path: Path) -> None:
    cid = _candidate(ledger, 1_000)
    evaluate_candidate(ledger, cid, GATES)

    async def main() -> ControlMessage:
        bus = InProcessBus()
        await bus.start()
        sub = await bus.subscribe(CONTROL)
        promote(ledger, cid, by="desk", reason="from the dashboard", bus=bus, json_dir=tmp_path)
        msg = await asyncio.wait_for(anext(aiter(sub)), 5)
        await bus.close()
        assert isinstance(msg, ControlMessage)
        return msg

    msg = asyncio.run(main())
    assert msg.action == "reload_config" and msg.by == "desk"

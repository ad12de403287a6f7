"""The validate pipeline's candidate in the ledger (SQLite and PostgreSQL): stored as a
candidate with its metrics and provenance; validating a config again that was promoted since
updates its metrics but neither demotes it nor drops its gate results."""

from __future__ import annotations

import msgspec

from polylab.config import PolylabConfig, config_id, load_config
from polylab.research.sweep_space import make_config
from polylab.research.validation import store_candidate
from polylab.store.ledger import Ledger


def test_store_candidate_then_revalidate_a_promoted_one(ledger: Ledger) -> None:
    cfg = make_config(load_config(env={}), "sum_to_100", {"min_edge_micros": 4_000})
    cid = config_id(cfg)
    metrics = {"out_of_sample": {"pnl_micros": 1_500_000, "trades": 4}, "degradation": 0.25}
    row = store_candidate(ledger, cfg, cid, metrics, {"rec.jsonl.zst": "ab" * 32})
    got = ledger.find_config(cid[:8])
    assert got == row and got.status == "candidate" and got.gates == {}
    assert got.metrics == metrics and got.data_hashes == {"rec.jsonl.zst": "ab" * 32}
    assert msgspec.convert(got.body, PolylabConfig) == cfg

    ledger.put_config(msgspec.structs.replace(got, gates={"oos_pnl": {"passed": True}}))
    ledger.promote_config(cid, by="test")
    again = store_candidate(ledger, cfg, cid, {"degradation": 0.5}, {"new.jsonl.zst": "cd" * 32})
    now = ledger.get_config(cid)
    assert now == again
    assert now is not None and now.status == "promoted" and now.promoted_ns is not None
    assert now.gates == {"oos_pnl": {"passed": True}} and now.metrics == {"degradation": 0.5}
    assert now.created_ns == got.created_ns

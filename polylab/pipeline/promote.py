"""Promotion with provenance: candidate → gates → promoted, and back by rollback.

A configuration enters the ledger as a *candidate* (``register_candidate``: its
``PolylabConfig`` body, id, git sha, the data hashes and the metrics it was judged on). The
gates (``pipeline.gates``) are evaluated on those metrics and stored with it
(``evaluate_candidate``). ``promote`` makes it the configuration the runner trades, and only
when every stored gate result passed; ``rollback`` restores the one promoted before. Both keep
the ledger's ``promotions`` history (``store.ledger_configs``) and write the promotion as JSON
(``runs/configs/<config_id>.json``: body, id, git sha, data hashes, in-sample / out-of-sample /
paper metrics, gate results, the promotion record and the config's promotion history), then
tell a running runner: a ``reload_config`` control message (``config_path`` "": the promoted
configuration) on ``poly:control``, through the bus given or the Redis at ``REDIS_URL``.
Without Redis a runner notices by polling the ledger (``runner.reload``).

These are the functions the pipeline notebook, ``polylab configs`` and the dashboard call.
"""

from __future__ import annotations

import getpass
import logging
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

from polylab.bus.messages import CONTROL, ControlMessage, encode_message
from polylab.config import PolylabConfig, build_strategies, config_id
from polylab.errors import ConfigError, PolylabError
from polylab.pipeline.gates import all_passed, evaluate, failures, load_gates
from polylab.pipeline.outputs import PipelineOutputs
from polylab.pipeline.outputs import git_sha as current_git_sha
from polylab.store.ledger_configs import PromotionRow
from polylab.store.ledger_rows import ConfigRow

if TYPE_CHECKING:
    from polylab.bus.base import Bus
    from polylab.store.ledger import Ledger

__all__ = [
    "DEFAULT_GATES",
    "DEFAULT_JSON_DIR",
    "PROMOTION_FILE",
    "PipelinePromotion",
    "PromotionError",
    "check_gated",
    "config_of",
    "default_operator",
    "evaluate_candidate",
    "notify_runner",
    "promote",
    "promote_pipeline",
    "promotion_record",
    "refusal_outputs",
    "register_candidate",
    "resolve_config_id",
    "rollback",
    "write_promotion_json",
]

log = logging.getLogger(__name__)

DEFAULT_GATES = Path("pipelines/gates.yaml")
"""The gates file the pipeline and ``polylab configs promote`` read by default."""

DEFAULT_JSON_DIR = Path("runs/configs")
"""Where each promotion is written as ``<config_id>.json``."""


PROMOTION_FILE = "promotion.json"
"""The promote pipeline's record inside its run folder (the same content as the JSON under
``runs/configs``)."""


class PromotionError(PolylabError, ValueError):
    """A promotion or rollback that must not happen (gates not passed, nothing to roll back
    to); the message is one line naming the config and why. The CLI exits 2 on it."""


def default_operator() -> str:
    """Who acts when nobody says: ``$USER`` (or the login name), else ``unknown``."""
    try:
        return os.environ.get("USER") or getpass.getuser() or "unknown"
    except (OSError, KeyError):
        return "unknown"


def config_of(row: ConfigRow) -> PolylabConfig:
    """The ``PolylabConfig`` a ledger row holds (its strategies checked buildable);
    ``ConfigError`` names the config when its body no longer reads (a field renamed since)."""
    try:
        cfg = msgspec.convert(row.body, PolylabConfig)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"config {row.id[:12]}: its stored body does not read: {exc}") from None
    build_strategies(cfg)  # a plugin that cannot load fails here, not in the runner
    return cfg


def register_candidate(
    ledger: Ledger,
    cfg: PolylabConfig,
    *,
    metrics: Mapping[str, Any],
    data_hashes: Mapping[str, str],
    git_sha: str | None = None,
) -> ConfigRow:
    """Store ``cfg`` as a candidate with its provenance (``git_sha`` defaults to this
    checkout's). Registering a config the ledger already holds keeps its status (a promoted
    config stays promoted) and replaces its provenance; its gate results are kept only when
    the metrics are unchanged (gates judge metrics)."""
    cid = config_id(cfg)
    body: dict[str, object] = msgspec.json.decode(msgspec.json.encode(cfg))  # as stored
    new_metrics = msgspec.json.decode(msgspec.json.encode(dict(metrics)))
    old = ledger.get_config(cid)
    row = ConfigRow(
        id=cid,
        body=body,
        git_sha=git_sha if git_sha is not None else current_git_sha(),
        data_hashes=dict(data_hashes),
        metrics=new_metrics,
        gates=old.gates if old is not None and old.metrics == new_metrics else {},
        created_ns=old.created_ns if old is not None else time.time_ns(),
        promoted_ns=old.promoted_ns if old is not None else None,
        status=old.status if old is not None else "candidate",
    )
    ledger.put_config(row)
    return row


def evaluate_candidate(ledger: Ledger, config_id: str, gates_path: str | Path) -> ConfigRow:
    """Evaluate the gates of ``gates_path`` on the config's stored metrics and store the
    results in its ``gates`` (status unchanged). ``config_id`` may be a unique prefix."""
    row = ledger.find_config(config_id)
    gates = load_gates(gates_path)
    results = evaluate(gates, dict(row.metrics))
    stored: dict[str, object] = {k: msgspec.to_builtins(v) for k, v in results.items()}
    out = msgspec.structs.replace(row, gates=stored)
    ledger.put_config(out)
    return out


def check_gated(row: ConfigRow) -> None:
    """``PromotionError`` unless the row has gate results and every one passed."""
    if not row.gates:
        raise PromotionError(
            f"config {row.id[:12]} has no gate results: evaluate its gates first "
            "(polylab configs promote --gates FILE)"
        )
    if not all_passed(row.gates):
        raise PromotionError(
            f"config {row.id[:12]} failed its gates: " + "; ".join(failures(row.gates))
        )


def promote(
    ledger: Ledger,
    config_id: str,
    *,
    by: str,
    reason: str,
    bus: Bus | None = None,
    json_dir: Path = DEFAULT_JSON_DIR,
    redis_url: str | None = None,
    bus_prefix: str = "",
) -> PromotionRow:
    """Make the config (id or unique prefix) the promoted one, when its stored gates all
    passed; record it (ledger, JSON) and notify the runner (``notify_runner``)."""
    row = ledger.find_config(config_id)
    if row.status == "promoted":
        raise PromotionError(f"config {row.id[:12]} is already the promoted config")
    check_gated(row)
    config_of(row)  # never promote a body the runner could not load
    rec = ledger.promote_config(row.id, by=by, reason=reason)
    write_promotion_json(ledger, row.id, json_dir)
    notify_runner(by=by, reason=reason, bus=bus, redis_url=redis_url, bus_prefix=bus_prefix)
    log.info("promoted config %s by %s: %s", row.id, by, reason)
    return rec


def rollback(
    ledger: Ledger,
    *,
    by: str,
    reason: str,
    bus: Bus | None = None,
    json_dir: Path = DEFAULT_JSON_DIR,
    redis_url: str | None = None,
    bus_prefix: str = "",
) -> PromotionRow:
    """Restore the config promoted before the current one (``PromotionError`` when there is
    none); record it (ledger, JSON of the restored config) and notify the runner."""
    from polylab.store.ledger_db import LedgerError

    try:
        rec = ledger.rollback_config(by=by, reason=reason)
    except LedgerError as exc:
        raise PromotionError(str(exc)) from None
    write_promotion_json(ledger, rec.config_id, json_dir)
    notify_runner(by=by, reason=reason, bus=bus, redis_url=redis_url, bus_prefix=bus_prefix)
    log.info("rolled back to config %s by %s: %s", rec.config_id, by, reason)
    return rec


def promotion_record(ledger: Ledger, config_id: str) -> dict[str, Any]:
    """What ``<config_id>.json`` holds: the config with its provenance, metrics (the
    in-sample, out-of-sample and paper blocks also on their own), gate results, its latest
    promotion record and its whole promotion history (newest first)."""
    row = ledger.get_config(config_id)
    if row is None:
        raise PromotionError(f"no config {config_id!r} in the ledger")
    history = [h for h in ledger.promotion_history(limit=10_000) if h.config_id == row.id]
    m = row.metrics
    return {
        "config_id": row.id,
        "status": row.status,
        "body": row.body,
        "git_sha": row.git_sha,
        "data_hashes": row.data_hashes,
        "created_ns": row.created_ns,
        "promoted_ns": row.promoted_ns,
        "in_sample": m.get("in_sample"),
        "out_of_sample": m.get("out_of_sample"),
        "paper": m.get("paper"),
        "metrics": m,
        "gates": row.gates,
        "promotion": msgspec.to_builtins(history[0]) if history else None,
        "history": msgspec.to_builtins(history),
    }


def write_promotion_json(ledger: Ledger, config_id: str, json_dir: str | Path) -> Path:
    """Write ``promotion_record`` to ``<json_dir>/<config_id>.json`` (atomically)."""
    out = Path(json_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{config_id}.json"
    tmp = path.with_suffix(".json.tmp")
    rec = promotion_record(ledger, config_id)
    tmp.write_bytes(msgspec.json.format(msgspec.json.encode(rec)))
    tmp.replace(path)
    return path


def notify_runner(
    *,
    by: str,
    reason: str,
    bus: Bus | None = None,
    redis_url: str | None = None,
    bus_prefix: str = "",
    config_path: str = "",
) -> str:
    """Send ``reload_config`` (``config_path`` "": the promoted config) on ``poly:control``:
    through ``bus`` when given (it only queues; the caller runs the bus), else by one Redis
    ``PUBLISH`` to ``redis_url`` (default ``REDIS_URL``; ``bus_prefix`` before the channel).
    Without either, nothing is sent: a runner on the in-process bus polls the ledger.
    Returns what was done, in words (for the CLI); an unreachable Redis is logged, not
    raised (the promotion is already recorded, and a restarted runner reads it)."""
    msg = ControlMessage(
        ts_ns=time.time_ns(),
        action="reload_config",
        by=by,
        reason=reason,
        config_path=config_path,
    )
    if bus is not None:
        bus.publish(CONTROL, msg)
        return "reload_config queued on the bus"
    url = redis_url if redis_url is not None else os.environ.get("REDIS_URL", "").strip()
    if not url:
        return "no Redis: a running runner picks it up from the ledger"
    import redis

    client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
    try:
        n = int(client.publish(bus_prefix + CONTROL, encode_message(msg)))
    except redis.RedisError as exc:
        log.error("could not notify the runner over Redis: %s", exc)
        return f"Redis unreachable ({type(exc).__name__}): restart the runner with --promoted"
    finally:
        client.close()
    return f"reload_config published on {bus_prefix + CONTROL} ({n} listening)"


def resolve_config_id(ledger: Ledger, ref: str) -> str:
    """``ref`` as a full config id: ``latest`` is the config of the newest ``ok`` validate
    pipeline run; anything else is an id or unique prefix (``LedgerError`` if unknown)."""
    if ref == "latest":
        for run in ledger.pipeline_runs(name="validate", limit=1_000):
            if run.status == "ok" and run.config_ids:
                return run.config_ids[0]
        raise PromotionError("config 'latest': no successful validate pipeline run in the ledger")
    return ledger.find_config(ref).id


class PipelinePromotion(msgspec.Struct, frozen=True, kw_only=True):
    """What the promote pipeline did: the ``config_id`` it judged, its ``gates`` results
    (name → result dict), whether it ``promoted`` it now (False: it already was the promoted
    config), the ledger's ``promotion`` record (None when nothing changed), the runner
    ``notice`` in words and the ``record`` file written in the run folder."""

    config_id: str
    gates: dict[str, Any]
    promoted: bool
    promotion: PromotionRow | None
    notice: str
    record: str


def promote_pipeline(
    ledger: Ledger,
    ref: str,
    gates_path: str | Path,
    *,
    by: str,
    reason: str,
    out_dir: str | Path,
    json_dir: Path = DEFAULT_JSON_DIR,
    redis_url: str | None = None,
    bus_prefix: str = "",
) -> PipelinePromotion:
    """``pipelines/30-promote.ipynb``: resolve ``ref`` (``latest`` or an id), evaluate the
    gates and store their results, promote when every one passed (``PromotionError``
    otherwise: the pipeline run fails), write ``promotion.json`` into ``out_dir``. A config
    that already is the promoted one is left as it is (its gates are still re-evaluated, and
    a failure still raises)."""
    cid = resolve_config_id(ledger, ref)
    row = evaluate_candidate(ledger, cid, gates_path)
    check_gated(row)
    rec: PromotionRow | None = None
    notice = "already the promoted config: nothing to do"
    if row.status != "promoted":
        rec = promote(
            ledger,
            cid,
            by=by,
            reason=reason,
            json_dir=json_dir,
            redis_url=redis_url,
            bus_prefix=bus_prefix,
        )
        notice = _notice_words(redis_url)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / PROMOTION_FILE
    path.write_bytes(msgspec.json.format(msgspec.json.encode(promotion_record(ledger, cid))))
    return PipelinePromotion(
        config_id=cid,
        gates=dict(row.gates),
        promoted=rec is not None,
        promotion=rec,
        notice=notice,
        record=str(path),
    )


def refusal_outputs(row: ConfigRow) -> PipelineOutputs:
    """``outputs.json`` of a promote pipeline run that refused ``row`` (its gates, as stored by
    ``promote_pipeline``, did not all pass): the run then fails, and its ``provenance.json``
    and ledger row still name what was refused: ``config_ids`` [the config's full id] and
    metrics ``{promoted: false, refused: id, gates_passed, gates, failed_gates: {name:
    reason}}`` (reason as ``gates.evaluate`` gives it: ``missing`` or the failed comparison,
    in the metric's unit)."""
    gates = dict(row.gates)
    failed = {
        str(name): (str(r.get("reason", "")) if isinstance(r, dict) else "") or "not passed"
        for name, r in gates.items()
        if not (isinstance(r, dict) and r.get("passed") is True)
    }
    return PipelineOutputs(
        metrics={
            "promoted": False,
            "refused": row.id,
            "gates_passed": len(gates) - len(failed),
            "gates": len(gates),
            "failed_gates": failed,
        },
        config_ids=[row.id],
        data_hashes=dict(row.data_hashes),
    )


def _notice_words(redis_url: str | None) -> str:
    url = redis_url if redis_url is not None else os.environ.get("REDIS_URL", "").strip()
    if url:
        return "reload_config sent on poly:control (Redis)"
    return "no Redis: a running runner picks it up from the ledger within its poll period"

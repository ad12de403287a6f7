"""The Redis outage of issue 11 §5, as figures: ``polylab run`` (paper, built-in simulator,
SQLite ledger) on a ``redis-server`` this bench owns, which is SIGKILLed in the middle of the
session and restarted ``--down`` seconds later (append-only file fsynced on every write, as in
production, so what Redis acknowledged survives the kill).

It prints:

* the outage: when, how long;
* messages published during the outage: stream messages (signals, trades, errors) whose
  ``ts_ns`` falls inside it (they were made while Redis was away and reached their stream after
  it came back), by stream; and pub/sub messages the runner dropped as ``redis_down`` (pub/sub
  is best effort by design, the streams are the lossless path);
* fills: in the ledger, in ``poly:stream:trades``, missing from the stream (**fills lost**),
  duplicated in the stream or in the ledger;
* the runner's bus counters (published, delivered, stream entries written, reconnects).

Verdicts (``bench/verdict.py``): fills lost = 0; every ledger fill once in the ledger and once
in the stream; signals lost = 0; at least one stream message made during the outage (else the
outage did not cover trading and proves nothing).

Usage: ``python bench/bench_outage.py [--seconds 20] [--down 5] [--kill-after 3]``.
Exit: 0 all targets met, 1 a target missed, 2 a set-up problem (one line).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from load_probes import SetupError, stream_messages, with_owned_redis
from verdict import Verdicts

from polylab.bus.messages import SIGNALS, STATE, STREAMS, TRADES, FillMessage, SignalMessage

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from owned_services import OwnedRedis

PY = sys.executable


def run(args: argparse.Namespace) -> int:
    return with_owned_redis("bench-outage", lambda server, tmp: _session(args, server, tmp))


def _session(args: argparse.Namespace, server: OwnedRedis, tmp: Path) -> int:
    unset = ("REDIS_URL", "DATABASE_URL", "SLACK_WEBHOOK_URL", "PORT")
    env = {k: v for k, v in os.environ.items() if k not in unset}
    env["REDIS_URL"] = server.url
    env["POLYLAB_HTTP_PORT"] = "0"
    client = server.client()
    sub = client.pubsub()
    sub.subscribe(STATE)
    proc = subprocess.Popen(
        [PY, "-m", "polylab.cli", "run", "--seconds", f"{args.seconds:g}", "--json"],
        cwd=tmp,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while (m := sub.get_message(timeout=1.0)) is None or m["type"] != "message":
            if time.monotonic() > deadline or proc.poll() is not None:
                raise SetupError("no poly:state from the runner within 60 s")
        sub.close()
        client.close()
        time.sleep(args.kill_after)
        down_ns = time.time_ns()
        server.kill()
        time.sleep(args.down)
        server.start()
        up_ns = time.time_ns()
        out, err = proc.communicate(timeout=args.seconds + 120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    if proc.returncode != 0:
        tail = err.strip().splitlines()[-1:] or ["(no output)"]
        raise SetupError(f"polylab run exited with code {proc.returncode}: {tail[0]}")
    summary: dict[str, Any] = json.loads(out)
    client = server.client()
    try:
        streams = {ch: stream_messages(client, key) for ch, key in STREAMS.items()}
    finally:
        client.close()
    return report(args, summary, streams, tmp / "runs" / "polylab.db", down_ns, up_ns)


def report(
    args: argparse.Namespace,
    summary: dict[str, Any],
    streams: dict[str, list[Any]],
    db: Path,
    down_ns: int,
    up_ns: int,
) -> int:
    """Print every figure, then the verdicts; the exit code."""
    v = Verdicts("bench_outage")
    eng = sa.create_engine(f"sqlite:///{db}")
    try:
        with eng.connect() as c:
            rows = c.execute(
                sa.text("SELECT intent_id, leg, unwind, order_id FROM fills WHERE run_id = :r"),
                {"r": str(summary["run_id"])},
            ).all()
    finally:
        eng.dispose()
    ledger = Counter(f"{i}/{leg}/{'u' if u else 'o'}/{o}" for i, leg, u, o in rows)
    fill_msgs = [m for m in streams[TRADES] if isinstance(m, FillMessage)]
    streamed = Counter(m.fill_id for m in fill_msgs)
    lost = sum(1 for fid in ledger if fid not in streamed)
    stream_dup = sum(n - 1 for n in streamed.values())
    ledger_dup = sum(n - 1 for n in ledger.values())
    unknown = sum(1 for fid in streamed if fid not in ledger)
    n_signals = sum(isinstance(m, SignalMessage) for m in streams[SIGNALS])
    lost_signals = max(0, int(summary["signals"]) - n_signals)
    during = {
        ch: sum(1 for m in msgs if down_ns <= getattr(m, "ts_ns", 0) < up_ns)
        for ch, msgs in streams.items()
    }
    bus = summary["bus"]
    dropped = bus.get("dropped", {})

    print(
        f"bench_outage: polylab run {args.seconds:g} s (paper, built-in simulator, SQLite "
        f"ledger) on a test-owned redis-server, SIGKILLed {args.kill_after:g} s after the first "
        f"state and restarted after {(up_ns - down_ns) / 1e9:.1f} s"
    )
    print(
        f"  messages published during the outage (made while Redis was down, in their stream "
        f"after it came back): {sum(during.values())} ("
        + ", ".join(f"{STREAMS[ch]} {n}" for ch, n in during.items())
        + f"); pub/sub messages dropped while down (best effort): {dropped.get('redis_down', 0)}"
    )
    print(
        f"  fills: ledger {sum(ledger.values())}, {STREAMS[TRADES]} {len(fill_msgs)}; "
        f"fills lost {lost}; duplicated in the stream {stream_dup}, in the ledger {ledger_dup}; "
        f"in the stream but not the ledger {unknown}"
    )
    print(
        f"  signals: published {summary['signals']}, in {STREAMS[SIGNALS]} {n_signals} "
        f"(lost {lost_signals})"
    )
    print(
        f"  runner bus: published {bus.get('published')}, delivered {bus.get('delivered')}, "
        f"stream entries written {bus.get('stream_written')}, retries found already written "
        f"{bus.get('duplicates')}, reconnects {bus.get('reconnects')}, dropped {dict(dropped)}"
    )
    v.at_most("fills lost", lost, 0)
    v.at_most(
        "fills duplicated (stream + ledger) or unknown to the ledger",
        stream_dup + ledger_dup + unknown,
        0,
    )
    v.at_least("fills in the ledger", sum(ledger.values()), 1, note="else nothing was tested")
    v.at_most("signals lost", lost_signals, 0)
    v.at_least("stream messages made during the outage", sum(during.values()), 1)
    return v.finish()


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else "")
    p.add_argument("--seconds", type=float, default=20.0, help="session length (s)")
    p.add_argument("--down", type=float, default=5.0, help="outage length (s)")
    p.add_argument(
        "--kill-after", type=float, default=3.0, help="kill Redis this long after the 1st state"
    )
    args = p.parse_args(argv)
    if args.down <= 0 or args.kill_after < 0 or args.seconds <= args.kill_after + args.down:
        p.error(
            f"need --down > 0, --kill-after ≥ 0 and --seconds > --kill-after + --down "
            f"(got {args.seconds:g}, {args.kill_after:g}, {args.down:g})"
        )
    return args


def main(argv: list[str]) -> int:
    args = parse(argv)
    try:
        return run(args)
    except (SetupError, RuntimeError) as exc:
        print(f"bench_outage: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

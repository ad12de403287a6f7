"""The kill switch of issue 13 §2, timed: ``polylab run`` (paper, built-in simulator, SQLite
ledger) on a ``redis-server`` this bench owns; once it trades, the bench presses the kill switch
on ``poly:control`` and resumes, ``--rounds`` times, as the dashboard does.

It prints, per press, in ms on this machine's clock:

* **halt**: the control's ``ts_ns`` (made just before it is published) to the ``ts_ns`` of the
  first ``poly:state`` with ``kill_switch`` on (the runner builds that state right after its
  risk gate is killed, so new intents are refused from then on: an upper bound);
* **seen**: the control's ``ts_ns`` to that state's arrival at this subscriber;
* **resume**: the same for ``resume`` (the state with ``kill_switch`` off).

And from ``poly:stream:signals``: intents approved while halted (created after a confirming
state and before the next resume was sent), which must be 0.

Verdicts (``bench/verdict.py``): halt p99 ≤ 100 ms, seen p99 ≤ 100 ms, resume p99 ≤ 100 ms,
approved while halted = 0, and at least one approved intent outside the halts (else the runner
was not trading and nothing was proved).

Usage: ``python bench/bench_kill_switch.py [--rounds 20] [--halt-s 1.0] [--trade-s 1.0]``.
Exit: 0 all targets met, 1 a target missed, 2 a set-up problem (one line).
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import redis
from load_probes import SetupError, pct, stream_messages, with_owned_redis
from verdict import Verdicts

from polylab.bus.messages import (
    CONTROL,
    SIGNALS,
    STATE,
    STREAMS,
    ControlMessage,
    SignalMessage,
    StateMessage,
    decode_message,
    encode_message,
)

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from owned_services import OwnedRedis

PY = sys.executable
TARGET_MS = 100.0


def run(args: argparse.Namespace) -> int:
    return with_owned_redis("bench-kill", lambda server, tmp: _session(args, server, tmp))


def _next_state(sub: redis.client.PubSub, proc: subprocess.Popen[str]) -> tuple[int, StateMessage]:
    """The next ``poly:state`` (receive ns, message); SetupError after 30 s without one."""
    end = time.monotonic() + 30
    while time.monotonic() < end:
        m = sub.get_message(timeout=1.0)
        if m is not None and m["type"] == "message":
            got = time.time_ns()
            s = decode_message(m["data"])
            if isinstance(s, StateMessage):
                return got, s
        if proc.poll() is not None:
            raise SetupError(f"polylab run exited with code {proc.returncode}")
    raise SetupError("no poly:state from the runner for 30 s")


def _press(
    client: redis.Redis,
    sub: redis.client.PubSub,
    proc: subprocess.Popen[str],
    action: str,
) -> tuple[int, StateMessage, int]:
    """Publish ``action``; wait for the state that confirms it. (control ts_ns, state, recv ns)"""
    while sub.get_message(timeout=0.0) is not None:  # states made before the press
        pass
    want = action == "kill_switch"
    sent = time.time_ns()
    msg = ControlMessage(ts_ns=sent, action=action, by="bench_kill_switch", reason="timing")  # type: ignore[arg-type]
    client.publish(CONTROL, encode_message(msg))
    while True:
        got, s = _next_state(sub, proc)
        if s.kill_switch == want and s.ts_ns >= sent:
            return sent, s, got


def _session(args: argparse.Namespace, server: OwnedRedis, tmp: Path) -> int:
    unset = ("REDIS_URL", "DATABASE_URL", "SLACK_WEBHOOK_URL", "PORT")
    env = {k: v for k, v in os.environ.items() if k not in unset}
    env["REDIS_URL"] = server.url
    env["POLYLAB_HTTP_PORT"] = "0"
    client = server.client()
    sub = client.pubsub()
    sub.subscribe(STATE)
    proc = subprocess.Popen(
        [PY, "-m", "polylab.cli", "run", "--json"],
        cwd=tmp,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    halts: list[tuple[int, int]] = []  # (confirming state ts_ns, resume sent ns)
    halt_ms, seen_ms, resume_ms = [], [], []
    try:
        _next_state(sub, proc)
        end = time.monotonic() + 60
        while not any(
            isinstance(m, SignalMessage) and m.decision == "approved"
            for m in stream_messages(client, STREAMS[SIGNALS])
        ):
            if time.monotonic() > end:
                raise SetupError("the runner approved no intent within 60 s of its first state")
            _next_state(sub, proc)
        for _ in range(args.rounds):
            sent, s, got = _press(client, sub, proc, "kill_switch")
            halt_ms.append((s.ts_ns - sent) / 1e6)
            seen_ms.append((got - sent) / 1e6)
            time.sleep(args.halt_s)
            rsent, rs, _ = _press(client, sub, proc, "resume")
            resume_ms.append((rs.ts_ns - rsent) / 1e6)
            halts.append((s.ts_ns, rsent))
            time.sleep(args.trade_s)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        sub.close()
    if proc.returncode != 0:
        tail = (err or "").strip().splitlines()[-1:] or ["(no output)"]
        raise SetupError(f"polylab run exited with code {proc.returncode}: {tail[0]}")
    signals = [m for m in stream_messages(client, STREAMS[SIGNALS]) if isinstance(m, SignalMessage)]
    client.close()
    approved = [m for m in signals if m.decision == "approved"]
    while_halted = [m for m in approved if any(a < m.created_ns < b for a, b in halts)]
    outside = len(approved) - len(while_halted)

    print(
        f"bench_kill_switch: polylab run (paper, built-in simulator, SQLite ledger) on a "
        f"test-owned redis-server; {args.rounds} kill switch presses, each held "
        f"{args.halt_s:g} s, then resumed for {args.trade_s:g} s"
    )
    for name, xs in (("halt", halt_ms), ("seen", seen_ms), ("resume", resume_ms)):
        print(
            f"  {name}: p50 {pct(xs, 0.5):.1f} ms, p99 {pct(xs, 0.99):.1f} ms, max {max(xs):.1f} ms"
        )
    print(
        f"  signals: {len(signals)}, approved {len(approved)} ({outside} outside the halts, "
        f"{len(while_halted)} while halted)"
    )
    v = Verdicts("bench_kill_switch")
    v.at_most(
        "kill switch: control sent → halted state made, p99", pct(halt_ms, 0.99), TARGET_MS, "ms"
    )
    v.at_most(
        "kill switch: control sent → state received, p99", pct(seen_ms, 0.99), TARGET_MS, "ms"
    )
    v.at_most("resume: control sent → state made, p99", pct(resume_ms, 0.99), TARGET_MS, "ms")
    v.at_most("intents approved while halted", len(while_halted), 0)
    v.at_least("intents approved outside the halts", outside, 1, note="else nothing was tested")
    return v.finish()


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else "")
    p.add_argument("--rounds", type=int, default=20, help="kill switch presses")
    p.add_argument("--halt-s", type=float, default=1.0, help="how long each halt lasts (s)")
    p.add_argument("--trade-s", type=float, default=1.0, help="trading between halts (s)")
    args = p.parse_args(argv)
    if args.rounds < 1 or args.halt_s < 0 or args.trade_s < 0:
        p.error(
            f"need --rounds ≥ 1, --halt-s ≥ 0 and --trade-s ≥ 0 "
            f"(got {args.rounds}, {args.halt_s:g}, {args.trade_s:g})"
        )
    return args


def main(argv: list[str]) -> int:
    args = parse(argv)
    try:
        return run(args)
    except SetupError as exc:
        print(f"bench_kill_switch: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

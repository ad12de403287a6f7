"""Tick-to-order latency on the local simulator at about 1,000 market messages per second.

The simulator (its own thread, real sockets) carries a three-outcome neg-risk event. A driver
places and cancels resting orders at ~1,000 actions/s; every 50th action posts a cheap YES ask
that makes the event's asks sum below $1, and the next one cancels it. polylab's market feed
→ books → SumTo100 → risk → an executor that signs every leg with real CLOB V2 signatures
(domain "2", coincurve) runs in this process. Measured per intent: frame received (``recv_ns``
of the frame that triggered it) → decision → risk → every leg signed and handed to the sender.
Also printed: frame received → engine done, for every frame, as the baseline of what the
engine costs when nothing is decided.

Target (performance.md): tick-to-order p99 ≤ 1 ms.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import statistics
import subprocess
import sys
import threading
import time

import msgspec
from verdict import Verdicts

from polylab.book.l2 import L2Book
from polylab.book.market_feed import MarketFeed, MarketFeedConfig
from polylab.book.registry import BookRegistry
from polylab.config import load_config
from polylab.domain import ExecutionResult, Intent, OrderReport
from polylab.engine import Engine
from polylab.execution.live import LiveConfig, LiveExecutor
from polylab.execution.signer import OrderSigner
from polylab.feed.discovery import GammaClient
from polylab.market import MarketCatalog
from polylab.risk.manager import RiskManager
from polylab.risk.portfolio import Portfolio
from polylab.sim.config import SimConfig
from polylab.sim.server import SimThread
from polylab.strategy.sum_to_100 import SumTo100

KEY = "0x" + "11" * 32
MAKER = "0x" + "22" * 20
SECONDS = float(__import__("os").environ.get("BENCH_SECONDS", "12"))
RATE = 1000.0


class SigningProbe:
    """An executor that signs every leg at submit time and records the latency; fills nothing.

    Legs are built as the live executor builds them (``LiveExecutor.sign_leg``): on the book's
    current tick, a FOK/FAK BUY sized in collateral on the current book."""

    name = "probe"

    def __init__(self, engine_now: list[Engine], catalog: MarketCatalog) -> None:
        self.signer = OrderSigner(KEY)
        self.live = LiveExecutor(LiveConfig(), catalog, self.signer, None)
        self.latencies_ns: list[int] = []
        self.decided_ns: list[int] = []
        self.engine_ref = engine_now
        self._done: list[ExecutionResult] = []

    def submit(self, intent_id: str, intent: Intent, now_ns: int) -> None:
        self.decided_ns.append(time.time_ns() - now_ns)
        for leg in intent.legs:
            self.live.sign_leg(leg)
        self.latencies_ns.append(time.time_ns() - now_ns)
        reps = tuple(
            OrderReport(
                intent_id=intent_id,
                leg=i,
                token_id=leg.token_id,
                side=leg.side,
                limit_price=leg.price,
                requested=leg.size,
                filled=0,
                cost=0,
                fee=0,
                avg_price=0,
                status="dry_run",
                sent_ns=now_ns,
                done_ns=now_ns,
            )
            for i, leg in enumerate(intent.legs)
        )
        self._done.append(
            ExecutionResult(intent_id=intent_id, intent=intent, reports=reps, complete=False)
        )

    def bind_books(self, books: dict[str, L2Book]) -> None:
        self.live.bind_books(books)

    def poll(self, now_ns: int, books: dict[str, L2Book]) -> list[ExecutionResult]:
        out, self._done = self._done, []
        return out

    def pending(self) -> int:
        return len(self._done)


def drive(
    sim: SimThread, pairs: list[tuple[str, str]], stop: threading.Event, counter: list[int]
) -> None:
    """Place/cancel at RATE actions per second from another thread (each a sim-loop call).

    Makers hold no shares, so a YES ask at p is posted as its mirror, a NO bid at 1 − p."""
    ex = sim.state.exchange
    yes = [y for y, _ in pairs]
    for y, no in pairs:
        sim.call(lambda t=no: ex.place(MAKER, t, "BUY", 64, 1_000 * 1_000_000))
        sim.call(lambda t=y: ex.place(MAKER, t, "BUY", 30, 1_000 * 1_000_000))
    n = 0
    cheap: str | None = None
    t0 = time.perf_counter()
    while not stop.is_set():
        n += 1
        tok = yes[n % len(yes)]
        if cheap is not None:
            oid = cheap
            sim.call(lambda o=oid: ex.cancel(MAKER, o))
            cheap = None
        elif n % 50 == 0:
            r = sim.call(lambda: ex.place(MAKER, pairs[0][1], "BUY", 80, 300 * 1_000_000))
            cheap = r.order_id
        else:
            price = 10 + n % 15
            r = sim.call(lambda t=tok, p=price: ex.place(MAKER, t, "BUY", p, 10 * 1_000_000))
            sim.call(lambda o=r.order_id: ex.cancel(MAKER, o))
        counter[0] = n
        delay = t0 + n / RATE - time.perf_counter()
        if delay > 0:
            time.sleep(delay)


def serve(port: int) -> None:
    """The simulator and its driver, in a process of their own (as the venue would be): the
    measured client does not share a GIL with them."""
    sim = SimThread(SimConfig(generator=False, seed=3), port=port).start()
    try:
        catalog = sim.state.exchange.markets
        neg = next(gr for gr in catalog.groups() if gr.kind == "negrisk")
        pairs = [catalog.markets[c].token_ids for c in neg.markets]
        print("ready", flush=True)
        sys.stdin.readline()  # "go"
        stop = threading.Event()
        counter = [0]
        th = threading.Thread(target=drive, args=(sim, pairs, stop, counter))
        th.start()
        time.sleep(SECONDS)
        stop.set()
        th.join()
        print(counter[0], flush=True)
        sys.stdin.readline()  # "stop"
    finally:
        sim.stop()


async def main() -> int:
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, __file__, "--serve", str(port)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdin is not None and proc.stdout is not None
    if proc.stdout.readline().strip() != "ready":
        raise SystemExit("simulator process failed to start")
    url = f"http://127.0.0.1:{port}"
    try:
        async with GammaClient(f"{url}/gamma") as g:
            catalog = (await g.discover()).catalog()
        reg = BookRegistry(catalog)
        neg = next(gr for gr in catalog.groups() if gr.kind == "negrisk")
        cfg = load_config(
            env={
                "RISK_MAX_POSITION": "100000",
                "RISK_MAX_SUBMITS_PER_S": "100000",
                "SUMTO100_MAX_SIZE": "50",
            }
        )
        portfolio = Portfolio(10**12)
        ref: list[Engine] = []
        probe = SigningProbe(ref, catalog)
        engine = Engine(
            registry=reg,
            strategies=[SumTo100(cfg.sum_to_100)],
            risk=RiskManager(cfg.risk, portfolio),
            executor=probe,
            portfolio=portfolio,
            config=msgspec.structs.replace(cfg.engine, cooldown_ms=0),
        )
        ref.append(engine)
        frame_ns: list[int] = []

        def on_event(recv_ns: int, ev: object) -> None:
            engine.on_applied(ev, recv_ns)
            frame_ns.append(time.time_ns() - recv_ns)

        ws = url.replace("http://", "ws://")
        feed = MarketFeed(
            MarketFeedConfig(url=f"{ws}/ws/market", stale_after_ms=0), reg, on_event=on_event
        )
        async with feed:
            await feed.subscribe([t for m in catalog.markets.values() for t in m.token_ids])
            await asyncio.sleep(1.0)
            frames0 = feed.counters.frames
            t0 = time.perf_counter()
            proc.stdin.write("go\n")
            proc.stdin.flush()
            actions = int(await asyncio.to_thread(proc.stdout.readline) or 0)
            elapsed = time.perf_counter() - t0
            frames = feed.counters.frames - frames0
            pairs = [catalog.markets[c].token_ids for c in neg.markets]
            if __import__("os").environ.get("BENCH_DEBUG"):
                print(engine.strategies[0].rejected, engine.stats)  # type: ignore[attr-defined]
                for y, _ in pairs:
                    b = reg.books[y]
                    print(y[:8], b.best_bid_micros(), b.best_ask_micros(), b.ask_levels()[:3])
    finally:
        with contextlib.suppress(OSError):
            proc.stdin.write("stop\n")
            proc.stdin.flush()
        proc.wait(timeout=30)
    lat = sorted(probe.latencies_ns)
    fr = sorted(frame_ns)

    def pct(xs: list[int], q: float) -> float:
        return xs[min(len(xs) - 1, int(q * len(xs)))] / 1000 if xs else float("nan")

    print(
        f"simulator (own process): {actions:,} actions in {elapsed:.1f} s, {frames / elapsed:,.0f} "
        f"market frames/s received"
    )
    print(
        f"  tick-to-order (frame received → {len(lat)} intents decided, risk-checked, "
        f"every leg signed):"
    )
    print(
        f"    p50 {pct(lat, 0.5):8.1f} µs   p99 {pct(lat, 0.99):8.1f} µs   max "
        f"{pct(lat, 1.0):8.1f} µs   (target p99 ≤ 1000 µs)"
    )
    dec = sorted(probe.decided_ns)
    print(
        f"    of which frame received → decided and risk-checked: p50 {pct(dec, 0.5):.1f} µs, "
        f"p99 {pct(dec, 0.99):.1f} µs (the rest is signing {len(neg.token_ids)} legs)"
    )
    print(f"  baseline: frame received → engine done, {len(fr):,} events:")
    print(f"    p50 {pct(fr, 0.5):8.1f} µs   p99 {pct(fr, 0.99):8.1f} µs")
    if lat:
        print(
            f"  ratio p50 tick-to-order / p50 frame-only: "
            f"{statistics.median(lat) / max(1, statistics.median(fr)):.1f}x"
        )
    v = Verdicts("bench_tick_to_order")
    v.at_most(
        "tick-to-order p99 (frame → signed orders), local simulator",
        pct(lat, 0.99),
        1000.0,
        "µs",
        note=f"{len(lat)} intents",
    )
    return v.finish()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--serve":
        serve(int(sys.argv[2]))
    else:
        sys.exit(asyncio.run(main()))

"""Market WebSocket client: throughput and send → callback latency, against a bare client.

A websockets server in a child process streams a synthetic venue-shaped market channel
(``polylab.book.synthetic``: mirrored binary books, neg-risk event, trades, best_bid_ask hints):
the initial ``book`` array, then single-object frames. Two clients run round-robin in this
process over loopback:

* polylab: ``MarketFeed`` (decode → ``BookRegistry`` → gap check → ``on_event`` callback);
* baseline: a bare ``websockets`` client that only ``json.loads`` each frame.

Figures: throughput (frames/s; the server writes pre-encoded frames straight to the socket, so the
client is the bottleneck) and latency p50/p99 (µs) at a
paced 1,000 msg/s, measured from the server's ``time.time_ns()`` written into each frame's
``timestamp`` just before the send, to the client callback. Printed with ratios polylab /
baseline. Bounded: about 30 s.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing as mp
import statistics
import sys
import time
from typing import Any

from verdict import Verdicts
from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection, serve

from polylab.book.market_feed import MarketFeed, MarketFeedConfig
from polylab.book.registry import BookRegistry
from polylab.book.synthetic import SyntheticConfig, generate
from polylab.feed.recording import decode_meta
from polylab.feed.wire import MarketEvent, stamp_ms

SYN = SyntheticConfig(seed=5, duration_s=25.0, rate_hz=1000.0, binary_markets=10)
ROUNDS = 3
THROUGHPUT_FRAMES = 20_000
PACED_RATE = 1_000
PACED_SECONDS = 3.0


def _stream() -> tuple[list[str], str, list[str]]:
    """(token ids, initial dump frame, later single-object frames)."""
    tokens: list[str] = []
    dump = ""
    later: list[str] = []
    for _, ch, payload in generate(SYN):
        if ch == "meta":
            tokens = [t for m in decode_meta(payload) for t in m.token_ids]
        elif not dump and payload.startswith("["):
            dump = payload
        elif not payload.startswith("["):
            later.append(payload)
    return tokens, dump, later


def _stamp_template(frame: str) -> tuple[str, str] | None:
    """Split a frame around its timestamp value so a send time can be written in."""
    key = '"timestamp":"'
    i = frame.find(key)
    if i < 0:
        return None
    j = frame.index('"', i + len(key))
    return frame[: i + len(key)], frame[j:]


# -- server (child process) ------------------------------------------------------------------
def _text_frame(text: str) -> bytes:
    """One unmasked server→client WebSocket text frame (RFC 6455 §5.2)."""
    data = text.encode()
    n = len(data)
    if n < 126:
        head = bytes((0x81, n))
    elif n < 65_536:
        head = bytes((0x81, 126)) + n.to_bytes(2, "big")
    else:
        head = bytes((0x81, 127)) + n.to_bytes(8, "big")
    return head + data


def _serve(port_out: Any) -> None:
    _, dump, later = _stream()
    templates = [t for t in map(_stamp_template, later) if t is not None]
    raw = [_text_frame(later[k % len(later)]) for k in range(THROUGHPUT_FRAMES)]

    async def handler(ws: ServerConnection) -> None:
        await ws.recv()  # the subscription
        path = ws.request.path if ws.request is not None else "/"
        listener = asyncio.create_task(_answer_pings(ws))
        try:
            await ws.send(dump)
            if path.startswith("/throughput"):
                # pre-encoded frames written straight to the socket: the server must not be
                # the bottleneck of a client-throughput figure
                for k in range(0, THROUGHPUT_FRAMES, 500):
                    ws.transport.write(b"".join(raw[k : min(k + 500, THROUGHPUT_FRAMES)]))
                    await asyncio.sleep(0)
            else:
                step = 1.0 / PACED_RATE
                loop = asyncio.get_running_loop()
                t0 = loop.time()
                for k in range(int(PACED_RATE * PACED_SECONDS)):
                    delay = t0 + k * step - loop.time()
                    if delay > 0:
                        await asyncio.sleep(delay)
                    pre, post = templates[k % len(templates)]
                    await ws.send(f"{pre}{time.time_ns()}{post}")
            await asyncio.sleep(5)
        finally:
            listener.cancel()

    async def main() -> None:
        async with serve(
            handler, "127.0.0.1", 0, compression=None, ping_interval=None, max_size=None
        ) as server:
            port_out.send(next(iter(server.sockets)).getsockname()[1])
            await asyncio.Future()

    asyncio.run(main())


async def _answer_pings(ws: ServerConnection) -> None:
    async for msg in ws:
        if msg == "PING":
            await ws.send("PONG")


# -- clients ---------------------------------------------------------------------------------
def _expected(url: str) -> int:
    """Frames the server sends on this URL (the dump included)."""
    return 1 + (
        THROUGHPUT_FRAMES if url.endswith("/throughput") else int(PACED_RATE * PACED_SECONDS)
    )


async def bare_client(url: str, latencies: list[int] | None) -> tuple[int, float]:
    """Baseline: json.loads every frame. Returns (frames, seconds from first to last)."""
    n = 0
    first = 0.0
    target = _expected(url)
    async with connect(
        url, compression=None, ping_interval=None, proxy=None, max_size=None, max_queue=None
    ) as ws:
        await ws.send(json.dumps({"assets_ids": [], "type": "market"}))
        while n < target:
            frame = await ws.recv()
            obj = json.loads(frame)
            if latencies is not None and isinstance(obj, dict):
                latencies.append(time.time_ns() - int(obj["timestamp"]))
            if n == 0:
                first = time.perf_counter()
            n += 1
    return n, time.perf_counter() - first


async def polylab_client(
    url: str, tokens: list[str], latencies: list[int] | None
) -> tuple[int, float, int]:
    """MarketFeed into a BookRegistry. Returns (frames, seconds, gaps detected)."""
    done = asyncio.Event()
    first = [0.0]
    target = _expected(url)

    def on_event(recv_ns: int, ev: MarketEvent) -> None:
        if first[0] == 0.0:
            first[0] = time.perf_counter()
        if latencies is not None:
            ts = getattr(ev, "timestamp", "")
            if ts and len(str(ts)) > 15:  # paced frames carry the send time in ns
                latencies.append(time.time_ns() - stamp_ms(ts))
        if feed.counters.frames >= target:
            done.set()

    cfg = MarketFeedConfig(url=url, stale_after_ms=0, ping_s=60.0)
    feed = MarketFeed(cfg, BookRegistry(), on_event=on_event)
    async with feed:
        await feed.subscribe(tokens)
        await asyncio.wait_for(done.wait(), 60)
        secs = time.perf_counter() - first[0]
    assert feed.counters.malformed == 0 and feed.counters.frames == target
    return feed.counters.frames, secs, feed.counters.gaps


def _pct(xs: list[int], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))] / 1000.0


async def bench(port: int, tokens: list[str]) -> None:
    base = f"ws://127.0.0.1:{port}"
    thr: dict[str, list[float]] = {"baseline": [], "polylab": []}
    lat: dict[str, list[int]] = {"baseline": [], "polylab": []}
    gaps = 0
    for _ in range(ROUNDS):
        n, s = await bare_client(f"{base}/throughput", None)
        thr["baseline"].append(n / s)
        n, s, g = await polylab_client(f"{base}/throughput", tokens, None)
        thr["polylab"].append(n / s)
        gaps += g
        await bare_client(f"{base}/paced", lat["baseline"])
        await polylab_client(f"{base}/paced", tokens, lat["polylab"])
    tb, tp = statistics.median(thr["baseline"]), statistics.median(thr["polylab"])
    print(
        f"market client over loopback, {ROUNDS} rounds round-robin, "
        f"{THROUGHPUT_FRAMES} frames/throughput run, {PACED_RATE} msg/s paced "
        f"for {PACED_SECONDS:.0f} s"
    )
    print(f"{'':28}{'baseline (json.loads)':>24}{'polylab MarketFeed':>22}{'ratio':>9}")
    print(f"{'throughput (frames/s)':28}{tb:>24,.0f}{tp:>22,.0f}{tp / tb:>9.2f}")
    for q, name in ((0.5, "p50"), (0.99, "p99")):
        b, p = _pct(lat["baseline"], q), _pct(lat["polylab"], q)
        print(f"{'latency ' + name + ' (µs, paced)':28}{b:>24,.0f}{p:>22,.0f}{p / b:>9.2f}")
    print(
        f"latency samples: baseline {len(lat['baseline'])}, polylab {len(lat['polylab'])}; "
        f"gaps flagged by polylab on a consistent stream: {gaps}"
    )


def main() -> int:
    tokens, _, _ = _stream()
    ctx = mp.get_context("spawn")
    rx, tx = ctx.Pipe(duplex=False)
    server = ctx.Process(target=_serve, args=(tx,), daemon=True)
    server.start()
    try:
        if not rx.poll(30):
            print("server did not start", file=sys.stderr)
            return 1
        port = rx.recv()
        asyncio.run(bench(port, tokens))
    finally:
        server.terminate()
        server.join(5)
    return Verdicts("bench_market_client").finish()  # performance.md sets no target here


if __name__ == "__main__":
    sys.exit(main())

"""Replay throughput: feed text → books → best bid/ask → complete-set sum check.

The paths run round-robin in this process over the same in-memory synthetic recording (JSON
lines as ``RecordingWriter`` writes them, frames inline; mirrored binary books, a neg-risk
event, trades, best_bid_ask hints):

* polylab: ``polylab.analysis.replay.replay`` (msgspec Structs decoded with their line in one
  pass, tick-array books, SumMonitor; compiled with mypyc after ``make setup``, see
  ``polylab.native``: the line printed says which build ran);
* baseline: a plain dict book (float prices) fed by stdlib ``json`` (line and frame in one
  ``json.loads``), best kept incrementally, YES+NO ask sum checked after each event;
* NautilusTrader (when installed, ``make bench`` installs it): its Rust ``OrderBook`` (L2_MBP)
  driven from Python with ``OrderBookDelta.from_raw`` deltas; each line decoded by msgspec
  (the frame as raw JSON, no string to un-escape), then its frame, the same check;
* polylab on the same frames stored as JSON strings (recordings made before frames were
  inline), for reference.

Prints level updates/s (best round and median), the ratios, and the verdict against the target
(performance.md): polylab ≥ 2× NautilusTrader ``from_raw`` on the same stream, best rounds
compared, with the median and spread of the ratio over paired rounds; exit code 1 when missed
or not measured.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import msgspec
from verdict import Verdicts

from polylab import native
from polylab.analysis.replay import replay
from polylab.book.synthetic import SyntheticConfig, generate
from polylab.feed.recording import Record, RecordingReader, encode_record
from polylab.money import parse_micros

ROUNDS = 7
"""Rounds per path, round-robin. On a shared machine other work only ever adds time, so the
verdict compares each path's best round (timeit's rule); medians and the spread of the ratio
over paired rounds are printed beside it."""


def make_stream() -> tuple[list[str], list[str], int]:
    """The stream as recording lines (frames inline, as ``RecordingWriter`` writes them) and
    in the older string-payload form, and its level-update count."""
    cfg = SyntheticConfig(seed=11, duration_s=40.0, rate_hz=2000.0, binary_markets=12)
    enc = msgspec.json.Encoder()
    frames = list(generate(cfg))
    lines = [encode_record(ch, p, at) for at, ch, p in frames]
    legacy = [enc.encode(Record(at, ch, p)).decode() for at, ch, p in frames]
    res, *_ = replay([Record(at, ch, p) for at, ch, p in frames], verify=True)
    assert res.mismatches == 0
    return lines, legacy, res.level_updates


def run_polylab(lines: list[str]) -> int:
    res, *_ = replay(RecordingReader.from_lines(lines), verify=False, monitor=True)
    return res.level_updates


def run_baseline(lines: list[str]) -> int:
    books: dict[str, tuple[dict[float, float], dict[float, float], list[float]]] = {}
    pair: dict[str, list[str]] = {}
    updates = 0
    below = 0

    def book(aid: str, market: str) -> tuple[dict[float, float], dict[float, float], list[float]]:
        b = books.get(aid)
        if b is None:
            b = books[aid] = ({}, {}, [0.0, 1.0])
            pair.setdefault(market, []).append(aid)
        return b

    def put(
        b: tuple[dict[float, float], dict[float, float], list[float]], side: str, p: float, s: float
    ) -> None:
        bids, asks, best = b
        if side == "BUY":
            if s:
                bids[p] = s
                if p > best[0]:
                    best[0] = p
            elif bids.pop(p, None) is not None and p == best[0]:
                best[0] = max(bids) if bids else 0.0
        else:
            if s:
                asks[p] = s
                if p < best[1]:
                    best[1] = p
            elif asks.pop(p, None) is not None and p == best[1]:
                best[1] = min(asks) if asks else 1.0

    for line in lines:
        rec = json.loads(line)
        if rec["channel"] != "market":
            continue
        data = rec["frame"] if "frame" in rec else json.loads(rec["payload"])
        for ev in data if isinstance(data, list) else [data]:
            et = ev["event_type"]
            if et == "price_change":
                market = ev["market"]
                for e in ev["price_changes"]:
                    put(book(e["asset_id"], market), e["side"], float(e["price"]), float(e["size"]))
                    updates += 1
            elif et == "book":
                market = ev["market"]
                b = book(ev["asset_id"], market)
                b[0].clear()
                b[1].clear()
                b[2][:] = [0.0, 1.0]
                for lv in ev["bids"]:
                    put(b, "BUY", float(lv["price"]), float(lv["size"]))
                for lv in ev["asks"]:
                    put(b, "SELL", float(lv["price"]), float(lv["size"]))
            else:
                continue
            toks = pair.get(market, ())
            if len(toks) == 2 and books[toks[0]][2][1] + books[toks[1]][2][1] < 1.0:
                below += 1
    return updates


class Line(msgspec.Struct, gc=False):
    """A recording line in either form (frame inline, or a string payload)."""

    recv_ns: int
    channel: str
    payload: str = ""
    frame: msgspec.Raw = msgspec.Raw()


class Lv(msgspec.Struct, gc=False):
    price: str
    size: str


class Ent(msgspec.Struct, gc=False):
    asset_id: str
    price: str
    size: str
    side: str


class Ev(msgspec.Struct, gc=False):
    """The fields the NautilusTrader path needs (as its Polymarket adapter decodes them)."""

    event_type: str
    market: str = ""
    asset_id: str = ""
    price_changes: list[Ent] = []
    bids: list[Lv] = []
    asks: list[Lv] = []


def nautilus_runner() -> Callable[[list[str]], int] | None:
    try:
        from nautilus_trader.model.book import OrderBook
        from nautilus_trader.model.data import OrderBookDelta
        from nautilus_trader.model.enums import BookAction, BookType, OrderSide
        from nautilus_trader.model.identifiers import InstrumentId
    except ImportError:
        return None

    rec_dec = msgspec.json.Decoder(Line)
    ev_dec = msgspec.json.Decoder(list[Ev] | Ev)
    scale = 10_000_000_000  # micros → NautilusTrader's 1e16 fixed scale
    from_raw = OrderBookDelta.from_raw
    upd, dele, buy, sell = BookAction.UPDATE, BookAction.DELETE, OrderSide.BUY, OrderSide.SELL

    def run(lines: list[str]) -> int:
        books: dict[str, Any] = {}
        ids: dict[str, Any] = {}
        pair: dict[str, list[str]] = {}
        updates = 0

        def book(aid: str, market: str) -> Any:
            b = books.get(aid)
            if b is None:
                ids[aid] = InstrumentId.from_str(f"T{len(ids)}.POLY")
                b = books[aid] = OrderBook(ids[aid], BookType.L2_MBP)
                pair.setdefault(market, []).append(aid)
            return b

        def delta(aid: str, side: str, price: str, size: str) -> Any:
            s = parse_micros(size)
            return from_raw(
                ids[aid],
                upd if s else dele,
                buy if side == "BUY" else sell,
                parse_micros(price) * scale,
                6,
                s * scale,
                6,
                0,
                0,
                0,
                0,
                0,
            )

        for line in lines:
            rec = rec_dec.decode(line)
            if rec.channel != "market":
                continue
            out = ev_dec.decode(rec.frame if rec.frame else rec.payload)
            for ev in out if isinstance(out, list) else [out]:
                if ev.event_type == "price_change":
                    market = ev.market
                    for e in ev.price_changes:
                        b = book(e.asset_id, market)
                        b.apply_delta(delta(e.asset_id, e.side, e.price, e.size))
                        updates += 1
                elif ev.event_type == "book":
                    market = ev.market
                    b = book(ev.asset_id, market)
                    b.clear(0, 0)
                    for lv in ev.bids:
                        b.apply_delta(delta(ev.asset_id, "BUY", lv.price, lv.size))
                    for lv in ev.asks:
                        b.apply_delta(delta(ev.asset_id, "SELL", lv.price, lv.size))
                else:
                    continue
                toks = pair.get(market, ())
                if len(toks) == 2:
                    a0 = books[toks[0]].best_ask_price()
                    a1 = books[toks[1]].best_ask_price()
                    if a0 is not None and a1 is not None:
                        _ = a0.raw + a1.raw < 1_000_000 * scale
        return updates

    return run


def main() -> int:
    lines, legacy, expected = make_stream()
    variants: dict[str, Callable[[list[str]], int]] = {
        "polylab": run_polylab,
        "baseline dict+json": run_baseline,
        "polylab, string payloads": lambda _: run_polylab(legacy),
    }
    nt = nautilus_runner()
    if nt is not None:
        variants["NautilusTrader from_raw"] = nt
    times: dict[str, list[float]] = {k: [] for k in variants}
    for _ in range(ROUNDS):
        for name, fn in variants.items():
            t0 = time.perf_counter()
            n = fn(lines)
            times[name].append(time.perf_counter() - t0)
            assert n == expected, (name, n, expected)
    best = {k: expected / min(v) for k, v in times.items()}
    med = {k: expected / statistics.median(v) for k, v in times.items()}
    print(f"stream: {len(lines):,} frames, {expected:,} level updates; {ROUNDS} rounds")
    print(f"polylab hot path: {native.status().line()}")
    print(f"  {'level updates/s':<26} {'best round':>12} {'median':>12}")
    for k in variants:
        print(f"  {k:<26} {best[k]:>12,.0f} {med[k]:>12,.0f}")
    base = "baseline dict+json"
    print(
        f"  ratio polylab / {base}: {best['polylab'] / best[base]:.2f}x best, "
        f"{med['polylab'] / med[base]:.2f}x median"
    )
    v = Verdicts("bench_replay")
    if nt is not None:
        peer = "NautilusTrader from_raw"
        per_round = sorted(b / a for a, b in zip(times["polylab"], times[peer], strict=True))
        ratio = best["polylab"] / best[peer]
        print(
            f"  ratio polylab / NautilusTrader:     {ratio:.2f}x best, "
            f"{med['polylab'] / med[peer]:.2f}x median"
        )
        v.at_least(
            "replay vs NautilusTrader from_raw (best rounds)",
            ratio,
            2.0,
            "x",
            note=(
                f"paired rounds: median {statistics.median(per_round):.2f}x, "
                f"spread {per_round[0]:.2f}-{per_round[-1]:.2f}x"
            ),
        )
    else:
        v.not_measured(
            "replay vs NautilusTrader from_raw", "target ≥ 2x", "NautilusTrader not installed"
        )
    return v.finish()


if __name__ == "__main__":
    sys.exit(main())

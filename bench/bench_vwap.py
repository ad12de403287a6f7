"""VWAP to buy 100 / 1,000 / 10,000 shares walking 1 / 2 / 27 ask levels, in µs per call.

Variants, round-robin in this process on the same book:

* polylab (cached ladder): ``vwap_buy`` between book changes (the common case: many sizes and
  strategies read one book state);
* polylab (after an update): a level changes first, so the ladder is rebuilt, then walked;
* baseline: a dict book walked with ``sorted()`` (the usual plain-Python code);
* NautilusTrader ``get_avg_px_for_quantity`` (Rust), when installed.

Targets (performance.md): ≤ 0.5 µs at 1 level, ≤ 2 µs at 27 levels.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable

from verdict import Verdicts

from polylab.analysis.vwap import vwap_buy, vwap_buy_with_fees
from polylab.book.l2 import L2Book
from polylab.fees import FeeModel
from polylab.money import MICROS, tick_size

SIZES = {1: 100, 2: 1_000, 27: 10_000}
LEVELS = [(30, 500)] + [(31, 700)] + [(32 + i, 352) for i in range(25)]  # (tick, shares)
QUICK = "--quick" in sys.argv  # a smoke run: fewer calls, one round (figures are noisier)
N = 2_000 if QUICK else 20_000
ROUNDS = 1 if QUICK else 5


def polylab_book() -> L2Book:
    b = L2Book("t", tick_size("0.01"))
    b.load([(20, 100 * MICROS)], [(t, s * MICROS) for t, s in LEVELS])
    return b


def baseline_book() -> dict[float, float]:
    return {t / 100: float(s) for t, s in LEVELS}


def baseline_vwap(asks: dict[float, float], size: float) -> tuple[float, float]:
    left, cost = size, 0.0
    for p in sorted(asks):
        take = min(left, asks[p])
        cost += take * p
        left -= take
        if left <= 0:
            break
    return cost / (size - left), left


def timeit(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    for _ in range(N):
        fn()
    return (time.perf_counter() - t0) / N * 1e6


def main() -> int:
    book = polylab_book()
    base = baseline_book()
    fees = FeeModel.from_rate("0.04")
    variants: dict[str, Callable[[int], Callable[[], object]]] = {
        "polylab (cached ladder)": lambda sh: lambda: vwap_buy(book, sh * MICROS),
        "polylab with fees": lambda sh: lambda: vwap_buy_with_fees(book, sh * MICROS, fees),
        "polylab (after an update)": lambda sh: (
            lambda: (book.set_ask(60, MICROS), vwap_buy(book, sh * MICROS))
        ),
        "baseline dict+sorted": lambda sh: lambda: baseline_vwap(base, float(sh)),
    }
    try:
        from nautilus_trader.model.book import OrderBook
        from nautilus_trader.model.data import BookOrder
        from nautilus_trader.model.enums import BookType, OrderSide
        from nautilus_trader.model.identifiers import InstrumentId
        from nautilus_trader.model.objects import Price, Quantity

        nt = OrderBook(InstrumentId.from_str("T.POLY"), BookType.L2_MBP)
        for i, (t, s) in enumerate(LEVELS):
            nt.add(BookOrder(OrderSide.SELL, Price(t / 100, 2), Quantity(s, 2), i + 1), 0, 0)
        qty = {sh: Quantity(sh, 2) for sh in SIZES.values()}
        variants["NautilusTrader get_avg_px"] = lambda sh: (
            lambda: nt.get_avg_px_for_quantity(qty[sh], OrderSide.BUY)
        )
    except ImportError:
        print("NautilusTrader not installed (make bench installs it)")
    for lv, sh in SIZES.items():
        v = vwap_buy(book, sh * MICROS)
        assert v.levels == lv and v.complete, (lv, v)
        avg, _ = baseline_vwap(base, float(sh))
        assert abs(float(v.avg_price) - avg) < 1e-9
    res: dict[str, dict[int, list[float]]] = {k: {lv: [] for lv in SIZES} for k in variants}
    for _ in range(ROUNDS):
        for name, make in variants.items():
            for lv, sh in SIZES.items():
                res[name][lv].append(timeit(make(sh)))
    print(f"VWAP µs per call (median of {ROUNDS} rounds × {N:,} calls)")
    print(
        f"  {'variant':<28}" + "".join(f"{f'{lv} lvl ({sh:,} sh)':>20}" for lv, sh in SIZES.items())
    )
    med = {k: {lv: statistics.median(x) for lv, x in v.items()} for k, v in res.items()}
    for name, row in med.items():
        print(f"  {name:<28}" + "".join(f"{row[lv]:>20.3f}" for lv in SIZES))
    ref = med["polylab (cached ladder)"]
    for name, row in med.items():
        if name.startswith("polylab (cached"):
            continue
        print(
            f"  ratio {name} / polylab cached: "
            + ", ".join(f"{lv} lvl {row[lv] / ref[lv]:.2f}x" for lv in SIZES)
        )
    v = Verdicts("bench_vwap")
    v.at_most("VWAP with shortfall, 1 level (100 sh)", ref[1], 0.5, "µs")
    v.at_most("VWAP with shortfall, 27 levels (10,000 sh)", ref[27], 2.0, "µs")
    return v.finish()


if __name__ == "__main__":
    sys.exit(main())

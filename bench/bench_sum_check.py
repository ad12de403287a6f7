"""Depth-aware sum check: price one complete set of 1,000 shares over 2 / 5 / 10 / 30 outcomes.

One "check" = every leg's VWAP through the depth plus its taker fee, summed against the $1
payout (``analysis.set_cost.quote_set``). Variants, round-robin in this process on the same
books:

* polylab check: ``quote_set`` on books unchanged since the last check (many readers, one
  state);
* polylab after an update: one leg's book changed first (the ``on_book`` case; the walk reads
  the tick arrays directly, so no ladder has to be rebuilt);
* polylab largest size: ``best_set``, the SumTo100 search (merged walk + exact check);
* baseline: dict books (price → size) walked with ``sorted()`` per leg, fees per level: the
  usual plain-Python code, exact integers like polylab.

Target (performance.md): ≤ 10 µs for 2 outcomes at 1,000 shares, linear in outcomes.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable

from verdict import Verdicts

from polylab.analysis.set_cost import GroupIndex, GroupLegs, best_set, quote_set
from polylab.book.l2 import L2Book
from polylab.fees import FeeModel
from polylab.market import Market, MarketCatalog
from polylab.money import MICROS, tick_size

OUTCOMES = (2, 5, 10, 30)
SIZE = 1_000 * MICROS
QUICK = "--quick" in sys.argv  # a smoke run: fewer calls, one round
N = 500 if QUICK else 5_000
ROUNDS = 1 if QUICK else 7
FEE = FeeModel.from_rate("0.04")


def ask_levels(k: int, n_outcomes: int) -> list[tuple[int, int]]:
    """20 levels from a top near 1/n; 1,000 shares take three of them (300 + 400 + 300)."""
    top = max(1, 100 // n_outcomes - 2 + k % 3)
    return [(top + i, (300 + 100 * i) * MICROS) for i in range(20) if top + i < 100]


def setup(n: int) -> tuple[GroupLegs, dict[str, L2Book], list[dict[int, int]], list[int]]:
    markets = [
        Market(condition_id=f"m{k}", token_ids=(f"y{k}", f"n{k}"), neg_risk=n > 2,
               event_id="ev" if n > 2 else "", fee=FEE)
        for k in range(n if n > 2 else 1)
    ]  # fmt: skip
    cat = MarketCatalog(markets)
    legs = next(
        g for g in GroupIndex(cat).groups if g.group.kind == ("negrisk" if n > 2 else "binary")
    )
    g = tick_size("0.01")
    books: dict[str, L2Book] = {}
    dicts: list[dict[int, int]] = []
    rates: list[int] = []
    for k, tok in enumerate(legs.tokens):
        lv = ask_levels(k, n)
        b = L2Book(tok, g)
        b.load([(1, MICROS)], lv)
        books[tok] = b
        dicts.append({t * g.micros: s for t, s in lv})
        rates.append(FEE.rate_micros)
    return legs, books, dicts, rates


def baseline_check(asks: list[dict[int, int]], rates: list[int], size: int) -> tuple[int, int]:
    """(cost, fees) micros: sorted walk of each dict book, fee per level, same rounding."""
    cost = fees = 0
    for book, r in zip(asks, rates, strict=True):
        left, notional, fee_num = size, 0, 0
        for p in sorted(book):
            take = min(left, book[p])
            notional += p * take
            fee_num += take * r * p * (MICROS - p)
            left -= take
            if left <= 0:
                break
        if left > 0:
            raise ValueError("book too thin")
        cost += -(-notional // MICROS)
        f = -(-fee_num // MICROS**3)
        fees += -(-f // 10) * 10
    return cost, fees


def timeit(fn: Callable[[], object], n: int = N) -> float:
    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - t0) / n * 1e6


def main() -> int:
    cases = {n: setup(n) for n in OUTCOMES}
    for _n, (legs, books, dicts, rates) in cases.items():
        q = quote_set(legs, books, "buy", SIZE)
        assert q is not None and (q.cost, q.fees) == baseline_check(dicts, rates, SIZE), _n

    def variants(n: int) -> dict[str, Callable[[], object]]:
        legs, books, dicts, rates = cases[n]
        b0 = books[legs.tokens[0]]
        t = b0.best_ask + 5
        s = b0.asks[t]
        return {
            "polylab check": lambda: quote_set(legs, books, "buy", SIZE),
            "polylab after an update": lambda: (
                b0.set_ask(t, s),
                quote_set(legs, books, "buy", SIZE),
            ),
            "polylab largest size": lambda: best_set(legs, books, "buy", min_edge_micros=0),
            "baseline dict+sorted": lambda: baseline_check(dicts, rates, SIZE),
        }

    names = list(variants(2))
    res: dict[str, dict[int, list[float]]] = {k: {n: [] for n in OUTCOMES} for k in names}
    for _ in range(ROUNDS):
        for n in OUTCOMES:
            for name, fn in variants(n).items():
                res[name][n].append(timeit(fn, max(500, N * 2 // n)))
    med = {k: {n: statistics.median(x) for n, x in v.items()} for k, v in res.items()}
    print(f"Set check at 1,000 shares, µs per check (median of {ROUNDS} rounds)")
    print(f"  {'variant':<28}" + "".join(f"{f'{n} outcomes':>14}" for n in OUTCOMES))
    for name, row in med.items():
        print(f"  {name:<28}" + "".join(f"{row[n]:>14.2f}" for n in OUTCOMES))
    ref = med["polylab check"]
    print(f"  {'µs per outcome (check)':<28}" + "".join(f"{ref[n] / n:>14.2f}" for n in OUTCOMES))
    for name in names[1:-1]:
        row = med[name]
        print(
            f"  ratio {name} / polylab check: "
            + ", ".join(f"{n}: {row[n] / ref[n]:.2f}x" for n in OUTCOMES)
        )
    base = med["baseline dict+sorted"]
    print(
        "  speed-up vs baseline (check): "
        + ", ".join(f"{n}: {base[n] / ref[n]:.2f}x" for n in OUTCOMES)
    )
    upd = med["polylab after an update"]
    print(
        "  speed-up vs baseline (after an update): "
        + ", ".join(f"{n}: {base[n] / upd[n]:.2f}x" for n in OUTCOMES)
    )
    print(
        f"  target: 2 outcomes {ref[2]:.2f} µs, {upd[2]:.2f} µs after an update (≤ 10); "
        f"30/2 outcomes = {ref[30] / ref[2]:.1f}x for 15x the legs (linear ≤ 15x)"
    )
    v = Verdicts("bench_sum_check")
    v.at_most("2-outcome set check at 1,000 sh", ref[2], 10.0, "µs")
    v.at_most("2-outcome set check after an update", upd[2], 10.0, "µs")
    v.at_most("30 vs 2 outcomes (15x the legs: linear)", ref[30] / ref[2], 15.0, "x")
    return v.finish()


if __name__ == "__main__":
    sys.exit(main())

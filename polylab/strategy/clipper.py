"""Clipper: complete-set arbitrage on the best asks only, the fastest check polylab has.

Where ``SumTo100`` walks the depth for the most profitable size, the Clipper reads one level
per leg: when the marginal set at the best asks (Σ best ask + each leg's fee at its best ask +
the fallback) earns ≥ ``min_edge`` per set (``analysis.set_cost.marginal_clears``, the rule
``best_set`` applies level by level), it buys the size every leg offers at its best ask (the
smallest top-of-book size, capped at ``max_size`` and the risk headroom, on the 0.01-share
grid), one BUY FOK leg per outcome at that leg's best ask. Every set of that size is bought at
the same prices, so the marginal set is the average set: the rule is exact, not the rounded
total (fees rounded up per leg) divided by the size. No ladder is built and nothing deeper is
read, so it reacts first to a transient stale leg, at the cost of leaving deeper liquidity to
others.

Fees as in ``analysis.set_cost``: each leg's market schedule at its best ask, and the flat
fallback ``fee_rate_micros`` per set for legs whose market publishes none. Units: prices are
price micros, sizes share micros, cash micros, times ms/ns as named.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated

import msgspec

from polylab.analysis.set_cost import (
    DEFAULT_FALLBACK_FEE_MICROS,
    SIZE_STEP_MICROS,
    GroupLegs,
    fallback_fee,
    marginal_clears,
)
from polylab.domain import Intent, Leg, OrderType, PriceMicros, Side, SizeMicros
from polylab.money import MICROS, cost_micros
from polylab.strategy.base import Context, budget_of
from polylab.strategy.params import config_from_env, config_from_mapping, setting, tunable
from polylab.strategy.sum_to_100 import SetArbitrage

__all__ = ["Clipper", "ClipperConfig"]

_GE0 = msgspec.Meta(ge=0)
_GT0 = msgspec.Meta(gt=0)
_S = MICROS  # one share, in share micros


class ClipperConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Clipper settings (environment names in brackets).

    * ``enabled`` [CLIPPER_ENABLED]: False evaluates nothing.
    * ``min_edge_micros`` [CLIPPER_MIN_EDGE, dollars per set]: least profit per set after fees,
      micros per set.
    * ``min_size_micros`` [CLIPPER_MIN_SIZE, shares]: least top-of-book size worth taking on
      every leg (share micros; the venue's minimum order size applies too).
    * ``max_size_micros`` [CLIPPER_MAX_SIZE, shares]: most sets per intent (share micros).
    * ``fee_rate_micros`` [CLIPPER_FEE_RATE, fraction of the $1 payout]: flat fee per set for
      legs whose market publishes no schedule (micros per set).
    * ``max_book_age_ms`` [CLIPPER_MAX_BOOK_AGE_MS]: staler leg books block the set (ms).
    * ``paper_trading`` [CLIPPER_PAPER_TRADING]: read by the runner; the strategy never submits.
    """

    enabled: Annotated[bool, setting(env="CLIPPER_ENABLED", unit="bool")] = True
    min_edge_micros: Annotated[
        int, _GE0, tunable(0, 50_000, 1_000, env="CLIPPER_MIN_EDGE", unit="dollars")
    ] = 3_000
    min_size_micros: Annotated[
        int, _GE0, tunable(5 * _S, 200 * _S, 5 * _S, env="CLIPPER_MIN_SIZE", unit="shares")
    ] = 5 * _S
    max_size_micros: Annotated[
        int, _GT0, tunable(10 * _S, 5_000 * _S, 10 * _S, env="CLIPPER_MAX_SIZE", unit="shares")
    ] = 200 * _S
    fee_rate_micros: Annotated[
        int, msgspec.Meta(ge=0, le=MICROS), setting(env="CLIPPER_FEE_RATE", unit="fraction")
    ] = DEFAULT_FALLBACK_FEE_MICROS
    max_book_age_ms: Annotated[
        int, _GT0, tunable(500, 60_000, 500, env="CLIPPER_MAX_BOOK_AGE_MS", unit="ms")
    ] = 30_000
    paper_trading: Annotated[bool, setting(env="CLIPPER_PAPER_TRADING", unit="bool")] = True

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ClipperConfig:
        """From ``CLIPPER_*`` variables (``os.environ`` by default); ``ConfigError`` if bad."""
        return config_from_env(cls, "CLIPPER_", environ)

    @classmethod
    def from_mapping(cls, values: Mapping[str, object]) -> ClipperConfig:
        """From field names and/or ``CLIPPER_*`` names; ``ConfigError`` if bad."""
        return config_from_mapping(cls, values)


class Clipper(SetArbitrage):
    """Top-of-book complete-set arbitrage (see the module docstring)."""

    def __init__(self, config: ClipperConfig | None = None, *, name: str = "clipper") -> None:
        super().__init__()
        self.name = name
        self.config = config if config is not None else ClipperConfig()
        self.enabled = self.config.enabled
        self.max_book_age_ms = self.config.max_book_age_ms

    def evaluate(self, ctx: Context, legs: GroupLegs) -> Intent | None:
        """A BUY-all intent at the best asks when they sum below $1 after fees, or None."""
        cfg = self.config
        books = ctx.books
        self.checks += 1
        total = 0
        size = cfg.max_size_micros
        prices: list[int] = []
        for t in legs.tokens:
            b = books.get(t)
            if b is None:
                self._reject("missing_book")
                return None
            a = b.best_ask
            if a > b.n:
                return None  # no asks: no set
            p = a * b.tick.micros
            total += p
            prices.append(p)
            top = b.asks[a]
            if top < size:
                size = top
        if total + cfg.min_edge_micros >= MICROS:
            return None
        now = ctx.now_ns()
        key = self._usable(ctx, legs, now)
        if key is None:
            return None
        room = budget_of(ctx, legs.group.id, legs.tokens)
        if room is not None and total * size > room * MICROS:
            size = room * MICROS // total
        size -= size % SIZE_STEP_MICROS
        if size < cfg.min_size_micros or size < legs.min_order or size <= 0:
            self._reject("thin")
            return None
        if not marginal_clears(legs, prices, True, cfg.min_edge_micros, cfg.fee_rate_micros):
            self._reject("no_edge")  # the set at the top earns < min_edge after fees
            return None
        cost = fees = 0
        for p, fm in zip(prices, legs.fees, strict=True):
            cost += cost_micros(p, size, round_up=True)
            if fm is not None:
                fees += fm.fee(size, p)
        fees += fallback_fee(size, legs, cfg.fee_rate_micros)
        edge = size - cost - fees
        if edge <= 0:
            self._reject("no_edge")
            return None
        out = tuple(
            Leg(
                token_id=t,
                side=Side.BUY,
                price=PriceMicros(p),
                size=SizeMicros(size),
                order_type=OrderType.FOK,
            )
            for t, p in zip(legs.tokens, prices, strict=True)
        )
        return self._emit(legs, key, out, (cost, fees, edge), now)

"""SumTo100: buy one of every outcome through the depth when the whole set costs under $1.

A complete set (both tokens of a binary market, or the YES token of every market of a neg-risk
event) pays exactly $1. When the legs' asks, walked through the depth and with taker fees,
add up to less than $1 minus ``min_edge`` per set, buying ``size`` sets locks in the rest.
SumTo100 buys the size that **earns the most** (``analysis.set_cost.best_set``): depth is added
while the marginal set, every leg's next share at its level plus that level's fee, still earns
``min_edge``; a deeper level that would lose money is left alone even when the average would
absorb it. The size fits ``max_size`` and the risk gate's headroom (``budget_of``), must reach
``min_liquidity`` shares on every leg, books must be fresh and uncrossed, and the result is one
``kind="set"`` intent: a BUY FOK leg per outcome at that leg's worst price, ``edge`` = expected
profit after fees.

Binary pairs are mirrored by the venue, so an edge there is a transient stale leg; neg-risk
events can be mispriced for longer (structural). Both go through the same code.

Configuration: ``SumTo100Config`` fields hold exact units (micros, ms); the environment speaks
the spec's words (``SUMTO100_MIN_EDGE=0.003`` dollars per set, ``SUMTO100_MIN_LIQUIDITY=50``
shares, ``SUMTO100_FEE_RATE=0.01`` of the $1 payout) and ``from_env`` converts. Tunable fields
carry their sweep range (``tunable``; read with ``sweep_ranges``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Annotated

import msgspec

from polylab.analysis.set_cost import (
    DEFAULT_FALLBACK_FEE_MICROS,
    SIZE_STEP_MICROS,
    GroupIndex,
    GroupLegs,
    best_set,
    limit_cost,
    no_edge_at_top,
)
from polylab.domain import CashMicros, Game, Intent, Leg, OrderType, PriceMicros, Side, SizeMicros
from polylab.market import MarketCatalog
from polylab.money import MICROS, cash_to_str, size_to_str
from polylab.strategy.base import Context, budget_of
from polylab.strategy.params import config_from_env, config_from_mapping, setting, tunable

__all__ = ["SetArbitrage", "SumTo100", "SumTo100Config"]

_GE0 = msgspec.Meta(ge=0)
_GT0 = msgspec.Meta(gt=0)
_S = MICROS  # one share, in share micros


class SumTo100Config(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """SumTo100 settings (environment names in brackets).

    * ``enabled`` [SUMTO100_ENABLED]: False evaluates nothing and returns no intent.
    * ``min_edge_micros`` [SUMTO100_MIN_EDGE, dollars per set]: least profit per set after fees,
      micros per set (0.003 $ → 3_000).
    * ``min_liquidity_micros`` [SUMTO100_MIN_LIQUIDITY, shares]: least size worth trading: every
      leg must offer at least this many shares at prices that keep the edge (share micros).
    * ``fee_rate_micros`` [SUMTO100_FEE_RATE, fraction of the $1 payout]: flat fee per set used
      only for legs whose market publishes no fee schedule (0.01 → 10_000 micros per set).
    * ``paper_trading`` [SUMTO100_PAPER_TRADING]: read by the runner (paper executor when True;
      safe by default); the strategy itself never submits.
    * ``max_book_age_ms`` [SUMTO100_MAX_BOOK_AGE_MS]: a leg whose book last changed longer ago
      than this is stale and blocks the set (ms).
    * ``max_size_micros`` [SUMTO100_MAX_SIZE, shares]: most sets per intent (share micros).
    """

    enabled: Annotated[bool, setting(env="SUMTO100_ENABLED", unit="bool")] = True
    min_edge_micros: Annotated[
        int, _GE0, tunable(0, 50_000, 1_000, env="SUMTO100_MIN_EDGE", unit="dollars")
    ] = 3_000
    min_liquidity_micros: Annotated[
        int,
        _GE0,
        tunable(5 * _S, 500 * _S, 5 * _S, env="SUMTO100_MIN_LIQUIDITY", unit="shares"),
    ] = 50 * _S
    fee_rate_micros: Annotated[
        int, msgspec.Meta(ge=0, le=MICROS), setting(env="SUMTO100_FEE_RATE", unit="fraction")
    ] = DEFAULT_FALLBACK_FEE_MICROS
    paper_trading: Annotated[bool, setting(env="SUMTO100_PAPER_TRADING", unit="bool")] = True
    max_book_age_ms: Annotated[
        int, _GT0, tunable(500, 60_000, 500, env="SUMTO100_MAX_BOOK_AGE_MS", unit="ms")
    ] = 30_000
    max_size_micros: Annotated[
        int, _GT0, tunable(10 * _S, 10_000 * _S, 10 * _S, env="SUMTO100_MAX_SIZE", unit="shares")
    ] = 1_000 * _S

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> SumTo100Config:
        """From ``SUMTO100_*`` variables (``os.environ`` by default); ``ConfigError`` if bad."""
        return config_from_env(cls, "SUMTO100_", environ)

    @classmethod
    def from_mapping(cls, values: Mapping[str, object]) -> SumTo100Config:
        """From field names and/or ``SUMTO100_*`` names; ``ConfigError`` if bad."""
        return config_from_mapping(cls, values)


class SetArbitrage:
    """Shared machinery of the complete-set strategies: group lookup by token, freshness and
    crossed-book checks, one intent per book state, rejection counters (``rejected``)."""

    name: str
    enabled: bool
    max_book_age_ms: int

    def __init__(self) -> None:
        self._index: GroupIndex | None = None
        self._catalog: MarketCatalog | None = None
        self._last: dict[str, tuple[int, ...]] = {}
        self.checks = 0
        self.intents = 0
        self.rejected: dict[str, int] = {}

    def _groups(self, ctx: Context) -> GroupIndex:
        cat = ctx.catalog
        if self._index is None or self._catalog is not cat:
            self._index, self._catalog = GroupIndex(cat), cat
        else:
            self._index.sync()
        return self._index

    def _reject(self, reason: str) -> None:
        self.rejected[reason] = self.rejected.get(reason, 0) + 1

    def on_book(self, ctx: Context, token_id: str) -> list[Intent]:
        """Evaluate every group containing ``token_id``."""
        if not self.enabled:
            return []
        return self._run(ctx, self._groups(ctx).by_token.get(token_id, ()))

    def on_timer(self, ctx: Context) -> list[Intent]:
        """Evaluate every group (an unchanged book state never yields a second intent)."""
        if not self.enabled:
            return []
        return self._run(ctx, self._groups(ctx).groups)

    def on_games(self, ctx: Context, games: list[Game]) -> list[Intent]:
        """Scoreboards do not matter here."""
        return []

    def _run(self, ctx: Context, groups: Iterable[GroupLegs]) -> list[Intent]:
        out: list[Intent] = []
        for legs in groups:
            it = self.evaluate(ctx, legs)
            if it is not None:
                out.append(it)
        return out

    def _usable(self, ctx: Context, legs: GroupLegs, now: int) -> tuple[int, ...] | None:
        """The legs' book stamps when every book is fresh, uncrossed and not already acted on."""
        books = ctx.books
        max_age = self.max_book_age_ms * 1_000_000
        stamps = []
        for t in legs.tokens:
            b = books[t]
            if b.is_stale(now, max_age):
                self._reject("stale")
                return None
            if b.crossed():
                self._reject("crossed")
                return None
            stamps.append(b.updated_ns)
        key = tuple(stamps)
        if self._last.get(legs.group.id) == key:
            self._reject("repeat")
            return None
        return key

    def _emit(
        self,
        legs: GroupLegs,
        key: tuple[int, ...],
        legs_out: tuple[Leg, ...],
        amounts: tuple[int, int, int],
        now: int,
    ) -> Intent:
        """Record and build the intent; ``amounts`` = (cost, fees, edge), micros."""
        self._last[legs.group.id] = key
        self.intents += 1
        size = legs_out[0].size
        cost, fees, edge = amounts
        return Intent(
            strategy=self.name,
            group_id=legs.group.id,
            kind="set",
            legs=legs_out,
            edge=CashMicros(edge),
            created_ns=now,
            reason=(
                f"{legs.label} {legs.group.kind} set ×{size_to_str(size)}: cost "
                f"{cash_to_str(cost)} + fees {cash_to_str(fees)} vs payout {cash_to_str(size)}"
            ),
        )

    def evaluate(self, ctx: Context, legs: GroupLegs) -> Intent | None:
        """The intent for one group now, or None (subclasses)."""
        raise NotImplementedError


class SumTo100(SetArbitrage):
    """Depth-aware complete-set arbitrage over binary pairs and neg-risk events."""

    def __init__(self, config: SumTo100Config | None = None, *, name: str = "sum_to_100") -> None:
        super().__init__()
        self.name = name
        self.config = config if config is not None else SumTo100Config()
        self.enabled = self.config.enabled
        self.max_book_age_ms = self.config.max_book_age_ms

    def evaluate(self, ctx: Context, legs: GroupLegs) -> Intent | None:
        """The most profitable set of ``legs`` (marginal rule) as a BUY-all intent, or None."""
        cfg = self.config
        books = ctx.books
        self.checks += 1
        if any(t not in books for t in legs.tokens):
            self._reject("missing_book")
            return None
        if no_edge_at_top(legs, books, True, cfg.min_edge_micros):
            return None
        now = ctx.now_ns()
        key = self._usable(ctx, legs, now)
        if key is None:
            return None
        q = best_set(
            legs,
            books,
            "buy",
            min_edge_micros=cfg.min_edge_micros,
            cap_micros=cfg.max_size_micros,
            fallback_fee_micros=cfg.fee_rate_micros,
            step=SIZE_STEP_MICROS,
        )
        if q is None:
            self._reject("no_edge")
            return None
        room = budget_of(ctx, legs.group.id, legs.tokens)
        if room is not None and limit_cost(q) > room:
            # the same walk, stopped where the limit cash would pass the headroom
            q = best_set(
                legs,
                books,
                "buy",
                min_edge_micros=cfg.min_edge_micros,
                cap_micros=cfg.max_size_micros,
                budget_micros=room,
                fallback_fee_micros=cfg.fee_rate_micros,
                step=SIZE_STEP_MICROS,
            )
            if q is None:
                self._reject("budget")
                return None
        if q.size < cfg.min_liquidity_micros or q.size < legs.min_order:
            self._reject("thin")
            return None
        out = tuple(
            Leg(
                token_id=t,
                side=Side.BUY,
                price=PriceMicros(v.worst_price),
                size=SizeMicros(q.size),
                order_type=OrderType.FOK,
            )
            for t, v in zip(legs.tokens, q.legs, strict=True)
        )
        return self._emit(legs, key, out, (q.cost, q.fees, q.edge), now)

"""The risk gate between strategies and the executor: ``check`` → ``Approved`` | ``Rejected``.

Rules, in the order they are checked (``Rejected.rule`` names the one that refused):

* ``kill_switch``: after ``kill(reason)`` (or with ``kill_switch=True`` in the config) every
  check is refused until ``resume()``.
* ``duplicate``: an intent id already in flight.
* validation (``polylab.risk.validate``): ``no_legs``, ``invalid_side``, ``invalid_order_type``,
  ``invalid_size``, ``off_size_grid``, ``invalid_price``, ``unknown_token``,
  ``off_tick_grid``, ``duplicate_token``; the reason names the leg and the value. An intent
  that cannot even be read (an attribute raises) is ``invalid``, with the error's text.
* ``rate``: orders (legs) approved in the last second + this intent's > ``max_submits_per_s``.
* ``open_orders``: orders in flight + this intent's > ``max_open_orders``.
* ``daily_loss``: the day's worst case must stay above −``max_daily_loss``: PnL realized during
  the current UTC day (fees included) + what held positions would lose if sold now
  (unrealized at risk) − the worst case of every intent in flight − this intent's worst case
  (``polylab.risk.exposure``: a set that fills only in part and is unwound loses at most its
  BUY legs' limit × size plus fees) must be > −``max_daily_loss_micros``.
* ``position``: per **token, market (condition id) and neg-risk event** the intent's legs
  touch, whatever ``Intent.group_id`` says: what held positions under that key can lose
  (``Portfolio.exposure``) + the BUY cost (limit × size) of intents in flight under it + this
  intent's BUY cost under it > ``max_position_micros``.
* ``cash``: cash − the worst-case cost of all intents in flight < this intent's.
* ``short``: a SELL leg for more shares than held minus SELLs already in flight.

Tokens resolve to markets and events through the ``MarketCatalog``, and prices are checked on
each token's current tick grid from its live book: give both to the constructor, or let the
``Engine`` ``bind`` its registry's (a gate without a catalog knows no token and approves
nothing).

**Atomic.** One lock covers the whole check and the reservation it makes on approval (cost per
limit key and in total, worst case, open orders, shares to sell, rate stamps), so two signals
checked at the same time can never together pass a limit that each passes alone.
``release(intent_id)`` frees the reservation once the executor's result is back; book the
result in the portfolio first (then, between the two calls, it is counted twice, never zero
times).

Rejections are data, not exceptions: the engine records and publishes them like fills.
Units: cash and sizes in micros, times in ns.
"""

from __future__ import annotations

import threading
from collections import Counter, deque
from collections.abc import Mapping
from typing import TYPE_CHECKING, Annotated, TypeVar

import msgspec

from polylab.errors import ConfigError
from polylab.money import MICROS
from polylab.risk.exposure import (
    Key,
    LimitKeys,
    exposure_by_key,
    unrealized_at_risk,
    worst_case,
)
from polylab.risk.validate import validate

if TYPE_CHECKING:
    from polylab.book.l2 import L2Book
    from polylab.domain import Intent
    from polylab.market import MarketCatalog
    from polylab.risk.portfolio import Portfolio
    from polylab.risk.records import Position

__all__ = ["Approved", "Decision", "Rejected", "RiskConfig", "RiskManager"]

_SECOND_NS = 1_000_000_000

_K = TypeVar("_K")

PosInt = Annotated[int, msgspec.Meta(gt=0)]


class RiskConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Risk limits (environment: ``RISK_MAX_POSITION`` … map onto these fields).

    * ``max_position_micros``: most one token, one market or one neg-risk event may put at
      risk, cash micros (positions' cost + intents in flight). Default $100.
    * ``max_daily_loss_micros``: approve nothing whose worst case would take the day's PnL
      (realized + unrealized at risk + worst case in flight) to −this, cash micros. Default
      $200.
    * ``max_open_orders``: orders (legs) in flight at once.
    * ``max_submits_per_s``: orders (legs) approved within any one second.
    * ``require_cash``: refuse intents whose worst-case cost exceeds free cash.
    * ``allow_short``: allow SELL legs for shares not held (the venue does not).
    * ``kill_switch``: start with the kill switch on (nothing is approved).
    """

    max_position_micros: PosInt = 100 * MICROS
    max_daily_loss_micros: PosInt = 200 * MICROS
    max_open_orders: PosInt = 20
    max_submits_per_s: PosInt = 50
    require_cash: bool = True
    allow_short: bool = False
    kill_switch: bool = False

    def __post_init__(self) -> None:
        limits = ("max_position_micros", "max_daily_loss_micros", "max_open_orders")
        for name in (*limits, "max_submits_per_s"):
            v = getattr(self, name)
            if type(v) is not int or v <= 0:
                raise ConfigError(f"risk.{name} must be an integer > 0, was {v!r}")


class Approved(msgspec.Struct, frozen=True, kw_only=True):
    """The intent may go; ``reserved``: worst-case BUY cost held for it (micros), ``orders``:
    open-order slots held, ``worst``: what it can lose at worst, held against the daily-loss
    limit (micros), until ``release``."""

    intent_id: str
    reserved: int
    orders: int
    ts_ns: int
    worst: int = 0


class Rejected(msgspec.Struct, frozen=True, kw_only=True):
    """The intent may not go: ``rule`` (see the module docstring) and a readable ``reason``."""

    reason: str
    rule: str
    intent_id: str = ""
    ts_ns: int = 0


Decision = Approved | Rejected


class _Reservation(msgspec.Struct):
    group_id: str
    cost: int
    worst: int
    orders: int
    sells: dict[str, int]
    keyed: dict[Key, int]


class RiskManager:
    """The gate. ``check`` is atomic and thread-safe; see the module docstring for the rules."""

    def __init__(
        self,
        config: RiskConfig,
        portfolio: Portfolio,
        catalog: MarketCatalog | None = None,
        books: Mapping[str, L2Book] | None = None,
    ) -> None:
        self.config = config
        self.portfolio = portfolio
        self.catalog = catalog
        self.books = books
        self.keys = LimitKeys(catalog)
        self.killed = config.kill_switch
        self.kill_reason = "kill_switch set in config" if config.kill_switch else ""
        self.approved = 0
        self.rejections: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._open: dict[str, _Reservation] = {}
        self._group_reserved: dict[str, int] = {}
        self._key_reserved: dict[Key, int] = {}
        self._inflight_worst = 0
        self._last_ns = 0
        self._stamps: deque[int] = deque()

    def bind(self, catalog: MarketCatalog, books: Mapping[str, L2Book]) -> None:
        """Use ``catalog`` (token → market → event, tick sizes) and live ``books`` (current
        tick grids, marks); the engine binds its registry's when none was given."""
        with self._lock:
            self.catalog, self.books = catalog, books
            self.keys = LimitKeys(catalog)

    # -- kill switch ----------------------------------------------------------------------------
    def kill(self, reason: str) -> None:
        """Refuse every later check until ``resume`` (intents in flight are not recalled)."""
        with self._lock:
            self.killed = True
            self.kill_reason = reason or "killed"

    def resume(self) -> None:
        """Turn the kill switch off again (an operator's decision)."""
        with self._lock:
            self.killed = False
            self.kill_reason = ""

    def reconfigure(self, config: RiskConfig) -> None:
        """New limits from the next check on (a hot reload); reservations of intents in flight
        are kept. ``kill_switch`` set in the new config halts; unset, it leaves the switch as
        the operator left it (only ``resume`` clears a halt)."""
        with self._lock:
            self.config = config
            if config.kill_switch and not self.killed:
                self.killed = True
                self.kill_reason = "kill_switch set in the reloaded config"

    # -- reads ---------------------------------------------------------------------------------
    @property
    def open_orders(self) -> int:
        """Orders (legs) in flight."""
        with self._lock:
            return sum(r.orders for r in self._open.values())

    def reserved(self, group_id: str | None = None) -> int:
        """Worst-case BUY cost held for intents in flight (one ``group_id``, or all), micros."""
        with self._lock:
            if group_id is not None:
                return self._group_reserved.get(group_id, 0)
            return sum(r.cost for r in self._open.values())

    def reserved_for(self, kind: str, ident: str) -> int:
        """BUY cost in flight under one limit key ("token" | "market" | "event", id), micros."""
        with self._lock:
            return self._key_reserved.get((kind, ident), 0)

    def inflight_worst(self) -> int:
        """What every intent in flight can lose at worst, micros."""
        with self._lock:
            return self._inflight_worst

    def day_at_risk(self, now_ns: int) -> int:
        """The day's worst case (signed micros): realized today + unrealized at risk − worst
        case in flight. The daily-loss rule keeps this above −``max_daily_loss_micros``."""
        with self._lock:
            return self._day_base(now_ns, self.portfolio.positions())

    def headroom(
        self, group_id: str, token_ids: tuple[str, ...] | list[str], now_ns: int | None = None
    ) -> int:
        """Most BUY cost (limit × size, cash micros) an intent on these tokens could still add:
        the least room under every token, market and event key they touch (the same keys as
        ``check``; ``group_id`` names a market or event only when no token is given), under
        free cash with ``require_cash``, and under the daily-loss room (fees and the worst
        case of SELLs aside) of the UTC day of ``now_ns`` (default: the last check's); 0 when
        killed or a token is unknown."""
        cfg = self.config
        with self._lock:
            if self.killed:
                return 0
            toks = self.keys.for_group(group_id, token_ids)
            if toks is None:
                return 0
            positions = self.portfolio.positions()
            held = exposure_by_key(positions, self.keys)
            kr = self._key_reserved
            room = cfg.max_position_micros
            for k in {k for t in toks for k in self.keys.of(t)}:
                room = min(room, cfg.max_position_micros - held.get(k, 0) - kr.get(k, 0))
            if cfg.require_cash:
                room = min(room, self.portfolio.cash - sum(r.cost for r in self._open.values()))
            now = self._last_ns if now_ns is None else now_ns
            day = self._day_base(now, positions)
            room = min(room, cfg.max_daily_loss_micros + day - 1)
            return max(0, room)

    # -- the gate ------------------------------------------------------------------------------
    def check(self, intent_id: str, intent: Intent, now_ns: int) -> Decision:
        """Approve (and reserve) or reject ``intent``; never raises on a bad intent."""
        with self._lock:
            self._last_ns = max(self._last_ns, now_ns)
            try:
                rule, reason, worst, keyed = self._rule(intent_id, intent, now_ns)
            except Exception as exc:  # a malformed intent must be a rejection, not a crash
                rule, reason, worst, keyed = "invalid", f"{type(exc).__name__}: {exc}", 0, {}
            if rule:
                self.rejections[rule] += 1
                return Rejected(reason=reason, rule=rule, intent_id=intent_id, ts_ns=now_ns)
            cost = intent.cost
            sells: dict[str, int] = {}
            for leg in intent.legs:
                if leg.side == "SELL":
                    sells[leg.token_id] = sells.get(leg.token_id, 0) + leg.size
            n = len(intent.legs)
            g = intent.group_id
            self._open[intent_id] = _Reservation(g, cost, worst, n, sells, keyed)
            self._group_reserved[g] = self._group_reserved.get(g, 0) + cost
            kr = self._key_reserved
            for k, c in keyed.items():
                kr[k] = kr.get(k, 0) + c
            self._inflight_worst += worst
            self._stamps.extend([now_ns] * n)
            self.approved += 1
            return Approved(intent_id=intent_id, reserved=cost, orders=n, ts_ns=now_ns, worst=worst)

    def release(self, intent_id: str) -> bool:
        """Free what ``check`` reserved for ``intent_id``; False if it held nothing."""
        with self._lock:
            r = self._open.pop(intent_id, None)
            if r is None:
                return False
            _take(self._group_reserved, r.group_id, r.cost)
            for k, c in r.keyed.items():
                _take(self._key_reserved, k, c)
            self._inflight_worst -= r.worst
            return True

    # -- internals (under the lock) ------------------------------------------------------------
    def _day_base(self, now_ns: int, positions: Mapping[str, Position]) -> int:
        realized = self.portfolio.realized_on_day(now_ns)
        unrealized = unrealized_at_risk(positions, self.keys, self.books)
        return realized + unrealized - self._inflight_worst

    def _rule(
        self, intent_id: str, intent: Intent, now_ns: int
    ) -> tuple[str, str, int, dict[Key, int]]:
        cfg = self.config
        if self.killed:
            return "kill_switch", f"kill switch on: {self.kill_reason}", 0, {}
        if intent_id in self._open:
            return "duplicate", f"intent {intent_id} is already in flight", 0, {}
        rule, reason = validate(intent, self.catalog, self.books)
        if rule:
            return rule, reason, 0, {}
        n = len(intent.legs)
        stamps = self._stamps
        while stamps and stamps[0] <= now_ns - _SECOND_NS:
            stamps.popleft()
        if len(stamps) + n > cfg.max_submits_per_s:
            why = f"{len(stamps)} orders in the last second + {n} > {cfg.max_submits_per_s}"
            return "rate", why, 0, {}
        open_orders = sum(r.orders for r in self._open.values())
        if open_orders + n > cfg.max_open_orders:
            return "open_orders", f"{open_orders} orders open + {n} > {cfg.max_open_orders}", 0, {}
        positions = self.portfolio.positions()
        worst = worst_case(intent, self.catalog, self.books, positions)
        day = self._day_base(now_ns, positions)
        if day - worst <= -cfg.max_daily_loss_micros:
            return (
                "daily_loss",
                (
                    f"day at risk {day} (realized today + unrealized at risk − in flight) − this "
                    f"intent's worst case {worst} <= -{cfg.max_daily_loss_micros} micros"
                ),
                0,
                {},
            )
        keyed: dict[Key, int] = {}
        for leg in intent.legs:
            if leg.side == "BUY":
                c = -(-leg.price * leg.size // MICROS)
                for k in self.keys.of(leg.token_id):
                    keyed[k] = keyed.get(k, 0) + c
        cost = intent.cost
        if cost:
            exposed = exposure_by_key(positions, self.keys)
            kr = self._key_reserved
            for k, c in keyed.items():
                at_risk = exposed.get(k, 0) + kr.get(k, 0)
                if at_risk + c > cfg.max_position_micros:
                    return (
                        "position",
                        (
                            f"{k[0]} {k[1][:20]}: {at_risk} at risk + {c} > "
                            f"{cfg.max_position_micros} micros (intent group {intent.group_id})"
                        ),
                        0,
                        {},
                    )
            if cfg.require_cash:
                free = self.portfolio.cash - sum(r.cost for r in self._open.values())
                if cost > free:
                    return "cash", f"cost {cost} > free cash {free} micros", 0, {}
        if not cfg.allow_short:
            selling: dict[str, int] = {}
            for leg in intent.legs:
                if leg.side == "SELL":
                    selling[leg.token_id] = selling.get(leg.token_id, 0) + leg.size
            for tok, size in selling.items():
                inflight = sum(r.sells.get(tok, 0) for r in self._open.values())
                pos = positions.get(tok)
                held = (pos.shares if pos is not None else 0) - inflight
                if size > held:
                    why = f"sell {size} of {tok[:16]}… but only {held} free to sell"
                    return "short", why, 0, {}
        return "", "", worst, keyed


def _take(d: dict[_K, int], key: _K, amount: int) -> None:
    """Subtract ``amount`` from ``d[key]``, dropping the key at 0."""
    left = d.get(key, 0) - amount
    if left:
        d[key] = left
    else:
        d.pop(key, None)

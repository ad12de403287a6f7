"""The risk gate between strategies and the executor: ``check`` → ``Approved`` | ``Rejected``.

Rules, in the order they are checked (``Rejected.rule`` names the one that refused):

* ``kill_switch``: after ``kill(reason)`` (or with ``kill_switch=True`` in the config) every
  check is refused until ``resume()``.
* ``duplicate``: an intent id already in flight.
* ``invalid``: no legs, a price outside (0, $1), a size ≤ 0.
* ``rate``: orders (legs) approved in the last second + this intent's > ``max_submits_per_s``.
* ``open_orders``: orders in flight + this intent's > ``max_open_orders``.
* ``daily_loss``: PnL realized during the current UTC day (fees included) ≤ −``max_daily_loss``;
  nothing new is approved for the rest of that day.
* ``position``: per group (``Intent.group_id``, a market or a neg-risk event): what its
  positions can lose (``Portfolio.exposure``) + the worst-case cost of its intents in flight +
  this intent's worst-case BUY cost (limit × size, fees excluded) > ``max_position_micros``.
* ``cash``: cash − the worst-case cost of all intents in flight < this intent's.
* ``short``: a SELL leg for more shares than held minus SELLs already in flight.

**Atomic.** One lock covers the whole check and the reservation it makes on approval (cost per
group and in total, open orders, shares to sell, rate stamps), so two signals checked at the same
time can never together pass a limit that each passes alone. ``release(intent_id)`` frees the
reservation once the executor's result is back; book the result in the portfolio first (or
accept that, between the two calls, the intent's exposure is counted in neither).

Rejections are data, not exceptions: the engine records and publishes them like fills.
Units: cash and sizes in micros, times in ns.
"""

from __future__ import annotations

import threading
from collections import Counter, deque
from typing import TYPE_CHECKING, Annotated

import msgspec

from polylab.errors import ConfigError
from polylab.money import MICROS

if TYPE_CHECKING:
    from polylab.domain import Intent
    from polylab.risk.portfolio import Portfolio

__all__ = ["Approved", "Decision", "Rejected", "RiskConfig", "RiskManager"]

_SECOND_NS = 1_000_000_000

PosInt = Annotated[int, msgspec.Meta(gt=0)]


class RiskConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Risk limits (environment: ``RISK_MAX_POSITION`` … map onto these fields).

    * ``max_position_micros``: most a group (market / neg-risk event) may put at risk, cash
      micros (positions' cost + intents in flight). Default $100.
    * ``max_daily_loss_micros``: stop approving for the rest of the UTC day once the day's
      realized loss reaches this, cash micros. Default $200.
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
    open-order slots held, until ``release``."""

    intent_id: str
    reserved: int
    orders: int
    ts_ns: int


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
    orders: int
    sells: dict[str, int]


class RiskManager:
    """The gate. ``check`` is atomic and thread-safe; see the module docstring for the rules."""

    def __init__(self, config: RiskConfig, portfolio: Portfolio) -> None:
        self.config = config
        self.portfolio = portfolio
        self.killed = config.kill_switch
        self.kill_reason = "kill_switch set in config" if config.kill_switch else ""
        self.approved = 0
        self.rejections: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._open: dict[str, _Reservation] = {}
        self._group_tokens: dict[str, set[str]] = {}
        self._group_reserved: dict[str, int] = {}
        self._stamps: deque[int] = deque()

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

    # -- the gate ------------------------------------------------------------------------------
    @property
    def open_orders(self) -> int:
        """Orders (legs) in flight."""
        with self._lock:
            return sum(r.orders for r in self._open.values())

    def reserved(self, group_id: str | None = None) -> int:
        """Worst-case cost held for intents in flight (one group, or all), micros."""
        with self._lock:
            if group_id is not None:
                return self._group_reserved.get(group_id, 0)
            return sum(r.cost for r in self._open.values())

    def headroom(self, group_id: str, token_ids: tuple[str, ...] | list[str]) -> int:
        """Worst-case cost (cash micros) an intent on ``group_id`` could still add without
        breaking the position limit or, with ``require_cash``, free cash; 0 when killed."""
        cfg = self.config
        with self._lock:
            if self.killed:
                return 0
            tokens = self._group_tokens.get(group_id, set()) | set(token_ids)
            at_risk = self.portfolio.exposure(tokens) + self._group_reserved.get(group_id, 0)
            room = cfg.max_position_micros - at_risk
            if cfg.require_cash:
                room = min(room, self.portfolio.cash - sum(r.cost for r in self._open.values()))
            return max(0, room)

    def check(self, intent_id: str, intent: Intent, now_ns: int) -> Decision:
        """Approve (and reserve) or reject ``intent``; never raises on a bad intent."""
        with self._lock:
            rule, reason = self._rule(intent_id, intent, now_ns)
            if rule:
                self.rejections[rule] += 1
                return Rejected(reason=reason, rule=rule, intent_id=intent_id, ts_ns=now_ns)
            cost = intent.cost
            sells: dict[str, int] = {}
            for leg in intent.legs:
                if leg.side == "SELL":
                    sells[leg.token_id] = sells.get(leg.token_id, 0) + leg.size
            self._open[intent_id] = _Reservation(intent.group_id, cost, len(intent.legs), sells)
            g = intent.group_id
            self._group_reserved[g] = self._group_reserved.get(g, 0) + cost
            self._group_tokens.setdefault(g, set()).update(leg.token_id for leg in intent.legs)
            self._stamps.extend([now_ns] * len(intent.legs))
            self.approved += 1
            return Approved(
                intent_id=intent_id, reserved=cost, orders=len(intent.legs), ts_ns=now_ns
            )

    def release(self, intent_id: str) -> bool:
        """Free what ``check`` reserved for ``intent_id``; False if it held nothing."""
        with self._lock:
            r = self._open.pop(intent_id, None)
            if r is None:
                return False
            left = self._group_reserved.get(r.group_id, 0) - r.cost
            if left:
                self._group_reserved[r.group_id] = left
            else:
                self._group_reserved.pop(r.group_id, None)
            return True

    def _rule(self, intent_id: str, intent: Intent, now_ns: int) -> tuple[str, str]:
        cfg = self.config
        if self.killed:
            return "kill_switch", f"kill switch on: {self.kill_reason}"
        if intent_id in self._open:
            return "duplicate", f"intent {intent_id} is already in flight"
        if not intent.legs:
            return "invalid", "intent has no legs"
        for i, leg in enumerate(intent.legs):
            if not 0 < leg.price < MICROS:
                return "invalid", f"leg {i} price must be in (0, 1e6) micros, was {leg.price}"
            if leg.size <= 0:
                return "invalid", f"leg {i} size must be > 0 micros, was {leg.size}"
        n = len(intent.legs)
        stamps = self._stamps
        while stamps and stamps[0] <= now_ns - _SECOND_NS:
            stamps.popleft()
        if len(stamps) + n > cfg.max_submits_per_s:
            return (
                "rate",
                f"{len(stamps)} orders in the last second + {n} > {cfg.max_submits_per_s}",
            )
        open_orders = sum(r.orders for r in self._open.values())
        if open_orders + n > cfg.max_open_orders:
            return "open_orders", f"{open_orders} orders open + {n} > {cfg.max_open_orders}"
        day = self.portfolio.realized_on_day(now_ns)
        if day <= -cfg.max_daily_loss_micros:
            return "daily_loss", f"realized today {day} <= -{cfg.max_daily_loss_micros} micros"
        cost = intent.cost
        if cost:
            g = intent.group_id
            tokens = self._group_tokens.get(g, set()) | {leg.token_id for leg in intent.legs}
            at_risk = self.portfolio.exposure(tokens) + self._group_reserved.get(g, 0)
            if at_risk + cost > cfg.max_position_micros:
                return "position", (
                    f"group {g}: {at_risk} at risk + {cost} > {cfg.max_position_micros} micros"
                )
            if cfg.require_cash:
                free = self.portfolio.cash - sum(r.cost for r in self._open.values())
                if cost > free:
                    return "cash", f"cost {cost} > free cash {free} micros"
        if not cfg.allow_short:
            selling: dict[str, int] = {}
            for leg in intent.legs:
                if leg.side == "SELL":
                    selling[leg.token_id] = selling.get(leg.token_id, 0) + leg.size
            for tok, size in selling.items():
                inflight = sum(r.sells.get(tok, 0) for r in self._open.values())
                held = self.portfolio.position(tok) - inflight
                if size > held:
                    return "short", f"sell {size} of {tok[:16]}… but only {held} free to sell"
        return "", ""

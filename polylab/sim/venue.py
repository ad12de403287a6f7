"""The simulated venue's state and everything that only reads it or moves money outside orders.

``Venue`` holds the listed markets (one ``MarketState`` each), the accounts, every accepted
order, the trade ledger and the listeners; ``Exchange`` (``exchange.py``) adds order entry,
matching, cancels, expiry, settlement and resolution on top. Split in two only to keep modules
small: use ``Exchange``.

Listeners get the venue's wire shapes (see ``exchange.py``); a failing listener is logged and
counted in ``stats["listener_errors"]``, never propagated into the exchange.

Units: price micros, size and cash micros, times in ms since the epoch.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from typing import Any

import msgspec

from polylab.market import Market, MarketCatalog
from polylab.money import MICROS, TickSize, tick_size
from polylab.sim.accounts import Accounts, norm_address
from polylab.sim.events import new_market_event
from polylab.sim.market_state import MarketState
from polylab.sim.matching import LOT_MICROS
from polylab.sim.orderbook import SimOrder
from polylab.sim.trades import TradeLedger

__all__ = ["MarketListener", "Scheduler", "UserListener", "Venue"]

log = logging.getLogger("polylab.sim.exchange")

MarketListener = Callable[[list[dict[str, Any]]], None]
UserListener = Callable[[str, dict[str, Any]], None]
Scheduler = Callable[[float, Callable[[], object]], object]
"""``(delay seconds, callback)`` → handle; ``loop.call_later`` fits."""


class Venue:
    """Markets, accounts, orders, trades and listeners of one simulated exchange."""

    def __init__(
        self,
        *,
        starting_collateral_micros: int = 10_000 * MICROS,
        seed: int = 0,
        clock_ms: Callable[[], int] | None = None,
        gtd_buffer_s: int = 60,
        auto_tick_size: bool = True,
        mined_delay_s: float = 0.5,
        confirmed_delay_s: float = 1.5,
        require_approval: bool = False,
    ) -> None:
        self.accounts = Accounts(starting_collateral_micros, require_approval)
        self.markets = MarketCatalog()
        self.ledger = TradeLedger()
        self.gtd_buffer_s = gtd_buffer_s
        """GTD expirations must lie at least this far in the future (the venue's threshold)."""
        self.auto_tick_size = auto_tick_size
        self.mined_delay_s = mined_delay_s
        self.confirmed_delay_s = confirmed_delay_s
        self.api_keys: dict[str, str] = {}
        """Address → its API key, for the ``owner`` fields of orders placed without one."""
        self.stats: dict[str, int] = {
            "orders": 0,
            "rejected": 0,
            "trades": 0,
            "cancels": 0,
            "listener_errors": 0,
        }
        self._clock_ms = clock_ms or (lambda: time.time_ns() // 1_000_000)
        self._seed = seed
        self._seq = 0
        self._states: dict[str, MarketState] = {}
        self._by_token: dict[str, MarketState] = {}
        self._orders: dict[str, SimOrder] = {}
        self._open: dict[str, dict[str, SimOrder]] = {}
        self._gtd: list[tuple[int, int, str]] = []
        self._market_listeners: list[MarketListener] = []
        self._user_listeners: list[UserListener] = []
        self._scheduler: Scheduler | None = None

    def add_market_listener(self, fn: MarketListener) -> None:
        """Call ``fn(events)`` after every change of any book or market."""
        self._market_listeners.append(fn)

    def add_user_listener(self, fn: UserListener) -> None:
        """Call ``fn(address, event)`` for every order/trade event of an address."""
        self._user_listeners.append(fn)

    def set_scheduler(self, scheduler: Scheduler | None) -> None:
        """Settle trades and expire GTD orders on a timer (``loop.call_later``).

        ``None`` (the default) leaves both to ``advance_settlement`` / ``expire_orders`` calls.
        """
        self._scheduler = scheduler

    def now_ms(self) -> int:
        """The exchange clock in ms since the epoch."""
        return self._clock_ms()

    def _emit_market(self, events: list[dict[str, Any]]) -> None:
        if not events:
            return
        for fn in self._market_listeners:
            try:
                fn(events)
            except Exception:
                self.stats["listener_errors"] += 1
                log.exception("market listener failed")

    def _emit_user(self, address: str, event: dict[str, Any]) -> None:
        for fn in self._user_listeners:
            try:
                fn(address, event)
            except Exception:
                self.stats["listener_errors"] += 1
                log.exception("user listener failed")

    def _next(self, label: str) -> tuple[int, bytes]:
        self._seq += 1
        return self._seq, hashlib.sha256(f"{self._seed}|{label}|{self._seq}".encode()).digest()

    def add_market(self, market: Market) -> None:
        """List a binary market (both tokens tradeable, empty book); announces ``new_market``."""
        if market.condition_id in self._states:
            raise ValueError(f"market {market.condition_id} is already listed")
        for t in market.token_ids:
            if t in self._by_token:
                raise ValueError(f"token {t} already belongs to another market")
        tick_size(market.tick_size)
        state = MarketState(market)
        self._states[market.condition_id] = state
        for t in market.token_ids:
            self._by_token[t] = state
        self.markets.add(market)
        self._emit_market([new_market_event(market, self.now_ms())])

    def market_state(self, token_or_condition_id: str) -> MarketState | None:
        """The state of the market a token (or condition id) belongs to."""
        return self._by_token.get(token_or_condition_id) or self._states.get(token_or_condition_id)

    def _replace_market(self, state: MarketState, market: Market) -> None:
        state.market = market
        self.markets.add(market)

    def set_tick_size(self, token_id: str, tick: str) -> None:
        """Change a market's grid (both tokens); emits ``tick_size_change``. Resting orders stay."""
        state = self._by_token[token_id]
        new = tick_size(tick).text
        old = state.market.tick_size
        if new == tick_size(old).text:
            return
        self._replace_market(state, msgspec.structs.replace(state.market, tick_size=new))
        self._emit_market(state.tick_change_events(old, new, self.now_ms()))

    def fund(self, address: str, micros: int) -> None:
        """Deposit collateral (on top of the starting grant every address gets)."""
        self.accounts.fund(norm_address(address), micros)

    def approve(self, address: str, *, update: bool = False) -> None:
        """Simulated on-chain approvals of ``address``; ``update`` also lets the CLOB read them
        (what ``/balance-allowance/update`` does), for traders that need no REST round trip."""
        a = norm_address(address)
        self.accounts.approve(a)
        if update:
            self.accounts.update_allowance(a)

    def update_allowance(self, address: str) -> bool:
        """``/balance-allowance/update``: the CLOB re-reads ``address``'s approvals."""
        return self.accounts.update_allowance(norm_address(address))

    def has_allowance(self, address: str) -> bool:
        """Whether orders of ``address`` pass the allowance check."""
        return self.accounts.has_allowance(norm_address(address))

    def balance(self, address: str) -> int:
        """Collateral held (free + reserved for open BUYs), micros."""
        return self.accounts.balance(norm_address(address))

    def free_balance(self, address: str) -> int:
        """Collateral available for new orders, micros."""
        return self.accounts.free_collateral(norm_address(address))

    def position(self, address: str, token_id: str) -> int:
        """Shares of ``token_id`` held (incl. those locked by open SELLs), micros."""
        return self.accounts.position(norm_address(address), token_id)

    def split(self, address: str, condition_id: str, micros: int) -> None:
        """Turn collateral into as many YES + NO shares (the CTF ``splitPosition``)."""
        state = self._states[condition_id]
        if micros <= 0 or micros % LOT_MICROS:
            raise ValueError(f"split amount must be a positive multiple of 0.01, was {micros}")
        a = norm_address(address)
        if self.accounts.free_collateral(a) < micros:
            raise ValueError(f"{a} has not enough free collateral to split {micros}")
        self.accounts.debit(a, micros)
        for t in state.market.token_ids:
            self.accounts.add_shares(a, t, micros)

    def merge(self, address: str, condition_id: str, micros: int) -> None:
        """Turn YES + NO shares back into collateral (the CTF ``mergePositions``)."""
        state = self._states[condition_id]
        a = norm_address(address)
        if micros <= 0 or any(
            self.accounts.free_shares(a, t) < micros for t in state.market.token_ids
        ):
            raise ValueError(f"{a} cannot merge {micros}: not enough free shares of both tokens")
        for t in state.market.token_ids:
            self.accounts.remove_shares(a, t, micros)
        self.accounts.credit(a, micros)

    def locked_collateral(self) -> int:
        """Collateral backing outstanding shares: complete sets, or winners once resolved."""
        total = 0
        for s in self._states.values():
            total += self.accounts.token_supply(s.winner or s.yes)
        return total

    def redeem(self, address: str, condition_id: str) -> int:
        """Pay out a resolved market's winning shares 1:1 and burn both positions."""
        state = self._states[condition_id]
        if not state.closed:
            raise ValueError(f"market {condition_id} is not resolved")
        a = norm_address(address)
        payout = self.accounts.position(a, state.winner)
        for t in state.market.token_ids:
            self.accounts.remove_shares(a, t, self.accounts.position(a, t))
        self.accounts.credit(a, payout)
        return payout

    def order(self, order_id: str) -> SimOrder | None:
        """Any order the exchange accepted, by id (open, filled or cancelled)."""
        return self._orders.get(order_id)

    def trades(
        self,
        owner: str,
        *,
        trade_id: str = "",
        market: str = "",
        asset_id: str = "",
        before_s: int = 0,
        after_s: int = 0,
    ) -> list[dict[str, Any]]:
        """``/data/trades`` rows ``owner`` took part in (as taker or maker), oldest first."""
        rows = []
        for trade, side in self.ledger.for_address(norm_address(owner)):
            if trade_id and trade.id != trade_id:
                continue
            if (market and trade.market != market) or (asset_id and trade.asset_id != asset_id):
                continue
            t_s = trade.match_ms // 1000
            if (before_s and t_s >= before_s) or (after_s and t_s <= after_s):
                continue
            rows.append(trade.to_json(side))
        return rows

    def book_json(self, token_id: str) -> dict[str, Any]:
        """The REST ``/book`` object; ``KeyError`` for an unknown token."""
        return self._by_token[token_id].rest_book(token_id, self.now_ms())

    def initial_dump(self, token_ids: list[str]) -> list[dict[str, Any]]:
        """WS initial-dump ``book`` objects of the known tokens among ``token_ids``."""
        now = self.now_ms()
        return [self._by_token[t].initial_book(t, now) for t in token_ids if t in self._by_token]

    def top(self, token_id: str) -> tuple[int | None, int | None]:
        """(best bid, best ask) price micros of a token; ``KeyError`` if unknown."""
        state = self._by_token[token_id]
        return state.book.top(state.is_yes(token_id))

    def last_trade_price(self, token_id: str) -> str:
        """Last trade price string of a token ("" if it never traded)."""
        return self._by_token[token_id].last_trade[token_id]

    def grid(self, token_id: str) -> TickSize:
        """The current tick grid of a token's market."""
        return tick_size(self._by_token[token_id].market.tick_size)

"""Who holds what in the simulated exchange: collateral and outcome shares, free and reserved.

Units: every amount is an integer in micros (collateral 6 decimals, shares 6 decimals).

* ``free`` collateral can fund new orders; ``reserved`` collateral backs resting BUY orders
  (size × own price), so an open order can always pay when it is hit.
* a ``position`` is the address's total shares of a token; ``locked`` shares back resting SELL
  orders. Free shares = position − locked.

Every address is funded with ``starting_collateral_micros`` the first time it is touched, the
simulator's stand-in for a deposit. With ``require_approval`` an address also needs allowance
before it can trade, as on the venue (protocol doc §0.1): ``approve`` stands in for the wallet's
on-chain approvals, ``update_allowance`` for ``/balance-allowance/update`` (the CLOB re-reading
the chain); only after both does ``has_allowance`` hold. Without it every address is approved.

``funded_micros`` counts all collateral ever created, so ``total_collateral() + Σ complete sets
outstanding == funded_micros`` is the conservation law the tests check (fees are collateral
moved to the fee collector, never destroyed).

Errors::

    Exception
     └── SimInvariantError   an account would go negative (a simulator bug, never user input)
"""

from __future__ import annotations

import hashlib

from polylab.execution.eip712 import to_checksum_address

__all__ = ["FEE_COLLECTOR", "Accounts", "SimInvariantError", "norm_address", "sim_address"]

FEE_COLLECTOR = "0xfEE0000000000000000000000000000000000fee"
"""Where taker fees go (an address nobody signs for; EIP-55 form, as accounts are keyed)."""


class SimInvariantError(Exception):
    """A balance, reservation or position would go negative: a bug in the simulator."""


def norm_address(address: str) -> str:
    """The canonical key of an address: EIP-55 checksummed if it is ``0x`` + 40 hex digits.

    Other strings (simulated traders may use names) are kept as they are, so every spelling of a
    real address maps to one account.
    """
    if len(address) == 42 and address[:2] in ("0x", "0X"):
        try:
            return to_checksum_address(address)
        except ValueError:
            return address
    return address


def sim_address(label: str) -> str:
    """The EIP-55 address of the simulated trader named ``label`` ("mm-7-3", "taker-2"):
    deterministic, and shaped like every address on the venue (trades name makers by it)."""
    digest = hashlib.sha256(f"polylab-sim|trader|{label}".encode()).hexdigest()
    return to_checksum_address("0x" + digest[:40])


def _take(book: dict[str, int], key: str, micros: int, what: str) -> None:
    have = book.get(key, 0)
    if micros < 0 or have < micros:
        raise SimInvariantError(f"{what} of {key} would go negative: has {have}, takes {micros}")
    book[key] = have - micros


def _take_pos(
    book: dict[tuple[str, str], int], key: tuple[str, str], micros: int, what: str
) -> None:
    have = book.get(key, 0)
    if micros < 0 or have < micros:
        raise SimInvariantError(f"{what} of {key} would go negative: has {have}, takes {micros}")
    if have == micros:
        book.pop(key, None)
    else:
        book[key] = have - micros


class Accounts:
    """Collateral and share balances of every address (keys are ``norm_address`` forms)."""

    def __init__(self, starting_collateral_micros: int, require_approval: bool = False) -> None:
        if starting_collateral_micros < 0:
            raise ValueError(
                f"starting_collateral_micros must be >= 0, was {starting_collateral_micros}"
            )
        self.starting_collateral_micros = starting_collateral_micros
        self.free: dict[str, int] = {}
        self.reserved: dict[str, int] = {}
        self.positions: dict[tuple[str, str], int] = {}
        self.locked: dict[tuple[str, str], int] = {}
        self.funded_micros = 0
        """All collateral ever created by funding (starting grants + ``fund``)."""
        self.require_approval = require_approval
        self.approved_onchain: set[str] = set()
        """Addresses whose (simulated) on-chain approvals are in place."""
        self.allowance_seen: set[str] = set()
        """Addresses whose approvals the CLOB has read (``update_allowance``)."""
        self.free[FEE_COLLECTOR] = 0  # fees only: no starting grant
        self.reserved[FEE_COLLECTOR] = 0

    # -- collateral -----------------------------------------------------------------------
    def touch(self, address: str) -> None:
        """Open the account with the starting grant if this address was never seen."""
        if address not in self.free:
            self.free[address] = self.starting_collateral_micros
            self.reserved[address] = 0
            self.funded_micros += self.starting_collateral_micros

    def fund(self, address: str, micros: int) -> None:
        """Deposit ``micros`` of new collateral (tests and simulated traders)."""
        if micros < 0:
            raise ValueError(f"fund amount must be >= 0, was {micros}")
        self.touch(address)
        self.free[address] += micros
        self.funded_micros += micros

    def free_collateral(self, address: str) -> int:
        """Collateral that can fund new orders."""
        self.touch(address)
        return self.free[address]

    def balance(self, address: str) -> int:
        """On-chain collateral: free plus what backs open BUY orders."""
        self.touch(address)
        return self.free[address] + self.reserved[address]

    def debit(self, address: str, micros: int) -> None:
        """Take free collateral (a taker paying, a split)."""
        self.touch(address)
        _take(self.free, address, micros, "free collateral")

    def credit(self, address: str, micros: int) -> None:
        """Give free collateral (sale proceeds, fees collected, merges, redemptions)."""
        if micros < 0:
            raise SimInvariantError(f"credit of {micros} to {address}")
        self.touch(address)
        self.free[address] += micros

    def reserve(self, address: str, micros: int) -> None:
        """Move free collateral behind a resting BUY."""
        self.debit(address, micros)
        self.reserved[address] += micros

    def release(self, address: str, micros: int) -> None:
        """Return reserved collateral to free (cancel, expiry)."""
        _take(self.reserved, address, micros, "reserved collateral")
        self.free[address] += micros

    def spend_reserved(self, address: str, micros: int) -> None:
        """A resting BUY paying for its fill out of its reservation."""
        _take(self.reserved, address, micros, "reserved collateral")

    # -- allowance ------------------------------------------------------------------------
    def approve(self, address: str) -> None:
        """The wallet's on-chain approvals (collateral and positions, every exchange)."""
        self.approved_onchain.add(address)

    def update_allowance(self, address: str) -> bool:
        """The CLOB re-reads the chain for ``address``; returns ``has_allowance`` after it."""
        if address in self.approved_onchain:
            self.allowance_seen.add(address)
        return self.has_allowance(address)

    def has_allowance(self, address: str) -> bool:
        """Whether the CLOB lets ``address`` trade (always, unless approval is required)."""
        return not self.require_approval or address in self.allowance_seen

    # -- shares ---------------------------------------------------------------------------
    def position(self, address: str, token_id: str) -> int:
        """Total shares of ``token_id`` held (locked ones included)."""
        return self.positions.get((address, token_id), 0)

    def free_shares(self, address: str, token_id: str) -> int:
        """Shares that can back a new SELL."""
        key = (address, token_id)
        return self.positions.get(key, 0) - self.locked.get(key, 0)

    def add_shares(self, address: str, token_id: str, micros: int) -> None:
        """Shares bought, minted or split into the account."""
        if micros < 0:
            raise SimInvariantError(f"adding {micros} shares of {token_id} to {address}")
        if micros:
            key = (address, token_id)
            self.positions[key] = self.positions.get(key, 0) + micros

    def remove_shares(self, address: str, token_id: str, micros: int) -> None:
        """Free shares leaving the account (a taker selling, a merge)."""
        if self.free_shares(address, token_id) < micros:
            raise SimInvariantError(f"{address} sells {micros} of {token_id} it does not hold")
        _take_pos(self.positions, (address, token_id), micros, "position")

    def lock_shares(self, address: str, token_id: str, micros: int) -> None:
        """Put free shares behind a resting SELL."""
        if self.free_shares(address, token_id) < micros:
            raise SimInvariantError(f"{address} locks {micros} of {token_id} it does not hold")
        key = (address, token_id)
        self.locked[key] = self.locked.get(key, 0) + micros

    def unlock_shares(self, address: str, token_id: str, micros: int) -> None:
        """Release locked shares (cancel, expiry)."""
        _take_pos(self.locked, (address, token_id), micros, "locked shares")

    def spend_locked_shares(self, address: str, token_id: str, micros: int) -> None:
        """A resting SELL delivering shares out of its lock."""
        _take_pos(self.locked, (address, token_id), micros, "locked shares")
        _take_pos(self.positions, (address, token_id), micros, "position")

    # -- totals ---------------------------------------------------------------------------
    def total_collateral(self) -> int:
        """Σ free + reserved over every address (fee collector included)."""
        return sum(self.free.values()) + sum(self.reserved.values())

    def token_supply(self, token_id: str) -> int:
        """Σ positions of one token over every address."""
        return sum(v for (_, t), v in self.positions.items() if t == token_id)

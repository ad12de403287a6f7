"""``SimState``: what one running simulator holds, shared by REST, WebSocket and Gamma handlers.

* ``exchange``: the matching engine (``polylab.sim.exchange.Exchange``);
* ``keys``: API credentials issued by ``/auth/api-key`` and ``/auth/derive-api-key``,
  deterministic per (address, nonce) and seed (``polylab.execution.auth.derive_api_creds``);
* ``heartbeats``: the ``/v1/heartbeats`` dead-man switch per API key;
* ``scoreboard``: the sports scoreboard (``polylab.sim.sports``);
* ``rng``: the seeded source of REST faults.

With the generator off, ``seed_markets`` lists a few deterministic markets so the REST and
WebSocket APIs have something to serve: a binary CTF market (fees on), a binary Protocol-V2
market (75-digit position ids, fees on) and a three-outcome neg-risk event (no fees).
"""

from __future__ import annotations

import hashlib
import random
import time
import uuid
from collections.abc import Callable

from polylab.execution.auth import ApiCreds, derive_api_creds
from polylab.fees import FeeModel
from polylab.market import Market
from polylab.sim.accounts import norm_address
from polylab.sim.config import SimConfig
from polylab.sim.exchange import Exchange
from polylab.sim.sports import Scoreboard

__all__ = ["ApiKeyStore", "Heartbeats", "SimState", "seed_markets"]


class ApiKeyStore:
    """API key → (owning address, credentials); secrets never leave except to their owner."""

    def __init__(self, server_secret: bytes) -> None:
        self._secret = server_secret
        self._by_key: dict[str, tuple[str, ApiCreds]] = {}

    def issue(self, address: str, nonce: int) -> ApiCreds:
        """Create (or re-derive: same result) the credentials of ``address`` for ``nonce``."""
        owner = norm_address(address)
        creds = derive_api_creds(owner, nonce, self._secret)
        self._by_key[creds.api_key] = (owner, creds)
        return creds

    def lookup(self, api_key: str) -> tuple[str, ApiCreds] | None:
        """(address, credentials) of a live key, or ``None``."""
        return self._by_key.get(api_key)

    def keys_of(self, address: str) -> list[str]:
        """API keys issued to ``address``."""
        owner = norm_address(address)
        return [k for k, (a, _) in self._by_key.items() if a == owner]

    def revoke(self, api_key: str) -> bool:
        """Delete a key; ``False`` if it did not exist."""
        return self._by_key.pop(api_key, None) is not None

    def __repr__(self) -> str:
        return f"ApiKeyStore({len(self._by_key)} keys, secrets=<redacted>)"


class Heartbeats:
    """The dead-man switch: once an API key sent a heartbeat, it must renew it within
    ``timeout_s`` or all orders of its address are cancelled (``check``)."""

    def __init__(self, timeout_s: float, clock_s: Callable[[], float] = time.monotonic) -> None:
        self.timeout_s = timeout_s
        self._clock = clock_s
        self._beats: dict[str, tuple[str, str, float]] = {}
        """api key → (heartbeat id, address, last beat time)."""

    def beat(self, api_key: str, address: str, heartbeat_id: str) -> str | None:
        """Record a heartbeat; returns the id to send next, or ``None`` for a wrong id."""
        current = self._beats.get(api_key)
        if heartbeat_id and (current is None or current[0] != heartbeat_id):
            return None
        hb_id = current[0] if current is not None else str(uuid.uuid4())
        self._beats[api_key] = (hb_id, address, self._clock())
        return hb_id

    def expired(self) -> list[str]:
        """Addresses whose heartbeat lapsed (their entries are dropped)."""
        now = self._clock()
        gone = [k for k, (_, _, t) in self._beats.items() if now - t > self.timeout_s]
        return [self._beats.pop(k)[1] for k in gone]


def _digits(seed: int, label: str, n: int) -> str:
    """A deterministic ``n``-digit decimal id (no leading zero)."""
    h = int.from_bytes(hashlib.sha256(f"{seed}|{label}".encode()).digest() * 2, "big")
    return str(10 ** (n - 1) + h % (9 * 10 ** (n - 1)))


def _hex32(seed: int, label: str) -> str:
    return "0x" + hashlib.sha256(f"{seed}|{label}".encode()).hexdigest()


def seed_markets(seed: int) -> list[Market]:
    """Deterministic markets for a run without the generator (same seed → same ids)."""
    crypto = FeeModel.from_rate("0.07")
    out = [
        Market(
            condition_id=_hex32(seed, "binary-v1"),
            token_ids=(_digits(seed, "binary-v1-yes", 77), _digits(seed, "binary-v1-no", 77)),
            outcomes=("Yes", "No"),
            question="Will the sim coin close above its target?",
            slug="sim-coin-above-target",
            fee=crypto,
        ),
        Market(
            condition_id=_hex32(seed, "binary-v2")[:-2] + "00",
            token_ids=(_digits(seed, "binary-v2-up", 75), _digits(seed, "binary-v2-down", 75)),
            outcomes=("Up", "Down"),
            question="Sim coin up or down in the next 15 minutes?",
            slug="sim-coin-up-or-down-15m",
            version="v2",
            fee=crypto,
        ),
    ]
    event = _hex32(seed, "negrisk-event")
    for i, name in enumerate(("Alice", "Bob", "Carol")):
        out.append(
            Market(
                condition_id=_hex32(seed, f"negrisk-{i}"),
                token_ids=(
                    _digits(seed, f"negrisk-{i}-yes", 77),
                    _digits(seed, f"negrisk-{i}-no", 77),
                ),
                outcomes=("Yes", "No"),
                question=f"Will {name} win the sim election?",
                slug=f"sim-election-{name.lower()}",
                neg_risk=True,
                event_id=event,
            )
        )
    return out


class SimState:
    """Exchange, credentials, heartbeats, scoreboard and config of one simulator."""

    def __init__(self, config: SimConfig | None = None) -> None:
        self.config = config or SimConfig()
        cfg = self.config
        self.exchange = Exchange(
            starting_collateral_micros=cfg.starting_collateral_micros,
            seed=cfg.seed,
            gtd_buffer_s=cfg.gtd_buffer_s,
            auto_tick_size=cfg.auto_tick_size,
            mined_delay_s=cfg.mined_delay_s,
            confirmed_delay_s=cfg.confirmed_delay_s,
            require_approval=cfg.require_approval,
        )
        self.keys = ApiKeyStore(cfg.server_secret)
        self.heartbeats = Heartbeats(cfg.heartbeat_timeout_s)
        self.scoreboard = Scoreboard()
        self.rng = random.Random(f"{cfg.seed}:rest")
        if not cfg.generator:
            for m in seed_markets(cfg.seed):
                self.exchange.add_market(m)

    def lookup_creds(self, api_key: str) -> tuple[str, ApiCreds] | None:
        """(address, credentials) of an API key (the ``CredsLookup`` of ``verify_l2``)."""
        return self.keys.lookup(api_key)

    def issue_creds(self, address: str, nonce: int) -> ApiCreds:
        """Issue the deterministic credentials of (address, nonce) and remember the key."""
        creds = self.keys.issue(address, nonce)
        self.exchange.api_keys[norm_address(address)] = creds.api_key
        return creds

    def check_heartbeats(self) -> list[str]:
        """Cancel every order of addresses whose heartbeat lapsed; returns the order ids."""
        cancelled: list[str] = []
        for address in self.heartbeats.expired():
            cancelled += self.exchange.cancel_all(address)
        return cancelled

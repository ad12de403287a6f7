"""``SimConfig``: everything that shapes one simulator run, strict and frozen.

Loaded from JSON or TOML (``load_config``); unknown keys and wrong types are refused with the
path of the offending field (``$.faults.drop_prob``), so a typo never silently falls back to a
default. Units are in the field names (``_micros``, ``_s``, ``_ms``).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec

from polylab.money import MICROS
from polylab.sim.faults import DEFAULT_MAX_BUFFERED_BYTES, FaultConfig

__all__ = ["ConfigError", "SimConfig", "load_config"]

NonNegInt = Annotated[int, msgspec.Meta(ge=0)]
PosInt = Annotated[int, msgspec.Meta(gt=0)]
NonNeg = Annotated[float, msgspec.Meta(ge=0.0)]


class ConfigError(ValueError):
    """A simulator config file that cannot be read or does not validate (names the field)."""


class SimConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One simulator run.

    Exchange: ``seed`` (ids, API-key derivation, generator, faults); ``chain_id`` (EIP-712
    domains); ``starting_collateral_micros`` granted to every address on first sight;
    ``order_version`` "v2" (CLOB V2 struct, domain "2" on CTF markets; the default, as on the
    venue since 2026-04-28) or "v1" (legacy 12-field struct, domain "1"), reported by
    ``/version``; Protocol-V2 markets always take domain "3". ``gtd_buffer_s``: GTD orders must
    expire at least this far ahead. ``auto_tick_size``: 0.01 markets trade on 0.001 beyond
    0.96 / 0.04. ``mined_delay_s`` / ``confirmed_delay_s``: trade settlement timing after the
    match. ``auth_max_skew_s``: L1/L2 timestamps further than this from the server clock are
    refused (401). ``heartbeat_timeout_s``: the dead-man switch of ``/v1/heartbeats``.
    ``max_orders_per_request`` (``POST /orders``), ``max_tokens_per_request`` (``/books`` and
    the other batch reads), ``page_size`` (``/markets``, ``/data/*`` paging).

    Markets: ``generator`` runs the seeded market generator (``polylab.sim.generator``); when
    off, a few deterministic markets are listed instead (binary CTF, binary Protocol-V2, a
    neg-risk event). ``binary_markets``, ``negrisk_events``, ``negrisk_outcomes`` (min, max),
    ``sports_games``, ``v2_share``, ``steps_per_s`` (trader actions per second) and
    ``sports_lag_s`` (scoreboard final → market reprice), ``game_delay_s`` (listing → kick-off)
    and ``game_length_s`` (kick-off → final), both (min, max) seconds, shape the generator.

    Sports channel (``/ws/sports``, ``polylab.sim.sports_ws``): ``sports_ws_lag_s``: the
    scoreboard's final → the channel's final (the venue's own result lag, s);
    ``sports_ws_ping_s``: the server's text ``ping`` period (5 s on the venue);
    ``sports_ws_pong_timeout_s``: a client that has not answered a ``ping`` with ``pong`` this
    long after it was sent is closed (10 s on the venue); ``sports_ws_tick_s``: how often the
    scoreboard is checked for changes to broadcast.

    Feeds: ``faults`` (``polylab.sim.faults.FaultConfig``, all off by default);
    ``max_assets_per_connection`` on the market WebSocket (500, as documented);
    ``ws_max_buffered_bytes``: a WebSocket client with more than this many bytes waiting
    (queued frames + socket buffer) is dropped as a slow consumer.

    Accounts: ``require_approval`` off (the default) starts every address funded and approved;
    on, a new address has its collateral but zero allowance, so its orders fail with
    ``not enough balance / allowance`` until it approves (``POST /sim/approve``, the stand-in
    for the on-chain approvals) and calls ``/balance-allowance/update`` (protocol doc §0.1).

    Preflight knobs (``polylab doctor`` tests): ``time_offset_s`` is added to what ``/time``
    reports (s; the exchange's own clock and auth checks are unchanged), as if the venue's clock
    and the client's disagreed; ``geo_blocked`` makes the geoblock check answer
    ``"blocked": true``.
    """

    seed: int = 7
    chain_id: PosInt = 137
    starting_collateral_micros: NonNegInt = 10_000 * MICROS
    order_version: Literal["v1", "v2"] = "v2"
    gtd_buffer_s: NonNegInt = 60
    auto_tick_size: bool = True
    mined_delay_s: NonNeg = 0.5
    confirmed_delay_s: NonNeg = 1.5
    auth_max_skew_s: NonNegInt = 300
    heartbeat_timeout_s: NonNeg = 10.0
    max_orders_per_request: PosInt = 15
    max_tokens_per_request: PosInt = 500
    page_size: PosInt = 100
    generator: bool = True
    binary_markets: NonNegInt = 6
    negrisk_events: NonNegInt = 2
    negrisk_outcomes: tuple[PosInt, PosInt] = (3, 8)
    sports_games: NonNegInt = 3
    v2_share: Annotated[float, msgspec.Meta(ge=0.0, le=1.0)] = 0.25
    steps_per_s: Annotated[float, msgspec.Meta(gt=0.0)] = 120.0
    sports_lag_s: NonNeg = 2.0
    game_delay_s: tuple[NonNeg, NonNeg] = (5.0, 20.0)
    game_length_s: tuple[NonNeg, NonNeg] = (30.0, 90.0)
    faults: FaultConfig = msgspec.field(default_factory=FaultConfig)
    max_assets_per_connection: PosInt = 500
    ws_max_buffered_bytes: PosInt = DEFAULT_MAX_BUFFERED_BYTES
    require_approval: bool = False
    sports_ws_lag_s: NonNeg = 0.0
    sports_ws_ping_s: Annotated[float, msgspec.Meta(gt=0.0)] = 5.0
    sports_ws_pong_timeout_s: Annotated[float, msgspec.Meta(gt=0.0)] = 10.0
    sports_ws_tick_s: Annotated[float, msgspec.Meta(gt=0.0)] = 0.05
    time_offset_s: float = 0.0
    geo_blocked: bool = False

    @property
    def server_secret(self) -> bytes:
        """Key of the deterministic API-key derivation (same seed → same credentials)."""
        return hashlib.sha256(f"polylab-sim|api-creds|{self.seed}".encode()).digest()


def load_config(path: str | Path, **overrides: Any) -> SimConfig:
    """Read a ``SimConfig`` from a ``.json`` or ``.toml`` file; ``overrides`` replace fields.

    ``ConfigError`` names the file and the offending field on any problem.
    """
    p = Path(path)
    kind = p.suffix.lower()
    if kind not in (".json", ".toml"):
        raise ConfigError(f"simulator config {p} must be .json or .toml")
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read simulator config {p}: {exc}") from None
    try:
        raw = msgspec.toml.decode(data) if kind == ".toml" else msgspec.json.decode(data)
        if not isinstance(raw, dict):
            raise ConfigError(f"simulator config {p} must hold an object/table at the top")
        raw.update(overrides)
        return msgspec.convert(raw, SimConfig)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise ConfigError(f"invalid simulator config {p}: {exc}") from None

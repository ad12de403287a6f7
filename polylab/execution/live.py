"""Live execution: sign CLOB V2 orders off the event loop, send every leg of a set in parallel.

Safe by default: ``dry_run`` (the ``DRY_RUN`` default) builds and signs every order and logs its
hash, but sends nothing; sending needs ``dry_run=False`` *and* an explicit ``live`` flag *and* a
key. Credentials come from ``POLY_PRIVATE_KEY``, ``POLY_API_KEY``, ``POLY_API_SECRET``,
``POLY_API_PASSPHRASE`` (environment or a ``.env`` file) and are never logged or stored.

Every accepted intent ends in exactly one ``ExecutionResult``: an order that cannot be built or
signed is ``rejected`` (nothing sent), a refusal or a certainly-unsent request is ``rejected``,
and a leg without an answer in ``order_timeout_ms`` (or with a 5xx, a dropped connection, any
exception while sending) is resolved by asking the venue (``live_resolve``): filled, partial or
unfilled as it says, ``unknown`` only when it cannot be read by ``resolve_timeout_ms``.

Orders are built on the book's *current* tick size (after a ``tick_size_change``), and a
FOK/FAK BUY is sent as the collateral that buys its size at the current book
(``amounts.buy_budget``), as the venue reads it (protocol doc §4.4). A set whose legs filled
unevenly is held: the merge step turns the complete part into collateral, the excess is listed
in ``ExecutionResult.residual``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import msgspec
from dotenv import dotenv_values

from polylab.clock import Clock
from polylab.execution.auth import ApiCreds
from polylab.execution.live_exec import LiveError, LiveLegs
from polylab.market import MarketCatalog
from polylab.secret import Secret

if TYPE_CHECKING:
    from polylab.execution.rest_async import AsyncClobRest
    from polylab.execution.signer import OrderSigner

__all__ = ["Credentials", "LiveConfig", "LiveError", "LiveExecutor", "load_credentials"]

log = logging.getLogger(__name__)


class LiveConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Live executor settings.

    ``url``: CLOB REST base URL (the local simulator by default). ``dry_run``: sign and log, do
    not send (``DRY_RUN``, default true). ``chain_id``: 137 on the venue. ``order_timeout_ms``:
    per-leg wait for the answer (ms); ``resolve_timeout_ms`` / ``resolve_interval_ms``: how long
    and how often to ask the venue about an order without an answer (ms); together with
    ``order_timeout_ms`` they stay under the runners' 5 s drain at the end of a session.
    ``signature_type``: 0 EOA, 1 proxy, 2 safe, 3 deposit wallet; ``funder``: the address
    holding funds when it is not the key's. ``leg_policy``: "hold" keeps what filled of an uneven
    set (the merge step turns complete sets into collateral; the excess is the result's
    ``residual``); live unwinding is not automated.
    """

    url: str = "http://127.0.0.1:8765"
    dry_run: bool = True
    chain_id: int = 137
    order_timeout_ms: int = 500
    resolve_timeout_ms: int = 4_000
    resolve_interval_ms: int = 200
    signature_type: int = 0
    funder: str | None = None
    leg_policy: Literal["hold"] = "hold"


class Credentials:
    """The wallet key (a ``Secret``) and L2 API credentials; nothing of them shows in a repr
    or a log, and pickling is refused."""

    __slots__ = ("creds", "private_key")

    def __init__(self, private_key: str | Secret, creds: ApiCreds | None) -> None:
        self.private_key = Secret(private_key)
        self.creds = creds

    def __repr__(self) -> str:
        return f"Credentials(key=<redacted>, api_key={'set' if self.creds else 'unset'})"

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("credentials are not picklable")


def load_credentials(
    env: Mapping[str, str] | None = None, env_file: str | Path | None = ".env"
) -> Credentials | None:
    """Credentials from ``env`` (default ``os.environ``) overlaid on ``env_file`` if it exists;
    None without ``POLY_PRIVATE_KEY``."""
    values: dict[str, str | None] = {}
    if env_file is not None and Path(env_file).is_file():
        values.update(dotenv_values(env_file))
    values.update(env if env is not None else os.environ)
    key = values.get("POLY_PRIVATE_KEY")
    if not key:
        return None
    api = [values.get(k) for k in ("POLY_API_KEY", "POLY_API_SECRET", "POLY_API_PASSPHRASE")]
    creds = None
    if all(api):
        creds = ApiCreds(
            api_key=str(api[0]), secret=Secret(str(api[1])), passphrase=Secret(str(api[2]))
        )
    return Credentials(key, creds)


class LiveExecutor(LiveLegs):
    """The ``Executor`` for the venue (or the simulator): orders built on the current books at
    submit, signed in a worker thread, legs sent in parallel, results collected by ``poll``.
    ``submit`` must be called on the event loop."""

    name = "live"

    def __init__(
        self,
        config: LiveConfig,
        catalog: MarketCatalog,
        signer: OrderSigner,
        rest: AsyncClobRest | None,
        *,
        live: bool = False,
        clock: Clock | None = None,
    ) -> None:
        if not config.dry_run and not live:
            raise LiveError(
                "sending orders needs the explicit live flag (--live); "
                "without it polylab stays in DRY_RUN"
            )
        if not config.dry_run and rest is None:
            raise LiveError("sending orders needs a REST client with L2 credentials")
        super().__init__(config, catalog, signer, rest, clock)

    def __repr__(self) -> str:
        return f"LiveExecutor(dry_run={self.config.dry_run}, signer={self.signer!r})"

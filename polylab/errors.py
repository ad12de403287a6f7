"""polylab's error tree, sorted by what the operator (or the calling code) does about it.

::

    PolylabError                      base of every error polylab raises on purpose
     ├── ConfigError (ValueError)     a setting is wrong: fix the config, nothing to retry
     ├── InputError (ValueError)      a flag, file, URL or key the operator gave cannot be used
     ├── DiscoveryError               Gamma data polylab cannot turn into a Market: skip it, report
     │    └── MarketVersionError      ``version`` missing or unknown ("v1"/"v2" only)
     └── ClobError                    a CLOB REST call failed
          ├── TransportError          no HTTP answer at all             → retry with backoff
          │    ├── ClobConnectError   could not connect / connection dropped
          │    └── ClobTimeout        connect/read/write/pool timeout
          ├── ClobHTTPError           the venue answered an error status (``status``, ``message``)
          │    ├── ServerError        5xx                               → retry with backoff
          │    ├── RateLimited        429 (``retry_after_s``)           → wait, then retry
          │    ├── AuthError          401/403 bad key, signature, clock → fix credentials/clock
          │    ├── NotFound           404 (no book for a token, unknown market)
          │    └── BadRequest         other 4xx: the request is invalid → fix the input, never retry
          ├── OrderRejected           the exchange refused an order (``error_msg``) → never retry
          └── ProtocolError           a 2xx answer we cannot parse      → report, never retry

``polylab.execution.rest.should_retry`` is the single retry policy: it answers from this tree
alone (``TransportError``, ``ServerError`` and ``RateLimited`` are retried; everything else is
final). Messages carry the context needed to act ("GET /book 404: No orderbook exists ...").
Secrets never go into an error message.
"""

from __future__ import annotations

__all__ = [
    "AuthError",
    "BadRequest",
    "ClobConnectError",
    "ClobError",
    "ClobHTTPError",
    "ClobTimeout",
    "ConfigError",
    "DiscoveryError",
    "InputError",
    "MarketVersionError",
    "NotFound",
    "OrderRejected",
    "PolylabError",
    "ProtocolError",
    "RateLimited",
    "ServerError",
    "TransportError",
]


class PolylabError(Exception):
    """Base of every error polylab raises on purpose."""


class ConfigError(PolylabError, ValueError):
    """A configuration value is invalid; the message names the field and the value."""


class InputError(PolylabError, ValueError):
    """A value the operator gave (a flag, a file, a URL, a key) cannot be used; the message
    names the problem and the value (never a secret's value: its variable name instead). The
    CLI prints it as one line and exits 2."""


class DiscoveryError(PolylabError):
    """A Gamma market or event cannot be turned into a ``Market`` (the message says why)."""

    def __init__(self, message: str, market_id: str = "") -> None:
        super().__init__(message)
        self.market_id = market_id


class MarketVersionError(DiscoveryError):
    """A Gamma market has no ``version`` or one polylab does not know (only "v1"/"v2")."""


class ClobError(PolylabError):
    """A CLOB REST call failed; ``method``/``path`` say which."""

    def __init__(self, message: str, *, method: str = "", path: str = "") -> None:
        super().__init__(message)
        self.method = method
        self.path = path


class TransportError(ClobError):
    """No HTTP response: the request may or may not have reached the venue."""


class ClobConnectError(TransportError):
    """Connecting failed or the connection dropped mid-request."""


class ClobTimeout(TransportError):
    """A connect, read, write or pool timeout."""


class ClobHTTPError(ClobError):
    """The venue answered with an error status; ``message`` is its ``{"error": …}`` text."""

    def __init__(self, status: int, message: str, *, method: str = "", path: str = "") -> None:
        super().__init__(f"{method} {path} {status}: {message}", method=method, path=path)
        self.status = status
        self.message = message


class ServerError(ClobHTTPError):
    """5xx: the venue failed (or is in maintenance); worth retrying after a pause."""


class RateLimited(ClobHTTPError):
    """429: too many requests; ``retry_after_s`` is the venue's ``Retry-After`` (None if absent)."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        method: str = "",
        path: str = "",
        retry_after_s: float | None = None,
    ) -> None:
        super().__init__(status, message, method=method, path=path)
        self.retry_after_s = retry_after_s


class AuthError(ClobHTTPError):
    """401/403: unknown API key, bad signature, or a clock too far from the venue's."""


class NotFound(ClobHTTPError):
    """404: e.g. no order book exists for the token id."""


class BadRequest(ClobHTTPError):
    """Another 4xx: the request itself is invalid; retrying cannot help."""


class OrderRejected(ClobError):
    """The exchange refused an order (``success`` false, a non-empty ``errorMsg``, or a 400 on
    ``POST /order``). ``error_msg`` is the venue's reason (e.g. ``INVALID_ORDER_MIN_TICK_SIZE``),
    ``status`` the HTTP status it came with, ``order_id`` the order hash when known."""

    def __init__(
        self,
        error_msg: str,
        *,
        status: int = 200,
        order_id: str = "",
        method: str = "POST",
        path: str = "/order",
    ) -> None:
        super().__init__(f"order rejected ({status}): {error_msg}", method=method, path=path)
        self.error_msg = error_msg
        self.status = status
        self.order_id = order_id


class ProtocolError(ClobError):
    """A successful HTTP answer whose body does not have the expected shape."""

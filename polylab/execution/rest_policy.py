"""Retry policy and error mapping of the CLOB REST client (one place decides what is retried).

``should_retry(error)`` answers from the error class alone (``polylab.errors``):
``TransportError``, ``ServerError`` (5xx) and ``RateLimited`` (429) are retried, with full-jitter
exponential backoff (``retry_delay_s``) and never sooner than a 429's ``Retry-After``; anything
else (validation 4xx, auth, order rejects, unparseable answers) is final.
"""

from __future__ import annotations

import random

import httpx
import msgspec

from polylab.errors import (
    AuthError,
    BadRequest,
    ClobConnectError,
    ClobHTTPError,
    NotFound,
    RateLimited,
    ServerError,
    TransportError,
)

__all__ = [
    "ClobNotSent",
    "RestConfig",
    "RestStats",
    "http_error",
    "retry_delay_s",
    "should_retry",
]


class ClobNotSent(ClobConnectError):
    """The request certainly never reached the venue (connection refused, connect or pool
    timeout): safe to retry, and an order that got this was certainly not placed."""


class RestConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """REST client settings.

    ``url``: CLOB root ("http://127.0.0.1:PORT" for the simulator). ``timeout_s``: read/write/
    pool timeout per attempt (s); ``connect_timeout_s``: TCP connect timeout (s).
    ``max_attempts``: tries per call including the first. ``backoff_min_ms``/``backoff_max_ms``:
    exponential backoff range (full jitter). ``max_retry_after_s``: longest ``Retry-After`` we
    honour (longer answers are raised instead). ``max_connections``: pool size.
    ``chain_id``: for L1 signatures (137 Polygon).
    """

    url: str
    timeout_s: float = 10.0
    connect_timeout_s: float = 5.0
    max_attempts: int = 4
    backoff_min_ms: int = 50
    backoff_max_ms: int = 2_000
    max_retry_after_s: float = 30.0
    max_connections: int = 20
    chain_id: int = 137


class RestStats(msgspec.Struct):
    """Counters for metrics: requests sent (attempts), retries, and final errors by class."""

    requests: int = 0
    retries: int = 0
    errors: int = 0
    rate_limited: int = 0
    server_errors: int = 0
    transport_errors: int = 0


def should_retry(error: BaseException, *, resend: bool = True) -> bool:
    """The retry policy: True for ``TransportError``, ``ServerError`` and ``RateLimited``.

    Validation errors (other 4xx), auth errors, order rejects and unparseable answers are final.
    ``resend`` False (posting an order): only what certainly was not processed is retried
    (``ClobNotSent``, 429); a timeout, a dropped connection or a 5xx may have placed the
    order, so the caller must ask the venue instead of sending it again.
    """
    if not resend:
        return isinstance(error, ClobNotSent | RateLimited)
    return isinstance(error, TransportError | ServerError | RateLimited)


def retry_delay_s(
    error: BaseException, attempt: int, config: RestConfig, rng: random.Random | None = None
) -> float:
    """Seconds to wait before retry number ``attempt`` (1-based): full-jitter exponential
    backoff in ``[0, min(max, min·2^(attempt-1))]``, and never less than a 429's Retry-After."""
    cap = min(config.backoff_max_ms, config.backoff_min_ms * (1 << min(attempt - 1, 20)))
    delay = (rng or random).uniform(config.backoff_min_ms, max(cap, config.backoff_min_ms)) / 1e3
    if isinstance(error, RateLimited) and error.retry_after_s is not None:
        delay = max(delay, error.retry_after_s)
    return delay


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # an HTTP-date: fall back to our own backoff


def _error_text(r: httpx.Response) -> str:
    try:
        body = msgspec.json.decode(r.content)
    except msgspec.DecodeError:
        return r.text[:300]
    if isinstance(body, dict):
        for k in ("error", "errorMsg", "message"):
            if isinstance(body.get(k), str):
                return str(body[k])
    return r.text[:300]


def http_error(r: httpx.Response, method: str, path: str) -> ClobHTTPError:
    """The ``ClobHTTPError`` subclass for a non-2xx response."""
    status, msg = r.status_code, _error_text(r)
    if status == 429:
        return RateLimited(
            status,
            msg,
            method=method,
            path=path,
            retry_after_s=_retry_after(r.headers.get("Retry-After")),
        )
    if status >= 500:
        return ServerError(status, msg, method=method, path=path)
    if status in (401, 403):
        return AuthError(status, msg, method=method, path=path)
    if status == 404:
        return NotFound(status, msg, method=method, path=path)
    if 400 <= status < 500:
        return BadRequest(status, msg, method=method, path=path)
    return ClobHTTPError(status, msg, method=method, path=path)

"""Start-up retries: a session's first calls (market discovery, API-key creation or derivation)
ride out a venue that is briefly failing, with the REST client's policy.

``is_transient`` says what is worth another try: whatever ``rest_policy.should_retry`` retries
(connection errors, timeouts, 5xx, 429), plus the same causes behind a ``DiscoveryError``
(Gamma discovery wraps them: an ``httpx`` transport error as its cause, or ``HTTP 5xx`` / ``429``
in its message). Bad answers, 4xx and auth errors are final. Delays are
``rest_policy.retry_delay_s`` (full-jitter exponential backoff, ``RestConfig.backoff_*``), at most
``RestConfig.max_attempts`` tries in all.
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
from collections.abc import Awaitable, Callable
from typing import TypeVar

import httpx

from polylab.errors import DiscoveryError
from polylab.execution.rest_policy import RestConfig, retry_delay_s, should_retry

__all__ = ["is_transient", "with_retries"]

log = logging.getLogger(__name__)

T = TypeVar("T")

_STATUS = re.compile(r"\bHTTP (\d{3})\b")


def is_transient(exc: BaseException) -> bool:
    """True when ``exc`` is a failure a later try may not see (see the module docstring)."""
    if should_retry(exc) or isinstance(exc, ConnectionError):
        return True
    if isinstance(exc, DiscoveryError):
        cause = exc.__cause__
        if isinstance(cause, httpx.TransportError) or (cause is not None and should_retry(cause)):
            return True
        m = _STATUS.search(str(exc))
        return m is not None and (int(m.group(1)) >= 500 or m.group(1) == "429")
    return False


async def with_retries(
    call: Callable[[], Awaitable[T]],
    what: str,
    config: RestConfig | None = None,
    rng: random.Random | None = None,
) -> T:
    """``await call()``, tried again after transient failures; the last failure is raised."""
    cfg = config if config is not None else RestConfig(url="")
    attempt = 0
    while True:
        attempt += 1
        try:
            return await call()
        except Exception as exc:
            if attempt >= cfg.max_attempts or not is_transient(exc):
                raise
            delay = retry_delay_s(exc, attempt, cfg, rng)
            log.info(
                "%s failed (%s); try %d of %d in %.2f s",
                what,
                exc,
                attempt + 1,
                cfg.max_attempts,
                delay,
            )
            await asyncio.sleep(delay)

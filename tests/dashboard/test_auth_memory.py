"""The in-process session store (``MemoryAuthStore``, for ``polylab run --dashboard`` without
Redis) keeps the Redis store's rules: the same scenario gives the same outcomes on both."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import redis.asyncio as aioredis

from polylab.dashboard.auth import (
    OTP_HEADER,
    AuthFailed,
    AuthSettings,
    AuthStore,
    LockedOut,
    MemoryAuthStore,
    OtpRequests,
    otp_request,
)

SECRET = b"s" * 40

Scenario = Callable[[AuthStore], Awaitable[Any]]


def _run(kind: str, redis_url: str, prefix: str, scenario: Scenario, **settings: Any) -> Any:
    cfg = AuthSettings(secret=SECRET, prefix=prefix, **settings)

    async def main() -> Any:
        store = (
            MemoryAuthStore(cfg)
            if kind == "memory"
            else AuthStore(aioredis.Redis.from_url(redis_url), cfg)
        )
        try:
            return await scenario(store)
        finally:
            await store.aclose()

    return asyncio.run(main())


async def _outcome(aw: Awaitable[Any]) -> str:
    try:
        await aw
    except LockedOut:
        return "locked"
    except AuthFailed as exc:
        return f"refused: {exc.reason}"
    return "ok"


async def _once_then_lockout(store: AuthStore) -> list[str]:
    out = []
    code = await store.issue_code()
    out.append(await _outcome(store.redeem_code(code, "a")))
    out.append(await _outcome(store.redeem_code(code, "a")))  # used once
    right = await store.issue_code()
    wrong = f"{(int(right) + 1) % 1_000_000:06d}"
    for _ in range(4):
        out.append(await _outcome(store.redeem_code(wrong, "b")))
    out.append(await _outcome(store.redeem_code(right, "b")))  # 5th try: the right code works
    for _ in range(5):
        out.append(await _outcome(store.redeem_code(wrong, "c")))
    other = await store.issue_code()
    out.append(await _outcome(store.redeem_code(other, "c")))  # locked: even the right code
    out.append(await _outcome(store.redeem_code(other, "d")))  # …which was not consumed
    return out


async def _revoke(store: AuthStore) -> list[str]:
    token = await store.redeem_code(await store.issue_code(), "a")
    session = await store.verify(token)
    fresh = await store.refresh(session)
    out = [await _outcome(store.verify(token)), await _outcome(store.verify(fresh))]
    await store.revoke(await store.verify(fresh))
    out.append(await _outcome(store.verify(fresh)))
    return out


async def _expiry(store: AuthStore) -> str:
    code = await store.issue_code()
    await asyncio.sleep(1.5)
    return await _outcome(store.redeem_code(code, "a"))


@pytest.mark.parametrize(
    "scenario", [_once_then_lockout, _revoke], ids=["once-and-lockout", "refresh-and-revoke"]
)
def test_memory_store_gives_the_redis_stores_outcomes(
    scenario: Scenario, redis_url: str, prefix: str
) -> None:
    on_redis = _run("redis", redis_url, prefix, scenario)
    in_memory = _run("memory", redis_url, prefix + "m:", scenario)
    assert in_memory == on_redis
    assert "ok" in on_redis and any(o != "ok" for o in on_redis)


def test_codes_expire_in_both_stores(redis_url: str, prefix: str) -> None:
    for kind in ("redis", "memory"):
        got = _run(kind, redis_url, prefix, _expiry, code_ttl_s=1)
        assert got.startswith("refused"), (kind, got)


def test_memory_store_holds_no_code_in_clear_and_forgets_what_expired() -> None:
    clock = [1000.0]
    store = MemoryAuthStore(AuthSettings(secret=SECRET, code_ttl_s=300), clock=lambda: clock[0])

    async def main() -> tuple[list[str], set[str], int]:
        codes = [await store.issue_code() for _ in range(3)]
        held = {k + v for k, (v, _) in store._keys.items()}
        clock[0] += 301
        await store.issue_code()  # a write purges what expired
        return codes, held, len(store._keys)

    codes, held, left = asyncio.run(main())
    assert not any(c in h for c in codes for h in held)
    assert left == 1


def test_otp_requests_need_the_secret_a_fresh_stamp_and_a_new_nonce() -> None:
    check = OtpRequests(SECRET)
    now = time.time()
    good = otp_request(SECRET, now)
    check.check(good, now)
    for value, why in [
        (good, "already used"),
        (otp_request(b"t" * 40, now), "not signed"),
        (otp_request(SECRET, now - 120), "too old"),
        ("1.2.3", "malformed"),
        (None, "malformed"),
    ]:
        with pytest.raises(AuthFailed, match=why):
            check.check(value, now)
    assert OTP_HEADER.islower()

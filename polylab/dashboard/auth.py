"""Dashboard auth: one-time codes in Redis, JWT sessions, lockout and revocation.

- ``issue_code`` makes a 6-digit code for the operator's terminal. Redis holds only
  ``HMAC-SHA256(secret, code)`` as the key name (TTL ``code_ttl_s``, 300 s), so reading Redis
  without the secret does not give the code (10⁶ codes are trivial to hash, but not to HMAC).
- ``redeem_code`` takes the key with ``GETDEL``: a code works once, even for two racing logins.
  Each failure counts against the client (``fail:<client>``, TTL ``lockout_s``); at
  ``max_failures`` the client is locked out, and while locked even a right code is refused
  (and not consumed), so guessing cannot win.
- Sessions are JWTs (HS256 only: the header's ``alg`` is checked before anything else, so
  ``none`` and every other algorithm are refused), ``token_ttl_s`` (900 s) long, with a ``jti``
  and ``auth_time`` (when the code was redeemed, s since the epoch). ``refresh`` swaps a valid
  token for a new one with the same ``auth_time``; ``revoke`` puts the ``jti`` on a deny-list
  whose TTL is the token's remaining lifetime.
- A control (kill switch, resume) needs ``auth_time`` no older than ``fresh_s`` (300 s).

Nothing secret goes into Redis, a log line or an error message: codes and tokens appear only
as the HMAC key and the ``jti``.

``MemoryAuthStore`` keeps the same keys with the same rules (HMAC-named codes with their TTL,
taken once, failure counters and lockout, the deny-list) in a dict of the process, for a
dashboard served inside ``polylab run --dashboard`` on the in-process bus (no Redis). It lives
and dies with that process: codes, lockouts and revocations do not survive a restart, and
tokens signed before a restart stay valid until they expire (as with Redis, the secret decides).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jwt
import redis.asyncio as aioredis

from polylab.errors import ConfigError

__all__ = [
    "ALGORITHM",
    "OTP_HEADER",
    "AuthFailed",
    "AuthSettings",
    "AuthStore",
    "LockedOut",
    "MemoryAuthStore",
    "OtpRequests",
    "Session",
    "code_key",
    "load_secret",
    "otp_request",
]

log = logging.getLogger(__name__)

ALGORITHM = "HS256"
MIN_SECRET_LEN = 32
_CODE_RE = re.compile(r"\A[0-9]{6}\Z")
_REDEEM = """
local n = tonumber(redis.call('GET', KEYS[1]) or '0')
if n >= tonumber(ARGV[1]) then return {-1, redis.call('TTL', KEYS[1])} end
if redis.call('GETDEL', KEYS[2]) then
  redis.call('DEL', KEYS[1])
  return {1, 0}
end
n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('EXPIRE', KEYS[1], ARGV[2]) end
return {0, n}
"""
"""KEYS: the client's failure counter, the code's key. Returns {-1, ttl} locked out,
{1, 0} code taken, {0, failures} refused."""


class AuthFailed(Exception):
    """A login, token or control was refused; ``reason`` is safe to show (no secret)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class LockedOut(AuthFailed):
    """Too many failed codes from this client; ``retry_after_s`` until the counter expires."""

    def __init__(self, retry_after_s: int) -> None:
        super().__init__(f"too many failed codes; locked for {retry_after_s} s")
        self.retry_after_s = retry_after_s


def load_secret(value: str | None) -> bytes:
    """``DASHBOARD_JWT_SECRET`` as bytes; ``ConfigError`` if missing or shorter than 32
    characters (the message gives the length, never the value)."""
    if not value:
        raise ConfigError("DASHBOARD_JWT_SECRET is not set (use 32+ random characters)")
    if len(value) < MIN_SECRET_LEN:
        raise ConfigError(
            f"DASHBOARD_JWT_SECRET is {len(value)} characters; at least {MIN_SECRET_LEN} needed"
        )
    return value.encode()


@dataclass(frozen=True)
class AuthSettings:
    """Times in seconds. ``prefix`` goes before every Redis key (tests, side-by-side runs)."""

    secret: bytes
    prefix: str = ""
    code_ttl_s: int = 300
    token_ttl_s: int = 900
    fresh_s: int = 300
    max_failures: int = 5
    lockout_s: int = 900
    max_session_s: int = 12 * 3600

    def __repr__(self) -> str:  # never print the secret
        return f"AuthSettings(prefix={self.prefix!r}, token_ttl_s={self.token_ttl_s})"


@dataclass(frozen=True)
class Session:
    """A verified token: ``jti``, ``exp`` and ``auth_time`` in s since the epoch."""

    jti: str
    sub: str
    exp: int
    auth_time: int

    def fresh(self, now: float, fresh_s: int) -> bool:
        """The code behind this session was redeemed no more than ``fresh_s`` ago."""
        return now - self.auth_time <= fresh_s


def code_key(settings: AuthSettings, code: str) -> str:
    """The Redis key of ``code``: its HMAC-SHA256 under the JWT secret (hex)."""
    mac = hmac.new(settings.secret, code.encode(), hashlib.sha256).hexdigest()
    return f"{settings.prefix}dash:otp:{mac}"


def _client_key(settings: AuthSettings, client: str) -> str:
    # The client's address is hashed too: Redis needs a stable name, not the address.
    digest = hmac.new(settings.secret, client.encode(), hashlib.sha256).hexdigest()[:32]
    return f"{settings.prefix}dash:fail:{digest}"


class AuthStore:
    """Codes, failure counters and the deny-list in one Redis (``redis.asyncio`` client)."""

    def __init__(self, client: aioredis.Redis, settings: AuthSettings) -> None:
        self.redis = client
        self.settings = settings
        self._redeem = client.register_script(_REDEEM)

    # -- one-time codes ---------------------------------------------------------------------
    # -- the key-value operations (Redis here; a dict in ``MemoryAuthStore``) ---------------
    async def _put_new(self, key: str, value: str, ttl_s: int) -> bool:
        """Store ``key`` for ``ttl_s`` s unless it exists; True when stored."""
        return bool(await self.redis.set(key, value, nx=True, ex=ttl_s))

    async def _take(self, fail_key: str, code_key_: str) -> tuple[int, int]:
        """The redeem step, atomically: {-1, ttl} locked out, {1, 0} code taken (and the
        failures cleared), {0, failures} refused (and counted)."""
        status, value = await self._redeem(
            keys=[fail_key, code_key_],
            args=[self.settings.max_failures, self.settings.lockout_s],
        )
        return int(status), int(value)

    async def _exists(self, key: str) -> bool:
        return bool(await self.redis.exists(key))

    async def _put(self, key: str, value: str, ttl_s: int) -> None:
        await self.redis.set(key, value, ex=ttl_s)

    async def aclose(self) -> None:
        """Close the Redis client (the app does this when it stops)."""
        await self.redis.aclose()

    async def issue_code(self) -> str:
        """A fresh 6-digit code, stored hashed for ``code_ttl_s`` seconds."""
        for _ in range(20):
            code = f"{secrets.randbelow(1_000_000):06d}"
            stored = await self._put_new(
                code_key(self.settings, code), str(int(time.time())), self.settings.code_ttl_s
            )
            if stored:
                log.info("dashboard one-time code issued (valid %d s)", self.settings.code_ttl_s)
                return code
        raise AuthFailed("could not find an unused code (too many codes outstanding)")

    async def redeem_code(self, code: str, client: str) -> str:
        """Exchange ``code`` for a new token (JWT); ``AuthFailed`` / ``LockedOut`` otherwise.

        One Lua script checks the client's lockout, takes the code (``GETDEL``) and counts a
        failure, atomically: parallel guesses cannot slip past the limit between the check
        and the count."""
        code = code.strip()
        fail_key = _client_key(self.settings, client)
        status, value = await self._take(fail_key, code_key(self.settings, code))
        if status == -1:
            log.warning("dashboard login refused: client locked out (%d s left)", value)
            raise LockedOut(max(int(value), 1))
        if status == 0:
            reason = (
                "wrong, expired or already used code"
                if _CODE_RE.match(code)
                else "a code is 6 digits"
            )
            log.warning("dashboard login refused (%s), failure %d for this client", reason, value)
            if int(value) >= self.settings.max_failures:
                raise LockedOut(self.settings.lockout_s)
            raise AuthFailed(reason)
        now = int(time.time())
        token = self._mint(now, now, "operator")
        log.info("dashboard login ok")
        return token

    # -- tokens -----------------------------------------------------------------------------
    def _mint(self, now: int, auth_time: int, sub: str) -> str:
        claims = {
            "sub": sub,
            "iat": now,
            "exp": now + self.settings.token_ttl_s,
            "jti": uuid.uuid4().hex,
            "auth_time": auth_time,
        }
        return jwt.encode(claims, self.settings.secret, algorithm=ALGORITHM)

    async def verify(self, token: str | None) -> Session:
        """The session of a valid, unexpired, unrevoked HS256 token; ``AuthFailed`` else."""
        if not token:
            raise AuthFailed("not logged in")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError:
            raise AuthFailed("malformed token") from None
        if header.get("alg") != ALGORITHM:  # 'none', RS256, HS512…: refused before decoding
            raise AuthFailed(f"token algorithm {str(header.get('alg'))[:10]!r} not accepted")
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                self.settings.secret,
                algorithms=[ALGORITHM],
                options={"require": ["exp", "iat", "jti", "sub", "auth_time"]},
            )
        except jwt.ExpiredSignatureError:
            raise AuthFailed("session expired") from None
        except jwt.InvalidTokenError:
            raise AuthFailed("invalid token") from None
        jti = str(claims["jti"])
        if await self._exists(f"{self.settings.prefix}dash:revoked:{jti}"):
            raise AuthFailed("session ended (logged out)")
        return Session(
            jti=jti,
            sub=str(claims["sub"]),
            exp=int(claims["exp"]),
            auth_time=int(claims["auth_time"]),
        )

    async def revoke(self, session: Session) -> None:
        """Deny ``session``'s ``jti`` until its token would have expired anyway."""
        left = max(session.exp - int(time.time()), 1)
        await self._put(f"{self.settings.prefix}dash:revoked:{session.jti}", "1", left)
        log.info("dashboard session %s… revoked", session.jti[:8])

    async def refresh(self, session: Session) -> str:
        """A new token for a valid ``session`` (same ``auth_time``); the old one is revoked.
        Refused once the login is older than ``max_session_s``."""
        now = int(time.time())
        if now - session.auth_time > self.settings.max_session_s:
            raise AuthFailed("session too old; log in with a new code")
        await self.revoke(session)
        return self._mint(now, session.auth_time, session.sub)


class MemoryAuthStore(AuthStore):
    """``AuthStore`` on a dict of this process instead of Redis (see the module docstring):
    same key names, TTLs, single use, lockout and deny-list. Every operation runs without an
    ``await`` inside, so on one event loop each is atomic, as the Lua script is in Redis.
    Expired keys are purged as new ones are written, so the dict stays as small as Redis's
    keyspace would."""

    def __init__(self, settings: AuthSettings, clock: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings
        self._keys: dict[str, tuple[str, float]] = {}
        self._clock = clock
        self._next_purge = 0.0

    def _get(self, key: str) -> str | None:
        item = self._keys.get(key)
        if item is None:
            return None
        if item[1] <= self._clock():
            del self._keys[key]
            return None
        return item[0]

    def _set(self, key: str, value: str, ttl_s: int) -> None:
        now = self._clock()
        if now >= self._next_purge:  # at most once a second: drop what has expired
            self._next_purge = now + 1.0
            for k in [k for k, (_, exp) in self._keys.items() if exp <= now]:
                del self._keys[k]
        self._keys[key] = (value, now + ttl_s)

    async def _put_new(self, key: str, value: str, ttl_s: int) -> bool:
        if self._get(key) is not None:
            return False
        self._set(key, value, ttl_s)
        return True

    async def _take(self, fail_key: str, code_key_: str) -> tuple[int, int]:
        st = self.settings
        failures = int(self._get(fail_key) or 0)
        if failures >= st.max_failures:
            return -1, max(int(self._keys[fail_key][1] - self._clock()), 1)
        if self._get(code_key_) is not None:
            del self._keys[code_key_]
            self._keys.pop(fail_key, None)
            return 1, 0
        failures += 1
        if failures == 1:
            self._set(fail_key, "1", st.lockout_s)
        else:  # INCR keeps the TTL set by the first failure
            self._keys[fail_key] = (str(failures), self._keys[fail_key][1])
        return 0, failures

    async def _exists(self, key: str) -> bool:
        return self._get(key) is not None

    async def _put(self, key: str, value: str, ttl_s: int) -> None:
        self._set(key, value, ttl_s)

    async def aclose(self) -> None:
        self._keys.clear()


OTP_HEADER = "x-polylab-otp-request"
"""The header of a request for a code to a dashboard served inside ``polylab run`` (``POST
/otp``): ``<unix s>.<nonce>.<HMAC-SHA256(secret, "polylab-otp:<unix s>.<nonce>")>``."""
OTP_REQUEST_MAX_AGE_S = 30


def otp_request(secret: bytes, now: float | None = None) -> str:
    """A signed, single-use request for a one-time code (``OTP_HEADER``'s value): proves the
    caller holds ``DASHBOARD_JWT_SECRET`` without sending it."""
    stamp = f"{int(time.time() if now is None else now)}.{secrets.token_hex(16)}"
    mac = hmac.new(secret, f"polylab-otp:{stamp}".encode(), hashlib.sha256).hexdigest()
    return f"{stamp}.{mac}"


class OtpRequests:
    """Checks ``otp_request`` values: a valid HMAC, at most ``OTP_REQUEST_MAX_AGE_S`` old (or
    ahead), and each nonce once (a replayed request is refused)."""

    def __init__(self, secret: bytes) -> None:
        self._secret = secret
        self._seen: dict[str, float] = {}

    def check(self, value: str | None, now: float | None = None) -> None:
        """``AuthFailed`` (reason safe to show) unless ``value`` is a fresh, unused request."""
        t = time.time() if now is None else now
        parts = (value or "").split(".")
        if len(parts) != 3 or not parts[0].isdigit() or len(parts[1]) != 32:
            raise AuthFailed("malformed code request")
        stamp = f"{parts[0]}.{parts[1]}"
        mac = hmac.new(self._secret, f"polylab-otp:{stamp}".encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(mac, parts[2]):
            raise AuthFailed("code request not signed with this dashboard's secret")
        if abs(t - int(parts[0])) > OTP_REQUEST_MAX_AGE_S:
            raise AuthFailed("code request too old (clocks apart?)")
        for n in [n for n, exp in self._seen.items() if exp < t]:
            del self._seen[n]
        if parts[1] in self._seen:
            raise AuthFailed("code request already used")
        self._seen[parts[1]] = t + 2 * OTP_REQUEST_MAX_AGE_S

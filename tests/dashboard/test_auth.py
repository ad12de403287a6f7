"""Dashboard auth over real HTTP and the real Redis: one-time codes, JWT sessions, lockout,
revocation, and nothing secret in Redis, logs or pages."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import time
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import jwt
import pytest
import redis
import redis.asyncio as aioredis
from dashboard.helpers import Dash, Served, free_port, state, wait_for

from polylab.bus import STATE, InProcessBus
from polylab.dashboard.app import COOKIE, create_app
from polylab.dashboard.auth import AuthSettings, AuthStore, code_key

PROTECTED_GET = ["/", "/api/state", "/api/session", "/events", "/static/app.js"]
PROTECTED_GET += ["/static/plotly.min.js"]


def _claims(dash: Dash | None, **kw: Any) -> dict[str, Any]:
    now = int(time.time())
    base = {"sub": "operator", "iat": now, "exp": now + 900, "jti": "x" * 32, "auth_time": now}
    return base | kw


def _with_token(dash: Dash, token: str) -> httpx.Client:
    c = dash.client()
    c.cookies.set(COOKIE, token)
    return c


def _refused(dash: Dash, token: str) -> None:
    """``token`` opens nothing: API and stream 401, the page is the login form."""
    with _with_token(dash, token) as c:
        assert c.get("/api/state").status_code == 401
        assert c.get("/events").status_code == 401
        page = c.get("/")
        assert page.status_code == 401
        assert 'action="/login"' in page.text


def test_a_code_logs_in_once_and_sets_a_strict_httponly_cookie(dash: Dash) -> None:
    code = dash.code()
    with dash.client() as c:
        r = c.post("/login", data={"code": code})
        assert r.status_code == 303
        cookie = r.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie
        assert "secure" not in cookie  # plain http on loopback; https adds it
        assert c.get("/api/session").json()["sub"] == "operator"
        assert c.get("/").status_code == 200
    with dash.client() as again:
        r = again.post("/login", data={"code": code})
        assert r.status_code == 401
        assert "already used" in r.text
        assert again.get("/api/state").status_code == 401


def test_a_wrong_code_is_refused(dash: Dash) -> None:
    real = dash.code()
    wrong = f"{(int(real) + 1) % 1_000_000:06d}"
    with dash.client() as c:
        assert c.post("/login", data={"code": wrong}).status_code == 401
        assert c.post("/login", data={"code": "12ab56"}).status_code == 401
        assert c.post("/login", data={}).status_code == 401
        assert c.get("/api/session").status_code == 401


def test_an_expired_code_is_refused(dash: Dash, redis_url: str) -> None:
    code = dash.code()
    r = redis.Redis.from_url(redis_url)
    key = code_key(dash.settings, code)
    assert 0 < r.ttl(key) <= 300  # stored with the 5-minute TTL
    r.pexpire(key, 1)
    wait_for(lambda: not r.exists(key), "the code to expire")
    r.close()
    with dash.client() as c:
        assert c.post("/login", data={"code": code}).status_code == 401


def test_brute_force_hits_the_lockout_even_with_the_right_code(dash: Dash, redis_url: str) -> None:
    code = dash.code()
    wrong = [f"{(int(code) + i) % 1_000_000:06d}" for i in range(1, 6)]
    with dash.client() as c:
        statuses = [c.post("/login", data={"code": w}).status_code for w in wrong]
        assert statuses == [401, 401, 401, 401, 429]
        r = c.post("/login", data={"code": code})
        assert r.status_code == 429 and int(r.headers["retry-after"]) > 0
        assert c.get("/api/state").status_code == 401
    # the lockout is per client: another loopback address still logs in, with the same
    # code (a locked client's attempt did not use it up)
    other = httpx.HTTPTransport(local_address="127.0.0.2")
    with dash.client(transport=other) as c2:
        assert c2.post("/login", data={"code": code}).status_code == 303


def test_a_tampered_token_is_refused(dash: Dash) -> None:
    c = dash.login()
    token = c.cookies[COOKIE]
    head, payload, sig = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["exp"] += 3600
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    _refused(dash, f"{head}.{forged}.{sig}")
    _refused(dash, token[:-2] + ("AA" if token[-2:] != "AA" else "BB"))
    _refused(dash, jwt.encode(_claims(dash), "another secret of 32+ characters!!", "HS256"))
    assert c.get("/api/session").status_code == 200  # the real one still works
    c.close()


def test_an_expired_token_is_refused(dash: Dash) -> None:
    old = int(time.time()) - 1000
    token = jwt.encode(
        _claims(dash, iat=old, exp=old + 900, auth_time=old), dash.settings.secret, "HS256"
    )
    _refused(dash, token)


def test_alg_none_and_other_algorithms_are_refused(dash: Dash) -> None:
    _refused(dash, jwt.encode(_claims(dash), None, algorithm="none"))
    with warnings.catch_warnings():  # PyJWT wants 64-byte keys for HS512; this is an attack
        warnings.simplefilter("ignore", jwt.warnings.InsecureKeyLengthWarning)
        hs512 = jwt.encode(_claims(dash), dash.settings.secret, algorithm="HS512")
    _refused(dash, hs512)
    # a hand-made "none" token with an empty signature, as an attacker would send it
    head = base64.urlsafe_b64encode(b'{"alg":"none","typ":"JWT"}').rstrip(b"=").decode()
    body = base64.urlsafe_b64encode(json.dumps(_claims(dash)).encode()).rstrip(b"=").decode()
    _refused(dash, f"{head}.{body}.")
    # the same claims signed HS256 with the secret do get in: the refusals are about the alg
    with _with_token(dash, jwt.encode(_claims(dash), dash.settings.secret, "HS256")) as c:
        assert c.get("/api/session").status_code == 200


def test_logout_revokes_the_token(dash: Dash, redis_url: str) -> None:
    c = dash.login()
    token = c.cookies[COOKIE]
    r = c.post("/logout")
    assert r.status_code == 303
    _refused(dash, token)
    jti = jwt.decode(token, options={"verify_signature": False})["jti"]
    rr = redis.Redis.from_url(redis_url)
    ttl = rr.ttl(f"{dash.prefix}dash:revoked:{jti}")
    rr.close()
    assert 0 < ttl <= 900  # kept only for the token's remaining lifetime
    c.close()


def test_refresh_swaps_the_token_and_revokes_the_old_one(dash: Dash) -> None:
    c = dash.login()
    old = c.cookies[COOKIE]
    first = c.get("/api/session").json()
    r = c.post("/refresh")
    assert r.status_code == 200
    new = c.cookies[COOKIE]
    assert new != old
    assert c.get("/api/session").json()["auth_time"] == first["auth_time"]
    _refused(dash, old)
    c.close()


def test_every_page_api_and_stream_needs_a_token(dash: Dash) -> None:
    with dash.client() as c:
        for path in PROTECTED_GET:
            r = c.get(path)
            assert r.status_code == 401, path
            assert COOKIE not in r.headers.get("set-cookie", "")
        assert 'action="/login"' in c.get("/").text
        assert c.get("/api/state").json() == {"error": "not logged in"}
        assert c.post("/refresh").status_code == 401
        assert c.post("/logout").status_code == 303  # nothing to end: back to the login
        r = c.post("/api/control", json={"action": "kill_switch", "confirm": True})
        assert r.status_code == 401
    assert dash.runner.controls() == []


def test_controls_need_a_fresh_login_and_a_confirmation(dash: Dash) -> None:
    now = int(time.time())
    stale = jwt.encode(_claims(dash, auth_time=now - 301), dash.settings.secret, "HS256")
    with _with_token(dash, stale) as c:
        assert c.get("/api/state").status_code in (200, 404)  # a valid session…
        r = c.post("/api/control", json={"action": "kill_switch", "confirm": True})
        assert r.status_code == 403  # …but not fresh enough for a control
    c = dash.login()
    assert c.post("/api/control", json={"action": "kill_switch"}).status_code == 400
    assert c.post("/api/control", json={"action": "sell_all", "confirm": True}).status_code == 400
    form = c.post("/api/control", data={"action": "kill_switch", "confirm": "true"})
    assert form.status_code == 415  # a cross-site form cannot press it
    assert dash.runner.controls() == []
    r = c.post("/api/control", json={"action": "kill_switch", "confirm": True})
    assert r.status_code == 200
    got = wait_for(dash.runner.controls, "the control on poly:control")
    assert [m.action for m in got] == ["kill_switch"]  # type: ignore[union-attr]
    assert got[0].by.startswith("operator@127.0.0.1")  # type: ignore[union-attr]
    c.close()


def test_resume_has_the_kill_switchs_rules_and_a_refresh_does_not_make_a_login_fresh(
    dash: Dash,
) -> None:
    """Resume, like the kill switch: a stale login (code redeemed over 5 min ago) is refused
    even after the session is refreshed (the new token keeps the old ``auth_time``), an
    unconfirmed press is refused, and a fresh confirmed one reaches ``poly:control``."""
    stale = jwt.encode(_claims(dash, auth_time=int(time.time()) - 301), dash.settings.secret)
    with _with_token(dash, stale) as c:
        r = c.post("/refresh")
        assert r.status_code == 200
        renewed = r.cookies[COOKIE]
    assert renewed != stale
    with _with_token(dash, renewed) as c:
        assert c.get("/api/session").status_code == 200  # a valid session…
        r = c.post("/api/control", json={"action": "resume", "confirm": True})
        assert r.status_code == 403  # …still not fresh enough for a control
    c = dash.login()
    assert c.post("/api/control", json={"action": "resume", "confirm": False}).status_code == 400
    assert dash.runner.controls() == []
    assert c.post("/api/control", json={"action": "resume", "confirm": True}).status_code == 200
    got = wait_for(dash.runner.controls, "the control on poly:control")
    assert [m.action for m in got] == ["resume"]  # type: ignore[union-attr]
    assert got[0].by.startswith("operator@127.0.0.1")  # type: ignore[union-attr]
    c.close()


def test_no_secret_reaches_redis_logs_or_pages(
    make_dash: Callable[..., Dash], redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    dash = make_dash()
    secret = dash.settings.secret.decode()
    codes = [dash.code() for _ in range(3)]
    dash.runner.publish(STATE, state(1))
    with dash.client() as c:
        c.post("/login", data={"code": "000000" if codes[0] != "000000" else "111111"})
        assert c.post("/login", data={"code": codes[0]}).status_code == 303
        token = c.cookies[COOKIE]
        wait_for(lambda: c.get("/api/state").status_code == 200, "the state")
        pages = [c.get(p).text for p in ("/", "/api/state", "/api/session", "/static/app.js")]
        c.post("/refresh")
        token2 = c.cookies[COOKIE]
        c.post("/logout")
    r = redis.Redis.from_url(redis_url)
    dumped: list[str] = []
    for key in r.scan_iter(match=dash.prefix + "dash:*"):
        dumped.append(key.decode())
        kind = r.type(key).decode()
        if kind == "string":
            dumped.append(str(r.get(key)))
        elif kind == "hash":
            dumped.append(str(r.hgetall(key)))
    r.close()
    assert any(":otp:" in k for k in dumped) and any(":revoked:" in k for k in dumped)
    # every log line of the process but the test's own HTTP client (which logs the cookie)
    logs = [rec.getMessage() for rec in caplog.records if not rec.name.startswith("http")]
    text = "\n".join(dumped + pages + logs)
    for needle in [secret, token, token2, *codes]:
        assert needle not in text
    assert "dashboard login ok" in text  # the logs did record the events, without secrets


def test_parallel_guesses_cannot_pass_the_lockout(dash: Dash) -> None:
    """20 wrong codes at once: the check, the code and the count are one Lua script, so
    exactly 4 are refused as wrong, the fifth locks, and the rest find the lock."""
    code = dash.code()
    wrong = [f"{(int(code) + i) % 1_000_000:06d}" for i in range(1, 21)]

    def guess(w: str) -> int:
        with dash.client() as c:
            return c.post("/login", data={"code": w}).status_code

    with ThreadPoolExecutor(max_workers=10) as pool:
        statuses = sorted(pool.map(guess, wrong))
    assert statuses == [401] * 4 + [429] * 16
    with dash.client() as c:
        assert c.post("/login", data={"code": code}).status_code == 429


def test_without_redis_nothing_gets_in(secret: str) -> None:
    """The session store is away: pages, API and login answer 503, never let anyone in."""
    settings = AuthSettings(secret=secret.encode())
    store = AuthStore(aioredis.Redis.from_url("redis://127.0.0.1:1/0"), settings)
    served = Served(create_app(InProcessBus(), store), free_port())
    try:
        with httpx.Client(base_url=served.url, timeout=30.0) as c:
            forged = jwt.encode(_claims(None), secret.encode(), "HS256")
            c.cookies.set(COOKIE, forged)  # even a well-signed token
            for path in ("/", "/api/state", "/events"):
                assert c.get(path).status_code == 503, path
            assert c.post("/login", data={"code": "123456"}).status_code == 503
    finally:
        served.close()


def test_over_https_the_cookie_is_secure(make_dash: Callable[..., Dash]) -> None:
    """Served over HTTPS (the ASGI scheme is https), the session cookie gets ``Secure``."""
    dash = make_dash()  # for its code issuing; the app below shares its Redis and prefix
    code = dash.code()

    async def login() -> httpx.Response:
        store = AuthStore(aioredis.Redis.from_url(dash.redis_url), dash.settings)
        app = create_app(InProcessBus(), store)  # login needs no lifespan: no hub involved
        transport = httpx.ASGITransport(app=app)
        try:
            async with httpx.AsyncClient(
                transport=transport, base_url="https://dashboard.example"
            ) as c:
                return await c.post("/login", data={"code": code})
        finally:
            await store.redis.aclose()

    r = asyncio.run(login())
    assert r.status_code == 303
    cookie = r.headers["set-cookie"].lower()
    assert "; secure" in cookie and "httponly" in cookie and "samesite=strict" in cookie

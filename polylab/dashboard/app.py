"""The dashboard's web app (Starlette): login, the page, ``/api/state``, the event stream and
the controls.

Every route but the login form needs a valid session cookie: HTML routes answer with the login
page (401), the API and the stream with a JSON 401. Controls also need a fresh login (the code
redeemed ≤ ``fresh_s`` ago), a JSON body (a cross-site form cannot send one) with
``"confirm": true``, and go out on ``poly:control`` naming who pressed them. A config
rollback (``rollback_config``) goes through ``pipeline.promote.rollback``: the ledger restores
the previously promoted config (who, why) and the runner is told on ``poly:control``.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import importlib.util
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from redis.exceptions import RedisError
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import (
    FileResponse,
    HTMLResponse,
    JSONResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from polylab.bus import CONTROL, Bus, ControlMessage
from polylab.dashboard.auth import AuthFailed, AuthStore, LockedOut, Session
from polylab.dashboard.history import read_config, read_controls, read_history
from polylab.dashboard.hub import LOSSLESS, Hub, format_cursor, parse_cursor
from polylab.store.ledger import Ledger

__all__ = ["COOKIE", "SecurityHeaders", "create_app", "plotly_js_path"]

log = logging.getLogger(__name__)

COOKIE = "polylab_session"
STATIC = Path(__file__).parent / "static"
_MAX_FORM = 4096
_SHORT = {"poly:signals": "signals", "poly:trades": "trades", "poly:errors": "errors"}
_ACTIONS = ("kill_switch", "resume", "rollback_config")
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; connect-src 'self'; frame-ancestors 'none'; "
    "form-action 'self'; base-uri 'none'"
)


def plotly_js_path() -> Path:
    """plotly.js as shipped inside the ``plotly`` package (no CDN: the page works offline)."""
    spec = importlib.util.find_spec("plotly")
    if spec is None or spec.origin is None:
        raise FileNotFoundError("the plotly package is not installed")
    return Path(spec.origin).parent / "package_data" / "plotly.min.js"


class SecurityHeaders:
    """Adds CSP, no-framing, no-referrer and ``Cache-Control: no-store`` to every answer."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers += [
                    (b"content-security-policy", CSP.encode()),
                    (b"x-frame-options", b"DENY"),
                    (b"x-content-type-options", b"nosniff"),
                    (b"referrer-policy", b"no-referrer"),
                    (b"cache-control", b"no-store"),
                ]
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _login_page(message: str = "", status: int = 401) -> HTMLResponse:
    text = (STATIC / "login.html").read_text(encoding="utf-8")
    note = f'<p class="error" role="alert">{html.escape(message)}</p>' if message else ""
    return HTMLResponse(text.replace("<!--MESSAGE-->", note), status_code=status)


async def _store_down(request: Request, exc: Exception) -> Response:
    """Redis (codes, sessions) is away: refuse, never let anyone in unchecked."""
    log.warning("dashboard session store unavailable: %s", type(exc).__name__)
    return JSONResponse({"error": "session store (Redis) unavailable"}, status_code=503)


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _set_cookie(response: Response, request: Request, token: str, max_age: int) -> None:
    response.set_cookie(
        COOKIE,
        token,
        max_age=max_age,
        path="/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )


def create_app(
    bus: Bus,
    store: AuthStore,
    *,
    start_bus: bool = True,
    keep: int = 500,
    ledger: Ledger | None = None,
) -> Starlette:
    """The dashboard on ``bus`` with sessions in ``store`` (its Redis client is closed when
    the app stops); ``start_bus``: the app starts and closes the bus (False when the runner
    owns an in-process bus it shares); ``keep``: entries of each lossless channel held in
    memory for pages (older ones are read from the bus); ``ledger``: where ``/api/history``
    reads the run and its PnL history, ``/api/config`` the active configuration and its
    promotion history, ``/api/controls`` the controls applied (None: none of them)."""
    hub = Hub(bus, keep=keep)
    settings = store.settings
    ended: dict[str, int] = {}  # jti → exp of sessions ended here: their streams stop at once
    closing: list[bool] = []  # set when the server stops: every stream ends (page reconnects)
    loops: list[asyncio.AbstractEventLoop] = []

    def stop_streams() -> None:
        """End every open event stream now (thread- and signal-safe): the server is stopping
        and would otherwise wait for streams that never end by themselves."""

        def stop() -> None:
            closing.append(True)
            hub.notify()

        if loops:
            loops[0].call_soon_threadsafe(stop)

    def end(session: Session) -> None:
        now = time.time()
        for jti in [j for j, exp in ended.items() if exp < now]:
            del ended[jti]  # expired anyway
        ended[session.jti] = session.exp
        hub.notify()

    async def session_of(request: Request) -> Session | None:
        try:
            return await store.verify(request.cookies.get(COOKIE))
        except AuthFailed:
            return None

    def api(handler: Callable[[Request, Session], Awaitable[Response]]) -> Any:
        async def wrapped(request: Request) -> Response:
            session = await session_of(request)
            if session is None:
                return JSONResponse({"error": "not logged in"}, status_code=401)
            return await handler(request, session)

        return wrapped

    async def index(request: Request) -> Response:
        if await session_of(request) is None:
            return _login_page()
        return FileResponse(STATIC / "index.html", media_type="text/html")

    async def login(request: Request) -> Response:
        body = await request.body()
        if len(body) > _MAX_FORM:
            return _login_page("form too large", 413)
        code = parse_qs(body.decode("utf-8", "replace")).get("code", [""])[0]
        try:
            token = await store.redeem_code(code, _client(request))
        except LockedOut as exc:
            page = _login_page(exc.reason, 429)
            page.headers["retry-after"] = str(exc.retry_after_s)
            return page
        except AuthFailed as exc:
            return _login_page(exc.reason, 401)
        response = RedirectResponse("/", status_code=303)
        _set_cookie(response, request, token, settings.token_ttl_s)
        return response

    async def logout(request: Request) -> Response:
        session = await session_of(request)
        if session is not None:  # else: already ended; just drop the cookie
            await store.revoke(session)
            end(session)
        response = RedirectResponse("/", status_code=303)
        response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
        return response

    async def refresh(request: Request, session: Session) -> Response:
        try:
            token = await store.refresh(session)
        except AuthFailed as exc:
            return JSONResponse({"error": exc.reason}, status_code=401)
        end(session)
        response = JSONResponse({"ok": True, "expires_in_s": settings.token_ttl_s})
        _set_cookie(response, request, token, settings.token_ttl_s)
        return response

    async def whoami(request: Request, session: Session) -> Response:
        return JSONResponse(
            {
                "sub": session.sub,
                "exp": session.exp,
                "auth_time": session.auth_time,
                "fresh_until": session.auth_time + settings.fresh_s,
                "now": int(time.time()),
            }
        )

    async def state(request: Request, session: Session) -> Response:
        if hub.state is None:
            return JSONResponse({"error": "no poly:state received yet"}, status_code=404)
        return Response(hub.state, media_type="application/json")

    async def from_ledger(read: Callable[[Ledger], Any]) -> Response:
        """``read(ledger)`` in a worker thread as JSON; 404 without a ledger, 503 when the
        database is away (the live page goes on without it)."""
        if ledger is None:
            return JSONResponse({"error": "no ledger configured"}, status_code=404)
        try:
            data = await run_in_threadpool(read, ledger)
        except Exception as exc:
            log.warning("dashboard could not read the ledger: %s", type(exc).__name__)
            return JSONResponse({"error": "the ledger cannot be read now"}, status_code=503)
        return JSONResponse(data)

    def running_config_id() -> str | None:
        """The config id the runner says it runs in ``poly:state`` (None if it says none)."""
        if hub.state is None:
            return None
        try:
            cid = json.loads(hub.state).get("config_id")
        except (ValueError, AttributeError):
            return None
        return cid if isinstance(cid, str) and cid else None

    async def history(request: Request, session: Session) -> Response:
        return await from_ledger(read_history)

    async def config(request: Request, session: Session) -> Response:
        rid = running_config_id()
        return await from_ledger(lambda led: read_config(led, rid))

    async def controls(request: Request, session: Session) -> Response:
        return await from_ledger(read_controls)

    async def control(request: Request, session: Session) -> Response:
        if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
            return JSONResponse({"error": "send JSON"}, status_code=415)
        try:
            data = json.loads((await request.body())[:_MAX_FORM])
        except ValueError:
            return JSONResponse({"error": "body is not JSON"}, status_code=400)
        action = data.get("action") if isinstance(data, dict) else None
        if action not in _ACTIONS:
            return JSONResponse({"error": f"action must be one of {_ACTIONS}"}, status_code=400)
        if data.get("confirm") is not True:
            return JSONResponse({"error": "confirm the control"}, status_code=400)
        if not session.fresh(time.time(), settings.fresh_s):
            return JSONResponse(
                {"error": f"controls need a login less than {settings.fresh_s} s old"},
                status_code=403,
            )
        who = f"{session.sub}@{_client(request)} session {session.jti[:8]}"
        reason = str(data.get("reason", "dashboard"))[:200]
        if action == "rollback_config":
            return await rollback_config(who, reason)
        msg = ControlMessage(ts_ns=time.time_ns(), action=action, by=who, reason=reason)
        if not bus.publish(CONTROL, msg):
            return JSONResponse({"error": "the bus refused the message"}, status_code=503)
        log.warning("dashboard control %s by %s", action, who)
        return JSONResponse({"ok": True, "action": action, "by": who})

    async def rollback_config(who: str, reason: str) -> Response:
        """Restore the previously promoted config in the ledger and tell the runner on this
        dashboard's bus; 409 naming why when there is nothing to roll back to."""
        if ledger is None:
            return JSONResponse({"error": "no ledger configured"}, status_code=404)
        from polylab.pipeline.promote import PromotionError, rollback
        from polylab.store.ledger_configs import PromotionRow

        def run() -> PromotionRow:
            return rollback(ledger, by=who, reason=reason, bus=bus)

        try:
            rec = await run_in_threadpool(run)
        except PromotionError as exc:
            return JSONResponse({"error": str(exc)}, status_code=409)
        except Exception as exc:  # the database or the promotion JSON's folder is away
            log.warning("dashboard rollback failed: %s", type(exc).__name__)
            what = f"rollback failed ({type(exc).__name__}): see `polylab configs list`"
            return JSONResponse({"error": what}, status_code=503)
        log.warning("dashboard control rollback_config by %s → %s", who, rec.config_id)
        return JSONResponse(
            {
                "ok": True,
                "action": "rollback_config",
                "by": who,
                "config_id": rec.config_id,
                "previous_id": rec.previous_id,
            }
        )

    async def events(request: Request, session: Session) -> Response:
        # EventSource resends Last-Event-ID on its own reconnects; a new one (the page
        # reconnecting after a refresh) passes the cursor as ?since=
        cursor = parse_cursor(request.headers.get("last-event-id")) or parse_cursor(
            request.query_params.get("since")
        )
        token = request.cookies.get(COOKIE)
        return StreamingResponse(
            _stream(cursor or dict.fromkeys(LOSSLESS, "0-0"), session, token),
            media_type="text/event-stream",
            headers={"x-accel-buffering": "no"},
        )

    async def _stream(
        cursor: dict[str, str], session: Session, token: str | None
    ) -> AsyncIterator[bytes]:
        seen = -1
        checked = time.monotonic()
        yield b"retry: 2000\n\n"
        while True:
            changed = hub.changed
            if closing:
                yield b"event: bye\ndata: server stopping\n\n"
                return
            if session.jti in ended or time.time() >= session.exp:
                yield b"event: bye\ndata: session ended\n\n"
                return
            if time.monotonic() - checked >= 5.0:  # revoked by another process, expired…
                checked = time.monotonic()
                try:
                    await store.verify(token)
                except Exception:  # refused, or Redis away: fail closed, the page reconnects
                    yield b"event: bye\ndata: session ended\n\n"
                    return
            out: list[bytes] = []
            if hub.state is not None and hub.state_seq != seen:
                seen = hub.state_seq
                out.append(b"event: state\ndata: " + hub.state + b"\n\n")
            for ch, sid, data in await hub.since(cursor):
                cursor[ch] = sid
                head = f"id: {format_cursor(cursor)}\nevent: {_SHORT[ch]}\ndata: "
                out.append(head.encode() + data + b"\n\n")
            if out:
                yield b"".join(out)
                continue  # there may be more (a catch-up is read in pages)
            try:
                await asyncio.wait_for(changed.wait(), 5.0)
            except TimeoutError:
                yield b": ping\n\n"

    async def static(request: Request, session: Session) -> Response:
        name = request.path_params["name"]
        if name == "plotly.min.js":
            return FileResponse(plotly_js_path(), media_type="text/javascript")
        if name not in ("app.js", "style.css"):
            return JSONResponse({"error": "not found"}, status_code=404)
        return FileResponse(STATIC / name)

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        loops.append(asyncio.get_running_loop())
        if start_bus:
            await bus.start()
        await hub.start()
        try:
            yield
        finally:
            await hub.close()
            if start_bus:
                await bus.close()
            await store.aclose()

    app = Starlette(
        routes=[
            Route("/", index),
            Route("/login", login, methods=["POST"]),
            Route("/logout", logout, methods=["POST"]),
            Route("/refresh", api(refresh), methods=["POST"]),
            Route("/api/session", api(whoami)),
            Route("/api/state", api(state)),
            Route("/api/history", api(history)),
            Route("/api/config", api(config)),
            Route("/api/controls", api(controls)),
            Route("/api/control", api(control), methods=["POST"]),
            Route("/events", api(events)),
            Route("/static/{name}", api(static)),
        ],
        lifespan=lifespan,
        middleware=[Middleware(SecurityHeaders)],
        exception_handlers={RedisError: _store_down},
    )
    app.state.hub = hub
    app.state.stop_streams = stop_streams
    return app

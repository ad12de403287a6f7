"""``polylab run --dashboard``: the operator dashboard served by the runner's own process.

The dashboard app (``polylab.dashboard.app``) runs on the runner's event loop, on the
runner's bus (``start_bus=False``: the runner owns it). With no ``REDIS_URL`` the bus is the
in-process one and sessions live in a ``MemoryAuthStore`` (same rules as Redis: hashed codes,
5-minute TTL, used once, lockout after 5 failures, deny-list); with ``REDIS_URL`` they live in
that Redis, under the bus prefix, exactly as for ``polylab dashboard serve``.

**Getting a code.** ``polylab dashboard otp`` cannot reach a dict in another process, so the
embedded dashboard also answers ``POST /otp``: only to a loopback client, and only with a
request signed by ``DASHBOARD_JWT_SECRET`` (an HMAC over a timestamp and a nonce, at most 30 s
old, each nonce once; see ``dashboard.auth.otp_request``). The secret itself never travels,
and whoever holds it could mint sessions anyway, so this grants nothing new.
``polylab dashboard otp --dashboard-url http://127.0.0.1:8050`` makes that request. The code
is returned in the response body only (``cache-control: no-store``), never logged.

Signals stay the runner's: uvicorn's own SIGINT/SIGTERM capture is switched off, and the runner
stops the server when its session ends. Units: seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Generator

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from polylab.bus import Bus
from polylab.dashboard.app import create_app
from polylab.dashboard.auth import OTP_HEADER, AuthFailed, AuthStore, OtpRequests
from polylab.errors import ConfigError
from polylab.store.ledger import Ledger

__all__ = ["EmbeddedDashboard", "otp_route"]

log = logging.getLogger(__name__)

_LOOPBACK = ("127.0.0.1", "::1")


def otp_route(store: AuthStore) -> Route:
    """``POST /otp``: a one-time code for a loopback caller whose request is signed with the
    dashboard's secret (header ``OTP_HEADER``); 403 with a reason otherwise."""
    requests = OtpRequests(store.settings.secret)

    async def otp(request: Request) -> Response:
        host = request.client.host if request.client else ""
        if host not in _LOOPBACK:
            return JSONResponse({"error": "codes are given to local callers only"}, 403)
        try:
            requests.check(request.headers.get(OTP_HEADER))
        except AuthFailed as exc:
            log.warning("dashboard code request refused: %s", exc.reason)
            return JSONResponse({"error": exc.reason}, status_code=403)
        code = await store.issue_code()
        return JSONResponse(
            {"code": code, "valid_s": store.settings.code_ttl_s},
            headers={"cache-control": "no-store"},
        )

    return Route("/otp", otp, methods=["POST"])


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield  # the runner handles SIGINT / SIGTERM and stops the server itself


class EmbeddedDashboard:
    """The dashboard app on ``bus`` with ``store``, listening on ``host``:``port`` (0: a free
    port; ``port`` then gives it) inside the running event loop."""

    def __init__(
        self,
        bus: Bus,
        store: AuthStore,
        *,
        host: str = "127.0.0.1",
        port: int = 8050,
        ledger: Ledger | None = None,
    ) -> None:
        self.app: Starlette = create_app(bus, store, start_bus=False, ledger=ledger)
        self.app.router.routes.append(otp_route(store))
        self.host = host
        self._sock = _bind(host, port)  # bound here: a taken port is one clear error
        self.port = int(self._sock.getsockname()[1])
        self._server = _Server(
            uvicorn.Config(
                self.app,
                log_level="warning",
                proxy_headers=False,
                timeout_graceful_shutdown=3,
                lifespan="on",
            )
        )
        self._task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        shown = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{shown}:{self.port}/"

    async def start(self, timeout_s: float = 10.0) -> None:
        """Serve; returns once the server accepts connections (``ConfigError`` if it could
        not start)."""
        self._task = asyncio.create_task(self._serve())
        deadline = asyncio.get_running_loop().time() + timeout_s
        while not self._server.started:
            if self._task.done() or asyncio.get_running_loop().time() > deadline:
                await self.close()
                raise ConfigError(f"the dashboard did not start on {self.url}")
            await asyncio.sleep(0.02)

    async def _serve(self) -> None:
        try:
            await self._server.serve(sockets=[self._sock])
        except SystemExit:  # uvicorn exits the process when the app's startup fails
            raise RuntimeError("the dashboard app failed to start (see the log)") from None

    async def close(self, timeout_s: float = 5.0) -> None:
        """End open event streams, stop the server, release the port."""
        task = self._task
        if task is not None and not task.done():
            self.app.state.stop_streams()
            self._server.should_exit = True
            try:
                await asyncio.wait_for(asyncio.shield(task), timeout_s)
            except TimeoutError:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            except Exception:
                log.exception("dashboard server failed")
        self._sock.close()


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ConfigError(f"--dashboard-port {port} on {host}: {exc.strerror or exc}") from None
    sock.listen(128)
    sock.setblocking(False)
    return sock

"""One HTTP port for operations: ``/health`` and ``/metrics`` (aiohttp, on the runner's loop).

* ``GET /health``: JSON from ``Health.report()``; **200** when every readiness check passes,
  **503** otherwise (the body still says ``"live": true`` and which check failed and why).
* ``GET /health/live``: 200 whenever the process answers (liveness only).
* ``GET /metrics``: ``Metrics.exposition()`` in the Prometheus text format.

The server runs on the event loop it is started on; the handlers only read state, so they
never touch the trading path. ``port=0`` binds a free port (``OpsServer.port`` tells which).
``http_settings`` reads the bind address from the environment, with Railway's ``PORT`` as a
fallback so the same image runs there unchanged.
"""

from __future__ import annotations

import msgspec
from aiohttp import web

from polylab.ops.health import Health
from polylab.ops.metrics import CONTENT_TYPE, Metrics
from polylab.ops.settings import DEFAULT_HTTP_PORT, http_settings

__all__ = ["DEFAULT_HTTP_PORT", "OpsServer", "http_settings"]


class OpsServer:
    """Serves ``health`` and ``metrics`` on ``host:port`` (see the module docstring)."""

    def __init__(
        self,
        health: Health,
        metrics: Metrics,
        *,
        host: str = "127.0.0.1",
        port: int = DEFAULT_HTTP_PORT,
    ) -> None:
        self.health = health
        self.metrics = metrics
        self.host = host
        self.port = port
        self.app = web.Application()
        self.app.router.add_get("/health", self._health)
        self.app.router.add_get("/health/live", self._live)
        self.app.router.add_get("/metrics", self._metrics)
        self._runner: web.AppRunner | None = None

    async def start(self) -> OpsServer:
        """Bind and serve; returns self (``port`` is the bound one when 0 was asked).
        An address in use raises ``OSError`` naming host and port."""
        runner = web.AppRunner(self.app, access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port)
        try:
            await site.start()
        except OSError as exc:
            await runner.cleanup()
            raise OSError(
                exc.errno, f"cannot serve /health on {self.host}:{self.port}: {exc.strerror}"
            ) from exc
        server = site._server
        sockets = getattr(server, "sockets", None) or []
        if sockets:
            self.port = int(sockets[0].getsockname()[1])
        self._runner = runner
        return self

    async def close(self) -> None:
        """Stop serving (idempotent)."""
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    @property
    def url(self) -> str:
        """Base URL (``http://host:port``)."""
        return f"http://{self.host}:{self.port}"

    async def _health(self, request: web.Request) -> web.Response:
        body = await self.health.report()
        return web.Response(
            body=msgspec.json.encode(body),
            status=200 if body["ready"] else 503,
            content_type="application/json",
        )

    async def _live(self, request: web.Request) -> web.Response:
        return web.json_response({"service": self.health.service, "live": True})

    async def _metrics(self, request: web.Request) -> web.Response:
        return web.Response(body=self.metrics.exposition(), headers={"Content-Type": CONTENT_TYPE})

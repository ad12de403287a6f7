"""``polylab dashboard …``: serve the operator dashboard, or print a one-time login code.

Both need ``DASHBOARD_JWT_SECRET`` (32+ characters) and the Redis that holds codes and
sessions: ``--redis-url``, else ``REDIS_URL``, else ``redis://127.0.0.1:6379/0``. ``serve``
reads the runner's channels from the same Redis (``--prefix`` must match the runner's bus).
``otp --dashboard-url URL`` asks a dashboard served inside ``polylab run --dashboard`` instead
(sessions in that process, no Redis needed).
"""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from polylab.cli_support import PolylabGroup
from polylab.errors import ConfigError

if TYPE_CHECKING:
    from polylab.dashboard.auth import AuthSettings
    from polylab.store.ledger import Ledger

__all__ = ["app", "auth_settings", "redis_url", "send_to_slack"]

app = typer.Typer(
    help="The operator dashboard (live state, controls).", no_args_is_help=True, cls=PolylabGroup
)
log = logging.getLogger(__name__)

DEFAULT_REDIS = "redis://127.0.0.1:6379/0"

RedisOpt = Annotated[
    str | None, typer.Option("--redis-url", help="Redis for sessions and channels [REDIS_URL]")
]
PrefixOpt = Annotated[str, typer.Option(help="key and channel prefix (as the runner's bus)")]


def redis_url(option: str | None) -> str:
    """The Redis URL: the option, else ``REDIS_URL``, else the local default."""
    url = option or os.environ.get("REDIS_URL", "").strip() or DEFAULT_REDIS
    if not url.startswith(("redis://", "rediss://", "unix://")):
        shown = url.split("@")[-1]
        raise ConfigError(f"Redis URL must start with redis://, rediss:// or unix://: {shown!r}")
    return url


def auth_settings(prefix: str) -> AuthSettings:
    """``AuthSettings`` from the environment (``ConfigError`` names what is missing)."""
    from polylab.dashboard.auth import AuthSettings, load_secret

    return AuthSettings(secret=load_secret(os.environ.get("DASHBOARD_JWT_SECRET")), prefix=prefix)


def send_to_slack(webhook: str, text: str, timeout_s: float = 5.0) -> bool:
    """Post ``text`` to a Slack incoming webhook; False (logged, without the URL) on failure."""
    import httpx

    try:
        r = httpx.post(webhook, json={"text": text}, timeout=timeout_s)
    except httpx.HTTPError as exc:
        log.warning("Slack webhook failed: %s", type(exc).__name__)
        return False
    if r.status_code >= 300:
        log.warning("Slack webhook answered %d", r.status_code)
        return False
    return True


def _ping(url: str) -> None:
    """``ConfigError`` (host and port, no password) when Redis does not answer a PING."""
    import redis
    from redis.backoff import NoBackoff
    from redis.exceptions import RedisError
    from redis.retry import Retry

    client = redis.Redis.from_url(
        url, socket_connect_timeout=3, socket_timeout=3, retry=Retry(NoBackoff(), 0)
    )
    try:
        client.ping()
    except (RedisError, OSError) as exc:
        where = url.split("@")[-1].split("://")[-1]  # never echo a password
        raise ConfigError(f"cannot reach Redis at {where}: {exc}") from None
    finally:
        client.close()


def _open_ledger(url: str | None) -> Ledger | None:
    """The ledger to read history from, or None when none is named and none exists yet
    (opening the default would create an empty one)."""
    from polylab.store.ledger import DEFAULT_SQLITE_PATH, Ledger, LedgerError

    if not url and not os.environ.get("DATABASE_URL") and not Path(DEFAULT_SQLITE_PATH).exists():
        return None
    try:
        return Ledger.open(url or None)
    except LedgerError as exc:  # names the URL without its password
        raise ConfigError(str(exc)) from None


def _code_from_runner(base: str, secret: bytes, timeout_s: float = 5.0) -> str:
    """A code from a dashboard served inside ``polylab run --dashboard`` (``POST /otp``, a
    request signed with the secret; see ``polylab.runner.dashboard_server``)."""
    import httpx

    from polylab.dashboard.auth import OTP_HEADER, otp_request

    if not base.startswith(("http://", "https://")):
        raise ConfigError(f"--dashboard-url must start with http:// or https://, got {base!r}")
    url = base.rstrip("/") + "/otp"
    try:
        r = httpx.post(url, headers={OTP_HEADER: otp_request(secret)}, timeout=timeout_s)
    except httpx.HTTPError as exc:
        raise ConfigError(f"cannot reach the runner's dashboard at {url}: {exc}") from None
    if r.status_code != 200:
        try:
            reason = str(r.json().get("error", ""))
        except ValueError:
            reason = ""
        raise ConfigError(f"the runner's dashboard at {url} refused: {r.status_code} {reason}")
    return str(r.json()["code"])


@app.command("otp")
def otp_cmd(
    redis_url_opt: RedisOpt = None,
    prefix: PrefixOpt = "",
    dashboard_url: Annotated[
        str | None,
        typer.Option(
            help="ask the dashboard inside `polylab run --dashboard` (no Redis) at this URL, "
            "e.g. http://127.0.0.1:8050"
        ),
    ] = None,
) -> None:
    """Print a 6-digit one-time login code (valid 5 minutes, once); also to Slack when
    ``SLACK_WEBHOOK_URL`` is set."""
    import redis.asyncio as aioredis
    from redis.exceptions import RedisError

    from polylab.dashboard.auth import AuthStore

    settings = auth_settings(prefix)
    if dashboard_url:
        _show_code(_code_from_runner(dashboard_url, settings.secret))
        return
    url = redis_url(redis_url_opt)
    _ping(url)

    async def issue() -> str:
        client = aioredis.Redis.from_url(url)
        try:
            return await AuthStore(client, settings).issue_code()
        finally:
            await client.aclose()

    try:
        code = asyncio.run(issue())
    except (RedisError, OSError) as exc:
        where = url.split("@")[-1].split("://")[-1]  # never echo a password
        raise ConfigError(f"cannot reach Redis at {where}: {exc}") from None
    _show_code(code)


def _show_code(code: str) -> None:
    """The code on stdout, and to Slack when ``SLACK_WEBHOOK_URL`` is set."""
    typer.echo(code)
    webhook = os.environ.get("SLACK_WEBHOOK_URL", "").strip()
    if webhook:
        ok = send_to_slack(webhook, f"polylab dashboard code: {code} (valid 5 min, once)")
        typer.echo("sent to Slack" if ok else "Slack: not sent (see log)", err=True)


@app.command("serve")
def serve_cmd(
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port")] = 8050,
    redis_url_opt: RedisOpt = None,
    prefix: PrefixOpt = "",
    ledger_url: Annotated[
        str | None,
        typer.Option(
            "--ledger",
            help="ledger database for the run's history [DATABASE_URL; else runs/polylab.db "
            "when it exists; else no history]",
        ),
    ] = None,
    ssl_certfile: Annotated[
        Path | None, typer.Option(help="serve HTTPS with this certificate (PEM)")
    ] = None,
    ssl_keyfile: Annotated[Path | None, typer.Option(help="… and this private key (PEM)")] = None,
) -> None:
    """Serve the dashboard until stopped (Ctrl-C). Over HTTPS the session cookie is Secure."""
    import redis.asyncio as aioredis
    import uvicorn

    from polylab.bus import RedisBus
    from polylab.dashboard.app import create_app, plotly_js_path
    from polylab.dashboard.auth import AuthStore

    url = redis_url(redis_url_opt)
    settings = auth_settings(prefix)
    if not 0 < port < 65536:
        raise ConfigError(f"--port must be 1..65535, got {port}")
    if not plotly_js_path().is_file():
        raise ConfigError(f"plotly.js not found at {plotly_js_path()}")
    if (ssl_certfile is None) != (ssl_keyfile is None):
        raise ConfigError("HTTPS needs both --ssl-certfile and --ssl-keyfile")
    for f in (ssl_certfile, ssl_keyfile):
        if f is not None and not f.is_file():
            raise ConfigError(f"no such file: {f}")
    _ping(url)
    ledger = _open_ledger(ledger_url)
    store = AuthStore(aioredis.Redis.from_url(url), settings)
    web = create_app(RedisBus(url, prefix=prefix), store, ledger=ledger)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    scheme = "https" if ssl_certfile else "http"
    typer.echo(f"dashboard on {scheme}://{host}:{port}/ (log in with `polylab dashboard otp`)")

    class Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: Any) -> None:
            web.state.stop_streams()  # open event streams end, so the stop is prompt
            super().handle_exit(sig, frame)

    config = uvicorn.Config(
        web,
        host=host,
        port=port,
        log_level="info",
        proxy_headers=False,
        timeout_graceful_shutdown=3,  # open event streams never end by themselves
        ssl_certfile=str(ssl_certfile) if ssl_certfile else None,
        ssl_keyfile=str(ssl_keyfile) if ssl_keyfile else None,
    )
    Server(config).run()

"""Where the ops HTTP server listens, from the environment (stdlib only: the container's
``HEALTHCHECK`` probe imports it and must start fast).

``POLYLAB_HTTP_HOST`` (default 127.0.0.1; the image sets 0.0.0.0 so the port is reachable from
outside the container), ``POLYLAB_HTTP_PORT``, else ``PORT`` (set by Railway), else 8080.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

__all__ = ["DEFAULT_HTTP_PORT", "http_settings"]

DEFAULT_HTTP_PORT = 8080


def http_settings(env: Mapping[str, str] | None = None) -> tuple[str, int]:
    """(host, port) for the ops HTTP server (see the module docstring). A bad port raises
    ``ValueError`` naming the variable and the value."""
    env = os.environ if env is None else env
    host = env.get("POLYLAB_HTTP_HOST", "").strip() or "127.0.0.1"
    for name in ("POLYLAB_HTTP_PORT", "PORT"):
        raw = env.get(name, "").strip()
        if raw:
            if not raw.isdigit() or not 0 <= int(raw) <= 65535:
                raise ValueError(f"{name} must be a port number 0..65535, got {raw!r}")
            return host, int(raw)
    return host, DEFAULT_HTTP_PORT

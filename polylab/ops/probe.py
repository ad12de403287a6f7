"""The container's ``HEALTHCHECK``: ``python -m polylab.ops.probe`` GETs ``/health``.

Exit 0 when the service answers 200 (ready), 1 otherwise (503, refused, timeout), as Docker
expects; one line on stdout says what it saw (Docker keeps it in ``docker inspect``). Stdlib
only, so it starts in milliseconds inside a slim image that has no curl. The address comes from
the same variables as the server's (``polylab.ops.settings``); a wildcard bind address is
probed on loopback. ``--url`` overrides it.
"""

from __future__ import annotations

import sys
import urllib.error
import urllib.request

from polylab.ops.settings import http_settings

__all__ = ["main", "probe"]


def probe(url: str, timeout_s: float = 3.0) -> tuple[int, str]:
    """(exit code, one-line summary) for a GET of ``url``."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as resp:
            status = int(resp.status)
    except urllib.error.HTTPError as exc:
        status = exc.code
    except (OSError, ValueError) as exc:
        return 1, f"unhealthy: {url}: {type(exc).__name__}: {exc}"
    return (0, f"healthy: {url} 200") if status == 200 else (1, f"unhealthy: {url} {status}")


def main(argv: list[str] | None = None) -> int:
    """Probe ``/health`` (or ``--url URL``); returns the exit code."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) == 2 and args[0] == "--url":
        url = args[1]
    elif not args:
        try:
            host, port = http_settings()
        except ValueError as exc:
            print(f"unhealthy: {exc}")
            return 1
        if host in ("0.0.0.0", "::", ""):
            host = "127.0.0.1"
        url = f"http://{host}:{port}/health"
    else:
        print("usage: python -m polylab.ops.probe [--url URL]")
        return 2
    code, line = probe(url)
    print(line)
    return code


if __name__ == "__main__":
    raise SystemExit(main())

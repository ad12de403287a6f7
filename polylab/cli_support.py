"""How the ``polylab`` command line fails and logs (one place for every command).

Every operator error ends with exactly one line on stderr, ``polylab: error: …`` naming the
problem and the value, and exit code 2. ``PolylabGroup.invoke`` decides, for the whole command
tree (sub-apps included): the polylab error tree (``PolylabError``: config, input, discovery,
CLOB errors), ``OSError`` (missing or unwritable files, busy ports, refused connections),
``ValueError`` (bad values, malformed files; ``msgspec.DecodeError`` is one) and click's usage
errors (``--top -5``, an unknown command). The global ``--debug`` flag prints the traceback
before that line and turns on debug logging; ``--log-file`` also writes the logs to a file.
Anything else is a bug and keeps its traceback.

The line never contains a secret: errors about keys name the variable, not its value.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import typer
from typer.core import TyperGroup

from polylab.errors import ClobError, DiscoveryError, InputError, PolylabError

__all__ = [
    "OPERATOR_ERRORS",
    "PolylabGroup",
    "check_url",
    "error_line",
    "prepare_out_dir",
    "venue_errors",
]

OPERATOR_ERRORS: tuple[type[BaseException], ...] = (
    PolylabError,
    OSError,
    ValueError,
    typer.TyperException,
)
"""Exceptions that mean "the operator gave something unusable": one line, exit 2."""

log = logging.getLogger(__name__)

_LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def error_line(exc: BaseException) -> str:
    """The one line printed for ``exc`` (newlines folded, never empty)."""
    if isinstance(exc, typer.TyperException):
        msg = exc.format_message() + _bad_input(exc)
        ctx = getattr(exc, "ctx", None)
        if ctx is not None:
            msg = f"{ctx.command_path}: {msg}"
    else:
        msg = str(exc) or type(exc).__name__
    return "polylab: error: " + " ".join(msg.split())


def _bad_input(exc: BaseException) -> str:
    """`` (value '-5')`` when typer's parameter check (pydantic) kept the input it refused."""
    errors = getattr(exc.__cause__, "errors", None)
    if not callable(errors):
        return ""
    try:
        found = [e["input"] for e in errors() if isinstance(e, dict) and "input" in e]
    except Exception:  # a message detail must never hide the error itself
        return ""
    return f" (value {found[0]!r})" if found else ""


class PolylabGroup(TyperGroup):
    """The command group of polylab and of its sub-apps (usable alone, as in tests): maps
    operator errors to one stderr line and exit code 2; the root one sets up logging from the
    global ``--debug`` / ``--log-file`` options for the command."""

    def invoke(self, ctx: Any) -> Any:  # typer.core.Context (vendored click)
        root_ctx = ctx.find_root()
        debug = bool(root_ctx.params.get("debug"))
        nested = root_ctx is not ctx  # a sub-app's group inside polylab's: logging is set up
        # --debug: the stderr log handler prints the failure with its traceback, then the line
        try:
            with _logging(debug and not nested, None if nested else ctx.params.get("log_file")):
                try:
                    return super().invoke(ctx)
                except OPERATOR_ERRORS as exc:
                    if not isinstance(exc, typer.Exit | typer.Abort):
                        # into the log file and, with --debug, stderr (traceback included)
                        log.info("command failed: %s", exc, exc_info=True)
                    raise
        except (typer.Exit, typer.Abort):
            raise
        except OPERATOR_ERRORS as exc:
            typer.echo(error_line(exc), err=True)
            raise typer.Exit(2) from None


@contextlib.contextmanager
def _logging(debug: bool, log_file: Path | None) -> Iterator[None]:
    """Root-logger handlers for one command (removed afterwards, so in-process runs such as
    tests do not pile them up): stderr at DEBUG with ``--debug``, and ``log_file`` if given."""
    root = logging.getLogger()
    handlers: list[logging.Handler] = []
    if debug:
        handlers.append(logging.StreamHandler(sys.stderr))
    if log_file is not None:
        try:
            handlers.append(logging.FileHandler(log_file, encoding="utf-8"))
        except OSError as exc:
            raise InputError(f"cannot open log file {str(log_file)!r}: {exc.strerror}") from None
    old_level = root.level
    for h in handlers:
        h.setFormatter(logging.Formatter(_LOG_FORMAT))
        root.addHandler(h)
    if handlers:
        root.setLevel(logging.DEBUG if debug else logging.INFO)
    try:
        yield
    finally:
        for h in handlers:
            root.removeHandler(h)
            h.close()
        root.setLevel(old_level)


def check_url(url: str | None) -> str | None:
    """``url`` if it is an ``http(s)://HOST[:PORT]`` base URL, else ``InputError`` naming it."""
    if url is None:
        return None
    try:
        parts = urlsplit(url)
        port_ok = parts.port is None or 0 < parts.port < 65536
    except ValueError:
        port_ok = False
        parts = urlsplit("")
    if parts.scheme not in ("http", "https") or not parts.hostname or not port_ok:
        raise InputError(f"bad venue URL {url!r}: expected http(s)://HOST[:PORT]")
    return url


def prepare_out_dir(path: Path) -> Path:
    """Check now (not after a whole session) that the run folder can be made and written; it
    is created only when the run writes it, so a run that fails first leaves nothing behind."""
    if path.exists() and not path.is_dir():
        raise InputError(f"run folder {str(path)!r} exists and is not a folder")
    probe = path
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if not probe.is_dir():
        raise InputError(f"cannot create run folder {str(path)!r}: {str(probe)!r} is a file")
    if not os.access(probe, os.W_OK | os.X_OK):
        where = "" if probe == path else f" ({str(probe)!r} is not writable)"
        raise InputError(f"run folder {str(path)!r} is not writable{where}")
    return path


@contextlib.contextmanager
def venue_errors(url: str | None) -> Iterator[None]:
    """Name the venue URL in discovery, CLOB and connection errors (they name only the path)."""
    try:
        yield
    except (DiscoveryError, ClobError, OSError) as exc:
        if url is None:
            raise
        raise InputError(f"venue {url!r} unusable: {exc}") from exc

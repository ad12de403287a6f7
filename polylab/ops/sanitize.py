"""Strip anything that looks like a credential from text that leaves the process (alerts).

An alert's text is built from exception messages, reasons and config values, any of which can
carry a secret by accident (a URL with a password, a header dump, an env value echoed back in an
error). ``Sanitizer.clean`` removes, in this order:

* the **values of sensitive environment variables**: any variable whose name contains ``KEY``,
  ``SECRET``, ``PASSPHRASE``, ``TOKEN``, ``PASSWORD`` or ``WEBHOOK`` (case-insensitive), with a
  value of 6 characters or more (shorter ones, like ``DRY_RUN=1``-style flags, would only
  shred ordinary words); the replacement names the variable, never the value;
* PEM private-key blocks; JSON Web Tokens (``eyJ….….…``);
* 32-byte hex strings (``0x`` + 64 hex digits or 64 bare hex digits: the shape of a wallet
  private key; condition and order ids share that shape and are redacted too: safety first);
* ``name=value`` / ``name: value`` / ``"name": "value"`` pairs whose name ends in key,
  secret, passphrase, password, token, signature or authorization (``api_key=…`` goes,
  ``token_id=…`` stays);
* the password of a URL (``scheme://user:password@host`` → ``scheme://user:<redacted>@host``);
* UUIDs (the shape of an API key);
* ``Bearer``/``Basic`` credentials;
* long base64/base64url runs (32+ characters mixing upper case, lower case and digits: the
  shape of an API secret); plain decimal numbers such as token ids, and lower-case paths and
  ids, are kept.

The result replaces each match with ``<redacted>`` (``<redacted:NAME>`` for an env value).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping

__all__ = ["REDACTED", "SENSITIVE_NAME_PARTS", "Sanitizer", "sanitize"]

REDACTED = "<redacted>"
SENSITIVE_NAME_PARTS: tuple[str, ...] = (
    "KEY",
    "SECRET",
    "PASSPHRASE",
    "TOKEN",
    "PASSWORD",
    "WEBHOOK",
)
"""A variable whose upper-cased name contains one of these holds a secret."""
MIN_ENV_VALUE_LEN = 6
"""Env values shorter than this are not treated as secrets (flags, small numbers)."""

_NAMES = r"(?:key|secret|passphrase|password|passwd|token|signature|authorization)"
_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (
        re.compile(
            r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?(?:-----END [A-Z ]*PRIVATE KEY-----|$)", re.S
        ),
        REDACTED,
    ),
    (re.compile(r"\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*"), REDACTED),
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}"), r"\1 " + REDACTED),
    (re.compile(r"(?<![0-9A-Za-z])(?:0x)?[0-9a-fA-F]{64}(?![0-9A-Za-z])"), REDACTED),
    (
        re.compile(r"(?i)\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b"),
        REDACTED,
    ),
    (
        re.compile(
            r"(?i)(\"?\b[a-z0-9_-]*" + _NAMES + r"\"?\s*[:=]\s*)"
            r"(\"[^\"]*\"|'[^']*'|(?!<redacted)[^\s,;&}]+)"
        ),
        r"\1" + REDACTED,
    ),
    (re.compile(r"([a-zA-Z][a-zA-Z0-9+.-]*://[^:/\s@]+:)[^@\s]+@"), r"\1" + REDACTED + "@"),
    (
        re.compile(
            r"(?<![A-Za-z0-9+/_=-])(?=[A-Za-z0-9+/_-]*[a-z])(?=[A-Za-z0-9+/_-]*[A-Z])"
            r"(?=[A-Za-z0-9+/_-]*[0-9])[A-Za-z0-9+/_-]{32,}={0,2}"
        ),
        REDACTED,
    ),
)


class Sanitizer:
    """Removes secrets from text; ``env`` (default ``os.environ``, read at each call so a
    secret set after start-up is still caught) supplies the values to strip by name."""

    def __init__(
        self,
        env: Mapping[str, str] | None = None,
        *,
        extra_secrets: Iterable[str] = (),
    ) -> None:
        self._env = env
        self._extra = tuple(s for s in extra_secrets if len(s) >= MIN_ENV_VALUE_LEN)

    def secret_values(self) -> list[tuple[str, str]]:
        """(name, value) of every sensitive variable, longest value first (so a value that
        contains another is replaced whole)."""
        env = os.environ if self._env is None else self._env
        out = [
            (name, value)
            for name, value in env.items()
            if len(value) >= MIN_ENV_VALUE_LEN
            and any(part in name.upper() for part in SENSITIVE_NAME_PARTS)
        ]
        out.extend(("secret", v) for v in self._extra)
        out.sort(key=lambda nv: len(nv[1]), reverse=True)
        return out

    def clean(self, text: str) -> str:
        """``text`` with every secret replaced (see the module docstring)."""
        for name, value in self.secret_values():
            if value in text:
                text = text.replace(value, f"<redacted:{name}>")
        for pattern, repl in _PATTERNS:
            text = pattern.sub(repl, text)
        return text


def sanitize(text: str, env: Mapping[str, str] | None = None) -> str:
    """``Sanitizer(env).clean(text)``."""
    return Sanitizer(env).clean(text)

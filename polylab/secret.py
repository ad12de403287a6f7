"""``Secret``: a string that never leaves the process by accident.

Credentials hold their secret parts (API secret, passphrase, private keys) as ``Secret``; only
the code that signs or sends them calls ``reveal()``. Every other path is redacted or refused:

* ``repr``, ``str``, f-strings/``format`` and rich show ``<redacted>``;
* ``msgspec.json.encode``, ``msgspec.to_builtins``, ``json.dumps`` refuse (``TypeError``: the
  type is unknown to them; an ``enc_hook`` that falls back to ``str`` gets ``<redacted>``);
* ``pickle`` (and so multiprocessing queues, caches) refuses with ``TypeError``;
* ``==`` compares in constant time; ``copy`` returns the same immutable object.
"""

from __future__ import annotations

import hmac
from typing import Any, NoReturn

import msgspec

__all__ = ["REDACTED", "ApiCreds", "Secret"]

REDACTED = "<redacted>"


class Secret:
    """An immutable secret string; ``reveal()`` is the only way to its value."""

    __slots__ = ("_value",)

    _value: str

    def __init__(self, value: str | Secret) -> None:
        if isinstance(value, Secret):
            value = value.reveal()
        if not isinstance(value, str):
            raise TypeError(f"Secret holds a str, got a {type(value).__name__}")
        object.__setattr__(self, "_value", value)

    def reveal(self) -> str:
        """The secret text, for the code that signs or sends it (never log the result)."""
        return self._value

    def __setattr__(self, name: str, value: object) -> NoReturn:
        raise AttributeError("Secret is immutable")

    def __repr__(self) -> str:
        return REDACTED

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return REDACTED

    def __rich_repr__(self) -> list[Any]:
        return [REDACTED]

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        return hmac.compare_digest(self._value.encode(), other._value.encode())

    def __hash__(self) -> int:
        return hash((Secret, self._value))

    def __bool__(self) -> bool:
        return bool(self._value)

    def __reduce__(self) -> NoReturn:
        raise TypeError("a Secret cannot be pickled: pass it within the process that uses it")

    def __copy__(self) -> Secret:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> Secret:
        return self


class _ApiCredsWire(msgspec.Struct, frozen=True, kw_only=True):
    """The venue's ``{"apiKey", "secret", "passphrase"}`` answer, decoded once, then wrapped."""

    api_key: str = msgspec.field(name="apiKey")
    secret: str
    passphrase: str


_creds_dec = msgspec.json.Decoder(_ApiCredsWire)


class ApiCreds(msgspec.Struct, frozen=True, kw_only=True):
    """L2 credentials. ``secret`` (base64url, keys the HMAC) and ``passphrase`` (sent as a
    header) are ``Secret``: redacted in ``repr``/``str``/rich, refused by msgspec encoding,
    ``to_builtins`` and ``pickle``; the signing code calls ``.reveal()``. Plain strings given to
    the constructor are wrapped. ``decode`` reads the venue's JSON answer.
    """

    api_key: str = msgspec.field(name="apiKey")
    secret: Secret
    passphrase: Secret

    def __post_init__(self) -> None:
        for name in ("secret", "passphrase"):
            value = getattr(self, name)
            if not isinstance(value, Secret):
                msgspec.structs.force_setattr(self, name, Secret(value))

    @classmethod
    def decode(cls, raw: bytes | str) -> ApiCreds:
        """From the venue's ``{"apiKey", "secret", "passphrase"}`` (``msgspec.DecodeError`` if
        it has another shape)."""
        w = _creds_dec.decode(raw)
        return cls(api_key=w.api_key, secret=Secret(w.secret), passphrase=Secret(w.passphrase))

    def __repr__(self) -> str:
        return f"ApiCreds(api_key={self.api_key!r}, secret=<redacted>, passphrase=<redacted>)"

    def __str__(self) -> str:
        return self.__repr__()

    def __rich_repr__(self) -> list[tuple[str, Any]]:
        return [("api_key", self.api_key), ("secret", REDACTED), ("passphrase", REDACTED)]

    def __reduce__(self) -> NoReturn:
        raise TypeError("ApiCreds cannot be pickled: load the credentials where they are used")

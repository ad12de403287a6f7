"""CLOB authentication: L1 (EIP-712 ``ClobAuth`` by the wallet) and L2 (HMAC by API key).

Both sides live here: the client builds headers exactly as py-clob-client-v2 1.2.1 does
(``create_level_1_headers`` / ``create_level_2_headers``, byte-identical, tests check it), and the
local simulator verifies them with ``verify_l1`` / ``verify_l2`` and issues credentials with
``derive_api_creds``.

* L1 signs ``ClobAuth(address address,string timestamp,uint256 nonce,string message)`` under
  the domain ``{name: "ClobAuthDomain", version: "1", chainId}`` (no verifying contract; the
  version stays "1" whatever the exchange generation). ``timestamp`` is unix **seconds** as a
  string, ``nonce`` selects which API key ``/auth/derive-api-key`` re-derives (default 0).
* L2 signs ``timestamp + METHOD + path + body`` with HMAC-SHA256 keyed by the base64url-decoded
  secret; ``path`` has no query string and ``body`` is the exact JSON text sent (see
  ``json_body``). Like the SDK, single quotes in the body are turned into double quotes before
  signing, so the verifier must apply the same rule to the body it receives.

Secrets never show: ``ApiCreds`` holds ``secret`` and ``passphrase`` as ``polylab.secret.Secret``
(redacted in every text form, refused by every serializer); only signing calls ``reveal()``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any, Final

from polylab.execution.eip712 import (
    Domain,
    SigningKey,
    address_word,
    hash_string,
    keccak256,
    recover_address,
    to_checksum_address,
    typed_data_digest,
)
from polylab.secret import ApiCreds, Secret

__all__ = [
    "CLOB_AUTH_MESSAGE",
    "CLOB_AUTH_TYPE_STRING",
    "POLY_ADDRESS",
    "POLY_API_KEY",
    "POLY_NONCE",
    "POLY_PASSPHRASE",
    "POLY_SIGNATURE",
    "POLY_TIMESTAMP",
    "ApiCreds",
    "CredsLookup",
    "build_hmac_signature",
    "clob_auth_digest",
    "clob_auth_domain",
    "derive_api_creds",
    "json_body",
    "l1_headers",
    "l2_headers",
    "sign_clob_auth",
    "verify_l1",
    "verify_l2",
]

POLY_ADDRESS: Final = "POLY_ADDRESS"
POLY_SIGNATURE: Final = "POLY_SIGNATURE"
POLY_TIMESTAMP: Final = "POLY_TIMESTAMP"
POLY_NONCE: Final = "POLY_NONCE"
POLY_API_KEY: Final = "POLY_API_KEY"
POLY_PASSPHRASE: Final = "POLY_PASSPHRASE"

CLOB_AUTH_MESSAGE: Final = "This message attests that I control the given wallet"
CLOB_AUTH_TYPE_STRING: Final = (
    "ClobAuth(address address,string timestamp,uint256 nonce,string message)"
)
_CLOB_AUTH_TYPE_HASH: Final = hash_string(CLOB_AUTH_TYPE_STRING)
_CLOB_AUTH_MESSAGE_HASH: Final = hash_string(CLOB_AUTH_MESSAGE)


CredsLookup = Callable[[str], ApiCreds | tuple[str, ApiCreds] | None]
"""API key → its credentials, optionally with the owning address (then ``verify_l2`` checks
that ``POLY_ADDRESS`` is that owner), or ``None`` when the key is unknown."""


_auth_domains: dict[int, Domain] = {}


def clob_auth_domain(chain_id: int) -> Domain:
    """The ``ClobAuthDomain`` (version "1", no verifying contract) of a chain."""
    d = _auth_domains.get(chain_id)
    if d is None:
        d = _auth_domains[chain_id] = Domain("ClobAuthDomain", "1", chain_id, None)
    return d


def clob_auth_digest(address: str, timestamp: int | str, nonce: int, chain_id: int) -> bytes:
    """EIP-712 digest of ``ClobAuth``; ``timestamp`` is signed as its decimal string."""
    struct_hash = keccak256(
        _CLOB_AUTH_TYPE_HASH
        + address_word(address)
        + hash_string(str(timestamp))
        + nonce.to_bytes(32, "big")
        + _CLOB_AUTH_MESSAGE_HASH
    )
    return typed_data_digest(clob_auth_domain(chain_id).separator, struct_hash)


def sign_clob_auth(key: SigningKey, chain_id: int, timestamp: int, nonce: int = 0) -> str:
    """``0x`` signature of the key's ``ClobAuth`` (the ``POLY_SIGNATURE`` L1 header)."""
    digest = clob_auth_digest(key.address, timestamp, nonce, chain_id)
    return "0x" + key.sign_digest(digest).hex()


def l1_headers(
    key: SigningKey, chain_id: int, *, nonce: int = 0, timestamp: int | None = None
) -> dict[str, str]:
    """L1 headers for ``/auth/api-key`` and ``/auth/derive-api-key``.

    ``timestamp`` (unix seconds) defaults to the local clock; pass the server's ``/time`` when
    clocks disagree.
    """
    ts = int(time.time()) if timestamp is None else timestamp
    return {
        POLY_ADDRESS: key.address,
        POLY_SIGNATURE: sign_clob_auth(key, chain_id, ts, nonce),
        POLY_TIMESTAMP: str(ts),
        POLY_NONCE: str(nonce),
    }


def json_body(obj: Any) -> str:
    """The exact request text the SDK sends (compact separators, non-ASCII kept); sign this."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def build_hmac_signature(
    secret: str, timestamp: int | str, method: str, request_path: str, body: str | None = None
) -> str:
    """URL-safe base64 HMAC-SHA256 of ``timestamp + method + request_path [+ body]``.

    Same quirks as the SDK: an empty body adds nothing, and ``'`` in the body is signed as ``"``.
    """
    message = f"{timestamp}{method}{request_path}"
    if body:
        message += body.replace("'", '"')
    digest = hmac.new(base64.urlsafe_b64decode(secret), message.encode("utf-8"), hashlib.sha256)
    return base64.urlsafe_b64encode(digest.digest()).decode("ascii")


def l2_headers(
    address: str,
    creds: ApiCreds,
    method: str,
    request_path: str,
    body: str | None = None,
    *,
    timestamp: int | None = None,
) -> dict[str, str]:
    """L2 headers for an authenticated call; ``body`` is the exact text sent (``json_body``).

    ``address`` is the signing EOA (``POLY_ADDRESS``); ``request_path`` excludes the query.
    """
    ts = int(time.time()) if timestamp is None else timestamp
    return {
        POLY_ADDRESS: address,
        POLY_SIGNATURE: build_hmac_signature(creds.secret.reveal(), ts, method, request_path, body),
        POLY_TIMESTAMP: str(ts),
        POLY_API_KEY: creds.api_key,
        POLY_PASSPHRASE: creds.passphrase.reveal(),
    }


def _header(headers: Mapping[str, str], name: str) -> str | None:
    v = headers.get(name)
    if v is None:
        v = headers.get(name.lower())
    if v is None:
        wanted = name.lower()
        v = next((val for k, val in headers.items() if k.lower() == wanted), None)
    return v


def _fresh(ts_text: str, now_s: int | None, max_skew_s: int | None) -> bool:
    if not (ts_text.isascii() and ts_text.isdigit()):
        return False
    if max_skew_s is None:
        return True
    now = int(time.time()) if now_s is None else now_s
    return abs(now - int(ts_text)) <= max_skew_s


def verify_l1(
    headers: Mapping[str, str],
    chain_id: int,
    *,
    now_s: int | None = None,
    max_skew_s: int | None = None,
) -> str | None:
    """Checksummed ``POLY_ADDRESS`` if the L1 headers prove control of it, else ``None``.

    Header names are matched case-insensitively. With ``max_skew_s``, a ``POLY_TIMESTAMP``
    further than that from ``now_s`` (default: the local clock) is refused.
    """
    address = _header(headers, POLY_ADDRESS)
    signature = _header(headers, POLY_SIGNATURE)
    ts = _header(headers, POLY_TIMESTAMP)
    nonce = _header(headers, POLY_NONCE) or "0"
    if address is None or signature is None or ts is None:
        return None
    if not _fresh(ts, now_s, max_skew_s) or not (nonce.isascii() and nonce.isdigit()):
        return None
    try:
        digest = clob_auth_digest(address, ts, int(nonce), chain_id)
        signer = recover_address(digest, signature)
    except (ValueError, OverflowError):
        return None
    return signer if signer.lower() == address.lower() else None


def verify_l2(
    headers: Mapping[str, str],
    method: str,
    path: str,
    body: str | bytes | None,
    lookup_creds: CredsLookup,
    *,
    now_s: int | None = None,
    max_skew_s: int | None = None,
) -> str | None:
    """Checksummed ``POLY_ADDRESS`` if the L2 headers are valid for this request, else ``None``.

    ``path`` is the request path without the query string; ``body`` the raw request body. The
    passphrase and HMAC are compared in constant time.
    """
    address = _header(headers, POLY_ADDRESS)
    signature = _header(headers, POLY_SIGNATURE)
    ts = _header(headers, POLY_TIMESTAMP)
    api_key = _header(headers, POLY_API_KEY)
    passphrase = _header(headers, POLY_PASSPHRASE)
    if address is None or signature is None or ts is None or api_key is None:
        return None
    if passphrase is None or not _fresh(ts, now_s, max_skew_s):
        return None
    found = lookup_creds(api_key)
    if found is None:
        return None
    if isinstance(found, tuple):
        owner, creds = found
        if owner.lower() != address.lower():
            return None
    else:
        creds = found
    if not hmac.compare_digest(passphrase.encode(), creds.passphrase.reveal().encode()):
        return None
    text = body.decode("utf-8") if isinstance(body, bytes) else body
    try:
        expected = build_hmac_signature(creds.secret.reveal(), ts, method, path, text)
        checksummed = to_checksum_address(address)
    except ValueError:
        return None
    if not hmac.compare_digest(expected.encode(), signature.encode()):
        return None
    return checksummed


def derive_api_creds(address: str, nonce: int, server_secret: bytes) -> ApiCreds:
    """Deterministic credentials for ``(address, nonce)`` (the simulator's key issuer).

    HMAC-SHA256 under ``server_secret`` seeds three labelled sub-keys: a UUIDv4-formatted API
    key, a 32-byte base64url secret (44 characters, like the venue's) and a 64-hex passphrase.
    The address is case-folded, so both spellings of an address get the same credentials.
    """
    seed = hmac.new(
        server_secret,
        b"polylab/api-creds/v1|" + address.lower().encode("ascii") + b"|" + str(nonce).encode(),
        hashlib.sha256,
    ).digest()

    def sub(label: bytes) -> bytes:
        return hmac.new(seed, label, hashlib.sha256).digest()

    return ApiCreds(
        api_key=str(uuid.UUID(bytes=sub(b"key")[:16], version=4)),
        secret=Secret(base64.urlsafe_b64encode(sub(b"secret")).decode("ascii")),
        passphrase=Secret(sub(b"passphrase").hex()),
    )

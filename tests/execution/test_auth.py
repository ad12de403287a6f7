"""CLOB auth: known answers, byte-identity with the official header builders, verification."""

from __future__ import annotations

import base64
import json
import socket
import uuid
from types import SimpleNamespace
from typing import Any
from unittest import mock

import msgspec
import pytest
from eth_account import Account
from eth_account.messages import encode_typed_data
from hypothesis import given, settings
from hypothesis import strategies as st
from py_clob_client.clob_types import ApiCreds as V1ApiCreds
from py_clob_client.clob_types import RequestArgs as V1RequestArgs
from py_clob_client.headers import headers as v1_headers
from py_clob_client.signer import Signer as V1Signer
from py_clob_client_v2.clob_types import ApiCreds as SdkApiCreds
from py_clob_client_v2.clob_types import RequestArgs
from py_clob_client_v2.headers.headers import create_level_1_headers, create_level_2_headers
from py_clob_client_v2.signer import Signer as SdkSigner
from py_clob_client_v2.signing.hmac import build_hmac_signature as sdk_hmac
from rich.pretty import pretty_repr

from polylab.execution.auth import (
    CLOB_AUTH_MESSAGE,
    ApiCreds,
    build_hmac_signature,
    clob_auth_digest,
    derive_api_creds,
    json_body,
    l1_headers,
    l2_headers,
    sign_clob_auth,
    verify_l1,
    verify_l2,
)
from polylab.execution.eip712 import SECP256K1_N, SigningKey

KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
ADDRESS = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
EXAMPLES = settings(max_examples=50, deadline=None)
NOW = 1_760_000_000
SERVER_SECRET = b"simulator-secret"

private_keys = st.integers(min_value=1, max_value=SECP256K1_N - 1).map(
    lambda k: "0x" + k.to_bytes(32, "big").hex()
)
chain_ids = st.one_of(st.sampled_from([137, 80002]), st.integers(min_value=1, max_value=2**64))
secrets_b64 = st.binary(min_size=1, max_size=64).map(lambda b: base64.urlsafe_b64encode(b).decode())
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=10,
)


def _v1_now(ts: int) -> Any:
    """py-clob-client 0.34 reads ``datetime.now()`` itself; pin it."""
    fake = SimpleNamespace(now=lambda: SimpleNamespace(timestamp=lambda: float(ts)))
    return mock.patch.object(v1_headers, "datetime", fake)


# --- known answers (protocol doc §3.2) ----------------------------------------------------------


def test_clob_auth_vector_gives_the_documented_signature() -> None:
    sig = sign_clob_auth(SigningKey(KEY), 80002, 10000000, 23)
    assert sig == (
        "0xf62319a987514da40e57e2f4d7529f7bac38f0355bd88bb5adbb3768d80de6c1"
        "682518e0af677d5260366425f4361e7b70c25ae232aff0ab2331e2b164a1aedc1b"
    )


def test_hmac_vector_gives_the_documented_signature() -> None:
    sig = build_hmac_signature(
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        1000000,
        "test-sign",
        "/orders",
        '{"hash": "0x123"}',
    )
    assert sig == "ZwAdJKvoYRlEKDkNMwd5BuwNNtg93kNaR_oU2HrfVvc="


# --- byte-identity with the official clients ----------------------------------------------------


@EXAMPLES
@given(
    key=private_keys,
    chain_id=chain_ids,
    nonce=st.integers(min_value=0, max_value=2**256 - 1),
    ts=st.integers(min_value=0, max_value=2**40),
)
def test_l1_headers_are_identical_to_both_official_clients_and_eth_account(
    key: str, chain_id: int, nonce: int, ts: int
) -> None:
    ours = l1_headers(SigningKey(key), chain_id, nonce=nonce, timestamp=ts)
    assert ours == create_level_1_headers(SdkSigner(key, chain_id), nonce=nonce, timestamp=ts)
    with _v1_now(ts):
        assert ours == v1_headers.create_level_1_headers(V1Signer(key, chain_id), nonce)

    typed = {
        "primaryType": "ClobAuth",
        "types": {
            "EIP712Domain": [
                {"name": "name", "type": "string"},
                {"name": "version", "type": "string"},
                {"name": "chainId", "type": "uint256"},
            ],
            "ClobAuth": [
                {"name": "address", "type": "address"},
                {"name": "timestamp", "type": "string"},
                {"name": "nonce", "type": "uint256"},
                {"name": "message", "type": "string"},
            ],
        },
        "domain": {"name": "ClobAuthDomain", "version": "1", "chainId": chain_id},
        "message": {
            "address": ours["POLY_ADDRESS"],
            "timestamp": str(ts),
            "nonce": nonce,
            "message": CLOB_AUTH_MESSAGE,
        },
    }
    signed = Account.sign_message(encode_typed_data(full_message=typed), private_key=key)
    assert "0x" + signed.signature.hex() == ours["POLY_SIGNATURE"]
    assert verify_l1(ours, chain_id) == Account.from_key(key).address


@EXAMPLES
@given(
    secret=secrets_b64,
    ts=st.integers(min_value=0, max_value=2**40),
    method=st.sampled_from(["GET", "POST", "DELETE"]),
    path=st.sampled_from(["/order", "/orders", "/data/orders", "/cancel-all", "/auth/api-keys"]),
    body=st.one_of(st.none(), json_values),
)
def test_l2_headers_are_identical_to_both_official_clients(
    secret: str, ts: int, method: str, path: str, body: Any
) -> None:
    creds = ApiCreds(api_key=str(uuid.uuid4()), secret=secret, passphrase="p" * 64)
    text = None if body is None else json_body(body)
    ours = l2_headers(ADDRESS, creds, method, path, text, timestamp=ts)

    sdk_creds = SdkApiCreds(creds.api_key, creds.secret.reveal(), creds.passphrase.reveal())
    args = RequestArgs(method=method, request_path=path, body=body, serialized_body=text)
    assert ours == create_level_2_headers(SdkSigner(KEY, 137), sdk_creds, args, timestamp=ts)
    v1_args = V1RequestArgs(method=method, request_path=path, body=body, serialized_body=text)
    v1_creds = V1ApiCreds(creds.api_key, creds.secret.reveal(), creds.passphrase.reveal())
    with _v1_now(ts):
        assert ours == v1_headers.create_level_2_headers(V1Signer(KEY, 137), v1_creds, v1_args)
    assert ours["POLY_SIGNATURE"] == sdk_hmac(secret, str(ts), method, path, text)
    if text is not None:
        assert text == json.dumps(body, separators=(",", ":"), ensure_ascii=False)
    found = verify_l2(ours, method, path, text, lambda k: (ADDRESS, creds))
    assert found == ADDRESS


def test_hmac_signs_single_quotes_as_double_quotes_like_the_sdk() -> None:
    secret = base64.urlsafe_b64encode(b"k" * 32).decode()
    body = json_body({"note": "it's"})
    assert build_hmac_signature(secret, 1, "POST", "/order", body) == sdk_hmac(
        secret, 1, "POST", "/order", body
    )
    assert build_hmac_signature(secret, 1, "POST", "/order", body) == build_hmac_signature(
        secret, 1, "POST", "/order", body.replace("'", '"')
    )


# --- verification (what the simulator runs) -----------------------------------------------------


def test_verify_l1_accepts_the_wallet_and_refuses_forgeries() -> None:
    key = SigningKey(KEY)
    headers = l1_headers(key, 137, nonce=3, timestamp=NOW)
    assert verify_l1(headers, 137) == ADDRESS
    assert verify_l1({k.lower(): v for k, v in headers.items()}, 137) == ADDRESS
    assert verify_l1(headers, 80002) is None  # signed for another chain
    assert verify_l1(headers | {"POLY_NONCE": "4"}, 137) is None
    assert verify_l1(headers | {"POLY_TIMESTAMP": str(NOW + 1)}, 137) is None
    other = SigningKey("0x" + "22" * 32).address
    assert verify_l1(headers | {"POLY_ADDRESS": other}, 137) is None
    sig = headers["POLY_SIGNATURE"]
    assert verify_l1(headers | {"POLY_SIGNATURE": sig[:-2] + "1d"}, 137) is None
    assert verify_l1(headers | {"POLY_SIGNATURE": "0xzz"}, 137) is None
    assert verify_l1({"POLY_ADDRESS": ADDRESS}, 137) is None
    assert verify_l1(headers, 137, now_s=NOW + 30, max_skew_s=60) == ADDRESS
    assert verify_l1(headers, 137, now_s=NOW + 61, max_skew_s=60) is None


def test_verify_l2_accepts_the_right_request_and_refuses_any_change() -> None:
    creds = derive_api_creds(ADDRESS, 0, SERVER_SECRET)
    keys = {creds.api_key: (ADDRESS, creds)}
    body = json_body({"orderID": "0xabc"})
    headers = l2_headers(ADDRESS, creds, "DELETE", "/order", body, timestamp=NOW)

    def ok(**kw: Any) -> str | None:
        args: dict[str, Any] = {
            "headers": headers,
            "method": "DELETE",
            "path": "/order",
            "body": body,
            "lookup_creds": keys.get,
        }
        return verify_l2(**(args | kw))

    assert ok() == ADDRESS
    assert ok(body=body.encode()) == ADDRESS
    assert ok(headers={k.lower(): v for k, v in headers.items()}) == ADDRESS
    assert ok(lookup_creds=lambda k: creds) == ADDRESS  # creds without an owner binding
    assert ok(body=json_body({"orderID": "0xabd"})) is None
    assert ok(method="POST") is None
    assert ok(path="/orders") is None
    assert ok(lookup_creds=lambda k: None) is None
    assert ok(headers=headers | {"POLY_PASSPHRASE": "0" * 64}) is None
    other = SigningKey("0x" + "22" * 32).address
    assert ok(headers=headers | {"POLY_ADDRESS": other}) is None  # key bound to ADDRESS
    assert ok(headers=headers | {"POLY_TIMESTAMP": str(NOW + 1)}) is None
    assert ok(headers={k: v for k, v in headers.items() if k != "POLY_API_KEY"}) is None
    assert ok(now_s=NOW + 5, max_skew_s=30) == ADDRESS
    assert ok(now_s=NOW - 31, max_skew_s=30) is None


# --- credentials ---------------------------------------------------------------------------------


def test_derived_credentials_are_deterministic_and_shaped_like_the_venues() -> None:
    a = derive_api_creds(ADDRESS, 0, SERVER_SECRET)
    assert a == derive_api_creds(ADDRESS.lower(), 0, SERVER_SECRET)
    assert uuid.UUID(a.api_key).version == 4 and str(uuid.UUID(a.api_key)) == a.api_key
    assert len(a.secret.reveal()) == 44
    assert len(base64.urlsafe_b64decode(a.secret.reveal())) == 32
    assert len(a.passphrase.reveal()) == 64 and int(a.passphrase.reveal(), 16) >= 0
    others = [
        derive_api_creds(ADDRESS, 1, SERVER_SECRET),
        derive_api_creds(SigningKey("0x" + "22" * 32).address, 0, SERVER_SECRET),
        derive_api_creds(ADDRESS, 0, b"another-secret"),
    ]
    for b in others:
        assert {a.api_key, a.secret.reveal(), a.passphrase.reveal()}.isdisjoint(
            {b.api_key, b.secret.reveal(), b.passphrase.reveal()}
        )


def test_api_creds_redact_secrets_and_decode_the_venue_json() -> None:
    creds = ApiCreds.decode(b'{"apiKey": "k-1", "secret": "c2VjcmV0", "passphrase": "pass-phrase"}')
    assert (creds.api_key, creds.secret.reveal(), creds.passphrase.reveal()) == (
        "k-1",
        "c2VjcmV0",
        "pass-phrase",
    )
    for text in (repr(creds), str(creds), pretty_repr(creds), f"{creds}"):
        assert "c2VjcmV0" not in text and "pass-phrase" not in text and "k-1" in text
    with pytest.raises(TypeError):  # serializers refuse the secret parts (tests/test_secrets.py)
        msgspec.json.encode(creds)
    with pytest.raises(msgspec.DecodeError):
        ApiCreds.decode(b'{"apiKey": "k-1", "secret": 5, "passphrase": "p"}')


def test_l1_signing_makes_no_network_call(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_network(*args: object, **kwargs: object) -> None:
        raise AssertionError("network access during auth signing")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    headers = l1_headers(SigningKey(KEY), 137)
    assert verify_l1(headers, 137) == ADDRESS
    digest = clob_auth_digest(ADDRESS, headers["POLY_TIMESTAMP"], 0, 137)
    assert len(digest) == 32

"""CLOB V2 orders (11-field struct), for both live exchange domains: hash, sign, JSON bodies.

``OrderSigner``, which builds and signs orders for one key, is in ``polylab.execution.signer``.

Two domains share the struct (protocol doc §0.1, §4.2):

* version ``"2"``: CTF markets (Gamma ``version: "v1"``), CTFExchangeV2 or, for neg-risk
  markets, the NegRisk V2 exchange;
* version ``"3"``: Protocol V2 markets (Gamma ``version: "v2"``), ExchangeV3, no neg-risk
  variant; ``token_id`` is then the 75-digit position id.

Why not the SDK: py-clob-client-v2 signs through eth-account (~500 µs per order) and fetches tick
size, neg-risk and version over HTTP inside ``create_order``. Here domain separators and type
hashes are computed once, nothing touches the network, and an order costs ~50 µs; signatures and
``POST /order`` bodies are byte-identical to py-clob-client-v2 1.2.1 (tests check it).

Units: amounts in 6-decimal base units (micros); ``timestamp_ms`` in ms since the epoch (signed);
``expiration`` in unix seconds (sent, **not** signed; 0 = none); ``side`` 0 = BUY, 1 = SELL;
``signature_type`` 0 EOA, 1 POLY_PROXY, 2 POLY_GNOSIS_SAFE, 3 POLY_1271 (deposit wallet).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Mapping
from functools import lru_cache
from typing import Any, Final

import msgspec

from polylab.execution.eip712 import (
    ZERO_WORD,
    Domain,
    SigningKey,
    address_word,
    hash_string,
    keccak256,
    recover_address,
    signature_from_hex,
    typed_data_digest,
    word_bytes32,
)
from polylab.execution.signing_v1 import (
    EXCHANGE_NAME,
    ORDER_TYPES,
    SIDE_NAMES,
    SignedOrderV1,
    _order_dict,
    _str_field,
    _word,
    exchange_domain_v1,
    order_to_json_v1,
    parse_side,
    parse_uint,
    recover_signer_v1,
)

__all__ = [
    "BYTES32_ZERO",
    "EXCHANGES_V2",
    "EXCHANGES_V3",
    "ORDER_TYPE_HASH_V2",
    "ORDER_TYPE_STRING_V2",
    "OrderV2",
    "SignedOrderV2",
    "exchange_domain",
    "order_digest_v2",
    "order_from_json_v2",
    "order_to_json",
    "order_to_json_v2",
    "random_salt",
    "recover_signer",
    "recover_signer_v2",
    "sign_order_v2",
    "struct_hash_v2",
]

BYTES32_ZERO: Final = "0x" + "0" * 64
POLY_1271: Final = 3

EXCHANGES_V2: Final[Mapping[int, tuple[str, str]]] = {
    137: (
        "0xE111180000d2663C0091e4f400237545B87B996B",
        "0xe2222d279d744050d28e00520010520000310F59",
    ),
    80002: (
        "0xE111180000d2663C0091e4f400237545B87B996B",
        "0xe2222d279d744050d28e00520010520000310F59",
    ),
}
"""chain id → (CTFExchangeV2, NegRisk V2 exchange), domain version "2"."""
EXCHANGES_V3: Final[Mapping[int, str]] = {
    137: "0xe3333700cA9d93003F00f0F71f8515005F6c00Aa",
    80002: "0x9fE6e61422AdB6F610d8597F9684b16912D50C3D",
}
"""chain id → ExchangeV3 (Protocol V2 markets), domain version "3"."""

ORDER_TYPE_STRING_V2: Final = (
    "Order(uint256 salt,address maker,address signer,uint256 tokenId,"
    "uint256 makerAmount,uint256 takerAmount,uint8 side,uint8 signatureType,"
    "uint256 timestamp,bytes32 metadata,bytes32 builder)"
)
ORDER_TYPE_HASH_V2: Final = hash_string(ORDER_TYPE_STRING_V2)
# POLY_1271 deposit wallets verify a Solady nested EIP-712 "TypedDataSign" envelope.
_SOLADY_TYPE_HASH: Final = hash_string(
    "TypedDataSign(Order contents,string name,string version,uint256 chainId,"
    "address verifyingContract,bytes32 salt)" + ORDER_TYPE_STRING_V2
)
_WALLET_NAME_HASH: Final = hash_string("DepositWallet")
_WALLET_VERSION_HASH: Final = hash_string("1")
_TYPE_STRING_BYTES: Final = ORDER_TYPE_STRING_V2.encode("ascii")
_WRAPPED_TAIL: Final = _TYPE_STRING_BYTES + len(_TYPE_STRING_BYTES).to_bytes(2, "big")


class OrderV2(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """An unsigned V2 order: the 11 signed fields plus the unsigned ``expiration``."""

    salt: int
    maker: str
    """Funder address (proxy/safe/deposit wallet, or the EOA itself)."""
    signer: str
    """EOA that signs; the deposit wallet itself for POLY_1271."""
    token_id: int
    maker_amount: int
    taker_amount: int
    side: int
    signature_type: int = 0
    timestamp_ms: int
    metadata: str = BYTES32_ZERO
    builder: str = BYTES32_ZERO
    """Builder code (bytes32 hex) for builder-fee attribution."""
    expiration: int = 0


class SignedOrderV2(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """A V2 order with its ``0x`` signature and EIP-712 digest (the venue's order id)."""

    order: OrderV2
    signature: str
    order_hash: str


@lru_cache(maxsize=64)
def exchange_domain(version: int, chain_id: int = 137, *, neg_risk: bool = False) -> Domain:
    """Exchange domain for signing: ``version`` 1 (legacy), 2 (CTF markets) or 3 (Protocol V2).

    ``neg_risk`` picks the NegRisk exchange for versions 1 and 2; version 3 has none and, like
    py-clob-client-v2, ignores it.
    """
    if version == 1:
        return exchange_domain_v1(chain_id, neg_risk=neg_risk)
    try:
        if version == 2:
            contract = EXCHANGES_V2[chain_id][1 if neg_risk else 0]
        elif version == 3:
            contract = EXCHANGES_V3[chain_id]
        else:
            raise ValueError(f"exchange domain version must be 1, 2 or 3, was {version!r}")
    except KeyError:
        raise ValueError(f"no V{version} exchange known for chain id {chain_id}") from None
    return Domain(EXCHANGE_NAME, str(version), chain_id, contract)


def _b32(value: str) -> bytes:
    return ZERO_WORD if value == BYTES32_ZERO else word_bytes32(value)


def struct_hash_v2(order: OrderV2) -> bytes:
    """EIP-712 ``hashStruct`` of a V2 order (``expiration`` is not part of it)."""
    if order.side not in (0, 1):
        raise ValueError(f"side must be 0 (BUY) or 1 (SELL), was {order.side!r}")
    if order.signature_type not in (0, 1, 2, 3):
        raise ValueError(f"signature_type must be 0..3, was {order.signature_type!r}")
    return keccak256(
        b"".join(
            (
                ORDER_TYPE_HASH_V2,
                _word(order.salt, "salt"),
                address_word(order.maker),
                address_word(order.signer),
                _word(order.token_id, "token_id"),
                _word(order.maker_amount, "maker_amount"),
                _word(order.taker_amount, "taker_amount"),
                order.side.to_bytes(32, "big"),
                order.signature_type.to_bytes(32, "big"),
                _word(order.timestamp_ms, "timestamp_ms"),
                _b32(order.metadata),
                _b32(order.builder),
            )
        )
    )


def order_digest_v2(order: OrderV2, domain: Domain) -> bytes:
    """The 32-byte EIP-712 digest (as ``0x`` hex, the order id; EOA/proxy/safe sign it)."""
    return typed_data_digest(domain.separator, struct_hash_v2(order))


def _wallet_digest(contents: bytes, wallet: str, domain: Domain) -> bytes:
    envelope = keccak256(
        b"".join(
            (
                _SOLADY_TYPE_HASH,
                contents,
                _WALLET_NAME_HASH,
                _WALLET_VERSION_HASH,
                domain.chain_id.to_bytes(32, "big"),
                address_word(wallet),
                ZERO_WORD,
            )
        )
    )
    return typed_data_digest(domain.separator, envelope)


def sign_order_v2(key: SigningKey, order: OrderV2, domain: Domain) -> SignedOrderV2:
    """Sign a V2 order under a version-2 or version-3 exchange domain.

    The key must be the order's ``signer``, except for POLY_1271, where ``signer`` is the deposit
    wallet and the signature is the SDK's wrapped ERC-1271 form (65-byte inner signature ‖
    domain separator ‖ contents hash ‖ type string ‖ its 2-byte length).
    """
    contents = struct_hash_v2(order)
    digest = typed_data_digest(domain.separator, contents)
    if order.signature_type == POLY_1271:
        inner = key.sign_digest(_wallet_digest(contents, order.signer, domain))
        sig = inner + domain.separator + contents + _WRAPPED_TAIL
    elif address_word(order.signer) != key.address_word:
        raise ValueError("order signer does not match the signing key")
    else:
        sig = key.sign_digest(digest)
    return SignedOrderV2(order=order, signature="0x" + sig.hex(), order_hash="0x" + digest.hex())


def order_to_json_v2(
    signed: SignedOrderV2,
    owner: str,
    order_type: str,
    post_only: bool = False,
    defer_exec: bool = False,
) -> dict[str, Any]:
    """The ``POST /order`` body py-clob-client-v2 sends for a V2 order (same keys, same order).

    ``owner`` is the L2 API key. ``salt`` and ``signatureType`` are ints, other numbers strings.
    """
    o = signed.order
    return {
        "order": {
            "salt": o.salt,
            "maker": o.maker,
            "signer": o.signer,
            "tokenId": str(o.token_id),
            "makerAmount": str(o.maker_amount),
            "takerAmount": str(o.taker_amount),
            "side": SIDE_NAMES[o.side],
            "expiration": str(o.expiration),
            "signatureType": o.signature_type,
            "timestamp": str(o.timestamp_ms),
            "metadata": o.metadata,
            "builder": o.builder,
            "signature": signed.signature,
        },
        "owner": owner,
        "orderType": order_type,
        "deferExec": defer_exec,
        "postOnly": post_only,
    }


def order_to_json(
    signed: SignedOrderV1 | SignedOrderV2,
    owner: str,
    order_type: str,
    post_only: bool = False,
    defer_exec: bool = False,
) -> dict[str, Any]:
    """``POST /order`` body for either generation, refusing what ``post_order`` refuses.

    ``order_type`` is one of GTC, GTD, FOK, FAK; ``post_only`` is only valid with GTC/GTD.
    Serialise with ``auth.json_body`` and sign those same bytes for the L2 headers.
    """
    if order_type not in ORDER_TYPES:
        raise ValueError(f"order_type must be one of GTC, GTD, FOK, FAK, was {order_type!r}")
    if post_only and order_type in ("FOK", "FAK"):
        raise ValueError("post_only is not supported for FOK/FAK orders")
    if isinstance(signed, SignedOrderV2):
        return order_to_json_v2(signed, owner, order_type, post_only, defer_exec)
    return order_to_json_v1(signed, owner, order_type, post_only, defer_exec)


def order_from_json_v2(body: Mapping[str, Any], domain: Domain | None = None) -> SignedOrderV2:
    """Parse a posted V2 order (the whole body or its ``order`` object) into a ``SignedOrderV2``.

    ``ValueError`` names the first bad field. With ``domain`` the ``order_hash`` is filled in.
    """
    d = _order_dict(body)
    order = OrderV2(
        salt=parse_uint(d.get("salt"), "salt"),
        maker=_str_field(d, "maker"),
        signer=_str_field(d, "signer"),
        token_id=parse_uint(d.get("tokenId"), "tokenId"),
        maker_amount=parse_uint(d.get("makerAmount"), "makerAmount"),
        taker_amount=parse_uint(d.get("takerAmount"), "takerAmount"),
        side=parse_side(d.get("side")),
        signature_type=parse_uint(d.get("signatureType"), "signatureType"),
        timestamp_ms=parse_uint(d.get("timestamp"), "timestamp"),
        metadata=_str_field(d, "metadata"),
        builder=_str_field(d, "builder"),
        expiration=parse_uint(d.get("expiration", "0"), "expiration"),
    )
    digest = "" if domain is None else "0x" + order_digest_v2(order, domain).hex()
    return SignedOrderV2(order=order, signature=_str_field(d, "signature"), order_hash=digest)


def recover_signer_v2(body: Mapping[str, Any], domain: Domain) -> str:
    """Address that signed a posted V2 order under ``domain``.

    For EOA/proxy/safe orders compare it with the order's ``signer``. For POLY_1271 the wrapped
    signature must carry this domain, this order's contents and the order type string; the
    result is the EOA that signed for the wallet, and the caller checks it owns ``signer``.
    Raises ``SignatureError`` (a ``ValueError``) on malformed signatures.
    """
    signed = order_from_json_v2(body)
    o = signed.order
    contents = struct_hash_v2(o)
    sig = signature_from_hex(signed.signature)
    if o.signature_type != POLY_1271:
        return recover_address(typed_data_digest(domain.separator, contents), sig)
    n = len(_WRAPPED_TAIL)
    if len(sig) != 129 + n or sig[129:] != _WRAPPED_TAIL:
        raise ValueError("POLY_1271 signature is not the wrapped Order form")
    if sig[65:97] != domain.separator or sig[97:129] != contents:
        raise ValueError("POLY_1271 signature wraps another domain or order")
    return recover_address(_wallet_digest(contents, o.signer, domain), sig[:65])


def recover_signer(body: Mapping[str, Any], domain: Domain) -> str:
    """Signer of a posted order body under ``domain``; V1 struct for version "1", else V2."""
    if domain.version == "1":
        return recover_signer_v1(body, domain)
    return recover_signer_v2(body, domain)


def random_salt() -> int:
    """A fresh salt in ``[0, now_ms)``, the SDK's range, from a CSPRNG."""
    return secrets.randbelow(time.time_ns() // 1_000_000)

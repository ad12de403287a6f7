"""Legacy CLOB "V1" orders: the 12-field struct on the CTF Exchange, EIP-712 domain version "1".

Why keep it: the venue rejects V1 orders since 2026-04-28, but recorded sessions and the local
simulator's regression mode still speak it, and its known-answer vectors anchor the shared
EIP-712 code. Output matches py-order-utils 0.3.2 / py-clob-client 0.34.x signatures and
py-clob-client-v2's ``order_to_json_v1`` body byte for byte.

Units: ``maker_amount``/``taker_amount`` in 6-decimal base units (USDC or shares, micros);
``expiration`` in unix seconds (0 = none); ``fee_rate_bps`` in basis points; ``side`` 0 = BUY,
1 = SELL; ``signature_type`` 0 = EOA, 1 = POLY_PROXY, 2 = POLY_GNOSIS_SAFE.

This module also holds what the three generations share: sides, order types, wire parsing and
the price/size → amounts rule (``order_amounts``, protocol doc §4.4).
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Any, Final

import msgspec

from polylab.execution.eip712 import (
    Domain,
    SigningKey,
    address_word,
    hash_string,
    keccak256,
    recover_address,
    typed_data_digest,
)
from polylab.money import MICROS, TickSize, parse_micros, tick_size

__all__ = [
    "BUY",
    "EXCHANGES_V1",
    "EXCHANGE_NAME",
    "ORDER_TYPES",
    "ORDER_TYPE_HASH_V1",
    "ORDER_TYPE_STRING_V1",
    "SELL",
    "SIDE_NAMES",
    "ZERO_ADDRESS",
    "OrderV1",
    "SignedOrderV1",
    "exchange_domain_v1",
    "order_amounts",
    "order_digest_v1",
    "order_from_json_v1",
    "order_to_json_v1",
    "parse_side",
    "parse_uint",
    "recover_signer_v1",
    "sign_order_v1",
    "struct_hash_v1",
]

BUY: Final = 0
SELL: Final = 1
SIDE_NAMES: Final = ("BUY", "SELL")
"""Wire names of the sides, indexed by the signed ``uint8``."""
ORDER_TYPES: Final = frozenset({"GTC", "GTD", "FOK", "FAK"})
ZERO_ADDRESS: Final = "0x0000000000000000000000000000000000000000"
EXCHANGE_NAME: Final = "Polymarket CTF Exchange"

EXCHANGES_V1: Final[Mapping[int, tuple[str, str]]] = {
    137: (
        "0x4bFb41d5B3570DeFd03C39a9A4D8dE6Bd8B8982E",
        "0xC5d563A36AE78145C45a50134d48A1215220f80a",
    ),
    # Amoy: py-clob-client-v2's config; py-clob-client 0.34.6 names the neg-risk *adapter*
    # 0xd91E80cF2E7be2e162c6513ceD06f1dD0dA35296 as the exchange instead.
    80002: (
        "0xdFE02Eb6733538f8Ea35D585af8DE5958AD99E40",
        "0xC5d563A36AE78145C45a50134d48A1215220f80a",
    ),
}
"""chain id → (CTF Exchange, NegRisk CTF Exchange) verifying contracts of the V1 domain."""

ORDER_TYPE_STRING_V1: Final = (
    "Order(uint256 salt,address maker,address signer,address taker,uint256 tokenId,"
    "uint256 makerAmount,uint256 takerAmount,uint256 expiration,uint256 nonce,"
    "uint256 feeRateBps,uint8 side,uint8 signatureType)"
)
ORDER_TYPE_HASH_V1: Final = hash_string(ORDER_TYPE_STRING_V1)


class OrderV1(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """An unsigned V1 order, exactly the signed fields (amounts in micros)."""

    salt: int
    maker: str
    """Funder address (proxy/safe, or the EOA itself)."""
    signer: str
    """EOA that signs."""
    taker: str = ZERO_ADDRESS
    """Zero address = public order."""
    token_id: int
    maker_amount: int
    taker_amount: int
    expiration: int = 0
    nonce: int = 0
    fee_rate_bps: int = 0
    side: int
    signature_type: int = 0


class SignedOrderV1(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """A V1 order with its ``0x`` signature and EIP-712 digest (the venue's order id)."""

    order: OrderV1
    signature: str
    order_hash: str


@lru_cache(maxsize=64)
def exchange_domain_v1(chain_id: int = 137, *, neg_risk: bool = False) -> Domain:
    """The V1 exchange domain of a chain (neg-risk markets use the NegRisk CTF Exchange)."""
    try:
        contract = EXCHANGES_V1[chain_id][1 if neg_risk else 0]
    except KeyError:
        raise ValueError(f"no V1 exchange known for chain id {chain_id}") from None
    return Domain(EXCHANGE_NAME, "1", chain_id, contract)


def parse_uint(value: object, name: str) -> int:
    """A wire integer: an ``int`` or a plain decimal string (no sign, blanks or ``_``)."""
    if type(value) is int and value >= 0:
        return value
    if type(value) is str and value.isascii() and value.isdigit():
        return int(value)
    raise ValueError(f"{name} must be a non-negative decimal integer, was {value!r}")


def parse_side(value: object) -> int:
    """``"BUY"``/``"SELL"`` (or 0/1) → the signed ``uint8``."""
    if value == "BUY" or (type(value) is int and value == BUY):
        return BUY
    if value == "SELL" or (type(value) is int and value == SELL):
        return SELL
    raise ValueError(f"side must be BUY or SELL, was {value!r}")


def _word(value: int, name: str) -> bytes:
    try:
        return value.to_bytes(32, "big")
    except (OverflowError, AttributeError):
        raise ValueError(f"{name} must be an int in [0, 2**256), was {value!r}") from None


def struct_hash_v1(order: OrderV1) -> bytes:
    """EIP-712 ``hashStruct`` of a V1 order."""
    if order.side not in (BUY, SELL):
        raise ValueError(f"side must be 0 (BUY) or 1 (SELL), was {order.side!r}")
    if order.signature_type not in (0, 1, 2):
        raise ValueError(f"V1 signature_type must be 0, 1 or 2, was {order.signature_type!r}")
    return keccak256(
        b"".join(
            (
                ORDER_TYPE_HASH_V1,
                _word(order.salt, "salt"),
                address_word(order.maker),
                address_word(order.signer),
                address_word(order.taker),
                _word(order.token_id, "token_id"),
                _word(order.maker_amount, "maker_amount"),
                _word(order.taker_amount, "taker_amount"),
                _word(order.expiration, "expiration"),
                _word(order.nonce, "nonce"),
                _word(order.fee_rate_bps, "fee_rate_bps"),
                order.side.to_bytes(32, "big"),
                order.signature_type.to_bytes(32, "big"),
            )
        )
    )


def order_digest_v1(order: OrderV1, domain: Domain) -> bytes:
    """The 32-byte EIP-712 digest that is signed (and, as ``0x`` hex, the order id)."""
    return typed_data_digest(domain.separator, struct_hash_v1(order))


def sign_order_v1(key: SigningKey, order: OrderV1, domain: Domain) -> SignedOrderV1:
    """Sign a V1 order; the key must be the order's ``signer`` (as the SDK enforces)."""
    if address_word(order.signer) != key.address_word:
        raise ValueError("order signer does not match the signing key")
    digest = order_digest_v1(order, domain)
    return SignedOrderV1(
        order=order, signature="0x" + key.sign_digest(digest).hex(), order_hash="0x" + digest.hex()
    )


def order_to_json_v1(
    signed: SignedOrderV1,
    owner: str,
    order_type: str,
    post_only: bool = False,
    defer_exec: bool = False,
) -> dict[str, Any]:
    """The ``POST /order`` body py-clob-client-v2 sends for a V1 order (same keys, same order).

    ``owner`` is the L2 API key. ``salt`` and ``signatureType`` are ints, other numbers strings.
    """
    o = signed.order
    return {
        "order": {
            "salt": o.salt,
            "maker": o.maker,
            "signer": o.signer,
            "taker": o.taker,
            "tokenId": str(o.token_id),
            "makerAmount": str(o.maker_amount),
            "takerAmount": str(o.taker_amount),
            "side": SIDE_NAMES[o.side],
            "expiration": str(o.expiration),
            "nonce": str(o.nonce),
            "feeRateBps": str(o.fee_rate_bps),
            "signatureType": o.signature_type,
            "signature": signed.signature,
        },
        "owner": owner,
        "orderType": order_type,
        "deferExec": defer_exec,
        "postOnly": post_only,
    }


def _order_dict(body: Mapping[str, Any]) -> Mapping[str, Any]:
    inner = body.get("order", body)
    if not isinstance(inner, Mapping):
        raise ValueError("order must be a JSON object")
    return inner


def _str_field(d: Mapping[str, Any], key: str) -> str:
    v = d.get(key)
    if type(v) is not str:
        raise ValueError(f"{key} must be a string, was {v!r}")
    return v


def order_from_json_v1(body: Mapping[str, Any], domain: Domain | None = None) -> SignedOrderV1:
    """Parse a posted V1 order (the whole body or its ``order`` object) into a ``SignedOrderV1``.

    ``ValueError`` names the first bad field. With ``domain`` the ``order_hash`` is filled in;
    without it ``order_hash`` is empty.
    """
    d = _order_dict(body)
    order = OrderV1(
        salt=parse_uint(d.get("salt"), "salt"),
        maker=_str_field(d, "maker"),
        signer=_str_field(d, "signer"),
        taker=_str_field(d, "taker"),
        token_id=parse_uint(d.get("tokenId"), "tokenId"),
        maker_amount=parse_uint(d.get("makerAmount"), "makerAmount"),
        taker_amount=parse_uint(d.get("takerAmount"), "takerAmount"),
        expiration=parse_uint(d.get("expiration"), "expiration"),
        nonce=parse_uint(d.get("nonce"), "nonce"),
        fee_rate_bps=parse_uint(d.get("feeRateBps"), "feeRateBps"),
        side=parse_side(d.get("side")),
        signature_type=parse_uint(d.get("signatureType"), "signatureType"),
    )
    digest = "" if domain is None else "0x" + order_digest_v1(order, domain).hex()
    return SignedOrderV1(order=order, signature=_str_field(d, "signature"), order_hash=digest)


def recover_signer_v1(body: Mapping[str, Any], domain: Domain) -> str:
    """Address that signed a posted V1 order under ``domain`` (compare it with ``signer``)."""
    signed = order_from_json_v1(body)
    return recover_address(order_digest_v1(signed.order, domain), signed.signature)


def order_amounts(
    side: int | str,
    price: int | str,
    size: int | str,
    tick: str | TickSize,
    *,
    market: bool = False,
) -> tuple[int, int]:
    """``(maker_amount, taker_amount)`` in micros, the SDK's ``get_order_amounts`` done exactly.

    ``price``: ticks on ``tick`` (int) or a decimal string on the grid, within ``[tick, 1-tick]``.
    ``size``: micros (int) or a decimal string: shares for limit orders and market SELLs, dollars
    for market BUYs. It is floored to 2 decimals, as the SDK does. Limit BUY: taker = shares,
    maker = shares × price (exact: 2 + ≤4 decimals fit in 6). SELL: the mirror. Market BUY:
    maker = dollars, taker = dollars / price rounded up at ``amount + 4`` decimals then down at
    ``amount`` decimals (``amount`` = price decimals + 2), the SDK's rule without its float noise.
    """
    s = parse_side(side)
    grid = tick_size(tick)
    if grid.micros % 100:
        raise ValueError(f"tick size {grid.text} has more than 4 decimals")
    ticks = price if type(price) is int else grid.to_ticks(str(price))
    if not 1 <= ticks < grid.n:
        raise ValueError(f"price must be within [{grid.text}, 1 - {grid.text}], was {ticks} ticks")
    p = ticks * grid.micros
    q = size if type(size) is int else parse_micros(str(size))
    q -= q % 10_000
    if q <= 0:
        raise ValueError(f"size rounds to zero at 2 decimals: {size!r}")
    if market and s == BUY:
        amount_decimals = len(grid.text.partition(".")[2]) + 2
        up = -(-q * 10 ** (amount_decimals + 4) // p)
        return q, up // 10_000 * 10 ** (6 - amount_decimals)
    notional = q * p // MICROS
    return (notional, q) if s == BUY else (q, notional)

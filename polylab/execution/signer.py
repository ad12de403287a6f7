"""``OrderSigner``: builds and signs V1 and V2 orders for one key.

It lives apart from ``signing_v2`` (the V2 struct, domains, hashing, signing and ``POST /order``
bodies) to keep both modules short: the signer is the per-key convenience layer on top of
``signing_v1`` and ``signing_v2``, which do not import it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from polylab.execution.eip712 import Domain, SigningKey, address_word
from polylab.execution.signing_v1 import (
    EXCHANGE_NAME,
    ZERO_ADDRESS,
    OrderV1,
    SignedOrderV1,
    order_amounts,
    parse_side,
    sign_order_v1,
)
from polylab.execution.signing_v2 import (
    BYTES32_ZERO,
    POLY_1271,
    OrderV2,
    SignedOrderV2,
    random_salt,
    sign_order_v2,
)
from polylab.money import TickSize

__all__ = ["OrderSigner"]


@lru_cache(maxsize=64)
def _v1_domain(chain_id: int, contract: str) -> Domain:
    return Domain(EXCHANGE_NAME, "1", chain_id, contract)


def _wall_ms() -> int:
    return time.time_ns() // 1_000_000


class OrderSigner:
    """Builds and signs orders for one key; everything per-key is computed once here.

    ``funder`` is the address holding the funds (proxy/safe/deposit wallet); it defaults to the
    key's address. ``salt`` and ``clock_ms`` are injectable so tests are reproducible. Signing
    never touches the network. ``repr`` shows the address only; pickling is refused.
    """

    __slots__ = ("_clock_ms", "_salt", "chain_id", "funder", "key", "signature_type")

    def __init__(
        self,
        private_key: str,
        chain_id: int = 137,
        *,
        signature_type: int = 0,
        funder: str | None = None,
        salt: Callable[[], int] = random_salt,
        clock_ms: Callable[[], int] = _wall_ms,
    ) -> None:
        if signature_type not in (0, 1, 2, 3):
            raise ValueError(f"signature_type must be 0..3, was {signature_type!r}")
        self.key = SigningKey(private_key)
        self.chain_id = chain_id
        self.signature_type = signature_type
        self.funder = self.key.address if funder is None else funder
        address_word(self.funder)
        self._salt = salt
        self._clock_ms = clock_ms

    @property
    def address(self) -> str:
        """The signing EOA's checksummed address (POLY_ADDRESS, order ``signer``)."""
        return self.key.address

    def __repr__(self) -> str:
        return f"OrderSigner(address={self.key.address!r}, chain={self.chain_id}, key=<redacted>)"

    def __reduce__(self) -> Any:
        raise TypeError("OrderSigner cannot be pickled: build it where it signs")

    def order_v2(
        self,
        token_id: int,
        side: int,
        maker_amount: int,
        taker_amount: int,
        *,
        expiration: int = 0,
        timestamp_ms: int | None = None,
        metadata: str = BYTES32_ZERO,
        builder: str = BYTES32_ZERO,
        salt: int | None = None,
    ) -> OrderV2:
        """An unsigned V2 order from this signer's funder, with a fresh salt and timestamp."""
        return OrderV2(
            salt=self._salt() if salt is None else salt,
            maker=self.funder,
            signer=self.funder if self.signature_type == POLY_1271 else self.key.address,
            token_id=token_id,
            maker_amount=maker_amount,
            taker_amount=taker_amount,
            side=side,
            signature_type=self.signature_type,
            timestamp_ms=self._clock_ms() if timestamp_ms is None else timestamp_ms,
            metadata=metadata,
            builder=builder,
            expiration=expiration,
        )

    def order_v1(
        self,
        token_id: int,
        side: int,
        maker_amount: int,
        taker_amount: int,
        *,
        expiration: int = 0,
        nonce: int = 0,
        fee_rate_bps: int = 0,
        taker: str = ZERO_ADDRESS,
        salt: int | None = None,
    ) -> OrderV1:
        """An unsigned legacy V1 order from this signer's funder."""
        if self.signature_type == POLY_1271:
            raise ValueError("signature type POLY_1271 is not supported for V1 orders")
        return OrderV1(
            salt=self._salt() if salt is None else salt,
            maker=self.funder,
            signer=self.key.address,
            taker=taker,
            token_id=token_id,
            maker_amount=maker_amount,
            taker_amount=taker_amount,
            expiration=expiration,
            nonce=nonce,
            fee_rate_bps=fee_rate_bps,
            side=side,
            signature_type=self.signature_type,
        )

    def _check_domain(self, domain: Domain, versions: tuple[str, ...]) -> None:
        if domain.version not in versions or domain.chain_id != self.chain_id:
            raise ValueError(
                f"domain {domain.version!r} on chain {domain.chain_id} does not fit "
                f"versions {versions} on chain {self.chain_id}"
            )

    def sign_v1(self, order: OrderV1, exchange: Domain | str) -> SignedOrderV1:
        """Sign a legacy order; ``exchange`` is a version-1 domain or the exchange address."""
        if isinstance(exchange, str):
            exchange = _v1_domain(self.chain_id, exchange)
        self._check_domain(exchange, ("1",))
        return sign_order_v1(self.key, order, exchange)

    def sign_v2(self, order: OrderV2, domain: Domain) -> SignedOrderV2:
        """Sign a V2 order under a version-2 (CTF) or version-3 (Protocol V2) domain."""
        self._check_domain(domain, ("2", "3"))
        return sign_order_v2(self.key, order, domain)

    def limit_order_v2(
        self,
        token_id: int,
        side: int | str,
        price: int | str,
        size: int | str,
        tick: str | TickSize,
        domain: Domain,
        *,
        market: bool = False,
        expiration: int = 0,
        builder: str = BYTES32_ZERO,
    ) -> SignedOrderV2:
        """Amounts (``order_amounts``) + build + sign: the offline ``create_order``.

        With ``market=True`` it is ``create_market_order`` (``size`` in dollars for BUY).
        """
        s = parse_side(side)
        maker, taker = order_amounts(s, price, size, tick, market=market)
        order = self.order_v2(token_id, s, maker, taker, expiration=expiration, builder=builder)
        return self.sign_v2(order, domain)

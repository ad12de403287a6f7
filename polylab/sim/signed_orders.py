"""Turn a posted, signed order (``POST /order`` body) into an ``Exchange.place`` request.

The checks the venue makes before matching, in order (protocol doc §0.1, §3.3, §4):

1. the body's ``owner`` is the API key of the request and ``order.signer`` its address;
2. the order struct matches the exchange generation: CTF markets (``version`` "v1") take the
   11-field V2 struct on domain "2" (CTFExchangeV2, or the NegRisk V2 exchange for neg-risk
   markets) — or, when the simulator runs the legacy generation (``order_version="v1"``), the
   12-field V1 struct on domain "1"; Protocol V2 markets (``version`` "v2") take the V2 struct on
   domain "3" (ExchangeV3). A struct of the wrong generation is ``order_version_mismatch``;
3. the EIP-712 signature recovers to ``order.signer`` under that domain (a signature made for
   another domain is reported as such, since that is the usual mistake);
4. amounts → side, price and size: BUY price = makerAmount / takerAmount, SELL price =
   takerAmount / makerAmount, on the market's tick grid for GTC/GTD; a FOK/FAK BUY is a market
   buy spending up to makerAmount of collateral, its limit floored to the grid (a SELL's
   limit is rounded up: neither side gets a worse price than it signed).

Units: amounts in base units (micros); ``expiration`` unix seconds.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any, NamedTuple, cast

from polylab.execution.eip712 import Domain
from polylab.execution.signing_v1 import order_from_json_v1
from polylab.execution.signing_v2 import exchange_domain, order_from_json_v2, recover_signer
from polylab.money import MICROS
from polylab.sim.exchange import Exchange
from polylab.sim.matching import LOT_MICROS
from polylab.sim.orderbook import OrderType, Side

__all__ = ["OrderRejected", "OrderRequest", "decode_order", "market_domain"]

_V1_ONLY = ("nonce", "feeRateBps", "taker")
_V2_ONLY = ("timestamp", "metadata", "builder")


class OrderRejected(ValueError):
    """A posted order the venue refuses before matching: HTTP ``status`` and its message."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class OrderRequest(NamedTuple):
    """A verified order, ready for ``Exchange.place`` (``budget_micros`` for market BUYs)."""

    order_id: str
    maker: str
    token_id: str
    side: Side
    price_ticks: int
    size_micros: int
    budget_micros: int | None
    order_type: OrderType
    post_only: bool
    expiration_s: int


def market_domain(
    exchange: Exchange, token_id: str, chain_id: int, order_version: str
) -> Domain | None:
    """The EIP-712 domain orders on ``token_id`` must be signed for (``None``: unknown token)."""
    state = exchange.market_state(token_id)
    if state is None:
        return None
    market = state.market
    if market.version == "v2":
        return exchange_domain(3, chain_id)
    return exchange_domain(1 if order_version == "v1" else 2, chain_id, neg_risk=market.neg_risk)


def _signed_for(body: Mapping[str, Any], signer: str, chain_id: int, tried: Domain) -> str:
    """Which other exchange domain the order was signed for, to explain a bad signature."""
    for version in (1, 2, 3):
        for neg_risk in (False, True):
            try:
                d = exchange_domain(version, chain_id, neg_risk=neg_risk)
            except ValueError:
                continue
            if d == tried or (version == 1) != (tried.version == "1"):
                continue
            try:
                if recover_signer(body, d).lower() == signer.lower():
                    return f'domain version "{d.version}" ({d.verifying_contract})'
            except ValueError:
                continue
    return ""


def _ratio_ticks(num: int, den: int, tick_micros: int, *, up: bool) -> tuple[int, bool]:
    """``num / den`` as a price in ticks (rounded down, or up), and whether it was exact."""
    scaled = num * MICROS
    unit = den * tick_micros
    ticks, rem = divmod(scaled, unit)
    if rem and up:
        ticks += 1
    return ticks, rem == 0


def decode_order(
    body: Mapping[str, Any],
    *,
    api_key: str,
    address: str,
    exchange: Exchange,
    chain_id: int,
    order_version: str,
) -> OrderRequest:
    """Verify one posted order object and return what to place; ``OrderRejected`` otherwise."""
    raw = body.get("order")
    if not isinstance(raw, Mapping):
        raise OrderRejected("Invalid order payload")
    if body.get("owner") != api_key:
        raise OrderRejected("the order owner has to be the owner of the API KEY")
    signer = raw.get("signer")
    deposit_wallet = raw.get("signatureType") == 3  # POLY_1271: signer is the wallet itself
    if not isinstance(signer, str) or (not deposit_wallet and signer.lower() != address.lower()):
        raise OrderRejected("the order signer address has to be the address of the API KEY")
    order_type = body.get("orderType", "GTC")
    post_only = body.get("postOnly", False)
    if order_type not in ("GTC", "GTD", "FOK", "FAK") or not isinstance(post_only, bool):
        raise OrderRejected("Invalid order payload")
    token_id = str(raw.get("tokenId", ""))
    domain = market_domain(exchange, token_id, chain_id, order_version)
    if domain is None:
        raise OrderRejected("Invalid token id")
    is_v2_struct = any(k in raw for k in _V2_ONLY)
    if not is_v2_struct and not all(k in raw for k in _V1_ONLY):
        raise OrderRejected("Invalid order payload")
    if is_v2_struct == (domain.version == "1"):
        raise OrderRejected("order_version_mismatch")
    try:
        if is_v2_struct:
            o2 = order_from_json_v2(raw, domain)
            order_hash, maker, sig_type = o2.order_hash, o2.order.maker, o2.order.signature_type
            maker_amt, taker_amt, side_i = (
                o2.order.maker_amount,
                o2.order.taker_amount,
                o2.order.side,
            )
            expiration = o2.order.expiration
        else:
            o1 = order_from_json_v1(raw, domain)
            order_hash, maker, sig_type = o1.order_hash, o1.order.maker, o1.order.signature_type
            maker_amt, taker_amt, side_i = (
                o1.order.maker_amount,
                o1.order.taker_amount,
                o1.order.side,
            )
            expiration = o1.order.expiration
        recovered = recover_signer(raw, domain)
    except ValueError as exc:
        raise OrderRejected(f"invalid signature: {exc}") from None
    expected = address if sig_type == 3 else signer
    if recovered.lower() != expected.lower():
        other = _signed_for(raw, expected, chain_id, domain)
        hint = f"; it was signed for {other}" if other else ""
        raise OrderRejected(
            f"invalid signature: this market takes orders signed for exchange domain version "
            f'"{domain.version}" ({domain.verifying_contract}){hint}'
        )
    if sig_type == 0 and maker.lower() != signer.lower():
        raise OrderRejected("invalid order: an EOA order's maker must be its signer")
    if maker_amt <= 0 or taker_amt <= 0:
        raise OrderRejected(f"order {order_hash} is invalid. Amounts must be positive")
    if order_type != "GTD" and expiration:
        raise OrderRejected("invalid expiration")
    grid = exchange.grid(token_id)
    side: Side = "BUY" if side_i == 0 else "SELL"
    budget: int | None = None
    if side == "BUY":
        ticks, exact = _ratio_ticks(maker_amt, taker_amt, grid.micros, up=False)
        size = taker_amt
        if order_type in ("FOK", "FAK"):
            budget, size = maker_amt, taker_amt - taker_amt % LOT_MICROS
    else:
        ticks, exact = _ratio_ticks(taker_amt, maker_amt, grid.micros, up=True)
        size = maker_amt
    if order_type in ("GTC", "GTD") and not exact:
        num, den = (maker_amt, taker_amt) if side == "BUY" else (taker_amt, maker_amt)
        price = (Decimal(num) / Decimal(den)).quantize(Decimal("0.000001"))
        raise OrderRejected(
            f"order {order_hash} is invalid. Price ({price}) breaks minimum tick size rule: "
            f"{grid.text}"
        )
    return OrderRequest(
        order_id=order_hash,
        maker=maker,
        token_id=token_id,
        side=side,
        price_ticks=ticks,
        size_micros=size,
        budget_micros=budget,
        order_type=cast(OrderType, order_type),
        post_only=post_only,
        expiration_s=expiration,
    )

"""Benchmark: µs per signed CLOB V2 order, polylab vs eth-account vs py-clob-client-v2.

Each variant does the same job: a limit order (price, size, tick) → amounts → typed order →
EIP-712 digest → secp256k1 signature, for domain "2" (CTFExchangeV2) and domain "3"
(ExchangeV3). Variants run round-robin in one process; the figure is the median over rounds
of the mean per order, and ratios are against polylab on the same machine at the same time.

* polylab: ``OrderSigner.limit_order_v2`` (coincurve, precomputed domain and type hash).
* eth-account: polylab's amounts, then ``encode_typed_data`` + ``Account.sign_message``.
* py-clob-client-v2: ``OrderBuilder.build_order`` with tick size and neg-risk given, the
  offline path of ``create_order`` (no HTTP).

Before timing, the script checks that the three produce the same signature for the same
order (fixed salt and clock) and exits 1 if not. Target: polylab ≤ 100 µs per order.
"""

from __future__ import annotations

import gc
import statistics
import sys
import time
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any
from unittest import mock

from eth_account import Account
from eth_account.messages import encode_typed_data
from py_clob_client_v2.clob_types import CreateOrderOptions, OrderArgsV2
from py_clob_client_v2.order_builder.builder import OrderBuilder
from py_clob_client_v2.signer import Signer as SdkSigner
from verdict import Verdicts

from polylab.execution.eip712 import Domain
from polylab.execution.signer import OrderSigner
from polylab.execution.signing_v1 import order_amounts
from polylab.execution.signing_v2 import BYTES32_ZERO, SignedOrderV2, exchange_domain, random_salt

KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
TOKEN = "71321045679252212594626385532706912750332728571942532289631379312455583992563"
PRICE, SIZE, TICK = "0.47", "125.5", "0.01"
TARGET_US = 100.0
ROUNDS, PER_ROUND = 9, 200

_ORDER_FIELDS = [
    {"name": "salt", "type": "uint256"},
    {"name": "maker", "type": "address"},
    {"name": "signer", "type": "address"},
    {"name": "tokenId", "type": "uint256"},
    {"name": "makerAmount", "type": "uint256"},
    {"name": "takerAmount", "type": "uint256"},
    {"name": "side", "type": "uint8"},
    {"name": "signatureType", "type": "uint8"},
    {"name": "timestamp", "type": "uint256"},
    {"name": "metadata", "type": "bytes32"},
    {"name": "builder", "type": "bytes32"},
]
_DOMAIN_FIELDS = [
    {"name": "name", "type": "string"},
    {"name": "version", "type": "string"},
    {"name": "chainId", "type": "uint256"},
    {"name": "verifyingContract", "type": "address"},
]


def polylab_variant(signer: OrderSigner, domain: Domain) -> Callable[[], str]:
    token = int(TOKEN)

    def run() -> str:
        return signer.limit_order_v2(token, "BUY", PRICE, SIZE, TICK, domain).signature

    return run


def eth_account_variant(
    signer: OrderSigner, domain: Domain, salt: Callable[[], int], clock_ms: Callable[[], int]
) -> Callable[[], str]:
    address = signer.address

    def run() -> str:
        maker, taker = order_amounts("BUY", PRICE, SIZE, TICK)
        typed = {
            "primaryType": "Order",
            "types": {"EIP712Domain": _DOMAIN_FIELDS, "Order": _ORDER_FIELDS},
            "domain": {
                "name": domain.name,
                "version": domain.version,
                "chainId": domain.chain_id,
                "verifyingContract": domain.verifying_contract,
            },
            "message": {
                "salt": salt(),
                "maker": address,
                "signer": address,
                "tokenId": int(TOKEN),
                "makerAmount": maker,
                "takerAmount": taker,
                "side": 0,
                "signatureType": 0,
                "timestamp": clock_ms(),
                "metadata": bytes(32),
                "builder": bytes(32),
            },
        }
        signed = Account.sign_message(encode_typed_data(full_message=typed), private_key=KEY)
        return "0x" + signed.signature.hex()

    return run


def sdk_variant(version: int) -> Callable[[], str]:
    builder = OrderBuilder(SdkSigner(KEY, 137))
    options = CreateOrderOptions(tick_size=TICK, neg_risk=False)
    asset = {"position_id": TOKEN} if version == 3 else {"token_id": TOKEN}

    def run() -> str:
        args = OrderArgsV2(price=float(PRICE), size=float(SIZE), side="BUY", **asset)
        signed: Any = builder.build_order(args, options, version=version)
        return str(signed.signature)

    return run


def check_identical(version: int) -> bool:
    """Same salt and clock for all three; signatures must match byte for byte."""
    now_ms, rnd = 1_760_000_000_123, 0.25
    salt = int(rnd * now_ms)
    fake_time = SimpleNamespace(time_ns=lambda: now_ms * 1_000_000)
    signer = OrderSigner(KEY, 137, salt=lambda: salt, clock_ms=lambda: now_ms)
    domain = exchange_domain(version)
    ours: SignedOrderV2 = signer.limit_order_v2(int(TOKEN), "BUY", PRICE, SIZE, TICK, domain)
    eth = eth_account_variant(signer, domain, lambda: salt, lambda: now_ms)()
    with (
        mock.patch("py_clob_client_v2.order_builder.builder.time", fake_time),
        mock.patch("py_clob_client_v2.order_utils.utils.time", fake_time),
        mock.patch(
            "py_clob_client_v2.order_utils.utils.random", SimpleNamespace(random=lambda: rnd)
        ),
    ):
        sdk = sdk_variant(version)()
    same = ours.signature == eth == sdk and ours.order.metadata == BYTES32_ZERO
    print(f"domain {version}: signatures identical across the three signers: {same}")
    return same


def measure(variants: dict[str, Callable[[], str]]) -> dict[str, float]:
    """Median over ROUNDS of the mean µs per call; variants interleaved within each round."""
    samples: dict[str, list[float]] = {name: [] for name in variants}
    for fn in variants.values():  # warm caches and lazy imports
        for _ in range(20):
            fn()
    for _ in range(ROUNDS):
        for name, fn in variants.items():
            gc.collect()
            t0 = time.perf_counter_ns()
            for _ in range(PER_ROUND):
                fn()
            samples[name].append((time.perf_counter_ns() - t0) / PER_ROUND / 1000)
    return {name: statistics.median(v) for name, v in samples.items()}


def main() -> int:
    ok = all([check_identical(2), check_identical(3)])
    signer = OrderSigner(KEY, 137)
    variants: dict[str, Callable[[], str]] = {}
    for version in (2, 3):
        domain = exchange_domain(version)
        variants[f"polylab d{version}"] = polylab_variant(signer, domain)
        variants[f"eth-account d{version}"] = eth_account_variant(
            signer, domain, random_salt, lambda: time.time_ns() // 1_000_000
        )
        variants[f"py-clob-client-v2 d{version}"] = sdk_variant(version)
    result = measure(variants)
    print(f"\n{'signer':<26}{'µs/order':>10}{'× polylab':>11}")
    for version in (2, 3):
        base = result[f"polylab d{version}"]
        for name in (
            f"polylab d{version}",
            f"eth-account d{version}",
            f"py-clob-client-v2 d{version}",
        ):
            print(f"{name:<26}{result[name]:>10.1f}{result[name] / base:>11.1f}")
    v = Verdicts("bench_signing")
    for version in (2, 3):
        v.at_most(
            f"sign a CLOB V2 order, domain {version}",
            result[f"polylab d{version}"],
            TARGET_US,
            "µs",
        )
    v.at_least(
        "byte-identical to py-clob-client-v2 and eth-account", float(ok), 1.0, note="1 = identical"
    )
    return v.finish()


if __name__ == "__main__":
    sys.exit(main())

"""Merging complete sets into collateral on-chain: calldata builders (no network) and a guarded
sender that is off unless an RPC URL is given.

1 YES + 1 NO of a market = $1 of collateral at any time. Three contracts do it, by market kind:

* **CTF binary markets** (``version="v1"``, not neg-risk): Conditional Tokens
  ``mergePositions(address collateral, bytes32 parentCollectionId=0, bytes32 conditionId,
  uint256[] partition=[1, 2], uint256 amount)``; the collateral the positions were split from
  (USDC.e for CTF markets).
* **Neg-risk markets** (``neg_risk=True``): NegRiskAdapter ``mergePositions(bytes32 conditionId,
  uint256 amount)``, the YES+NO pair of one outcome market.
* **Protocol V2 markets** (``version="v2"``): Router ``merge(bytes31 conditionId, uint256
  amount)``. V2 condition ids are 31 bytes; the venue shows them as 32-byte hex ending in a
  zero byte (its position ids are ``conditionId ‖ outcome index``), so either form is accepted.

``amount`` is the number of sets in share micros (outcome tokens have 6 decimals, so 1 set =
1_000_000 base units = $1). Selectors are the first 4 bytes of keccak-256 of the signature.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final, Literal

import msgspec

from polylab.errors import PolylabError
from polylab.execution.eip712 import address_word, keccak256, to_checksum_address, word_uint

if TYPE_CHECKING:
    from polylab.market import Market

__all__ = [
    "CONDITIONAL_TOKENS",
    "CTF_MERGE_SIGNATURE",
    "NEG_RISK_ADAPTER",
    "NEG_RISK_MERGE_SIGNATURE",
    "ROUTER_MERGE_SIGNATURE",
    "ROUTER_V2",
    "USDC_E",
    "MergeDisabled",
    "MergeError",
    "MergeTx",
    "build_merge",
    "ctf_merge",
    "neg_risk_merge",
    "router_merge",
    "selector",
    "send_merge",
]

CONDITIONAL_TOKENS: Final = "0x4D97DCd97eC945f40cF65F87097ACe5EA0476045"
"""Gnosis Conditional Tokens (ERC-1155) on Polygon."""
USDC_E: Final = "0x2791Bca1f2de4661ED88A30C99A7a9449Aa84174"
"""USDC.e on Polygon: the collateral CTF markets' positions are split from."""
NEG_RISK_ADAPTER: Final = "0xd91E80cF2E7be2e162c6513ceD06f1dD0dA35296"
"""NegRiskAdapter: split/merge/redeem/convert for neg-risk markets."""
ROUTER_V2: Final = "0x12121212006e4CD160D18e3f00711DA5c3372600"
"""Protocol V2 Router: split/merge/redeem for V2 markets."""

CTF_MERGE_SIGNATURE: Final = "mergePositions(address,bytes32,bytes32,uint256[],uint256)"
NEG_RISK_MERGE_SIGNATURE: Final = "mergePositions(bytes32,uint256)"
ROUTER_MERGE_SIGNATURE: Final = "merge(bytes31,uint256)"


class MergeError(PolylabError, ValueError):
    """A merge that cannot be built or sent (bad condition id, amount, RPC failure)."""


class MergeDisabled(MergeError):
    """Sending was asked for but no RPC URL is configured: on-chain merges are off by default."""


class MergeTx(msgspec.Struct, frozen=True, kw_only=True):
    """An unsigned contract call: ``to`` (checksummed), ``data`` (``0x`` hex calldata).

    ``kind``: "ctf" | "negrisk" | "v2"; ``amount``: sets in share micros.
    """

    to: str
    data: str
    description: str
    kind: Literal["ctf", "negrisk", "v2"]
    condition_id: str
    amount: int


def selector(signature: str) -> bytes:
    """The 4-byte function selector: keccak-256 of the canonical signature, first 4 bytes."""
    return keccak256(signature.encode("ascii"))[:4]


def _id_bytes(condition_id: str, n: int) -> bytes:
    text = condition_id[2:] if condition_id[:2] in ("0x", "0X") else ""
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        raw = b""
    if not text or len(raw) not in (n, 32):
        raise MergeError(f"condition id must be 0x + {2 * n} hex digits, was {condition_id!r}")
    if len(raw) == 32 and n == 31:
        if raw[31]:
            raise MergeError(
                f"V2 condition id is 31 bytes; a 32-byte form must end in 00: {condition_id!r}"
            )
        raw = raw[:31]
    return raw


def _amount(amount: int) -> bytes:
    if type(amount) is not int or amount <= 0:
        raise MergeError(f"merge amount must be a positive integer of share micros, was {amount!r}")
    return word_uint(amount)


def ctf_merge(
    condition_id: str, amount: int, *, collateral: str = USDC_E, partition: tuple[int, ...] = (1, 2)
) -> MergeTx:
    """Conditional Tokens ``mergePositions`` of ``amount`` sets of a CTF binary market."""
    cid = _id_bytes(condition_id, 32)
    head = (
        address_word(collateral)
        + bytes(32)  # parentCollectionId = 0 (top-level positions)
        + cid
        + word_uint(5 * 32)  # offset of the dynamic partition array: after the 5 head words
        + _amount(amount)
    )
    tail = word_uint(len(partition)) + b"".join(word_uint(i) for i in partition)
    data = selector(CTF_MERGE_SIGNATURE) + head + tail
    return MergeTx(
        to=CONDITIONAL_TOKENS,
        data="0x" + data.hex(),
        description=f"CTF mergePositions {amount} sets of {condition_id} into {collateral}",
        kind="ctf",
        condition_id=condition_id,
        amount=amount,
    )


def neg_risk_merge(condition_id: str, amount: int) -> MergeTx:
    """NegRiskAdapter ``mergePositions`` of ``amount`` YES+NO pairs of one neg-risk market."""
    data = selector(NEG_RISK_MERGE_SIGNATURE) + _id_bytes(condition_id, 32) + _amount(amount)
    return MergeTx(
        to=NEG_RISK_ADAPTER,
        data="0x" + data.hex(),
        description=f"NegRiskAdapter mergePositions {amount} sets of {condition_id}",
        kind="negrisk",
        condition_id=condition_id,
        amount=amount,
    )


def router_merge(condition_id: str, amount: int) -> MergeTx:
    """Protocol V2 Router ``merge(bytes31, uint256)``; bytes31 is left-aligned in its word."""
    word = _id_bytes(condition_id, 31) + b"\x00"
    data = selector(ROUTER_MERGE_SIGNATURE) + word + _amount(amount)
    return MergeTx(
        to=ROUTER_V2,
        data="0x" + data.hex(),
        description=f"Router merge {amount} sets of {condition_id}",
        kind="v2",
        condition_id=condition_id,
        amount=amount,
    )


def build_merge(market: Market, amount: int, *, collateral: str = USDC_E) -> MergeTx:
    """The right merge call for ``market``: V2 Router, NegRiskAdapter or Conditional Tokens."""
    if len(market.token_ids) != 2:
        raise MergeError(
            f"market {market.condition_id} has {len(market.token_ids)} outcomes; merges need 2"
        )
    if market.version == "v2":
        return router_merge(market.condition_id, amount)
    if market.neg_risk:
        return neg_risk_merge(market.condition_id, amount)
    return ctf_merge(market.condition_id, amount, collateral=collateral)


def send_merge(
    tx: MergeTx, rpc_url: str | None = None, *, sender: str = "", timeout_s: float = 10.0
) -> str:
    """Send ``tx`` from ``sender`` with JSON-RPC ``eth_sendTransaction``; returns the tx hash.

    Off by default: without ``rpc_url`` it raises ``MergeDisabled`` and nothing leaves the
    process. The node signs (an account it manages, e.g. a local fork); no key passes here.
    """
    if not rpc_url:
        raise MergeDisabled(
            "on-chain merges are off: no RPC URL configured (pass rpc_url= to send_merge)"
        )
    if not sender:
        raise MergeError("send_merge needs the sender address (the wallet holding the sets)")
    import httpx  # only the sending path needs it

    call = {"from": to_checksum_address(sender), "to": tx.to, "data": tx.data}
    body = {"jsonrpc": "2.0", "id": 1, "method": "eth_sendTransaction", "params": [call]}
    try:
        resp = httpx.post(rpc_url, json=body, timeout=timeout_s)
        resp.raise_for_status()
        answer = resp.json()
    except (httpx.HTTPError, ValueError) as exc:
        # not str(exc): it can quote the RPC URL, which often embeds an API key
        status = getattr(getattr(exc, "response", None), "status_code", "")
        raise MergeError(f"merge RPC call failed: {type(exc).__name__} {status}".rstrip()) from None
    if not isinstance(answer, dict) or "result" not in answer:
        err = answer.get("error") if isinstance(answer, dict) else answer
        raise MergeError(f"merge RPC call refused: {err!r}")
    return str(answer["result"])

"""Merge calldata checked against eth-abi / eth-utils, and the sender that is off by default."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any, ClassVar

import pytest
from eth_abi import decode, encode
from eth_utils import function_signature_to_4byte_selector

from polylab.execution.merge import (
    CONDITIONAL_TOKENS,
    CTF_MERGE_SIGNATURE,
    NEG_RISK_ADAPTER,
    NEG_RISK_MERGE_SIGNATURE,
    ROUTER_MERGE_SIGNATURE,
    ROUTER_V2,
    USDC_E,
    MergeDisabled,
    MergeError,
    build_merge,
    ctf_merge,
    neg_risk_merge,
    router_merge,
    selector,
    send_merge,
)
from polylab.market import Market

CID = "0x" + "ab" * 31 + "cd"
V2_CID = "0x017791f201d5a788e0039e511fc1900e5f000000000000000000000000000000"  # from a real
# /clob-markets v2 answer (fixture rest_clob_markets_v2_canary_2026-10-05.json)


@pytest.mark.parametrize(
    "sig", [CTF_MERGE_SIGNATURE, NEG_RISK_MERGE_SIGNATURE, ROUTER_MERGE_SIGNATURE]
)
def test_selectors_match_eth_utils(sig: str) -> None:
    assert selector(sig) == function_signature_to_4byte_selector(sig)


def test_known_selectors() -> None:
    # well-known values: CTF mergePositions, and merge(bytes31,uint256)
    assert selector(CTF_MERGE_SIGNATURE).hex() == "9e7212ad"
    assert selector(ROUTER_MERGE_SIGNATURE).hex() == "5b63685e"


def test_ctf_merge_calldata_equals_eth_abi_encoding() -> None:
    tx = ctf_merge(CID, 12_340_000)
    expect = function_signature_to_4byte_selector(CTF_MERGE_SIGNATURE) + encode(
        ["address", "bytes32", "bytes32", "uint256[]", "uint256"],
        [USDC_E, bytes(32), bytes.fromhex(CID[2:]), [1, 2], 12_340_000],
    )
    assert tx.data == "0x" + expect.hex()
    assert tx.to == CONDITIONAL_TOKENS and tx.kind == "ctf" and tx.amount == 12_340_000
    args = decode(
        ["address", "bytes32", "bytes32", "uint256[]", "uint256"], bytes.fromhex(tx.data[10:])
    )
    assert args[0].lower() == USDC_E.lower() and args[3] == (1, 2) and args[4] == 12_340_000


def test_neg_risk_merge_calldata_equals_eth_abi_encoding() -> None:
    tx = neg_risk_merge(CID, 5_000_000)
    expect = function_signature_to_4byte_selector(NEG_RISK_MERGE_SIGNATURE) + encode(
        ["bytes32", "uint256"], [bytes.fromhex(CID[2:]), 5_000_000]
    )
    assert tx.data == "0x" + expect.hex() and tx.to == NEG_RISK_ADAPTER


def test_router_merge_encodes_bytes31_left_aligned() -> None:
    raw31 = bytes.fromhex(V2_CID[2:])[:31]
    expect = function_signature_to_4byte_selector(ROUTER_MERGE_SIGNATURE) + encode(
        ["bytes31", "uint256"], [raw31, 7_000_000]
    )
    a = router_merge(V2_CID, 7_000_000)  # the venue's 32-byte form, trailing 00
    b = router_merge("0x" + raw31.hex(), 7_000_000)  # the bare 31-byte form
    assert a.data == b.data == "0x" + expect.hex() and a.to == ROUTER_V2


def test_build_merge_dispatches_on_market_kind() -> None:
    base = Market(condition_id=CID, token_ids=("1", "2"))
    assert build_merge(base, 1).kind == "ctf"
    assert build_merge(Market(condition_id=CID, token_ids=("1", "2"), neg_risk=True), 1).to == (
        NEG_RISK_ADAPTER
    )
    assert build_merge(Market(condition_id=V2_CID, token_ids=("1", "2"), version="v2"), 1).to == (
        ROUTER_V2
    )
    with pytest.raises(MergeError, match="3 outcomes"):
        build_merge(Market(condition_id=CID, token_ids=("1", "2", "3")), 1)


@pytest.mark.parametrize(
    ("cid", "amount", "match"),
    [
        ("0x1234", 1, "64 hex digits"),
        ("ab" * 32, 1, "64 hex digits"),
        ("0x" + "zz" * 32, 1, "64 hex digits"),
        (CID, 0, "positive integer"),
        (CID, -5, "positive integer"),
    ],
)
def test_bad_inputs_are_clear_errors(cid: str, amount: int, match: str) -> None:
    with pytest.raises(MergeError, match=match):
        ctf_merge(cid, amount)


def test_v2_id_with_nonzero_last_byte_is_refused() -> None:
    with pytest.raises(MergeError, match="must end in 00"):
        router_merge(CID, 1)


def test_send_merge_is_off_without_an_rpc_url() -> None:
    with pytest.raises(MergeDisabled, match="no RPC URL"):
        send_merge(ctf_merge(CID, 1))
    with pytest.raises(MergeDisabled):
        send_merge(ctf_merge(CID, 1), "", sender="0x" + "11" * 20)


class _Node(BaseHTTPRequestHandler):
    """A stand-in JSON-RPC node (not polylab code): records calls, answers a tx hash."""

    calls: ClassVar[list[dict[str, Any]]] = []
    fail = False

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).calls.append(body)
        if type(self).fail:
            out = {"jsonrpc": "2.0", "id": 1, "error": {"code": -32000, "message": "no funds"}}
        else:
            out = {"jsonrpc": "2.0", "id": 1, "result": "0x" + "ee" * 32}
        data = json.dumps(out).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def node() -> Iterator[str]:
    srv = HTTPServer(("127.0.0.1", 0), _Node)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    _Node.calls, _Node.fail = [], False
    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}"
    finally:
        srv.shutdown()
        srv.server_close()
        t.join(5)


def test_send_merge_posts_eth_send_transaction(node: str) -> None:
    tx = ctf_merge(CID, 3_000_000)
    sender = "0x" + "11" * 20
    assert send_merge(tx, node, sender=sender) == "0x" + "ee" * 32
    (call,) = _Node.calls
    assert call["method"] == "eth_sendTransaction"
    assert call["params"][0] == {"from": sender, "to": tx.to, "data": tx.data}
    with pytest.raises(MergeError, match="sender"):
        send_merge(tx, node)


def test_send_merge_reports_a_node_refusal(node: str) -> None:
    _Node.fail = True
    with pytest.raises(MergeError, match="no funds"):
        send_merge(ctf_merge(CID, 1), node, sender="0x" + "11" * 20)

"""A market-channel client that subscribes and never reads is dropped; what the simulator holds
for it stays bounded (issue 9 §4).

The client is a raw TCP socket with a tiny receive buffer that does the WebSocket handshake and
sends one subscribe frame, then never reads again. The test floods its token with real exchange
events (orders placed and cancelled) and samples, between batches, the bytes the server holds
for that connection (queued frames + socket write buffer).
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import struct
from typing import Any

from polylab.money import MICROS
from polylab.sim.config import SimConfig
from polylab.sim.server import running_sim
from polylab.sim.ws import WsHub

OWNER = "0x00000000000000000000000000000000000000a1"
LIMIT = 256 * 1024
"""The per-connection bound under test (bytes)."""


def _masked_text_frame(text: str) -> bytes:
    """A client → server text frame (FIN, opcode 1, masked as RFC 6455 requires)."""
    data = text.encode()
    mask = os.urandom(4)
    n = len(data)
    assert n < 65536
    short = n < 126
    head = struct.pack("!BB", 0x81, 0x80 | n) if short else struct.pack("!BBH", 0x81, 0xFE, n)
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data))


async def _raw_subscriber(port: int, assets: list[str]) -> socket.socket:
    """Connect with a 4 KiB receive buffer, upgrade, subscribe; the caller never reads again."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    loop = asyncio.get_running_loop()
    await loop.sock_connect(sock, ("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    request = (
        f"GET /ws/market HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    await loop.sock_sendall(sock, request.encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = await loop.sock_recv(sock, 1)
        assert chunk, "server closed during the handshake"
        head += chunk
    assert head.startswith(b"HTTP/1.1 101"), head
    sub = json.dumps({"assets_ids": assets, "type": "market", "custom_feature_enabled": True})
    await loop.sock_sendall(sock, _masked_text_frame(sub))
    return sock


def _market_conns(hub: WsHub) -> list[Any]:
    return [c for c in hub.conns if c.kind == "market"]


async def _until_closed_by_peer(sock: socket.socket) -> bool:
    """Drain what the kernel still holds; True once the server's side is gone (EOF/reset)."""
    loop = asyncio.get_running_loop()
    while True:
        try:
            if not await loop.sock_recv(sock, 65536):
                return True
        except ConnectionError:
            return True


def test_a_client_that_never_reads_is_dropped_and_its_buffer_stays_bounded() -> None:
    async def go() -> None:
        cfg = SimConfig(seed=3, generator=False, ws_max_buffered_bytes=LIMIT)
        async with running_sim(cfg) as sim:
            hub, ex = sim.hub, sim.state.exchange
            market = next(m for m in ex.markets.markets.values() if not m.neg_risk)
            token = market.token_ids[0]
            sock = await _raw_subscriber(sim.port, [token])
            while not any(c.subscribed for c in _market_conns(hub)):
                await asyncio.sleep(0.01)
            conn = _market_conns(hub)[0]
            peak = events = 0
            for _ in range(400):  # at most 40,000 events: ~5,000 trip the bound here, while
                # the old frame-count cap (100,000 frames, ~30 MB) would never be reached
                if hub.stats()["slow_consumers"]:
                    break
                for k in range(1, 51):
                    r = ex.place(OWNER, token, "BUY", k, 10 * MICROS)
                    assert r.success, r.error_msg
                    if conn in hub.conns:
                        peak = max(peak, conn.outbox.buffered_bytes)
                    assert ex.cancel(OWNER, r.order_id)
                    if conn in hub.conns:
                        peak = max(peak, conn.outbox.buffered_bytes)
                    events += 2
                await asyncio.sleep(0)  # let the sender write until the socket is full
            stats = hub.stats()
            assert stats["slow_consumers"] == 1, (stats, events)
            assert conn.outbox.slow_consumer and conn not in hub.conns
            assert stats["connections"] == 0
            # sampled after every event: never more than the bound plus that event's frames
            # (a best_bid_ask and a price_change, each well under 1 KiB)
            assert LIMIT // 2 < peak <= LIMIT + 2048, peak
            assert conn.outbox.peak_buffered_bytes <= LIMIT
            # the client, when it finally reads, finds the connection gone
            assert await asyncio.wait_for(_until_closed_by_peer(sock), 10)
            sock.close()
            # the exchange carries on, and a new client is served
            reader = await _raw_subscriber(sim.port, [token])
            while not any(c.subscribed for c in _market_conns(hub)):
                await asyncio.sleep(0.01)
            reader.close()

    asyncio.run(asyncio.wait_for(go(), 60))

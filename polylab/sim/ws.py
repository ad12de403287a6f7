"""The simulator's market and user WebSocket channels (aiohttp), speaking the venue's protocol.

``/ws/market``: the client sends ``{"assets_ids": [...], "type": "market",
"custom_feature_enabled": bool}`` once, then optionally ``{"assets_ids": [...], "operation":
"subscribe"|"unsubscribe"}``; a second initial message or anything unreadable is answered with
the text ``INVALID OPERATION``. The initial dump is one compact JSON array of ``book`` objects;
later frames are single objects with ``", "`` separators, as the venue sends them. Above
``max_assets_per_connection`` subscribed ids no snapshots are sent (updates still are).
``best_bid_ask``, ``new_market`` and ``market_resolved`` need ``custom_feature_enabled``;
``new_market`` goes to every such connection, subscribed or not. Text ``PING`` → ``PONG``.

``/ws/user``: ``{"auth": {"apiKey", "secret", "passphrase"}, "markets": [...], "type": "user"}``;
``order``/``trade`` events of that key's address (optionally only those markets). Bad auth closes
the socket with code 1008 and a reason.

Events come from the exchange's listeners, synchronously on the loop; each connection has an
``Outbox`` that applies the configured faults (``polylab.sim.faults``) and a sender task. A
client that stops reading is dropped once more than ``ws_max_buffered_bytes`` wait for it
(queued frames + socket write buffer), as the venue drops slow consumers.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import itertools
import json
import logging
import random
from typing import TYPE_CHECKING, Any

import msgspec
from aiohttp import WSCloseCode, WSMsgType, web

from polylab.sim.faults import MAIN_LANE, FaultConfig, FrameFaults, Outbox

if TYPE_CHECKING:
    from polylab.sim.state import SimState

__all__ = ["HUB_KEY", "WsHub", "encode_frame", "register"]

log = logging.getLogger(__name__)

INVALID = "INVALID OPERATION"
_compact = msgspec.json.Encoder()


def encode_frame(obj: Any) -> str:
    """A later (non-dump) frame: JSON with the venue's ``", "`` item separators."""
    return json.dumps(obj, separators=(", ", ":"), ensure_ascii=False)


def _encode_dump(books: list[dict[str, Any]]) -> str:
    return _compact.encode(books).decode() + "\n"


class _Conn:
    """One client connection: what it subscribed to, and its outbox."""

    def __init__(self, ws: web.WebSocketResponse, kind: str, outbox: Outbox) -> None:
        self.ws = ws
        self.kind = kind
        self.outbox = outbox
        self.subscribed = False
        self.assets: set[str] = set()
        self.custom = False
        self.address = ""
        self.markets: set[str] = set()


def _event_assets(ev: dict[str, Any]) -> list[str]:
    if ev.get("event_type") == "price_change":
        return [e.get("asset_id", "") for e in ev.get("price_changes", ())]
    if "asset_id" in ev:
        return [ev["asset_id"]]
    return list(ev.get("assets_ids", ()))


class WsHub:
    """Every WebSocket connection of one simulator, fed by the exchange's listeners."""

    def __init__(self, state: SimState) -> None:
        self.state = state
        cfg = state.config
        self.faults: FaultConfig = cfg.faults
        self.max_assets: int = int(cfg.max_assets_per_connection)
        self.seed: int = int(cfg.seed)
        self.conns: set[_Conn] = set()
        self._conn_no = itertools.count(1)
        self.max_buffered_bytes: int = int(cfg.ws_max_buffered_bytes)
        self.bad_messages = 0
        self.listener_errors = 0
        self.slow_consumers = 0
        """Connections dropped because their client stopped reading."""

    def stats(self) -> dict[str, int]:
        """Counters for metrics: open connections, bad client messages, routing errors, and
        the fault counters of the open connections."""
        out = {
            "connections": len(self.conns),
            "bad_messages": self.bad_messages,
            "listener_errors": self.listener_errors,
            "slow_consumers": self.slow_consumers,
            "sent": 0,
            "dropped": 0,
            "reordered": 0,
            "malformed": 0,
            "stalled": 0,
        }
        for c in self.conns:
            out["sent"] += c.outbox.sent
            out["reordered"] += c.outbox.reordered
            f = c.outbox.faults
            if f is not None:
                out["dropped"] += f.dropped
                out["malformed"] += f.malformed
                out["stalled"] += f.stalled_frames
        return out

    # -- connections ---------------------------------------------------------------------------
    def _outbox(self, ws: web.WebSocketResponse, kind: str, request: web.Request) -> Outbox:
        n = next(self._conn_no)
        rng = random.Random(f"{self.seed}:{kind}:{n}")
        faults = FrameFaults(self.faults, rng) if self.faults.ws_active else None
        return Outbox(
            ws,
            faults,
            disconnect_after_s=self.faults.disconnect_every_s,
            transport=request.transport,
            max_buffered_bytes=self.max_buffered_bytes,
        )

    async def market_handler(self, request: web.Request) -> web.StreamResponse:
        """``GET /ws/market``."""
        return await self._serve(request, "market")

    async def user_handler(self, request: web.Request) -> web.StreamResponse:
        """``GET /ws/user``."""
        return await self._serve(request, "user")

    async def _serve(self, request: web.Request, kind: str) -> web.StreamResponse:
        ws = web.WebSocketResponse(autoping=True, max_msg_size=4 * 1024 * 1024)
        await ws.prepare(request)
        conn = _Conn(ws, kind, self._outbox(ws, kind, request))
        self.conns.add(conn)
        conn.outbox.start()
        try:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    if msg.type == WSMsgType.BINARY:
                        conn.outbox.push_now(INVALID)
                    continue
                text = msg.data.strip()
                if text == "PING":
                    conn.outbox.push_now("PONG")
                    continue
                try:
                    if kind == "market":
                        self._on_market_msg(conn, text)
                    else:
                        await self._on_user_msg(conn, text)
                except Exception:  # a client message never takes the server down
                    self.bad_messages += 1
                    log.exception("%s channel: failed to handle a client message", kind)
                    conn.outbox.push_now(INVALID)
        finally:
            self.conns.discard(conn)
            self.slow_consumers += conn.outbox.slow_consumer
            await conn.outbox.stop()
        return ws

    async def close_all(self, app: web.Application | None = None) -> None:
        """Close every connection (app shutdown)."""
        for c in list(self.conns):
            await c.outbox.stop()
            with contextlib.suppress(Exception):
                await c.ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutdown")

    # -- market channel ------------------------------------------------------------------------
    def _parse(self, text: str) -> dict[str, Any] | None:
        try:
            obj = msgspec.json.decode(text)
        except msgspec.DecodeError:
            return None
        return obj if isinstance(obj, dict) else None

    def _on_market_msg(self, conn: _Conn, text: str) -> None:
        obj = self._parse(text)
        ids = obj.get("assets_ids") if obj is not None else None
        if obj is None or not isinstance(ids, list) or not all(isinstance(a, str) for a in ids):
            self.bad_messages += 1
            conn.outbox.push_now(INVALID)
            return
        op = obj.get("operation")
        if "custom_feature_enabled" in obj:
            conn.custom = bool(obj["custom_feature_enabled"])
        want_dump = obj.get("initial_dump", True) is not False
        if op is None:
            if conn.subscribed or str(obj.get("type", "market")).lower() != "market":
                self.bad_messages += 1
                conn.outbox.push_now(INVALID)
                return
            conn.subscribed = True
            self._subscribe(conn, ids, want_dump)
        elif op == "subscribe":
            conn.subscribed = True
            self._subscribe(conn, ids, want_dump)
        elif op == "unsubscribe":
            conn.assets.difference_update(ids)
        else:
            self.bad_messages += 1
            conn.outbox.push_now(INVALID)

    def _subscribe(self, conn: _Conn, ids: list[str], want_dump: bool) -> None:
        """Add ids and (within the asset limit) queue their snapshots, in the same loop step as
        the subscription so no event can slip between snapshot and updates."""
        new = [a for a in dict.fromkeys(ids) if a not in conn.assets]
        conn.assets.update(new)
        faults = conn.outbox.faults
        if faults is not None:
            faults.begin_stall(asyncio.get_running_loop().time())
        if not want_dump or len(conn.assets) > self.max_assets:
            return
        known = self.state.exchange.markets.by_token
        tokens = [a for a in new if a in known]
        if not tokens:
            return
        books: list[dict[str, Any]] = self.state.exchange.initial_dump(tokens)
        if faults is None or not faults.special:
            conn.outbox.push(_encode_dump(books), MAIN_LANE)
            return
        lanes: dict[str, list[dict[str, Any]]] = {}
        for b in books:
            lanes.setdefault(faults.lane_for({b["asset_id"]}), []).append(b)
        for lane, bs in lanes.items():
            conn.outbox.push(_encode_dump(bs), lane)

    def on_market_events(self, events: list[dict[str, Any]]) -> None:
        """Exchange market listener: route one batch of events to subscribed connections."""
        try:
            self._route(events)
        except Exception:  # never raise into the exchange
            self.listener_errors += 1
            log.exception("market channel: failed to route %d events", len(events))

    def _route(self, events: list[dict[str, Any]]) -> None:
        conns = [c for c in self.conns if c.kind == "market" and c.subscribed]
        if not conns:
            return
        cache: dict[tuple[int, tuple[int, ...]], str] = {}
        for i, ev in enumerate(events):
            kind = ev.get("event_type")
            if kind == "price_change":
                entries = ev.get("price_changes", [])
                for c in conns:
                    self._send_price_change(c, i, ev, entries, cache)
                continue
            if kind in ("best_bid_ask", "new_market", "market_resolved"):
                targets = [c for c in conns if c.custom]
            else:
                targets = conns
            if kind != "new_market":
                ids = _event_assets(ev)
                targets = [c for c in targets if any(a in c.assets for a in ids)]
            if not targets:
                continue
            key = (i, ())
            text = cache.get(key)
            if text is None:
                text = cache[key] = encode_frame(ev)
            for c in targets:
                f = c.outbox.faults
                c.outbox.push(text, f.lane_for(set(_event_assets(ev))) if f else MAIN_LANE)

    def _send_price_change(
        self,
        c: _Conn,
        i: int,
        ev: dict[str, Any],
        entries: list[dict[str, Any]],
        cache: dict[tuple[int, tuple[int, ...]], str],
    ) -> None:
        """One connection's view of a price_change: only its assets' entries, split per lane
        when a token of it has its own (stalled or delayed) lane."""
        f = c.outbox.faults
        groups: dict[str, list[int]] = {}
        for j, e in enumerate(entries):
            a = e.get("asset_id", "")
            if a in c.assets:
                lane = f.lane_for({a}) if f is not None else MAIN_LANE
                groups.setdefault(lane, []).append(j)
        for lane, idx in groups.items():
            key = (i, tuple(idx))
            text = cache.get(key)
            if text is None:
                if len(idx) == len(entries):
                    text = encode_frame(ev)
                else:
                    sub = dict(ev)
                    sub["price_changes"] = [entries[j] for j in idx]
                    text = encode_frame(sub)
                cache[key] = text
            c.outbox.push(text, lane)

    # -- user channel --------------------------------------------------------------------------
    async def _on_user_msg(self, conn: _Conn, text: str) -> None:
        obj = self._parse(text)
        if obj is None:
            self.bad_messages += 1
            conn.outbox.push_now(INVALID)
            return
        markets = obj.get("markets") or []
        if not isinstance(markets, list) or not all(isinstance(m, str) for m in markets):
            self.bad_messages += 1
            conn.outbox.push_now(INVALID)
            return
        op = obj.get("operation")
        if op == "subscribe" and conn.subscribed:
            conn.markets.update(markets)
            return
        if op == "unsubscribe" and conn.subscribed:
            conn.markets.difference_update(markets)
            return
        auth = obj.get("auth")
        address = self._authenticate(auth) if isinstance(auth, dict) else None
        if address is None:
            self.bad_messages += 1
            await conn.outbox.stop()
            await conn.ws.close(
                code=WSCloseCode.POLICY_VIOLATION,
                message=b"Unauthorized: invalid api key, secret or passphrase",
            )
            return
        conn.address = address.lower()
        conn.markets = set(markets)
        conn.subscribed = True

    def _authenticate(self, auth: dict[str, Any]) -> str | None:
        """The address owning these credentials, or ``None`` (unknown key or wrong secret)."""
        key, secret, phrase = auth.get("apiKey"), auth.get("secret"), auth.get("passphrase")
        if not (isinstance(key, str) and isinstance(secret, str) and isinstance(phrase, str)):
            return None
        return _lookup_address(self.state, key, secret, phrase)

    def on_user_event(self, owner: str, event: dict[str, Any]) -> None:
        """Exchange user listener: send an ``order``/``trade`` event to its owner's sockets."""
        try:
            who = owner.lower()
            market = event.get("market", "")
            text = ""
            for c in self.conns:
                if c.kind != "user" or c.address != who or not c.subscribed:
                    continue
                if c.markets and market not in c.markets:
                    continue
                text = text or encode_frame(event)
                c.outbox.push(text, MAIN_LANE)
        except Exception:  # never raise into the exchange
            self.listener_errors += 1
            log.exception("user channel: failed to route an event")


def _lookup_address(state: SimState, api_key: str, secret: str, passphrase: str) -> str | None:
    """Check credentials against the simulator's API-key store (``state``)."""
    found = state.lookup_creds(api_key)
    if found is None:
        return None
    address, creds = found
    ok = hmac.compare_digest(
        creds.secret.reveal().encode(), secret.encode()
    ) and hmac.compare_digest(creds.passphrase.reveal().encode(), passphrase.encode())
    return str(address) if ok else None


HUB_KEY: web.AppKey[WsHub] = web.AppKey("polylab_sim_ws_hub", WsHub)


def register(app: web.Application, state: SimState) -> WsHub:
    """Mount ``/ws/market`` and ``/ws/user`` on ``app`` and listen to ``state.exchange``."""
    hub = WsHub(state)
    app[HUB_KEY] = hub
    app.router.add_get("/ws/market", hub.market_handler)
    app.router.add_get("/ws/user", hub.user_handler)
    app.on_shutdown.append(hub.close_all)
    state.exchange.add_market_listener(hub.on_market_events)
    state.exchange.add_user_listener(hub.on_user_event)
    return hub

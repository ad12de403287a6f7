"""Record a single-port simulator from inside Python (``record_async``; notebooks, research).
The command line (``polylab record --venue sim``, alias ``polylab sim record``) uses
``polylab.runner.recorder`` instead, which records any venue profile.

The recorder behaves like any client: it discovers markets through ``/gamma/markets``, writes
them as the recording's first ``meta`` record, subscribes to every token on ``/ws/market`` with
``custom_feature_enabled``, and writes each received frame (exact text, ``recv_ns`` taken on
receipt) on the ``market`` channel. Listed-later markets (``new_market``) get a ``meta`` record
and a dynamic subscription. Every second it polls each league's ``/espn/.../scoreboard`` and
writes the snapshots on the ``sports`` channel. A dropped socket is reconnected and resubscribed
(fresh snapshots follow). ``polylab replay --verify`` on the result must find 0 mismatches.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import msgspec
import websockets

from polylab.feed.recording import RecordingWriter
from polylab.market import Market
from polylab.sim.gamma import market_from_gamma
from polylab.sim.sports import LEAGUES

__all__ = ["RecordStats", "record", "record_async"]

log = logging.getLogger(__name__)

_PAGE = 500
_SHARD = 200
"""Tokens per socket (the venue sends no snapshots above 500 per connection)."""
_PING_EVERY_S = 10.0
_SPORTS_EVERY_S = 1.0


class RecordStats(msgspec.Struct):
    """What a recording session wrote."""

    frames: int = 0
    markets: int = 0
    sports: int = 0
    reconnects: int = 0
    seconds: float = 0.0


async def _gamma_markets(http: httpx.AsyncClient, **params: str) -> list[Market]:
    """Every open market Gamma lists (paged), as ``Market``; unreadable entries are skipped."""
    out: list[Market] = []
    offset = 0
    while True:
        r = await http.get(
            "/gamma/markets",
            params={"limit": str(_PAGE), "offset": str(offset), "closed": "false", **params},
        )
        r.raise_for_status()
        page = json.loads(r.text, parse_float=Decimal)  # exact numbers, never floats
        for d in page:
            try:
                out.append(market_from_gamma(d))
            except (KeyError, ValueError, TypeError) as exc:
                log.warning("skipping a Gamma market the recorder cannot read: %s", exc)
        if len(page) < _PAGE:
            return out
        offset += _PAGE


class _Recorder:
    def __init__(self, writer: RecordingWriter, http: httpx.AsyncClient, ws_url: str) -> None:
        self.w = writer
        self.http = http
        self.ws_url = ws_url
        self.known: set[str] = set()
        self.stats = RecordStats()

    async def _on_new_market(self, ws: Any, frame: str, tokens: list[str]) -> None:
        """Write a ``meta`` record for markets announced in ``frame`` and subscribe to them."""
        try:
            items = json.loads(frame)
        except ValueError:
            return
        for ev in items if isinstance(items, list) else [items]:
            if not isinstance(ev, dict) or ev.get("event_type") != "new_market":
                continue
            ids = [str(a) for a in ev.get("assets_ids") or () if str(a) not in self.known]
            if not ids:
                continue
            found = await _gamma_markets(self.http, condition_ids=str(ev.get("market", "")))
            if found:
                self.w.write_meta(found)
                self.stats.markets += len(found)
            self.known.update(ids)
            tokens.extend(ids)
            await ws.send(
                json.dumps(
                    {"assets_ids": ids, "operation": "subscribe", "custom_feature_enabled": True}
                )
            )

    async def market_loop(self, deadline: float, tokens: list[str], lead: bool) -> None:
        """Receive one shard's tokens until ``deadline`` (``time.monotonic``), reconnecting on
        drops. The ``lead`` shard also follows ``new_market`` (every shard receives it)."""
        while time.monotonic() < deadline:
            try:
                async with websockets.connect(
                    self.ws_url + "/ws/market", max_size=None, ping_interval=None, compression=None
                ) as ws:
                    await ws.send(
                        json.dumps(
                            {"assets_ids": tokens, "type": "market", "custom_feature_enabled": True}
                        )
                    )
                    await self._receive(ws, deadline, tokens, lead)
            except (websockets.ConnectionClosed, OSError) as exc:
                if time.monotonic() >= deadline:
                    return
                self.stats.reconnects += 1
                log.info("market socket dropped (%s); reconnecting", exc)
                await asyncio.sleep(0.05)
                if lead:
                    await self._catch_up(tokens)

    async def _catch_up(self, tokens: list[str]) -> None:
        """After a drop: markets listed meanwhile (their ``new_market`` was missed)."""
        try:
            found = [m for m in await _gamma_markets(self.http) if m.token_ids[0] not in self.known]
        except httpx.HTTPError as exc:
            log.warning("market discovery after a reconnect failed: %s", exc)
            return
        if found:
            self.w.write_meta(found)
            self.stats.markets += len(found)
            for m in found:
                self.known.update(m.token_ids)
                tokens.extend(m.token_ids)

    async def _receive(self, ws: Any, deadline: float, tokens: list[str], lead: bool) -> None:
        next_ping = time.monotonic() + _PING_EVERY_S
        while True:
            now = time.monotonic()
            if now >= deadline:
                return
            if now >= next_ping:
                await ws.send("PING")
                next_ping = now + _PING_EVERY_S
            try:
                frame = await asyncio.wait_for(ws.recv(), min(deadline, next_ping) - now)
            except TimeoutError:
                continue
            recv_ns = time.time_ns()
            text = frame if isinstance(frame, str) else frame.decode("utf-8", "replace")
            self.w.write("market", text, recv_ns)
            self.stats.frames += 1
            if lead and '"new_market"' in text:
                await self._on_new_market(ws, text, tokens)

    async def sports_loop(self, deadline: float) -> None:
        """Poll every league's scoreboard each second; write the ones that list games."""
        while time.monotonic() < deadline:
            for sport, league in sorted(LEAGUES):
                try:
                    r = await self.http.get(f"/espn/{sport}/{league}/scoreboard")
                except httpx.HTTPError as exc:
                    log.warning("scoreboard poll failed: %s", exc)
                    continue
                if r.status_code == 200 and r.json().get("events"):
                    self.w.write("sports", r.text, time.time_ns())
                    self.stats.sports += 1
            await asyncio.sleep(min(_SPORTS_EVERY_S, max(0.0, deadline - time.monotonic())))


async def _record_from(out: Path, seconds: float, url: str) -> RecordStats:
    t0 = time.monotonic()
    deadline = t0 + seconds
    ws_url = "ws" + url.removeprefix("http")
    async with httpx.AsyncClient(base_url=url, timeout=10.0) as http:
        markets = await _gamma_markets(http)
        with RecordingWriter(out) as w:
            w.write_meta(markets)
            rec = _Recorder(w, http, ws_url)
            rec.stats.markets = len(markets)
            tokens = [t for m in markets for t in m.token_ids]
            rec.known.update(tokens)
            shards = [tokens[i : i + _SHARD] for i in range(0, len(tokens), _SHARD)] or [[]]
            sports = asyncio.create_task(rec.sports_loop(deadline))
            try:
                await asyncio.gather(
                    *(rec.market_loop(deadline, sh, i == 0) for i, sh in enumerate(shards))
                )
            finally:
                sports.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await sports
    rec.stats.seconds = round(time.monotonic() - t0, 3)
    return rec.stats


async def record_async(
    out: str | Path,
    seconds: float = 30.0,
    *,
    seed: int = 7,
    url: str | None = None,
    config: Any = None,
) -> RecordStats:
    """Record ``seconds`` of the simulator at ``url`` (``http://host:port``) into ``out``
    (``.jsonl``, or zstd ``.jsonl.zst``). Without ``url`` a simulator is started for the
    session (``config``, or the defaults with ``seed``)."""
    if url is not None:
        return await _record_from(Path(out), seconds, url.rstrip("/"))
    from polylab.sim.config import SimConfig
    from polylab.sim.server import running_sim

    cfg = config if config is not None else SimConfig(seed=seed)
    async with running_sim(cfg) as sim:
        return await _record_from(Path(out), seconds, sim.url)


def record(
    out: str | Path, seconds: float = 30.0, seed: int = 7, url: str | None = None
) -> RecordStats:
    """Blocking ``record_async`` (the ``polylab sim record`` command)."""
    return asyncio.run(record_async(out, seconds, seed=seed, url=url))

"""Test helpers: convert the shared captures into polylab recordings (in tmp dirs, never in git)."""

from __future__ import annotations

import json
from pathlib import Path

from polylab.feed.recording import RecordingWriter

MULTI = "polymarket/enricobignozzi-polymarket/ws_market_frames_multi_market_2026-09-24.jsonl"
V2_SESSION = "polymarket/polymarket-bot-v2/ws_market_session_v2_asset_2026-10-05.jsonl"


def capture_frames(shared: Path) -> list[tuple[int, str]]:
    """``(recv_ns, payload)`` of the 110-frame multi-market capture, in order."""
    out = []
    for line in (shared / MULTI).read_text().splitlines():
        d = json.loads(line)
        out.append((d["receive_wall_ms"] * 1_000_000, d["payload"]))
    return out


def write_capture(shared: Path, out: Path, *, corrupt: dict[int, str] | None = None) -> Path:
    """The multi-market capture as a polylab recording; ``corrupt`` replaces frame i's payload."""
    with RecordingWriter(out) as w:
        for i, (ns, payload) in enumerate(capture_frames(shared)):
            w.write("market", (corrupt or {}).get(i, payload), ns)
    return out


def v2_session_frames(shared: Path) -> list[str]:
    """Received texts of the 2026-10-05 Protocol-V2 session (book array, PONGs, new_market)."""
    out = []
    for line in (shared / V2_SESSION).read_text().splitlines():
        d = json.loads(line)
        if d["dir"] == "recv":
            out.append(d["data"])
    return out

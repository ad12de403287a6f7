"""``polylab sim serve --layout production``: every production host on its own port with the
production paths, and ``paper``, ``live`` (dry run) and ``record`` on the ``polymarket`` profile
with only the printed base URLs overridden (subprocesses over real sockets)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from polylab.analysis.replay import replay
from polylab.feed.recording import RecordingReader, decode_meta
from polylab.sim.config import SimConfig
from polylab.sim.layout import running_production
from polylab.sim.server import running_sim
from polylab.venue import ENV_KEYS, resolve

CLI = (sys.executable, "-m", "polylab.cli")
KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"


def test_each_host_answers_its_production_paths_only() -> None:
    async def main() -> dict[str, Any]:
        async with running_production(SimConfig(seed=3)) as prod, httpx.AsyncClient() as http:
            o = prod.overrides
            p = resolve("polymarket", overrides=o, use_env=False)
            out: dict[str, Any] = {"keys": set(o), "ports": set(prod.ports.values())}
            out["gamma"] = (await http.get(f"{p.gamma}/markets", params={"limit": 5})).json()
            out["gamma_prefixed"] = (await http.get(f"{p.gamma}/gamma/markets")).status_code
            slug = out["gamma"][0]["slug"]
            out["slug"] = (await http.get(f"{p.gamma}/markets/slug/{slug}")).json()["slug"]
            out["keyset"] = (await http.get(f"{p.gamma}/events/keyset")).json()
            out["clob_markets"] = (await http.get(f"{p.clob}/markets")).json()
            out["clob_time"] = (await http.get(f"{p.clob}/time")).status_code
            sport, league = next(iter(prod.handle.state.scoreboard.leagues()), ("football", "nfl"))
            out["espn"] = (await http.get(p.scoreboard_url(sport, league))).json()
            out["geo"] = (await http.get(p.geoblock)).json()
            out["data"] = await http.get(f"{p.data}/positions", params={"user": "0x" + "1" * 40})
            out["data_bad"] = (await http.get(f"{p.data}/positions")).status_code
            async with websockets.connect(p.market_ws) as ws:
                token = out["gamma"][0]["clobTokenIds"]
                await ws.send(json.dumps({"assets_ids": json.loads(token), "type": "market"}))
                out["ws"] = json.loads(await asyncio.wait_for(ws.recv(), 10))
            return out

    got = asyncio.run(asyncio.wait_for(main(), 60))
    assert set(ENV_KEYS) == got["keys"] and len(got["ports"]) == 7
    assert isinstance(got["gamma"], list) and got["gamma"] and got["gamma_prefixed"] == 404
    assert got["slug"] == got["gamma"][0]["slug"] and "events" in got["keyset"]
    assert "data" in got["clob_markets"] and got["clob_time"] == 200  # the CLOB's own /markets
    assert "events" in got["espn"] and got["geo"]["blocked"] is False
    assert got["data"].status_code == 200 and got["data"].json() == [] and got["data_bad"] == 400
    frames = got["ws"] if isinstance(got["ws"], list) else [got["ws"]]
    assert frames[0]["event_type"] == "book"


def test_the_single_port_sim_serves_every_sim_profile_endpoint() -> None:
    """``venue.sim(url)`` resolves on one port: ESPN's own path under ``/espn``, the Data API
    under ``/data-api``, the geoblock check."""

    async def main() -> tuple[int, int, int, int]:
        async with running_sim(SimConfig(seed=3)) as h, httpx.AsyncClient() as http:
            p = resolve("sim", sim_url=h.url, use_env=False)
            sport, league = next(iter(h.state.scoreboard.leagues()), ("football", "nfl"))
            return (
                (await http.get(p.scoreboard_url(sport, league))).status_code,
                (await http.get(p.geoblock)).status_code,
                (await http.get(p.data)).status_code,
                (await http.get(f"{p.gamma}/markets")).status_code,
            )

    assert asyncio.run(asyncio.wait_for(main(), 30)) == (200, 200, 200, 200)


@pytest.fixture(scope="module")
def production_sim() -> Iterator[dict[str, str]]:
    """``polylab sim serve --layout production`` as a process; its stdout's one JSON object."""
    proc = subprocess.Popen(
        [*CLI, "sim", "serve", "--layout", "production", "--seed", "11"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        overrides = json.loads(line)
        assert isinstance(overrides, dict)
        yield overrides
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        if proc.stdout is not None:
            proc.stdout.close()


def _polylab(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in ENV_KEYS}
    return subprocess.run(
        [*CLI, *args],
        env={**clean, **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_serve_prints_one_json_object_of_overrides(production_sim: dict[str, str]) -> None:
    for key, url in production_sim.items():
        assert key in ENV_KEYS and "127.0.0.1:" in url
    assert production_sim["POLYMARKET_WS_URL"].endswith("/ws/market")
    assert production_sim["POLYMARKET_USER_WS_URL"].endswith("/ws/user")
    assert production_sim["POLYMARKET_GEOBLOCK_URL"].endswith("/api/geoblock")


def test_paper_on_the_polymarket_profile(production_sim: dict[str, str], tmp_path: Path) -> None:
    out = tmp_path / "run"
    args = ["paper", "--venue", "polymarket", "--seconds", "5", "--out", str(out), "--json"]
    r = _polylab(args, production_sim, tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["venue_profile"] == "polymarket"
    assert summary["venue"] == production_sim["POLYMARKET_CLOB_URL"]
    assert summary["events"] > 0 and summary["feed"]["frames"] > 0


def test_live_dry_run_on_the_polymarket_profile(
    production_sim: dict[str, str], tmp_path: Path
) -> None:
    out = tmp_path / "run"
    env = {**production_sim, "POLY_PRIVATE_KEY": KEY}
    r = _polylab(["live", "--seconds", "5", "--out", str(out)], env, tmp_path)  # default venue
    assert r.returncode == 0, r.stderr[-2000:]
    assert "DRY_RUN" in r.stderr and production_sim["POLYMARKET_CLOB_URL"] in r.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["cancel_on_stop"] == "dry_run" and summary["events"] > 0


def test_record_on_the_polymarket_profile(production_sim: dict[str, str], tmp_path: Path) -> None:
    out = tmp_path / "rec.jsonl.zst"
    args = ["record", str(out), "--venue", "polymarket", "--seconds", "3", "--json"]
    args += ["--league", "football/nfl"]
    r = _polylab(args, production_sim, tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    stats = json.loads(r.stdout.strip().splitlines()[-1])
    recs = list(RecordingReader(out))
    assert recs[0].channel == "meta" and len(decode_meta(recs[0].payload)) == stats["markets"]
    assert stats["frames"] > 0 and stats["markets"] > 0
    res, _, _, _ = replay(out, verify=True)
    assert res.mismatches == 0 and res.snapshots > 0


def test_a_bad_override_is_one_line_and_exit_2(tmp_path: Path) -> None:
    env = {"POLYMARKET_GAMMA_URL": "gamma.local"}
    for cmd in (["paper", "--venue", "polymarket"], ["record", "x.jsonl", "--seconds", "1"]):
        r = _polylab([*cmd, "--seconds", "1"] if cmd[0] == "paper" else cmd, env, tmp_path)
        assert r.returncode == 2, r.stderr
        line = r.stderr.strip().splitlines()[-1]
        assert line.startswith("polylab: error: ") and "Traceback" not in r.stderr
        assert "POLYMARKET_GAMMA_URL" in line and "gamma.local" in line


def test_gamma_lookups_against_the_production_layout() -> None:
    """Keyset paging and slug lookups on the simulator's Gamma host, as on the venue's."""
    from polylab.feed.discovery import GammaClient
    from polylab.feed.gamma_lookup import event_by_slug, keyset, market_by_slug

    async def main() -> tuple[int, int, bool, bool, object]:
        async with running_production(SimConfig(seed=3)) as prod:
            p = resolve("polymarket", overrides=prod.overrides, use_env=False)
            async with GammaClient(p.gamma, page_size=3) as g:
                listed = await g.fetch_markets(closed=False)
                paged = await keyset(g, "markets", closed=False)
                events = await keyset(g, "events")
                m = await market_by_slug(g, listed[-1].slug)
                e = await event_by_slug(g, events[0].slug)
                missing = await market_by_slug(g, "no-such-market")
                return len(listed), len(paged), m is not None, e is not None, missing

    n, k, found_m, found_e, missing = asyncio.run(asyncio.wait_for(main(), 30))
    assert n == k > 3 and found_m and found_e and missing is None


def test_an_unreachable_gamma_is_one_line_and_exit_2(tmp_path: Path) -> None:
    env = {"POLYMARKET_GAMMA_URL": "http://127.0.0.1:9", "POLY_PRIVATE_KEY": KEY}
    for cmd in (["paper", "--venue", "polymarket"], ["live"], ["record", "x.jsonl"]):
        r = _polylab([*cmd, "--seconds", "1"], env, tmp_path)
        assert r.returncode == 2, (cmd, r.stderr[-1000:])
        lines = r.stderr.strip().splitlines()
        assert lines[-1].startswith("polylab: error: venue "), r.stderr[-1000:]
        assert "Gamma http://127.0.0.1:9" in lines[-1] and "Traceback" not in r.stderr

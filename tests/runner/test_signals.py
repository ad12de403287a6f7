"""Ctrl-C (SIGINT) and SIGTERM stop ``polylab paper`` and ``polylab live`` cleanly: the run
folder and its summary are written and the exit code is 0; a live session cancels the
account's open orders first."""

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from polylab.config import load_config
from polylab.execution.live import Credentials
from polylab.execution.signer import OrderSigner
from polylab.feed.recording import RecordingReader
from polylab.money import MICROS
from polylab.runner.live import run_live
from polylab.runner.paper import FEED_FILE, Venue
from polylab.sim.config import SimConfig
from polylab.sim.server import running_sim

CLI = (sys.executable, "-m", "polylab.cli")
KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
TABLES = {"intents", "orders", "fills", "positions", "opportunities", "rejections"}


class Session:
    """``polylab <command> --seconds 60 --out RUN`` on the built-in simulator, as a process."""

    def __init__(
        self, tmp_path: Path, command: str, env: dict[str, str] | None = None, *args: str
    ) -> None:
        self.out = tmp_path / "run"
        self.log_path = tmp_path / "log.txt"
        with open(self.log_path, "w") as log:
            self.proc = subprocess.Popen(
                [*CLI, command, *args, "--seconds", "60", "--out", str(self.out)],
                stdout=subprocess.DEVNULL,
                stderr=log,
                cwd=tmp_path,
                env={**os.environ, **(env or {})},
            )

    def wait_trading(self) -> None:
        """Until the session records market frames (it is on the feed), then a few seconds."""
        feed = self.out / FEED_FILE
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and self.proc.poll() is None:
            if feed.is_file() and feed.stat().st_size > 4096:
                break
            time.sleep(0.2)
        time.sleep(2.0)

    def stop(self, sig: signal.Signals) -> dict[str, object]:
        """Send ``sig``; check exit 0 and a complete run folder; return its summary."""
        assert self.proc.poll() is None, self.log_path.read_text()[-2000:]
        self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise
        out = self.out
        assert rc == 0, self.log_path.read_text()[-2000:]
        summary: dict[str, object] = json.loads((out / "summary.json").read_text())
        assert summary["stopped_by"] == "stop" and summary["events"] > 0  # type: ignore[operator]
        assert {p.stem for p in out.glob("*.parquet")} >= TABLES
        reader = RecordingReader(out / FEED_FILE)
        records = sum(1 for _ in reader)  # the zstd stream was finished: readable to the end
        assert records > 1 and reader.malformed == 0
        prov = summary["provenance"]
        assert isinstance(prov, dict) and prov["data_hash"] == summary["feed_sha256"]
        return summary


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_paper_stops_cleanly_on_a_signal(tmp_path: Path, sig: signal.Signals) -> None:
    s = Session(tmp_path, "paper")
    s.wait_trading()
    s.stop(sig)


def test_live_dry_run_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    s = Session(tmp_path, "live", {"POLY_PRIVATE_KEY": KEY}, "--venue", "sim")
    s.wait_trading()
    assert s.stop(signal.SIGTERM)["cancel_on_stop"] == "dry_run"


def test_live_session_cancels_open_orders_when_stopped(tmp_path: Path) -> None:
    """A resting order of the account is cancelled at the venue when the session stops."""
    cfg = load_config(env={"RISK_MAX_POSITION": "300", "DRY_RUN": "false"})
    owner = OrderSigner(KEY).address

    async def main():  # type: ignore[no-untyped-def]
        async with running_sim(SimConfig(seed=11)) as h:
            exch = h.state.exchange
            m = next(m for m in exch.markets.markets.values() if not m.neg_risk)
            placed = exch.place(owner, m.token_ids[0], "BUY", 1, 10 * MICROS)  # 0.01: rests
            assert placed.success, placed.error_msg
            assert exch.open_orders(owner)
            v = Venue(url=h.url, ws_url=h.ws_url, simulated=True)
            stop = asyncio.Event()
            asyncio.get_running_loop().call_later(2.0, stop.set)
            got = await run_live(
                cfg,
                v,
                Credentials(KEY, None),
                live=True,
                seconds=60,
                out_dir=tmp_path / "run",
                stop=stop,
            )
            return got, exch.open_orders(owner)

    (_, _, ex), still_open = asyncio.run(main())
    assert not ex.config.dry_run and still_open == []
    summary = json.loads((tmp_path / "run/summary.json").read_text())
    assert summary["stopped_by"] == "stop" and summary["cancel_on_stop"] == "ok"
    assert summary["cancelled_orders"] >= 1

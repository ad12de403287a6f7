"""A hot reload that adds, retunes and removes the Sniper in a running paper session: its
scoreboard pollers start, follow ``poll_ms`` / ``sports_channel`` without restarting, and stop
with nothing left running. Real services: the built-in simulator (markets, its ESPN stand-in
and its sports channel), the runner service on a SQLite ledger and the in-process bus; the
reloads are ``reload_config`` messages for gated config files."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from pathlib import Path

import msgspec
from pipeline.promote_data import GATES, metrics

from polylab.bus.messages import ConfigMessage, ControlMessage
from polylab.config import PolylabConfig, config_id
from polylab.feed.recording import RecordingReader
from polylab.feed.sports_sources import payload_source
from polylab.money import MICROS
from polylab.pipeline.promote import evaluate_candidate, register_candidate
from polylab.runner.paper import FEED_FILE, PaperRun, run_paper, venue
from polylab.runner.service import RunnerService, ServiceOptions
from polylab.runner.sports_pollers import SportsPollers
from polylab.store.ledger import Ledger

SIM = {  # games start after the swap to the Sniper, and end before the markets reprice
    "game_delay_s": [3.0, 5.0],
    "game_length_s": [2.0, 4.0],
    "sports_lag_s": 2.0,
    "sports_ws_lag_s": 0.0,
}
HANG_S = 90.0  # a hang guard, not a timing assertion


def _cfg(strategies: list[str], edge: int, **sniper: object) -> PolylabConfig:
    return msgspec.convert(
        {
            "strategies": strategies,
            "sum_to_100": {"min_edge_micros": edge},
            "sniper": {"poll_ms": 200, **sniper},
            "risk": {"max_position_micros": 300 * MICROS},
        },
        PolylabConfig,
    )


def _gated_file(ledger: Ledger, tmp: Path, cfg: PolylabConfig) -> str:
    cid = register_candidate(ledger, cfg, metrics=metrics(), data_hashes={}).id
    evaluate_candidate(ledger, cid, GATES)
    p = tmp / f"{config_id(cfg)[:8]}.json"
    p.write_bytes(msgspec.json.encode(cfg))
    return str(p)


async def _until(what: str, ok: Callable[[], bool]) -> None:
    end = asyncio.get_running_loop().time() + HANG_S
    while not ok():
        assert asyncio.get_running_loop().time() < end, f"no {what} within {HANG_S} s"
        await asyncio.sleep(0.05)


def _sports_tasks() -> list[asyncio.Task[object]]:
    return [t for t in asyncio.all_tasks() if t.get_name().startswith("sports:")]


def test_reloads_start_retune_and_stop_the_sniper_scoreboards(tmp_path: Path) -> None:
    no_sniper = _cfg(["sum_to_100"], 1_000_000_000)
    sniper = _cfg(["sum_to_100", "sniper"], 1_000_000_000)
    channel = _cfg(["sum_to_100", "sniper"], 1_000_000_000, poll_ms=700, sports_channel=True)
    without = _cfg(["sum_to_100"], 999_000_000)  # the Sniper removed again (a new id)
    db = tmp_path / "polylab.db"
    ledger = Ledger.open(f"sqlite:///{db}")
    files = [_gated_file(ledger, tmp_path, c) for c in (sniper, channel, without)]
    ledger.close()
    svc = RunnerService(
        no_sniper,
        ServiceOptions(sqlite_path=str(db)),
        mode="paper",
        venue="sim",
        starting_cash_micros=10_000 * MICROS,
    )
    seen: dict[str, object] = {}

    async def reload(path: str) -> ConfigMessage:
        assert svc.reloader is not None
        n = len(svc.reloader.swaps)
        await svc.reloader.on_control(
            ControlMessage(ts_ns=1, action="reload_config", by="t", reason="r", config_path=path)
        )
        assert svc.reloader.refusals == []
        assert len(svc.reloader.swaps) == n + 1
        return svc.reloader.swaps[-1]

    async def drive(run: PaperRun, stop: asyncio.Event) -> None:
        try:
            await steps(run)
        finally:
            stop.set()  # the session ends whatever happened (seconds=None)

    async def steps(run: PaperRun) -> None:
        sports = run.sports
        assert isinstance(sports, SportsPollers)
        await _until("session start", lambda: sports.running)
        assert sports.tasks == [] and _sports_tasks() == []  # no Sniper: nothing polled

        # Sniper added: one ESPN poller per league, filling the new Sniper's team directory.
        asked = time.monotonic()
        msg = await reload(files[0])
        assert msg.restart_needed == () and "strategies" in " ".join(msg.changed)
        boards = list(sports.boards)
        assert [b.src.league for b in boards] == [lg for _, lg in sports.leagues] != []
        assert len(sports.tasks) == len(boards) and sports.channel is None
        snip = next(s for s in run.engine.strategies if s.name == "sniper")
        assert all(b.src.teams is snip.teams for b in boards)  # type: ignore[attr-defined]
        await _until("a scoreboard", lambda: all(b.src.stats.polls > 0 for b in boards))
        print(f"reload → every league polled: {(time.monotonic() - asked) * 1e3:.0f} ms")
        await _until("a Sniper intent", lambda: bool(snip.fired))  # type: ignore[attr-defined]

        # poll_ms and the sports channel change live: the same ESPN pollers, a channel added.
        msg = await reload(files[1])
        assert msg.restart_needed == ()
        assert set(msg.changed) == {"sniper.poll_ms", "sniper.sports_channel"}
        assert sports.boards == boards and all(b.src.poll_ns == 700_000_000 for b in boards)
        ch = sports.channel
        assert ch is not None and sports.reconciler is not None
        assert len(sports.tasks) == len(boards) + 1
        await _until("a sports channel frame", lambda: ch.counters.frames > 0)

        # Sniper removed: every poller task ended, every connection closed, nothing leaked.
        tasks = sports.tasks
        msg = await reload(files[2])
        assert msg.restart_needed == ()
        assert sports.tasks == [] and sports.boards == [] and sports.channel is None
        assert all(t.done() for t in tasks) and _sports_tasks() == []
        assert all(b.client.is_closed for b in boards)
        assert not any(s.name == "sniper" for s in run.engine.strategies)
        seen["starts"], seen["stops"] = sports.starts, sports.stops

    async def main() -> None:
        await svc.start()
        stop = asyncio.Event()
        drivers: list[asyncio.Task[None]] = []

        def on_start(run: PaperRun) -> None:
            svc.attach(run)
            drivers.append(asyncio.create_task(drive(run, stop)))

        try:
            async with venue(None, seed=11, sim_overrides=SIM) as v:
                await run_paper(
                    no_sniper,
                    v,
                    seconds=None,
                    stop=stop,
                    out_dir=tmp_path / "run",
                    on_start=on_start,
                )
            await drivers[0]  # its assertions
        finally:
            await svc.close()

    asyncio.run(main())
    assert (seen["starts"], seen["stops"]) == (2, 2)  # ESPN, then the channel; both at the removal
    recorded = [
        payload_source(r.payload)
        for r in RecordingReader(tmp_path / "run" / FEED_FILE)
        if r.channel == "sports"
    ]
    assert "espn" in recorded and "polymarket" in recorded
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["stopped_by"] == "stop"

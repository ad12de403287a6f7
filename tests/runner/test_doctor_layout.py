"""``polylab doctor`` on the simulator in production layout: ``--venue polymarket`` (the
default) with only the layout's printed base URLs overridden (what ``polylab sim serve
--layout production`` prints), as the issue asks."""

from __future__ import annotations

import json
from typing import Any

import pytest
from typer.testing import CliRunner

from polylab.cli import app
from polylab.sim import SimConfig
from polylab.sim.layout import running_production

KEY = "0x4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318"


def statuses(report: dict[str, Any]) -> dict[str, str]:
    return {c["name"]: c["status"] for c in report["checks"]}


# -- the production layout ----------------------------------------------------------------------
class _Production:
    """``running_production`` on a background thread's loop; ``overrides`` once it serves."""

    def __init__(self, config: SimConfig) -> None:
        import asyncio
        import threading

        self.overrides: dict[str, str] = {}
        self._ready = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._stop = asyncio.Event()

        async def serve() -> None:
            async with running_production(config) as prod:
                self.overrides = dict(prod.overrides)
                self._ready.set()
                await self._stop.wait()

        self._thread = threading.Thread(target=lambda: self._loop.run_until_complete(serve()))
        self._thread.start()
        assert self._ready.wait(30), "production layout did not start"

    def close(self) -> None:
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)
        self._loop.close()


def doctor_on_production(**config: Any) -> tuple[int, dict[str, str]]:
    """Exit code and check statuses of ``polylab doctor`` (no ``--venue``: the default)."""
    prod = _Production(SimConfig(generator=False, seed=3, **config))
    try:
        env = {**prod.overrides, "POLY_PRIVATE_KEY": KEY}
        res = CliRunner().invoke(app, ["doctor", "--json"], env=env)
    finally:
        prod.close()
    report = json.loads(res.stdout)
    assert report["venue"] == "polymarket"
    return res.exit_code, statuses(report)


def test_production_layout_all_pass() -> None:
    code, st = doctor_on_production()
    assert code == 0 and set(st.values()) == {"pass"}, st
    assert st["sports channel"] == "pass"  # the layout serves it at /ws on its own port


@pytest.mark.parametrize(
    ("config", "failing"),
    [
        ({"require_approval": True}, ["collateral", "positions CTF", "positions V2"]),
        ({"geo_blocked": True}, ["geoblock"]),
        ({"time_offset_s": 90.0}, ["clock skew"]),
    ],
)
def test_production_layout_failing_cases(config: dict[str, Any], failing: list[str]) -> None:
    code, st = doctor_on_production(**config)
    assert code == 1 and [n for n, v in st.items() if v != "pass"] == failing, st

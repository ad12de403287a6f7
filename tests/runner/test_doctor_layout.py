"""``polylab doctor`` on the simulator in production layout: ``--venue polymarket`` (the
default) with only the layout's printed base URLs overridden, as the issue asks. Runs once
``polylab.sim.layout`` (``polylab sim serve --layout production``) exists."""

from __future__ import annotations

import json
from typing import Any

import pytest
from typer.testing import CliRunner

from polylab.cli import app
from polylab.sim import SimConfig

KEY = "0x4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318"


def statuses(report: dict[str, Any]) -> dict[str, str]:
    return {c["name"]: c["status"] for c in report["checks"]}


# -- the production layout ----------------------------------------------------------------------
class _Production:
    """``running_production`` on a background thread's loop; ``overrides`` once it serves."""

    def __init__(self, config: SimConfig) -> None:
        import asyncio
        import threading

        layout = pytest.importorskip("polylab.sim.layout")
        self.overrides: dict[str, str] = {}
        self._ready = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._stop = asyncio.Event()

        async def serve() -> None:
            async with layout.running_production(config) as prod:
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


def test_production_layout_all_pass_then_missing_allowance() -> None:
    """``--venue polymarket`` (the default) with only the layout's printed base URLs
    overridden: every check passes; with ``require_approval`` the allowances fail."""
    for require_approval in (False, True):
        prod = _Production(SimConfig(generator=False, seed=3, require_approval=require_approval))
        try:
            env = {**prod.overrides, "POLY_PRIVATE_KEY": KEY}
            res = CliRunner().invoke(app, ["doctor", "--no-sports", "--json"], env=env)
        finally:
            prod.close()
        report = json.loads(res.stdout)
        st = statuses(report)
        assert report["venue"] == "polymarket"
        if require_approval:
            assert res.exit_code == 1 and st["collateral"] == "fail", st
            assert [n for n, v in st.items() if v != "pass"] == [
                "collateral",
                "positions CTF",
                "positions V2",
            ]
        else:
            assert res.exit_code == 0 and set(st.values()) == {"pass"}, st

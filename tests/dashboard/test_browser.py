"""The dashboard in a real browser: headless Chromium (Debian's ``chromium`` package) driven by
playwright, against a served dashboard and a runner bus on the real Redis.

``test_the_dashboard_on_a_real_polylab_run`` follows a real ``polylab run`` (paper, built-in
simulator) in its own process. ``test_operator_session_in_a_real_browser`` uses a stand-in
runner (a loop on the test's bus publishing ``poly:state`` at 10 Hz, halting on a kill switch)
to show chosen data: signals both ways, an error, several strategies, the ledger's history.
Screenshots go to ``runs/artifacts/``.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from dashboard.desk_data import fill_desk
from dashboard.helpers import Dash, Runner, state, wait_for

from polylab.bus import (
    CONTROL,
    ERRORS,
    SIGNALS,
    STATE,
    TRADES,
    ConfigMessage,
    ControlMessage,
    ErrorMessage,
    FeedHealth,
    FillMessage,
    OpenOrder,
    PositionView,
    SignalLeg,
    SignalMessage,
)

CHROMIUM = os.environ.get("POLYLAB_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "runs" / "artifacts"
POLYLAB = str(Path(sys.executable).parent / "polylab")
SIGNAL_ROWS = '#signals tbody tr:not([data-key^="config-"])'  # intents (not config swaps)
INSTALL = "apt-get install -y chromium (Debian's package; `make browser` does it as root)"


def _need_browser() -> Any:
    missing = []
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing.append("the playwright package (make setup)")
        sync_playwright = None
    if shutil.which(CHROMIUM) is None:
        missing.append(f"{CHROMIUM} ({INSTALL})")
    if missing:
        msg = "browser tests need " + " and ".join(missing)
        if os.environ.get("CI") == "true":
            pytest.fail(msg)
        pytest.skip(msg)
    return sync_playwright


class FakeRunner:
    """Publishes a 10 Hz ``poly:state`` on ``runner``'s bus; a kill switch on ``poly:control``
    sets ``kill_switch`` in the next state (as the runner confirms a halt); a
    ``reload_config`` swaps to the ledger's promoted config as the runner's hot reload does
    (a ``ConfigMessage`` on ``poly:signals``, the new ``config_id`` in ``poly:state``)."""

    def __init__(self, runner: Runner, ledger: Any) -> None:
        self.runner = runner
        self.ledger = ledger
        self.published = 0
        self.halted_by = ""
        self.config_id = ""
        self.task = asyncio.run_coroutine_threadsafe(self._run(), runner.lt.loop)

    async def _run(self) -> None:
        sub = await self.runner.bus.subscribe(CONTROL)
        pos = PositionView(
            token_id="tok-yes-1234567890",
            size_micros=25_000_000,
            cost_micros=11_250_000,
            mark_price_micros=460_000,
            unrealized_micros=250_000,
        )
        order = OpenOrder(
            order_id="0xabc123def456",
            intent_id="i-9",
            token_id="tok-no-99887766",
            side="BUY",
            price_micros=520_000,
            size_micros=10_000_000,
        )
        while True:
            while (m := sub.get_nowait()) is not None:
                if isinstance(m, ControlMessage) and m.action == "kill_switch":
                    self.halted_by = m.by
                if isinstance(m, ControlMessage) and m.action == "reload_config":
                    new = self.ledger.promoted_config().id
                    swap = ConfigMessage(
                        ts_ns=time.time_ns(),
                        old_id=self.config_id,
                        new_id=new,
                        by=m.by,
                        reason=m.reason,
                        origin="promoted",
                    )
                    self.runner.bus.publish(SIGNALS, swap)
                    self.config_id = new
            self.published += 1
            n = self.published
            msg = state(
                n * 100,  # uptime_ms: one state per 100 ms
                feeds=(FeedHealth(shard="market-0", connected=True, last_msg_age_ms=40),),
                kill_switch=bool(self.halted_by),
                positions=(pos,),
                open_orders=() if self.halted_by else (order,),
                realized_pnl_micros=n * 1_000,
                unrealized_pnl_micros=250_000,
                loss_headroom_micros=200_000_000,
                open_orders_headroom=19,
                config_id=self.config_id,
            )
            self.runner.bus.publish(STATE, msg)
            await asyncio.sleep(0.1)

    def stop(self) -> None:
        self.task.cancel()


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Any]:
    """A SQLite ledger with a run and a minute of PnL snapshots (the page's history)."""
    from polylab.store.ledger import Ledger
    from polylab.store.ledger_rows import PnlSnapshotRow

    led = Ledger.open(f"sqlite:///{tmp_path / 'ledger.db'}")
    fill_desk(led, rolled_back=False)  # two configs promoted in turn, two controls
    rid = led.start_run(mode="paper", venue="sim", config_id="cfg-3f2a", code_version="test")
    now = time.time_ns()
    led.write(
        [
            PnlSnapshotRow(
                run_id=rid,
                ts_ns=now - (60 - s) * 1_000_000_000,
                cash_micros=10_000_000_000,
                equity_micros=10_000_000_000 + 4_000 * s,
                realized_micros=4_000 * s,
                unrealized_micros=0,
                fees_micros=0,
            )
            for s in range(60)
        ]
    )
    yield led
    led.close()


@pytest.fixture
def dash(make_dash: Any, ledger: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Dash:
    monkeypatch.chdir(tmp_path)  # a rollback's promotion JSON goes under runs/ here
    dash: Dash = make_dash(ledger=ledger)
    return dash


@pytest.fixture
def fake_runner(dash: Dash, ledger: Any) -> Iterator[FakeRunner]:
    fr = FakeRunner(dash.runner, ledger)
    yield fr
    fr.stop()


def _fill(n: int, strategy: str, realized: int) -> FillMessage:
    return FillMessage(
        ts_ns=time.time_ns(),
        fill_id=f"fill-{strategy}-{n}",
        intent_id=f"intent-{n}",
        strategy=strategy,
        order_id=f"order-{n}",
        token_id="tok-yes-1234567890",
        side="BUY",
        size_micros=5_000_000,
        price_micros=450_000,
        cost_micros=2_250_000,
        fee_micros=11_000,
        realized_micros=realized,
    )


def _signal(n: int, decision: str) -> SignalMessage:
    leg = SignalLeg(
        token_id="tok", side="BUY", price_micros=450_000, size_micros=5_000_000, order_type="FOK"
    )
    return SignalMessage(
        ts_ns=time.time_ns(),
        intent_id=f"intent-{n}",
        strategy="sum_to_100",
        group_id="g",
        kind="buy_set",
        legs=(leg,),
        edge_micros=30_000,
        cost_micros=2_250_000,
        created_ns=time.time_ns(),
        decision="approved" if decision == "approved" else "rejected",
        rule="" if decision == "approved" else "max_position",
    )


def test_operator_session_in_a_real_browser(
    dash: Dash, fake_runner: FakeRunner, ledger: Any
) -> None:
    sync_playwright = _need_browser()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    env = os.environ | {
        "DASHBOARD_JWT_SECRET": dash.settings.secret.decode(),
        "REDIS_URL": dash.redis_url,
    }
    env.pop("SLACK_WEBHOOK_URL", None)
    otp = subprocess.run(
        [POLYLAB, "dashboard", "otp", "--prefix", dash.prefix],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    code = otp.stdout.strip()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            ctx = browser.new_context(viewport={"width": 1280, "height": 800})
            page = ctx.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            # 1. the login page, then log in with the code from `polylab dashboard otp`
            resp = page.goto(dash.url + "/")
            assert resp is not None and resp.status == 401
            page.screenshot(path=str(ARTIFACTS / "dashboard-login-1280x800.png"))
            page.fill("#code", code)
            page.click("#login")
            page.wait_for_selector("#conn.on", timeout=15_000)

            # 2. poly:state updates: the page shows at least half of the 10 Hz states
            wait_for(lambda: int(page.inner_text("#states")) > 3, "the first states")
            p0, s0 = fake_runner.published, int(page.inner_text("#states"))
            wait_for(lambda: fake_runner.published >= p0 + 20, "20 more states")
            p1, s1 = fake_runner.published, int(page.inner_text("#states"))
            assert s1 - s0 >= (p1 - p0) // 2, (p0, p1, s0, s1)
            assert page.inner_text("#mode") == "paper"
            wait_for(lambda: "cfg-3f2a" in page.inner_text("#run"), "the run from the ledger")
            _see_desk_panels(page, ledger)

            # 3. a fill appears (publish → visible, measured and printed)
            for n, decision in enumerate(["approved", "rejected", "approved"]):
                dash.runner.publish(SIGNALS, _signal(n, decision))
            gap = "sequence gap on shard 0, resnapshot"
            err = ErrorMessage(ts_ns=time.time_ns(), source="feed", error="Gap", message=gap)
            dash.runner.publish(ERRORS, err)
            for n in range(3):
                dash.runner.publish(TRADES, _fill(n, "clipper", -2_000 * n))
            t0 = time.monotonic()
            dash.runner.publish(TRADES, _fill(7, "sum_to_100", 30_000))
            page.wait_for_selector('#fills tr[data-key="fill-sum_to_100-7"]', timeout=10_000)
            print(f"fill visible {1000 * (time.monotonic() - t0):.0f} ms after publish")
            assert page.locator(SIGNAL_ROWS).count() == 3
            assert "sequence gap" in page.inner_text("#errors")
            page.wait_for_selector("#pnl-chart >> text=clipper realized", timeout=10_000)
            page.screenshot(path=str(ARTIFACTS / "dashboard-1280x800.png"))
            page.set_viewport_size({"width": 390, "height": 844})
            page.wait_for_timeout(500)  # plotly redraws the chart at the new width
            page.screenshot(path=str(ARTIFACTS / "dashboard-phone-390x844.png"), full_page=True)
            page.set_viewport_size({"width": 1280, "height": 800})

            # the session renews (the page does it every 10 min): the old token's stream
            # ends, the page reconnects with the new cookie from where it was, no row twice
            rows = page.locator("#fills tbody tr").count()
            renew = "() => fetch('/refresh', {method: 'POST'}).then((r) => r.status)"
            assert page.evaluate(renew) == 200
            dash.runner.publish(TRADES, _fill(8, "sum_to_100", 1_000))
            page.wait_for_selector('#fills tr[data-key="fill-sum_to_100-8"]', timeout=10_000)
            assert page.locator("#fills tbody tr").count() == rows + 1
            assert page.locator("#errors tbody tr").count() == 1
            assert page.locator(SIGNAL_ROWS).count() == 3

            # 4. the kill switch: confirm, the runner halts and says so in poly:state
            assert page.is_hidden("#halted")
            page.click("#kill")
            page.click("#confirm-yes")
            page.wait_for_selector("#halted", state="visible", timeout=10_000)
            assert fake_runner.halted_by.startswith("operator@127.0.0.1")
            page.screenshot(path=str(ARTIFACTS / "dashboard-halted-1280x800.png"))

            # 5. log out: back to the login page, and the old cookie opens nothing
            old = [c for c in ctx.cookies() if c["name"] == "polylab_session"]
            assert old and old[0]["httpOnly"] and old[0]["sameSite"] == "Strict"
            page.click("#logout")
            page.wait_for_selector("#code")
            assert page.request.get(dash.url + "/api/state").status == 401
            ctx.add_cookies([old[0]])  # type: ignore[list-item]
            assert page.request.get(dash.url + "/api/state").status == 401
            again = page.goto(dash.url + "/")
            assert again is not None and again.status == 401
            assert page.is_visible("#code")
            assert errors == []
        finally:
            browser.close()


def _see_desk_panels(page: Any, ledger: Any) -> None:
    """The Configuration panel shows the promoted config (id in full, thresholds, gates,
    metrics, data hashes, the promotion history newest first) and the running one; the
    Controls history panel shows who pressed what; "Rollback config" (confirmed) restores
    the previous config, and the panel shows it with the operator in its history.
    Screenshots of the panel, both widths."""
    newer = ledger.promoted_config()
    wait_for(lambda: page.inner_text("#cfg-id") == newer.id, "the promoted config")
    assert "0.006" in page.inner_text("#cfg-thresholds")
    assert page.locator("#promotions tbody tr").count() == 2
    # the runner has not named its config: the latest run's, which the ledger does not know
    running = page.inner_text("#cfg-running")
    assert "cfg-3f2a" in running and "not in the ledger" in running, running
    page.click("#rollback")
    page.click("#confirm-yes")
    wait_for(lambda: ledger.promoted_config().id != newer.id, "the rollback in the ledger")
    active = ledger.promoted_config()
    wait_for(lambda: page.inner_text("#cfg-id") == active.id, "the promoted config")
    # the runner reloads (poly:control) and names the config it now runs in poly:state
    swap = '#signals tr[data-key^="config-"]'
    page.wait_for_selector(swap, timeout=10_000)
    assert active.id[:6] in page.inner_text(swap)
    wait_for(lambda: page.inner_text("#cfg-running") == "the promoted config", "the reload")
    thresholds = page.inner_text("#cfg-thresholds")
    assert "sum_to_100.min_edge" in thresholds and "$0.004" in thresholds
    # the Sniper's money thresholds in dollars, not micros
    assert "sniper.max_price" in thresholds and "$0.97" in thresholds and "$0.10" in thresholds
    assert "970000" not in thresholds and "100000" not in thresholds
    assert page.locator("#cfg-gates td.pass").count() == len(active.gates) > 0
    metrics = page.inner_text("#cfg-metrics")
    assert "out_of_sample.pnl_micros" in metrics and "$1.75" in metrics  # 1_750_000 micros
    assert active.git_sha in page.inner_text("#cfg-git")
    for name, digest in active.data_hashes.items():
        assert name in page.inner_text("#cfg-data") and digest in page.inner_text("#cfg-data")
    history = page.locator("#promotions tbody tr")
    wait_for(lambda: history.count() == 3, "the rollback in the promotion history")
    first = history.nth(0).inner_text()
    assert "rollback" in first and "operator@127.0.0.1" in first and active.id[:12] in first
    controls = page.locator("#controls tbody tr")
    wait_for(lambda: controls.count() == 2, "the controls history")
    assert "resume" in controls.nth(0).inner_text() and "operator@" in controls.nth(1).inner_text()
    panel = page.locator("#config-panel")
    static = "header { position: static !important; }"  # the sticky bar would cover the panel
    panel.screenshot(path=str(ARTIFACTS / "dashboard-config-1280x800.png"), style=static)
    page.set_viewport_size({"width": 390, "height": 844})
    page.wait_for_timeout(300)
    panel.screenshot(path=str(ARTIFACTS / "dashboard-config-phone-390x844.png"), style=static)
    page.set_viewport_size({"width": 1280, "height": 800})
    page.evaluate("window.scrollTo(0, 0)")


def test_the_dashboard_on_a_real_polylab_run(
    make_dash: Any, tmp_path: Path, redis_url: str, prefix: str
) -> None:
    """``polylab run`` (paper, built-in simulator, Redis bus with the test's prefix, SQLite
    ledger) in its own process; the dashboard follows it in Chromium: ≥ 5 states a second (by
    the runner's own timestamps), fills within 1 s of their publication, the kill switch halts
    the runner (its state confirms it), logout refuses the old cookie."""
    _need_browser()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    db = f"sqlite:///{tmp_path / 'ledger.db'}"
    env = os.environ | {"REDIS_URL": redis_url}
    env.pop("DATABASE_URL", None)
    args = ["--seconds", "120", "--bus-prefix", prefix, "--database-url", db]
    runner = subprocess.Popen(
        [POLYLAB, "run", *args, "--out", str(tmp_path / "run")],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        from polylab.store.ledger import Ledger

        def ledger_ready() -> Any:  # the runner made its schema and its run
            try:
                led = Ledger.open(db, migrate=False)
            except Exception:
                return None
            try:
                if led.latest_run() is not None:
                    return led
            except Exception:
                pass
            led.close()
            return None

        led = wait_for(ledger_ready, "the runner's run in the ledger", 60)
        try:
            _run_session(make_dash, runner, led)
        finally:
            led.close()
    finally:
        runner.terminate()
        _, err = runner.communicate(timeout=60)
    assert runner.returncode == 0, err[-2000:]


def _run_session(make_dash: Any, runner: Any, ledger: Any) -> None:
    from playwright.sync_api import sync_playwright

    dash: Dash = make_dash(ledger=ledger)
    seen_fills: dict[str, int] = {}  # fill_id → when this process got it off the bus (ms)

    def on_trade(m: Any) -> None:
        if isinstance(m, FillMessage):
            seen_fills.setdefault(m.fill_id, time.time_ns() // 1_000_000)

    dash.runner.lt.run(dash.runner.bus.subscribe(TRADES, callback=on_trade))
    code = dash.code()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()
            page.goto(dash.url + "/")
            page.fill("#code", code)
            page.click("#login")
            page.wait_for_selector("#conn.on", timeout=15_000)
            live_ms = time.time_ns() // 1_000_000
            print(f"fills before the page was live: {len(seen_fills)}")
            wait_for(
                lambda: runner.poll() is None and int(page.inner_text("#states")) >= 3,
                "the runner's first states",
                60,
            )
            assert page.inner_text("#mode") == "paper"
            run_id = ledger.latest_run()
            wait_for(lambda: run_id in page.inner_text("#run"), "the run from the ledger")
            # the Configuration panel names the config the runner runs (none promoted here)
            from polylab.dashboard.history import read_history

            cid = read_history(ledger)["run"]["config_id"]
            wait_for(lambda: cid in page.inner_text("#cfg-running"), "the running config", 30)
            assert page.inner_text("#cfg-id") == "none promoted"

            # ≥ 5 states a second, counted on the page, timed by the runner's own ts_ns
            def mark() -> tuple[int, int]:
                st = page.request.get(dash.url + "/api/state").json()
                return int(page.inner_text("#states")), int(st["ts_ns"])

            n0, t0 = mark()
            wait_for(lambda: mark()[1] - t0 >= 3_000_000_000, "3 s of runner time", 30)
            n1, t1 = mark()
            rate = (n1 - n0) / ((t1 - t0) / 1e9)
            print(f"page saw {rate:.1f} poly:state a second")
            assert rate >= 5.0

            # fills: each visible within 1 s of reaching the bus (the page stamps its rows;
            # same machine clock), for those published while the page was live
            fills = wait_for(
                lambda: [(f, t) for f, t in seen_fills.items() if t > live_ms], "a fill", 60
            )
            lags = []
            for fid, got_ms in fills[:20]:
                row = page.wait_for_selector(f'#fills tr[data-key="{fid}"]', timeout=10_000)
                assert row is not None
                lags.append(int(str(row.get_attribute("data-seen"))) - got_ms)
            print(f"fills on the bus → rows on the page, ms: max {max(lags)}, all {lags}")
            assert max(lags) <= 1_000
            page.screenshot(path=str(ARTIFACTS / "dashboard-run-1280x800.png"))

            # the kill switch halts the runner; its next state says so
            assert page.is_hidden("#halted")
            page.click("#kill")
            page.click("#confirm-yes")
            page.wait_for_selector("#halted", state="visible", timeout=10_000)
            assert page.request.get(dash.url + "/api/state").json()["kill_switch"] is True
            # the runner recorded it in the ledger: the Controls history shows who and when
            wait_for(
                lambda: "kill_switch" in page.inner_text("#controls"), "the recorded control", 30
            )
            pressed = page.locator("#controls tbody tr").nth(0).inner_text()
            assert "kill_switch" in pressed and "operator@127.0.0.1" in pressed
            assert run_id in pressed
            page.set_viewport_size({"width": 390, "height": 844})
            page.wait_for_timeout(500)
            page.screenshot(path=str(ARTIFACTS / "dashboard-run-halted-phone-390x844.png"))

            # logout: refused afterwards, even with the old cookie
            old = [c for c in page.context.cookies() if c["name"] == "polylab_session"]
            page.click("#logout")
            page.wait_for_selector("#code")
            page.context.add_cookies([old[0]])  # type: ignore[list-item]
            assert page.request.get(dash.url + "/api/state").status == 401
        finally:
            browser.close()

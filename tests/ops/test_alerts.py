"""Slack alerts against a local webhook receiver (a real HTTP server on loopback).

The dedupe window and the token bucket run on an injected monotonic clock the test advances,
so nothing here depends on how fast the machine is.
"""

from __future__ import annotations

import asyncio
import threading

import pytest
from ops_helpers import asynctest, webhook_receiver

from polylab.engine import RejectionRecord
from polylab.market import MarketCatalog
from polylab.money import MICROS
from polylab.ops.alert_rules import AlertRules, OpsAlerts
from polylab.ops.alerts import AlertConfig, AlertSender
from polylab.ops.sanitize import Sanitizer
from polylab.risk.manager import RiskConfig, RiskManager
from polylab.risk.portfolio import Portfolio

PRIVATE_KEY = "0x" + "4c0883a69102937d6231471b5dbb6204fe512961708279f3e2b9a1c8f0a5d7e1"
API_SECRET = "Zm9vYmFyYmF6cXV4LXNlY3JldC12YWx1ZS0xMjM0NTY3OA=="
PASSPHRASE = "correct-horse-battery-staple-42"
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJwb2x5bGFiIn0.dGhpc2lzbm90YXJlYWxzaWduYXR1cmU"
ENV = {
    "POLY_PRIVATE_KEY": PRIVATE_KEY,
    "POLY_API_SECRET": API_SECRET,
    "POLY_API_PASSPHRASE": PASSPHRASE,
    "SESSION_TOKEN": "plain-looking-token-value",
    "DRY_RUN": "true",
    "HOME": "/home/polylab",
}


class Clock:
    """A monotonic clock the test moves by hand (seconds)."""

    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def sender(url: str, clock: Clock, **kw: object) -> AlertSender:
    cfg = AlertConfig(webhook_url=url, service="polylab test", **kw)  # type: ignore[arg-type]
    return AlertSender(cfg, sanitizer=Sanitizer(ENV, extra_secrets=[url]), clock=clock)


@asynctest
async def test_same_key_within_the_window_alerts_once() -> None:
    clock = Clock()
    async with webhook_receiver() as rx:
        s = await sender(rx.url, clock, dedupe_s=60.0).start()
        assert s.alert("feed_stale:market", "feed stale (first)")
        clock.t += 10
        assert not s.alert("feed_stale:market", "feed stale (again)")
        assert s.alert("ledger:down", "another key goes through")
        clock.t += 51  # the window has passed
        assert s.alert("feed_stale:market", "feed stale (later)")
        await s.close()
        texts = rx.texts
    assert len(texts) == 3
    assert "(first)" in texts[0] and "another key" in texts[1] and "(later)" in texts[2]
    assert not any("(again)" in t for t in texts)
    assert s.stats.deduped == 1 and s.stats.sent == 3 and s.stats.failed == 0
    assert all(t.startswith(":warning: [polylab test] ") for t in texts)


@asynctest
async def test_token_bucket_limits_and_reports_what_it_suppressed() -> None:
    clock = Clock()
    async with webhook_receiver() as rx:
        s = await sender(rx.url, clock, burst=3, per_minute=6.0, dedupe_s=0.0).start()
        accepted = [s.alert(f"k{i}", f"alert {i}") for i in range(8)]
        assert accepted == [True] * 3 + [False] * 5
        clock.t += 10  # 6 a minute: one token back after 10 s
        assert s.alert("k8", "alert 8")
        assert not s.alert("k9", "alert 9")
        assert s.alert("stop", "stopping", force=True)  # forced: past an empty bucket
        await s.close()
        texts = rx.texts
    assert [t.split("] ")[1].split(" (")[0] for t in texts] == [
        "alert 0",
        "alert 1",
        "alert 2",
        "alert 8",
        "stopping",
    ]
    assert "(+5 alerts suppressed by the rate limit)" in texts[3]
    assert "(+1 alerts suppressed by the rate limit)" in texts[4]
    assert s.stats.rate_limited == 6


@asynctest
async def test_down_and_back_come_as_a_pair_and_flaps_stay_quiet() -> None:
    clock = Clock()
    async with webhook_receiver() as rx:
        s = await sender(rx.url, clock, dedupe_s=300.0).start()
        alerts = OpsAlerts(s, clock=clock)
        assert alerts.component("ledger", False, "connection refused")
        assert not alerts.component("ledger", False, "still refused")  # no transition
        clock.t += 12.5
        assert alerts.component("ledger", True)
        # a flap inside the dedupe window: its "down" is deduplicated, so no lone "back"
        clock.t += 1
        assert not alerts.component("ledger", False, "refused again")
        clock.t += 1
        assert not alerts.component("ledger", True)
        # the bus, from a thread other than the loop's (as the ledger writer's callbacks are)
        t = threading.Thread(target=alerts.component, args=("bus", False, "redis gone"))
        t.start()
        t.join()
        clock.t += 3
        assert alerts.component("bus", True)
        texts = await rx.wait_for(4)
        await s.close()
    assert len(texts) == 4
    assert "ledger DOWN: connection refused" in texts[0] and ":rotating_light:" in texts[0]
    assert "ledger back after 12.5 s" in texts[1]
    assert "bus DOWN: redis gone" in texts[2] and "bus back after 3.0 s" in texts[3]


@asynctest
async def test_no_secret_leaves_in_a_payload() -> None:
    clock = Clock()
    async with webhook_receiver() as rx:
        s = await sender(rx.url, clock, dedupe_s=0.0, burst=20).start()
        alerts = OpsAlerts(s, clock=clock)
        alerts.kill_switch(f"signer failed with key {PRIVATE_KEY}")
        alerts.component("ledger", False, "postgresql://polylab:pg-Pa55word@db:5432/polylab")
        s.alert("e1", f"401 from venue: POLY_API_SECRET={API_SECRET} passphrase={PASSPHRASE}")
        s.alert(
            "e2", f"headers {{'Authorization': 'Bearer {JWT}'}} token=plain-looking-token-value"
        )
        s.alert("e3", f"webhook {rx.url} answered 500")
        s.alert("e4", "bare secret " + API_SECRET.rstrip("=") + " and jwt " + JWT)
        s.alert("e5", "order 7 on token 71321045679252212594626385532706912750332728571942 ok")
        await rx.wait_for(7)
        await s.close()
        raw = b"\n".join(rx.raw).decode()
        texts = rx.texts
    for secret in (
        PRIVATE_KEY,
        PRIVATE_KEY[2:],
        API_SECRET,
        API_SECRET.rstrip("="),
        PASSPHRASE,
        JWT,
        "pg-Pa55word",
        "plain-looking-token-value",
        "hooksecretXyz123",
    ):
        assert secret not in raw, secret
    assert "<redacted" in texts[0] and "KILL SWITCH on" in texts[0]
    assert "postgresql://polylab:<redacted>@db:5432/polylab" in texts[1]
    assert "<redacted:POLY_API_SECRET>" in texts[2] and "<redacted:POLY_API_PASSPHRASE>" in texts[2]
    # ordinary numbers (a token id) survive the sanitiser
    assert "71321045679252212594626385532706912750332728571942" in texts[6]


def test_sanitizer_reads_the_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MY_VENDOR_APIKEY", "short-but-real")
    monkeypatch.setenv("SOME_FLAG", "ordinary-flag-value")
    out = Sanitizer().clean("got ordinary-flag-value and short-but-real")
    assert out == "got ordinary-flag-value and <redacted:MY_VENDOR_APIKEY>"


@asynctest
async def test_rules_kill_switch_daily_loss_order_errors_and_stale_feed() -> None:
    clock = Clock()
    async with webhook_receiver() as rx:
        s = await sender(rx.url, clock, dedupe_s=300.0, burst=20).start()
        rules = AlertRules(feed_stale_s=30.0, order_errors=3, order_error_window_s=60.0)
        alerts = OpsAlerts(s, rules, clock=clock)
        assert alerts.started("paper on the simulator")
        # two rejections under daily_loss on the same UTC day: one alert
        day_ns = 1_790_000_000 * 1_000_000_000
        for i in range(2):
            alerts.record(
                "rejections",
                RejectionRecord(
                    intent_id=f"s-{i}",
                    strategy="s",
                    group_id="g",
                    rule="daily_loss",
                    reason="worst case -201 $ <= -200 $",
                    ts_ns=day_ns + i,
                ),
            )
        # order errors: 2 in the window, one expires, then 3 within 60 s
        alerts.order_error("rejected a")
        clock.t += 50
        alerts.order_error("rejected b")
        clock.t += 20  # "a" is now 70 s old
        assert not alerts.order_error("rejected c")
        assert alerts.order_error("unknown d")
        # feed: fresh, stale (alert once), still stale, fresh again
        assert not alerts.feed_age("market", 1.0)
        assert alerts.feed_age("market", 31.0)
        assert not alerts.feed_age("market", 45.0)
        assert alerts.feed_age("market", 0.2)
        assert alerts.stopped("SIGTERM")
        texts = await rx.wait_for(6)
        await s.close()
    assert len(texts) == 6
    assert "started paper on the simulator" in texts[0]
    assert "daily loss limit reached: worst case -201 $ <= -200 $" in texts[1]
    assert "3 order errors within 60 s; last: unknown d" in texts[2]
    assert "feed market stale: no frame for 31.0 s (> 30.0 s)" in texts[3]
    assert "feed market fresh again" in texts[4]
    assert "stopped SIGTERM" in texts[5]


@asynctest
async def test_webhook_errors_are_counted_not_raised_and_queue_is_bounded() -> None:
    clock = Clock()
    async with webhook_receiver() as rx:
        rx.status = 500
        s = sender(rx.url, clock, dedupe_s=0.0, burst=50, queue_max=3)
        # not started yet: alerts wait in the bounded queue
        assert [s.alert(f"k{i}", "x") for i in range(5)] == [True] * 3 + [False] * 2
        await s.start()
        assert await s.flush(10)
        await s.close()
    assert s.stats.queue_full == 2 and s.stats.failed == 3 and s.stats.sent == 0
    assert len(rx.payloads) == 3


@asynctest
async def test_without_a_webhook_nothing_is_sent_or_queued() -> None:
    s = AlertSender(AlertConfig())
    await s.start()
    assert not s.enabled and s.alert("start", "started", "info")
    assert s.pending() == 0 and s.stats.accepted == 1
    assert await s.close() == 0
    assert "webhook" not in repr(AlertConfig(webhook_url="http://127.0.0.1:9/secret-path"))


def test_bad_alert_settings_are_refused_with_the_values() -> None:
    with pytest.raises(ValueError, match=r"burst >= 1.*; got 300\.0, 0, 10\.0, 100$"):
        AlertConfig(burst=0)
    with pytest.raises(ValueError, match=r"SLACK_WEBHOOK_URL must be an http\(s\):// URL") as e:
        AlertConfig(webhook_url="hooks.example/T0/B0/s3cr3t")
    assert "s3cr3t" not in str(e.value)
    with pytest.raises(ValueError, match="order_errors >= 1"):
        AlertRules(order_errors=0)


def test_alert_from_another_thread_wakes_the_sender() -> None:
    """``alert`` called off the loop's thread (ledger writer) is delivered."""

    async def main() -> list[str]:
        clock = Clock()
        async with webhook_receiver() as rx:
            s = await sender(rx.url, clock).start()
            await asyncio.to_thread(s.alert, "ledger:down", "from the writer thread")
            texts = await rx.wait_for(1)
            await s.close()
            return texts

    texts = asyncio.run(asyncio.wait_for(main(), 20))
    assert len(texts) == 1 and "from the writer thread" in texts[0]


@asynctest
async def test_watch_risk_alerts_on_a_real_gates_kill_switch_transition() -> None:
    clock = Clock()
    risk = RiskManager(RiskConfig(), Portfolio(1_000 * MICROS), MarketCatalog())
    async with webhook_receiver() as rx:
        s = await sender(rx.url, clock, dedupe_s=300.0).start()
        alerts = OpsAlerts(s, clock=clock)
        alerts.watch_risk(risk)  # running, flat: nothing to say
        risk.kill(f"operator pressed the button (key {PRIVATE_KEY})")
        alerts.watch_risk(risk)
        alerts.watch_risk(risk)  # still killed: no new transition
        risk.resume()
        alerts.watch_risk(risk)
        clock.t += 301
        risk.kill("second time")
        alerts.watch_risk(risk)
        texts = await rx.wait_for(2)
        await s.close()
    assert len(texts) == 2 and s.stats.accepted == 2
    assert "KILL SWITCH on: operator pressed the button" in texts[0]
    assert PRIVATE_KEY[2:] not in texts[0]
    assert "KILL SWITCH on: second time" in texts[1]
    assert not any("daily loss" in t for t in texts)

"""The dashboard's data: ``/api/state`` and the ``/events`` stream over a real Redis bus, with
catch-up from the streams for a page opened late and resume after a reconnect."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import redis.asyncio as aioredis
from dashboard.helpers import Dash, Served, free_port, state, wait_for

from polylab.bus import ERRORS, STATE, TRADES, ErrorMessage, FillMessage, InProcessBus
from polylab.dashboard.app import create_app
from polylab.dashboard.auth import AuthSettings, AuthStore

Event = tuple[str, str, dict[str, Any]]  # (event, id, data)


def fill(n: int, strategy: str = "sum_to_100") -> FillMessage:
    return FillMessage(
        ts_ns=1_800_000_000_000_000_000 + n,
        fill_id=f"fill-{n}",
        intent_id=f"intent-{n}",
        strategy=strategy,
        order_id=f"order-{n}",
        token_id="tok",
        side="BUY",
        size_micros=10_000_000,
        price_micros=450_000,
        cost_micros=4_500_000,
        fee_micros=n,
        realized_micros=0,
    )


def events(resp: httpx.Response, timeout_s: float) -> Iterator[Event]:
    """Parse a text/event-stream response into events (comments and ``retry`` skipped);
    gives up after ``timeout_s`` (the server pings every 5 s, so a quiet stream wakes us)."""
    deadline = time.monotonic() + timeout_s
    name, eid, data = "message", "", []
    for line in resp.iter_lines():
        if time.monotonic() > deadline:
            raise AssertionError("gave up waiting for the expected events")
        if line == "":
            if data:
                yield name, eid, json.loads("\n".join(data)) if data[0][:1] in "{[" else {}
            name, data = "message", []
            continue
        field, _, value = line.partition(": ")
        if field == "event":
            name = value
        elif field == "id":
            eid = value
        elif field == "data":
            data.append(value)


def read_until(
    src: httpx.Response | Iterator[Event], done: Callable[[list[Event]], bool]
) -> list[Event]:
    """Events until ``done(events so far)``; pass ``events(resp, …)`` to read on later."""
    seen: list[Event] = []
    for ev in events(src, 20.0) if isinstance(src, httpx.Response) else src:
        seen.append(ev)
        if done(seen):
            break
    return seen


def fills_of(seen: list[Event]) -> list[str]:
    return [d["fill_id"] for e, _, d in seen if e == "trades" and d.get("type") == "fill"]


def test_api_state_is_the_latest_snapshot(dash: Dash) -> None:
    c = dash.login()
    assert c.get("/api/state").status_code == 404  # nothing published yet
    for n in range(1, 6):
        dash.runner.publish(STATE, state(n))
    got = wait_for(
        lambda: (
            (r := c.get("/api/state")).status_code == 200
            and r.json()["uptime_ms"] == 5
            and r.json()
        ),
        "the fifth state",
    )
    assert got["type"] == "state" and got["mode"] == "paper" and got["counters"] == {"n": 5}
    c.close()


def test_the_stream_carries_states_fills_and_errors(dash: Dash) -> None:
    c = dash.login()
    with c.stream("GET", "/events") as resp:
        assert resp.headers["content-type"].startswith("text/event-stream")
        for n in range(1, 4):
            dash.runner.publish(STATE, state(n))
        dash.runner.publish(TRADES, fill(1))
        dash.runner.publish(ERRORS, ErrorMessage(ts_ns=1, source="feed", error="E", message="m"))
        seen = read_until(
            resp,
            lambda s: (
                fills_of(s) == ["fill-1"]
                and any(e == "errors" for e, _, _ in s)
                and any(e == "state" and d["uptime_ms"] == 3 for e, _, d in s)
            ),
        )
    assert fills_of(seen) == ["fill-1"]
    states = [d["uptime_ms"] for e, _, d in seen if e == "state"]
    assert states == sorted(states)  # newest wins; never an older state after a newer one
    c.close()


def test_a_late_page_catches_up_and_a_reconnect_resumes(
    make_dash: Callable[..., Dash],
) -> None:
    dash = make_dash()
    for n in range(3):
        dash.runner.publish(TRADES, fill(n))
    c = dash.login()
    # opened after the fills: they come from the stream, in order
    with c.stream("GET", "/events") as resp:
        seen = read_until(resp, lambda s: len(fills_of(s)) >= 3)
    assert fills_of(seen) == ["fill-0", "fill-1", "fill-2"]
    last_id = [i for e, i, _ in seen if e == "trades"][-1]
    for n in range(3, 5):
        dash.runner.publish(TRADES, fill(n))
    # a reconnect with Last-Event-ID gets only what it missed
    with c.stream("GET", "/events", headers={"last-event-id": last_id}) as resp:
        seen = read_until(resp, lambda s: len(fills_of(s)) >= 2)
    assert fills_of(seen) == ["fill-3", "fill-4"]
    c.close()


def test_a_cursor_older_than_the_memory_is_served_from_the_bus(
    make_dash: Callable[..., Dash],
) -> None:
    dash = make_dash(keep=2)  # the hub keeps 2 entries per channel; the stream has them all
    c = dash.login()
    dash.runner.publish(TRADES, fill(0))
    with c.stream("GET", "/events") as resp:
        it = events(resp, 20.0)
        seen = read_until(it, lambda s: len(fills_of(s)) >= 1)
        first_id = [i for e, i, _ in seen if e == "trades"][-1]
        for n in range(1, 6):
            dash.runner.publish(TRADES, fill(n))
        read_until(it, lambda s: "fill-5" in fills_of(s))  # the hub has read them all
    with c.stream("GET", "/events") as resp:  # a fresh page: what the hub holds
        assert fills_of(read_until(resp, lambda s: len(fills_of(s)) >= 2)) == ["fill-4", "fill-5"]
    # a page that saw fill-0 gets fill-1 … fill-5 (from the bus), also via ?since=
    with c.stream("GET", "/events", params={"since": first_id}) as resp:
        seen = read_until(resp, lambda s: len(fills_of(s)) >= 5)
    assert fills_of(seen) == [f"fill-{n}" for n in range(1, 6)]
    c.close()


def test_a_dashboard_started_after_the_fills_still_shows_them(
    make_dash: Callable[..., Dash],
) -> None:
    first = make_dash()
    for n in range(4):
        first.runner.publish(TRADES, fill(n, strategy="clipper"))
    wait_for(lambda: len(_fills(first)) == 4, "the fills on the first dashboard")
    second = make_dash()  # same prefix: same Redis streams
    assert _fills(second) == ["fill-0", "fill-1", "fill-2", "fill-3"]


def _fills(dash: Dash, n: int = 4) -> list[str]:
    c = dash.login()
    with c.stream("GET", "/events") as resp:
        seen = read_until(resp, lambda s: len(fills_of(s)) >= n)
    c.close()
    return fills_of(seen)


def test_logout_ends_an_open_stream(dash: Dash) -> None:
    c = dash.login()
    other = dash.client()
    other.cookies = c.cookies
    with c.stream("GET", "/events") as resp:
        it = events(resp, 20.0)
        dash.runner.publish(STATE, state(1))
        read_until(it, lambda s: any(e == "state" for e, _, _ in s))
        assert other.post("/logout").status_code == 303
        seen = read_until(it, lambda s: any(e == "bye" for e, _, _ in s))
    assert seen[-1][0] == "bye"
    assert c.get("/events").status_code == 401
    c.close()
    other.close()


def test_the_dashboard_works_on_the_in_process_bus(
    redis_url: str, prefix: str, secret: str
) -> None:
    """``polylab run --dashboard``'s case: the runner and the dashboard share one process and
    an ``InProcessBus``; sessions still live in Redis."""
    bus = InProcessBus()
    settings = AuthSettings(secret=secret.encode(), prefix=prefix)
    app = create_app(bus, AuthStore(aioredis.Redis.from_url(redis_url), settings))
    served = Served(app, free_port())
    try:
        dash = Dash(served.url, settings, prefix, redis_url, None)  # type: ignore[arg-type]
        bus.publish(TRADES, fill(0))  # before any page: caught up from the bus's ring
        c = dash.login()
        with c.stream("GET", "/events") as resp:
            it = events(resp, 20.0)
            assert fills_of(read_until(it, lambda s: len(fills_of(s)) >= 1)) == ["fill-0"]
            bus.publish(STATE, state(42))
            bus.publish(TRADES, fill(1))
            seen = read_until(
                it, lambda s: len(fills_of(s)) >= 1 and any(e == "state" for e, _, _ in s)
            )
        assert fills_of(seen) == ["fill-1"]
        assert c.get("/api/state").json()["uptime_ms"] == 42
        before = bus.published
        r = c.post("/api/control", json={"action": "resume", "confirm": True})
        assert r.status_code == 200
        assert bus.published == before + 1  # the control went onto the shared bus
        c.close()
    finally:
        served.close()

"""The Configuration and Controls history panels' data: ``/api/config`` (the promoted config
with its provenance, thresholds, gates and metrics, the running one, the promotion history)
and ``/api/controls`` (kill switch / resume presses with who and when), from a real ledger."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
from dashboard.desk_data import SHA_A, fill_desk
from dashboard.helpers import Dash, wait_for
from store.ledger_data import PG_BASE, pg_admin, pg_url

from polylab.dashboard.app import COOKIE
from polylab.dashboard.history import parse_control, read_config, read_controls
from polylab.store.ledger import Ledger


@pytest.fixture(params=["sqlite", "postgresql"])
def ledger(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Ledger]:
    if request.param == "sqlite":
        led = Ledger.open(f"sqlite:///{tmp_path / 'ledger.db'}")
        yield led
        led.close()
        return
    name = f"t_desk_{uuid.uuid4().hex[:12]}"
    try:
        with pg_admin() as c:
            c.execute(f'CREATE SCHEMA "{name}"')
    except Exception as exc:
        pytest.skip(f"PostgreSQL is not reachable: {type(exc).__name__}")
    led = Ledger.open(pg_url(PG_BASE, name))
    yield led
    led.close()
    with pg_admin() as c:
        c.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


def test_config_gives_the_promoted_config_its_provenance_and_history(ledger: Ledger) -> None:
    desk = fill_desk(ledger)
    got = read_config(ledger)
    a = got["active"]
    assert a["id"] == desk.old and len(a["id"]) == 64 and a["status"] == "promoted"
    row = ledger.get_config(desk.old)
    assert row is not None
    assert a["git_sha"] == row.git_sha and a["data_hashes"]["recs/day1.jsonl.zst"] == SHA_A
    assert a["gates"] == row.gates and a["metrics"] == row.metrics
    assert a["promoted_ns"] == row.promoted_ns
    th = {t["name"]: (t["value"], t["unit"]) for t in a["thresholds"]}
    assert th["sum_to_100.min_edge"] == ("$0.004", "dollars")
    assert th["sum_to_100.min_liquidity"][1] == "shares"
    assert th["risk.max_position"] == ("$100.00", "dollars")
    # the Sniper's money thresholds in exact dollars; its size in shares; micros kept raw
    assert th["sniper.max_price"] == ("$0.97", "dollars")
    assert th["sniper.min_edge"] == ("$0.10", "dollars")
    assert th["sniper.size"] == ("1000", "shares")
    raw = {t["field"]: t.get("value_micros") for t in a["thresholds"]}
    assert raw["sniper.max_price_micros"] == 970_000 and raw["sniper.min_edge_micros"] == 100_000
    assert raw["sum_to_100.min_edge_micros"] == 4_000 and raw["sniper.poll_ms"] is None
    assert "clipper.min_edge" in th and "risk.max_open_orders" in th
    assert th["sum_to_100.max_book_age"][1] == "ms"
    # the runner runs `new` (its run's config id): known, and shown with its own thresholds
    r = got["running"]
    assert r["id"] == desk.new and r["known"] is True
    rth = {t["name"]: t["value"] for t in r["config"]["thresholds"]}
    assert rth["sum_to_100.min_edge"] == "$0.006" and rth["risk.max_position"] == "$250.00"
    # newest first: carol's rollback, bob's promotion, alice's
    h = got["history"]
    assert [(p["action"], p["by"]) for p in h] == [
        ("rollback", "carol"),
        ("promote", "bob"),
        ("promote", "alice"),
    ]
    assert (h[0]["previous_id"], h[0]["config_id"]) == (desk.new, desk.old)
    assert (h[1]["previous_id"], h[1]["config_id"]) == (desk.old, desk.new)
    assert h[2]["previous_id"] is None and h[0]["reason"] == "fills worse than paper"
    assert h[0]["ts_ns"] > h[1]["ts_ns"] > h[2]["ts_ns"]


def test_running_config_named_by_the_runner_wins_and_unknown_ids_say_so(ledger: Ledger) -> None:
    desk = fill_desk(ledger, rolled_back=False)
    assert read_config(ledger)["active"]["id"] == desk.new
    told = read_config(ledger, running_id=desk.old)["running"]
    assert told["id"] == desk.old and told["config"]["id"] == desk.old
    ghost = read_config(ledger, running_id="f" * 64)["running"]
    assert ghost == {"id": "f" * 64, "known": False, "config": None}


def test_an_empty_ledger_has_no_config_and_no_controls(ledger: Ledger) -> None:
    assert read_config(ledger) == {"active": None, "running": None, "history": []}
    assert read_controls(ledger) == []


def test_controls_give_who_pressed_what_and_when_newest_first(ledger: Ledger) -> None:
    desk = fill_desk(ledger)
    got = read_controls(ledger)
    assert [(c["action"], c["ts_ns"]) for c in got] == [
        ("resume", desk.resume_ns),
        ("kill_switch", desk.kill_ns),
    ]
    assert all(c["by"] == "operator@127.0.0.1 session 1a2b3c4d" for c in got)
    assert got[0]["reason"] == "spread normal again" and got[1]["run_id"] == desk.run_id
    assert len(read_controls(ledger, limit=1)) == 1


def test_parse_control_keeps_reasons_with_colons_and_odd_texts_whole() -> None:
    assert parse_control("kill_switch by op@h session 1: spread: wide") == {
        "action": "kill_switch",
        "by": "op@h session 1",
        "reason": "spread: wide",
    }
    assert parse_control("resume by x: ") == {"action": "resume", "by": "x", "reason": ""}
    assert parse_control("something else") == {"action": "", "by": "", "reason": "something else"}


def test_the_endpoints_need_a_session_and_serve_the_ledger(
    make_dash: Callable[..., Dash], tmp_path: Path
) -> None:
    led = Ledger.open(f"sqlite:///{tmp_path / 'ledger.db'}")
    try:
        desk = fill_desk(led)
        dash = make_dash(ledger=led)
        with dash.client() as anonymous:
            for path in ("/api/config", "/api/controls"):
                assert anonymous.get(path).status_code == 401
        with dash.client() as c:
            dash.login(c)
            cfg: dict[str, Any] = c.get("/api/config").json()
            assert cfg == read_config(led)  # the running id comes from the ledger: no state yet
            assert cfg["active"]["id"] == desk.old
            ctl = c.get("/api/controls").json()
            assert [x["action"] for x in ctl] == ["resume", "kill_switch"]
    finally:
        led.close()


def test_without_a_ledger_the_panels_get_a_clear_404(dash: Dash) -> None:
    with dash.client() as c:
        dash.login(c)
        for path in ("/api/config", "/api/controls"):
            r = c.get(path)
            assert r.status_code == 404 and r.json() == {"error": "no ledger configured"}


def test_rollback_control_restores_the_previous_config_and_tells_the_runner(
    make_dash: Callable[..., Dash], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Same rules as the kill switch (fresh login, JSON, confirmation); the ledger records
    who rolled back, the runner hears ``reload_config`` on this dashboard's bus; a second
    rollback has nothing left to restore and says so."""
    monkeypatch.chdir(tmp_path)  # the promotion JSON goes under runs/ here
    led = Ledger.open(f"sqlite:///{tmp_path / 'ledger.db'}")
    try:
        desk = fill_desk(led, rolled_back=False)
        dash = make_dash(ledger=led)
        now = int(time.time())
        claims = {"sub": "operator", "iat": now, "exp": now + 900, "jti": "y" * 32}
        stale = jwt.encode(claims | {"auth_time": now - 301}, dash.settings.secret, "HS256")
        body = {"action": "rollback_config", "confirm": True, "reason": "fills too thin"}
        with dash.client() as c:
            c.cookies.set(COOKIE, stale)
            assert c.post("/api/control", json=body).status_code == 403
        with dash.client() as c:
            dash.login(c)
            no = c.post("/api/control", json={"action": "rollback_config"})
            assert no.status_code == 400
            assert led.promoted_config().id == desk.new  # type: ignore[union-attr]
            r = c.post("/api/control", json=body)
            assert r.status_code == 200, r.text
            got = r.json()
            assert got["config_id"] == desk.old and got["previous_id"] == desk.new
            assert led.promoted_config().id == desk.old  # type: ignore[union-attr]
            last = led.promotion_history(1)[0]
            assert last.action == "rollback" and last.by.startswith("operator@127.0.0.1")
            assert last.reason == "fills too thin"
            heard = wait_for(dash.runner.controls, "reload_config on poly:control")
            assert [(m.action, m.by) for m in heard] == [  # type: ignore[union-attr]
                ("reload_config", got["by"])
            ]
            cfg = c.get("/api/config").json()
            assert cfg["active"]["id"] == desk.old and cfg["history"][0]["action"] == "rollback"
            again = c.post("/api/control", json=body)
            assert again.status_code == 409 and "nothing to roll back" in again.json()["error"]
            assert led.promoted_config().id == desk.old  # type: ignore[union-attr]
    finally:
        led.close()


def test_rollback_without_a_ledger_is_a_clear_404(dash: Dash) -> None:
    with dash.client() as c:
        dash.login(c)
        r = c.post("/api/control", json={"action": "rollback_config", "confirm": True})
        assert r.status_code == 404 and r.json() == {"error": "no ledger configured"}
        assert dash.runner.controls() == []

"""Restart recovery of ``polylab run`` (issue 11 §1, §5): a runner SIGKILLed mid-session is
restarted and continues from the ledger (cash, positions with basis, today's realized PnL),
with no fill stored twice; a live session reconciles the ledger with the simulator's account
before trading and records every difference."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import sqlalchemy as sa
from live_helpers import KEY, binary, buy, live_executor, static_sim, trading, wait_result, yes_asks

from polylab.store.ledger import Ledger

POLYLAB = [sys.executable, "-m", "polylab.cli"]
M = 1_000_000


def _env(**extra: str) -> dict[str, str]:
    drop = ("REDIS_URL", "DATABASE_URL", "POLY_PRIVATE_KEY", "POLY_API_KEY", "POLY_API_SECRET")
    env = {k: v for k, v in os.environ.items() if k not in drop and k != "POLY_API_PASSPHRASE"}
    env.update(extra)
    return env


def _rows(db: Path, sql: str) -> list[tuple[object, ...]]:
    eng = sa.create_engine(f"sqlite:///{db}")
    try:
        with eng.connect() as c:
            return [tuple(r) for r in c.execute(sa.text(sql))]
    except sa.exc.OperationalError:  # not created yet
        return []
    finally:
        eng.dispose()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_port(port: int, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the simulator exited"
        with socket.socket() as c:
            if c.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise AssertionError(f"the simulator never listened on {port}")


def test_sigkill_then_restart_continues_from_the_ledger_without_duplicate_fills(
    tmp_path: Path,
) -> None:
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    sim = subprocess.Popen(
        [*POLYLAB, "sim", "serve", "--port", str(port)],
        cwd=tmp_path,
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    db = tmp_path / "runs" / "polylab.db"
    try:
        _wait_port(port, sim)
        first = subprocess.Popen(
            [*POLYLAB, "run", "--url", url],
            cwd=tmp_path,
            env=_env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        try:
            deadline = time.monotonic() + 120
            # Fills, and a position snapshot before them, so recovery replays fills on top.
            while not (
                _rows(
                    db,
                    "SELECT count(*) FROM fills WHERE ts_ns > "
                    "(SELECT coalesce(min(ts_ns), 0) FROM positions)",
                )
                or [(0,)]
            )[0][0]:
                assert first.poll() is None, "the runner exited on its own"
                assert time.monotonic() < deadline, "no fills in the ledger"
                time.sleep(0.3)
        finally:
            first.send_signal(signal.SIGKILL)
            first.wait(timeout=30)
        (old_id, old_status), *more = _rows(db, "SELECT id, status FROM runs")
        assert more == [] and old_status == "running"  # nobody marked the killed run
        old_fills = _rows(db, f"SELECT fill_key FROM fills WHERE run_id = '{old_id}'")
        ledger = Ledger.open(f"sqlite:///{db}")
        try:
            expected = ledger.load_state(old_id)
        finally:
            ledger.close()
        assert expected.fills == len(old_fills) > 0

        out = subprocess.run(
            [*POLYLAB, "run", "--url", url, "--seconds", "5", "--json"],
            cwd=tmp_path,
            env=_env(),
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        assert out.returncode == 0, out.stderr[-2000:]
    finally:
        sim.send_signal(signal.SIGTERM)
        try:
            sim.wait(timeout=30)
        except subprocess.TimeoutExpired:
            sim.kill()
    summary = json.loads(out.stdout)
    new_id = summary["run_id"]
    runs = dict(_rows(db, "SELECT id, status FROM runs"))
    assert runs == {old_id: "crashed", new_id: "stopped"}
    # The new session started from exactly what the ledger held.
    started = summary["recovery"]["started_with"]
    assert started["cash_micros"] == expected.cash_micros
    assert started["positions"] == expected.positions
    assert started["basis"] == expected.basis
    assert started["realized_today_micros"] == expected.realized_today_micros
    ((start_cash,),) = _rows(db, f"SELECT start_cash_micros FROM runs WHERE id = '{new_id}'")
    assert start_cash == expected.cash_micros
    # No fill twice: the old run's fills are as they were, none re-stored under the new run.
    assert _rows(db, f"SELECT fill_key FROM fills WHERE run_id = '{old_id}'") == old_fills
    keys = _rows(db, "SELECT fill_key FROM fills")
    assert len(keys) == len(set(keys))
    same = _rows(
        db,
        "SELECT count(*) FROM fills a JOIN fills b ON a.run_id <> b.run_id AND "
        "a.order_id = b.order_id AND a.ts_ns = b.ts_ns AND a.token_id = b.token_id",
    )
    assert same == [(0,)]
    # Nothing left open in the killed run; every step recorded.
    assert _rows(
        db,
        f"SELECT count(*) FROM orders WHERE run_id = '{old_id}' AND status IN "
        "('open', 'live', 'pending')",
    ) == [(0,)]
    notes = [e for (e,) in _rows(db, "SELECT error FROM errors WHERE source = 'recovery'")]
    assert f"run {old_id} was still running: marked crashed" in notes
    assert any(
        n.startswith(f"restored from run {old_id}: cash {expected.cash_micros}") for n in notes
    )
    assert sorted(notes) == sorted(summary["recovery"]["notes"])


def test_live_restart_records_a_trade_the_ledger_missed(tmp_path: Path) -> None:
    async def runner(url: str, cwd: Path) -> dict[str, object]:
        proc = await asyncio.create_subprocess_exec(
            *POLYLAB,
            "run",
            "--live",
            "--url",
            url,
            "--seconds",
            "1",
            "--json",
            cwd=cwd,
            env=_env(POLY_PRIVATE_KEY=KEY),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(proc.communicate(), 180)
        assert proc.returncode == 0, err.decode()[-2000:]
        summary: dict[str, object] = json.loads(out)
        return summary

    async def main(cwd: Path) -> None:
        async with static_sim() as h:
            await runner(h.url, cwd)  # DRY_RUN: nothing sent, the ledger holds the start
            agree = await runner(h.url, cwd)
            notes = agree["recovery"]["notes"]  # type: ignore[index]
            assert (
                [n for n in notes if n.startswith("venue")]
                == [n for n in notes if n.startswith("venue agrees with the ledger")]
                != []
            )
            # Planted: a trade made on the simulator with the same key, never in the ledger.
            m = binary(h)
            yes_asks(h, m, [(400_000, 10 * M)])
            async with trading(h) as (rest, signer):
                ex = live_executor(h, rest, signer)
                ex.submit("planted", buy([m.token_ids[0]], 400_000, 10 * M), 5)
                res = await wait_result(ex)
                assert res.reports[0].filled == 10 * M
                trade_ids = [t.id for t in await rest.get_trades()]
            assert len(trade_ids) == 1
            after = await runner(h.url, cwd)
            notes = after["recovery"]["notes"]  # type: ignore[index]
            assert any(n.startswith(f"venue trade {trade_ids[0]} ") for n in notes), notes
            assert any(n.startswith("venue collateral balance ") for n in notes), notes
            held = f"venue holds {10 * M} share micros of {m.token_ids[0]}, ledger 0"
            assert held in notes, notes
            db = cwd / "runs" / "polylab.db"
            stored = [e for (e,) in _rows(db, "SELECT error FROM errors WHERE source='recovery'")]
            assert all(n in stored for n in notes)

    asyncio.run(main(tmp_path))


def test_recovered_basis_and_realized_continue_the_pnl_exactly(tmp_path: Path) -> None:
    """In process: a portfolio's fills around a snapshot go to the ledger; the state loaded
    back and restored into a fresh portfolio holds the same shares and basis, counts today's
    realized PnL for the daily limit, and realizes on a later sale what the original would."""
    from polylab.domain import ExecutionResult, Intent, Leg, OrderReport
    from polylab.market import Market, MarketCatalog
    from polylab.risk.portfolio import RECOVERED, Portfolio
    from polylab.runner import recovery
    from polylab.store.ledger_rows import OrderRow, PnlSnapshotRow, PositionRow, fill_row

    yes, no = "yes-token", "no-token"
    cat = MarketCatalog([Market(condition_id="0xc", token_ids=(yes, no))])
    day = 20_000 * 86_400 * 10**9  # a UTC midnight, ns

    def res(iid: str, tok: str, side: str, size: int, price: int, fee: int, ts: int):  # type: ignore[no-untyped-def]
        r = OrderReport(
            intent_id=iid,
            leg=0,
            token_id=tok,
            side=side,
            limit_price=price,
            requested=size,
            filled=size,
            cost=price * size // M,
            fee=fee,
            avg_price=price,
            status="filled",
            sent_ns=ts,
            done_ns=ts,
            order_id=f"o-{iid}",
        )
        legs = (Leg(token_id=tok, side=side, price=price, size=size),)  # type: ignore[arg-type]
        it = Intent(strategy="s", group_id="0xc", kind="single", legs=legs, edge=0, created_ns=0)
        return ExecutionResult(intent_id=iid, intent=it, reports=(r,), complete=True)

    ledger = Ledger.open(f"sqlite:///{tmp_path / 'l.db'}")
    try:
        rid = ledger.start_run(
            mode="paper",
            venue="v",
            config_id="c",
            code_version="t",
            start_cash_micros=1000 * M,
            started_ns=day + 1,
        )
        p = Portfolio(1000 * M)
        trades = [
            res("a", yes, "BUY", 10 * M, 400_000, 50_000, day + 10),
            res("b", no, "BUY", 7 * M, 550_000, 30_000, day + 20),
        ]
        later = [
            res("c", yes, "SELL", 4 * M, 600_000, 20_000, day + 40),
            res("d", yes, "BUY", 3 * M, 450_000, 10_000, day + 50),
            res("e", no, "SELL", 7 * M, 500_000, 0, day + 60),
        ]
        for r in trades:
            ledger.write([fill_row(rid, f, executor="paper") for f in p.apply(r, cat)])
        snap = [
            PositionRow(
                run_id=rid,
                token_id=pos.token_id,
                shares_micros=pos.shares,
                cost_micros=pos.basis,
                avg_price_micros=pos.avg_price,
                realized_micros=0,
                ts_ns=day + 30,
            )
            for pos in p.positions().values()
        ]
        ledger.write(
            [
                *snap,
                PnlSnapshotRow(
                    run_id=rid,
                    ts_ns=day + 30,
                    cash_micros=p.cash,
                    equity_micros=0,
                    realized_micros=p.realized,
                    unrealized_micros=0,
                    fees_micros=0,
                ),
            ]
        )
        for r in later:
            ledger.write([fill_row(rid, f, executor="paper") for f in p.apply(r, cat)])
        ledger.write(
            [
                OrderRow(
                    run_id=rid,
                    order_id="left-open",
                    intent_id="z",
                    strategy="s",
                    leg=0,
                    token_id=yes,
                    side="BUY",
                    limit_price_micros=1,
                    size_micros=M,
                    filled_micros=0,
                    status="open",
                    reason="",
                    created_ns=day + 70,
                    updated_ns=day + 70,
                )
            ]
        )
        rec = ledger.load_state(rid, now_ns=day + 100)
        assert rec.positions == {yes: 9 * M} and rec.basis == {yes: p.basis(yes)}
        assert rec.cash_micros == p.cash and rec.realized_today_micros == p.realized != 0
        cancelled = recovery.cancelled_orders(rec, day + 100)
        assert [(o.order_id, o.status) for o in cancelled] == [("left-open", "cancelled")]
        ledger.write(cancelled)
        assert ledger.load_state(rid, now_ns=day + 100).open_orders == ()
    finally:
        ledger.close()

    q = Portfolio(1000 * M)
    recovery.restore(q, rec, cat, day + 100)
    assert q.position(yes) == p.position(yes) and q.basis(yes) == p.basis(yes)
    assert q.cash == p.cash and q.realized_on_day(day + 100) == rec.realized_today_micros
    assert q.realized_on_day(day + 100 + 86_400 * 10**9) == 0  # yesterday's is not tomorrow's
    assert q.positions()[yes].condition_id == "0xc"  # known, so a resolution settles it
    sale = res("f", yes, "SELL", 9 * M, 700_000, 40_000, day + 200)
    (orig,) = p.apply(sale, cat)
    (cont,) = q.apply(sale, cat)
    assert cont.realized == orig.realized and q.realized == p.realized and q.cash == p.cash
    held = sum(pos.basis for pos in q.positions().values())
    assert q.cash + held == q.starting_cash + q.realized  # the invariant survives the restore
    assert RECOVERED not in {t.intent_id for t in q.trades()}

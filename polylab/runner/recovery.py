"""Restart recovery: what the previous run left, put back into a new session, and checked
against the venue before the session trades.

* ``restore``: the ledger's ``RecoveredState`` (cash, positions with their cost basis, today's
  realized PnL) becomes the new session's portfolio (``Portfolio.restore``: one lot per token
  owned by intent and strategy ``recovered``), so PnL continues and the daily loss limit counts
  what was already lost today.
* ``cancelled_orders``: a paper session's open orders live only in its process, so none
  survives a restart: they are recorded ``cancelled`` in the previous run.
* ``reconcile``: a live session asks the venue for the account's collateral balance, the
  balance of each token held, the open orders and the trades since the last fill recorded, and
  returns every difference from the ledger as one line each (the runner records them).

Units: money and share sizes in micros, times in ns (venue times in s/ms as the venue gives).
"""

from __future__ import annotations

from collections.abc import Collection

import msgspec

from polylab.execution.eip712 import SigningKey
from polylab.execution.live import Credentials
from polylab.execution.rest_async import AsyncClobRest
from polylab.market import MarketCatalog
from polylab.risk.portfolio import Portfolio
from polylab.store.ledger import RecoveredState
from polylab.store.ledger_rows import OrderRow

__all__ = ["cancelled_orders", "reconcile", "reconcile_at", "restore", "restored_view"]


def restore(portfolio: Portfolio, rec: RecoveredState, catalog: MarketCatalog, now_ns: int) -> str:
    """Put ``rec`` into the new session's ``portfolio`` (before anything is booked); returns
    the line recorded for it."""
    positions = {t: (s, rec.basis.get(t, 0)) for t, s in rec.positions.items()}
    portfolio.restore(
        cash_micros=rec.cash_micros,
        positions=positions,
        realized_today_micros=rec.realized_today_micros,
        now_ns=now_ns,
        catalog=catalog,
    )
    held = sum(b for _, b in positions.values())
    return (
        f"restored from run {rec.run_id}: cash {rec.cash_micros} micros, "
        f"{len(positions)} positions of basis {held} micros, "
        f"realized today {rec.realized_today_micros} micros ({rec.fills} fills recorded)"
    )


def restored_view(portfolio: Portfolio, now_ns: int) -> dict[str, object]:
    """What the session starts with, read back from the portfolio (for the summary)."""
    pos = portfolio.positions()
    return {
        "cash_micros": portfolio.cash,
        "positions": {t: p.shares for t, p in sorted(pos.items())},
        "basis": {t: p.basis for t, p in sorted(pos.items())},
        "realized_today_micros": portfolio.realized_on_day(now_ns),
    }


def cancelled_orders(rec: RecoveredState, now_ns: int) -> list[OrderRow]:
    """The previous paper run's open orders as ``cancelled`` rows of that run (upserts)."""
    return [
        msgspec.structs.replace(
            o, status="cancelled", reason="restart: paper orders do not survive", updated_ns=now_ns
        )
        for o in rec.open_orders
    ]


async def reconcile(
    rest: AsyncClobRest,
    rec: RecoveredState,
    filled_order_ids: Collection[str],
) -> list[str]:
    """Every difference between the ledger's ``rec`` and the venue's account, one line each.

    ``filled_order_ids``: the order ids of the fills the ledger holds; a venue trade after the
    last recorded fill whose orders are not among them is a fill the ledger missed.
    """
    out: list[str] = []
    bal = await rest.get_balance_allowance("COLLATERAL")
    if bal.balance_micros != rec.cash_micros:
        out.append(
            f"venue collateral balance {bal.balance_micros} micros, ledger cash "
            f"{rec.cash_micros} micros (run {rec.run_id})"
        )
    for tok, shares in rec.positions.items():
        got = (await rest.get_balance_allowance("CONDITIONAL", token_id=tok)).balance_micros
        if got != shares:
            out.append(f"venue holds {got} share micros of {tok}, ledger {shares}")
    venue_open = {o.id: o for o in await rest.get_open_orders()}
    ledger_open = {o.order_id: o for o in rec.open_orders}
    for oid in sorted(set(venue_open) - set(ledger_open)):
        o = venue_open[oid]
        out.append(
            f"order {oid} is open at the venue ({o.side} {o.asset_id}) but not in the ledger"
        )
    for oid in sorted(set(ledger_open) - set(venue_open)):
        out.append(f"order {oid} is open in the ledger (run {rec.run_id}) but not at the venue")
    after_s = max(0, rec.last_fill_ns // 1_000_000_000 - 1)  # the venue's filter is ``> after``
    known = set(filled_order_ids)
    missed: set[str] = set()
    for t in await rest.get_trades(after_s=after_s):
        ids = {t.taker_order_id, *(m.order_id for m in t.maker_orders)} - {""}
        if ids & known:
            continue
        missed.add(t.asset_id)
        out.append(
            f"venue trade {t.id} ({t.side} {t.size} of {t.asset_id} at {t.price}, matched "
            f"{t.match_time}) after the last ledger fill is not in the ledger"
        )
    for tok in sorted(missed - set(rec.positions)):  # held tokens were compared above
        got = (await rest.get_balance_allowance("CONDITIONAL", token_id=tok)).balance_micros
        if got:
            out.append(f"venue holds {got} share micros of {tok}, ledger 0")
    return out


async def reconcile_at(
    url: str, creds: Credentials, rec: RecoveredState, filled_order_ids: Collection[str]
) -> list[str]:
    """``reconcile`` with a client of the account at ``url``: the API keys of ``creds``, or
    keys derived through L1 from its private key (reads only; nothing is sent)."""
    async with AsyncClobRest(url, key=SigningKey(creds.private_key.reveal())) as rest:
        rest.creds = creds.creds
        if rest.creds is None:
            await rest.create_or_derive_api_key()
        return await reconcile(rest, rec, filled_order_ids)

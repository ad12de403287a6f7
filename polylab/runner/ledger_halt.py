"""The runner's policy while the ledger is down (issue 11 §5): halt new intents, lose nothing.

When the ledger writer holds ``halt_depth`` rows it cannot commit, the risk gate is killed so
no new intent is approved (fills of orders in flight still queue); when the queue drains the
gate is resumed, but only if the halt is still the ledger's. A kill switch an operator pressed
(before or during the outage), or one set by a reloaded config, is theirs: the ledger coming
back never lifts it. An operator's ``resume`` while the ledger is still past its halt depth is
overruled at once (the halt stays until the ledger is back), so trading never runs ahead of
what the ledger can store.
"""

from __future__ import annotations

from typing import Protocol

__all__ = ["LEDGER_HALT_REASON", "LedgerHalt"]

LEDGER_HALT_REASON = "ledger unreachable: rows queued past the halt depth"
"""The kill reason this policy sets; a different reason means someone else's kill."""


class _Gate(Protocol):
    """What the policy uses of ``polylab.risk.manager.RiskManager``."""

    @property
    def killed(self) -> bool: ...
    @property
    def kill_reason(self) -> str: ...
    def kill(self, reason: str) -> None: ...
    def resume(self) -> None: ...


class LedgerHalt:
    """Follows the writer's ``halt`` flag and keeps the gate halted while it is set.

    ``update(halt)``: call with ``LedgerWriter.halt`` (at each portfolio snapshot and after an
    operator's resume); returns what it did: "halted", "resumed" or "" (nothing).
    ``active``: the ledger is past its halt depth (as last told).
    """

    def __init__(self, gate: _Gate) -> None:
        self.gate = gate
        self.active = False

    def update(self, halt: bool) -> str:
        gate = self.gate
        if halt:
            self.active = True
            if not gate.killed:  # first time, or an operator resumed during the outage
                gate.kill(LEDGER_HALT_REASON)
                return "halted"
            return ""
        if not self.active:
            return ""
        self.active = False
        if gate.killed and gate.kill_reason == LEDGER_HALT_REASON:
            gate.resume()
            return "resumed"
        return ""

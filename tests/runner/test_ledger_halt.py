"""The runner's ledger-down policy (``runner.ledger_halt``) on a real risk gate: the ledger past
its halt depth halts new intents and its return lifts that halt, but never an operator's kill
switch (pressed before or during the outage), and an operator's resume during the outage is
overruled until the ledger is back."""

from __future__ import annotations

from polylab.market import MarketCatalog
from polylab.money import MICROS
from polylab.risk.manager import RiskConfig, RiskManager
from polylab.risk.portfolio import Portfolio
from polylab.runner.ledger_halt import LEDGER_HALT_REASON, LedgerHalt


def _gate() -> RiskManager:
    return RiskManager(RiskConfig(), Portfolio(1_000 * MICROS), MarketCatalog())


def test_the_ledger_halts_and_its_return_resumes() -> None:
    gate = _gate()
    policy = LedgerHalt(gate)
    assert policy.update(False) == "" and not gate.killed
    assert policy.update(True) == "halted"
    assert gate.killed and gate.kill_reason == LEDGER_HALT_REASON
    assert policy.update(True) == ""  # still down: nothing new
    assert policy.update(False) == "resumed"
    assert not gate.killed and not policy.active
    assert policy.update(False) == ""


def test_an_operators_kill_before_the_outage_outlives_it() -> None:
    gate = _gate()
    policy = LedgerHalt(gate)
    gate.kill("kill switch by operator@desk: manual")
    assert policy.update(True) == ""  # already halted: the operator's reason is kept
    assert gate.kill_reason == "kill switch by operator@desk: manual"
    assert policy.update(False) == ""
    assert gate.killed and gate.kill_reason == "kill switch by operator@desk: manual"


def test_an_operators_kill_during_the_outage_outlives_it() -> None:
    gate = _gate()
    policy = LedgerHalt(gate)
    assert policy.update(True) == "halted"
    gate.kill("kill switch by operator@desk: pressed while the ledger was down")
    assert policy.update(False) == ""
    assert gate.killed and gate.kill_reason.startswith("kill switch by operator@desk")


def test_a_resume_during_the_outage_is_overruled_until_the_ledger_is_back() -> None:
    gate = _gate()
    policy = LedgerHalt(gate)
    policy.update(True)
    gate.resume()  # the operator's resume…
    assert policy.update(True) == "halted"  # …is overruled: the ledger still cannot store
    assert gate.killed and gate.kill_reason == LEDGER_HALT_REASON
    assert policy.update(False) == "resumed" and not gate.killed


def test_a_kill_switch_set_in_the_config_is_not_lifted_by_the_ledger() -> None:
    gate = RiskManager(RiskConfig(kill_switch=True), Portfolio(1_000 * MICROS), MarketCatalog())
    policy = LedgerHalt(gate)
    policy.update(True)
    policy.update(False)
    assert gate.killed and gate.kill_reason == "kill_switch set in config"

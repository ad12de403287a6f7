"""Risk: the gate between strategies and executors, and the books it reads.

``RiskManager.check`` approves or rejects each intent atomically: malformed intents
(``validate``), exposure per token, market and neg-risk event, the day's worst-case loss
(``exposure``), open orders, submit rate, cash and a kill switch; ``Portfolio`` books execution
results into cash, FIFO lots, realized/unrealized PnL, fees, merges and settlements, all in
integer micros.
"""

from polylab.risk.manager import Approved, Rejected, RiskConfig, RiskManager
from polylab.risk.portfolio import Portfolio, PortfolioError
from polylab.risk.records import (
    Fill,
    MergeRecord,
    PortfolioSnapshot,
    Position,
    PositionMark,
    SettleRecord,
    TradeRecord,
)

__all__ = [
    "Approved",
    "Fill",
    "MergeRecord",
    "Portfolio",
    "PortfolioError",
    "PortfolioSnapshot",
    "Position",
    "PositionMark",
    "Rejected",
    "RiskConfig",
    "RiskManager",
    "SettleRecord",
    "TradeRecord",
]

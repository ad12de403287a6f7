"""Per-strategy routing between two executors: the paper-trading switch of each strategy.

A strategy whose config says ``paper_trading`` (``SUMTO100_PAPER_TRADING``,
``CLIPPER_PAPER_TRADING``) is filled by the paper trader even inside a live session; every
other strategy goes to the session's executor. Results keep the ``executor`` name of whoever
filled them (on the result and on each order report), so the run folder's ``orders`` table says
which executor filled what.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from polylab.execution.base import ExecutionResult, Executor

if TYPE_CHECKING:
    from polylab.book.l2 import L2Book
    from polylab.domain import Intent

__all__ = ["RoutingExecutor"]


class RoutingExecutor:
    """An ``Executor`` sending each intent to ``paper`` when its strategy is in
    ``paper_strategies`` (strategy names), else to ``default``."""

    def __init__(self, default: Executor, paper: Executor, paper_strategies: Iterable[str]) -> None:
        self.default = default
        self.paper = paper
        self.paper_strategies = frozenset(paper_strategies)
        self.name = f"{default.name}+{paper.name}"
        self.routed: dict[str, int] = {}
        """Intents sent to each executor, by executor name."""

    def route(self, strategy: str) -> Executor:
        """The executor that fills ``strategy``'s intents."""
        return self.paper if strategy in self.paper_strategies else self.default

    def bind_books(self, books: Mapping[str, L2Book]) -> None:
        """Hand the engine's books to both executors (when they take them)."""
        for ex in (self.default, self.paper):
            bind = getattr(ex, "bind_books", None)
            if bind is not None:
                bind(books)

    def submit(self, intent_id: str, intent: Intent, now_ns: int) -> None:
        """Queue ``intent`` on its strategy's executor."""
        ex = self.route(intent.strategy)
        self.routed[ex.name] = self.routed.get(ex.name, 0) + 1
        ex.submit(intent_id, intent, now_ns)

    def poll(self, now_ns: int, books: dict[str, L2Book]) -> list[ExecutionResult]:
        """Results of both executors."""
        out: list[ExecutionResult] = []
        for ex in (self.default, self.paper):
            if ex.pending():
                out += ex.poll(now_ns, books)
        return out

    def pending(self) -> int:
        """Intents in flight in either executor."""
        return self.default.pending() + self.paper.pending()

"""Strategies loaded by ``module:Class`` in the config tests."""

from __future__ import annotations

import msgspec

from polylab.domain import Game, Intent
from polylab.strategy.base import Context


class Exploding:
    """Raises on every book update: the engine must survive it."""

    name = "exploding"

    def on_book(self, ctx: Context, token_id: str) -> list[Intent]:
        raise RuntimeError(f"boom on {token_id}")

    def on_timer(self, ctx: Context) -> list[Intent]:
        return []

    def on_games(self, ctx: Context, games: list[Game]) -> list[Intent]:
        return []


class CountingConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    label: str = "counter"


class Counting:
    """Counts hook calls; configured from ``[plugins."plugin_strategies:Counting"]``."""

    Config = CountingConfig

    def __init__(self, config: CountingConfig) -> None:
        self.name = config.label
        self.books = 0
        self.timers = 0

    def on_book(self, ctx: Context, token_id: str) -> list[Intent]:
        self.books += 1
        return []

    def on_timer(self, ctx: Context) -> list[Intent]:
        self.timers += 1
        return []

    def on_games(self, ctx: Context, games: list[Game]) -> list[Intent]:
        return []

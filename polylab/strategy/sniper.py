"""Sniper: buy the winner of a game that just ended, before the market reprices.

A scoreboard (ESPN format, or any ``ScoreboardSource``) often shows a game final seconds before
the market's books move to $1/$0. While the winning outcome still offers shares at or below
``max_price_micros``, each share bought pays $1 at resolution. The Sniper:

1. on every scoreboard snapshot (``on_games``) notices games that *became* final (a game already
   final when first seen finished at an unknown time and is ignored unless
   ``act_on_first_seen_final``), maps them to markets (``polylab.strategy.mapping``) and starts
   watching each (game, market);
2. on every book change of a watched token (``on_book``) and on the timer, returns one BUY intent
   (``kind="single"``) on the paying token for the depth offered at or under the cap, if the
   expected profit clears ``min_edge_micros``; never twice for one game and market;
3. measures the **repricing lag**: from our receive time of the final snapshot to the first
   book state where the winner's best bid is ≥ the cap or a loser's best ask is ≤ $1 − cap
   (``LagRecord``; negative when the market had already moved when the scoreboard showed final).

Draws buy the token that pays on a draw (a "draw" outcome, or No on "will X win"), or are
skipped (``draws="skip"``, or no such token). Prices are micros, sizes share micros, times ns.

Replaying a recording through a Sniper, the lag table and chart, and the demo recordings live in
``polylab.research.sniper_lag``.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from polylab.analysis.vwap import vwap_buy, vwap_buy_with_fees
from polylab.domain import CashMicros, Game, Intent, Leg, OrderType, PriceMicros, Side, SizeMicros
from polylab.feed.sports import TeamDirectory
from polylab.market import Market
from polylab.money import MICROS, MoneyError, parse_micros, price_micros_to_str
from polylab.strategy.base import Context, budget_of
from polylab.strategy.mapping import MarketMapping, map_games, result_of

__all__ = ["LagRecord", "Skip", "Sniper", "SniperConfig"]


def _sweep(lo: int, hi: int) -> dict[str, object]:
    return {"sweep": (lo, hi)}


class SniperConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Sniper settings. ``extra["sweep"]`` on a field is its (low, high) sweep range.

    * ``enabled``: False keeps watching and measuring lags but never returns an intent.
    * ``max_price_micros``: the cap, highest price paid per share (0.97 $ = 970_000); also the
      repricing threshold (winner bid ≥ cap, or loser ask ≤ $1 − cap).
    * ``size_micros``: most shares bought per game and market (share micros).
    * ``min_edge_micros``: least expected profit per intent, fees included (cash micros).
    * ``size_step_micros``: order size granularity (the venue takes sizes in 0.01 share).
    * ``poll_ms``: scoreboard polling period the runner gives the HTTP source (ms).
    * ``order_type``: "FOK" (all or nothing) or "FAK" (take what is there).
    * ``draws``: "buy" the draw-paying token on a draw, or "skip" draws.
    * ``act_on_first_seen_final``: also trade games already final in their first snapshot.
    * ``watch_timeout_ms``: stop watching a (game, market) this long after the final (ms).
    * ``sports_channel``: the paper/live runner also reads the venue's sports channel and
      reconciles it with the scoreboards (one id per game, the first final wins).
    """

    enabled: bool = True
    max_price_micros: Annotated[
        int, msgspec.Meta(gt=0, lt=MICROS, extra=_sweep(900_000, 990_000))
    ] = 970_000
    size_micros: Annotated[int, msgspec.Meta(gt=0, extra=_sweep(10 * MICROS, 10_000 * MICROS))] = (
        1_000 * MICROS
    )
    min_edge_micros: Annotated[int, msgspec.Meta(ge=0, extra=_sweep(0, 50 * MICROS))] = 100_000
    size_step_micros: Annotated[int, msgspec.Meta(gt=0)] = 10_000
    poll_ms: Annotated[int, msgspec.Meta(ge=50, extra=_sweep(200, 5_000))] = 1_000
    order_type: Literal["FOK", "FAK"] = "FOK"
    draws: Literal["buy", "skip"] = "buy"
    act_on_first_seen_final: bool = False
    watch_timeout_ms: Annotated[int, msgspec.Meta(gt=0)] = 3_600_000
    sports_channel: bool = False


class LagRecord(msgspec.Struct, frozen=True, kw_only=True):
    """Scoreboard-final → market-repriced lag of one (game, market).

    ``final_seen_ns``: our receive time of the first final snapshot; ``repriced_ns``: time of the
    book change that crossed the threshold (both ns since the epoch); ``lag_ms`` = their
    difference in ms. ``token_id``: the paying token; ``fired``: an intent was returned.
    """

    game_id: str
    market: str
    final_seen_ns: int
    repriced_ns: int
    lag_ms: float
    token_id: str = ""
    league: str = ""
    result: str = ""
    fired: bool = False


class Skip(msgspec.Struct, frozen=True):
    """A final (game, market) the Sniper will not trade, and why."""

    game_id: str
    market: str
    reason: str


class _Watch:
    """One (game, market) being watched after the final."""

    __slots__ = ("can_fire", "final_ns", "game", "lose", "mapping", "market", "result", "win")

    def __init__(
        self,
        game: Game,
        mapping: MarketMapping,
        market: Market,
        result: str,
        win: str,
        final_ns: int,
        can_fire: bool,
    ) -> None:
        self.game = game
        self.mapping = mapping
        self.market = market
        self.result = result
        self.win = win
        self.lose = tuple(t for t in market.token_ids if t != win)
        self.final_ns = final_ns
        self.can_fire = can_fire

    @property
    def key(self) -> tuple[str, str]:
        return (self.game.id, self.market.condition_id)


class Sniper:
    """The Sniper strategy (see the module docstring). Read ``lags``, ``skips``, ``expired``,
    ``ambiguous`` and ``fired`` after a run; ``teams`` should be the directory the scoreboard
    source fills (names for mapping)."""

    def __init__(
        self,
        config: SniperConfig | None = None,
        *,
        name: str = "sniper",
        teams: TeamDirectory | None = None,
    ) -> None:
        self.name = name
        self.config = config if config is not None else SniperConfig()
        self.teams = teams if teams is not None else TeamDirectory()
        self.lags: list[LagRecord] = []
        self.skips: list[Skip] = []
        self.expired: list[tuple[str, str]] = []
        self.ambiguous: set[str] = set()
        self.fired: dict[tuple[str, str], int] = {}
        self._games: dict[str, Game] = {}
        self._final_seen: dict[str, int] = {}
        self._unmapped: dict[str, int] = {}
        self._watches: dict[tuple[str, str], _Watch] = {}
        self._by_token: dict[str, list[_Watch]] = {}
        self._handled: set[tuple[str, str]] = set()

    # -- Strategy hooks ------------------------------------------------------------------------
    def on_games(self, ctx: Context, games: list[Game]) -> list[Intent]:
        """Notice new finals, map them, evaluate their markets at once."""
        now = ctx.now_ns()
        fresh: list[str] = []
        for g in games:
            seen_before = g.id in self._games
            self._games[g.id] = g
            if not g.final or g.id in self._final_seen:
                continue
            if seen_before or self.config.act_on_first_seen_final:
                self._final_seen[g.id] = now
                fresh.append(g.id)
            else:
                self._final_seen[g.id] = 0  # finished at an unknown time: never traded
        n_markets = len(ctx.catalog)
        retry = [gid for gid, n in self._unmapped.items() if n != n_markets]
        if fresh or retry:
            self._start(ctx, [*fresh, *retry], n_markets)
        return self._evaluate_all(ctx, now)

    def on_book(self, ctx: Context, token_id: str) -> list[Intent]:
        """Re-check the watches on ``token_id`` (fire, or record the repricing)."""
        ws = self._by_token.get(token_id)
        if not ws:
            return []
        now = ctx.now_ns()
        out: list[Intent] = []
        for w in list(ws):
            intent = self._evaluate(ctx, w, now)
            if intent is not None:
                out.append(intent)
        return out

    def on_timer(self, ctx: Context) -> list[Intent]:
        """Expire old watches; re-check the rest."""
        now = ctx.now_ns()
        limit = self.config.watch_timeout_ms * 1_000_000
        for w in list(self._watches.values()):
            if now - w.final_ns > limit:
                self.expired.append(w.key)
                self._drop(w)
        return self._evaluate_all(ctx, now)

    # -- watching ------------------------------------------------------------------------------
    def _start(self, ctx: Context, game_ids: list[str], n_markets: int) -> None:
        res = map_games(self._games.values(), ctx.catalog.markets.values(), self.teams)
        self.ambiguous.update(res.ambiguous)
        for gid in game_ids:
            maps = res.by_game.get(gid, [])
            if not maps:
                self._unmapped[gid] = n_markets
                continue
            self._unmapped.pop(gid, None)
            game = self._games[gid]
            for mm in maps:
                self._watch(ctx, game, mm)

    def _watch(self, ctx: Context, game: Game, mm: MarketMapping) -> None:
        key = (game.id, mm.condition_id)
        market = ctx.catalog.markets.get(mm.condition_id)
        if key in self._handled or market is None:
            return
        self._handled.add(key)
        result = result_of(game)
        if result is None:
            self.skips.append(Skip(game.id, mm.condition_id, "winner disagrees with the score"))
            return
        win = mm.paying_token(result)
        if win is None:
            self.skips.append(Skip(game.id, mm.condition_id, f"no token pays on {result}"))
            return
        can_fire = not (result == "draw" and self.config.draws == "skip")
        if not can_fire:
            self.skips.append(Skip(game.id, mm.condition_id, "draws are skipped (watching)"))
        w = _Watch(game, mm, market, result, win, self._final_seen[game.id], can_fire)
        self._watches[key] = w
        for t in (w.win, *w.lose):
            self._by_token.setdefault(t, []).append(w)

    def _drop(self, w: _Watch) -> None:
        self._watches.pop(w.key, None)
        for t in (w.win, *w.lose):
            ws = self._by_token.get(t)
            if ws is not None and w in ws:
                ws.remove(w)
                if not ws:
                    del self._by_token[t]

    def _evaluate_all(self, ctx: Context, now: int) -> list[Intent]:
        out: list[Intent] = []
        for w in list(self._watches.values()):
            intent = self._evaluate(ctx, w, now)
            if intent is not None:
                out.append(intent)
        return out

    def _evaluate(self, ctx: Context, w: _Watch, now: int) -> Intent | None:
        intent = self._fire(ctx, w, now) if w.can_fire and w.key not in self.fired else None
        at = self._repriced_at(ctx, w)
        if at is not None:
            t = at if at > 0 else now
            self.lags.append(
                LagRecord(
                    game_id=w.game.id,
                    market=w.market.condition_id,
                    final_seen_ns=w.final_ns,
                    repriced_ns=t,
                    lag_ms=(t - w.final_ns) / 1e6,
                    token_id=w.win,
                    league=w.game.league,
                    result=w.result,
                    fired=w.key in self.fired,
                )
            )
            self._drop(w)
        return intent

    def _repriced_at(self, ctx: Context, w: _Watch) -> int | None:
        """The crossing book's last update time (0 if unknown) once repriced, else None."""
        cap = self.config.max_price_micros
        books = ctx.books
        b = books.get(w.win)
        if b is not None and b.best_bid >= 0 and b.best_bid_micros() >= cap:
            return b.updated_ns
        for t in w.lose:
            lb = books.get(t)
            if lb is not None and lb.best_ask <= lb.n and lb.best_ask_micros() <= MICROS - cap:
                return lb.updated_ns
        return None

    def _fire(self, ctx: Context, w: _Watch, now: int) -> Intent | None:
        cfg = self.config
        book = ctx.books.get(w.win)
        if book is None or book.crossed() or book.best_ask > book.n:
            return None
        cap = cfg.max_price_micros
        if book.best_ask_micros() > cap:
            return None
        cap_tick = cap // book.tick.micros
        depth = 0
        for t, s in book.ask_levels():
            if t > cap_tick:
                break
            depth += s
        size = min(cfg.size_micros, depth)
        room = budget_of(ctx, w.market.condition_id, w.market.token_ids)
        if room is not None and cap * size > room * MICROS:
            size = room * MICROS // cap
        size -= size % cfg.size_step_micros
        try:
            min_size = parse_micros(w.market.min_order_size)
        except MoneyError:
            min_size = 0
        if size <= 0 or size < min_size:
            return None
        fee = w.market.fee
        v = vwap_buy_with_fees(book, size, fee) if fee is not None else vwap_buy(book, size)
        edge = v.filled - v.total
        if edge < cfg.min_edge_micros or not cfg.enabled:
            return None
        self.fired[w.key] = now
        g = w.game
        return Intent(
            strategy=self.name,
            group_id=w.market.condition_id,
            kind="single",
            legs=(
                Leg(
                    token_id=w.win,
                    side=Side.BUY,
                    price=PriceMicros(v.worst_price),
                    size=SizeMicros(v.filled),
                    order_type=OrderType(cfg.order_type),
                ),
            ),
            edge=CashMicros(edge),
            created_ns=now,
            reason=(
                f"{g.away} @ {g.home} final {g.away_score}-{g.home_score} ({w.result}); "
                f"ask {price_micros_to_str(book.best_ask_micros())} <= cap "
                f"{price_micros_to_str(cap)}"
            ),
        )

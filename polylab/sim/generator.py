"""Seeded market generator: simulated traders that make the local exchange look like the venue.

It lists markets on ``state.exchange`` and trades on them through ``Exchange.place/cancel``, as
other participants would:

* **binary markets** (v1 and v2, with or without fee schedules) and **neg-risk events** of N
  outcomes; each market has one market maker quoting 20+ levels a side in whole cents of shares
  (asks are BUY orders on the NO token, which the exchange mirrors), random churn at depth, and
  takers sweeping 1-3 levels with FAK orders (fresh books + ``last_trade_price``);
* **neg-risk sum deviations that persist**: outcome prices drift independently and are pulled
  back to a $1 total only every few seconds, with occasional shocks to one outcome;
* **tick-size changes** to 0.001 when a price leaves [0.04, 0.96] and back when it returns;
* **sports games** on ``state.scoreboard``: kick-off, scores, final; the market reprices to the
  winner only ``sports_lag_s`` after the scoreboard shows the final, then resolves;
* **resolutions** (``market_resolved``) and new listings (``new_market``) to replace them.

Time is counted in steps (``steps_per_s``), so the sequence of exchange calls depends only on
the seed and on what other clients do: same seed, same event order, same books. All prices are
integer price micros, sizes share micros (multiples of 10_000, i.e. whole cents of a share).
The makers' and takers' order flow is in ``polylab.sim.traders``.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import logging
import random
import time
from collections.abc import Callable
from typing import Any

import msgspec

from polylab.fees import FeeModel
from polylab.market import Market
from polylab.money import MICROS
from polylab.sim.accounts import sim_address
from polylab.sim.sports import LEAGUES, Game, win_prices
from polylab.sim.traders import Traders, _Mkt

__all__ = ["GeneratorConfig", "MarketGenerator", "generator_of", "start", "stop"]

log = logging.getLogger(__name__)


class GeneratorConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Shape and pace of the simulated market.

    ``binary_markets``: plain YES/NO markets kept listed. ``negrisk_events``: neg-risk events,
    each of ``negrisk_outcomes`` (min, max) outcomes (3-30). ``sports_games``: games kept
    scheduled (NFL/NBA/NHL binary, MLS 3-way neg-risk). ``v2_share``: fraction of binary markets
    listed as Protocol-V2. ``steps_per_s``: trader actions per second (each places or cancels
    1-3 orders). ``levels``: book depth per side. ``trade_prob``: chance an action is a taker
    sweep. ``sports_lag_s``: scoreboard final → market reprice. ``resolve_after_s``: reprice →
    resolution. ``game_delay_s``/``game_length_s``: listing → kick-off, kick-off → final.
    ``market_life_s``: listing → resolution of non-sports markets. ``renorm_every_s``: how
    often a neg-risk event's prices are pulled back to a $1 total.
    """

    seed: int = 7
    binary_markets: int = 6
    negrisk_events: int = 2
    negrisk_outcomes: tuple[int, int] = (3, 8)
    sports_games: int = 3
    v2_share: float = 0.25
    steps_per_s: float = 120.0
    levels: int = 24
    trade_prob: float = 0.05
    sports_lag_s: float = 2.0
    resolve_after_s: float = 2.0
    game_delay_s: tuple[float, float] = (5.0, 20.0)
    game_length_s: tuple[float, float] = (30.0, 90.0)
    market_life_s: tuple[float, float] = (120.0, 600.0)
    renorm_every_s: tuple[float, float] = (2.0, 6.0)

    @classmethod
    def from_sim(cls, cfg: Any) -> GeneratorConfig:
        """Take the seed, ``sports_lag_s`` and any matching knob from a ``SimConfig``."""
        nested = getattr(cfg, "generator", None)
        if isinstance(nested, GeneratorConfig):
            return nested
        kw: dict[str, Any] = {}
        for f in msgspec.structs.fields(cls):
            v = getattr(cfg, f.name, None)
            if v is not None:
                kw[f.name] = tuple(v) if isinstance(v, list) else v
        return msgspec.convert(kw, cls)


class MarketGenerator(Traders):
    """The simulated participants of one simulator (see the module docstring): listings,
    scheduled events and the step loop here, the makers' and takers' orders in ``Traders``."""

    def __init__(self, state: Any, config: GeneratorConfig | None = None) -> None:
        self.state = state
        self.cfg = config or GeneratorConfig.from_sim(state.config)
        super().__init__(state.exchange, random.Random(self.cfg.seed), self.cfg.levels)
        self.step_no = 0
        self.live: list[_Mkt] = []
        self._sched: list[tuple[int, int, Callable[[], None]]] = []
        self._seq = itertools.count()
        self._ids = itertools.count(1)

    # -- time ----------------------------------------------------------------------------------
    def steps(self, seconds: float) -> int:
        """Seconds → steps (at least 1)."""
        return max(1, round(seconds * self.cfg.steps_per_s))

    def at(self, delay_s: float, fn: Callable[[], None]) -> None:
        """Run ``fn`` ``delay_s`` seconds of steps from now."""
        heapq.heappush(self._sched, (self.step_no + self.steps(delay_s), next(self._seq), fn))

    def _uniform(self, lo_hi: tuple[float, float]) -> float:
        return self.rng.uniform(lo_hi[0], lo_hi[1])

    # -- listing -------------------------------------------------------------------------------
    def _token(self, v2: bool) -> str:
        if v2:
            return str(self.rng.randrange(10**74, 10**75))
        return str(self.rng.randrange(10**76, 2**256))

    def _list(self, fair: int, game: Game | None = None, side: str = "", **kw: Any) -> _Mkt:
        """List a market (``kw``: ``Market`` fields besides ids) with its maker and book."""
        v2 = kw.pop("version", "v1") == "v2"
        if game is not None:
            kw |= {
                "game_id": game.id,
                "home": game.home.abbreviation,
                "away": game.away.abbreviation,
                "game_start": _iso_s(game.start_ms),
            }
        cid = "0x" + "".join(self.rng.choice("0123456789abcdef") for _ in range(64))
        toks = (self._token(v2), self._token(v2))
        m = Market(condition_id=cid, token_ids=toks, version="v2" if v2 else "v1", **kw)
        self.ex.add_market(m)
        maker = sim_address(f"mm-{self.cfg.seed}-{next(self._ids)}")
        self.ex.fund(maker, 1_000_000_000 * MICROS)
        self.ex.approve(maker, update=True)
        mk = _Mkt(m, maker, fair)
        mk.game, mk.outcome_side = game, side
        self.live.append(mk)
        self._set_fair(mk, fair)
        self._requote(mk)
        return mk

    def _fair(self) -> int:
        return self.rng.randint(8, 92) * 10_000

    def list_binary(self) -> None:
        """List one plain binary market that resolves after ``market_life_s``."""
        r = self.rng
        n = next(self._ids)
        rate, *subjects = r.choice(_SUBJECTS).split("|")
        q = f"Will {r.choice(subjects)} by the end of sim-month {n}?"
        fee = FeeModel.from_rate(rate) if rate != "0" else None
        v = "v2" if r.random() < self.cfg.v2_share else "v1"
        mk = self._list(self._fair(), question=q, slug=_slug(q), fee=fee, version=v)
        self.at(self._uniform(self.cfg.market_life_s), lambda: self._settle([mk]))

    def list_event(self) -> None:
        """List one neg-risk event of N outcomes whose YES prices start near a $1 total."""
        r = self.rng
        lo, hi = self.cfg.negrisk_outcomes
        n_out = r.randint(max(2, lo), max(lo, hi))
        ev = f"sim-{r.choice(_EVENT_TOPICS.split())}-{next(self._ids)}"
        weights = [r.randint(10, 100) for _ in range(n_out)]
        total = sum(weights)
        fee = FeeModel.from_rate("0.04")
        group: list[_Mkt] = []
        for i, w in enumerate(weights):
            name = f"Candidate {chr(65 + i % 26)}{i // 26 or ''}"
            fair = max(10_000, w * 100 // total * 10_000)
            q = f"Will {name} win {ev.replace('-', ' ')}?"
            group.append(
                self._list(fair, question=q, slug=_slug(q), neg_risk=True, event_id=ev, fee=fee)
            )
        for mk in group:
            mk.group = group
        self.at(self._uniform(self.cfg.renorm_every_s), lambda: self._renorm(group))
        self.at(self._uniform(self.cfg.market_life_s), lambda: self._settle(group))

    def _renorm(self, group: list[_Mkt]) -> None:
        """An arbitrageur pulls the event's YES prices back to a $1 total (for a while)."""
        if group[0].closing:
            return
        total = sum(mk.fair for mk in group)
        for mk in group:
            self._set_fair(mk, mk.fair * MICROS // total // 1000 * 1000)
            self._requote(mk, fill=False)
        self.at(self._uniform(self.cfg.renorm_every_s), lambda: self._renorm(group))

    def list_game(self) -> None:
        """Schedule a game on the scoreboard and list its market(s): a moneyline (YES = away
        team), or for soccer a 3-way neg-risk event (home / draw / away)."""
        r = self.rng
        delay = self._uniform(self.cfg.game_delay_s)
        g = self.state.scoreboard.random_game(r, int((time.time() + delay) * 1000))
        lg = LEAGUES[(g.sport, g.league)]
        home, away, day = g.home, g.away, _iso_s(g.start_ms)[:10]
        base = f"{lg.abbreviation.lower()}-{away.abbreviation.lower()}-{home.abbreviation.lower()}"
        prices = win_prices(0, lg.soccer)
        kw: dict[str, Any] = {"fee": FeeModel.from_rate("0.03")}
        if not lg.soccer:
            q = f"{away.name} vs. {home.name}"
            kw |= {"question": q, "slug": f"{base}-{day}", "outcomes": (away.name, home.name)}
            group = [self._list(prices["away"], g, "away", **kw)]
        else:
            ev = f"{base}-{day}"
            kw |= {"neg_risk": True, "event_id": ev}
            names = {"home": home.display_name, "away": away.display_name}
            draw = f"Will {home.display_name} vs. {away.display_name} end in a draw?"
            group = [
                self._list(
                    prices[side],
                    g,
                    side,
                    slug=f"{ev}-{side}",
                    **kw,
                    question=f"Will {names[side]} win on {day}?" if side in names else draw,
                )
                for side in ("home", "draw", "away")
            ]
            for mk in group:
                mk.group = group
        self.at(delay, lambda: self._kickoff(g, group))

    def _kickoff(self, g: Game, group: list[_Mkt]) -> None:
        self.state.scoreboard.start(g.id)
        length = self._uniform(self.cfg.game_length_s)
        n_events = self.rng.randint(3, 8)
        for i in range(1, n_events + 1):
            self.at(length * i / (n_events + 1), lambda: self._score(g, group))
        self.at(length, lambda: self._final(g, group))

    def _score(self, g: Game, group: list[_Mkt]) -> None:
        """A score; the game's markets lean towards the leader (before the result is known)."""
        self.state.scoreboard.random_score(g.id, self.rng)
        prices = win_prices(g.home_score - g.away_score, LEAGUES[(g.sport, g.league)].soccer)
        for mk in group:
            if not mk.closing:
                self._set_fair(mk, prices[mk.outcome_side])
                self._requote(mk, fill=False)

    def _final(self, g: Game, group: list[_Mkt]) -> None:
        """The scoreboard shows the result now; the markets learn it ``sports_lag_s`` later."""
        result = self.state.scoreboard.finish(g.id, self.rng.choice(("home", "away")))
        winners = [mk for mk in group if mk.outcome_side == result]
        self.at(self.cfg.sports_lag_s, lambda: self._settle(group, winners))
        self.at(self.cfg.sports_lag_s + self.cfg.resolve_after_s + 1.0, self.list_game)

    def _settle(self, group: list[_Mkt], winners: list[_Mkt] | None = None) -> None:
        """Reprice to the result now, resolve ``resolve_after_s`` later. ``winners``: the
        markets whose YES wins (none: every NO wins); ``None`` draws them from the prices."""
        if group[0].closing:
            return
        if winners is None:
            u = self.rng.randrange(max(MICROS, sum(mk.fair for mk in group)))
            winners = []
            for mk in group:
                u -= mk.fair
                if u < 0:
                    winners = [mk]
                    break
            if not winners and group[0].m.neg_risk:
                winners = [group[-1]]
        for mk in group:
            self._set_fair(mk, 995_000 if mk in winners else 5_000)
            self._requote(mk, fill=False)
            mk.closing = True
        self.at(self.cfg.resolve_after_s, lambda: self._resolve(group, winners or []))

    def _resolve(self, group: list[_Mkt], winners: list[_Mkt]) -> None:
        for mk in group:
            mk.orders.clear()  # the exchange cancels every resting order of the market
            tok = mk.m.token_ids[0] if mk in winners else mk.m.token_ids[1]
            self.ex.resolve(mk.m.condition_id, tok)
            if mk in self.live:
                self.live.remove(mk)
        if group[0].game is None:
            (self.list_event if group[0].m.neg_risk else self.list_binary)()

    # -- driving -------------------------------------------------------------------------------
    def setup(self) -> None:
        """List the initial markets and their books (synchronously)."""
        for _ in range(self.cfg.binary_markets):
            self.list_binary()
        for _ in range(self.cfg.negrisk_events):
            self.list_event()
        for _ in range(self.cfg.sports_games):
            self.list_game()

    def step(self) -> None:
        """One step: due scheduled work, then one trader action on a random market."""
        self.step_no += 1
        while self._sched and self._sched[0][0] <= self.step_no:
            fn = heapq.heappop(self._sched)[2]
            fn()
        live = [mk for mk in self.live if not mk.closing]
        if not live:
            return
        r = self.rng
        mk = r.choice(live)
        u = r.random()
        if u < self.cfg.trade_prob:
            self._take(mk)
        elif u < self.cfg.trade_prob + 0.08:
            step = mk.tick.micros * r.choice((-1, 1))
            if mk.m.neg_risk and r.random() < 0.1:
                self._dislocate(mk.group)
                return
            self._set_fair(mk, mk.fair + step)
            self._requote(mk, fill=False)
        else:
            self._churn(mk)

    async def run(self) -> None:
        """Step at ``steps_per_s`` on the event loop until cancelled (errors are logged and
        counted; the loop keeps going)."""
        loop = asyncio.get_running_loop()
        dt = 1.0 / self.cfg.steps_per_s
        t0 = loop.time()
        done = 0
        while True:
            due = int((loop.time() - t0) / dt)
            if due - done > self.cfg.steps_per_s:  # far behind (a stall): skip, don't burst
                done = due - 1
            while done < due:
                done += 1
                try:
                    self.step()
                except Exception:
                    self.errors += 1
                    log.exception("generator step %d failed", self.step_no)
            await asyncio.sleep(max(0.005, dt))


def start(state: Any, config: GeneratorConfig | None = None) -> asyncio.Task[None]:
    """List the initial markets now and step the traders on the running loop; cancel the
    returned task to stop."""
    gen = MarketGenerator(state, config)
    gen.setup()
    task = asyncio.get_running_loop().create_task(gen.run(), name="polylab-sim-generator")
    _RUNNING[task] = gen
    task.add_done_callback(lambda t: _RUNNING.pop(t, None))
    return task


def generator_of(task: asyncio.Task[None]) -> MarketGenerator | None:
    """The generator a ``start`` task drives (for counters and tests)."""
    return _RUNNING.get(task)


async def stop(task: asyncio.Task[None]) -> None:
    """Cancel the generator task and wait for it."""
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def _iso_s(ms: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ms // 1000))


def _slug(text: str) -> str:
    out = "".join(c.lower() if c.isalnum() else "-" for c in text)
    return "-".join(p for p in out.split("-") if p)[:90]


_RUNNING: dict[asyncio.Task[None], MarketGenerator] = {}

_SUBJECTS = (
    "0.04|the Senate pass the sim budget bill|the governor sign the sim act|turnout top 60%",
    "0.07|BTC close above its sim target|ETH flip its sim resistance|a sim token hit a new high",
    "0.05|sim CPI print above 3%|the sim central bank cut rates|sim unemployment fall below 4%",
    "0|a sim ceasefire be announced|the sim summit take place|a sim treaty be signed",
)
"""Binary market topics: fee rate (politics, crypto, economics, geopolitics), then subjects."""
_EVENT_TOPICS = "election award nominee championship chair"

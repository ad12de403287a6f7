"""A seeded synthetic market-channel stream that looks like the venue's, for demos and benches.

It keeps each token's true book as an ``L2Book`` to derive the frames, hence ``book/``.

It reproduces what shapes the analysis: binary markets whose YES and NO books are exact mirrors
(each change reported on both tokens, ``best_bid``/``best_ask`` after every entry), price moves
whose NO-side echo sometimes arrives late (transient *stale-leg* windows where YES+NO asks < $1,
or bids > $1, by one to several ticks: a stale move of d ticks leaves an edge of d − 1 ticks),
neg-risk events of N outcomes whose YES asks drift and occasionally dislocate for seconds
(*structural* windows), trades (fresh ``book`` for both tokens, then ``last_trade_price``), and
``best_bid_ask`` hints sent just before the change that causes them. The catalog goes first on
the ``meta`` channel. Same seed, same bytes.
"""

from __future__ import annotations

import hashlib
import heapq
import json
import random
from collections.abc import Iterator
from pathlib import Path

import msgspec

from polylab.book.l2 import L2Book
from polylab.feed.recording import RecordingWriter
from polylab.fees import FeeModel
from polylab.market import Market
from polylab.money import size_to_str, tick_size

__all__ = ["SyntheticConfig", "generate", "write_synthetic"]

_EPOCH_NS = 1_793_491_200_000_000_000  # 2026-11-01T00:00:00Z


class SyntheticConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Shape of the synthetic stream.

    ``duration_s``: seconds of feed; ``rate_hz``: actions per second (each gives 1–6 frames);
    ``stale_prob``: chance a binary price move's NO echo lags by ``stale_lag_ms`` (min, max);
    such a move slides the top of book by ``stale_move_ticks`` (min, max) ticks, which leaves a
    stale-leg edge of one tick less;
    ``dislocation_prob``: chance per neg-risk action that an outcome's book slides for a while.
    """

    seed: int = 7
    binary_markets: int = 6
    negrisk_events: int = 1
    negrisk_outcomes: int = 4
    duration_s: float = 30.0
    rate_hz: float = 200.0
    stale_prob: float = 0.05
    stale_lag_ms: tuple[int, int] = (20, 120)
    stale_move_ticks: tuple[int, int] = (2, 5)
    dislocation_prob: float = 0.02
    trade_prob: float = 0.08
    levels: int = 20


class _Pair:
    """A binary market: the canonical YES book, and the two books as emitted so far."""

    def __init__(self, m: Market, yes: L2Book, no: L2Book) -> None:
        self.m = m
        self.yes = yes
        self.no = no
        self.n = yes.n
        self.busy_until = 0
        self.fair = 50


def _hash(seed: str) -> str:
    return hashlib.sha1(seed.encode()).hexdigest()


class _Gen:
    def __init__(self, cfg: SyntheticConfig) -> None:
        self.cfg = cfg
        self.rng = random.Random(cfg.seed)
        self.pairs: list[_Pair] = []
        self.events: dict[str, list[_Pair]] = {}
        self.tick = tick_size("0.01")
        self.queue: list[tuple[int, int, str]] = []
        self.seq = 0
        self.enc = msgspec.json.Encoder()

    def _ids(self) -> tuple[str, str, str]:
        r = self.rng
        cond = "0x" + "".join(r.choice("0123456789abcdef") for _ in range(64))
        return cond, str(r.getrandbits(252)), str(r.getrandbits(252))

    def _market(self, q: str, neg: bool, event: str, fee: FeeModel | None) -> _Pair:
        cond, y, n = self._ids()
        m = Market(
            condition_id=cond,
            token_ids=(y, n),
            question=q,
            tick_size="0.01",
            neg_risk=neg,
            event_id=event,
            fee=fee,
        )
        p = _Pair(m, L2Book(y, self.tick, cond), L2Book(n, self.tick, cond))
        self.pairs.append(p)
        return p

    def _fill(self, p: _Pair, mid: int) -> None:
        r = self.rng
        p.fair = mid
        spread = r.choice((1, 1, 2, 3))
        bid0 = max(1, min(p.n - 2, mid - spread // 2))
        ask0 = min(p.n - 1, bid0 + spread)
        for i in range(self.cfg.levels):
            if bid0 - i >= 1 and r.random() < 0.85:
                p.yes.set_bid(bid0 - i, self._size())
            if ask0 + i <= p.n - 1 and r.random() < 0.85:
                p.yes.set_ask(ask0 + i, self._size())
        if not p.yes.n_bids:
            p.yes.set_bid(bid0, self._size())
        if not p.yes.n_asks:
            p.yes.set_ask(ask0, self._size())
        for t, s in p.yes.bid_levels():
            p.no.set_ask(p.n - t, s)
        for t, s in p.yes.ask_levels():
            p.no.set_bid(p.n - t, s)

    def _size(self) -> int:
        r = self.rng
        return int(r.lognormvariate(4.0, 1.2) * 100 + 500) * 10_000

    def _j(self, obj: object) -> str:
        """Later frames as the venue writes them: ``", "`` between items, ``":"`` in pairs."""
        return json.dumps(obj, separators=(", ", ":"))

    def _emit(self, at_ns: int, payload: str) -> None:
        self.seq += 1
        heapq.heappush(self.queue, (at_ns, self.seq, payload))

    def _book_obj(self, b: L2Book, ts: int, initial: bool) -> dict[str, object]:
        t = b.tick
        d: dict[str, object] = {
            "market": b.market,
            "asset_id": b.asset_id,
            "timestamp": str(ts),
            "hash": _hash(f"{b.asset_id}{ts}{b.best_bid}{b.best_ask}"),
            "bids": [
                {"price": t.to_str(k), "size": size_to_str(s)} for k, s in reversed(b.bid_levels())
            ],
            "asks": [
                {"price": t.to_str(k), "size": size_to_str(s)} for k, s in reversed(b.ask_levels())
            ],
        }
        if initial:
            d["tick_size"] = t.text
            d["last_trade_price"] = ""
        d["event_type"] = "book"
        return d

    def _change(self, p: _Pair, side: str, k: int, size: int) -> list[tuple[L2Book, str, int, int]]:
        """Apply a YES level change to the canonical books; return (book, side, tick, size) for
        YES and its NO mirror, in that order."""
        if side == "BUY":
            p.yes.set_bid(k, size)
            p.no.set_ask(p.n - k, size)
            return [(p.yes, "BUY", k, size), (p.no, "SELL", p.n - k, size)]
        p.yes.set_ask(k, size)
        p.no.set_bid(p.n - k, size)
        return [(p.yes, "SELL", k, size), (p.no, "BUY", p.n - k, size)]

    def _entries(
        self,
        p: _Pair,
        changes: list[tuple[L2Book, str, int, int]],
        ts: int,
        shadow: dict[str, L2Book],
    ) -> list[dict[str, str]]:
        out = []
        for book, side, k, size in changes:
            sh = shadow[book.asset_id]
            (sh.set_bid if side == "BUY" else sh.set_ask)(k, size)
            t = sh.tick
            out.append(
                {
                    "asset_id": book.asset_id,
                    "price": t.to_str(k),
                    "size": size_to_str(size),
                    "side": side,
                    "hash": _hash(f"{book.asset_id}{ts}"),
                    "best_bid": t.to_str(max(sh.best_bid, 0)),
                    "best_ask": t.to_str(min(sh.best_ask, sh.n)),
                }
            )
        return out

    def _pc(self, market: str, entries: list[dict[str, str]], ts: int) -> str:
        return self._j(
            {
                "market": market,
                "price_changes": entries,
                "timestamp": str(ts),
                "event_type": "price_change",
            }
        )

    def run(self) -> Iterator[tuple[int, str, str]]:
        cfg, r = self.cfg, self.rng
        cats = [("politics", "0.04"), ("sports", "0.03"), ("crypto", "0.07"), ("geo", "0")]
        for i in range(cfg.binary_markets):
            cat, rate = cats[i % len(cats)]
            fee = FeeModel.from_rate(rate) if rate != "0" else None
            self._fill(
                self._market(f"Synthetic {cat} market {i + 1}?", False, "", fee), r.randint(10, 90)
            )
        for e in range(cfg.negrisk_events):
            ev_id = f"synthetic-event-{e + 1}"
            probs = [r.random() + 0.2 for _ in range(cfg.negrisk_outcomes)]
            tot = sum(probs)
            grp = []
            for j, pr in enumerate(probs):
                p = self._market(
                    f"Will outcome {j + 1} win event {e + 1}?",
                    True,
                    ev_id,
                    FeeModel.from_rate("0.04"),
                )
                self._fill(p, max(2, round(pr / tot * 100)))
                grp.append(p)
            self.events[ev_id] = grp
        meta = self.enc.encode({"markets": [p.m for p in self.pairs]}).decode()
        now = _EPOCH_NS
        yield now, "meta", meta
        shadow = {}
        dump = []
        for p in self.pairs:
            for b in (p.yes, p.no):
                s = L2Book(b.asset_id, b.tick, b.market)
                s.load(b.bid_levels(), b.ask_levels())
                shadow[b.asset_id] = s
                dump.append(self._book_obj(b, now // 1_000_000, True))
        now += 50_000_000
        yield now, "market", self.enc.encode(dump).decode() + "\n"
        end = now + int(cfg.duration_s * 1e9)
        while True:
            now += int(r.expovariate(cfg.rate_hz) * 1e9) + 1
            while self.queue and self.queue[0][0] <= now:
                at, _, payload = heapq.heappop(self.queue)
                yield at, "market", payload
            if now >= end:
                break
            self._action(now, shadow)
        while self.queue:
            at, _, payload = heapq.heappop(self.queue)
            yield at, "market", payload

    def _action(self, now: int, shadow: dict[str, L2Book]) -> None:
        cfg, r = self.cfg, self.rng
        p = r.choice(self.pairs)
        if p.busy_until >= now:
            return  # its NO echo is still in flight: keep the stream causally consistent
        ts = now // 1_000_000 - r.randint(2, 15)
        u = r.random()
        if u < cfg.trade_prob:
            self._trade(p, now, ts, shadow)
            return
        if p.m.neg_risk and u < cfg.trade_prob + cfg.dislocation_prob:
            self._move(p, now, ts, shadow, r.choice((-1, 1)) * r.randint(3, 6), stale=False)
            return
        if u < cfg.trade_prob + 0.15:
            stale = (not p.m.neg_risk) and r.random() < cfg.stale_prob / 0.15
            toward = self._toward(p)
            sign = toward if r.random() < 0.8 else -toward
            size = r.randint(*cfg.stale_move_ticks) if stale else r.randint(1, 2)
            self._move(p, now, ts, shadow, sign * size, stale=stale)
            return
        y = p.yes
        thin_bids = y.n_bids < y.n_asks
        side = "BUY" if (r.random() < 0.65) == thin_bids else "SELL"
        if side == "BUY":
            top = y.best_bid if y.n_bids else min(p.fair, y.best_ask - 1)
            k = max(1, top - r.randint(0, 6))
        else:
            top = y.best_ask if y.n_asks else max(p.fair, y.best_bid + 1)
            k = min(p.n - 1, top + r.randint(0, 6))
        cur = (y.bids if side == "BUY" else y.asks)[k]
        if cur and r.random() < 0.35:
            size = 0 if r.random() < 0.5 else cur // 20_000 * 10_000
        else:
            size = cur + self._size()
        if (side == "BUY" and k >= y.best_ask) or (side == "SELL" and k <= y.best_bid):
            return
        ch = self._change(p, side, k, size)
        ents = self._entries(p, ch, ts, shadow)
        self._hints(p, ents, now, ts)
        self._emit(now, self._pc(p.m.condition_id, ents, ts))

    def _toward(self, p: _Pair) -> int:
        """+1 or −1: the direction that pulls the price back to fair (for a neg-risk outcome,
        back to an event whose mids sum to $1, as arbitrageurs on the venue keep it)."""
        mid = (p.yes.best_bid + p.yes.best_ask) // 2
        if p.m.neg_risk:
            excess = sum((q.yes.best_bid + q.yes.best_ask) // 2 for q in self.events[p.m.event_id])
            excess -= p.n
            if abs(excess) > 2:
                return -1 if excess > 0 else 1
        return 1 if p.fair > mid else -1

    def _hints(self, p: _Pair, ents: list[dict[str, str]], now: int, ts: int) -> None:
        if self.rng.random() < 0.5:
            return
        for e in ents:
            self._emit(
                now - 1,
                self._j(
                    {
                        "market": p.m.condition_id,
                        "asset_id": e["asset_id"],
                        "best_bid": e["best_bid"],
                        "best_ask": e["best_ask"],
                        "spread": "",
                        "timestamp": str(ts),
                        "event_type": "best_bid_ask",
                    }
                ),
            )

    def _move(
        self, p: _Pair, now: int, ts: int, shadow: dict[str, L2Book], d: int, stale: bool
    ) -> None:
        """Slide the top of book by ``d`` ticks: cancel what the move crosses, post the other
        side at the new prices. With ``stale`` the NO echo arrives later in a separate frame."""
        y, r = p.yes, self.rng
        changes: list[tuple[L2Book, str, int, int]] = []
        if d < 0:
            lo = max(1, y.best_bid + d)
            for k in range(y.best_bid, lo - 1, -1):
                if y.bids[k]:
                    changes += self._change(p, "BUY", k, 0)
            for k in range(lo + 1, min(p.n - 1, lo - d + 1) + 1):
                if k < y.best_ask:
                    changes += self._change(p, "SELL", k, self._size())
        else:
            hi = min(p.n - 1, y.best_ask + d)
            for k in range(y.best_ask, hi + 1):
                if y.asks[k]:
                    changes += self._change(p, "SELL", k, 0)
            for k in range(max(1, hi - d - 1), hi):
                if k > y.best_bid:
                    changes += self._change(p, "BUY", k, self._size())
        if not changes:
            return
        yes_ch = [c for c in changes if c[0] is p.yes]
        no_ch = [c for c in changes if c[0] is p.no]
        if stale:
            lag = r.randint(*self.cfg.stale_lag_ms) * 1_000_000
            p.busy_until = now + lag
            self._emit(now, self._pc(p.m.condition_id, self._entries(p, yes_ch, ts, shadow), ts))
            self._emit(
                now + lag, self._pc(p.m.condition_id, self._entries(p, no_ch, ts, shadow), ts)
            )
        else:
            ents = self._entries(p, changes, ts, shadow)
            self._emit(now, self._pc(p.m.condition_id, ents, ts))

    def _trade(self, p: _Pair, now: int, ts: int, shadow: dict[str, L2Book]) -> None:
        y, r = p.yes, self.rng
        buy = (r.random() < 0.75) == (self._toward(p) > 0)
        lv = y.ask_levels() if buy else y.bid_levels()
        if len(lv) < 2:
            return
        want = r.randint(1, 3)
        price = lv[0][0]
        for k, s in lv[:want]:
            price = k
            take = s if r.random() < 0.6 else s // 2 // 10_000 * 10_000
            if buy:
                self._change(p, "SELL", k, s - take)
            else:
                self._change(p, "BUY", k, s - take)
        for b in (p.yes, p.no):
            sh = shadow[b.asset_id]
            sh.load(b.bid_levels(), b.ask_levels())
            self._emit(now, self._j(self._book_obj(b, ts, False)))
        self._emit(
            now + 1,
            self._j(
                {
                    "asset_id": y.asset_id,
                    "event_type": "last_trade_price",
                    "fee_rate_bps": "0",
                    "market": p.m.condition_id,
                    "price": self.tick.to_str(price),
                    "side": "BUY" if buy else "SELL",
                    "size": size_to_str(self._size()),
                    "timestamp": str(ts),
                    "transaction_hash": "0x" + _hash(str(now)) + "0" * 24,
                }
            ),
        )


def generate(cfg: SyntheticConfig | None = None) -> Iterator[tuple[int, str, str]]:
    """Yield ``(recv_ns, channel, payload)`` records of a synthetic session."""
    return _Gen(cfg or SyntheticConfig()).run()


def write_synthetic(path: str | Path, cfg: SyntheticConfig | None = None) -> int:
    """Write a synthetic recording to ``path`` (zstd if ``.zst``); returns the record count."""
    with RecordingWriter(path) as w:
        for at, ch, payload in generate(cfg):
            w.write(ch, payload, at)
        return w.count

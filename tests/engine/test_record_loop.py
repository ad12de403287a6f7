"""The record loop a backtest and a sweep share (``backtest.RecordLoop``): what each channel
does, in order, on the replay clock, and what it counts as malformed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec

from polylab.backtest import FEED_CHANNEL, RecordLoop
from polylab.book.registry import BookRegistry
from polylab.book.synthetic import SyntheticConfig, generate
from polylab.domain import Game
from polylab.feed.decode import market_decoder
from polylab.feed.recording import RecordingWriter


class Probe(RecordLoop):
    """Records every hook call; applies events to the registry as an engine would."""

    def __init__(self, registry: BookRegistry, teams: list[Any]) -> None:
        super().__init__(registry, teams)
        self.calls: list[tuple[str, Any]] = []

    def on_event(self, ev: Any, now_ns: int) -> None:
        self.registry.apply(ev, now_ns)
        self.calls.append(("event", now_ns))

    def on_games(self, key: int, games: list[Game], now_ns: int) -> None:
        self.calls.append(("games", (key, len(games), now_ns)))

    def on_catalog(self) -> None:
        self.calls.append(("catalog", len(self.registry.catalog)))

    def before_games(self) -> None:
        self.calls.append(("before_games", None))

    def after_games(self) -> None:
        self.calls.append(("after_games", None))

    def after_record(self, now_ns: int) -> None:
        self.calls.append(("record", now_ns))


def test_each_channel_reaches_its_hook_in_order_on_the_replay_clock(tmp_path: Path) -> None:
    records = list(generate(SyntheticConfig(seed=4, duration_s=2.0, binary_markets=2)))
    market = [(at, p) for at, ch, p in records if ch == "market"]
    asset = msgspec.json.decode(market[0][1])[0]["asset_id"]
    path = tmp_path / "r.jsonl"
    with RecordingWriter(path) as w:
        for at, ch, p in records:
            w.write(ch, p, at)
        end = records[-1][0]
        w.write("market", market[5][1], end - 10)  # an older stamp: the clock does not go back
        note = msgspec.json.encode({"asset_id": asset, "needs_snapshot": True}).decode()
        w.write(FEED_CHANNEL, note, end + 1)  # the live feed stopped trusting this book
        w.write("sports", "ping", end + 2)  # no games: handed out (empty) per directory
        w.write("sports", "not a scoreboard", end + 3)  # unreadable: one malformed record
    with open(path, "a") as f:
        f.write('{"recv_ns": 1, "chan\n')  # a broken line
    reg = BookRegistry()
    loop = Probe(reg, [None, None])  # two team directories: scoreboards parsed for each
    assert loop.run(path) == end + 3
    kinds = [k for k, _ in loop.calls]
    n_events = sum(len(market_decoder().decode(p)) for _, p in market) + 1
    assert kinds.count("event") == n_events
    assert kinds.count("record") == len(records) + 4
    assert kinds.count("catalog") == sum(1 for _, ch, _ in records if ch == "meta")
    assert ("games", (0, 0, end + 2)) in loop.calls and ("games", (1, 0, end + 2)) in loop.calls
    assert kinds.count("before_games") == kinds.count("after_games") == 2
    # the clock: events at their stamps, never going back
    times = [v for k, v in loop.calls if k == "record"]
    assert times == sorted(times) and times[-1] == end + 3
    assert times[len(records)] == end  # the older stamp was applied at the clock's time
    assert reg.books[asset].needs_snapshot is True
    assert loop.malformed == 2  # the broken line and the unreadable scoreboard (once)
    assert loop.reader is not None and loop.reader.malformed == 1

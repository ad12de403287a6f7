import pytest

from polylab.book.l2 import L2Book
from polylab.book.registry import BookRegistry, mirror_mismatches
from polylab.feed.decode import market_decoder
from polylab.money import tick_size

CENT = tick_size("0.01")


def make(bids: dict[int, int], asks: dict[int, int], tick: str = "0.01") -> L2Book:
    b = L2Book("t", tick_size(tick))
    b.load(list(bids.items()), list(asks.items()))
    return b


def test_best_levels_follow_inserts_and_deletes() -> None:
    b = make({40: 5, 42: 7}, {45: 1, 47: 2})
    assert (b.best_bid, b.best_ask) == (42, 45)
    b.set_bid(44, 3)
    assert b.best_bid == 44
    b.set_bid(44, 0)
    b.set_bid(42, 0)
    assert b.best_bid == 40 and b.n_bids == 1
    b.set_ask(45, 0)
    assert b.best_ask == 47
    b.set_bid(40, 0)
    b.set_ask(47, 0)
    assert b.best_bid_micros() == 0 and b.best_ask_micros() == 1_000_000
    assert b.bid_levels() == [] and b.ask_levels() == []


def test_deleting_an_absent_level_changes_nothing() -> None:
    b = make({40: 5}, {45: 1})
    b.set_bid(30, 0)
    assert b.n_bids == 1 and b.best_bid == 40


def test_levels_are_best_first() -> None:
    b = make({40: 5, 42: 7, 10: 1}, {45: 1, 90: 2})
    assert b.bid_levels() == [(42, 7), (40, 5), (10, 1)]
    assert b.ask_levels() == [(45, 1), (90, 2)]


def test_crossed_and_stale_detection() -> None:
    b = make({40: 5}, {45: 1})
    assert not b.crossed()
    b.set_bid(46, 1)
    assert b.crossed()
    b.updated_ns = 1_000
    assert b.is_stale(now_ns=5_000, max_age_ns=3_000)
    assert not b.is_stale(now_ns=2_000, max_age_ns=3_000)


def test_regrid_to_finer_keeps_levels_and_coarser_asks_for_a_snapshot() -> None:
    b = make({40: 5}, {45: 1})
    assert b.regrid(tick_size("0.001"))
    assert b.bid_levels() == [(400, 5)] and b.best_ask == 450
    b.set_ask(455, 3)
    assert not b.regrid(CENT)
    assert b.needs_snapshot and b.n_asks == 0


def test_ladder_cache_invalidates_on_change() -> None:
    b = make({}, {45: 1_000_000})
    lad = b.ask_ladder()
    assert b.ask_ladder() is lad
    b.set_ask(46, 2_000_000)
    assert b.ask_ladder().total == 3_000_000


def test_mirror_check_finds_a_broken_mirror() -> None:
    yes = make({40: 5, 41: 2}, {45: 1})
    no = make({55: 1}, {60: 5, 59: 2})
    assert mirror_mismatches(yes, no) == 0
    no.set_ask(59, 3)
    assert mirror_mismatches(yes, no) == 1


def test_registry_tick_size_change_and_offgrid_update() -> None:
    reg = BookRegistry()
    dec = market_decoder()
    for f in [
        '{"event_type":"book","asset_id":"a","market":"m","tick_size":"0.01",'
        '"bids":[{"price":"0.95","size":"10"}],"asks":[{"price":"0.97","size":"4"}]}',
        '{"event_type":"tick_size_change","asset_id":"a","market":"m","old_tick_size":"0.01",'
        '"new_tick_size":"0.001"}',
        '{"event_type":"price_change","market":"m","timestamp":"2","price_changes":[{"asset_id":'
        '"a","price":"0.965","size":"1.5","side":"SELL"}]}',
        '{"event_type":"price_change","market":"m","timestamp":"3","price_changes":[{"asset_id":'
        '"a","price":"x","size":"1","side":"SELL"},{"asset_id":"a","price":"0.5","size":"1",'
        '"side":"HOLD"}]}',
    ]:
        for ev in dec.decode(f):
            reg.apply(ev, 1)
    b = reg.books["a"]
    assert b.tick.text == "0.001" and b.best_ask == 965 and b.asks[965] == 1_500_000
    assert reg.stats.malformed == 2 and reg.stats.tick_changes == 1


def test_legacy_price_change_schemas_apply() -> None:
    reg = BookRegistry()
    dec = market_decoder()
    for f in [
        '{"event_type":"price_change","asset_id":"a","market":"m","hash":"h","timestamp":"1",'
        '"changes":[{"price":"0.4","side":"BUY","size":"3"},{"price":"0.6","side":"SELL","size":"2"}]}',
        '{"event_type":"price_change","asset_id":"a","market":"m","hash":"h","timestamp":"2",'
        '"price":"0.41","side":"BUY","size":"1"}',
    ]:
        for ev in dec.decode(f):
            reg.apply(ev, 1)
    b = reg.books["a"]
    assert b.bid_levels() == [(41, 1_000_000), (40, 3_000_000)] and b.ask_levels() == [
        (60, 2_000_000)
    ]


@pytest.mark.parametrize("tick", ["0.01", "0.001"])
def test_book_without_tick_size_infers_the_grid(tick: str) -> None:
    reg = BookRegistry()
    price = "0.511" if tick == "0.001" else "0.51"
    (ev,) = market_decoder().decode(
        '{"event_type":"book","asset_id":"a","bids":[{"price":"' + price + '","size":"1"}]}'
    )
    reg.apply(ev, 1)
    assert reg.books["a"].tick.text == tick


@pytest.mark.parametrize(
    ("bids", "asks", "best"),
    [
        (
            '[{"price":"0.40","size":"1"},{"price":"0.42","size":"2"}]',
            '[{"price":"0.50","size":"1"},{"price":"0.45","size":"3"}]',
            (42, 45),
        ),
        # not best-last, and a zero-size last level: the hint is checked, not trusted
        (
            '[{"price":"0.42","size":"2"},{"price":"0.40","size":"1"},{"price":"0.43","size":"0"}]',
            '[{"price":"0.45","size":"3"},{"price":"0.50","size":"1"}]',
            (42, 45),
        ),
        ("[]", "[]", (-1, 101)),
    ],
)
def test_snapshot_fast_path_finds_the_best_levels(
    bids: str, asks: str, best: tuple[int, int]
) -> None:
    reg = BookRegistry()
    dec = market_decoder()
    first = '{"event_type":"book","asset_id":"a","tick_size":"0.01","bids":[],"asks":[]}'
    frame = f'{{"event_type":"book","asset_id":"a","bids":{bids},"asks":{asks}}}'
    for f in (first, frame):
        for ev in dec.decode(f):
            reg.apply(ev, 1)
    b = reg.books["a"]
    ref = L2Book("r", CENT)
    ref.load(b.bid_levels(), b.ask_levels())
    assert (b.best_bid, b.best_ask) == best == (ref.best_bid, ref.best_ask)
    assert (b.n_bids, b.n_asks) == (ref.n_bids, ref.n_asks)


@pytest.mark.parametrize("price", ["1.5", "100000000000000000000", "0.5"])
def test_a_snapshot_level_above_one_dollar_is_malformed_not_raised(price: str) -> None:
    """Found by the fuzzer on the compiled build: a snapshot level far above $1 reached the
    tick array, where a Python list raises IndexError but compiled code OverflowError."""
    reg = BookRegistry()
    frame = (
        '{"event_type":"book","asset_id":"9","market":"0xm","tick_size":"0.01",'
        f'"bids":[{{"price":"0.4","size":"5"}}],"asks":[{{"price":"{price}","size":"7"}}]}}'
    )
    for ev in market_decoder().decode(frame):
        reg.apply(ev, 1)
    b = reg.books["9"]
    if price == "0.5":
        assert reg.stats.malformed == 0 and b.ask_levels() == [(50, 7_000_000)]
    else:
        assert reg.stats.malformed == 1 and b.needs_snapshot and b.ask_levels() == []

"""Every real recorded venue message decodes into polylab's wire types."""

import json
from pathlib import Path

import msgspec
import pytest
from fixture_data import capture_frames, v2_session_frames

from polylab.feed.decode import market_decoder, user_decoder
from polylab.feed.wire import (
    BestBidAsk,
    Book,
    LastTradePrice,
    NewMarket,
    PriceChange,
    TickSizeChange,
    UserOrder,
    UserTrade,
)

NT = "polymarket/nautilus_trader"


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("ws_market_book_2024-10.json", Book),
        ("ws_market_price_change_legacy_single_2024-08.json", PriceChange),
        ("ws_market_tick_size_change_2025-02.json", TickSizeChange),
        ("ws_market_last_trade_price_2024-08.json", LastTradePrice),
        ("ws_market_best_bid_ask_2025-12.json", BestBidAsk),
        ("ws_market_new_market_2025-12.json", NewMarket),
    ],
)
def test_market_fixture_decodes(shared_fixtures: Path, name: str, kind: type) -> None:
    dec = market_decoder()
    evs = dec.decode((shared_fixtures / NT / name).read_text())
    assert len(evs) == 1 and type(evs[0]) is kind
    assert dec.stats.malformed == 0 and dec.stats.unknown == 0


@pytest.mark.parametrize(
    ("name", "kind", "status"),
    [
        ("ws_user_order_placement_2024-09.json", UserOrder, "LIVE"),
        ("ws_user_order_cancellation_2024-09.json", UserOrder, "CANCELED"),
        ("ws_user_trade_matched_taker_2024-09.json", UserTrade, "MATCHED"),
        ("ws_user_trade_mined_maker_2024-09.json", UserTrade, "MINED"),
    ],
)
def test_user_fixture_decodes(shared_fixtures: Path, name: str, kind: type, status: str) -> None:
    dec = user_decoder()
    (ev,) = dec.decode((shared_fixtures / NT / name).read_text())
    assert type(ev) is kind and ev.status == status


def test_mined_maker_trade_lists_complementary_maker_orders(shared_fixtures: Path) -> None:
    (ev,) = user_decoder().decode(
        (shared_fixtures / NT / "ws_user_trade_mined_maker_2024-09.json").read_text()
    )
    assert isinstance(ev, UserTrade)
    outcomes = {m.outcome for m in ev.maker_orders}
    assert len(ev.maker_orders) == 6 and outcomes == {"Yes", "No"}


def test_every_frame_of_the_multi_market_capture_decodes(shared_fixtures: Path) -> None:
    dec = market_decoder()
    kinds: dict[str, int] = {}
    for _, payload in capture_frames(shared_fixtures):
        for ev in dec.decode(payload):
            kinds[type(ev).__name__] = kinds.get(type(ev).__name__, 0) + 1
    assert kinds == {"Book": 28, "PriceChange": 51, "BestBidAsk": 58}
    assert dec.stats.frames == 110 and dec.stats.malformed == 0


def test_v2_session_book_array_pongs_and_new_market_with_fee_schedule(
    shared_fixtures: Path,
) -> None:
    dec = market_decoder()
    out = [ev for f in v2_session_frames(shared_fixtures) for ev in dec.decode(f)]
    books = [e for e in out if isinstance(e, Book)]
    news = [e for e in out if isinstance(e, NewMarket)]
    assert len(books) == 1 and books[0].version == "v2" and books[0].bids == []
    assert len(books[0].asset_id) == 75
    assert dec.stats.pongs == 5
    assert news[0].fee_schedule is not None and news[0].fee_schedule.rate == "0.04"


def test_polypy_capture_with_integer_timestamps_decodes(shared_fixtures: Path) -> None:
    dec = market_decoder()
    lines = (
        (shared_fixtures / "polymarket/polypy/ws_price_change_and_rest_book_hash_2025-10.txt")
        .read_text()
        .splitlines()
    )
    evs = [e for ln in lines if ln.startswith("{") and "event_type" in ln for e in dec.decode(ln)]
    assert [type(e).__name__ for e in evs] == ["Book", "PriceChange", "PriceChange"]
    assert isinstance(evs[1], PriceChange) and evs[1].timestamp == 1761179949036


def test_rest_book_fixtures_decode_as_books(shared_fixtures: Path) -> None:
    for name in (
        f"{NT}/rest_book_2024-10.json",
        "polymarket/polymarket-bot-v2/rest_book_v1_btc15m_2026-10-05.json",
    ):
        raw = json.loads((shared_fixtures / name).read_text())
        book = msgspec.convert({**raw, "event_type": "book"}, Book)
        assert book.bids and book.asks

import json
from pathlib import Path

from polylab.book.hash import book_hash


def test_book_hash_matches_a_2026_rest_book(shared_fixtures: Path) -> None:
    raw = json.loads(
        (
            shared_fixtures / "polymarket/polymarket-bot-v2/rest_book_v1_btc15m_2026-10-05.json"
        ).read_text()
    )
    assert book_hash(raw) == raw["hash"] == "d796068a0a4a7c05d139b2f5d683414249ba941d"
    raw["bids"] = raw["bids"][1:]
    assert book_hash(raw) != raw["hash"]


def test_price_change_hash_equals_the_rest_book_hash_2025(shared_fixtures: Path) -> None:
    lines = (
        (shared_fixtures / "polymarket/polypy/ws_price_change_and_rest_book_hash_2025-10.txt")
        .read_text()
        .splitlines()
    )
    rest = [json.loads(ln) for ln in lines if ln.startswith('{"market"')]
    changes = [json.loads(ln) for ln in lines if ln.startswith('{"event_type":"price_change"')]
    assert len(rest) == 2
    for book, pc in zip(rest, changes, strict=True):
        stated = {e["hash"] for e in pc["price_changes"] if e["asset_id"] == book["asset_id"]}
        assert book_hash(book) == book["hash"] and stated == {book["hash"]}

"""Bad frames are counted, never raised; good events next to them survive."""

from polylab.feed.decode import market_decoder
from polylab.feed.wire import Book, PriceChange

GOOD = (
    '{"event_type":"price_change","market":"0xm","timestamp":"1","price_changes":'
    '[{"asset_id":"1","price":"0.5","size":"10","side":"BUY"}]}'
)


def test_malformed_frames_are_counted_not_raised() -> None:
    dec = market_decoder()
    for bad in [
        "{not json",
        '{"event_type": "book"}',
        "[1, 2]",
        '"text"',
        "",
        "\x00\xff",
        '{"event_type":"price_change","price_changes":[{"asset_id":1}]}',
    ]:
        assert dec.decode(bad) == []
    # one count per unusable event: the array [1, 2] holds two
    assert dec.stats.malformed == 8 and dec.stats.events == 0


def test_unknown_event_types_are_counted_and_neighbours_kept() -> None:
    dec = market_decoder()
    frame = f'[{{"event_type":"brand_new","x":1}}, {GOOD}, {{"event_type":"book","asset_id":"2"}}]'
    evs = dec.decode(frame)
    assert [type(e) for e in evs] == [PriceChange, Book]
    assert dec.stats.unknown == 1 and dec.unknown_types == {"brand_new": 1}


def test_pong_text_is_not_an_error() -> None:
    dec = market_decoder()
    assert dec.decode("PONG") == [] and dec.decode(b"PONG") == []
    assert dec.stats.pongs == 2 and dec.stats.malformed == 0


def test_array_and_object_frames_and_bytes() -> None:
    dec = market_decoder()
    assert len(dec.decode(f"[{GOOD},{GOOD}]")) == 2
    assert len(dec.decode(GOOD.encode())) == 1

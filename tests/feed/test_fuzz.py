"""Fuzzing: random and adversarial input must never raise out of the market decoder, the book
registry fed by it, or the recording reader.

The default suite runs a few thousand cases (seconds); ``test_fuzz_long`` runs ≥ 100,000 and is
deselected unless asked for: ``pytest -m fuzz_long tests/feed/test_fuzz.py``.
"""

from __future__ import annotations

import functools
import logging
import random
import tempfile
from pathlib import Path
from typing import Any

import msgspec
import pytest
import zstandard
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from polylab.book.registry import BookRegistry
from polylab.book.synthetic import SyntheticConfig, generate
from polylab.feed.decode import market_decoder
from polylab.feed.recording import Record, RecordingError, RecordingReader

TAGS = [
    "book",
    "price_change",
    "tick_size_change",
    "last_trade_price",
    "best_bid_ask",
    "new_market",
    "market_resolved",
    "brand_new",
]
ASSETS = ["1", "2", "77", ""]

# -- input generators ------------------------------------------------------------------------
_NUMBER_TEXTS = [
    "0", "0.5", "0.01", "0.001", "0.0001", "0.00001", "1", "1.5", "-0.5", "-1", "1e308",
    "1e-308", "NaN", "inf", "-0", "0x10", "99999999999999999999999999", ".5", "5.", "",
    " 0.5", "0.5\x00", "٠.٥",
]  # fmt: skip
NUMBERS = st.sampled_from(_NUMBER_TEXTS) | st.decimals(
    allow_nan=False, allow_infinity=False, places=6
).map(str)
SCALARS: st.SearchStrategy[Any] = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats()
    | st.text(max_size=12)
    | NUMBERS
)
JSON: st.SearchStrategy[Any] = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
FIELD = NUMBERS | st.sampled_from(ASSETS) | SCALARS | st.lists(SCALARS, max_size=3)


@st.composite
def levels(draw: st.DrawFn) -> Any:
    return draw(
        st.lists(st.fixed_dictionaries({"price": FIELD, "size": FIELD}) | JSON, max_size=6) | FIELD
    )


@st.composite
def event(draw: st.DrawFn) -> dict[str, Any]:
    """A market event with the right keys and adversarial values."""
    kind = draw(st.sampled_from(TAGS))
    ev: dict[str, Any] = {"market": draw(st.sampled_from(["0xm", "0xn"]) | FIELD)}
    aid = st.sampled_from(ASSETS) | FIELD
    entry = st.fixed_dictionaries(
        {
            "asset_id": aid,
            "price": FIELD,
            "size": FIELD,
            "side": st.sampled_from(["BUY", "SELL", "x"]),
        },
        optional={"best_bid": FIELD, "best_ask": FIELD, "hash": FIELD},
    )
    if kind == "book":
        ev.update(asset_id=draw(aid), bids=draw(levels()), asks=draw(levels()))
        if draw(st.booleans()):
            ev["tick_size"] = draw(FIELD)
    elif kind == "price_change":
        ev["price_changes"] = draw(st.lists(entry, max_size=5) | FIELD)
        if draw(st.booleans()):
            ev.update(asset_id=draw(aid), price=draw(FIELD), size=draw(FIELD), side=draw(FIELD))
        if draw(st.booleans()):
            ev["changes"] = draw(
                st.lists(st.fixed_dictionaries({"price": FIELD, "size": FIELD, "side": FIELD}))
            )
    elif kind == "tick_size_change":
        ev.update(asset_id=draw(aid), old_tick_size=draw(FIELD), new_tick_size=draw(FIELD))
    elif kind in ("last_trade_price", "best_bid_ask"):
        ev.update(
            asset_id=draw(aid),
            price=draw(FIELD),
            size=draw(FIELD),
            side=draw(FIELD),
            best_bid=draw(FIELD),
            best_ask=draw(FIELD),
        )
    elif kind == "new_market":
        ev.update(
            assets_ids=draw(st.lists(aid, max_size=3) | FIELD),
            outcomes=draw(st.lists(st.text(max_size=4), max_size=3) | FIELD),
            order_price_min_tick_size=draw(FIELD),
            fees_enabled=draw(st.booleans() | FIELD),
            fee_schedule=draw(
                st.fixed_dictionaries({"rate": FIELD, "exponent": FIELD}) | FIELD | st.none()
            ),
        )
    elif kind == "market_resolved":
        ev.update(winning_asset_id=draw(aid))
    ev["timestamp"] = draw(st.sampled_from(["1", "2"]) | FIELD)
    for k in draw(st.lists(st.sampled_from(sorted(ev)), max_size=2)):
        ev.pop(k, None)  # a missing field now and then
    ev["event_type"] = kind  # last, as the venue writes it (takes the fast path)
    return ev


@functools.cache
def real_frames() -> list[str]:
    """Valid frames of a small synthetic session, to mutate."""
    cfg = SyntheticConfig(seed=3, duration_s=2.0, binary_markets=2, negrisk_outcomes=3)
    return [p for _, ch, p in generate(cfg) if ch == "market"][:400]


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    """A real frame with a few byte edits (replace, insert, delete, cut)."""
    frames = real_frames()
    b = bytearray(frames[draw(st.integers(0, len(frames) - 1))].encode())
    for _ in range(draw(st.integers(1, 4))):
        i = draw(st.integers(0, max(0, len(b) - 1)))
        op = draw(st.sampled_from(["replace", "insert", "delete", "cut"]))
        if op == "replace" and b:
            b[i] = draw(st.integers(0, 255))
        elif op == "insert":
            b[i:i] = draw(st.binary(min_size=1, max_size=4) | st.sampled_from([b"[", b"{", b'"']))
        elif op == "delete" and b:
            del b[i]
        elif op == "cut":
            del b[i:]
    return bytes(b)


def nested(n: int, kind: str) -> str:
    if kind == "array":
        return "[" * n + "]" * n
    if kind == "object":
        return '{"a":' * n + "1" + "}" * n
    return '{"event_type":"book","asset_id":"1","bids":' + "[" * n + "]" * n + "}"


DEEP = st.builds(nested, st.integers(1, 50_000), st.sampled_from(["array", "object", "field"]))
ENC = msgspec.json.Encoder()


def as_frame(x: Any) -> str | bytes:
    """JSON values and events as frame text (one object, or an array of them)."""
    if isinstance(x, str | bytes):
        return x
    try:
        return ENC.encode(x).decode()
    except (msgspec.EncodeError, OverflowError, ValueError):
        return repr(x)


FRAME: st.SearchStrategy[str | bytes] = st.one_of(
    st.text(max_size=60),
    st.binary(max_size=60),
    JSON.map(as_frame),
    event().map(as_frame),
    st.lists(event(), min_size=1, max_size=4).map(as_frame),
    mutated(),
    mutated().map(lambda b: b.decode("utf-8", "replace")),
    DEEP,
    st.sampled_from(["PONG", "PING", "", " ", "null", "[]", "{}", "[null]", "\ufeff{}"]),
)


# -- a fast hand-written generator (hypothesis supplies the seed) -------------------------------
_ODD = [
    "0", "0.5", "0.01", "0.0001", "0.00001", "1", "1.01", "-1", "1e308", "NaN", "inf", "-0",
    "", " ", "0x1", "9" * 40, "٠.٥", "\x00", "\ud800", "BUY", "SELL", "book", None, True,
    0, -1, 2**64, 1.5, float("nan"), [], {}, [[]], {"a": []},
]  # fmt: skip


def rand_value(rng: random.Random, depth: int = 0) -> Any:
    """A JSON-able value: mostly odd scalars, sometimes a small container."""
    r = rng.random()
    if depth < 3 and r < 0.15:
        return [rand_value(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    if depth < 3 and r < 0.25:
        return {rng.choice(KEYS): rand_value(rng, depth + 1) for _ in range(rng.randint(0, 4))}
    if r < 0.75:
        return rng.choice(_ODD)
    if r < 0.9:
        return f"{rng.randint(0, 10**6) / 10 ** rng.randint(0, 7)}"
    return "".join(chr(rng.randint(0, 0x2FFF)) for _ in range(rng.randint(0, 6)))


KEYS = [
    "event_type", "asset_id", "market", "price", "size", "side", "bids", "asks",
    "price_changes", "changes", "tick_size", "new_tick_size", "best_bid", "best_ask",
    "timestamp", "hash", "assets_ids", "outcomes", "fee_schedule", "rate", "exponent",
    "fees_enabled", "winning_asset_id", "order_price_min_tick_size",
]  # fmt: skip


def rand_event(rng: random.Random) -> dict[str, Any]:
    """An event dict: a real tag, real keys, odd values (and odd shapes) in them."""
    ev: dict[str, Any] = {}
    for k in rng.sample(KEYS[1:], rng.randint(0, 10)):
        ev[k] = rand_value(rng)
    if rng.random() < 0.6:
        lv = [{"price": rand_value(rng), "size": rand_value(rng)} for _ in range(rng.randint(0, 5))]
        ev[rng.choice(["bids", "asks", "changes"])] = lv
    if rng.random() < 0.5:
        ev["price_changes"] = [
            {
                "asset_id": rng.choice(ASSETS),
                "price": rand_value(rng),
                "size": rand_value(rng),
                "side": rng.choice(["BUY", "SELL", "x"]),
                "best_bid": rand_value(rng),
                "best_ask": rand_value(rng),
            }
            for _ in range(rng.randint(0, 4))
        ]
    ev.setdefault("asset_id", rng.choice(ASSETS))
    ev["event_type"] = rng.choice(TAGS)
    return ev


def rand_frame(rng: random.Random) -> str | bytes:
    """One adversarial frame of a randomly chosen kind."""
    kind = rng.randrange(8)
    if kind == 0:
        return bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 40)))
    if kind == 1:
        return "".join(chr(rng.randint(0, 0x10FFF)) for _ in range(rng.randint(0, 40)))
    if kind == 2:
        return as_frame(rand_value(rng))
    if kind == 3:
        evs = [rand_event(rng) for _ in range(rng.randint(1, 3))]
        return as_frame(evs if len(evs) > 1 or rng.random() < 0.3 else evs[0])
    if kind == 4:
        return nested(rng.randint(1, 20_000), rng.choice(["array", "object", "field"]))
    frames = real_frames()
    b = bytearray(rng.choice(frames).encode())
    for _ in range(rng.randint(1, 4)):
        i = rng.randrange(len(b)) if b else 0
        op = rng.randrange(4)
        if op == 0 and b:
            b[i] = rng.getrandbits(8)
        elif op == 1:
            b[i:i] = rng.choice([b"[", b"{", b'"', b"\\", b"\xff", b"-", b"e9"])
        elif op == 2 and b:
            del b[i]
        else:
            del b[i:]
    return bytes(b) if kind == 5 else b.decode("utf-8", "replace")


# -- properties ------------------------------------------------------------------------------
def decode_and_apply(frames: list[str | bytes], verify: bool, lean: bool) -> None:
    """Frames through a decoder into a registry: nothing raises; counters stay sane."""
    dec = market_decoder(lean=lean)
    reg = BookRegistry(verify=verify)
    for f in frames:
        for ev in dec.decode(f):
            reg.apply(ev, 1)
    st_ = dec.stats
    assert st_.frames == len(frames)
    assert min(st_.events, st_.malformed, st_.unknown, st_.pongs) >= 0
    for b in reg.books.values():
        assert all(s >= 0 for _, s in b.bid_levels()) and all(s >= 0 for _, s in b.ask_levels())


def recording_bytes(kind: str, body: bytes, cut: float, flip: int) -> bytes:
    """A file: random bytes, or a real recording (plain or zstd), cut short or with a byte
    flipped."""
    if kind == "random":
        return body
    enc = msgspec.json.Encoder()
    lines = b"".join(
        enc.encode(Record(i, "market", p)) + b"\n" for i, p in enumerate(real_frames()[:60])
    )
    lines = body[: len(body) // 2] + lines + body[len(body) // 2 :]
    if kind == "zstd":
        lines = zstandard.ZstdCompressor(level=1, write_checksum=True).compress(lines)
    data = bytearray(lines[: max(0, int(len(lines) * cut))])
    if data and flip:
        data[flip % len(data)] ^= flip & 0xFF or 1
    return bytes(data)


def read_recording(data: bytes, suffix: str, path: Path) -> None:
    """Read a file of any content: either records come out or a RecordingError is raised."""
    p = path.with_suffix(suffix)
    p.write_bytes(data)
    r = RecordingReader(p, max_line_bytes=4096)
    try:
        n = sum(1 for _ in r)
    except RecordingError as exc:
        assert str(p) in str(exc) and "\n" not in str(exc)
        return
    assert n == r.records > 0 and r.malformed >= 0
    assert r.truncated == bool(r.stop_reason)


def run_all(random_n: int, decoder_n: int, registry_n: int, reader_n: int) -> None:
    """Each property with its number of hypothesis examples (cases)."""
    cfg: dict[str, Any] = {
        "deadline": None,
        "database": None,
        "suppress_health_check": list(HealthCheck),
    }
    logging.getLogger("polylab").setLevel(logging.CRITICAL)

    @settings(max_examples=random_n, **cfg)
    @given(st.randoms(use_true_random=True), st.integers(1, 4), st.booleans(), st.booleans())
    def random_frames(rng: random.Random, n: int, verify: bool, lean: bool) -> None:
        decode_and_apply([rand_frame(rng) for _ in range(n)], verify, lean)

    @settings(max_examples=decoder_n, **cfg)
    @given(FRAME, st.booleans())
    def decoder(frame: str | bytes, lean: bool) -> None:
        dec = market_decoder(lean=lean)
        out = dec.decode(frame)
        assert isinstance(out, list)
        assert dec.stats.frames == 1 and dec.stats.events == len(out)

    @settings(max_examples=registry_n, **cfg)
    @given(st.lists(FRAME, min_size=1, max_size=6), st.booleans(), st.booleans())
    def registry(frames: list[str | bytes], verify: bool, lean: bool) -> None:
        decode_and_apply(frames, verify, lean)

    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "rec"

        @settings(max_examples=reader_n, **cfg)
        @given(
            st.sampled_from(["random", "plain", "zstd"]),
            st.binary(max_size=200) | st.text(max_size=100).map(str.encode),
            st.floats(0.0, 1.0),
            st.integers(0, 10**6),
            st.sampled_from([".jsonl", ".zst"]),
        )
        def reader(kind: str, body: bytes, cut: float, flip: int, suffix: str) -> None:
            read_recording(recording_bytes(kind, body, cut, flip), suffix, path)

        reader()
    random_frames()
    decoder()
    registry()


def test_fuzz_decoder_registry_and_reader() -> None:
    """A few thousand cases: the default suite."""
    run_all(random_n=3000, decoder_n=400, registry_n=150, reader_n=300)


@pytest.mark.slow
@pytest.mark.fuzz_long
def test_fuzz_long() -> None:
    """≥ 100,000 cases (deselected by default; ``-m fuzz_long``)."""
    run_all(random_n=100_000, decoder_n=10_000, registry_n=3_000, reader_n=5_000)


def test_deep_nesting_and_huge_frames_are_malformed_not_raised() -> None:
    """The frames that used to raise ``RecursionError`` (or cost a decode of any size)."""
    dec = market_decoder(max_frame_bytes=1 << 20)
    for frame in (nested(100_000, "array"), nested(100_000, "object"), nested(5_000, "field")):
        assert dec.decode(frame) == []
        assert dec.decode(frame.encode()) == []
    assert dec.decode("[" + " " * (2 << 20) + "]") == []
    assert dec.stats.malformed == 7 and dec.stats.frames == 7


@pytest.mark.parametrize("tick", ["0.03", "-1", "1e-2", ""])
def test_a_new_market_with_an_unusable_grid_is_malformed_not_raised(tick: str) -> None:
    """Found by the fuzzer: a ``new_market`` whose tick size no grid can hold raised from the
    catalog instead of being counted."""
    frame = msgspec.json.encode(
        {
            "event_type": "new_market",
            "market": "0xabc",
            "assets_ids": ["1", "2"],
            "outcomes": ["Yes", "No"],
            "order_price_min_tick_size": tick,
            "timestamp": "1",
        }
    )
    reg = BookRegistry()
    dec = market_decoder()
    before = reg.stats.malformed
    for ev in dec.decode(frame):
        reg.apply(ev, 1)
    assert reg.stats.new_markets == 1
    if tick in ("0.03", "-1", "1e-2"):
        assert reg.stats.malformed == before + 1 and "0xabc" not in reg.catalog.markets
    else:  # no tick stated: the default grid
        assert reg.catalog.markets["0xabc"].tick_micros == 10_000

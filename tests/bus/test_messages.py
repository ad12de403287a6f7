"""Message schemas: every kind round-trips through JSON with its envelope; bad input is refused
with a message that names the problem; the factory picks the bus from REDIS_URL."""

from __future__ import annotations

import json

import pytest
from bus.helpers import samples

from polylab.bus import (
    CHANNEL_TYPES,
    CHANNELS,
    SCHEMA_VERSION,
    STATE,
    TRADES,
    InProcessBus,
    MessageError,
    RedisBus,
    bus_from_env,
    decode_message,
    encode_message,
    make_bus,
    order_status_message,
    signal_message,
)
from polylab.bus.messages import check_channel
from polylab.domain import Intent, Leg, OrderReport, OrderType, Side
from polylab.errors import ConfigError


def test_channels_are_the_seeds() -> None:
    assert CHANNELS == ("poly:state", "poly:signals", "poly:trades", "poly:errors", "poly:control")


@pytest.mark.parametrize("channel", CHANNELS)
def test_every_kind_round_trips_with_its_envelope(channel: str) -> None:
    for msg in samples(7)[channel]:
        check_channel(channel, msg)
        data = encode_message(msg)
        raw = json.loads(data)
        assert raw["schema"] == SCHEMA_VERSION
        assert raw["ts_ns"] == 7
        assert raw["type"] == type(msg).__struct_config__.tag
        assert decode_message(data) == msg
        assert decode_message(data.decode()) == msg


def test_money_fields_are_integer_micros() -> None:
    for kind in {k for kinds in CHANNEL_TYPES.values() for k in kinds}:
        for name in kind.__struct_fields__:
            if "micros" in name:
                assert kind.__annotations__[name] in ("int", int), (kind.__name__, name)


def test_wrong_channel_or_kind_is_refused() -> None:
    state = samples()[STATE][0]
    with pytest.raises(MessageError, match="poly:trades carries OrderStatusMessage"):
        check_channel(TRADES, state)
    with pytest.raises(MessageError, match="unknown bus channel 'poly:nope'"):
        check_channel("poly:nope", state)
    with pytest.raises(MessageError, match="poly:trades carries"):
        InProcessBus().publish(TRADES, state)


def test_bad_input_names_the_problem() -> None:
    with pytest.raises(MessageError, match="bad bus message"):
        decode_message(b"{not json")
    with pytest.raises(MessageError, match="bad bus message"):
        decode_message(b'{"type": "teleport", "ts_ns": 1}')
    with pytest.raises(MessageError, match="ts_ns"):
        decode_message(b'{"type": "control", "action": "resume"}')
    future = json.loads(encode_message(samples()[STATE][0]))
    future["schema"] = SCHEMA_VERSION + 1
    with pytest.raises(MessageError, match=f"schema {SCHEMA_VERSION + 1}"):
        decode_message(json.dumps(future))


def test_messages_from_domain_objects() -> None:
    legs = (
        Leg(token_id="a", side=Side.BUY, price=400_000, size=10_000_000),
        Leg(token_id="b", side=Side.BUY, price=550_000, size=10_000_000, order_type=OrderType.FAK),
    )
    intent = Intent(
        strategy="sum_to_100",
        group_id="g",
        kind="set",
        legs=legs,
        edge=300_000,
        created_ns=5,
        reason="sum 0.95",
    )
    sig = signal_message("sum_to_100-1", intent, approved=False, ts_ns=9, rule="r", reason="no")
    assert (sig.decision, sig.rule, sig.reason, sig.why) == ("rejected", "r", "no", "sum 0.95")
    assert sig.cost_micros == intent.cost == 9_500_000
    assert [(leg.price_micros, leg.order_type) for leg in sig.legs] == [
        (400_000, "FOK"),
        (550_000, "FAK"),
    ]
    assert signal_message("i", intent, approved=True, ts_ns=9).decision == "approved"
    rep = OrderReport(
        intent_id="i",
        leg=1,
        token_id="b",
        side=Side.SELL,
        limit_price=550_000,
        requested=10,
        filled=4,
        cost=2,
        fee=1,
        avg_price=500_000,
        status="partial",
        sent_ns=1,
        done_ns=2,
        order_id="o",
    )
    msg = order_status_message(rep, ts_ns=3)
    assert (msg.side, msg.status, msg.filled_micros, msg.fee_micros) == ("SELL", "partial", 4, 1)
    assert decode_message(encode_message(msg)) == msg


def test_factory_picks_the_bus_from_redis_url() -> None:
    assert isinstance(bus_from_env({}), InProcessBus)
    assert isinstance(bus_from_env({"REDIS_URL": "  "}), InProcessBus)
    bus = bus_from_env({"REDIS_URL": "redis://u:hunter2@127.0.0.1:6399/0"}, prefix="x:")
    assert isinstance(bus, RedisBus)
    assert bus.health().target == "redis://u:***@127.0.0.1:6399/0"
    assert isinstance(make_bus(None), InProcessBus)
    with pytest.raises(ConfigError, match="REDIS_URL must start with") as err:
        make_bus("http://u:hunter2@host:1")
    assert "hunter2" not in str(err.value)


def _readme_bus_section() -> str:
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    start = text.index("\n## The bus\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end > 0 else None]


def _fields(kind: type) -> set[str]:
    """The names of ``kind``'s fields and of the Structs nested in them (one level of tuples)."""
    import typing

    import msgspec

    out: set[str] = set()
    for f in msgspec.structs.fields(kind):
        out.add(f.encode_name)
        for arg in (f.type, *typing.get_args(f.type)):
            if isinstance(arg, type) and issubclass(arg, msgspec.Struct):
                out |= _fields(arg)
    return out


def test_readme_documents_every_message_kind_its_channel_and_every_field() -> None:
    """The issue: "each message is JSON with a ``schema`` version; the schemas are documented
    in the README": every kind a channel carries (the ``config`` hot-reload message too) is
    in the channel table on its channel's row and has a bullet naming each of its fields."""
    import msgspec

    doc = _readme_bus_section()
    rows = {line.split("|")[1].strip(" `"): line for line in doc.splitlines() if "| `poly:" in line}
    assert set(rows) == set(CHANNELS)
    for channel, kinds in CHANNEL_TYPES.items():
        for kind in kinds:
            tag = msgspec.inspect.type_info(kind).tag  # type: ignore[attr-defined]
            assert f"`{tag}`" in rows[channel], (channel, tag)
            bullet = next((b for b in doc.split("\n- ") if b.startswith(f"`{tag}`:")), None)
            if bullet is None:  # `rejection` shares the `error` bullet
                bullet = next(b for b in doc.split("\n- ") if f"; `{tag}`:" in b)
                bullet = bullet[bullet.index(f"`{tag}`:") :]
            missing = {f for f in _fields(kind) - {"ts_ns", "schema"} if f"`{f}`" not in bullet}
            assert not missing, (tag, sorted(missing))
    assert f"`schema` (version, now {SCHEMA_VERSION})" in doc and "`ts_ns`" in doc

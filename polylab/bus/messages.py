"""What travels on the bus: channel names and one msgspec Struct per message kind.

Every message is one JSON object with an envelope and its payload side by side::

    {"type": "fill", "schema": 1, "ts_ns": 1764353000123456789, "fill_id": "…", …}

``type`` names the kind (the tag of a msgspec tagged union, so one decoder reads any channel),
``schema`` is the version of these Structs (``SCHEMA_VERSION``; a consumer refuses other
versions with a clear error), ``ts_ns`` is when the publisher made the message (ns since the
epoch). Units travel in the field names: money in ``_micros`` (cash micro-dollars, 1_000_000 =
$1), prices in price micros per share, sizes in share micros, durations in ``_us`` / ``_ms``,
times in ``_ns`` since the epoch.

Channels (``CHANNEL_TYPES`` says which kinds each one carries):

- ``poly:state``   ``StateMessage``, a snapshot every 100 ms;
- ``poly:signals`` ``SignalMessage``, each intent with its risk decision, and
  ``ConfigMessage``, each hot reload of the runner's configuration (in order with them);
- ``poly:trades``  ``OrderStatusMessage`` and ``FillMessage``;
- ``poly:errors``  ``ErrorMessage`` and ``RejectionMessage``;
- ``poly:control`` ``ControlMessage``, inbound (kill switch, resume, config reload).

Signals, trades and errors also go to Redis Streams (``STREAMS``) for consumers that must not
miss any; state and control are pub/sub only.
"""

from __future__ import annotations

from typing import Final, Literal

import msgspec

from polylab.domain import Intent, OrderReport

__all__ = [
    "CHANNELS",
    "CHANNEL_TYPES",
    "CONTROL",
    "ERRORS",
    "SCHEMA_VERSION",
    "SIGNALS",
    "STATE",
    "STREAMS",
    "TRADES",
    "BusMessage",
    "ConfigMessage",
    "ControlMessage",
    "ErrorMessage",
    "FeedHealth",
    "FillMessage",
    "Message",
    "MessageError",
    "OpenOrder",
    "OrderStatusMessage",
    "PositionView",
    "RejectionMessage",
    "SignalLeg",
    "SignalMessage",
    "StateMessage",
    "check_channel",
    "decode_message",
    "encode_message",
    "order_status_message",
    "signal_message",
]

SCHEMA_VERSION: Final = 1
"""Version of every Struct below; bump it when a field changes meaning or disappears."""

STATE: Final = "poly:state"
SIGNALS: Final = "poly:signals"
TRADES: Final = "poly:trades"
ERRORS: Final = "poly:errors"
CONTROL: Final = "poly:control"
CHANNELS: Final = (STATE, SIGNALS, TRADES, ERRORS, CONTROL)
STREAMS: Final[dict[str, str]] = {
    SIGNALS: "poly:stream:signals",
    TRADES: "poly:stream:trades",
    ERRORS: "poly:stream:errors",
}
"""The lossless channels and the Redis Stream (``XADD … MAXLEN ~ N``) each one also goes to."""


class MessageError(ValueError):
    """A message that cannot be published or read: unknown channel, wrong kind, bad JSON."""


class BusMessage(msgspec.Struct, frozen=True, kw_only=True, tag_field="type", gc=False):
    """The envelope every message shares. ``ts_ns``: made at, ns since the epoch."""

    ts_ns: int
    schema: int = SCHEMA_VERSION


class FeedHealth(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """One market-feed shard (connection), e.g. "market-1". ``last_msg_age_ms``: since its
    last frame (ms; -1: none yet); ``reconnects``: of this connection; ``stale_books``: its
    books waiting for a snapshot."""

    shard: str
    connected: bool
    last_msg_age_ms: int
    reconnects: int = 0
    stale_books: int = 0


class PositionView(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """One token held: ``size_micros`` shares (signed), ``cost_micros`` paid for them,
    ``mark_price_micros`` the price they are valued at, ``unrealized_micros`` mark − cost."""

    token_id: str
    size_micros: int
    cost_micros: int
    mark_price_micros: int = 0
    unrealized_micros: int = 0


class OpenOrder(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """An order resting or in flight: limit in price micros, sizes in share micros. The
    runner lists its executor's orders not final yet by the venue's ``order_id`` (paper:
    ``paper-<seq>-<leg>``; live: the signed order's hash); a leg whose id is not known yet
    (live, before signing; an executor without ``open_orders``) is ``<intent_id>/<leg>``."""

    order_id: str
    intent_id: str
    token_id: str
    side: str
    price_micros: int
    size_micros: int
    filled_micros: int = 0


class StateMessage(BusMessage, frozen=True, kw_only=True, tag="state", gc=False):
    """``poly:state``: the runner's snapshot, every 100 ms.

    ``mode``: "paper" | "live" | "dry_run" | "backtest"; ``uptime_ms``: since start;
    ``feeds``: one entry per market-feed shard; ``stale_books``: books without a fresh update;
    ``cash_micros``: collateral held; ``realized_pnl_micros`` / ``unrealized_pnl_micros``: PnL
    (signed, fees included); ``daily_pnl_micros``: realized during the UTC day plus unrealized;
    ``loss_headroom_micros``: daily loss still allowed before the risk gate's daily-loss rule
    stops trading (in-flight worst cases counted); ``open_orders_headroom``: orders still
    allowed; ``kill_switch``: trading halted; ``tick_to_order_p50_us`` / ``_p99_us``:
    latency percentiles (µs); ``counters``: named counts (frames, intents, fills, bus drops…);
    ``config_id``: the configuration trading now (changes on a hot reload; "" = not told).
    """

    mode: str
    uptime_ms: int
    feeds: tuple[FeedHealth, ...] = ()
    stale_books: int = 0
    positions: tuple[PositionView, ...] = ()
    cash_micros: int = 0
    realized_pnl_micros: int = 0
    unrealized_pnl_micros: int = 0
    daily_pnl_micros: int = 0
    loss_headroom_micros: int = 0
    open_orders_headroom: int = 0
    open_orders: tuple[OpenOrder, ...] = ()
    kill_switch: bool = False
    tick_to_order_p50_us: int = 0
    tick_to_order_p99_us: int = 0
    counters: dict[str, int] = {}
    config_id: str = ""


class SignalLeg(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """One leg of a signalled intent: limit in price micros, size in share micros."""

    token_id: str
    side: str
    price_micros: int
    size_micros: int
    order_type: str


class SignalMessage(BusMessage, frozen=True, kw_only=True, tag="signal", gc=False):
    """``poly:signals``: an intent and the risk gate's decision on it.

    ``decision``: "approved" | "rejected"; ``rule``: the rule that refused it ("" if
    approved); ``reason``: the rule's explanation; ``why``: the strategy's own reason for the
    intent; ``edge_micros``: expected profit, fees included; ``cost_micros``: worst-case
    cash out of the BUY legs; ``created_ns``: when the strategy made it.
    """

    intent_id: str
    strategy: str
    group_id: str
    kind: str
    legs: tuple[SignalLeg, ...]
    edge_micros: int
    cost_micros: int
    created_ns: int
    decision: Literal["approved", "rejected"]
    rule: str = ""
    reason: str = ""
    why: str = ""


class ConfigMessage(BusMessage, frozen=True, kw_only=True, tag="config", gc=False):
    """``poly:signals``: the runner swapped its configuration between two events (hot reload).

    ``old_id`` / ``new_id``: config ids (SHA-256 of the canonical config JSON); ``by`` /
    ``reason``: who asked and why (the promotion's, or the control message's); ``origin``:
    "promoted" (a ``reload_config`` for the promoted config), "ledger" (the runner's ledger
    poll saw a new promoted config) or the file a ``reload_config`` named; ``intents_before``:
    intents the engine had made before the swap (later intents are the new config's: their
    ids number above it); ``changed``: the parameters that changed ("section.field");
    ``restart_needed``: changed sections a running session does not swap (engine, paper,
    live, analysis: they take effect at the next start).
    """

    old_id: str
    new_id: str
    by: str = ""
    reason: str = ""
    origin: str = ""
    intents_before: int = 0
    changed: tuple[str, ...] = ()
    restart_needed: tuple[str, ...] = ()


class OrderStatusMessage(BusMessage, frozen=True, kw_only=True, tag="order", gc=False):
    """``poly:trades``: an order's status.

    ``status``: the domain's final statuses (filled, partial, unfilled, rejected, timeout,
    dry_run) or, for live orders, "submitted" | "open" | "cancelled"; ``limit_price_micros``;
    ``requested_micros`` / ``filled_micros``: shares; ``cost_micros``: cash paid (BUY) or
    received (SELL), fees excluded; ``fee_micros``; ``avg_price_micros``: cost / filled;
    ``sent_ns`` / ``done_ns``: sent and final (0 while open).
    """

    intent_id: str
    leg: int
    order_id: str
    token_id: str
    side: str
    status: str
    limit_price_micros: int
    requested_micros: int
    filled_micros: int
    cost_micros: int = 0
    fee_micros: int = 0
    avg_price_micros: int = 0
    sent_ns: int = 0
    done_ns: int = 0
    reason: str = ""


class FillMessage(BusMessage, frozen=True, kw_only=True, tag="fill", gc=False):
    """``poly:trades``: one fill as booked (published after the ledger committed it).

    ``fill_id``: unique per fill (the ledger's key; consumers dedupe on it);
    ``size_micros``: shares; ``price_micros``: average price; ``cost_micros``: cash paid (BUY)
    or received (SELL), fees excluded; ``fee_micros``; ``cash_delta_micros``: change in cash
    (signed); ``realized_micros``: PnL this fill realized; ``position_after_micros``: shares
    held afterwards; ``unwind``: an order that undid leg risk.
    """

    fill_id: str
    intent_id: str
    strategy: str
    order_id: str
    token_id: str
    side: str
    size_micros: int
    price_micros: int
    cost_micros: int
    fee_micros: int
    cash_delta_micros: int = 0
    realized_micros: int = 0
    position_after_micros: int = 0
    unwind: bool = False


class ErrorMessage(BusMessage, frozen=True, kw_only=True, tag="error", gc=False):
    """``poly:errors``: something went wrong. ``source``: component ("feed", a strategy's
    name, "executor", "ledger", "bus"…); ``error``: class name; ``message``: one line, no
    secret; ``fatal``: the runner stops because of it."""

    source: str
    error: str
    message: str
    fatal: bool = False


class RejectionMessage(BusMessage, frozen=True, kw_only=True, tag="rejection", gc=False):
    """``poly:errors``: an intent or order refused. ``by``: "risk" (the gate: ``rule`` names
    the limit) or "venue" (the exchange: ``rule`` is its error code)."""

    intent_id: str
    strategy: str
    group_id: str
    by: Literal["risk", "venue"]
    rule: str
    reason: str


class ControlMessage(BusMessage, frozen=True, kw_only=True, tag="control", gc=False):
    """``poly:control`` (inbound): an operator's command to the runner.

    ``action``: "kill_switch" (stop trading, cancel open orders), "resume" (trade again) or
    "reload_config" (``config_path`` names the file, "" for the promoted configuration);
    ``by``: who sent it; ``reason``: why (goes into the ledger and the alert).
    """

    action: Literal["kill_switch", "resume", "reload_config"]
    by: str = ""
    reason: str = ""
    config_path: str = ""


Message = (
    StateMessage
    | SignalMessage
    | ConfigMessage
    | OrderStatusMessage
    | FillMessage
    | ErrorMessage
    | RejectionMessage
    | ControlMessage
)

CHANNEL_TYPES: Final[dict[str, tuple[type[BusMessage], ...]]] = {
    STATE: (StateMessage,),
    SIGNALS: (SignalMessage, ConfigMessage),
    TRADES: (OrderStatusMessage, FillMessage),
    ERRORS: (ErrorMessage, RejectionMessage),
    CONTROL: (ControlMessage,),
}

_ENCODER = msgspec.json.Encoder()
_DECODER: msgspec.json.Decoder[Message] = msgspec.json.Decoder(Message)


def check_channel(channel: str, message: object) -> None:
    """Raise ``MessageError`` unless ``message`` is a kind ``channel`` carries."""
    kinds = CHANNEL_TYPES.get(channel)
    if kinds is None:
        raise MessageError(f"unknown bus channel {channel!r} (one of {', '.join(CHANNELS)})")
    if type(message) not in kinds:
        names = " | ".join(k.__name__ for k in kinds)
        raise MessageError(f"{channel} carries {names}, not {type(message).__name__}")


def encode_message(message: Message) -> bytes:
    """The message as one JSON object (bytes)."""
    return _ENCODER.encode(message)


def decode_message(data: bytes | str) -> Message:
    """Read one message of any kind; ``MessageError`` names what is wrong (bad JSON, an
    unknown ``type``, a missing field, another ``schema`` version)."""
    try:
        msg = _DECODER.decode(data)
    except msgspec.DecodeError as exc:
        raise MessageError(f"bad bus message: {exc}") from None
    if msg.schema != SCHEMA_VERSION:
        raise MessageError(f"bus message schema {msg.schema} (this reader knows {SCHEMA_VERSION})")
    return msg


def signal_message(
    intent_id: str,
    intent: Intent,
    *,
    approved: bool,
    ts_ns: int,
    rule: str = "",
    reason: str = "",
) -> SignalMessage:
    """The ``poly:signals`` message for an intent and the risk gate's decision on it."""
    legs = tuple(
        SignalLeg(
            token_id=leg.token_id,
            side=str(leg.side),
            price_micros=leg.price,
            size_micros=leg.size,
            order_type=str(leg.order_type),
        )
        for leg in intent.legs
    )
    return SignalMessage(
        ts_ns=ts_ns,
        intent_id=intent_id,
        strategy=intent.strategy,
        group_id=intent.group_id,
        kind=intent.kind,
        legs=legs,
        edge_micros=intent.edge,
        cost_micros=intent.cost,
        created_ns=intent.created_ns,
        decision="approved" if approved else "rejected",
        rule=rule,
        reason=reason,
        why=intent.reason,
    )


def order_status_message(report: OrderReport, *, ts_ns: int) -> OrderStatusMessage:
    """The ``poly:trades`` status message for one leg's final report."""
    return OrderStatusMessage(
        ts_ns=ts_ns,
        intent_id=report.intent_id,
        leg=report.leg,
        order_id=report.order_id,
        token_id=report.token_id,
        side=str(report.side),
        status=report.status,
        limit_price_micros=report.limit_price,
        requested_micros=report.requested,
        filled_micros=report.filled,
        cost_micros=report.cost,
        fee_micros=report.fee,
        avg_price_micros=report.avg_price,
        sent_ns=report.sent_ns,
        done_ns=report.done_ns,
        reason=report.reason,
    )

"""polylab.bus: where the runner publishes state, signals, trades and errors, and hears control.

``bus_from_env()`` gives an ``InProcessBus`` by default and a ``RedisBus`` when ``REDIS_URL`` is
set; both implement ``Bus``. ``messages`` holds the channel names and the message Structs (the
schemas the README documents). ``PeriodicPublisher`` publishes ``poly:state`` every 100 ms;
``polylab.bus.sink.BusSink`` is the engine's result sink onto the bus.
"""

from polylab.bus.base import Bus, BusHealth, StreamEntry, Subscription
from polylab.bus.factory import bus_from_env, make_bus
from polylab.bus.inprocess import InProcessBus
from polylab.bus.messages import (
    CHANNEL_TYPES,
    CHANNELS,
    CONTROL,
    ERRORS,
    SCHEMA_VERSION,
    SIGNALS,
    STATE,
    STREAMS,
    TRADES,
    ConfigMessage,
    ControlMessage,
    ErrorMessage,
    FeedHealth,
    FillMessage,
    Message,
    MessageError,
    OpenOrder,
    OrderStatusMessage,
    PositionView,
    RejectionMessage,
    SignalLeg,
    SignalMessage,
    StateMessage,
    decode_message,
    encode_message,
    order_status_message,
    signal_message,
)
from polylab.bus.periodic import PeriodicPublisher
from polylab.bus.redis_bus import BusUnavailable, RedisBus

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
    "Bus",
    "BusHealth",
    "BusUnavailable",
    "ConfigMessage",
    "ControlMessage",
    "ErrorMessage",
    "FeedHealth",
    "FillMessage",
    "InProcessBus",
    "Message",
    "MessageError",
    "OpenOrder",
    "OrderStatusMessage",
    "PeriodicPublisher",
    "PositionView",
    "RedisBus",
    "RejectionMessage",
    "SignalLeg",
    "SignalMessage",
    "StateMessage",
    "StreamEntry",
    "Subscription",
    "bus_from_env",
    "decode_message",
    "encode_message",
    "make_bus",
    "order_status_message",
    "signal_message",
]

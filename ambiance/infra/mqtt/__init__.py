"""The one MQTT connection of the service (paho-mqtt 2, MQTT 5): see connection.py.

Everything callers use is importable from here: `MqttConnection` and its `MqttSettings`,
the `Message` handlers get, `encode_payload` and `decode_json`, the status values and the
limits.
"""

from ambiance.infra.mqtt.client import OFFLINE, ONLINE
from ambiance.infra.mqtt.connection import (
    MAX_PACKET,
    STOP_TIMEOUT,
    Listener,
    MqttConnection,
)
from ambiance.infra.mqtt.message import (
    MAX_PAYLOAD,
    Handler,
    Message,
    Payload,
    decode_json,
    encode_payload,
)
from ambiance.infra.mqtt.outbox import MAX_IN_FLIGHT, MAX_QUEUED
from ambiance.infra.mqtt.settings import MqttSettings

__all__ = [
    "MAX_IN_FLIGHT",
    "MAX_PACKET",
    "MAX_PAYLOAD",
    "MAX_QUEUED",
    "OFFLINE",
    "ONLINE",
    "STOP_TIMEOUT",
    "Handler",
    "Listener",
    "Message",
    "MqttConnection",
    "MqttSettings",
    "Payload",
    "decode_json",
    "encode_payload",
]

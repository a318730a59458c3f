"""Messages as handlers see them, and payloads as they go out."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from paho.mqtt.properties import Properties

from ambiance.errors import InvalidInput

# A handler never sees a payload bigger than this: larger ones are dropped with a warning.
MAX_PAYLOAD = 64 * 1024

Payload = str | bytes | dict[str, Any] | list[Any] | None


@dataclass(frozen=True)
class Message:
    """A message as handlers see it."""

    topic: str
    payload: bytes
    retain: bool
    qos: int
    # Over MAX_PAYLOAD: the payload is left out (b"") and only handlers that asked for
    # oversized messages see it, so that a door can say "too large" to the sender.
    oversized: int | None = None  # the size in bytes, when oversized

    @property
    def text(self) -> str:
        """The payload as text (undecodable bytes replaced)."""
        return self.payload.decode("utf-8", errors="replace")

    def json(self, what: str = "payload") -> Any:
        """The payload as JSON; raises InvalidInput saying what is wrong with it."""
        return decode_json(self.payload, what)


Handler = Callable[[Message], None]


def decode_json(payload: bytes | str, what: str = "payload") -> Any:
    """Decode JSON from MQTT: every JSON payload we read goes through here, so that bad
    input is one error of ours (InvalidInput, with a message that does not grow with the
    input) and never a library's exception or a traceback."""
    try:
        return json.loads(payload)
    except RecursionError:  # the decoder's own stack: `[[[[...` a hundred thousand deep
        raise InvalidInput(f"{what} is nested too deeply") from None
    except UnicodeDecodeError:  # before ValueError, of which it is one
        raise InvalidInput(f"{what} is not UTF-8 text") from None
    except ValueError as exc:  # json's messages name a position, never quote the input
        raise InvalidInput(f"{what} is not JSON: {exc}") from None


def encode_payload(payload: Payload) -> bytes:
    """Text as UTF-8, dicts and lists as compact JSON, None as an empty payload."""
    if payload is None:
        return b""
    if isinstance(payload, bytes):
        return payload
    if isinstance(payload, str):
        return payload.encode("utf-8")
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def new_properties(packet_type: int) -> Properties:
    """Empty MQTT 5 properties for a packet of `packet_type` (a `PacketTypes` value)."""
    return Properties(packet_type)  # type: ignore[no-untyped-call]  # paho leaves it untyped

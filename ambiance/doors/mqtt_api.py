"""The MQTT door: commands in on `<base>/<room>/cmd`, state out on `<base>/<room>/state`.

A command is JSON, e.g. `{"action": "goto", "stage": "friction"}` (or a bare word for the
simple ones: `next`); the actions, their arguments and the bare words are the command
table's (ambiance/core/commands.py), read again when it changes. Anything wrong with it —
not JSON, too large, nested too deep, an unknown action, room, stage or scene, or a command
that does not fit the session — is reported on `<base>/<room>/error` and logged, and the
service carries on.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import TYPE_CHECKING, Annotated, Any, Literal, Union, cast

from pydantic import Field, TypeAdapter, ValidationError, create_model

from ambiance.core import commands
from ambiance.core.events import Event
from ambiance.devices.phones import iso
from ambiance.errors import AmbianceError, InvalidInput
from ambiance.infra.mqtt import decode_json

if TYPE_CHECKING:
    from ambiance.core.facade import Core
    from ambiance.core.room import Room
    from ambiance.infra.mqtt import Message, MqttConnection

log = logging.getLogger(__name__)

COMMAND_LIMIT = 8 * 1024  # bytes; a command is a few dozen
SHOWN = 200  # characters of a bad command echoed back in the error
STATE_EVENTS = ("session.", "stage.", "checkin.", "room.", "device.health")
HEALTH_ANSWER = (
    "one of today's answers is not valid (neither which one nor what was sent is repeated "
    "here): each is true, false or null, a 'where' answer may be a list of body areas (ids "
    "or plain names: GET /api/v1/areas), and no other field is taken"
)


class CommandMessage(commands.Arguments):
    """What every command message has besides its arguments."""

    action: str
    id: str | None = Field(default=None, max_length=64, description="Echoed in errors.")


def _message_model(command: commands.Command[Any]) -> type[CommandMessage]:
    """The command's arguments with `action` (its name, the union's tag) and `id`."""
    return create_model(
        f"{command.name}_message",
        __base__=(command.args, CommandMessage),
        action=(cast(Any, Literal)[command.name], ...),
    )


class _Parser:
    """The discriminated union of the table's commands, made again when the table changes."""

    def __init__(self) -> None:
        self._table: tuple[commands.Command[Any], ...] = ()
        self._adapter: TypeAdapter[CommandMessage] | None = None

    def adapter(self) -> TypeAdapter[CommandMessage]:
        table = commands.table()
        if self._adapter is None or table is not self._table:
            models = tuple(_message_model(command) for command in table)
            union: Any = Annotated[cast(Any, Union)[models], Field(discriminator="action")]
            self._adapter = TypeAdapter(union)
            self._table = table
        return self._adapter


_parser = _Parser()


def _unknown_action() -> str:
    return f"unknown action; known: {', '.join(commands.names())}"


def parse_command(payload: bytes) -> CommandMessage:
    """Parse one command; raise InvalidInput saying what is wrong."""
    if len(payload) > COMMAND_LIMIT:
        raise InvalidInput(
            f"command too large: {len(payload)} bytes (the limit is {COMMAND_LIMIT})"
        )
    try:
        text = payload.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise InvalidInput("command is not UTF-8 text") from None
    bare = commands.get(text)
    if bare is not None and bare.takes_bare_word:
        data: Any = {"action": text}
    else:
        data = decode_json(text, "command")
    if not isinstance(data, dict):
        raise InvalidInput('command must be a JSON object like {"action": "next"}')
    try:
        return _parser.adapter().validate_python(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"][1:] or first["loc"])
        message = str(first["msg"])
        if first["type"] == "union_tag_invalid":
            message = _unknown_action()
        elif first["type"] == "union_tag_not_found":
            message = "the command needs an `action`"
        elif first["loc"][:1] == ("today",) or first["loc"][1:2] == ("today",):
            raise InvalidInput(_health_error(first)) from None
        raise InvalidInput(f"{where}: {message}" if where else message) from None
    except RecursionError:
        raise InvalidInput("command is nested too deeply") from None


def _health_error(first: Any) -> str:
    """An error in today's answers, in words that repeat nothing that was sent: neither a
    value ("'sore knee' is not a body area") nor which question it was about, since the
    error topic and the log are read by others than the asker."""
    loc = [str(p) for p in first["loc"][1:]]
    if loc[:1] == ["today"]:
        loc = loc[1:]  # spa mode's `today`: the answers are inside it
    if not loc or loc[0] == "id":
        return f"{'.'.join(str(p) for p in first['loc'][1:])}: {first['msg']}"  # no answer
    return HEALTH_ANSWER


def _id_of(payload: bytes) -> str | None:
    """The `id` of a command that did not parse, when it is there and fits; else None."""
    if len(payload) > COMMAND_LIMIT:
        return None
    try:
        data = decode_json(payload)
    except InvalidInput:
        return None
    found = data.get("id") if isinstance(data, dict) else None
    return found if isinstance(found, str) and len(found) <= 64 else None


def _without_health(payload: bytes) -> bytes:
    """The command to echo in an error, with today's health answers left out: they stay
    on this machine, and the error topic is read by anyone on the broker."""
    if b"today" not in payload:
        return payload
    hidden = b"(not repeated: it may hold health answers)"
    if len(payload) > COMMAND_LIMIT:
        return hidden
    try:
        data = decode_json(payload)
    except InvalidInput:
        return hidden
    if not isinstance(data, dict):
        return payload
    if data.get("action") == "today":  # its arguments are today's answers: not even which
        kept = {k: v for k, v in data.items() if k in ("action", "id")}
        return json.dumps({**kept, "today": "(left out)"}).encode()
    shown = {k: ("(left out)" if k == "today" else v) for k, v in data.items()}
    return json.dumps(shown).encode()


def run_command(room: Room, message: CommandMessage) -> None:
    """Carry out a parsed command on a room (raises NotFound, Conflict, InvalidInput)."""
    command = commands.get(message.action)
    if command is None:  # taken out of the table since it was parsed
        raise InvalidInput(_unknown_action())
    command.run(room, message)  # the message is an instance of the command's arguments


class MqttApi:
    """Subscribes to every room's commands and publishes every room's state."""

    def __init__(self, core: Core, mqtt: MqttConnection) -> None:
        self.core = core
        self.mqtt = mqtt
        self._unsubscribers: list[Any] = []
        self._dirty: set[str] = set()
        self._flush_scheduled = False

    async def start(self) -> None:
        if not self.mqtt.enabled:
            return
        self._unsubscribers = [
            self.mqtt.subscribe(self.mqtt.topic("+", "cmd"), self._on_command, oversized=True),
            self.core.bus.subscribe(self._on_event),
            self.mqtt.on_connect(self._publish_all),
        ]
        self._publish_all()

    async def stop(self) -> None:
        for unsubscribe in self._unsubscribers:
            unsubscribe()
        self._unsubscribers = []

    # --- commands ---------------------------------------------------------------------

    def _on_command(self, message: Message) -> None:
        room_name = message.topic.split("/")[-2]
        command_id: str | None = None
        try:
            if message.oversized is not None:
                raise InvalidInput(
                    f"command too large: {message.oversized} bytes (the limit is {COMMAND_LIMIT})"
                )
            command = parse_command(message.payload)
            command_id = command.id
            run_command(self.core.room(room_name), command)
        except AmbianceError as exc:
            if command_id is None:  # it did not parse: echo its id if one can be read
                command_id = _id_of(message.payload)
            self._report(room_name, exc.code, exc.message, message.payload, command_id)
        except Exception:  # a bug must not take the door down
            log.exception("%s: command failed", room_name)
            self._report(room_name, "internal_error", "the command failed", message.payload, None)

    def _report(
        self, room: str, code: str, text: str, payload: bytes, command_id: str | None
    ) -> None:
        # Not only bad input: a sound command whose change could not be saved (a full disk)
        # or a device that is down is reported here too, so the log says what it was.
        log.warning("%s: MQTT command not done (%s): %s", room, code, text)
        shown = _without_health(payload)[:SHOWN].decode("utf-8", errors="replace")
        self.mqtt.publish(
            self.mqtt.topic(room, "error"),
            {
                "error": {"code": code, "message": text},
                "room": room,
                "command": shown,
                "id": command_id,
                "at": iso(self.core.clock.now()),
            },
            qos=1,
        )

    # --- state ------------------------------------------------------------------------

    def _on_event(self, event: Event) -> None:
        if not event.kind.startswith(STATE_EVENTS) or event.room not in self.core.rooms:
            return
        # Several events from one command (stage.changed, then the lights) go out as one
        # message, after the command has finished changing the room.
        self._dirty.add(event.room)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        dirty, self._dirty = self._dirty, set()
        for name in sorted(dirty):
            self._publish_state(self.core.rooms[name])

    def _publish_all(self) -> None:
        for room in self.core.rooms.values():
            self._publish_state(room)

    def _publish_state(self, room: Room) -> None:
        self.mqtt.publish(
            self.mqtt.topic(room.name, "state"),
            room.state_message().model_dump(mode="json"),
            qos=1,
            retain=True,
        )

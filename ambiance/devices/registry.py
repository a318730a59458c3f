"""Backends plug in here: each declares, in one place, its config model and its factory.

A backend module ends with `register(Backend(...))`: the slot it fills (`lights`,
`music`, or one `distraction`), the name its config is tagged with (`backend: hue`,
`type: tasmota`), its pydantic config model, whether it needs the MQTT broker, and a
factory that builds the device from its config and a `BuildContext`. The settings
validate a room's `lights:`, `music:` and `distractions:` through the registry (errors
name the field, as everywhere), and the service builds every room's devices through it;
neither names a backend. A test, or a plug-in, registers a backend of its own the same
way, and `register()` returns the function that takes it out again.

Clients that several rooms share (a Hue bridge, the MQTT connection) come from
`SharedClients`: made once by key, started before the rooms and stopped after them.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, Literal, Protocol, TypeVar

from pydantic import BaseModel, ConfigDict
from pydantic_core import PydanticCustomError

from ambiance.errors import brief

if TYPE_CHECKING:
    from ambiance.infra.clock import Clock
    from ambiance.infra.metrics import Metrics
    from ambiance.infra.mqtt import MqttConnection

Slot = Literal["lights", "music", "distraction"]

# The modules of the backends that ship with ambiance: imported (so registered) the first
# time the registry is asked, which keeps the registry free of imports of its own users.
BUILTIN_MODULES = (
    "ambiance.devices.lights.virtual",
    "ambiance.devices.lights.hue.registration",
    "ambiance.devices.lights.zigbee2mqtt",
    "ambiance.devices.music.base",
    "ambiance.devices.music.mqtt",
    "ambiance.devices.music.mpd.registration",
    "ambiance.devices.distractions",
)

# The key that carries a backend's name in its config, per slot.
TAG: dict[Slot, str] = {"lights": "backend", "music": "backend", "distraction": "type"}


class BackendConfig(BaseModel):
    """The base of every backend's config: a misspelt key is an error, as everywhere."""

    model_config = ConfigDict(extra="forbid")


ConfigT = TypeVar("ConfigT", bound=BackendConfig)


class Client(Protocol):
    """A client that several rooms share: started once before them, stopped after."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


ClientT = TypeVar("ClientT", bound=Client)


class SharedClients:
    """Clients made once per key; `start()` in the order they were made, `stop()` reversed."""

    def __init__(self) -> None:
        self._clients: dict[str, Client] = {}
        self._started: list[Client] = []

    def get(self, key: str, make: Callable[[], ClientT]) -> ClientT:
        """Return the client known by `key`, made by `make()` the first time."""
        client = self._clients.get(key)
        if client is None:
            client = self._clients[key] = make()
        return client  # type: ignore[return-value]  # one key, one kind of client

    def add(self, key: str, client: Client) -> None:
        self._clients[key] = client

    async def start(self) -> None:
        for client in self._clients.values():
            if client not in self._started:
                await client.start()
                self._started.append(client)

    async def stop(self) -> None:
        while self._started:
            await self._started.pop().stop()


@dataclass(frozen=True)
class BuildContext:
    """What a factory may use to build a room's device."""

    room: str
    room_config: Any  # the room's RoomConfig (ambiance.config; typed loosely: no cycle)
    settings: Any  # the whole Settings, for clients several rooms share
    data_dir: Path
    mqtt: MqttConnection
    clock: Clock
    metrics: Metrics
    shared: SharedClients


@dataclass(frozen=True)
class Problem:
    """A config problem a backend finds in its room: `where` is relative to the room."""

    where: str
    message: str


@dataclass(frozen=True)
class Backend(Generic[ConfigT]):
    """One backend: its slot, its name, its config model and its factory."""

    slot: Slot
    name: str
    config: type[ConfigT]
    build: Callable[[ConfigT, BuildContext], Any]
    needs_broker: bool = False  # it speaks MQTT: the settings require mqtt.host
    check: Callable[[ConfigT, Any], list[Problem]] | None = None  # (config, room config)


@dataclass
class Registry:
    backends: dict[Slot, dict[str, Backend[Any]]] = field(
        default_factory=lambda: {"lights": {}, "music": {}, "distraction": {}}
    )
    _loaded: bool = False

    def register(self, backend: Backend[Any]) -> Callable[[], None]:
        """Add a backend; return the function that removes it again."""
        known = self.backends[backend.slot]
        if backend.name in known and known[backend.name] is not backend:
            raise ValueError(f"a {backend.slot} backend named {backend.name!r} is registered")
        known[backend.name] = backend

        def unregister() -> None:
            if known.get(backend.name) is backend:
                del known[backend.name]

        return unregister

    def of(self, slot: Slot) -> Mapping[str, Backend[Any]]:
        """The backends that fill `slot`, by name (the built-in ones are loaded first)."""
        if not self._loaded:
            self._loaded = True
            for module in BUILTIN_MODULES:
                importlib.import_module(module)
        return self.backends[slot]

    def backend_of(self, slot: Slot, config: BackendConfig) -> Backend[Any]:
        """The backend whose config `config` is."""
        for backend in self.of(slot).values():
            if type(config) is backend.config:
                return backend
        raise LookupError(f"no {slot} backend has the config {type(config).__name__}")

    def build(self, slot: Slot, config: BackendConfig, context: BuildContext) -> Any:
        """Build the device `config` describes (None: a backend that is "none")."""
        return self.backend_of(slot, config).build(config, context)

    def validate(self, slot: Slot, value: Any) -> BackendConfig:
        """Validate a config tagged with its backend's name; errors name the field."""
        if isinstance(value, BackendConfig):
            return value
        tag = TAG[slot]
        known = self.of(slot)
        names = ", ".join(sorted(known))
        context = {"tag": tag, "names": names}
        if not isinstance(value, dict):
            raise PydanticCustomError(
                "backend_config", "expected a mapping with `{tag}:` (one of: {names})", context
            )
        name = value.get(tag)
        if name is None:
            raise PydanticCustomError(
                "backend_missing", "`{tag}:` is missing (one of: {names})", context
            )
        backend = known.get(name) if isinstance(name, str) else None
        if backend is None:
            raise PydanticCustomError(
                "backend_unknown",
                "unknown {tag} {name} (known: {names})",
                # brief: the value may be a huge one (a list from YAML aliases, 1 MB of text)
                {**context, "name": brief(name)},
            )
        # A ValidationError raised in here keeps its locations under the field's.
        config: BackendConfig = backend.config.model_validate(value)
        return config


registry = Registry()  # the process's one registry; backends add themselves on import
register = registry.register

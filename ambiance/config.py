"""Settings: one YAML file (rooms and their devices) plus environment variables.

Precedence, highest first: values given by the caller (the CLI's flags), environment
variables (`AMBIANCE_PORT`, `AMBIANCE_ROOMS__BEDROOM__LIGHTS__BRIDGE`, ...), the YAML
file, then the defaults. The defaults alone make a working service: one room,
`bedroom`, with four virtual lights.
"""

from __future__ import annotations

import contextvars
import functools
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from ambiance.devices.phones import PhoneConfig
from ambiance.devices.registry import Backend, BackendConfig, Slot, registry
from ambiance.errors import ConfigError, brief, clip
from ambiance.infra import yamlfile
from ambiance.infra.auth import AuthSettings
from ambiance.infra.files import MiB
from ambiance.infra.mqtt import MqttSettings

ROOM_NAME = r"^[a-z0-9][a-z0-9_-]{0,63}$"
CONFIG_ENV = "AMBIANCE_CONFIG"
DEFAULT_PORT = 8321
# A config written by hand is a few KiB (twenty rooms with comments are under 50 KiB).
CONFIG_MAX_BYTES = 1 * MiB


def default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "ambiance"


def _check_room_name(name: str) -> str:
    if not re.match(ROOM_NAME, name):
        raise ValueError(f"room name {brief(name)} must be lower-case letters, digits, '-' or '_'")
    return name


RoomName = Annotated[str, AfterValidator(_check_room_name)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _backend(slot: Slot) -> Any:
    """A field holding one backend's config, validated through the registry by its tag."""
    return BeforeValidator(functools.partial(registry.validate, slot))


def _default(slot: Slot, name: str) -> Callable[[], BackendConfig]:
    tag = "type" if slot == "distraction" else "backend"
    return lambda: registry.validate(slot, {tag: name})


LightsConfig = Annotated[BackendConfig, _backend("lights")]
MusicConfig = Annotated[BackendConfig, _backend("music")]
DistractionConfig = Annotated[BackendConfig, _backend("distraction")]


class RoomConfig(_Model):
    title: str = ""
    routine: str = Field(default="classic", description="The routine spa mode runs by default.")
    lights: LightsConfig = Field(
        default_factory=_default("lights", "virtual"), description="What lights the room."
    )
    phones: list[PhoneConfig] = Field(
        default_factory=list, description="Phones put on do-not-disturb during a session."
    )
    distractions: list[DistractionConfig] = Field(
        default_factory=list, description="Things switched off during a session."
    )
    music: MusicConfig = Field(
        default_factory=_default("music", "none"), description="What plays the scenes' music."
    )

    @model_validator(mode="after")
    def _unique_names(self) -> RoomConfig:
        names = [p.name for p in self.phones]
        if len(names) != len(set(names)):
            raise ValueError("phones: each phone needs its own name")
        return self


class DevicesConfig(_Model):
    """How hard to try a device that does not answer."""

    retry_initial: float = Field(default=0.25, gt=0, le=60)
    retry_max: float = Field(
        default=1.0,
        gt=0,
        le=600,
        description="The longest wait between two attempts: a device that is back is brought"
        " to where it should be within about this long.",
    )
    poll_interval: float = Field(default=30.0, gt=0, le=3600)
    shutdown_timeout: float = Field(
        default=5.0,
        ge=0,
        le=120,
        description="How long a stop waits for the rooms to be put back before it goes.",
    )
    settle_timeout: float = Field(
        default=2.0,
        ge=0,
        le=30,
        description="How long a command waits for the lights to match before it answers "
        "anyway: enough for a bridge on the LAN, short enough that a dead one does not "
        "hang the phone.",
    )


def _default_rooms() -> dict[str, RoomConfig]:
    return {"bedroom": RoomConfig(title="Bedroom")}


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="AMBIANCE_", env_nested_delimiter="__", extra="forbid"
    )

    host: str = "127.0.0.1"
    port: int = Field(default=DEFAULT_PORT, ge=0, le=65535, description="0: any free port.")
    data_dir: Path = Field(default_factory=default_data_dir)
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["text", "json"] = Field(
        default="text", description="json: one JSON object a line (ambiance/infra/logs.py)."
    )
    scenes: list[Path] = Field(
        default_factory=list, description="Folders of your own scenes and routines."
    )
    rooms: dict[RoomName, RoomConfig] = Field(default_factory=_default_rooms, min_length=1)
    devices: DevicesConfig = Field(default_factory=DevicesConfig)
    mqtt: MqttSettings = Field(default_factory=MqttSettings)
    auth: AuthSettings = Field(default_factory=AuthSettings)

    @model_validator(mode="after")
    def _devices_have_their_way_in(self) -> Settings:
        problems = []
        for name, room in self.rooms.items():
            lights = registry.backend_of("lights", room.lights)
            uses_mqtt = (
                bool(room.phones)
                or any(
                    registry.backend_of("distraction", d).needs_broker for d in room.distractions
                )
                or registry.backend_of("music", room.music).needs_broker
            )
            if self.mqtt.host is None and uses_mqtt:
                problems.append(
                    f"rooms.{name}: phones, MQTT distractions and MQTT music need a broker: "
                    "set mqtt.host"
                )
            if self.mqtt.host is None and lights.needs_broker:
                problems.append(
                    f"rooms.{name}.lights: {lights.name} lights need a broker: set mqtt.host"
                )
            found = _checked(f"rooms.{name}.lights", lights, room.lights, room)
            for index, item in enumerate(room.distractions):
                backend = registry.backend_of("distraction", item)
                found += _checked(f"rooms.{name}.distractions.{index}", backend, item, room)
            found += _checked(
                f"rooms.{name}.music", registry.backend_of("music", room.music), room.music, room
            )
            problems += found
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _YamlSource(settings_cls))


def _checked(
    where: str, backend: Backend[Any], config: BackendConfig, room: RoomConfig
) -> list[str]:
    """A backend's own checks of its config within its room, as `where.field: message`."""
    if backend.check is None:
        return []
    return [f"{where}.{p.where}: {p.message}" for p in backend.check(config, room)]


_yaml_data: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "yaml", default=None
)


class _YamlSource(PydanticBaseSettingsSource):
    """The parsed config file, handed over by `load_settings` through a context variable."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return (_yaml_data.get() or {}).get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(_yaml_data.get() or {})


def _where(loc: tuple[int | str, ...]) -> str:
    parts: list[str] = []
    for part in loc:
        if part == "[key]":
            continue
        parts.append(clip(str(part)))  # a key from the file may be any length
    return ".".join(parts)


def config_path(explicit: Path | None = None, data_dir: Path | None = None) -> Path | None:
    """Return the config file to read: the one given, $AMBIANCE_CONFIG, or the data
    directory's config.yaml when there is one; None means the embedded default."""
    if explicit is not None:
        return explicit
    env = os.environ.get(CONFIG_ENV)
    if env:
        return Path(env)
    folder = data_dir or Path(os.environ.get("AMBIANCE_DATA_DIR") or default_data_dir())
    candidate = folder / "config.yaml"
    return candidate if candidate.is_file() else None


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Read the config file (if any) and the environment; raise ConfigError naming each field."""
    path = config_path(config_file, overrides.get("data_dir"))
    data: dict[str, Any] = {}
    if path is not None:
        try:
            loaded = yamlfile.load(path, CONFIG_MAX_BYTES, "a config file")
        except yamlfile.YamlError as exc:
            raise ConfigError([str(exc)]) from None
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise ConfigError([f"{path}: the config file must be a mapping (rooms:, port:, ...)"])
        odd = [brief(key) for key in loaded if not isinstance(key, str)]
        if odd:
            raise ConfigError(
                [
                    f"{path}: {key}: unknown top-level key (expected rooms:, port:, ...)"
                    for key in odd
                ]
            )
        data = loaded
    token = _yaml_data.set(data)
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        source = str(path) if path is not None else "settings"
        problems = []
        # Without the input: pydantic would carry (and a repr would print) the whole value.
        for error in exc.errors(include_input=False, include_url=False):
            message = str(error["msg"]).removeprefix("Value error, ")
            if error["type"] == "extra_forbidden":
                message = "unknown field (check its spelling)"
            where = _where(error["loc"])
            problems.append(f"{source}: {where}: {message}" if where else f"{source}: {message}")
        raise ConfigError(problems) from None
    finally:
        _yaml_data.reset(token)

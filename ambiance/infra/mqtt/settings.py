"""How to reach the MQTT broker: `MqttSettings`, the `mqtt:` section of the settings."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from ambiance.errors import brief


class MqttSettings(BaseModel):
    """How to reach the broker. No host: the service runs without MQTT."""

    model_config = ConfigDict(extra="forbid")

    host: str | None = Field(default=None, description="None: no broker, MQTT is off.")
    port: int = Field(default=1883, ge=1, le=65535)
    username: str | None = None
    password: SecretStr | None = None
    tls: bool = False
    ca_file: Path | None = Field(
        default=None, description="The CA that signed the broker's certificate; None: the system's."
    )
    cert_file: Path | None = Field(
        default=None, description="A client certificate (with key_file)."
    )
    key_file: Path | None = None
    tls_insecure: bool = Field(
        default=False, description="Skip the host name check of the broker's certificate."
    )
    client_id: str | None = Field(default=None, description="None: ambiance-<hostname>.")
    keepalive: int = Field(default=60, ge=5, le=3600)
    base_topic: str = "ambiance"
    discovery_prefix: str = Field(
        default="homeassistant", description="Home Assistant's MQTT discovery prefix."
    )
    reconnect_min: float = Field(default=0.5, gt=0, le=3600)
    reconnect_max: float = Field(default=30.0, gt=0, le=3600)

    @field_validator("host")
    @classmethod
    def _host(cls, value: str | None) -> str | None:
        # An empty AMBIANCE_MQTT__HOST= means "no broker", not a broker called "".
        return value.strip() or None if value is not None else None

    @field_validator("base_topic", "discovery_prefix")
    @classmethod
    def _base_topic(cls, value: str) -> str:
        if not value:
            raise ValueError("must not be empty")
        if "+" in value or "#" in value or "\0" in value:
            raise ValueError(f"{brief(value)} must not contain the wildcards + or #")
        if value.startswith("/") or value.endswith("/") or "//" in value:
            raise ValueError(f"{brief(value)} must not start or end with '/' nor have empty levels")
        if value.startswith("$"):
            raise ValueError(f"{brief(value)} must not start with '$' (broker topics)")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("cert_file and key_file go together: give both or neither")
        if self.password is not None and self.username is None:
            raise ValueError("a password needs a username")
        if self.reconnect_max < self.reconnect_min:
            raise ValueError("reconnect_max must be at least reconnect_min")
        if self.ca_file is not None or self.cert_file is not None:
            self.tls = True  # a CA or a client certificate only make sense over TLS
        return self

    @property
    def resolved_client_id(self) -> str:
        return self.client_id or f"ambiance-{socket.gethostname()}"

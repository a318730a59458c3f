"""The settings of a room's MPD (or Mopidy) player."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr

from ambiance.devices.registry import BackendConfig


class MpdMusicConfig(BackendConfig):
    """MPD, or Mopidy's MPD frontend."""

    backend: Literal["mpd"]
    host: str = "localhost"
    port: int = Field(default=6600, ge=1, le=65535)
    password: SecretStr | None = None
    timeout: float = Field(default=5.0, gt=0, le=60)
    restore: Literal["previous", "stop"] = Field(
        default="previous",
        description="At the end: put back what was playing before (queue, position, volume), "
        "or stop.",
    )
    cue: str | None = Field(
        default="ambiance/chime.wav",
        description="The stage chime, a file in the player's music library "
        "(`ambiance chime --out <music dir>/ambiance` writes one); null: no chime.",
    )
    cue_volume: float = Field(default=40, ge=0, le=100, description="Percent.")
    fade_step: float = Field(
        default=0.2, gt=0, le=5, description="Seconds between two volume steps of a fade."
    )

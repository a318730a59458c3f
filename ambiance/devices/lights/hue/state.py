"""A Hue light's state as the bridge reports it (`GET /lights`), checked before it is
trusted: the ranges are those the bridge takes in a command, so that whatever a snapshot
keeps can be sent back as it is. `HueBridge.light_state()` checks each light's state
against it (ambiance.devices.outside leaves out and reports the rest).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from ambiance.devices.lights.base import BRI_MAX, MIRED_MAX, MIRED_MIN

Unit = Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)]


class HueLightReport(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore")

    on: bool | None = None
    bri: int | None = Field(default=None, ge=1, le=BRI_MAX)  # 1 is the dimmest on
    ct: int | None = Field(default=None, ge=MIRED_MIN, le=MIRED_MAX)
    xy: Annotated[list[Unit], Field(min_length=2, max_length=2)] | None = None
    hue: int | None = Field(default=None, ge=0, le=65535)
    sat: int | None = Field(default=None, ge=0, le=254)
    colormode: Literal["ct", "xy", "hs"] | None = None
    reachable: bool | None = None

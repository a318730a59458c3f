"""Philips Hue lights through the v1 API, with phue as the HTTP client.

- errors.py: the bridge's error array (inside an HTTP 200) and our exception per type;
- bridge.py: `HueBridge`, the one place that calls a bridge (a thread pool under a
  timeout, the command spacing the bridge asks for, usernames cut short in logs);
- lights.py: `HueLights`, one room as a Hue group (one group command per scene change,
  an exact per-light snapshot and restore);
- pairing.py: `pair()` gets a username from the link button; `HueCredentials` keeps it;
- registration.py: the registry's declaration (config models and factories) of Hue lights and
  Hue distractions.

Retrying a bridge that is away is the coordinator's (ambiance.core.coordinator): a call
here is one attempt, see HueBridge.
"""

from ambiance.devices.lights.hue.bridge import CommandSpacing, HueBridge
from ambiance.devices.lights.hue.errors import (
    ERRORS,
    BridgeBusy,
    BridgeUnreachable,
    DeviceOff,
    HueError,
    HueErrorInfo,
    InvalidValue,
    LinkButtonNotPressed,
    ResourceNotAvailable,
    Unauthorized,
    raise_for_errors,
)
from ambiance.devices.lights.hue.lights import HueLights
from ambiance.devices.lights.hue.pairing import HueCredentials, default_devicetype, pair

__all__ = [
    "ERRORS",
    "BridgeBusy",
    "BridgeUnreachable",
    "CommandSpacing",
    "DeviceOff",
    "HueBridge",
    "HueCredentials",
    "HueError",
    "HueErrorInfo",
    "HueLights",
    "InvalidValue",
    "LinkButtonNotPressed",
    "ResourceNotAvailable",
    "Unauthorized",
    "default_devicetype",
    "pair",
    "raise_for_errors",
]

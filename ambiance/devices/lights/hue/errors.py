"""The Hue bridge's errors: the error array it sends (inside an HTTP 200) and our
exceptions for it, one class per error type a caller tells apart."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from ambiance.errors import DeviceError, DeviceUnavailable


@dataclass(frozen=True)
class HueErrorInfo:
    """One entry of the bridge's error array."""

    type: int
    address: str
    description: str


class HueError(DeviceError):
    """The bridge refused (part of) a request. `errors` holds every error it reported,
    `successes` the parts that did succeed, so a caller can judge a partial success."""

    code = "hue_error"

    def __init__(
        self,
        message: str,
        *,
        errors: Iterable[HueErrorInfo] = (),
        successes: Iterable[Mapping[str, Any]] = (),
    ) -> None:
        self.errors = tuple(errors)
        self.successes = tuple(successes)
        super().__init__(message, detail=[asdict(e) for e in self.errors] or None)


class Unauthorized(HueError):
    """Error 1: the bridge does not know this username (never paired, or removed)."""

    code = "hue_unauthorized"


class ResourceNotAvailable(HueError):
    """Error 3: no such light or group."""

    code = "hue_not_available"


class InvalidValue(HueError):
    """Error 7: a value out of range or of the wrong type."""

    code = "hue_invalid_value"


class LinkButtonNotPressed(HueError):
    """Error 101: pairing needs the link button pressed in the last 30 s."""

    code = "hue_link_button"


class DeviceOff(HueError):
    """Error 201: bri/ct/colour cannot be set on a light that is off."""

    code = "hue_device_off"


class BridgeUnreachable(HueError, DeviceUnavailable):
    """Connection refused, reset or timed out."""

    code = "hue_unreachable"


class BridgeBusy(HueError, DeviceUnavailable):
    """Error 901, or a reply that is not JSON (an HTML error page, a 503, garbage):
    the bridge is overloaded or rebooting; worth retrying later."""

    code = "hue_busy"


ERRORS: dict[int, type[HueError]] = {
    1: Unauthorized,
    3: ResourceNotAvailable,
    7: InvalidValue,
    101: LinkButtonNotPressed,
    201: DeviceOff,
    901: BridgeBusy,
}


def raise_for_errors(result: Any) -> Any:
    """Return `result`, or raise the mapped exception of its first error.

    Writes answer with a list of {"success": ...} / {"error": ...}; reads answer with
    the resource itself, or with such a list when they fail (e.g. unauthorized user).
    """
    if not isinstance(result, list):
        return result
    errors: list[HueErrorInfo] = []
    successes: list[Mapping[str, Any]] = []
    for item in result:
        if not isinstance(item, dict):
            continue
        if isinstance(error := item.get("error"), dict):
            errors.append(
                HueErrorInfo(
                    type=int(error.get("type", 0)),
                    address=str(error.get("address", "")),
                    description=str(error.get("description", "")),
                )
            )
        elif isinstance(success := item.get("success"), dict):
            successes.append(success)
    if not errors:
        return result
    first = errors[0]
    cls = ERRORS.get(first.type, HueError)
    message = f"{first.description} ({first.address}, error {first.type})"
    if len(errors) > 1:
        message += f" and {len(errors) - 1} more"
    raise cls(message, errors=errors, successes=successes)

"""Outside state: what a device says about itself, checked before it is trusted.

A Zigbee2MQTT state message, a Hue bridge's light or a switch's state topic comes from
another program, and a wrong value there (`"brightness": 1e308`, `"state": 5`) must not
reach a snapshot and be sent back to the lights at the end of a session. Each kind of
report has a pydantic model of the fields we use, with their types and ranges; a report
is checked field by field, so one bad field does not throw away the good ones. A field
that is not valid is left out (the last valid value stands, and a restore leaves that
attribute alone) and reported: a WARNING once per device and field, so a device that
keeps sending it does not flood the log. A `null` is taken as "not said", silently.
"""

from __future__ import annotations

import logging
import reprlib
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ValidationError

log = logging.getLogger(__name__)

# A value in a log line is cut short: a message never grows with the input.
_short = reprlib.Repr()
_short.maxstring = _short.maxother = 40
_short.maxlist = _short.maxdict = 4
_short.maxlevel = 2


class Problems:
    """Say each (device, field) problem of one kind of report once, at WARNING."""

    def __init__(self, what: str) -> None:
        self.what = what  # whose reports: "zigbee2mqtt", "Hue bridge at <address>"
        self._said: set[tuple[str, str]] = set()  # bounded: devices and fields are ours

    def say(self, device: str, field: str, value: Any, reason: str) -> None:
        if (device, field) in self._said:
            return
        self._said.add((device, field))
        log.warning(
            "%s: %s sent %s %s, which is not valid (%s): left out of its state, so it is "
            "neither shown nor restored (said once per device and field)",
            self.what,
            device,
            field,
            _short.repr(value),
            reason,
        )


class Reports:
    """Check one kind of report against `model`: the fields we use, their types and ranges."""

    def __init__(self, model: type[BaseModel], what: str) -> None:
        self.model = model
        self.problems = Problems(what)

    def valid(self, device: str, report: Mapping[str, Any]) -> dict[str, Any]:
        """The fields of `report` that the model knows and that are valid, as it has them."""
        data = {k: v for k, v in report.items() if k in self.model.model_fields and v is not None}
        try:
            return self.model.model_validate(data).model_dump(exclude_unset=True)
        except ValidationError as exc:
            bad: dict[str, str] = {}
            for error in exc.errors():
                bad.setdefault(str(error["loc"][0]), error["msg"])
        for field, reason in bad.items():
            self.problems.say(device, field, data[field], reason)
        clean = {k: v for k, v in data.items() if k not in bad}
        return self.model.model_validate(clean).model_dump(exclude_unset=True)

"""One base error for everything ambiance raises, and the few kinds callers tell apart.

Each error carries a stable machine `code` and a human message. The HTTP layer maps the
classes (not the codes) to status codes in one place: `api/errors.py`.
"""

from __future__ import annotations

from typing import Any


class AmbianceError(Exception):
    """Base of every error ambiance raises on purpose."""

    code = "error"

    def __init__(self, message: str, *, detail: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail


class NotFound(AmbianceError):
    """A named thing (room, scene, routine, stage, profile) does not exist."""

    code = "not_found"

    def __init__(self, kind: str, name: str, *, known: list[str] | None = None) -> None:
        message = f"no {kind} named {name!r}"
        if known is not None:
            message += f" (known: {', '.join(sorted(known)) or 'none'})"
        super().__init__(message, detail={"kind": kind, "name": name})
        self.code = f"{kind.replace(' ', '_')}_not_found"
        self.kind = kind
        self.name = name


class Conflict(AmbianceError):
    """A command that does not fit the current state (next with no session)."""

    code = "conflict"


class InvalidInput(AmbianceError):
    """A value outside what the command accepts."""

    code = "invalid_input"


class ConfigError(AmbianceError):
    """A config, scene or routine file is wrong; `problems` lists every finding."""

    code = "config_error"

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems), detail=problems)
        self.problems = problems


class StorageError(AmbianceError):
    """The data dir or the database cannot be written or read: read-only, full, damaged.

    `kind` says which (`read_only`, `full`, `io`, `busy`, `damaged`, `not_a_directory`);
    the message says what, where, and what to do."""

    code = "storage_error"

    def __init__(self, message: str, *, kind: str, path: str) -> None:
        super().__init__(message, detail={"kind": kind, "path": path})
        self.kind = kind
        self.path = path


# --- devices -------------------------------------------------------------------------


class DeviceError(AmbianceError):
    """A device (bridge, broker, player) failed a request."""

    code = "device_error"


class DeviceUnavailable(DeviceError):
    """The device cannot be reached now (refused, timed out); worth retrying later."""

    code = "device_unavailable"

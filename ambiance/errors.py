"""One base error for everything ambiance raises, and the few kinds callers tell apart.

Each error carries a stable machine `code` and a human message. The HTTP layer maps the
classes (not the codes) to status codes in one place: `api/errors.py`.
"""

from __future__ import annotations

import reprlib
from typing import Any

# An error message never grows with the input: a value shown in one is cut to this many
# characters, a problem line to MAX_PROBLEM, and a ConfigError lists MAX_PROBLEMS of them.
MAX_VALUE = 80
MAX_PROBLEM = 400
MAX_PROBLEMS = 50

# reprlib looks at only the first few items and characters of each level, so showing a
# value costs the same whether it holds ten items or (through YAML aliases) ten million.
_SHORT = reprlib.Repr()
_SHORT.maxlevel = 3
_SHORT.maxstring = _SHORT.maxother = _SHORT.maxlong = MAX_VALUE
_SHORT.maxlist = _SHORT.maxtuple = _SHORT.maxdict = _SHORT.maxset = _SHORT.maxfrozenset = 4


def clip(text: str, limit: int = MAX_VALUE) -> str:
    """`text` cut to `limit` characters, with "…" where it was cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def brief(value: Any, limit: int = MAX_VALUE) -> str:
    """A repr of `value` for an error message: at most `limit` characters, made in a
    time that does not depend on the value's size."""
    try:
        text = _SHORT.repr(value)
    except Exception:  # a repr that fails (an int too long to print) must not hide the error
        text = f"<{type(value).__name__}>"
    return clip(text, limit)


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
    """A config, scene or routine file is wrong; `problems` lists the findings.

    Each problem is cut to MAX_PROBLEM characters and the list to MAX_PROBLEMS (and a
    last line saying how many more), so a file with a huge value or 100,000 mistakes
    gives a message a person can read, in a time that does not grow with the file.
    """

    code = "config_error"

    def __init__(self, problems: list[str]) -> None:
        more = len(problems) - MAX_PROBLEMS
        problems = [clip(p, MAX_PROBLEM) for p in problems[:MAX_PROBLEMS]]
        if more > 0:
            problems.append(f"... and {more:,} more problems (fix these first)")
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

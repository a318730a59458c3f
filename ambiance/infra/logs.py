"""Logging: one handler on the root logger, in text or JSON lines, with a room and session.

`context(room=..., session=...)` sets contextvars around a piece of work (a room sets them
around its commands and its timer); `ContextFilter` copies them onto every record that
passes the handler, as `record.room` and `record.session`. asyncio tasks inherit the
context they were created in, so work a command starts carries its room too.

Secrets stay out of logs by never being passed to them (the token, the MQTT password);
this module adds no fields of its own beyond the context.
"""

from __future__ import annotations

import json as jsonlib
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import IO

_room: ContextVar[str | None] = ContextVar("ambiance_log_room", default=None)
_session: ContextVar[str | None] = ContextVar("ambiance_log_session", default=None)

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


@contextmanager
def context(*, room: str | None = None, session: str | None = None) -> Iterator[None]:
    """Log records made inside carry this room and session (a None keeps the outer one)."""
    tokens = []
    if room is not None:
        tokens.append((_room, _room.set(room)))
    if session is not None:
        tokens.append((_session, _session.set(session)))
    try:
        yield
    finally:
        for var, token in reversed(tokens):
            var.reset(token)


def current() -> dict[str, str | None]:
    return {"room": _room.get(), "session": _session.get()}


class ContextFilter(logging.Filter):
    """Puts `room` and `session` on each record (None outside a room's work)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "room", None) is None:
            record.room = _room.get()
        if getattr(record, "session", None) is None:
            record.session = _session.get()
        return True


class TextFormatter(logging.Formatter):
    """The usual line, then ` room=... session=...` when they are known."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        extra = "".join(
            f" {key}={value}"
            for key in ("room", "session")
            if (value := getattr(record, key, None)) is not None
        )
        if not extra:
            return line
        first, newline, rest = line.partition("\n")  # keep a traceback below the line
        return first + extra + newline + rest


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message, room, session (and exc)."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "room": getattr(record, "room", None),
            "session": getattr(record, "session", None),
        }
        if record.exc_info:
            entry["exc_info"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exc_info"] = record.exc_text
        if record.stack_info:
            entry["stack_info"] = self.formatStack(record.stack_info)
        return jsonlib.dumps(entry, default=str)


_HANDLER_NAME = "ambiance"


def setup(level: str, json: bool = False, stream: IO[str] | None = None) -> logging.Handler:
    """Log to stderr (or `stream`) at `level`, as text or JSON lines; replaces an earlier
    setup's handler, so calling it twice does not log twice."""
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == _HANDLER_NAME]:
        root.removeHandler(old)
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.set_name(_HANDLER_NAME)
    handler.addFilter(ContextFilter())
    handler.setFormatter(JsonFormatter() if json else TextFormatter())
    root.addHandler(handler)
    root.setLevel(level.upper())
    return handler
